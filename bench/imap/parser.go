package main

// The parser of responses, one framed response at a time, by the
// grammar of RFC 9051 section 9.

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
)

// parser walks one framed response.
type parser struct {
	b     []byte
	i     int
	err   error
	depth int
}

func (p *parser) fail(format string, args ...any) {
	if p.err == nil {
		p.err = fmt.Errorf("at byte %d: %s", p.i, fmt.Sprintf(format, args...))
	}
}

func (p *parser) peek() byte {
	if p.i < len(p.b) {
		return p.b[p.i]
	}
	return 0
}

func (p *parser) eat(c byte) bool {
	if p.err == nil && p.peek() == c && p.i < len(p.b) {
		p.i++
		return true
	}
	return false
}

func (p *parser) expect(c byte, what string) bool {
	if p.eat(c) {
		return true
	}
	if p.err == nil {
		p.fail("want %s, have %s", what, p.near())
	}
	return false
}

func (p *parser) sp() bool { return p.expect(' ', "SP") }

// near shows the bytes at the parser, for error messages.
func (p *parser) near() string {
	if p.i >= len(p.b) {
		return "end of response"
	}
	end := min(p.i+20, len(p.b))
	return strconv.Quote(string(p.b[p.i:end]))
}

func (p *parser) crlf() {
	if p.err != nil {
		return
	}
	switch {
	case p.i+2 == len(p.b) && p.b[p.i] == '\r' && p.b[p.i+1] == '\n':
		p.i += 2
	case p.i+1 == len(p.b) && p.b[p.i] == '\n':
		p.fail("bare LF ends the response")
	default:
		p.fail("want CRLF, have %s", p.near())
	}
}

func isAtomChar(c byte) bool {
	if c <= 0x1f || c >= 0x7f {
		return false
	}
	switch c {
	case '(', ')', '{', ' ', '%', '*', '"', '\\', ']':
		return false
	}
	return true
}

func isAstringChar(c byte) bool { return isAtomChar(c) || c == ']' }

// atom reads 1*ATOM-CHAR.
func (p *parser) atom() string {
	if p.err != nil {
		return ""
	}
	start := p.i
	for p.i < len(p.b) && isAtomChar(p.b[p.i]) {
		p.i++
	}
	if p.i == start {
		p.fail("want an atom, have %s", p.near())
	}
	return string(p.b[start:p.i])
}

// number reads a number (up to 2^63-1).
func (p *parser) number() uint64 {
	if p.err != nil {
		return 0
	}
	start := p.i
	for p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9' {
		p.i++
	}
	if p.i == start {
		p.fail("want a number, have %s", p.near())
		return 0
	}
	n, err := strconv.ParseUint(string(p.b[start:p.i]), 10, 63)
	if err != nil {
		p.fail("number %s out of range", p.b[start:p.i])
	}
	return n
}

// number32 reads a number of at most 2^32-1, nz if nonzero is needed.
func (p *parser) number32(nz bool) uint32 {
	n := p.number()
	if p.err != nil {
		return 0
	}
	if n > 1<<32-1 {
		p.fail("number %d beyond 2^32-1", n)
	}
	if nz && n == 0 {
		p.fail("0 where a nonzero number is due")
	}
	return uint32(n)
}

// quoted reads a quoted string.
func (p *parser) quoted() string {
	if !p.expect('"', "DQUOTE") {
		return ""
	}
	var b strings.Builder
	for p.err == nil {
		if p.i >= len(p.b) {
			p.fail("unterminated quoted string")
			break
		}
		c := p.b[p.i]
		p.i++
		switch c {
		case '"':
			return b.String()
		case '\\':
			if p.i < len(p.b) && (p.b[p.i] == '"' || p.b[p.i] == '\\') {
				b.WriteByte(p.b[p.i])
				p.i++
			} else {
				p.fail("backslash before %s in a quoted string", p.near())
			}
		case '\r', '\n', 0:
			p.i--
			p.fail("%q in a quoted string", c)
		default:
			b.WriteByte(c)
		}
	}
	return ""
}

// literal reads {n}CRLF and n bytes, or ~{n}CRLF and n bytes.
func (p *parser) literal() (data []byte, lit8 bool) {
	lit8 = p.eat('~')
	if !p.expect('{', "{") {
		return nil, lit8
	}
	n := p.number()
	if p.eat('+') {
		p.fail("a non-synchronizing literal {n+} from the server")
	}
	if !p.expect('}', "}") {
		return nil, lit8
	}
	if !p.eat('\r') || !p.eat('\n') {
		p.fail("want CRLF after the literal's size")
		return nil, lit8
	}
	if uint64(len(p.b)-p.i) < n {
		p.fail("literal of %d bytes, only %d follow", n, len(p.b)-p.i)
		return nil, lit8
	}
	data = p.b[p.i : p.i+int(n)]
	p.i += int(n)
	if !lit8 && bytes.IndexByte(data, 0) >= 0 {
		p.fail("NUL in a literal that is not a literal8 (RFC 9051 section 4.3)")
	}
	return data, lit8
}

// str reads a string: quoted or literal.
func (p *parser) str() value {
	switch p.peek() {
	case '"':
		return value{kind: vString, s: p.quoted()}
	case '{', '~':
		d, l8 := p.literal()
		return value{kind: vString, s: string(d), octet: true, lit8: l8}
	}
	p.fail("want a string, have %s", p.near())
	return value{}
}

func (p *parser) peekNIL() bool {
	if p.i+3 > len(p.b) || !strings.EqualFold(string(p.b[p.i:p.i+3]), "NIL") {
		return false
	}
	return p.i+3 == len(p.b) || !isAstringChar(p.b[p.i+3])
}

// astring reads an atom with "]" allowed, or a string.
func (p *parser) astring() string {
	switch p.peek() {
	case '"', '{', '~':
		return p.str().s
	}
	if p.err != nil {
		return ""
	}
	start := p.i
	for p.i < len(p.b) && isAstringChar(p.b[p.i]) {
		p.i++
	}
	if p.i == start {
		p.fail("want an astring, have %s", p.near())
	}
	return string(p.b[start:p.i])
}

// mailbox reads a mailbox name: an astring, where atoms may hold % and *
// in LIST responses (list-mailbox is for commands; responses send
// mailbox = "INBOX" / astring).
func (p *parser) mailbox() string { return p.astring() }

// text reads the rest of the line: 1*TEXT-CHAR (any byte but CR, LF, NUL).
func (p *parser) text() string {
	start := p.i
	for p.i < len(p.b) && p.b[p.i] != '\r' && p.b[p.i] != '\n' {
		if p.b[p.i] == 0 {
			p.fail("NUL in text")
			return ""
		}
		p.i++
	}
	return string(p.b[start:p.i])
}

// flag reads a flag: \atom, atom, or \* when star.
func (p *parser) flag(star bool) string {
	if p.eat('\\') {
		if star && p.eat('*') {
			return `\*`
		}
		return `\` + p.atom()
	}
	return p.atom()
}

// flagList reads "(" [flag *(SP flag)] ")".
func (p *parser) flagList(star bool) []string {
	if !p.expect('(', "(") {
		return nil
	}
	flags := []string{}
	if p.eat(')') {
		return flags
	}
	for p.err == nil {
		flags = append(flags, p.flag(star))
		if p.eat(')') {
			return flags
		}
		p.sp()
	}
	return nil
}

// val reads a generic value: a list, a string, NIL, a number or an atom.
func (p *parser) val() value {
	if p.err != nil {
		return value{}
	}
	switch c := p.peek(); {
	case c == '(':
		if p.depth++; p.depth > maxDepth {
			p.fail("lists nested more than %d deep", maxDepth)
			return value{}
		}
		defer func() { p.depth-- }()
		p.i++
		v := value{kind: vList, list: []value{}}
		if p.eat(')') {
			return v
		}
		for p.err == nil {
			v.list = append(v.list, p.val())
			if p.eat(')') {
				return v
			}
			// Lists follow each other with no SP between them in
			// body-type-mpart and in an envelope's address lists.
			if v.list[len(v.list)-1].kind == vList && p.peek() == '(' {
				continue
			}
			p.sp()
		}
		return value{}
	case c == '"', c == '{', c == '~':
		return p.str()
	case p.peekNIL():
		p.i += 3
		return value{kind: vNil}
	case c >= '0' && c <= '9':
		start := p.i
		n := p.number()
		if p.i < len(p.b) && isAtomChar(p.b[p.i]) {
			p.i = start
			return value{kind: vAtom, s: p.atom()}
		}
		return value{kind: vNumber, n: n}
	case c == '\\':
		p.i++
		return value{kind: vAtom, s: `\` + p.atom()}
	}
	return value{kind: vAtom, s: p.atom()}
}

// seqSet reads a sequence set without "*" (uid-set, ESEARCH's ALL), in
// the order given.
func (p *parser) seqSet() []uint32 {
	var out []uint32
	for p.err == nil {
		lo := p.number32(true)
		hi := lo
		if p.eat(':') {
			hi = p.number32(true)
		}
		if lo > hi {
			lo, hi = hi, lo
		}
		if uint64(len(out))+uint64(hi-lo)+1 > maxSetSize {
			p.fail("a set of more than %d numbers", maxSetSize)
			return nil
		}
		for n := uint64(lo); n <= uint64(hi); n++ {
			out = append(out, uint32(n))
		}
		if !p.eat(',') {
			break
		}
	}
	return out
}

// parseResponse parses one framed response. It never fails: a response
// that does not parse comes back with err set.
func parseResponse(b []byte) *response {
	p := &parser{b: b}
	r := &response{raw: b}
	switch {
	case p.eat('+'):
		r.tag, r.kind = "+", "+"
		if p.sp() {
			r.text = p.text()
		}
		p.crlf()
	case p.eat('*'):
		r.tag = "*"
		if p.sp() {
			p.untagged(r)
		}
	default:
		start := p.i
		for p.i < len(p.b) && isAstringChar(p.b[p.i]) && p.b[p.i] != '+' {
			p.i++
		}
		if p.i == start {
			p.fail("want a tag, * or +, have %s", p.near())
			break
		}
		r.tag = string(p.b[start:p.i])
		if !p.sp() {
			break
		}
		r.kind = strings.ToUpper(p.atom())
		switch r.kind {
		case "OK", "NO", "BAD":
			p.respText(r)
		default:
			if p.err == nil {
				p.fail("tagged %q, want OK, NO or BAD", r.kind)
			}
		}
	}
	r.err = p.err
	return r
}

func (p *parser) untagged(r *response) {
	if c := p.peek(); c >= '0' && c <= '9' {
		r.num = p.number32(false)
		p.sp()
		r.kind = strings.ToUpper(p.atom())
		switch r.kind {
		case "EXISTS", "RECENT":
			p.crlf()
		case "EXPUNGE":
			if r.num == 0 {
				p.fail("* 0 EXPUNGE")
			}
			p.crlf()
		case "FETCH":
			if r.num == 0 {
				p.fail("* 0 FETCH")
			}
			if p.sp() {
				r.fetch = p.msgAtt()
			}
			p.crlf()
		default:
			if p.err == nil {
				p.fail("unknown response * n %s", r.kind)
			}
		}
		return
	}
	r.kind = strings.ToUpper(p.atom())
	switch r.kind {
	case "OK", "NO", "BAD", "BYE", "PREAUTH":
		p.respText(r)
	case "FLAGS":
		p.sp()
		r.flags = p.flagList(false)
		p.crlf()
	case "LIST", "LSUB":
		p.sp()
		r.list = p.listData()
		p.crlf()
	case "STATUS":
		p.sp()
		r.stat = p.statusData()
		p.crlf()
	case "SEARCH":
		r.search = []uint32{}
		for p.eat(' ') {
			if p.peek() == '(' { // (MODSEQ n), CONDSTORE
				p.val()
				break
			}
			r.search = append(r.search, p.number32(true))
		}
		p.crlf()
	case "ESEARCH":
		p.esearch(r)
		p.crlf()
	case "CAPABILITY", "ENABLED":
		for p.eat(' ') {
			r.caps = append(r.caps, strings.ToUpper(p.atom()))
		}
		p.crlf()
	case "NAMESPACE", "ID":
		for p.eat(' ') {
			r.extraVals = append(r.extraVals, p.val())
		}
		p.crlf()
	default:
		if p.err == nil {
			p.fail("unknown untagged response %q", r.kind)
		}
	}
}

// respText reads SP ["[" resp-text-code "]" [SP text]] / SP text, then CRLF.
func (p *parser) respText(r *response) {
	if p.i+2 == len(p.b) { // RFC 9051 makes the text optional, not the SP
		p.fail("no SP and text after %s", r.kind)
		return
	}
	if !p.sp() {
		return
	}
	if p.eat('[') {
		p.respCode(r)
		if !p.expect(']', "]") {
			return
		}
		if p.eat(' ') {
			r.text = p.text()
		}
	} else {
		r.text = p.text()
	}
	p.crlf()
}

func (p *parser) respCode(r *response) {
	r.code = strings.ToUpper(p.atom())
	switch r.code {
	case "UIDNEXT", "UIDVALIDITY", "UNSEEN":
		p.sp()
		r.codeNum = p.number32(true)
	case "PERMANENTFLAGS":
		p.sp()
		r.codeList = p.flagList(true)
	case "CAPABILITY":
		for p.eat(' ') {
			r.codeList = append(r.codeList, strings.ToUpper(p.atom()))
		}
	case "APPENDUID":
		p.sp()
		r.codeNum = p.number32(true)
		p.sp()
		r.codeDst = p.seqSet()
	case "COPYUID":
		p.sp()
		r.codeNum = p.number32(true)
		p.sp()
		r.codeSrc = p.seqSet()
		p.sp()
		r.codeDst = p.seqSet()
	case "BADCHARSET":
		if p.eat(' ') {
			p.val()
		}
	case "HIGHESTMODSEQ":
		p.sp()
		p.number()
	default: // atom [SP 1*<any TEXT-CHAR except "]">]
		if p.eat(' ') {
			start := p.i
			for p.i < len(p.b) && p.b[p.i] != ']' && p.b[p.i] != '\r' && p.b[p.i] != '\n' {
				p.i++
			}
			if p.i == start {
				p.fail("empty response code argument")
			}
		}
	}
}

func (p *parser) listData() *listData {
	l := &listData{}
	if !p.expect('(', "(") {
		return l
	}
	if !p.eat(')') {
		for p.err == nil {
			if !p.expect('\\', `\`) {
				return l
			}
			l.attrs = append(l.attrs, `\`+p.atom())
			if p.eat(')') {
				break
			}
			p.sp()
		}
	}
	p.sp()
	if p.peekNIL() {
		p.i += 3
	} else {
		d := p.quoted()
		if p.err == nil && len(d) != 1 {
			p.fail("hierarchy delimiter %q is not one character", d)
		}
		l.delim = d
	}
	p.sp()
	l.name = p.mailbox()
	if p.eat(' ') { // mbox-list-extended
		if v := p.val(); p.err == nil && v.kind != vList {
			p.fail("LIST extended data is not a list")
		}
	}
	return l
}

func (p *parser) statusData() *statusData {
	s := &statusData{items: map[string]uint64{}}
	s.name = p.mailbox()
	p.sp()
	if !p.expect('(', "(") {
		return s
	}
	if p.eat(')') {
		return s
	}
	for p.err == nil {
		k := strings.ToUpper(p.atom())
		p.sp()
		if _, dup := s.items[k]; dup && p.err == nil {
			p.fail("STATUS item %s twice", k)
		}
		s.items[k] = p.number()
		s.order = append(s.order, k)
		if p.eat(')') {
			return s
		}
		p.sp()
	}
	return s
}

func (p *parser) esearch(r *response) {
	r.search = []uint32{}
	if !p.eat(' ') {
		return
	}
	if p.eat('(') { // search-correlator
		if k := p.atom(); p.err == nil && !strings.EqualFold(k, "TAG") {
			p.fail("search correlator %q, want TAG", k)
		}
		p.sp()
		r.esTag, r.esHasTag = p.str().s, true
		p.expect(')', ")")
		if !p.eat(' ') {
			return
		}
	}
	for p.err == nil {
		k := strings.ToUpper(p.atom())
		if k == "UID" && len(r.search) == 0 && !r.esUID {
			r.esUID = true
			if !p.eat(' ') {
				return
			}
			continue
		}
		p.sp()
		switch k {
		case "ALL":
			r.search = append(r.search, p.seqSet()...)
		case "MIN", "MAX":
			p.number32(true)
		case "COUNT":
			p.number()
		default:
			p.val()
		}
		if !p.eat(' ') {
			return
		}
	}
}

// msgAtt reads a FETCH response's "(" att SP value *(SP att SP value) ")".
func (p *parser) msgAtt() *fetchData {
	f := &fetchData{}
	if !p.expect('(', "(") {
		return f
	}
	for p.err == nil {
		start := p.i
		for p.i < len(p.b) && isAtomChar(p.b[p.i]) && p.b[p.i] != '[' {
			p.i++
		}
		name := strings.ToUpper(string(p.b[start:p.i]))
		if name == "" {
			p.fail("want a FETCH item, have %s", p.near())
			return f
		}
		switch name {
		case "FLAGS":
			p.sp()
			f.flags, f.hasFlags = p.flagList(false), true
		case "UID":
			p.sp()
			f.uid, f.hasUID = p.number32(true), true
		case "RFC822.SIZE":
			p.sp()
			f.size, f.hasSize = p.number(), true
		case "INTERNALDATE":
			p.sp()
			f.date = p.quoted()
			if p.err == nil {
				if err := checkDateTime(f.date); err != nil {
					p.fail("INTERNALDATE %q: %v", f.date, err)
				}
			}
		case "ENVELOPE":
			p.sp()
			v := p.val()
			if p.err == nil {
				if err := checkEnvelope(v); err != nil {
					p.fail("ENVELOPE: %v", err)
				}
			}
			f.envelope = &v
		case "MODSEQ":
			p.sp()
			p.val()
		case "RFC822", "RFC822.HEADER", "RFC822.TEXT":
			p.sp()
			p.sectionValue(f, name, -1)
		case "BODY", "BODYSTRUCTURE", "BINARY", "BINARY.SIZE":
			if p.peek() != '[' {
				if name != "BODY" && name != "BODYSTRUCTURE" {
					p.fail("%s without a section", name)
					return f
				}
				p.sp()
				v := p.val()
				if p.err == nil {
					if err := checkBody(v, 0); err != nil {
						p.fail("%s: %v", name, err)
					}
				}
				f.body = &v
				break
			}
			if name == "BODYSTRUCTURE" {
				p.fail("BODYSTRUCTURE with a section")
				return f
			}
			sec := p.section(name != "BODY")
			origin := int64(-1)
			if p.eat('<') {
				origin = int64(p.number())
				p.expect('>', ">")
			}
			p.sp()
			key := name + "[" + sec + "]"
			if name == "BINARY.SIZE" {
				p.number()
				break
			}
			p.sectionValue(f, key, origin)
		default:
			p.fail("unknown FETCH item %s", name)
			return f
		}
		f.names = append(f.names, name)
		if p.eat(')') {
			return f
		}
		p.sp()
	}
	return f
}

func (p *parser) sectionValue(f *fetchData, key string, origin int64) {
	var s section
	s.origin = origin
	if p.peekNIL() {
		p.i += 3
		s.isNil = true
	} else {
		v := p.str()
		if v.lit8 && !strings.HasPrefix(key, "BINARY") {
			p.fail("a literal8 for %s (only BINARY may send one)", key)
		}
		s.data, s.lit8 = []byte(v.s), v.lit8
	}
	if f.sections == nil {
		f.sections = map[string]section{}
	}
	f.sections[key] = s
}

// section reads "[" section-spec "]" and returns what is inside, upper
// case. binary says it is a section-binary: part numbers only.
func (p *parser) section(binary bool) string {
	if !p.expect('[', "[") {
		return ""
	}
	start := p.i
	depth := 0
	for p.err == nil {
		if p.i >= len(p.b) {
			p.fail("unterminated section")
			return ""
		}
		c := p.b[p.i]
		switch {
		case c == '"':
			p.quoted()
			continue
		case c == '(':
			depth++
		case c == ')':
			depth--
		case c == ']' && depth == 0:
			sec := strings.ToUpper(string(p.b[start:p.i]))
			p.i++
			if err := checkSection(sec, binary); err != nil {
				p.fail("section [%s]: %v", sec, err)
			}
			return sec
		case c == '\r' || c == '\n':
			p.fail("line ends inside a section")
			return ""
		}
		p.i++
	}
	return ""
}
