package imap

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"reflect"

	goimap "github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
)

// go-imap (v2.0.0-beta.8) parses commands itself, and some of what it
// does with hostile input cannot be mended from a Session:
//
//   - a literal it refuses is left unread and its bytes are parsed as
//     commands: an APPEND over APPENDLIMIT is answered NO [TOOBIG] and the
//     message, with LITERAL+ already on its way, runs as the client's
//     commands; a literal over 4,096 bytes anywhere else is refused
//     without a word and its bytes are parsed as the command's arguments,
//     then as commands;
//   - a command of more than 50 KiB outside literals, or of lists nested
//     1,000 deep, is answered NO [SERVERBUG], and the rest of an overlong
//     line is parsed as the next command;
//   - a mailbox name or LIST pattern it cannot decode from modified UTF-7,
//     or that holds a control character, is answered NO [SERVERBUG].
//
// So a commandReader sits between the connection and go-imap's reader of
// it (go-imap reads every command through one bufio.Reader, which
// followCommands points at a commandReader, before the greeting and again
// once logged in, after STARTTLS; nothing else sees the commands in the
// clear under TLS). It follows the command stream as go-imap will parse
// it (lines, quoted strings, literals {n} and {n+}, the DONE of an IDLE)
// and refuses, before go-imap sees it, what go-imap would mishandle: a
// command longer than maxCommandBytes outside literals, or nested more
// than maxNesting lists deep, is answered BAD [LIMIT]; a literal over
// 4,096 bytes that go-imap would read into memory, NO [TOOBIG]; a mailbox
// name or pattern that is not modified UTF-7 (RFC 3501 5.1.3), or, once
// the client has enabled UTF8=ACCEPT or IMAP4rev2, not UTF-8, or that
// holds a control character, BAD Invalid mailbox name (see nameScan;
// what follows an ENABLE is lexed once go-imap has answered it). The
// refused command is read to its end and dropped, non-synchronizing
// literals and all, up to maxDiscard bytes, beyond which the connection is
// closed with BYE.
//
// And each time go-imap starts waiting for a command of a logged-in
// session (limitConn tells, from go-imap's deadline), the commandReader
// checks that go-imap is where a command starts. If it is not, go-imap
// has refused a literal the commandReader let through (an APPEND over
// APPENDLIMIT, a literal where the grammar has none): what remains of
// that command is dropped in the same way, so the bytes of a refused
// literal are never run as commands.

// Bounds of the commands go-imap is given.
const (
	maxCommandBytes    = 48 << 10 // outside literals; go-imap's own bound is 50 KiB
	maxNesting         = 100      // parenthesized lists inside one another
	maxBufferedLiteral = 4096     // go-imap's bound for literals other than an APPEND's message
	maxDoneLine        = 1024     // the line that ends an IDLE
	maxDiscard         = 1 << 20  // bytes of a refused command read and dropped
)

// Answers to commands refused before go-imap sees them.
var (
	errCommandTooLong = &goimap.Error{Type: goimap.StatusResponseTypeBad, Code: goimap.ResponseCodeLimit, Text: fmt.Sprintf("Command line too long (at most %d bytes outside literals)", maxCommandBytes)}
	errNestedTooDeep  = &goimap.Error{Type: goimap.StatusResponseTypeBad, Code: goimap.ResponseCodeLimit, Text: fmt.Sprintf("Lists nested too deep (at most %d levels)", maxNesting)}
	errLiteralTooBig  = &goimap.Error{Type: goimap.StatusResponseTypeNo, Code: goimap.ResponseCodeTooBig, Text: fmt.Sprintf("Literals are limited to %d bytes for this command", maxBufferedLiteral)}
	errDoneTooLong    = &goimap.Error{Type: goimap.StatusResponseTypeBad, Code: goimap.ResponseCodeClientBug, Text: "Expected DONE to end IDLE"}
)

// closedError ends go-imap's reading of a connection this package has
// closed (after a BYE): go-imap answers the command it was reading (an
// *goimap.Error) to the closed connection, and logs nothing (the error is
// also net.ErrClosed).
type closedError struct{ why string }

func (e *closedError) Error() string { return "imap: connection closed: " + e.why }

func (e *closedError) Unwrap() []error {
	return []error{&goimap.Error{Type: goimap.StatusResponseTypeBad, Text: e.why}, net.ErrClosed}
}

// goimapReader returns the bufio.Reader through which go-imap reads c's
// commands, or nil if this version of go-imap reads them otherwise.
func goimapReader(c *imapserver.Conn) *bufio.Reader {
	v := reflect.ValueOf(c).Elem().FieldByName("br")
	if !v.IsValid() || v.Type() != reflect.TypeFor[*bufio.Reader]() || v.IsNil() {
		return nil
	}
	return (*bufio.Reader)(v.UnsafePointer())
}

// followCommands points go-imap's reader of the session's connection at a
// fresh commandReader, which gets what go-imap had read but not parsed
// yet. go-imap must be between two commands (at the greeting, or in LOGIN
// or AUTHENTICATE once the credentials are read), so the reader starts at
// a command. The connection may have become TLS (STARTTLS) since the last
// time.
func (s *session) followCommands() {
	br := goimapReader(s.conn)
	if br == nil {
		s.srv.unfollowed.Do(func() {
			s.srv.log.Error("imap: cannot follow go-imap's command stream; command and literal bounds are off")
		})
		return
	}
	src := s.conn.NetConn()
	buffered, _ := br.Peek(br.Buffered())
	in := bytes.Clone(buffered)
	if old := s.reader; old != nil && old.src == src {
		in = append(in, old.out...)
		if old.refusal != nil { // the command is lexed anew
			in = append(in, old.held...)
		}
		in = append(in, old.in...)
	}
	_, isTLS := src.(*tls.Conn)
	cr := &commandReader{
		src:      src,
		br:       br,
		sess:     s,
		authed:   s.user != nil,
		startTLS: s.user == nil && !isTLS && s.srv.cfg.TLS != nil,
		in:       in,
		starts:   []int64{0},
		syncAt:   -1,
	}
	cr.lx.reset()
	cr.lx.utf8 = cr.namesUTF8()
	br.Reset(cr)
	s.reader = cr
	if lc := limitConnOf(src); lc != nil {
		cr.lim = lc
		lc.setOnWait(cr.commandStart)
	}
}

// commandReader is the io.Reader go-imap reads commands from; see above.
// go-imap reads it from one goroutine, which also calls commandStart.
type commandReader struct {
	src      io.Reader     // the connection (TLS or not)
	br       *bufio.Reader // go-imap's, which reads this
	sess     *session
	lim      *limitConn // under src, or nil
	authed   bool       // logged in: go-imap holds no lock while reading, a BYE may be sent
	startTLS bool       // a STARTTLS line is followed by TLS

	buf    []byte // for reading src
	in     []byte // read, not yet lexed
	out    []byte // lexed, not yet given to go-imap
	outBuf []byte // out's array, when out is empty
	err    error  // the connection is done

	given  int64   // bytes given to go-imap so far
	starts []int64 // offsets (of given bytes, and of out's next) at which commands start, the earliest first
	syncAt int64   // offset at which the last synchronizing literal's bytes start, or -1

	lx lexer

	refusal  error  // the answer go-imap gets at its next read
	held     []byte // the byte of c.in at which the refusal came, not given
	heldBuf  [1]byte
	dropping bool   // dropping the rest of the current command
	dropNone bool   // the refused command has nothing left to drop
	dropEnd  []byte // given once dropped: the end of the line go-imap is discarding
	dropped  int64  // bytes dropped of the current command

	enabling bool // an ENABLE has been lexed: lex on once go-imap has read it
}

var lineEnd = []byte("\r\n")

// Read gives go-imap the commands, as the type's comment says.
func (c *commandReader) Read(p []byte) (int, error) {
	for {
		if len(c.out) > 0 {
			n := copy(p, c.out)
			c.out = c.out[n:]
			c.given += int64(n)
			return n, nil
		}
		if c.enabling { // go-imap has read an ENABLE, and answered it
			c.enabling = false
			c.lx.utf8 = c.namesUTF8()
		}
		if c.refusal != nil {
			err := c.refusal
			c.refusal, c.held = nil, nil
			c.dropping = true
			return 0, err
		}
		if c.err != nil {
			return 0, c.err
		}
		if c.dropping {
			c.drop()
			continue
		}
		if len(c.in) == 0 {
			// A literal's bytes go straight to go-imap, but for a
			// mailbox name's.
			if c.lx.mode == modeLiteral && !c.lx.names.lit {
				n, err := c.src.Read(p[:min(int64(len(p)), c.lx.left)])
				c.lx.content(int64(n))
				c.given += int64(n)
				if err != nil {
					err = c.failed(err)
				}
				return n, err
			}
			if !c.fill() {
				return 0, c.err
			}
		}
		c.lex()
	}
}

// fill reads more of the connection into c.in, or sets c.err.
func (c *commandReader) fill() bool {
	if c.buf == nil {
		c.buf = make([]byte, 8<<10)
	}
	for {
		n, err := c.src.Read(c.buf)
		if n > 0 {
			c.in = c.buf[:n]
			return true // an error comes again at the next read
		}
		if err != nil {
			c.err = c.failed(err)
			return false
		}
	}
}

// failed turns an error reading the connection into go-imap's: a timeout
// of a logged-in session ends it with BYE.
func (c *commandReader) failed(err error) error {
	if !c.authed || !errors.Is(err, os.ErrDeadlineExceeded) {
		return err
	}
	why := "Command not completed in time"
	if c.lim != nil {
		why = c.lim.timeoutReason()
	}
	c.sess.srv.log.Info("session timed out", "remote", c.sess.ip, "user", c.sess.address(), "why", why)
	return c.bye(why)
}

// bye closes a logged-in session with BYE, or, before login, just the
// connection (go-imap may hold its writer then), and returns the error
// go-imap then reads.
func (c *commandReader) bye(why string) error {
	if c.authed {
		c.sess.conn.Bye(why)
	} else {
		c.sess.conn.NetConn().Close()
	}
	c.err = &closedError{why}
	return c.err
}

// lex moves bytes from c.in to c.out through the lexer, until c.in is
// empty or a command is refused.
func (c *commandReader) lex() {
	if len(c.out) == 0 { // reuse out's array rather than grow a new one
		c.out = c.outBuf[:0]
		defer func() { c.outBuf = c.out[:0] }()
	}
	for len(c.in) > 0 && c.refusal == nil {
		switch c.lx.mode {
		case modeLiteral:
			k := min(int64(len(c.in)), c.lx.left)
			if c.lx.names.lit {
				if bad := c.lx.names.literal(c.in[:k], k == c.lx.left); bad != nil {
					// Refused at its last byte: go-imap's literal stays
					// open, and it discards no line after.
					c.out = append(c.out, c.in[:k-1]...)
					c.held = append(c.heldBuf[:0], c.in[k-1])
					c.in = c.in[k:]
					c.lx.content(k)
					c.refusal, c.dropEnd, c.dropped = bad, nil, 1
					return
				}
			}
			c.out = append(c.out, c.in[:k]...)
			c.in = c.in[k:]
			c.lx.content(k)
			continue
		case modePass:
			c.out = append(c.out, c.in...)
			c.in = c.in[:0]
			return
		}
		b := c.in[0]
		var bad error
		if c.lx.names.on() {
			bad = c.lx.names.step(b, c.lx.mk)
		}
		ev := c.lx.feed(b)
		switch {
		case c.lx.mode == modeLine && c.lx.n > maxCommandBytes:
			c.refuse(errCommandTooLong, lineEnd)
			return
		case c.lx.mode == modeLine && c.lx.depth > maxNesting:
			c.refuse(errNestedTooDeep, lineEnd)
			return
		case c.lx.mode == modeRaw && c.lx.n > maxDoneLine:
			c.refuse(errDoneTooLong, nil) // go-imap reads DONE with ReadLine, not discarding a line after
			return
		}
		c.in = c.in[1:]
		if bad != nil {
			c.refuseName(bad, b, ev == lexEnd)
			return
		}
		c.out = append(c.out, b)
		switch ev {
		case lexEnd:
			c.starts = append(c.starts, c.given+int64(len(c.out)))
			if c.lx.enabled {
				// What follows may be UTF-8 (RFC 6855): lex no further
				// until go-imap has read the ENABLE and answered it.
				c.enabling = true
				return
			}
			if c.lx.idle && !c.authed {
				c.lx.mode = modeLine // go-imap refuses IDLE before login
			}
			if c.lx.mode == modePass && !c.startTLS {
				c.lx.mode = modeLine
			}
		case lexLiteral:
			if c.lx.sync {
				c.syncAt = c.given + int64(len(c.out))
			}
			if !c.lx.appendMessage() && c.lx.size > maxBufferedLiteral {
				// go-imap would refuse it and parse its bytes as the
				// command's arguments.
				c.refusal, c.dropEnd, c.dropped = errLiteralTooBig, lineEnd, 0
				if c.lx.sync {
					// The client waits for a "+" that will not come: the
					// command ends here, with nothing to drop.
					c.lx.reset()
					c.dropNone = true
				}
				return
			}
			if c.lx.names.tok == tokLiteral && c.lx.names.on() {
				c.lx.names.announced(c.lx.size)
			}
		}
	}
}

// refuseName refuses the current command at the byte b just taken from
// c.in, which is not given: it ended a mailbox name that is not valid,
// and ended the command too if last. go-imap's next read fails with err,
// then it discards the rest of its line, which is dropped.
func (c *commandReader) refuseName(err error, b byte, last bool) {
	c.refusal, c.dropEnd, c.dropped = err, lineEnd, 1
	c.held = append(c.heldBuf[:0], b)
	c.dropNone = last
	c.lx.names.stop()
}

// namesUTF8 reports whether mailbox names are UTF-8 on the session (the
// client enabled UTF8=ACCEPT or IMAP4rev2) rather than modified UTF-7.
func (c *commandReader) namesUTF8() bool {
	if c.sess == nil || c.sess.conn == nil {
		return false
	}
	caps := c.sess.conn.EnabledCaps()
	return caps.Has(goimap.CapUTF8Accept) || caps.Has(goimap.CapIMAP4rev2)
}

// refuse refuses the current command at the byte c.in[0], which is not
// given: go-imap's next read fails with err, then the rest of the command
// is dropped and end given.
func (c *commandReader) refuse(err error, end []byte) {
	c.held = append(c.heldBuf[:0], c.in[0])
	c.in = c.in[1:]
	c.dropped = 1
	c.refusal, c.dropEnd = err, end
}

// drop drops the rest of the current command, or sets c.err.
func (c *commandReader) drop() {
	if c.dropNone {
		c.endDrop()
		return
	}
	for c.dropping {
		if c.lx.mode == modeLiteral && c.dropped+c.lx.left > maxDiscard {
			c.bye("Literal too big")
			c.dropping = false
			return
		}
		if len(c.in) == 0 && !c.fill() {
			c.dropping = false
			return
		}
		for len(c.in) > 0 && c.dropping {
			if c.lx.mode == modeLiteral {
				k := min(int64(len(c.in)), c.lx.left)
				c.in = c.in[k:]
				c.lx.content(k)
				c.dropped += k
				continue
			}
			b := c.in[0]
			c.in = c.in[1:]
			c.dropped++
			switch c.lx.feed(b) {
			case lexEnd:
				c.lx.mode = modeLine // the command dropped was no IDLE or STARTTLS
				c.endDrop()
			case lexLiteral:
				if c.lx.sync { // the client waits for a "+"
					c.lx.reset()
					c.endDrop()
				} else if c.dropped+c.lx.size > maxDiscard {
					c.bye("Literal too big")
					c.dropping = false
					return
				}
			}
			if c.dropping && c.dropped > maxDiscard {
				c.bye("Command too long")
				c.dropping = false
				return
			}
		}
	}
}

// endDrop ends the drop of a command: go-imap gets c.dropEnd, and the next
// command starts after it.
func (c *commandReader) endDrop() {
	c.dropping, c.dropNone = false, false
	c.dropped = 0
	c.out = append(c.out, c.dropEnd...)
	c.dropEnd = nil
	c.starts = append(c.starts, c.given+int64(len(c.out)))
}

// commandStart is called when go-imap starts waiting for a command of a
// logged-in session: if go-imap is not where the commandReader has a
// command start, it left the last command early (it refused a literal),
// and what is left of that command is dropped.
func (c *commandReader) commandStart() {
	if c.err != nil {
		return
	}
	pos := c.given - int64(c.br.Buffered())
	i := 0
	for i < len(c.starts) && c.starts[i] < pos {
		i++
	}
	c.starts = c.starts[i:]
	if len(c.starts) > 0 && c.starts[0] == pos {
		return
	}
	if c.dropping && !c.dropNone && c.dropEnd == nil && c.refusal == nil && pos == c.given && len(c.out) == 0 {
		// go-imap answered a mailbox name literal refused at its last
		// byte, and read nothing since: the next command starts once the
		// rest of the line is dropped.
		return
	}
	if pos == c.syncAt && pos == c.given && len(c.out) == 0 && len(c.in) == 0 && !c.dropping {
		// go-imap refused a synchronizing literal, or has not read it
		// where it is no argument: the client sends no more of the
		// command, and no refusal of it is due.
		c.lx.reset()
		c.refusal, c.held, c.dropNone, c.dropEnd = nil, nil, false, nil
		c.starts = append(c.starts[:0], pos)
		c.syncAt = -1
		return
	}
	c.sess.srv.log.Debug("dropping the rest of a command go-imap left early", "remote", c.sess.ip, "user", c.sess.address())
	if len(c.starts) > 0 { // the next command is lexed already
		skip := c.starts[0] - pos
		fromBuf := min(skip, int64(c.br.Buffered()))
		c.br.Discard(int(fromBuf))
		c.skipOut(skip - fromBuf)
		return
	}
	c.br.Discard(c.br.Buffered())
	c.skipOut(int64(len(c.out)))
	c.refusal, c.held = nil, nil                    // go-imap is not in that command
	c.dropping, c.dropEnd, c.dropped = true, nil, 0 // and, at a command start, discards no line
	if c.dropNone {                                 // a refused synchronizing literal ended it
		c.dropping, c.dropNone = false, false
		c.starts = append(c.starts[:0], c.given)
	}
}

// skipOut drops n bytes from the front of c.out, which are then never
// given: the offsets past them move back.
func (c *commandReader) skipOut(n int64) {
	if n <= 0 {
		return
	}
	c.out = c.out[n:]
	for i := range c.starts {
		if c.starts[i] > c.given {
			c.starts[i] -= n
		}
	}
	if c.syncAt > c.given {
		c.syncAt -= n
	}
}

// lexMode is what the lexer is reading.
type lexMode uint8

const (
	modeLine    lexMode = iota // a command, outside literals
	modeLiteral                // a literal's bytes
	modeRaw                    // the line that ends an IDLE
	modePass                   // TLS after STARTTLS: nothing more to follow
)

// lexEvent is what a byte was to the lexer.
type lexEvent uint8

const (
	lexByte    lexEvent = iota // of a command
	lexEnd                     // the end of a command
	lexLiteral                 // the end of a literal's announcement: its bytes follow
)

// hugeLiteral stands for a literal size too large to be one (go-imap
// fails to parse it).
const hugeLiteral = 1 << 62

// lexer follows IMAP commands as go-imap parses them, a byte at a time.
type lexer struct {
	mode  lexMode
	n     int // bytes of the command outside literals
	depth int // of parenthesized lists
	left  int64

	quoted, escaped bool

	// The command's first line: its tag, its name, and whether nothing
	// but go-imap's CRLF follows the name (for IDLE and STARTTLS).
	word      int // 0 in the tag, 1 in the name, 2 after
	name      [12]byte
	nameLen   int
	tail      int // after the name: 0 nothing yet, 1 a space, 2 a CR, 3 anything else
	sinceName int // bytes after the name's space, on the first line
	idle      bool
	enabled   bool // the command that just ended was an ENABLE

	// The mailbox names in the command's arguments, checked as they come
	// (for the commands that take some).
	names nameScan
	utf8  bool // names are UTF-8 rather than modified UTF-7; kept by reset

	// A literal's announcement being read: "{" digits ["+"] "}" CRLF,
	// go-imap's CRLF being [" "] ["\r"] "\n".
	mk      int // 0 none, 1 after "{", 2 in the digits, 3 after "+", 4 after "}", 5 after " ", 6 after "\r"
	mkSize  int64
	mkSync  bool
	mkFirst bool // the "{" began the command's first argument

	// The last literal announced.
	size  int64
	sync  bool
	first bool // the command's first argument
	lits  int  // literals of the command so far
}

// reset readies the lexer for a new command.
func (l *lexer) reset() {
	*l = lexer{utf8: l.utf8}
}

// content notes n bytes of a literal read.
func (l *lexer) content(n int64) {
	l.left -= n
	if l.left <= 0 {
		l.mode = modeLine
	}
}

// appendMessage reports whether the literal just announced is an APPEND's
// message, which go-imap reads as a stream, rather than its mailbox
// name.
func (l *lexer) appendMessage() bool {
	return l.nameIs("APPEND") && !(l.lits == 1 && l.first)
}

// nameIs reports whether the command's name is name, in upper case.
func (l *lexer) nameIs(name string) bool {
	return l.nameLen == len(name) && string(l.name[:l.nameLen]) == name
}

// feed takes the next byte of the stream, outside a literal's bytes.
func (l *lexer) feed(b byte) lexEvent {
	switch l.mode {
	case modePass:
		return lexByte
	case modeRaw:
		l.n++
		if b == '\n' {
			l.reset()
			return lexEnd
		}
		return lexByte
	}
	l.n++
	if l.quoted {
		switch {
		case l.escaped:
			l.escaped = false
		case b == '\\':
			l.escaped = true
		case b == '"':
			l.quoted = false
		}
		l.sinceName++
		return lexByte
	}
	if l.mk > 0 {
		if ev, taken := l.marker(b); taken {
			return ev
		}
	}
	first := l.word == 2 && l.sinceName == 0
	switch l.word {
	case 0:
		if b == ' ' {
			l.word = 1
		}
	case 1:
		if isAtomChar(b) {
			if l.nameLen < len(l.name) {
				l.name[l.nameLen] = upper(b)
			}
			l.nameLen++
			break
		}
		l.word = 2
		if b == ' ' {
			l.tail = 1
			first = false
			l.sinceName = -1
		} else {
			l.tail = tailOf(0, b)
		}
		if l.nameLen <= len(l.name) && (b == ' ' || b == '(') {
			l.names.start(l.name[:l.nameLen], b, l.utf8)
		}
	case 2:
		l.tail = tailOf(l.tail, b)
	}
	if l.word == 2 {
		l.sinceName++
	}
	switch b {
	case '"':
		l.quoted = true
	case '(':
		l.depth++
	case ')':
		if l.depth > 0 {
			l.depth--
		}
	case '{':
		l.mk, l.mkSize, l.mkSync, l.mkFirst = 1, 0, true, first
	case '\n':
		bare := l.word == 2 && l.tail < 3
		idle, starttls := bare && l.nameIs("IDLE"), bare && l.nameIs("STARTTLS")
		enable := l.nameIs("ENABLE")
		l.reset()
		l.enabled = enable
		switch {
		case idle:
			l.mode, l.idle = modeRaw, true
		case starttls:
			l.mode = modePass
		}
		return lexEnd
	}
	return lexByte
}

// tailOf follows what comes after a command's name: go-imap's CRLF is an
// optional space, an optional CR and LF.
func tailOf(tail int, b byte) int {
	switch {
	case b == ' ' && tail == 0:
		return 1
	case b == '\r' && tail <= 1:
		return 2
	case b == '\n' && tail <= 2:
		return tail
	}
	return 3
}

// marker follows a literal's announcement: taken reports whether b was
// part of it; if not, it is an ordinary byte.
func (l *lexer) marker(b byte) (ev lexEvent, taken bool) {
	digit := '0' <= b && b <= '9'
	switch {
	case (l.mk == 1 || l.mk == 2) && digit:
		l.mk = 2
		if l.mkSize < hugeLiteral/10 {
			l.mkSize = l.mkSize*10 + int64(b-'0')
		} else {
			l.mkSize = hugeLiteral
		}
		return lexByte, true
	case l.mk == 2 && b == '+':
		l.mk, l.mkSync = 3, false
		return lexByte, true
	case (l.mk == 2 || l.mk == 3) && b == '}':
		l.mk = 4
		return lexByte, true
	case l.mk == 4 && b == ' ':
		l.mk = 5
		return lexByte, true
	case (l.mk == 4 || l.mk == 5) && b == '\r':
		l.mk = 6
		return lexByte, true
	case l.mk >= 4 && b == '\n':
		l.mk = 0
		l.lits++
		l.size, l.sync, l.first = l.mkSize, l.mkSync, l.mkFirst
		l.word = 2 // a literal is an argument: the first line is over
		l.sinceName = 1
		l.tail = 3
		if l.size > 0 {
			l.mode, l.left = modeLiteral, l.size
		}
		return lexLiteral, true
	}
	l.mk = 0
	return lexByte, false
}

// isAtomChar is go-imap's ATOM-CHAR.
func isAtomChar(b byte) bool {
	switch b {
	case '(', ')', '{', ' ', '%', '*', '"', '\\', ']':
		return false
	}
	return b > 0x1f && b != 0x7f
}

func upper(b byte) byte {
	if 'a' <= b && b <= 'z' {
		return b - 'a' + 'A'
	}
	return b
}

// nameSlot is what a command's next argument is to a nameScan.
type nameSlot uint8

const (
	slotName     nameSlot = iota // a mailbox name (astring)
	slotPattern                  // a LSUB pattern (list-mailbox)
	slotPatterns                 // LIST's pattern, or its patterns in parentheses
	slotOptions                  // LIST's selection options, else its reference name
	slotSkip                     // an argument that holds no name: COPY's set
	slotUID                      // UID's command name
)

// nameSlots are a command's arguments up to its last name, an array
// rather than a slice: a lexer holds no pointer, it is zeroed for each
// command.
type nameSlots struct {
	slot [3]nameSlot
	n    uint8
}

// The arguments of the commands that take mailbox names: SELECT,
// EXAMINE, CREATE, DELETE, SUBSCRIBE, UNSUBSCRIBE, STATUS and APPEND take
// one first; RENAME two; LSUB a reference name and a pattern;
// LIST-EXTENDED (RFC 5258) selection options, a reference name and a
// pattern or a list of them; COPY and MOVE, and after UID, a set then a
// name.
var (
	slotsOne    = nameSlots{[3]nameSlot{slotName}, 1}
	slotsRename = nameSlots{[3]nameSlot{slotName, slotName}, 2}
	slotsLSUB   = nameSlots{[3]nameSlot{slotName, slotPattern}, 2}
	slotsLIST   = nameSlots{[3]nameSlot{slotOptions, slotName, slotPatterns}, 3}
	slotsCopy   = nameSlots{[3]nameSlot{slotSkip, slotName}, 2}
	slotsUID    = nameSlots{[3]nameSlot{slotUID}, 1}
)

// nameTok is where a nameScan is in the current argument.
type nameTok uint8

const (
	tokStart     nameTok = iota // before its first byte
	tokAtom                     // in a name or pattern not quoted
	tokQuoted                   // in a quoted one
	tokLiteral                  // in the announcement of a literal one; then its bytes (nameScan.lit)
	tokSkip                     // in an argument that holds no name
	tokOptions                  // in LIST's selection options
	tokAfter                    // after the argument
	tokListNext                 // in LIST's patterns, before one
	tokListAfter                // in LIST's patterns, after one
)

// nameScan follows the arguments of a command that takes mailbox names
// as go-imap's parser will read them (it decodes each name and pattern
// from modified UTF-7 as soon as it has read it), tokenizing no further
// than the last name, and checks each with a nameCheck. A name is refused
// at the byte that ends it: the closing quote, the byte after an atom,
// the last byte of a literal (whose bytes the commandReader then passes
// through the scan). Where go-imap will find a syntax error first, the
// scan may stop: go-imap answers BAD then.
//
// The commandReader calls step with each byte of the command's lines
// before its lexer takes it (so the line's end too), announced once the
// lexer has read the announcement of a literal that is a name, and
// literal with the literal's bytes.
type nameScan struct {
	slots   nameSlots // the arguments
	i       uint8     // the current one; past slots.n: nothing (more) to check
	tok     nameTok
	pattern bool // the current name is a LIST pattern: "%" and "*" are name characters
	inList  bool // in LIST's parenthesized patterns
	esc     bool // after a backslash in a quoted string
	quoted  bool // in a quoted string among LIST's selection options
	lit     bool // the literal being read is a name
	utf8    bool // names are UTF-8
	word    [4]byte
	wordLen int // of UID's command name
	check   nameCheck
}

// start readies s for the arguments of a command named name (upper case),
// after which came the byte after.
func (s *nameScan) start(name []byte, after byte, utf8 bool) {
	var slots nameSlots
	switch string(name) {
	case "SELECT", "EXAMINE", "CREATE", "DELETE", "SUBSCRIBE", "UNSUBSCRIBE", "STATUS", "APPEND":
		slots = slotsOne
	case "RENAME":
		slots = slotsRename
	case "LSUB":
		slots = slotsLSUB
	case "LIST":
		slots = slotsLIST
	case "COPY", "MOVE":
		slots = slotsCopy
	case "UID":
		slots = slotsUID
	default:
		return
	}
	*s = nameScan{slots: slots, utf8: utf8}
	if after == '(' && s.cur() == slotOptions {
		s.step(after, 0) // go-imap takes no space before a list
	} else if after != ' ' {
		s.stop()
	}
}

// on reports whether s has names left to check.
func (s *nameScan) on() bool { return s.i < s.slots.n }

// cur returns the current argument's slot.
func (s *nameScan) cur() nameSlot { return s.slots.slot[s.i] }

// stop ends the scan: no more names to check in the command.
func (s *nameScan) stop() { s.i = s.slots.n }

// step takes the next byte of the command's lines, mk being the state of
// the lexer's literal announcement before it, and returns the answer to
// the command if b ended a name that is not valid.
func (s *nameScan) step(b byte, mk int) error {
	switch s.tok {
	case tokStart:
		s.begin(b)
	case tokAtom:
		if isNameChar(b) || s.pattern && (b == '%' || b == '*') {
			s.check.feed(b)
			return nil
		}
		err := s.ended()
		s.step(b, mk) // what follows the name
		return err
	case tokQuoted:
		switch {
		case s.esc:
			s.esc = false
		case b == '\\':
			s.esc = true
			return nil
		case b == '"':
			return s.ended()
		}
		s.check.feed(b)
	case tokLiteral: // the lexer reads the announcement, then announced
		if mk == 0 { // no literal after all: go-imap's syntax error
			s.stop()
		}
	case tokSkip:
		switch {
		case b == ' ' && s.cur() == slotUID:
			if s.wordLen == len(s.word) && (string(s.word[:]) == "COPY" || string(s.word[:]) == "MOVE") {
				s.slots, s.i, s.tok = slotsCopy, 0, tokStart
			} else {
				s.stop()
			}
		case b == ' ':
			s.next()
		case b == '\r' || b == '\n':
			s.stop()
		case s.cur() == slotUID:
			if s.wordLen < len(s.word) {
				s.word[s.wordLen] = upper(b)
			}
			s.wordLen++
		}
	case tokOptions: // RFC 5258's list-select-opts, of astrings
		switch {
		case s.esc:
			s.esc = false
		case s.quoted:
			s.esc, s.quoted = b == '\\', b != '"'
		case b == '"':
			s.quoted = true
		case b == ')':
			s.tok = tokAfter
		case b == '(':
			s.stop() // go-imap's syntax error
		}
	case tokAfter:
		switch b {
		case ' ':
			s.next()
		case '(': // go-imap takes no space before a list
			s.next()
			if s.on() {
				s.begin(b)
			}
		default: // the line's end, or go-imap's syntax error
			s.stop()
		}
	case tokListNext:
		s.inList = true
		s.beginName(b, true)
	case tokListAfter:
		if b == ' ' {
			s.tok = tokListNext
		} else { // ")" ends LIST's names
			s.stop()
		}
	}
	return nil
}

// begin takes the first byte of an argument.
func (s *nameScan) begin(b byte) {
	switch s.cur() {
	case slotName:
		s.beginName(b, false)
	case slotPattern:
		s.beginName(b, true)
	case slotPatterns:
		if b == '(' {
			s.tok = tokListNext
			return
		}
		s.beginName(b, true)
	case slotOptions:
		if b == '(' {
			s.tok = tokOptions
			return
		}
		s.i++ // none: this is the reference name
		s.beginName(b, false)
	case slotSkip, slotUID:
		s.tok, s.wordLen = tokSkip, 0
		s.step(b, 0)
	}
}

// beginName takes the first byte of a name or pattern.
func (s *nameScan) beginName(b byte, pattern bool) {
	s.check, s.pattern = nameCheck{utf8: s.utf8}, pattern
	switch {
	case b == '"':
		s.tok = tokQuoted
	case b == '{':
		s.tok = tokLiteral
	case isNameChar(b) || pattern && (b == '%' || b == '*'):
		s.tok = tokAtom
		s.check.feed(b)
	default: // go-imap's syntax error
		s.stop()
	}
}

// ended ends the current name and returns nil if it is valid, or the
// answer to the command.
func (s *nameScan) ended() error {
	if s.inList {
		s.tok = tokListAfter
	} else {
		s.tok = tokAfter
	}
	return s.check.end()
}

// next moves to the next argument.
func (s *nameScan) next() {
	s.i, s.tok = s.i+1, tokStart
}

// announced is told that the announcement of a literal that is a name
// has ended, and its size.
func (s *nameScan) announced(size int64) {
	if size == 0 {
		s.ended() // the empty name
	} else {
		s.lit = true
	}
}

// literal takes bytes of a literal that is a name, the last ones if last,
// and returns the answer to the command if they end a name that is not
// valid.
func (s *nameScan) literal(p []byte, last bool) error {
	for _, b := range p {
		s.check.feed(b)
	}
	if !last {
		return nil
	}
	s.lit = false
	return s.ended()
}

// isNameChar is go-imap's ASTRING-CHAR, by which it reads a name not
// quoted: no control character, C1 controls included.
func isNameChar(b byte) bool {
	switch b {
	case '(', ')', '{', ' ', '%', '*', '"', '\\':
		return false
	}
	return b > 0x1f && (b < 0x7f || b > 0x9f)
}
