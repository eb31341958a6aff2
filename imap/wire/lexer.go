package wire

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"
)

// peek returns the next byte without taking it; the end of the input
// there is fatal (io.ErrUnexpectedEOF), as a command is cut short.
func (r *Reader) peek() byte {
	b, err := r.br.Peek(1)
	if err != nil {
		if errors.Is(err, io.EOF) {
			r.fatal(io.ErrUnexpectedEOF)
		}
		r.fatal(err)
	}
	return b[0]
}

// next takes the next byte, counting it against MaxLine.
func (r *Reader) next() byte {
	c, err := r.br.ReadByte()
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		r.fatal(err)
	}
	r.line++
	if r.line > r.lim.MaxLine {
		r.br.UnreadByte()
		r.line--
		r.failCode("BAD", "LIMIT", "Command longer than %d bytes", r.lim.MaxLine)
	}
	return c
}

// expect takes byte c or fails naming what was expected.
func (r *Reader) expect(c byte, what string) {
	if got := r.peek(); got != c {
		r.fail("Expected %s, got %s", what, describe(got))
	}
	r.next()
	switch c {
	case ')':
		r.last = `")"`
	case ']':
		r.last = `"]"`
	case '>':
		r.last = `">"`
	}
}

// sp takes a space.
// The error names what came before: "Expected SP after the mailbox
// name, got the end of the line".
func (r *Reader) sp() {
	if r.peek() == ' ' {
		r.next()
		return
	}
	if r.last == "" {
		r.expect(' ', "SP")
		return
	}
	r.expect(' ', "SP after "+the(r.last))
}

// the makes "a mailbox name" "the mailbox name", for sp's errors.
func the(what string) string {
	if rest, ok := strings.CutPrefix(what, "a "); ok {
		return "the " + rest
	}
	if rest, ok := strings.CutPrefix(what, "an "); ok {
		return "the " + rest
	}
	return what
}

// maybe takes byte c if it is next.
func (r *Reader) maybe(c byte) bool {
	if r.peek() == c {
		r.next()
		return true
	}
	return false
}

// atCRLF reports whether the command ends here.
func (r *Reader) atCRLF() bool {
	c := r.peek()
	return c == '\r' || c == '\n'
}

// crlf takes the end of the command (CRLF, or a bare LF).
func (r *Reader) crlf() {
	if r.peek() == '\r' {
		r.next()
	}
	if r.peek() != '\n' {
		if r.last != "" {
			r.fail("Expected CRLF after %s, got %s", the(r.last), describe(r.peek()))
		}
		r.fail("Expected CRLF, got %s", describe(r.peek()))
	}
	r.next()
	r.atEnd = true
}

// describe names a byte for an error message.
func describe(c byte) string {
	switch {
	case c == '\r' || c == '\n':
		return "the end of the line"
	case c == ' ':
		return "SP"
	case c < 0x20 || c >= 0x7F:
		return fmt.Sprintf("byte 0x%02X", c)
	}
	return strconv.Quote(string(c))
}

// literalHeader reads a literal's announcement after its "{" (the "~" of
// a literal8 already taken): the size, whether it is synchronizing, and
// the CRLF.
func (r *Reader) literalHeader() (n int64, sync bool) {
	digits := 0
	for c := r.peek(); c >= '0' && c <= '9'; c = r.peek() {
		r.next()
		if n > (1<<62)/10 {
			r.fail("Literal size too large")
		}
		n = n*10 + int64(c-'0')
		digits++
	}
	if digits == 0 {
		r.fail("Expected the literal's size")
	}
	sync = true
	switch r.peek() {
	case '+':
		r.next()
		sync = false
	case '-':
		r.next()
		sync = false
		if n > 4096 {
			// LITERAL- (RFC 7888): the client broke the rule; its
			// bytes follow all the same, and are dropped.
			r.refuseLiteral(n, false, "BAD", "", "A non-synchronizing literal over 4096 bytes (LITERAL-)")
		}
	}
	r.expect('}', `"}"`)
	if r.peek() == '\r' {
		r.next()
	}
	r.expect('\n', "CRLF after the literal's size")
	return n, sync
}

// refuseLiteral refuses a literal whose header has been read, with an
// *Error of type typ: a non-synchronizing one is read and dropped (within
// DiscardLimit) and the command fails with the error, its rest skipped;
// a synchronizing one is refused through the Continuer, and the command
// ends there, as the client abandons it.
func (r *Reader) refuseLiteral(n int64, sync bool, typ, code, text string) {
	e := &Error{Tag: r.tag, Type: typ, Code: code, Text: text}
	if !sync {
		if err := r.discard(n); err != nil {
			r.fatal(err)
		}
		if _, err := r.br.Discard(int(n)); err != nil {
			r.fatal(eofIsUnexpected(err))
		}
		panic(stop{e})
	}
	r.atEnd = true
	if err := r.cont.Refuse(r.tag, e); err != nil {
		r.fatal(err)
	}
	r.fatal(errSkipped)
}

// maxLiterals is the bound of a command's literals held in memory.
func (r *Reader) maxLiterals() int64 { return max(r.lim.MaxLiteral, DiscardLimit) }

// literal reads a literal after its "{", into memory, within MaxLiteral
// and maxLiterals.
func (r *Reader) literal() []byte {
	n, sync := r.literalHeader()
	switch {
	case n > r.lim.MaxLiteral:
		r.refuseLiteral(n, sync, "NO", "TOOBIG", fmt.Sprintf("Literal of %d bytes over the limit of %d", n, r.lim.MaxLiteral))
	case r.literals+n > r.maxLiterals():
		r.refuseLiteral(n, sync, "NO", "TOOBIG", fmt.Sprintf("The command's literals over %d bytes", r.maxLiterals()))
	}
	if sync {
		if err := r.cont.Continue("Ready"); err != nil {
			r.fatal(err)
		}
	}
	r.literals += n
	b := make([]byte, n)
	if _, err := io.ReadFull(r.br, b); err != nil {
		r.fatal(eofIsUnexpected(err))
	}
	return b
}

// isAtomChar reports whether c is an ATOM-CHAR (RFC 9051 section 9).
func isAtomChar(c byte) bool {
	if c <= 0x20 || c >= 0x7F {
		return false
	}
	switch c {
	case '(', ')', '{', '%', '*', '"', '\\', ']':
		return false
	}
	return true
}

// isAStringChar is ATOM-CHAR or resp-specials ("]").
func isAStringChar(c byte) bool { return isAtomChar(c) || c == ']' }

// atom reads an atom (at least one ATOM-CHAR).
func (r *Reader) atom(what string) string {
	return r.token(what, isAtomChar)
}

// token reads one or more bytes for which ok is true.
func (r *Reader) token(what string, ok func(byte) bool) string {
	var b []byte // the token's bytes before the buffer's end, if it spans a refill
	for {
		if r.br.Buffered() == 0 {
			r.peek() // fills the buffer, or stops at the end of the input
		}
		buf, _ := r.br.Peek(r.br.Buffered())
		n := 0
		for n < len(buf) && ok(buf[n]) {
			n++
		}
		if r.line+n > r.lim.MaxLine {
			r.failCode("BAD", "LIMIT", "Command longer than %d bytes", r.lim.MaxLine)
		}
		r.line += n
		if n < len(buf) {
			var s string
			if b == nil {
				s = intern(buf[:n])
			} else {
				s = string(append(b, buf[:n]...))
			}
			r.br.Discard(n)
			r.last = what
			if s == "" {
				r.fail("Expected %s, got %s", what, describe(buf[0]))
			}
			return s
		}
		b = append(b, buf...)
		r.br.Discard(n)
	}
}

// number reads a number (RFC 9051: 32-bit unsigned).
func (r *Reader) number(what string) uint32 {
	v := r.number64(what)
	if v > 1<<32-1 {
		r.fail("Expected %s, got a number out of range", what)
	}
	return uint32(v)
}

// number64 reads a 63-bit number (mod-sequence-value).
func (r *Reader) number64(what string) uint64 {
	r.last = what
	var v uint64
	digits := 0
	for c := r.peek(); c >= '0' && c <= '9'; c = r.peek() {
		r.next()
		if v > (1<<63-1)/10 {
			r.fail("Expected %s, got a number out of range", what)
		}
		v = v*10 + uint64(c-'0')
		digits++
	}
	if digits == 0 {
		r.fail("Expected %s, got %s", what, describe(r.peek()))
	}
	return v
}

// quoted reads a quoted string after its opening quote.
func (r *Reader) quoted() string {
	// The common case: the string and its closing quote are buffered,
	// with no escape.
	if r.br.Buffered() == 0 {
		r.peek()
	}
	buf, _ := r.br.Peek(r.br.Buffered())
	for i, c := range buf {
		if c == '"' {
			if r.line+i+1 > r.lim.MaxLine {
				break // the byte by byte loop stops at the limit
			}
			s := string(buf[:i])
			r.br.Discard(i + 1)
			r.line += i + 1
			r.check8bit(s)
			return s
		}
		if c == '\\' || c == '\r' || c == '\n' || c == 0 {
			break
		}
	}
	var b []byte
	for {
		c := r.next()
		switch c {
		case '"':
			s := string(b)
			r.check8bit(s)
			return s
		case '\\':
			e := r.next()
			if e != '"' && e != '\\' {
				r.fail("Invalid escape %s in a quoted string (only \\\" and \\\\)", describe(e))
			}
			b = append(b, e)
		case '\r', '\n':
			r.fail("CR or LF in a quoted string")
		case 0:
			r.fail("NUL in a quoted string")
		default:
			b = append(b, c)
		}
	}
}

// check8bit refuses 8-bit bytes in a quoted string unless in UTF-8
// mode, and invalid UTF-8 in it.
func (r *Reader) check8bit(s string) {
	switch {
	case !r.utf8 && !isASCII(s):
		r.fail("8-bit character in a quoted string without UTF8=ACCEPT")
	case r.utf8 && !utf8.ValidString(s):
		r.fail("Invalid UTF-8 in a quoted string")
	}
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// str reads a string: quoted or a literal.
func (r *Reader) str(what string) string {
	r.last = what
	switch r.peek() {
	case '"':
		r.next()
		return r.quoted()
	case '{':
		r.next()
		b := r.literal()
		if bytes.IndexByte(b, 0) >= 0 {
			r.fail("NUL in a literal")
		}
		return string(b)
	}
	r.fail("Expected %s (a string), got %s", what, describe(r.peek()))
	return ""
}

// astring reads an astring: an atom of ASTRING-CHARs, or a string.
func (r *Reader) astring(what string) string {
	switch r.peek() {
	case '"', '{':
		return r.str(what)
	}
	return r.token(what, isAStringChar)
}

// nstring reads a string or NIL.
func (r *Reader) nstring(what string) (string, bool) {
	switch r.peek() {
	case '"', '{':
		return r.str(what), true
	}
	if a := r.atom(what); !strings.EqualFold(a, "NIL") {
		r.fail("Expected %s (a string or NIL), got %q", what, a)
	}
	return "", false
}

// listOpen takes "(" and counts the nesting.
func (r *Reader) listOpen(what string) {
	if r.peek() != '(' {
		r.expect('(', `"(" to open `+what)
	}
	r.next()
	r.nest()
}

func (r *Reader) nest() {
	r.depth++
	if r.depth > r.lim.MaxNesting {
		r.failCode("BAD", "LIMIT", "Nested more than %d levels deep", r.lim.MaxNesting)
	}
}

// list reads a parenthesized list of elements separated by SP; an empty
// list is allowed if empty.
func (r *Reader) list(what string, empty bool, elem func()) {
	r.listOpen(what)
	if r.maybe(')') {
		if !empty {
			r.fail("Expected %s, got an empty list", what)
		}
		r.depth--
		r.last = what
		return
	}
	for {
		elem()
		if r.maybe(')') {
			r.depth--
			r.last = what
			return
		}
		r.sp()
	}
}

// intern returns b as a string, without allocating for the words clients
// send in most commands (fetch items, header field names, flags).
func intern(b []byte) string {
	switch string(b) { // no allocation: the compiler compares the bytes
	case "UID":
		return "UID"
	case "FLAGS":
		return "FLAGS"
	case "INTERNALDATE":
		return "INTERNALDATE"
	case "RFC822.SIZE":
		return "RFC822.SIZE"
	case "BODY.PEEK":
		return "BODY.PEEK"
	case "ENVELOPE":
		return "ENVELOPE"
	case "BODYSTRUCTURE":
		return "BODYSTRUCTURE"
	case "MODSEQ":
		return "MODSEQ"
	case "FROM":
		return "FROM"
	case "TO":
		return "TO"
	case "CC":
		return "CC"
	case "BCC":
		return "BCC"
	case "SUBJECT":
		return "SUBJECT"
	case "DATE":
		return "DATE"
	case "MESSAGE-ID":
		return "MESSAGE-ID"
	case "REFERENCES":
		return "REFERENCES"
	case "IN-REPLY-TO":
		return "IN-REPLY-TO"
	case "CONTENT-TYPE":
		return "CONTENT-TYPE"
	case "REPLY-TO":
		return "REPLY-TO"
	case "PRIORITY":
		return "PRIORITY"
	case "X-PRIORITY":
		return "X-PRIORITY"
	case "NEWSGROUPS":
		return "NEWSGROUPS"
	case "INBOX":
		return "INBOX"
	}
	return string(b)
}
