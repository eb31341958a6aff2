package wire

import (
	"io"
	"mime"
	"slices"
	"strconv"
	"strings"
	"time"

	goimap "github.com/emersion/go-imap/v2"
)

// Status writes a status response: "tag typ [code] text", the tag "*"
// for an untagged one (tag ""). typ is OK, NO, BAD, PREAUTH or BYE; code
// is the response code with its arguments ("UIDVALIDITY 3857529045"), or
// "".
func (w *Writer) Status(tag, typ, code, text string) {
	w.StatusCode(tag, typ, code, nil, text)
}

// sanitizeText makes s a valid resp-text: no CR, LF or NUL, and no "["
// first (which would read as a response code).
func sanitizeText(s string) string {
	if strings.ContainsAny(s, "\r\n\x00") {
		s = strings.Map(func(r rune) rune {
			if r == '\r' || r == '\n' || r == 0 {
				return ' '
			}
			return r
		}, s)
	}
	if strings.HasPrefix(s, "[") {
		s = " " + s
	}
	return s
}

// Continue writes a continuation request, "+ text".
func (w *Writer) Continue(text string) {
	w.Raw("+ ")
	w.Raw(sanitizeText(text))
	w.CRLF()
}

// Untagged begins an untagged response: "* ".
func (w *Writer) Untagged() { w.Raw("* ") }

// Capability writes "* CAPABILITY caps...".
func (w *Writer) Capability(caps []string) {
	w.Raw("* CAPABILITY")
	for _, c := range caps {
		w.SP()
		w.Raw(c)
	}
	w.CRLF()
}

// Enabled writes "* ENABLED caps..." (RFC 5161).
func (w *Writer) Enabled(caps []string) {
	w.Raw("* ENABLED")
	for _, c := range caps {
		w.SP()
		w.Raw(c)
	}
	w.CRLF()
}

// NumResponse writes "* n name" (EXISTS, RECENT, EXPUNGE).
func (w *Writer) NumResponse(n uint32, name string) {
	w.Raw("* ")
	w.Number(n)
	w.SP()
	w.Raw(name)
	w.CRLF()
}

// Vanished writes "* VANISHED [(EARLIER)] uids" (RFC 7162 section
// 3.2.10); uids must not be empty.
func (w *Writer) Vanished(earlier bool, uids goimap.UIDSet) {
	w.Raw("* VANISHED ")
	if earlier {
		w.Raw("(EARLIER) ")
	}
	w.NumSet(uids)
	w.CRLF()
}

// MailboxFlags writes "* FLAGS (flags)".
func (w *Writer) MailboxFlags(flags []goimap.Flag) {
	w.Raw("* FLAGS ")
	w.Flags(flags)
	w.CRLF()
}

// List writes a LIST (or LSUB, if lsub) response for d: its attributes,
// delimiter and name, and for LIST its extended data (CHILDINFO, OLDNAME)
// and, with LIST-STATUS, the STATUS response after it.
func (w *Writer) List(d *goimap.ListData, lsub bool) {
	if lsub {
		w.Raw("* LSUB ")
	} else {
		w.Raw("* LIST ")
	}
	w.BeginList()
	for _, a := range d.Attrs {
		w.ElemAtom(string(a))
	}
	w.EndList()
	w.SP()
	if d.Delim == 0 {
		w.NIL()
	} else {
		w.quoted(string(d.Delim))
	}
	w.SP()
	w.Mailbox(d.Mailbox)
	if !lsub && (d.ChildInfo != nil || d.OldName != "") {
		w.Raw(" (")
		sep := ""
		if d.ChildInfo != nil {
			w.Raw(`"CHILDINFO" (`)
			if d.ChildInfo.Subscribed {
				w.Raw(`"SUBSCRIBED"`)
			}
			w.byte1(')')
			sep = " "
		}
		if d.OldName != "" {
			w.Raw(sep + `"OLDNAME" (`)
			w.Mailbox(d.OldName)
			w.byte1(')')
		}
		w.byte1(')')
	}
	w.CRLF()
	if d.Status != nil && !lsub {
		w.StatusData(d.Status)
	}
}

// StatusData writes "* STATUS mailbox (items)" with the items d has.
func (w *Writer) StatusData(d *goimap.StatusData) {
	w.Raw("* STATUS ")
	w.Mailbox(d.Mailbox)
	w.Raw(" (")
	sep := ""
	item := func(name string, n uint64) {
		w.Raw(sep)
		w.Raw(name)
		w.SP()
		w.Number64(n)
		sep = " "
	}
	if d.NumMessages != nil {
		item("MESSAGES", uint64(*d.NumMessages))
	}
	if d.UIDNext != 0 {
		item("UIDNEXT", uint64(d.UIDNext))
	}
	if d.UIDValidity != 0 {
		item("UIDVALIDITY", uint64(d.UIDValidity))
	}
	if d.NumUnseen != nil {
		item("UNSEEN", uint64(*d.NumUnseen))
	}
	if d.NumDeleted != nil {
		item("DELETED", uint64(*d.NumDeleted))
	}
	if d.Size != nil {
		item("SIZE", uint64(*d.Size))
	}
	if d.AppendLimit != nil {
		item("APPENDLIMIT", uint64(*d.AppendLimit))
	}
	if d.DeletedStorage != nil {
		item("DELETED-STORAGE", uint64(*d.DeletedStorage))
	}
	if d.NumRecent != nil {
		item("RECENT", uint64(*d.NumRecent))
	}
	if d.HighestModSeq != 0 {
		item("HIGHESTMODSEQ", d.HighestModSeq)
	}
	w.byte1(')')
	w.CRLF()
}

// Search writes "* SEARCH nums..." (RFC 3501), with "(MODSEQ m)" when
// modseq is not 0 (RFC 7162 section 3.1.5). name is SEARCH or SORT.
func (w *Writer) Search(name string, nums []uint32, modseq uint64) {
	w.Raw("* ")
	w.Raw(name)
	for _, n := range nums {
		w.SP()
		w.Number(n)
	}
	if modseq != 0 && len(nums) > 0 {
		w.Raw(" (MODSEQ ")
		w.Number64(modseq)
		w.byte1(')')
	}
	w.CRLF()
}

// ESearch is what an ESEARCH response holds (RFC 4731).
type ESearch struct {
	Tag   string // the command's, "" for none
	UID   bool
	Min   uint32 // with HasMin...
	Max   uint32
	Count uint32
	All   goimap.NumSet // nil or empty: not written
	// ModSeq is the highest MODSEQ of the messages found, 0 for none
	// (RFC 7162 section 3.1.5).
	ModSeq                   uint64
	HasMin, HasMax, HasCount bool
}

// ESearch writes "* ESEARCH (TAG "a") UID MIN 1 MAX 9 COUNT 4 ALL 1:3,9".
func (w *Writer) ESearch(e *ESearch) {
	w.Raw("* ESEARCH")
	if e.Tag != "" {
		w.Raw(" (TAG ")
		w.String(e.Tag)
		w.byte1(')')
	}
	if e.UID {
		w.Raw(" UID")
	}
	if e.HasMin {
		w.Raw(" MIN ")
		w.Number(e.Min)
	}
	if e.HasMax {
		w.Raw(" MAX ")
		w.Number(e.Max)
	}
	if e.HasCount {
		w.Raw(" COUNT ")
		w.Number(e.Count)
	}
	if e.All != nil && e.All.String() != "" {
		w.Raw(" ALL ")
		w.NumSet(e.All)
	}
	if e.ModSeq != 0 {
		w.Raw(" MODSEQ ")
		w.Number64(e.ModSeq)
	}
	w.CRLF()
}

// ThreadNode is a message in a THREAD response with its replies; Num 0
// is a message that is not there, whose children are siblings.
type ThreadNode struct {
	Num      uint32
	Children []ThreadNode
}

// Thread writes "* THREAD (threads)" (RFC 5256 section 4).
func (w *Writer) Thread(threads []ThreadNode) {
	w.Raw("* THREAD")
	if len(threads) > 0 {
		w.SP()
	}
	for i := range threads {
		w.byte1('(')
		w.threadNode(&threads[i])
		w.byte1(')')
	}
	w.CRLF()
}

// threadNode writes a node's inside: "n", "n m..." for a chain,
// "n (a)(b)" for replies that branch, "(a)(b)" for a missing message.
func (w *Writer) threadNode(n *ThreadNode) {
	for {
		if n.Num != 0 {
			w.Number(n.Num)
		}
		switch {
		case len(n.Children) == 0:
			return
		case len(n.Children) == 1 && n.Num != 0:
			w.SP()
			n = &n.Children[0]
			continue
		}
		if n.Num != 0 {
			w.SP()
		}
		for i := range n.Children {
			w.byte1('(')
			w.threadNode(&n.Children[i])
			w.byte1(')')
		}
		return
	}
}

// ID writes "* ID (fields)" or "* ID NIL" (RFC 2971), fields in key
// order.
func (w *Writer) ID(fields map[string]string) {
	w.Raw("* ID ")
	if len(fields) == 0 {
		w.NIL()
		w.CRLF()
		return
	}
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	w.BeginList()
	for _, k := range keys {
		w.elem()
		w.String(k)
		w.SP()
		w.NString(fields[k])
	}
	w.EndList()
	w.CRLF()
}

// QuotaResource is one resource of a QUOTA response (RFC 9208): its name
// (STORAGE in KiB, MESSAGE...), usage and limit.
type QuotaResource struct {
	Name         string
	Usage, Limit uint64
}

// Quota writes "* QUOTA root (name usage limit ...)".
func (w *Writer) Quota(root string, res []QuotaResource) {
	w.Raw("* QUOTA ")
	w.AString(root)
	w.SP()
	w.BeginList()
	for _, r := range res {
		w.elem()
		w.Raw(r.Name)
		w.SP()
		w.Number64(r.Usage)
		w.SP()
		w.Number64(r.Limit)
	}
	w.EndList()
	w.CRLF()
}

// QuotaRoot writes "* QUOTAROOT mailbox roots...".
func (w *Writer) QuotaRoot(mailbox string, roots []string) {
	w.Raw("* QUOTAROOT ")
	w.Mailbox(mailbox)
	for _, r := range roots {
		w.SP()
		w.AString(r)
	}
	w.CRLF()
}

// Fetch begins "* seq FETCH (": write the items with the FetchResponse's
// methods, then End.
func (w *Writer) Fetch(seq uint32) *FetchResponse {
	w.Raw("* ")
	w.Number(seq)
	w.Raw(" FETCH ")
	w.BeginList()
	return &FetchResponse{w: w}
}

// FetchResponse writes the items of one FETCH response, spaced.
type FetchResponse struct {
	w *Writer
}

func (f *FetchResponse) item(name string) {
	f.w.elem()
	f.w.Raw(name)
	f.w.SP()
}

// UID writes "UID u".
func (f *FetchResponse) UID(u uint32) {
	f.item("UID")
	f.w.Number(u)
}

// Flags writes "FLAGS (...)".
func (f *FetchResponse) Flags(flags []goimap.Flag) {
	f.item("FLAGS")
	f.w.Flags(flags)
}

// ModSeq writes "MODSEQ (m)" (RFC 7162).
func (f *FetchResponse) ModSeq(m uint64) {
	f.item("MODSEQ")
	f.w.byte1('(')
	f.w.Number64(m)
	f.w.byte1(')')
}

// InternalDate writes "INTERNALDATE "dd-Mon-yyyy hh:mm:ss +zzzz"".
func (f *FetchResponse) InternalDate(t time.Time) {
	f.item("INTERNALDATE")
	f.w.DateTime(t)
}

// RFC822Size writes "RFC822.SIZE n".
func (f *FetchResponse) RFC822Size(n int64) {
	f.item("RFC822.SIZE")
	f.w.Number64(uint64(n))
}

// Envelope writes "ENVELOPE (...)".
func (f *FetchResponse) Envelope(env *goimap.Envelope) {
	f.item("ENVELOPE")
	f.w.envelope(env)
}

// BodyStructure writes "BODYSTRUCTURE (...)" if extended, else "BODY
// (...)". Every multipart must have a part.
func (f *FetchResponse) BodyStructure(bs goimap.BodyStructure, extended bool) {
	if extended {
		f.item("BODYSTRUCTURE")
	} else {
		f.item("BODY")
	}
	f.w.bodyStructure(bs, extended)
}

// Section writes a BODY[...] item: its name as SectionName writes it,
// then a literal of size bytes from r (see Writer.Literal). An item asked
// as RFC822, RFC822.HEADER or RFC822.TEXT is written under that name
// (legacy, not "").
func (f *FetchResponse) Section(s *goimap.FetchItemBodySection, legacy string, size int64, r io.Reader) error {
	f.w.elem()
	if legacy != "" {
		f.w.Raw(legacy)
	} else {
		f.w.Raw(SectionName(s, f.w.utf8))
	}
	f.w.SP()
	return f.w.Literal(size, r)
}

// NilSection writes a BODY[...] item as NIL.
func (f *FetchResponse) NilSection(s *goimap.FetchItemBodySection) {
	f.w.elem()
	f.w.Raw(SectionName(s, f.w.utf8))
	f.w.Raw(" NIL")
}

// Binary writes a BINARY[part]<origin> item: a literal8 of size bytes
// from r, the origin when a partial range was asked (RFC 3516 section
// 4.2).
func (f *FetchResponse) Binary(part []int, partial *goimap.SectionPartial, size int64, r io.Reader) error {
	f.w.elem()
	f.w.Raw("BINARY[")
	f.w.Raw(partString(part))
	f.w.byte1(']')
	if partial != nil {
		f.w.byte1('<')
		f.w.Number64(uint64(partial.Offset))
		f.w.byte1('>')
	}
	f.w.SP()
	return f.w.Literal8(size, r)
}

// BinarySize writes "BINARY.SIZE[part] n".
func (f *FetchResponse) BinarySize(part []int, n uint32) {
	f.w.elem()
	f.w.Raw("BINARY.SIZE[")
	f.w.Raw(partString(part))
	f.w.Raw("] ")
	f.w.Number(n)
}

// End writes ")" CRLF.
func (f *FetchResponse) End() {
	f.w.EndList()
	f.w.CRLF()
}

func partString(part []int) string {
	var b strings.Builder
	for i, p := range part {
		if i > 0 {
			b.WriteByte('.')
		}
		b.WriteString(strconv.Itoa(p))
	}
	return b.String()
}

// SectionName is a BODY[...] item's name in a FETCH response: the section
// as the client asked for it (RFC 9051 section 7.5.2), with "<origin>" if
// a partial range was asked.
func SectionName(s *goimap.FetchItemBodySection, utf8 bool) string {
	var b strings.Builder
	b.WriteString("BODY[")
	b.WriteString(partString(s.Part))
	if s.Specifier != goimap.PartSpecifierNone {
		if len(s.Part) > 0 {
			b.WriteByte('.')
		}
		b.WriteString(string(s.Specifier))
		fields := s.HeaderFields
		if len(s.HeaderFieldsNot) > 0 {
			b.WriteString(".FIELDS.NOT")
			fields = s.HeaderFieldsNot
		} else if len(fields) > 0 {
			b.WriteString(".FIELDS")
		}
		if len(fields) > 0 {
			b.WriteString(" (")
			tmp := &Writer{utf8: utf8}
			for i, k := range fields {
				if i > 0 {
					b.WriteByte(' ')
				}
				b.WriteString(tmp.astringText(k))
			}
			b.WriteByte(')')
		}
	}
	b.WriteByte(']')
	if s.Partial != nil {
		b.WriteByte('<')
		b.WriteString(strconv.FormatInt(s.Partial.Offset, 10))
		b.WriteByte('>')
	}
	return b.String()
}

// astringText is AString's output for s, as a string.
func (w *Writer) astringText(s string) string {
	if isAtomString(s) {
		return s
	}
	if quotable(s, w.utf8) {
		return string(appendQuoted(nil, s))
	}
	return "{" + strconv.Itoa(len(s)) + "}\r\n" + s
}

// envelopeDate is the layout of an ENVELOPE's date.
const envelopeDate = "Mon, 02 Jan 2006 15:04:05 -0700"

// envelope writes an ENVELOPE (RFC 9051 section 7.5.2): a nil Sender or
// Reply-To is From's (RFC 9051: the server defaults them); the subject
// and display names MIME-encoded as UTF-8 words when they are not ASCII,
// unless in UTF-8 mode (RFC 6855 section 3).
func (w *Writer) envelope(env *goimap.Envelope) {
	if env == nil {
		env = new(goimap.Envelope)
	}
	sender, replyTo := env.Sender, env.ReplyTo
	if sender == nil {
		sender = env.From
	}
	if replyTo == nil {
		replyTo = env.From
	}
	w.byte1('(')
	if env.Date.IsZero() {
		w.NIL()
	} else {
		w.String(env.Date.Format(envelopeDate))
	}
	w.SP()
	w.NString(w.headerText(env.Subject))
	for _, l := range [][]goimap.Address{env.From, sender, replyTo, env.To, env.Cc, env.Bcc} {
		w.SP()
		w.addressList(l)
	}
	w.SP()
	if len(env.InReplyTo) > 0 {
		w.String("<" + strings.Join(env.InReplyTo, "> <") + ">")
	} else {
		w.NIL()
	}
	w.SP()
	if env.MessageID != "" {
		w.String("<" + env.MessageID + ">")
	} else {
		w.NIL()
	}
	w.byte1(')')
}

// headerText is a subject or display name as the client may get it.
func (w *Writer) headerText(s string) string {
	if w.utf8 {
		return s
	}
	return mime.QEncoding.Encode("utf-8", s)
}

func (w *Writer) addressList(l []goimap.Address) {
	if len(l) == 0 {
		w.NIL()
		return
	}
	w.byte1('(')
	for _, a := range l {
		w.byte1('(')
		w.NString(w.headerText(a.Name))
		w.Raw(" NIL ")
		w.NString(a.Mailbox)
		w.SP()
		w.NString(a.Host)
		w.byte1(')')
	}
	w.byte1(')')
}

// bodyStructure writes a body (RFC 9051 section 9), with the extension
// data if extended.
func (w *Writer) bodyStructure(bs goimap.BodyStructure, extended bool) {
	w.byte1('(')
	switch bs := bs.(type) {
	case *goimap.BodyStructureSinglePart:
		w.singlePart(bs, extended)
	case *goimap.BodyStructureMultiPart:
		w.multiPart(bs, extended)
	default:
		// Not a body: the smallest valid one rather than a broken
		// response.
		w.Raw(`"text" "plain" NIL NIL NIL "7bit" 0 0`)
	}
	w.byte1(')')
}

func (w *Writer) singlePart(bs *goimap.BodyStructureSinglePart, extended bool) {
	w.String(bs.Type)
	w.SP()
	w.String(bs.Subtype)
	w.SP()
	w.params(bs.Params)
	w.SP()
	w.NString(bs.ID)
	w.SP()
	w.NString(bs.Description)
	w.SP()
	if bs.Encoding == "" {
		w.String("7bit")
	} else {
		w.String(strings.ToLower(bs.Encoding)) // some clients choke on upper case
	}
	w.SP()
	w.Number(bs.Size)
	if msg := bs.MessageRFC822; msg != nil {
		w.SP()
		w.envelope(msg.Envelope)
		w.SP()
		w.bodyStructure(msg.BodyStructure, extended)
		w.SP()
		w.Number64(uint64(msg.NumLines))
	} else if bs.Text != nil {
		w.SP()
		w.Number64(uint64(bs.Text.NumLines))
	}
	if !extended {
		return
	}
	ext := bs.Extended
	if ext == nil {
		ext = &goimap.BodyStructureSinglePartExt{}
	}
	w.Raw(" NIL ") // MD5
	w.disposition(ext.Disposition)
	w.SP()
	w.languages(ext.Language)
	w.SP()
	w.NString(ext.Location)
}

func (w *Writer) multiPart(bs *goimap.BodyStructureMultiPart, extended bool) {
	for _, c := range bs.Children {
		w.bodyStructure(c, extended) // no SP between the parts (RFC 9051 body-type-mpart)
	}
	w.SP()
	w.String(bs.Subtype)
	if !extended {
		return
	}
	ext := bs.Extended
	if ext == nil {
		ext = &goimap.BodyStructureMultiPartExt{}
	}
	w.SP()
	w.params(ext.Params)
	w.SP()
	w.disposition(ext.Disposition)
	w.SP()
	w.languages(ext.Language)
	w.SP()
	w.NString(ext.Location)
}

func (w *Writer) params(p map[string]string) {
	if len(p) == 0 {
		w.NIL()
		return
	}
	keys := make([]string, 0, len(p))
	for k := range p {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	w.byte1('(')
	for i, k := range keys {
		if i > 0 {
			w.SP()
		}
		w.String(k)
		w.SP()
		w.String(p[k])
	}
	w.byte1(')')
}

func (w *Writer) disposition(d *goimap.BodyStructureDisposition) {
	if d == nil {
		w.NIL()
		return
	}
	w.byte1('(')
	w.String(d.Value)
	w.SP()
	w.params(d.Params)
	w.byte1(')')
}

func (w *Writer) languages(l []string) {
	if len(l) == 0 {
		w.NIL()
		return
	}
	w.byte1('(')
	for i, s := range l {
		if i > 0 {
			w.SP()
		}
		w.String(s)
	}
	w.byte1(')')
}
