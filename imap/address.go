package imap

import (
	"mime"
	"strings"

	goimap "github.com/emersion/go-imap/v2"
	gomessage "github.com/emersion/go-message"
)

// Address lists (RFC 5322 section 3.4 with the obsolete syntax of section
// 4.4) are parsed here rather than by go-message, whose parser (net/mail's)
// refuses groups, routes and comments where the obsolete syntax allows
// them, so that go-imap flattens groups and answers NIL for the whole
// field.
//
// parseAddressList never fails: it takes what it can from any input, in
// time and memory linear in its length, as IMAP servers do (Dovecot's
// parser is the model):
//
//   - a group ("name: a@b, c@d;") becomes a start marker, its members
//     and an end marker, RFC 3501's form (see groupStart); an empty group
//     ("undisclosed-recipients:;") is the two markers; a missing ";" is
//     supplied at the end; a group inside a group is read as its members;
//   - comments and white space may stand anywhere between tokens; a
//     bare addr-spec followed by a comment ("a@b (Ann)") takes the
//     comment as its display name, as net/mail does;
//   - a route ("<@relay1,@relay2:user@host>") is dropped: go-imap's
//     Address has no field for RFC 3501's adl, which it writes as NIL;
//   - display names, group names and comments are kept as sent: words
//     and quoted strings (unquoted, quoted pairs undone) joined as they
//     were, with one space where the field had white space or a comment,
//     and encoded words not decoded (IMAP clients decode them);
//   - a quoted local part is unquoted ("john doe"@example.org has the
//     mailbox `john doe`); CFWS around the dots of a local part or domain
//     is dropped;
//   - an address without a domain gets the host missingDomain, one
//     without a local part the mailbox missingMailbox, as Dovecot does,
//     because an address with an empty host would read as a group marker;
//     "<>" without a display name is no address at all.

// Placeholders for the parts an address lacks (Dovecot's words).
const (
	missingMailbox = "MISSING_MAILBOX"
	missingDomain  = "MISSING_DOMAIN"
)

// groupStart returns RFC 3501's start of group marker for the group name:
// an address with a NIL host whose mailbox is the name, which go-imap
// writes as (NIL NIL "name" NIL). groupEnd is the end marker, written
// (NIL NIL NIL NIL). goimap.Address's IsGroupStart and IsGroupEnd read
// them back.
func groupStart(name string) goimap.Address { return goimap.Address{Mailbox: name} }

var groupEnd = goimap.Address{}

// tokKind is the kind of a token of an address list.
type tokKind uint8

const (
	tAtom    tokKind = iota // a run of atext (and, leniently, any other byte that is not special)
	tQuoted                 // a quoted string, its text unquoted
	tLiteral                // a domain literal, its text with the brackets
	tSpecial                // one of < > @ , ; : .
	tEnd                    // the end of the input, holding the comment before it
)

// addrToken is a token of an address list.
type addrToken struct {
	kind tokKind
	text string
	// space reports white space or a comment before the token.
	space bool
	// comment is the content of the last comment before the token, if
	// any, for the display name of a bare addr-spec.
	comment string
}

func (t *addrToken) is(c byte) bool { return t.kind == tSpecial && t.text[0] == c }

// word reports whether t is a word of a phrase or of an addr-spec.
func (t *addrToken) word() bool { return t.kind == tAtom || t.kind == tQuoted || t.kind == tLiteral }

// specPart reports whether t may be part of a local part or a domain: a
// word or a dot.
func (t *addrToken) specPart() bool { return t.word() || t.is('.') }

// lexAddresses splits s into tokens, the last of which is tEnd. White
// space, line breaks and other control characters separate tokens; an
// unterminated comment, quoted string or domain literal runs to the end.
func lexAddresses(s string) []addrToken {
	var toks []addrToken
	space, comment := false, ""
	add := func(kind tokKind, text string) {
		toks = append(toks, addrToken{kind: kind, text: text, space: space, comment: comment})
		space, comment = false, ""
	}
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c <= ' ' || c == 0x7f:
			space = true
			i++
		case c == '(':
			var text string
			text, i = lexComment(s, i)
			space, comment = true, text
		case c == '"':
			var text string
			text, i = lexQuoted(s, i+1, '"')
			add(tQuoted, text)
		case c == '[':
			var text string
			text, i = lexQuoted(s, i+1, ']')
			add(tLiteral, "["+text+"]")
		case strings.IndexByte("<>@,;:.", c) >= 0:
			add(tSpecial, s[i:i+1])
			i++
		default:
			j := i + 1
			for j < len(s) && s[j] > ' ' && s[j] != 0x7f && strings.IndexByte(`(<>@,;:."[`, s[j]) < 0 {
				j++
			}
			add(tAtom, s[i:j])
			i = j
		}
	}
	add(tEnd, "")
	return toks
}

// lexComment reads the comment that starts at s[i], nested comments and
// quoted pairs included, and returns its content, trimmed, and the index
// after it.
func lexComment(s string, i int) (string, int) {
	var b strings.Builder
	depth := 0
	for ; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\' && i+1 < len(s):
			i++
			c = s[i]
		case c == '(':
			depth++
			if depth == 1 {
				continue
			}
		case c == ')':
			depth--
			if depth == 0 {
				return strings.TrimSpace(b.String()), i + 1
			}
		}
		writeText(&b, c)
	}
	return strings.TrimSpace(b.String()), i
}

// lexQuoted reads a quoted string or a domain literal from s[i], after
// its opening character, up to close, and returns its content, quoted
// pairs undone, and the index after the closing character.
func lexQuoted(s string, i int, close byte) (string, int) {
	var b strings.Builder
	for ; i < len(s); i++ {
		c := s[i]
		if c == '\\' && i+1 < len(s) {
			i++
			c = s[i]
		} else if c == close {
			return b.String(), i + 1
		}
		if close == ']' && (c == ' ' || c == '\t') {
			continue // FWS inside a domain literal
		}
		writeText(&b, c)
	}
	return b.String(), i
}

// writeText writes c to b, but not the control characters that unfolding
// leaves or that IMAP strings cannot carry (CR, LF, NUL...); a tab stays.
func writeText(b *strings.Builder, c byte) {
	if c >= ' ' && c != 0x7f || c == '\t' {
		b.WriteByte(c)
	}
}

// addrParser turns tokens into IMAP addresses.
type addrParser struct {
	toks    []addrToken
	delim   []int // per token, the index of the first delimiter (, ; : < > or the end) from it on
	i       int
	out     []goimap.Address
	inGroup bool
	marked  bool // the current group has a start marker
}

// parseAddressList parses the value of an address field (From, To...),
// raw as in the message: folded, with encoded words. It returns nil when
// the field holds no address and no group.
func parseAddressList(s string) []goimap.Address {
	p := &addrParser{toks: lexAddresses(s)}
	// Found once for all, so that an address that leaves the words after
	// it to the next (a missing comma) costs no second scan.
	p.delim = make([]int, len(p.toks))
	next := len(p.toks) - 1
	for i := len(p.toks) - 1; i >= 0; i-- {
		if t := &p.toks[i]; t.is(',') || t.is(';') || t.is(':') || t.is('<') || t.is('>') || t.kind == tEnd {
			next = i
		}
		p.delim[i] = next
	}
	for p.toks[p.i].kind != tEnd {
		t := &p.toks[p.i]
		switch {
		case t.is(','), t.is('>'): // an empty element (obs-addr-list), a stray '>'
			p.i++
		case t.is(';'):
			p.endGroup()
			p.i++
		default:
			p.address()
		}
	}
	p.endGroup()
	return p.out
}

func (p *addrParser) endGroup() {
	if p.inGroup && p.marked {
		p.out = append(p.out, groupEnd)
	}
	p.inGroup, p.marked = false, false
}

// address reads one mailbox or the start of a group from p.i, which it
// moves on by at least one token.
func (p *addrParser) address() {
	start := p.i
	j := p.delim[start]
	switch t := &p.toks[j]; {
	case t.is(':'):
		p.i = j + 1
		if p.inGroup {
			return // a group in a group: its name is dropped, its members kept
		}
		name := phraseText(p.toks[start:j])
		p.inGroup, p.marked = true, name != ""
		if p.marked {
			p.out = append(p.out, groupStart(name))
		}
	case t.is('<'):
		p.i = j + 1
		p.angle(phraseText(p.toks[start:j]))
	default:
		p.bare(start, j)
	}
}

// angle reads an angle-addr from p.i, after its "<", up to its ">" (or
// where one should have been), for the display name.
func (p *addrParser) angle(name string) {
	k := p.i
	if p.toks[k].is('@') { // obs-route, dropped
		m := k
		for t := &p.toks[m]; t.specPart() || t.is('@') || t.is(','); t = &p.toks[m] {
			m++
		}
		if p.toks[m].is(':') {
			k = m + 1
		}
	}
	end := k
	for t := &p.toks[end]; t.kind != tEnd && !t.is('>') && !t.is(',') && !t.is(';') && !t.is('<'); t = &p.toks[end] {
		end++
	}
	at := end
	for x := k; x < end; x++ {
		if p.toks[x].is('@') {
			at = x
			break
		}
	}
	local := joinTokens(p.toks[k:at])
	domain := ""
	if at < end {
		domain = joinTokens(p.toks[at+1 : end])
	}
	p.i = end
	if p.toks[end].is('>') {
		p.i++
	}
	p.emit(name, local, domain)
}

// bare reads an addr-spec without angle brackets from toks[start:end],
// which holds no delimiter, with the words before its local part as its
// display name. Words after its domain are left for the next address (a
// missing comma).
func (p *addrParser) bare(start, end int) {
	at := -1
	for x := start; x < end; x++ {
		if p.toks[x].is('@') {
			at = x
			break
		}
	}
	if at < 0 { // no domain: the whole thing is a local part
		p.i = end
		if local := phraseText(p.toks[start:end]); local != "" {
			p.emit(p.takeComment(start, end), local, "")
		}
		return
	}
	// The local part is the run of words and dots before "@", the
	// domain the run after it; two words without a dot between them
	// that white space separates are not in one run.
	ls := at
	for ls > start && (ls == at && p.toks[ls-1].specPart() || ls < at && joins(&p.toks[ls-1], &p.toks[ls])) {
		ls--
	}
	de := at + 1
	for de < end && (de == at+1 && p.toks[de].specPart() || de > at+1 && joins(&p.toks[de-1], &p.toks[de])) {
		de++
	}
	name := phraseText(p.toks[start:ls])
	if name == "" {
		name = p.takeComment(start, de)
	}
	p.i = de
	p.emit(name, joinTokens(p.toks[ls:at]), joinTokens(p.toks[at+1:de]))
}

// joins reports whether token b continues the run of token a in a local
// part or a domain.
func joins(a, b *addrToken) bool {
	if !a.specPart() || !b.specPart() {
		return false
	}
	return a.is('.') || b.is('.') || !b.space
}

// takeComment returns the last comment among the tokens after
// toks[start], up to and including toks[end], and clears it so that the
// next address does not take it too.
func (p *addrParser) takeComment(start, end int) string {
	for x := end; x > start; x-- {
		if c := p.toks[x].comment; c != "" {
			p.toks[x].comment = ""
			return c
		}
	}
	return ""
}

func (p *addrParser) emit(name, local, domain string) {
	if name == "" && local == "" && domain == "" {
		return
	}
	if local == "" {
		local = missingMailbox
	}
	if domain == "" {
		domain = missingDomain
	}
	p.out = append(p.out, goimap.Address{Name: name, Mailbox: local, Host: domain})
}

// phraseText is the text of a display name or group name: its tokens as
// they were, one space where the field had white space or a comment.
func phraseText(toks []addrToken) string {
	var b strings.Builder
	for i := range toks {
		if toks[i].space && b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(toks[i].text)
	}
	return b.String()
}

// joinTokens is the text of a local part or domain: its words and dots,
// without the white space and comments between them.
func joinTokens(toks []addrToken) string {
	var b strings.Builder
	for i := range toks {
		if toks[i].specPart() {
			b.WriteString(toks[i].text)
		}
	}
	return b.String()
}

// decodeWords decodes the encoded words of a display name, a group name
// or a header value (RFC 2047) in any charset go-message knows; on an
// error, s is returned as it is.
func decodeWords(s string) string {
	if !strings.Contains(s, "=?") {
		return s
	}
	d := mime.WordDecoder{CharsetReader: gomessage.CharsetReader}
	if v, err := d.DecodeHeader(s); err == nil {
		return v
	}
	return s
}

// addressStrings returns what SEARCH FROM, TO, CC and BCC match in an
// address field besides its raw text: for each address, its display name
// decoded and its address, as "name <mailbox@host>" or "mailbox@host"
// (a placeholder for a missing part left out), and each group's name,
// decoded.
func addressStrings(addrs []goimap.Address) []string {
	var l []string
	for i := range addrs {
		a := &addrs[i]
		if a.IsGroupEnd() {
			continue
		}
		if a.IsGroupStart() {
			l = append(l, decodeWords(a.Mailbox))
			continue
		}
		addr := a.Mailbox + "@" + a.Host
		switch {
		case a.Mailbox == missingMailbox:
			addr = "@" + a.Host
		case a.Host == missingDomain:
			addr = a.Mailbox
		}
		if a.Name != "" {
			addr = decodeWords(a.Name) + " <" + addr + ">"
		}
		l = append(l, addr)
	}
	return l
}
