package imap

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	goimap "github.com/emersion/go-imap/v2"

	"github.com/mailsys/mailsys/internal/varint"
)

// The summary encoding is described in summary.go. This file writes and
// reads it.

// dictionary holds the words a str may name by index instead of spelling
// them out. The list is part of the format: words may only be appended,
// and reading a summary made with a longer list needs a new version. The
// first 64 words take one byte, the rest two.
var dictionary = [...]string{
	// 0-63: one byte.
	"text", "plain", "html", "charset", "utf-8", "UTF-8", "us-ascii", "US-ASCII",
	"7bit", "8bit", "base64", "quoted-printable", "7BIT", "8BIT", "BASE64", "QUOTED-PRINTABLE",
	"multipart", "mixed", "alternative", "related", "boundary", "name", "filename", "attachment",
	"inline", "application", "octet-stream", "pdf", "image", "jpeg", "png", "gif",
	"message", "rfc822", "iso-8859-1", "ISO-8859-1", "windows-1252", "gb2312", "GB2312", "gbk",
	"GBK", "gb18030", "GB18030", "big5", "Big5", "iso-2022-jp", "ISO-2022-JP", "format",
	"flowed", "delsp", "yes", "type", "signed", "report", "calendar", "method",
	"delivery-status", "rfc822-headers", "binary", "Base64", "Quoted-Printable", "en-US", "en", "zh-CN",
	// 64-: two bytes.
	"zip", "msword", "vnd.ms-excel", "vnd.ms-powerpoint",
	"vnd.openxmlformats-officedocument.wordprocessingml.document",
	"vnd.openxmlformats-officedocument.spreadsheetml.sheet",
	"vnd.openxmlformats-officedocument.presentationml.presentation",
	"pkcs7-signature", "pkcs7-mime", "pgp-signature", "pgp-encrypted", "ms-tnef", "x-zip-compressed",
	"json", "xml", "csv", "rtf", "enriched", "global", "digest", "protocol", "micalg",
	"application/pkcs7-signature", "application/pgp-signature", "sha-256", "sha-1", "sha1",
	"start", "text/html", "size", "creation-date", "modification-date", "reply-type", "original",
	"disposition-notification", "webp", "svg+xml", "bmp", "tiff", "audio", "video", "mpeg", "mp4",
	"ics", "REQUEST", "REPLY", "CANCEL", "koi8-r", "KOI8-R", "shift_jis", "Shift_JIS", "euc-kr",
	"EUC-KR", "iso-8859-15", "ISO-8859-15", "iso-8859-2", "ISO-8859-2", "windows-1251", "Windows-1251",
	"windows-1250", "utf8", "zh-TW", "ja", "ko", "de", "fr", "es", "it", "ru", "pt", "nl",
}

// dictionaryIndex maps a word to its index in dictionary.
// It is built once and never changed; TestDictionary checks that no word
// appears twice.
var dictionaryIndex = func() map[string]int {
	m := make(map[string]int, len(dictionary))
	for i, w := range dictionary {
		m[w] = i
	}
	return m
}()

// Flag bits of the encoding.
const (
	envDate = 1 << iota
	envFrom // then Sender, ReplyTo, To, Cc, Bcc: envFrom << i
	_
	_
	_
	_
	_
	envInReplyTo
)

const (
	partMulti = 1 << 0

	singleParams     = 1 << 1
	singleText       = 1 << 2
	singleMessage    = 1 << 3
	singleExtended   = 1 << 4
	singleDisp       = 1 << 5
	singleDispParams = 1 << 6
	singleLanguage   = 1 << 7

	multiChildren   = 1 << 1
	multiExtended   = 1 << 2
	multiParams     = 1 << 3
	multiDisp       = 1 << 4
	multiDispParams = 1 << 5
	multiLanguage   = 1 << 6
	multiUnused     = 1 << 7

	messageEnvelope  = 1 << 0
	messageStructure = 1 << 1
)

var errTooDeep = errors.New("parts nested too deeply")

// appendEnvelopeSummary appends an envelope summary of env (nil is the
// zero envelope) and the message ids of the References field to b.
func appendEnvelopeSummary(b []byte, env *goimap.Envelope, references []string) []byte {
	b = append(b, summaryVersion)
	b = appendEnvelope(b, env)
	return appendStrings(b, references)
}

// appendStructureSummary appends a structure summary of bs to b.
func appendStructureSummary(b []byte, bs goimap.BodyStructure) ([]byte, error) {
	if bs == nil {
		return nil, errors.New("nil body structure")
	}
	b = append(b, summaryVersion)
	return appendPart(b, bs, 1)
}

func envelopeLists(env *goimap.Envelope) [6][]goimap.Address {
	return [6][]goimap.Address{env.From, env.Sender, env.ReplyTo, env.To, env.Cc, env.Bcc}
}

func appendEnvelope(b []byte, env *goimap.Envelope) []byte {
	if env == nil {
		env = new(goimap.Envelope)
	}
	lists := envelopeLists(env)
	var present byte
	if !env.Date.IsZero() {
		present |= envDate
	}
	for i, l := range lists {
		if l != nil {
			present |= envFrom << i
		}
	}
	if env.InReplyTo != nil {
		present |= envInReplyTo
	}
	b = append(b, present)
	if present&envDate != 0 {
		_, offset := env.Date.Zone()
		b = binary.AppendVarint(b, env.Date.Unix())
		b = binary.AppendVarint(b, int64(offset/60))
	}
	b = appendString(b, env.Subject)
	for _, l := range lists {
		if l == nil {
			continue
		}
		b = binary.AppendUvarint(b, uint64(len(l)))
		for _, a := range l {
			b = appendString(b, a.Name)
			b = appendString(b, a.Mailbox)
			b = appendString(b, a.Host)
		}
	}
	if env.InReplyTo != nil {
		b = appendStrings(b, env.InReplyTo)
	}
	return appendString(b, env.MessageID)
}

func appendPart(b []byte, bs goimap.BodyStructure, depth int) ([]byte, error) {
	if depth > maxDepth {
		return nil, errTooDeep
	}
	switch bs := bs.(type) {
	case *goimap.BodyStructureSinglePart:
		if bs != nil {
			return appendSinglePart(b, bs, depth)
		}
	case *goimap.BodyStructureMultiPart:
		if bs != nil {
			return appendMultiPart(b, bs, depth)
		}
	}
	return nil, fmt.Errorf("unsupported body structure %T", bs)
}

func appendSinglePart(b []byte, bs *goimap.BodyStructureSinglePart, depth int) ([]byte, error) {
	var flags byte
	if bs.Params != nil {
		flags |= singleParams
	}
	if bs.Text != nil {
		flags |= singleText
	}
	if bs.MessageRFC822 != nil {
		flags |= singleMessage
	}
	ext := bs.Extended
	if ext != nil {
		flags |= singleExtended
		if ext.Disposition != nil {
			flags |= singleDisp
			if ext.Disposition.Params != nil {
				flags |= singleDispParams
			}
		}
		if ext.Language != nil {
			flags |= singleLanguage
		}
	}
	b = append(b, flags)
	b = appendString(b, bs.Type)
	b = appendString(b, bs.Subtype)
	if bs.Params != nil {
		b = appendMap(b, bs.Params)
	}
	b = appendString(b, bs.ID)
	b = appendString(b, bs.Description)
	b = appendString(b, bs.Encoding)
	b = binary.AppendUvarint(b, uint64(bs.Size))
	if bs.Text != nil {
		b = binary.AppendUvarint(b, uint64(bs.Text.NumLines))
	}
	if msg := bs.MessageRFC822; msg != nil {
		var mflags byte
		if msg.Envelope != nil {
			mflags |= messageEnvelope
		}
		if msg.BodyStructure != nil {
			mflags |= messageStructure
		}
		b = append(b, mflags)
		if msg.Envelope != nil {
			b = appendEnvelope(b, msg.Envelope)
		}
		if msg.BodyStructure != nil {
			var err error
			if b, err = appendPart(b, msg.BodyStructure, depth+1); err != nil {
				return nil, err
			}
		}
		b = binary.AppendUvarint(b, uint64(msg.NumLines))
	}
	if ext != nil {
		b = appendExtension(b, nil, ext.Disposition, ext.Language, ext.Location)
	}
	return b, nil
}

func appendMultiPart(b []byte, bs *goimap.BodyStructureMultiPart, depth int) ([]byte, error) {
	flags := byte(partMulti)
	if bs.Children != nil {
		flags |= multiChildren
	}
	ext := bs.Extended
	if ext != nil {
		flags |= multiExtended
		if ext.Params != nil {
			flags |= multiParams
		}
		if ext.Disposition != nil {
			flags |= multiDisp
			if ext.Disposition.Params != nil {
				flags |= multiDispParams
			}
		}
		if ext.Language != nil {
			flags |= multiLanguage
		}
	}
	b = append(b, flags)
	b = appendString(b, bs.Subtype)
	if bs.Children != nil {
		b = binary.AppendUvarint(b, uint64(len(bs.Children)))
		for _, child := range bs.Children {
			var err error
			if b, err = appendPart(b, child, depth+1); err != nil {
				return nil, err
			}
		}
	}
	if ext != nil {
		b = appendExtension(b, ext.Params, ext.Disposition, ext.Language, ext.Location)
	}
	return b, nil
}

// appendExtension appends the extension data whose presence the part's
// flags announce: params (multipart only), disposition, language, location.
func appendExtension(b []byte, params map[string]string, disp *goimap.BodyStructureDisposition, lang []string, location string) []byte {
	if params != nil {
		b = appendMap(b, params)
	}
	if disp != nil {
		b = appendString(b, disp.Value)
		if disp.Params != nil {
			b = appendMap(b, disp.Params)
		}
	}
	if lang != nil {
		b = appendStrings(b, lang)
	}
	return appendString(b, location)
}

func appendString(b []byte, s string) []byte {
	if i, ok := dictionaryIndex[s]; ok {
		return binary.AppendUvarint(b, uint64(i)<<1|1)
	}
	b = binary.AppendUvarint(b, uint64(len(s))<<1)
	return append(b, s...)
}

func appendStrings(b []byte, l []string) []byte {
	b = binary.AppendUvarint(b, uint64(len(l)))
	for _, s := range l {
		b = appendString(b, s)
	}
	return b
}

func appendMap(b []byte, m map[string]string) []byte {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b = binary.AppendUvarint(b, uint64(len(keys)))
	for _, k := range keys {
		b = appendString(b, k)
		b = appendString(b, m[k])
	}
	return b
}

// decoder reads a summary. The first error sticks: later reads return zero
// values, and finish reports it. Decoded strings are substrings of the
// summary, copied once.
type decoder struct {
	varint.Decoder[string]
	version byte
}

func newDecoder(b []byte) (*decoder, error) {
	if len(b) == 0 {
		return nil, fmt.Errorf("%w: empty", ErrBadSummary)
	}
	if b[0] < oldestSummaryVersion || b[0] > summaryVersion {
		return nil, fmt.Errorf("%w: version %d", ErrBadSummary, b[0])
	}
	d := &decoder{Decoder: varint.New(string(b))}
	d.version = d.Byte()
	return d, nil
}

// finish reports the first error, or trailing bytes.
func (d *decoder) finish() error {
	if err := d.Done(); err != nil {
		return fmt.Errorf("%w: %w", ErrBadSummary, err)
	}
	return nil
}

// count reads a count of items that take at least minSize bytes each, so
// that no count can make the decoder allocate more than the summary's size
// allows.
func (d *decoder) count(minSize int) int {
	n := d.Uvarint()
	if d.Failed() {
		return 0
	}
	if n > uint64(d.Len()/minSize) {
		d.Fail("count too large")
		return 0
	}
	return int(n)
}

// str reads a string: a uvarint k, then, for an even k, k/2 bytes, or,
// for an odd one, nothing: the string is dictionary[k/2].
func (d *decoder) str() string {
	k := d.Uvarint()
	if d.Failed() {
		return ""
	}
	if k&1 != 0 {
		i := k >> 1
		if i >= uint64(len(dictionary)) {
			d.Fail("unknown dictionary word")
			return ""
		}
		return dictionary[i]
	}
	return d.Next(k >> 1)
}

func (d *decoder) strs() []string {
	n := d.count(1)
	l := make([]string, n)
	for i := range l {
		l[i] = d.str()
	}
	return l
}

func (d *decoder) params() map[string]string {
	n := d.count(2)
	m := make(map[string]string, n)
	for range n {
		k := d.str()
		m[k] = d.str()
	}
	return m
}

func (d *decoder) envelope() *goimap.Envelope {
	present := d.Byte()
	env := new(goimap.Envelope)
	if present&envDate != 0 {
		sec := d.Varint()
		offset := d.Varint()
		// time.Parse takes offsets up to 24:59; anything much beyond is
		// not a summary (and would overflow below).
		if offset <= -100*60 || offset >= 100*60 {
			d.Fail("bad zone offset")
			return nil
		}
		env.Date = time.Unix(sec, 0).In(time.FixedZone("", int(offset)*60))
		if env.Date.IsZero() {
			d.Fail("zero date marked present") // written as absent
			return nil
		}
	}
	env.Subject = d.str()
	lists := [6]*[]goimap.Address{&env.From, &env.Sender, &env.ReplyTo, &env.To, &env.Cc, &env.Bcc}
	for i, l := range lists {
		if present&(envFrom<<i) == 0 {
			continue
		}
		addrs := make([]goimap.Address, d.count(3))
		for j := range addrs {
			addrs[j] = goimap.Address{Name: d.str(), Mailbox: d.str(), Host: d.str()}
		}
		*l = addrs
	}
	if present&envInReplyTo != 0 {
		env.InReplyTo = d.strs()
	}
	env.MessageID = d.str()
	if d.Failed() {
		return nil
	}
	return env
}

// part reads a part at the given depth (1 for the top).
func (d *decoder) part(depth int) goimap.BodyStructure {
	if depth > maxDepth {
		d.Fail("parts nested too deeply")
		return nil
	}
	flags := d.Byte()
	if d.Failed() {
		return nil
	}
	if flags&partMulti != 0 {
		return d.multiPart(flags, depth)
	}
	return d.singlePart(flags, depth)
}

func (d *decoder) singlePart(flags byte, depth int) goimap.BodyStructure {
	if flags&singleExtended == 0 && flags&(singleDisp|singleDispParams|singleLanguage) != 0 ||
		flags&singleDisp == 0 && flags&singleDispParams != 0 {
		d.Fail("bad part flags")
		return nil
	}
	bs := &goimap.BodyStructureSinglePart{Type: d.str(), Subtype: d.str()}
	if flags&singleParams != 0 {
		bs.Params = d.params()
	}
	bs.ID = d.str()
	bs.Description = d.str()
	bs.Encoding = d.str()
	size := d.Uvarint()
	if size > 1<<32-1 {
		d.Fail("bad size")
		return nil
	}
	bs.Size = uint32(size)
	if flags&singleText != 0 {
		bs.Text = &goimap.BodyStructureText{NumLines: int64(d.Uvarint())}
	}
	if flags&singleMessage != 0 {
		mflags := d.Byte()
		if mflags&^(messageEnvelope|messageStructure) != 0 {
			d.Fail("bad message flags")
			return nil
		}
		msg := new(goimap.BodyStructureMessageRFC822)
		if mflags&messageEnvelope != 0 {
			msg.Envelope = d.envelope()
		}
		if mflags&messageStructure != 0 {
			msg.BodyStructure = d.part(depth + 1)
		}
		msg.NumLines = int64(d.Uvarint())
		bs.MessageRFC822 = msg
	}
	if flags&singleExtended != 0 {
		ext := new(goimap.BodyStructureSinglePartExt)
		if flags&singleDisp != 0 {
			ext.Disposition = d.disposition(flags&singleDispParams != 0)
		}
		if flags&singleLanguage != 0 {
			ext.Language = d.strs()
		}
		ext.Location = d.str()
		bs.Extended = ext
	}
	if d.Failed() {
		return nil
	}
	return bs
}

func (d *decoder) multiPart(flags byte, depth int) goimap.BodyStructure {
	if flags&multiUnused != 0 ||
		flags&multiExtended == 0 && flags&(multiParams|multiDisp|multiDispParams|multiLanguage) != 0 ||
		flags&multiDisp == 0 && flags&multiDispParams != 0 {
		d.Fail("bad part flags")
		return nil
	}
	bs := &goimap.BodyStructureMultiPart{Subtype: d.str()}
	if flags&multiChildren != 0 {
		// A part takes at least 2 bytes: flags and a subtype.
		bs.Children = make([]goimap.BodyStructure, d.count(2))
		for i := range bs.Children {
			bs.Children[i] = d.part(depth + 1)
			if d.Failed() {
				return nil
			}
		}
	}
	if flags&multiExtended != 0 {
		ext := new(goimap.BodyStructureMultiPartExt)
		if flags&multiParams != 0 {
			ext.Params = d.params()
		}
		if flags&multiDisp != 0 {
			ext.Disposition = d.disposition(flags&multiDispParams != 0)
		}
		if flags&multiLanguage != 0 {
			ext.Language = d.strs()
		}
		ext.Location = d.str()
		bs.Extended = ext
	}
	if d.Failed() {
		return nil
	}
	return bs
}

func (d *decoder) disposition(withParams bool) *goimap.BodyStructureDisposition {
	disp := &goimap.BodyStructureDisposition{Value: d.str()}
	if withParams {
		disp.Params = d.params()
	}
	return disp
}
