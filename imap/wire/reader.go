package wire

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Limits bound what a Reader accepts of one command. A zero field means
// its default (DefaultLimits).
type Limits struct {
	// MaxLine bounds a command's bytes outside its literals.
	MaxLine int
	// MaxLiteral bounds one literal of a command other than an APPEND's
	// message (which NextAppend bounds by its argument), and
	// MaxLiterals all of them in one command.
	MaxLiteral  int64
	MaxLiterals int64
	// MaxNesting bounds the nesting of parenthesized lists and of the
	// NOT and OR search keys.
	MaxNesting int
	// MaxSetRanges bounds the ranges of one sequence set.
	MaxSetRanges int
	// MaxDiscard bounds what a Reader reads and drops after a command it
	// refused: the rest of an overlong line, non-synchronizing literals
	// over their limit. Past it, reading fails with ErrTooMuch.
	MaxDiscard int64
}

// DefaultLimits returns the limits a zero Limits stands for.
func DefaultLimits() Limits {
	return Limits{MaxLine: 64 << 10, MaxLiteral: 64 << 10, MaxLiterals: 1 << 20, MaxNesting: 100, MaxSetRanges: 10_000, MaxDiscard: 1 << 20}
}

// Validate reports a negative limit.
func (l Limits) Validate() error {
	var errs []error
	for _, f := range []struct {
		name string
		v    int64
	}{
		{"MaxLine", int64(l.MaxLine)}, {"MaxLiteral", l.MaxLiteral}, {"MaxLiterals", l.MaxLiterals},
		{"MaxNesting", int64(l.MaxNesting)}, {"MaxSetRanges", int64(l.MaxSetRanges)}, {"MaxDiscard", l.MaxDiscard},
	} {
		if f.v < 0 {
			errs = append(errs, fmt.Errorf("wire: negative %s %d", f.name, f.v))
		}
	}
	return errors.Join(errs...)
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	if l.MaxLine == 0 {
		l.MaxLine = d.MaxLine
	}
	if l.MaxLiteral == 0 {
		l.MaxLiteral = d.MaxLiteral
	}
	if l.MaxLiterals == 0 {
		l.MaxLiterals = d.MaxLiterals
	}
	if l.MaxNesting == 0 {
		l.MaxNesting = d.MaxNesting
	}
	if l.MaxSetRanges == 0 {
		l.MaxSetRanges = d.MaxSetRanges
	}
	if l.MaxDiscard == 0 {
		l.MaxDiscard = d.MaxDiscard
	}
	return l
}

// Error is a command the Reader refused: the server answers it with a
// tagged status response of Type (BAD, or NO for a literal over its
// limit) with Code (none, or a response code such as TOOBIG or LIMIT)
// and Text. The stream is at the next command.
type Error struct {
	Tag  string // "" if the command had none; the server answers "*"
	Type string // "BAD" or "NO"
	Code string // a response code without brackets, or ""
	Text string
}

func (e *Error) Error() string {
	if e.Code != "" {
		return fmt.Sprintf("%s [%s] %s", e.Type, e.Code, e.Text)
	}
	return e.Type + " " + e.Text
}

// Fatal errors: after them the connection cannot go on.
var (
	// ErrTooMuch is returned when a refused command would have the
	// Reader drop more than Limits.MaxDiscard bytes.
	ErrTooMuch = errors.New("wire: command too large to skip")
)

// Continuer writes the continuation request ("+ text") that a
// synchronizing literal needs before the client sends it, and flushes it.
type Continuer interface {
	Continue(text string) error
}

// Reader reads client commands. It is not safe for concurrent use.
type Reader struct {
	br   *bufio.Reader
	lim  Limits
	cont Continuer
	utf8 bool

	// Per command.
	tag         string
	line        int   // bytes read outside literals
	literals    int64 // bytes of literals held in memory
	depth       int
	atEnd       bool        // the command's bytes are all read: no skipping on an error
	inAppend    bool        // NextAppend may be called
	body        *appendBody // the APPEND message being read
	appended    bool        // a message of the APPEND was returned
	appendParen bool        // a ")" closes the message's UTF8 (~{n})
}

// NewReader returns a Reader of commands from br, within lim, announcing
// synchronizing literals to cont.
func NewReader(br *bufio.Reader, lim Limits, cont Continuer) *Reader {
	return &Reader{br: br, lim: lim.withDefaults(), cont: cont}
}

// SetUTF8 makes mailbox names UTF-8 and lets quoted strings hold UTF-8
// (RFC 6855, RFC 9051), from the next command on.
func (r *Reader) SetUTF8(on bool) { r.utf8 = on }

// Reset makes r read from br, after STARTTLS or COMPRESS.
func (r *Reader) Reset(br *bufio.Reader) { r.br = br }

// Buffered is the number of bytes read from the connection that no
// command has taken yet: after STARTTLS or COMPRESS there must be none.
func (r *Reader) Buffered() int { return r.br.Buffered() }

// stop is what the parsing functions panic with; the Reader's methods
// recover it.
type stop struct{ err error }

// fail stops the command with a BAD.
func (r *Reader) fail(format string, args ...any) {
	panic(stop{&Error{Tag: r.tag, Type: "BAD", Text: fmt.Sprintf(format, args...)}})
}

// failCode stops the command with a status of type typ and a code.
func (r *Reader) failCode(typ, code, format string, args ...any) {
	panic(stop{&Error{Tag: r.tag, Type: typ, Code: code, Text: fmt.Sprintf(format, args...)}})
}

// fatal stops with an error after which the connection ends.
func (r *Reader) fatal(err error) {
	panic(stop{err})
}

// run calls parse, turning its panics back into errors; after a refused
// command it reads and drops the rest of it.
func (r *Reader) run(parse func()) (err error) {
	defer func() {
		x := recover()
		if x == nil {
			return
		}
		s, ok := x.(stop)
		if !ok {
			panic(x)
		}
		err = s.err
		var e *Error
		if errors.As(err, &e) {
			r.inAppend = false
			if !r.atEnd {
				if serr := r.skipCommand(); serr != nil {
					err = serr
				}
			}
			r.atEnd = true
		}
	}()
	parse()
	return nil
}

// peek returns the next byte without taking it; 0 at the end of input.
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
}

// sp takes a space.
func (r *Reader) sp() { r.expect(' ', "SP") }

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

// skipCommand reads and drops the rest of a refused command: to the end
// of its line, and on past each non-synchronizing literal the line
// announces ({n+} or {n-}) and the line after it. A synchronizing
// literal ends it: the client waits for a continuation that will not
// come, and abandons the command.
func (r *Reader) skipCommand() error {
	budget := r.lim.MaxDiscard
	var tail []byte // the end of the line, for its literal marker
	for {
		chunk, err := r.br.ReadSlice('\n')
		if len(chunk) > 0 {
			budget -= int64(len(chunk))
			tail = append(tail, chunk...)
			if len(tail) > 32 {
				tail = tail[len(tail)-32:]
			}
		}
		if budget < 0 {
			return ErrTooMuch
		}
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case err != nil:
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return err
		}
		n, sync, ok := literalMarker(tail)
		tail = tail[:0]
		if !ok || sync {
			return nil
		}
		if n > budget {
			return ErrTooMuch
		}
		if _, err := r.br.Discard(int(n)); err != nil {
			return err
		}
		budget -= n
	}
}

// literalMarker parses the literal announcement at the end of a line
// ("{12}\r\n", "{12+}\r\n", "~{12}\n"...).
func literalMarker(line []byte) (n int64, sync, ok bool) {
	line = bytes.TrimSuffix(line, []byte("\n"))
	line = bytes.TrimSuffix(line, []byte("\r"))
	if !bytes.HasSuffix(line, []byte("}")) {
		return 0, false, false
	}
	i := bytes.LastIndexByte(line, '{')
	if i < 0 {
		return 0, false, false
	}
	num := line[i+1 : len(line)-1]
	sync = true
	if len(num) > 0 && (num[len(num)-1] == '+' || num[len(num)-1] == '-') {
		num, sync = num[:len(num)-1], false
	}
	v, err := strconv.ParseInt(string(num), 10, 64)
	if err != nil || v < 0 {
		return 0, false, false
	}
	return v, sync, true
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

// refuseLiteral refuses a literal whose header has been read: its bytes
// are dropped if the client sends them anyway (non-synchronizing), and
// the rest of the command after it too.
func (r *Reader) refuseLiteral(n int64, sync bool, typ, code, text string) {
	if !sync {
		if n > r.lim.MaxDiscard {
			r.fatal(ErrTooMuch)
		}
		if _, err := r.br.Discard(int(n)); err != nil {
			r.fatal(err)
		}
		r.failCode(typ, code, "%s", text)
	}
	r.atEnd = true // the client abandons the command
	r.failCode(typ, code, "%s", text)
}

// literal reads a literal after its "{", into memory, within MaxLiteral
// and MaxLiterals.
func (r *Reader) literal() []byte {
	n, sync := r.literalHeader()
	switch {
	case n > r.lim.MaxLiteral:
		r.refuseLiteral(n, sync, "BAD", "TOOBIG", fmt.Sprintf("Literal of %d bytes over the limit of %d", n, r.lim.MaxLiteral))
	case r.literals+n > r.lim.MaxLiterals:
		r.refuseLiteral(n, sync, "BAD", "TOOBIG", fmt.Sprintf("Literals of the command over %d bytes", r.lim.MaxLiterals))
	}
	if sync {
		if err := r.cont.Continue("Ready for literal data"); err != nil {
			r.fatal(err)
		}
	}
	r.literals += n
	b := make([]byte, n)
	if _, err := io.ReadFull(r.br, b); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		r.fatal(err)
	}
	return b
}

// isAtomChar reports whether c is an ATOM-CHAR (RFC 9051 section 9).
func isAtomChar(c byte) bool {
	return c > 0x20 && c < 0x7F && !strings.ContainsRune(`(){%*"\]`, rune(c))
}

// isAStringChar is ATOM-CHAR or resp-specials ("]").
func isAStringChar(c byte) bool { return isAtomChar(c) || c == ']' }

// atom reads an atom (at least one ATOM-CHAR).
func (r *Reader) atom(what string) string {
	return r.token(what, isAtomChar)
}

// token reads one or more bytes for which ok is true.
func (r *Reader) token(what string, ok func(byte) bool) string {
	var b []byte
	for c := r.peek(); ok(c); c = r.peek() {
		b = append(b, r.next())
	}
	if len(b) == 0 {
		r.fail("Expected %s, got %s", what, describe(r.peek()))
	}
	return string(b)
}

// number reads a number (RFC 9051: 32-bit unsigned).
func (r *Reader) number(what string) uint32 {
	v := r.number64(what)
	if v > 1<<32-1 {
		r.fail("%s out of range", what)
	}
	return uint32(v)
}

// number64 reads a 63-bit number (mod-sequence-value).
func (r *Reader) number64(what string) uint64 {
	var v uint64
	digits := 0
	for c := r.peek(); c >= '0' && c <= '9'; c = r.peek() {
		r.next()
		if v > (1<<63-1)/10 {
			r.fail("%s out of range", what)
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
	var b []byte
	for {
		c := r.next()
		switch c {
		case '"':
			s := string(b)
			if !r.utf8 && !isASCII(s) || r.utf8 && !utf8.ValidString(s) {
				r.fail("8-bit characters in a quoted string without UTF8=ACCEPT, or invalid UTF-8")
			}
			return s
		case '\\':
			e := r.next()
			if e != '"' && e != '\\' {
				r.fail(`Invalid escape "\%c" in a quoted string`, e)
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
	r.expect('(', `"(" to open `+what)
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
			r.fail("Empty %s", what)
		}
		r.depth--
		return
	}
	for {
		elem()
		if r.maybe(')') {
			r.depth--
			return
		}
		r.sp()
	}
}
