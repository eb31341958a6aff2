package wire

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	goimap "github.com/emersion/go-imap/v2"
)

// AppendMessage is one message of an APPEND (with MULTIAPPEND, RFC 3502,
// one of several). Body reads exactly its literal's Size bytes from the
// connection, then returns io.EOF; it is valid until the Reader's next
// call, which drops what the server left unread (a Body read after that
// returns io.EOF). A NUL byte in a literal that is not a literal8 ends
// Body with an *Error (BAD), which the next NextAppend returns too: the
// server appends none of the command's messages and answers it. The
// connection ending in the middle is io.ErrUnexpectedEOF.
type AppendMessage struct {
	Flags []goimap.Flag // nil if not given
	Date  time.Time     // zero if not given
	Size  int64
	// Binary is set for a literal8 (~{n}, RFC 3516), which may hold NUL
	// bytes, and UTF8 for the UTF8 (~{n}) form of RFC 6855.
	Binary, UTF8 bool
	Body         io.Reader
}

// appendBody is the Body of an AppendMessage.
type appendBody struct {
	r      *Reader
	left   int64
	binary bool
	err    error
}

func (b *appendBody) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	if b.left == 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.r.br.Read(p)
	b.left -= int64(n)
	if !b.binary {
		if i := bytes.IndexByte(p[:n], 0); i >= 0 {
			b.err = &Error{Tag: b.r.tag, Type: "BAD", Text: "NUL byte in a literal (use literal8)"}
			return i, b.err
		}
	}
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		b.err = err
	}
	return n, err
}

// drain reads what is left of the body.
func (b *appendBody) drain() error {
	if b.left == 0 {
		return nil
	}
	n, err := b.r.br.Discard(int(b.left))
	b.left -= int64(n)
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return err
	}
	return nil
}

// NextAppend returns the next message of the APPEND that ReadCommand
// returned, or (nil, nil) at the command's end (its CRLF; the next
// ReadCommand reads the next command). A Body left unread is drained by
// the next call.
//
// A message over AppendLimit is refused with NO [TOOBIG]: a
// synchronizing literal through Continuer.Refuse, after which NextAppend
// returns ErrRefused (the command is answered); a non-synchronizing one
// is read and dropped within DiscardLimit and NextAppend returns the
// *Error for the server to answer. A syntax error is a BAD *Error. After
// any of them the command is over: the server appends none of its
// messages (MULTIAPPEND is all or nothing, RFC 3502). A synchronizing
// literal within the limit is announced with Continue("Ready") before
// Body reads it.
//
// A server that refuses the command before its messages (no such
// mailbox) just answers it and calls ReadCommand: the messages are
// dropped without a continuation request (the client, waiting for one,
// sees the answer and abandons the command).
func (r *Reader) NextAppend() (*AppendMessage, error) {
	return r.nextAppend(false)
}

// nextAppend is NextAppend; draining drops the messages of a command the
// server has already answered.
func (r *Reader) nextAppend(draining bool) (*AppendMessage, error) {
	if !r.inAppend {
		return nil, errors.New("wire: NextAppend outside an APPEND")
	}
	if b := r.body; b != nil {
		r.body = nil
		if err := b.drain(); err != nil {
			r.inAppend = false
			return nil, err
		}
		var e *Error
		if errors.As(b.err, &e) {
			// A NUL refused the message: the rest of the command goes.
			r.inAppend = false
			if err := r.skipCommand(); err != nil {
				return nil, err
			}
			return nil, e
		}
	}
	var m *AppendMessage
	err := r.run(func() {
		if r.appendParen {
			r.appendParen = false
			r.expect(')', `")" after UTF8 (~{n})`)
		}
		if r.appended && r.atCRLF() {
			r.crlf()
			r.inAppend = false
			return
		}
		if r.appended {
			r.expect(' ', "SP or CRLF after the message")
		} else {
			r.expect(' ', "SP after the mailbox name")
		}
		m = &AppendMessage{}
		if r.peek() == '(' {
			m.Flags = r.flagList()
			r.expect(' ', "SP after the flags")
		}
		if r.peek() == '"' {
			m.Date = r.dateTime()
			r.expect(' ', "SP after the date-time")
		}
		if c := r.peek(); c == 'U' || c == 'u' {
			if kw := strings.ToUpper(r.atom("UTF8")); kw != "UTF8" {
				r.fail("Expected UTF8 or a literal, got %s", kw)
			}
			r.sp()
			r.expect('(', `"(" after UTF8`)
			m.UTF8 = true
		}
		if r.maybe('~') {
			m.Binary = true
		} else if m.UTF8 {
			r.fail(`Expected "~{" in UTF8 (...)`)
		}
		r.expect('{', `"{" of the message literal`)
		n, sync := r.literalHeader()
		switch {
		case draining && sync:
			r.atEnd = true
			r.fatal(errSkipped)
		case draining:
			r.refuseLiteral(n, false, "NO", "", "Command already answered")
		case r.AppendLimit > 0 && n > r.AppendLimit:
			r.refuseLiteral(n, sync, "NO", "TOOBIG", fmt.Sprintf("Message of %d bytes over the limit of %d", n, r.AppendLimit))
		}
		if sync {
			if err := r.cont.Continue("Ready"); err != nil {
				r.fatal(err)
			}
		}
		m.Size = n
		r.body = &appendBody{r: r, left: n, binary: m.Binary}
		m.Body = r.body
		r.appended = true
		r.appendParen = m.UTF8
	})
	if err != nil || m == nil {
		r.inAppend = r.inAppend && err == nil
		r.appended, r.appendParen, r.body = false, false, nil
		if errors.Is(err, errSkipped) {
			r.inAppend = false
			return nil, ErrRefused
		}
		return nil, err
	}
	return m, nil
}

// finishAppend drops what is left of an APPEND the server did not read
// to its end.
func (r *Reader) finishAppend() error {
	for r.inAppend {
		m, err := r.nextAppend(true)
		if m != nil {
			continue // its body is drained by the next call
		}
		var e *Error
		if err == nil || errors.Is(err, ErrRefused) || errors.As(err, &e) {
			continue
		}
		return err
	}
	return nil
}

// ReadAuthLine reads a client's line of an AUTHENTICATE exchange (RFC
// 9051 section 6.2.2) and returns it decoded from base64 ("" for an
// empty line or "="), within MaxLine. A line "*" cancels the exchange:
// ErrAuthCancelled. Invalid base64 or an overlong line is an *Error
// (BAD) for the command's tag, after which the stream is at the next
// command; other errors are fatal.
func (r *Reader) ReadAuthLine() (string, error) {
	line, err := r.readLine()
	if err != nil {
		return "", err
	}
	if line == "*" {
		return "", ErrAuthCancelled
	}
	if line == "" || line == "=" {
		return "", nil
	}
	dec, derr := base64.StdEncoding.DecodeString(line)
	if derr != nil {
		return "", &Error{Tag: r.tag, Type: "BAD", Text: "Invalid base64 in the SASL response"}
	}
	return string(dec), nil
}

// ErrAuthCancelled is ReadAuthLine's error for a client's "*".
var ErrAuthCancelled = errors.New("wire: authentication cancelled")

// ReadIdleDone reads the line that ends an IDLE (RFC 2177): "DONE" in any
// case, within MaxLine. Another line is an *Error (BAD) after which the
// IDLE is over too and the stream at the next command; other errors are
// fatal.
func (r *Reader) ReadIdleDone() error {
	line, err := r.readLine()
	if err != nil {
		return err
	}
	if !strings.EqualFold(line, "DONE") {
		return &Error{Tag: r.tag, Type: "BAD", Text: "Expected DONE to end IDLE"}
	}
	return nil
}

// readLine reads a line without its CRLF, within MaxLine; an overlong one
// is an *Error once dropped, within MaxDiscard.
func (r *Reader) readLine() (string, error) {
	r.discarded = 0
	var b []byte
	for {
		chunk, err := r.br.ReadSlice('\n')
		if len(b)+len(chunk) > r.lim.MaxLine {
			r.atEnd = false
			if errors.Is(err, bufio.ErrBufferFull) || err == nil && !bytes.HasSuffix(chunk, []byte("\n")) {
				r.line = 0
				if serr := r.skipCommand(); serr != nil {
					return "", serr
				}
			}
			return "", &Error{Tag: r.tag, Type: "BAD", Code: "LIMIT", Text: fmt.Sprintf("Line longer than %d bytes", r.lim.MaxLine)}
		}
		b = append(b, chunk...)
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return "", err
		}
		s := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
		return s, nil
	}
}
