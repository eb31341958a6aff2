package wire

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// Limits bound what a Reader accepts of one command. A zero field means
// its default (DefaultLimits); a negative one is invalid (Validate).
//
// Two further bounds are fixed: the literals of one command held in
// memory total at most max(MaxLiteral, DiscardLimit) bytes, and a refused
// command's bytes read and dropped (the rest of an overlong line,
// non-synchronizing literals over their limit) at most DiscardLimit.
type Limits struct {
	// MaxLine bounds a command's bytes outside its literals (and a line
	// of AUTHENTICATE or IDLE). Default 64 KiB.
	MaxLine int
	// MaxLiteral bounds one literal of a command other than an APPEND's
	// message, which Reader.AppendLimit bounds. Default 64 KiB.
	MaxLiteral int64
	// MaxNesting bounds the nesting of parenthesized lists, of the NOT
	// and OR search keys and of a body section's part path. Default 100.
	MaxNesting int
	// MaxSetRanges bounds the ranges of one sequence set. Default 10,000.
	MaxSetRanges int
	// MaxSearchKeys bounds the search keys of one SEARCH, SORT or THREAD,
	// nested ones included, each of which takes a few hundred bytes
	// parsed. Default 1,000.
	MaxSearchKeys int
}

// DiscardLimit is what a Reader reads and drops at most of a refused
// command before it gives up on the connection with ErrTooBig.
const DiscardLimit = 1 << 20

// DefaultLimits returns the limits a zero Limits stands for.
func DefaultLimits() Limits {
	return Limits{MaxLine: 64 << 10, MaxLiteral: 64 << 10, MaxNesting: 100, MaxSetRanges: 10_000, MaxSearchKeys: 1000}
}

// Validate reports every negative limit.
func (l Limits) Validate() error {
	var errs []error
	for _, f := range []struct {
		name string
		v    int64
	}{
		{"MaxLine", int64(l.MaxLine)}, {"MaxLiteral", l.MaxLiteral},
		{"MaxNesting", int64(l.MaxNesting)}, {"MaxSetRanges", int64(l.MaxSetRanges)},
		{"MaxSearchKeys", int64(l.MaxSearchKeys)},
	} {
		if f.v < 0 {
			errs = append(errs, fmt.Errorf("wire: negative %s %d: %w", f.name, f.v, ErrInvalidLimits))
		}
	}
	return errors.Join(errs...)
}

// ErrInvalidLimits is wrapped by the errors of Limits.Validate.
var ErrInvalidLimits = errors.New("wire: invalid limits")

func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	if l.MaxLine <= 0 {
		l.MaxLine = d.MaxLine
	}
	if l.MaxLiteral <= 0 {
		l.MaxLiteral = d.MaxLiteral
	}
	if l.MaxNesting <= 0 {
		l.MaxNesting = d.MaxNesting
	}
	if l.MaxSetRanges <= 0 {
		l.MaxSetRanges = d.MaxSetRanges
	}
	if l.MaxSearchKeys <= 0 {
		l.MaxSearchKeys = d.MaxSearchKeys
	}
	return l
}

// Error is a command the Reader refused: the server answers it with a
// tagged status response of Type ("BAD" for a client's error, "NO" for a
// literal over a server's limit) with Code (a response code without its
// brackets, such as "TOOBIG", "LIMIT" or "CLIENTBUG", or none) and Text,
// which names what was wrong ("Expected SP after the mailbox name").
// When ReadCommand or NextAppend return one, the stream is at the next
// command and the Reader may go on.
type Error struct {
	Tag  string // "" if the command had none; the server answers "*"
	Type string // "BAD" or "NO"
	Code string // a response code without brackets, or ""
	Text string
}

// Error returns the response without its tag: "BAD [LIMIT] Text".
func (e *Error) Error() string {
	if e.Code != "" {
		return fmt.Sprintf("%s [%s] %s", e.Type, e.Code, e.Text)
	}
	return e.Type + " " + e.Text
}

var (
	// ErrTooBig is the fatal error of a refused command that would have
	// the Reader drop more than DiscardLimit bytes: the server answers
	// BYE and closes the connection.
	ErrTooBig = errors.New("wire: command too large to skip")
	// ErrRefused is NextAppend's error for a message whose synchronizing
	// literal the Reader refused through Continuer.Refuse, which has
	// answered the command: the server writes nothing more for it (and
	// appends none of its messages). The stream is at the next command.
	ErrRefused = errors.New("wire: command refused before its literal")
)

// Continuer answers a client's synchronizing literal ({n}, RFC 9051
// section 4.3) before the client sends it. The Reader calls it from
// ReadCommand and NextAppend, on the goroutine that called them; each
// method must write its response and flush it before it returns, and an
// error from it is fatal to the Reader's call.
type Continuer interface {
	// Continue writes the continuation request "+ text": the literal is
	// accepted and the Reader reads it next.
	Continue(text string) error
	// Refuse writes err as the tagged response to the command with tag
	// (tag "" means "*"): the literal is over its limit, the client will
	// not send it and abandons the command, and the Reader goes on with
	// the next command. ReadCommand does not return the refused command;
	// NextAppend returns ErrRefused.
	Refuse(tag string, err *Error) error
}

// Reader reads client commands from a connection. It is not safe for
// concurrent use; its methods are called in the order of the protocol:
// ReadCommand, then for the commands that need it NextAppend (APPEND),
// ReadAuthLine (AUTHENTICATE) or ReadIdleDone (IDLE).
type Reader struct {
	// AppendLimit bounds the size of an APPEND's message literal
	// (APPENDLIMIT, RFC 7889); 0 means no limit. A message over it is
	// refused with NO [TOOBIG] before the client sends it (synchronizing)
	// or dropped (non-synchronizing, within DiscardLimit). Bodies stream:
	// the limit is the server's choice, not a memory bound.
	AppendLimit int64

	br   *bufio.Reader
	lim  Limits
	cont Continuer
	utf8 bool

	// Per command.
	tag         string
	line        int         // bytes read outside literals
	literals    int64       // bytes of literals held in memory
	discarded   int64       // bytes read and dropped of a refused command
	depth       int         // nesting
	keys        int         // search keys
	last        string      // what was read last, for "Expected SP after ..."
	atEnd       bool        // the command's bytes are all read: no skipping on an error
	inAppend    bool        // NextAppend may be called
	body        *appendBody // the APPEND message being read
	appended    bool        // a message of the APPEND was returned
	appendParen bool        // a ")" closes the message's UTF8 (~{n})
}

// NewReader returns a Reader of commands from br, within lim (zero fields
// are defaults), answering synchronizing literals through cont, which
// must not be nil. The Reader holds no buffer of its own beyond the
// command being parsed: its memory is br's and O(MaxLine + the literals'
// bound) per command.
func NewReader(br *bufio.Reader, lim Limits, cont Continuer) *Reader {
	return &Reader{br: br, lim: lim.withDefaults(), cont: cont}
}

// SetUTF8 makes mailbox names UTF-8 instead of modified UTF-7 and lets
// quoted strings hold UTF-8 (UTF8=ACCEPT, RFC 6855, or IMAP4rev2), from
// the next command on.
func (r *Reader) SetUTF8(on bool) { r.utf8 = on }

// Reset makes r read from br, after STARTTLS or COMPRESS; the state of
// an unfinished APPEND is dropped.
func (r *Reader) Reset(br *bufio.Reader) {
	r.br = br
	r.inAppend, r.body, r.appended, r.appendParen = false, nil, false, false
}

// Buffered is the number of bytes read from the connection that no
// command has taken yet: after STARTTLS or COMPRESS there must be none
// (a client that pipelines past them is refused).
func (r *Reader) Buffered() int { return r.br.Buffered() }

// stop is what the parsing functions panic with; the Reader's methods
// recover it in run, so that no panic leaves the package.
type stop struct{ err error }

// errSkipped is the internal error of a command refused through
// Continuer.Refuse: it has been answered.
var errSkipped = errors.New("wire: refused and answered")

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

// skipCommand reads and drops the rest of a refused command: to the end
// of its line, and on past each non-synchronizing literal the line
// announces ({n+} or {n-}) and the line after it. A synchronizing
// literal ends it: the client waits for a continuation that will not
// come, and abandons the command.
func (r *Reader) skipCommand() error {
	var tail []byte // the end of the line, for its literal marker
	for {
		chunk, err := r.br.ReadSlice('\n')
		if len(chunk) > 0 {
			if err := r.discard(int64(len(chunk))); err != nil {
				return err
			}
			tail = append(tail, chunk...)
			if len(tail) > 32 {
				tail = append(tail[:0], tail[len(tail)-32:]...)
			}
		}
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case err != nil:
			return eofIsUnexpected(err)
		}
		n, sync, ok := literalMarker(tail)
		tail = tail[:0]
		if !ok || sync {
			return nil
		}
		if err := r.discard(n); err != nil {
			return err
		}
		if _, err := r.br.Discard(int(n)); err != nil {
			return eofIsUnexpected(err)
		}
	}
}

// discard counts n more bytes dropped of the command against
// DiscardLimit.
func (r *Reader) discard(n int64) error {
	if n > DiscardLimit-r.discarded {
		return ErrTooBig
	}
	r.discarded += n
	return nil
}

// eofIsUnexpected makes io.EOF io.ErrUnexpectedEOF: the stream ended in
// the middle of a command.
func eofIsUnexpected(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
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
