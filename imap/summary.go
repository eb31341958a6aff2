package imap

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	goimap "github.com/emersion/go-imap/v2"
	gomessage "github.com/emersion/go-message"
	// Encoded words and bodies in charsets other than UTF-8 and US-ASCII
	// (GBK, ISO-8859-1...) are decoded only when this package is linked in:
	// it sets go-message's CharsetReader, which go-imap's Extract functions
	// use too.
	_ "github.com/emersion/go-message/charset"
	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"
)

// The summary of a message is what the index caches about it for FETCH:
// its ENVELOPE and its BODYSTRUCTURE, as go-imap values encoded compactly.
// There are hundreds of millions of index entries, so every byte counts.
//
// # Encoding, version 3
//
// Numbers are varints as encoding/binary writes them: "uvarint" unsigned,
// "varint" zig-zag signed. A "str" is a uvarint k followed, when k is even,
// by a literal of k/2 bytes; when k is odd, it stands for word k/2 of the
// dictionary in codec.go (common MIME words: "text", "plain", "charset", "utf-8",
// "base64"...), with nothing following. A "map" is a uvarint count, then
// that many (key str, value str) pairs in increasing key order.
//
// An envelope summary is the version byte (2), then an envelope:
//
//	present  byte   bit 0: Date is not zero
//	                bits 1-6: From, Sender, ReplyTo, To, Cc, Bcc are not nil
//	                bit 7: InReplyTo is not nil
//	[date]   varint seconds since the Unix epoch,
//	         varint zone offset in minutes east of UTC
//	subject  str
//	[lists]  for each list present, in the order above: uvarint count,
//	         then count × (name str, mailbox str, host str)
//	[irt]    uvarint count, then count × str
//	msgid    str
//
// and, after the envelope, the References field for threading (RFC 5256):
//
//	refs     uvarint count, then count × str: the message ids, without
//	         their angle brackets, at most maxReferences of them
//
// A structure summary is the version byte (2), then a part:
//
//	flags    byte   bit 0: 0 for a single part, 1 for a multipart
//
//	single part:    bit 1 Params, bit 2 Text, bit 3 MessageRFC822,
//	                bit 4 Extended, bit 5 Extended.Disposition,
//	                bit 6 Disposition.Params, bit 7 Extended.Language
//	                (each: not nil)
//	type str, subtype str, [params map], id str, description str,
//	encoding str, size uvarint,
//	[text: lines uvarint],
//	[message: byte (bit 0 Envelope, bit 1 BodyStructure not nil),
//	          [envelope], [part], lines uvarint],
//	[extended: [disposition: value str, [params map]],
//	           [language: uvarint count, count × str], location str]
//
//	multipart:      bit 1 Children, bit 2 Extended, bit 3 Extended.Params,
//	                bit 4 Extended.Disposition, bit 5 Disposition.Params,
//	                bit 6 Extended.Language (each: not nil); bit 7 is 0
//	subtype str, [children: uvarint count, count × part],
//	[extended: [params map], [disposition: value str, [params map]],
//	           [language: uvarint count, count × str], location str]
//
// Line counts are int64 values stored as uvarint of their uint64 bits.
// Bits a value cannot have, trailing bytes, a dictionary index out of
// range and parts nested deeper than maxDepth (multiparts and
// message/rfc822 both count) are errors.
//
// The encoding keeps every distinction go-imap's FETCH writer makes (a
// nil Sender or Reply-To is written as From, an empty one as NIL; an
// empty string is NIL) and Go's nil against empty for maps, slices and
// pointers, so a decoded value is deep-equal to the one encoded, with one
// exception: Date keeps the second and the zone offset to the minute, all
// that go-imap writes (a time.FixedZone without a name replaces the parsed
// location). go-imap has no field for a part's MD5: it always writes NIL.
//
// # Versions 1 and 2
//
// Version 2 has the layout of version 3 without the References after the
// envelope (structure summaries are the same in both).
//
//
// Version 1 has the layout of version 2, but its envelopes are go-imap's
// ExtractEnvelope's: the subject and display names MIME-decoded to UTF-8
// (which go-imap's writer then encodes again, as =?utf-8?q? words), groups
// flattened or lost, and a field with a route, a comment in an address or
// anything else net/mail refuses left out entirely. Index entries made
// before version 3 still hold such summaries; they decode as they were
// made, with no References (OutdatedSummary tells them), and Summarize on
// the message makes a version 3 summary of it.

// summaryVersion is the first byte of every summary Summarize makes;
// oldestSummaryVersion is the first the decoder reads.
const (
	summaryVersion       = 3
	oldestSummaryVersion = 1
)

// maxReferences bounds the message ids kept of a References field: the
// first (the thread's root) and the last ones (the closest ancestors), as
// RFC 5322 section 3.6.4 suggests trimming a long field. The REFERENCES
// thread algorithm links a message to its ancestors through them, and
// copes with a trimmed field.
const maxReferences = 20

// maxDepth bounds the nesting of multiparts and message/rfc822 parts, in
// Summarize and in DecodeStructure. The top part is at depth 1.
const maxDepth = 64

// ErrBadSummary is returned (wrapped) by DecodeEnvelope and DecodeStructure
// for bytes that are not a summary this version can read.
var ErrBadSummary = errors.New("imap: bad message summary")

// Summarize reads a whole RFC 5322 message from r and returns its envelope
// and body structure summaries, for userdata.NewMessage's Envelope and
// Structure. The envelope, and those of the message/rfc822 parts, are
// extractEnvelope's. The structure equals, but for those envelopes, what
// go-imap's imapserver.ExtractBodyStructure returns for the same message,
// except for parts nested deeper than 64 levels: a multipart or
// message/rfc822 part at depth 64 is summarized as an
// application/octet-stream leaf.
//
// The body is streamed: parts are read only to count their bytes and
// lines, so memory does not grow with the size of a part. Header sections
// are held in memory while they are parsed, as go-message's
// textproto.ReadHeader reads them whole; the message size limit bounds
// them. Malformed messages are summarized as go-imap would, never
// refused; the only error is a read error from r.
func Summarize(r io.Reader) (envelope, structure []byte, err error) {
	src := &sourceReader{r: r}
	br := readers.Get().(*bufio.Reader)
	br.Reset(src)
	defer func() {
		br.Reset(nil) // not holding src
		readers.Put(br)
	}()
	header, _ := textproto.ReadHeader(br) // like go-imap: a bad header is a short one
	env := extractEnvelope(header)
	bs := extractStructure(header, br, 1)
	if src.err != nil {
		return nil, nil, fmt.Errorf("imap: summarize: %w", src.err)
	}
	envelope = appendEnvelopeSummary(nil, env, references(header))
	structure, err = appendStructureSummary(nil, bs)
	if err != nil {
		return nil, nil, fmt.Errorf("imap: summarize: %w", err)
	}
	return envelope, structure, nil
}

// readers are Summarize's buffered readers, used again: every delivery
// summarizes a message, and what it parses is copied out of the buffer.
var readers = sync.Pool{New: func() any { return bufio.NewReader(nil) }}

// DecodeEnvelope decodes an envelope summary made by Summarize, of this
// version or an older one (see OutdatedSummary). The strings of the
// result share one copy of b's bytes.
func DecodeEnvelope(b []byte) (*goimap.Envelope, error) {
	env, _, err := DecodeThreading(b)
	return env, err
}

// DecodeThreading decodes an envelope summary as DecodeEnvelope does, and
// returns the message ids of the message's References field with it, at
// most the first and the last 19 of them, without angle brackets, in the
// field's order. Summaries older than version 3 have none (nil).
func DecodeThreading(b []byte) (env *goimap.Envelope, references []string, err error) {
	d, err := newDecoder(b)
	if err != nil {
		return nil, nil, err
	}
	env = d.envelope()
	if d.version >= 3 {
		references = d.strs()
		if len(references) == 0 {
			references = nil
		}
	}
	if err := d.finish(); err != nil {
		return nil, nil, err
	}
	return env, references, nil
}

// DecodeStructure decodes a body structure summary made by Summarize. The
// result is a *goimap.BodyStructureSinglePart or a
// *goimap.BodyStructureMultiPart, never nil.
//
// Like go-imap's ExtractBodyStructure, it may return a multipart without
// children (a multipart message without a usable boundary); go-imap's
// FETCH writer panics on one, so the server must give such a part a child
// before writing it.
func DecodeStructure(b []byte) (goimap.BodyStructure, error) {
	d, err := newDecoder(b)
	if err != nil {
		return nil, err
	}
	bs := d.part(1)
	if err := d.finish(); err != nil {
		return nil, err
	}
	return bs, nil
}

// OutdatedSummary reports whether b, an envelope or structure summary
// that decodes, was made by an older version of Summarize than this one,
// so that summarizing the message again would give a better one (for
// envelopes made before version 2: groups, routes, comments, raw
// subjects; before version 3: the References field). A migration can use
// it to find the index entries to redo.
func OutdatedSummary(b []byte) bool {
	return len(b) > 0 && b[0] < summaryVersion
}

// extractEnvelope returns the ENVELOPE of a message whose header is h
// (RFC 3501 section 7.4.2, RFC 9051 section 7.5.2), as Dovecot and Cyrus
// make it rather than as go-imap's ExtractEnvelope does:
//
//   - the subject is the field's value as sent, unfolded (RFC 5322
//     section 2.2.3) and trimmed of the white space around it, byte for
//     byte otherwise: encoded words are left for the client to decode;
//   - the address fields are parsed by parseAddressList (groups, routes,
//     comments, the obsolete syntax), display names kept as sent;
//   - the message ID and the In-Reply-To value are sent as they are when
//     they are in angle brackets as a whole (go-imap's writer adds the
//     brackets back), and otherwise as go-message parses them;
//   - the date is go-message's parse of the Date field (none if bad).
//
// An empty field, or an address field without an address or a group, is
// NIL; go-imap's writer then writes From for a NIL Sender or Reply-To.
//
// Raw 8-bit text (UTF-8 headers, RFC 6532) is kept in the values too.
// Whether the client enabled UTF8=ACCEPT or not, go-imap's writer
// (v2.0.0-beta.8) MIME-encodes a subject or display name with any byte
// outside printable ASCII as =?utf-8?q? words before it goes out, which is
// what RFC 6855 section 7 asks before UTF8=ACCEPT (a client that has not
// enabled it must get 7-bit headers) and is a departure from RFC 6855
// section 3 after it, where the client should get the UTF-8 itself; the
// mailbox and host of an address go out as they are, quoted UTF-8 after
// ENABLE, a literal before. Nothing here depends on the session, so the
// cached envelope serves both.
func extractEnvelope(h textproto.Header) *goimap.Envelope {
	mh := mail.Header{Header: gomessage.Header{Header: h}}
	date, _ := mh.Date()
	return &goimap.Envelope{
		Date:      date,
		Subject:   rawValue(h, "Subject"),
		From:      parseAddressList(rawValue(h, "From")),
		Sender:    parseAddressList(rawValue(h, "Sender")),
		ReplyTo:   parseAddressList(rawValue(h, "Reply-To")),
		To:        parseAddressList(rawValue(h, "To")),
		Cc:        parseAddressList(rawValue(h, "Cc")),
		Bcc:       parseAddressList(rawValue(h, "Bcc")),
		InReplyTo: inReplyTo(mh),
		MessageID: messageID(mh),
	}
}

// rawValue returns the value of h's first field named key, as it is in
// the message but unfolded: the line breaks of folding taken out and the
// white space around the value trimmed. It is "" without such a field.
func rawValue(h textproto.Header, key string) string {
	raw, err := h.Raw(key)
	if err != nil || raw == nil {
		return ""
	}
	return unfoldField(raw)
}

// unfoldField returns the value of a raw field ("Key: value" and its
// continuation lines, as textproto.ReadHeader keeps them), unfolded and
// trimmed as rawValue says.
func unfoldField(raw []byte) string {
	if i := bytes.IndexByte(raw, ':'); i >= 0 {
		raw = raw[i+1:]
	}
	// textproto.ReadHeader ends every line of a field with CRLF, and each
	// line after the first starts with white space: every CRLF folds.
	v := bytes.ReplaceAll(raw, []byte("\r\n"), nil)
	return string(bytes.Trim(v, " \t"))
}

// messageID is the envelope's message ID, without its angle brackets.
func messageID(mh mail.Header) string {
	if v := rawValue(mh.Header.Header, "Message-Id"); bracketed(v) {
		return v[1 : len(v)-1]
	}
	id, _ := mh.MessageID()
	return id
}

// inReplyTo is the envelope's In-Reply-To, which go-imap's writer writes
// as "<" + strings.Join(l, "> <") + ">".
func inReplyTo(mh mail.Header) []string {
	if v := rawValue(mh.Header.Header, "In-Reply-To"); bracketed(v) {
		return []string{v[1 : len(v)-1]}
	}
	l, _ := mh.MsgIDList("In-Reply-To")
	return l
}

// references returns the message ids of h's References field (RFC 5322
// section 3.6.4), as msgIDs finds them.
func references(h textproto.Header) []string {
	return msgIDs(rawValue(h, "References"))
}

// msgIDs returns the message ids of a field's value without their angle
// brackets: each "<...>" that holds no white space and no other bracket,
// so that one malformed id costs only itself. Past maxReferences ids it
// keeps the first and the last maxReferences-1, in bounded memory.
func msgIDs(v string) []string {
	var ids []string
	for {
		i := strings.IndexByte(v, '<')
		if i < 0 {
			break
		}
		v = v[i+1:]
		j := strings.IndexAny(v, "<> \t")
		if j < 0 {
			break
		}
		if v[j] == '>' && j > 0 {
			ids = append(ids, v[:j])
			if len(ids) > 2*maxReferences {
				ids = append(ids[:1], ids[len(ids)-(maxReferences-1):]...)
			}
		}
		v = v[j:]
	}
	if len(ids) > maxReferences {
		ids = append(ids[:1], ids[len(ids)-(maxReferences-1):]...)
	}
	return ids
}

// bracketed reports whether v is in angle brackets as a whole: it starts
// with "<", ends with ">" and has something between them.
func bracketed(v string) bool {
	return len(v) > 2 && v[0] == '<' && v[len(v)-1] == '>'
}

// sourceReader passes r through and keeps its first error other than
// io.EOF: parsing ignores errors, as go-imap does, but a failed read must
// not be cached as a short message.
type sourceReader struct {
	r   io.Reader
	err error
}

func (s *sourceReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err != nil && err != io.EOF && s.err == nil {
		s.err = err
	}
	return n, err
}
