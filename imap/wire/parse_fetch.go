package wire

import (
	"strings"

	goimap "github.com/emersion/go-imap/v2"
)

// fetchArgs reads FETCH's arguments after "FETCH ".
func (r *Reader) fetchArgs(uid bool) *FetchArgs {
	a := &FetchArgs{Set: r.numSet(uid, true), Options: &goimap.FetchOptions{}}
	r.sp()
	o := a.Options
	if r.peek() == '(' {
		r.list("the fetch items", false, func() { r.fetchNamed(a, strings.ToUpper(r.token("a fetch item", isFetchNameChar))) })
	} else {
		name := strings.ToUpper(r.token("a fetch item", isFetchNameChar))
		switch name {
		case "ALL":
			o.Flags, o.InternalDate, o.RFC822Size, o.Envelope = true, true, true, true
			a.Macro = name
		case "FAST":
			o.Flags, o.InternalDate, o.RFC822Size = true, true, true
			a.Macro = name
		case "FULL":
			o.Flags, o.InternalDate, o.RFC822Size, o.Envelope = true, true, true, true
			o.BodyStructure = &goimap.FetchItemBodyStructure{}
			a.Macro = name
		default:
			r.fetchNamed(a, name)
		}
	}
	if r.maybe(' ') {
		r.list("the fetch modifiers", false, func() {
			switch m := strings.ToUpper(r.atom("a fetch modifier")); m {
			case "CHANGEDSINCE":
				r.sp()
				o.ChangedSince = r.number64("a mod-sequence")
				o.ModSeq = true // RFC 7162 section 3.1.4.1
			case "VANISHED":
				if !uid {
					r.fail("VANISHED without UID FETCH")
				}
				a.Vanished = true
			default:
				r.fail("Unknown fetch modifier %s", m)
			}
		})
		if a.Vanished && o.ChangedSince == 0 {
			r.fail("VANISHED without CHANGEDSINCE")
		}
	}
	return a
}

// isFetchNameChar is what a fetch item's name is made of: letters,
// digits, "." and "8" (RFC822.SIZE, BINARY.SIZE, BODY.PEEK).
func isFetchNameChar(c byte) bool {
	return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.'
}

// fetchNamed reads the rest of the fetch item called name.
func (r *Reader) fetchNamed(a *FetchArgs, name string) {
	o := a.Options
	legacy := func(s *goimap.FetchItemBodySection) {
		for len(a.RFC822) < len(o.BodySection) {
			a.RFC822 = append(a.RFC822, "")
		}
		a.RFC822 = append(a.RFC822, name)
		o.BodySection = append(o.BodySection, s)
	}
	switch name {
	case "ENVELOPE":
		o.Envelope = true
	case "FLAGS":
		o.Flags = true
	case "INTERNALDATE":
		o.InternalDate = true
	case "RFC822.SIZE":
		o.RFC822Size = true
	case "UID":
		o.UID = true
	case "MODSEQ":
		o.ModSeq = true
	case "BODYSTRUCTURE":
		o.BodyStructure = &goimap.FetchItemBodyStructure{Extended: true}
	case "RFC822":
		legacy(&goimap.FetchItemBodySection{})
	case "RFC822.HEADER":
		legacy(&goimap.FetchItemBodySection{Specifier: goimap.PartSpecifierHeader, Peek: true})
	case "RFC822.TEXT":
		legacy(&goimap.FetchItemBodySection{Specifier: goimap.PartSpecifierText})
	case "BODY", "BODY.PEEK":
		if r.peek() != '[' {
			if name == "BODY.PEEK" {
				r.fail(`Expected "[" after BODY.PEEK`)
			}
			if o.BodyStructure == nil {
				o.BodyStructure = &goimap.FetchItemBodyStructure{}
			}
			return
		}
		s := r.bodySection()
		s.Peek = name == "BODY.PEEK"
		s.Partial = r.partial()
		o.BodySection = append(o.BodySection, s)
		if a.RFC822 != nil {
			a.RFC822 = append(a.RFC822, "")
		}
	case "BINARY", "BINARY.PEEK":
		part := r.binaryPart()
		o.BinarySection = append(o.BinarySection, &goimap.FetchItemBinarySection{Part: part, Peek: name == "BINARY.PEEK", Partial: r.partial()})
	case "BINARY.SIZE":
		o.BinarySectionSize = append(o.BinarySectionSize, &goimap.FetchItemBinarySectionSize{Part: r.binaryPart()})
	default:
		r.fail("Unknown fetch item %s", name)
	}
}

// bodySection reads "[section]" of BODY[...]:
//
//	section-spec = section-msgtext / (section-part ["." section-text])
//	section-text = section-msgtext / "MIME"
func (r *Reader) bodySection() *goimap.FetchItemBodySection {
	r.expect('[', `"["`)
	s := &goimap.FetchItemBodySection{}
	if r.maybe(']') {
		return s
	}
	for c := r.peek(); c >= '0' && c <= '9'; c = r.peek() {
		n := r.number("a part number")
		if n == 0 {
			r.fail("Part number 0")
		}
		if len(s.Part) >= r.lim.MaxNesting {
			r.failCode("BAD", "LIMIT", "Part path deeper than %d", r.lim.MaxNesting)
		}
		s.Part = append(s.Part, int(n))
		if !r.maybe('.') {
			r.expect(']', `"]"`)
			return s
		}
	}
	spec := strings.ToUpper(r.token("a section", func(c byte) bool { return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c == '.' }))
	switch spec {
	case "HEADER":
		s.Specifier = goimap.PartSpecifierHeader
	case "TEXT":
		s.Specifier = goimap.PartSpecifierText
	case "MIME":
		if len(s.Part) == 0 {
			r.fail("MIME without a part number")
		}
		s.Specifier = goimap.PartSpecifierMIME
	case "HEADER.FIELDS", "HEADER.FIELDS.NOT":
		s.Specifier = goimap.PartSpecifierHeader
		r.sp()
		var fields []string
		r.list("the header field names", false, func() { fields = append(fields, r.astring("a header field name")) })
		if spec == "HEADER.FIELDS" {
			s.HeaderFields = fields
		} else {
			s.HeaderFieldsNot = fields
		}
	default:
		r.fail("Unknown section %s", spec)
	}
	r.expect(']', `"]"`)
	return s
}

// binaryPart reads BINARY's "[part]": numbers only, possibly none.
func (r *Reader) binaryPart() []int {
	r.expect('[', `"["`)
	var part []int
	if r.maybe(']') {
		return part
	}
	for {
		n := r.number("a part number")
		if n == 0 {
			r.fail("Part number 0")
		}
		if len(part) >= r.lim.MaxNesting {
			r.failCode("BAD", "LIMIT", "Part path deeper than %d", r.lim.MaxNesting)
		}
		part = append(part, int(n))
		if !r.maybe('.') {
			break
		}
	}
	r.expect(']', `"]"`)
	return part
}

// partial reads "<offset.size>" if there is one.
func (r *Reader) partial() *goimap.SectionPartial {
	if !r.maybe('<') {
		return nil
	}
	off := r.number("a partial offset")
	r.expect('.', `"." in a partial range`)
	n := r.number("a partial length")
	if n == 0 {
		r.fail("Partial length 0")
	}
	r.expect('>', `">"`)
	return &goimap.SectionPartial{Offset: int64(off), Size: int64(n)}
}
