package wire

import goimap "github.com/emersion/go-imap/v2"

// StatusCode writes a status response whose response code has typed
// arguments: "tag typ [code args] text" CRLF, the tag "*" for an
// untagged one (tag ""). typ is OK, NO, BAD, PREAUTH or BYE; code is the
// code's atom (UIDVALIDITY, COPYUID, PERMANENTFLAGS...); args, if not
// nil, writes its arguments with the Writer's elements, spaced from the
// code and from each other by the Writer:
//
//	w.StatusCode("", "OK", "UIDVALIDITY", func(w *Writer) { w.Number(3857529045) }, "UIDs valid")
//
// writes "* OK [UIDVALIDITY 3857529045] UIDs valid". The text is made a
// valid resp-text as Status makes it (no CR, LF or NUL; typ if empty).
func (w *Writer) StatusCode(tag, typ, code string, args func(*Writer), text string) {
	if tag == "" {
		tag = "*"
	}
	w.Raw(tag)
	w.SP()
	w.Raw(typ)
	if code != "" {
		w.Raw(" [")
		w.Raw(code)
		if args != nil {
			args(w)
		}
		w.byte1(']')
	}
	if text == "" {
		text = typ
	}
	w.SP()
	w.Raw(sanitizeText(text))
	w.CRLF()
}

// Exists writes "* n EXISTS".
func (w *Writer) Exists(n uint32) { w.NumResponse(n, "EXISTS") }

// Recent writes "* n RECENT" (IMAP4rev1 only).
func (w *Writer) Recent(n uint32) { w.NumResponse(n, "RECENT") }

// Expunge writes "* seq EXPUNGE".
func (w *Writer) Expunge(seq uint32) { w.NumResponse(seq, "EXPUNGE") }

// PermanentFlags writes "* OK [PERMANENTFLAGS (flags)] text": the flags
// the client may change for good, `\*` among them if it may make new
// keywords.
func (w *Writer) PermanentFlags(flags []goimap.Flag, text string) {
	w.StatusCode("", "OK", "PERMANENTFLAGS", func(w *Writer) { w.Flags(flags) }, text)
}

// Lsub writes an LSUB response for d (RFC 3501 section 7.2.3): List
// with lsub set.
func (w *Writer) Lsub(d *goimap.ListData) { w.List(d, true) }

// Sort writes "* SORT nums..." (RFC 5256 section 4), with "(MODSEQ m)"
// when modseq is not 0 and nums are not empty (RFC 7162 section 3.1.5).
func (w *Writer) Sort(nums []uint32, modseq uint64) { w.Search("SORT", nums, modseq) }

// Namespace writes "* NAMESPACE personal other shared" (RFC 2342, RFC
// 9051 section 7.2.2): each a list of (prefix delimiter) pairs, or NIL
// when empty. A prefix is a mailbox name (modified UTF-7 unless UTF-8
// mode); a delimiter of 0 is NIL. A nil d is three NILs.
func (w *Writer) Namespace(d *goimap.NamespaceData) {
	if d == nil {
		d = &goimap.NamespaceData{}
	}
	w.Raw("* NAMESPACE")
	for _, ns := range [...][]goimap.NamespaceDescriptor{d.Personal, d.Other, d.Shared} {
		if len(ns) == 0 {
			w.NIL()
			continue
		}
		w.BeginList()
		for _, desc := range ns {
			w.sp = false // no SP between descriptors (RFC 9051 Namespace)
			w.BeginList()
			prefix := desc.Prefix
			if !w.utf8 {
				prefix = EncodeMailbox(prefix)
			}
			w.String(prefix)
			if desc.Delim == 0 {
				w.NIL()
			} else {
				w.String(string(desc.Delim))
			}
			w.EndList()
		}
		w.EndList()
	}
	w.CRLF()
}

// ESearchData writes the ESEARCH response (RFC 4731, RFC 9051 section
// 7.3.4) to the command tagged tag for go-imap's search result: MIN and
// MAX when asked for and something was found, COUNT when asked for
// (even 0), ALL when asked for and not empty, MODSEQ when not 0 (RFC
// 7162). ret is what the command's RETURN asked for; nil or nothing
// asked for means ALL (RFC 4731 section 3.1).
func (w *Writer) ESearchData(tag string, uid bool, ret *goimap.SearchOptions, data *goimap.SearchData) {
	var opts goimap.SearchOptions
	if ret != nil {
		opts = *ret
	}
	if !opts.ReturnMin && !opts.ReturnMax && !opts.ReturnCount && !opts.ReturnAll && !opts.ReturnSave {
		opts.ReturnAll = true
	}
	if data == nil {
		data = &goimap.SearchData{}
	}
	e := ESearch{Tag: tag, UID: uid, ModSeq: data.ModSeq,
		HasMin: opts.ReturnMin && data.Min != 0, Min: data.Min,
		HasMax: opts.ReturnMax && data.Max != 0, Max: data.Max,
		HasCount: opts.ReturnCount, Count: data.Count,
	}
	if opts.ReturnAll && data.All != nil && data.All.String() != "" {
		e.All = data.All
	}
	w.ESearch(&e)
}

// IDData writes "* ID (...)" for go-imap's ID fields (RFC 2971) in the
// RFC's order (name, version, os, os-version, vendor, support-url,
// address, date, command, arguments, environment), leaving out the empty
// ones; nil is "* ID NIL".
func (w *Writer) IDData(d *goimap.IDData) {
	w.Raw("* ID")
	if d == nil {
		w.NIL()
		w.CRLF()
		return
	}
	w.BeginList()
	for _, f := range [...]struct{ k, v string }{
		{"name", d.Name}, {"version", d.Version}, {"os", d.OS}, {"os-version", d.OSVersion},
		{"vendor", d.Vendor}, {"support-url", d.SupportURL}, {"address", d.Address}, {"date", d.Date},
		{"command", d.Command}, {"arguments", d.Arguments}, {"environment", d.Environment},
	} {
		if f.v != "" {
			w.String(f.k)
			w.String(f.v)
		}
	}
	w.EndList()
	w.CRLF()
}
