package mta

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mailsys/mailsys/internal/gate"
)

// go-smtp (v0.25) takes a BDAT chunk cut short by a client that vanished
// for a whole one: the message would end where the connection did and be
// accepted. So every connection notes a failed read, and the body reader
// Data hands on turns the end of a message that came with one into
// io.ErrUnexpectedEOF. A read past the end of a chunk happens only when
// the chunk is short, so a client that sends its last chunk and closes
// its side is not affected.
//
// The same connection keeps the session's deadlines, which go-smtp's one
// timeout per command line cannot express: the end of the session
// (InboundConfig.MaxSession), the login deadline of a submission client
// (LoginTimeout) and the end of the message being received (DataTimeout).
// go-smtp sets a read deadline before each command line; the connection
// keeps it within these, so a client trickling bytes extends none of them.
// When a read times out go-smtp answers 421 and closes the connection.
//
// And it notes whether the client greeted with HELO or EHLO, which go-smtp
// does not tell its backend but the Received field says (RFC 3848): from
// go-smtp's reply, "250-Hello" to EHLO (always followed by extensions) and
// "250 2.0.0 Hello" to HELO. Under TLS the connection sees only
// ciphertext, and the last greeting it saw stays; a TLS session is ESMTP
// whatever its greeting.

// watchedConn is a client connection that notes a failed read and the
// greeting, and keeps the session's deadlines.
type watchedConn struct {
	net.Conn
	failed   atomic.Bool
	timedOut atomic.Pointer[error] // the timeout every read returns once one timed out
	greeting atomic.Int32          // greetHELO, greetEHLO, or zero before either

	mu         sync.Mutex
	end        time.Time // of the session
	login      time.Time // to log in by; zero once logged in, or if none
	data       time.Time // to finish the message by; zero outside one
	closeAfter bool      // the next write is the session's last reply
}

// Read reads from the connection. A timeout is final: every later read
// fails with it too. (A command line cut by its deadline reaches go-smtp
// as a line, since bufio.Reader.ReadLine returns what it has and drops the
// error; without this, the next line would get a new deadline and a
// trickling client would go on for ever.)
func (c *watchedConn) Read(p []byte) (int, error) {
	if err := c.timedOut.Load(); err != nil {
		return 0, *err
	}
	n, err := c.Conn.Read(p)
	if err != nil {
		c.failed.Store(true)
		if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
			c.timedOut.Store(&err)
		}
	}
	return n, err
}

// Write writes p, and closes the connection after it if the session's
// last reply was due (see closeAfterReply). go-smtp writes each reply
// line with one Write.
func (c *watchedConn) Write(p []byte) (int, error) {
	if len(p) > 4 && string(p[:3]) == "250" {
		switch {
		case bytes.HasPrefix(p[3:], []byte("-Hello ")):
			c.greeting.Store(greetEHLO)
		case bytes.HasPrefix(p[3:], []byte(" 2.0.0 Hello ")):
			c.greeting.Store(greetHELO)
		}
	}
	n, err := c.Conn.Write(p)
	c.mu.Lock()
	last := c.closeAfter
	c.mu.Unlock()
	if last {
		c.Conn.Close()
	}
	return n, err
}

// SetReadDeadline sets a deadline within the session's.
func (c *watchedConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	t = c.boundLocked(t)
	c.mu.Unlock()
	return c.Conn.SetReadDeadline(t)
}

func (c *watchedConn) SetDeadline(t time.Time) error {
	if err := c.Conn.SetWriteDeadline(t); err != nil {
		return err
	}
	return c.SetReadDeadline(t)
}

// boundLocked returns the earliest of t and the session's deadlines.
func (c *watchedConn) boundLocked(t time.Time) time.Time {
	for _, d := range []time.Time{c.end, c.login, c.data} {
		if !d.IsZero() && (t.IsZero() || d.Before(t)) {
			t = d
		}
	}
	return t
}

// closeAfterReply makes the connection close once the next reply is
// written: a session that ends with a 421 (or a 451 after a message that
// timed out) is closed, not left to the client.
func (c *watchedConn) closeAfterReply() {
	c.mu.Lock()
	c.closeAfter = true
	c.mu.Unlock()
}

// loggedIn lifts the login deadline.
func (c *watchedConn) loggedIn() {
	c.mu.Lock()
	c.login = time.Time{}
	c.mu.Unlock()
}

// startData gives the message being received until now+d (within the
// session's end) to arrive, whatever deadline the command line had.
func (c *watchedConn) startData(d time.Duration) {
	c.mu.Lock()
	c.data = time.Now().Add(d)
	t := c.boundLocked(c.data)
	c.mu.Unlock()
	c.Conn.SetReadDeadline(t)
}

// endData ends the message's deadline.
func (c *watchedConn) endData() {
	c.mu.Lock()
	c.data = time.Time{}
	c.mu.Unlock()
}

// watchedListener wraps each accepted connection in a watchedConn with
// the listener's deadlines.
type watchedListener struct {
	net.Listener
	in *Inbound
}

func (l watchedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	w := &watchedConn{Conn: c, end: now.Add(l.in.cfg.MaxSession)}
	if l.in.auth != nil {
		w.login = now.Add(l.in.cfg.LoginTimeout)
	}
	return w, nil
}

// watchedOf finds the watchedConn under c (a TLS connection's), or nil.
func watchedOf(c net.Conn) *watchedConn {
	for {
		switch x := c.(type) {
		case *watchedConn:
			return x
		case interface{ NetConn() net.Conn }:
			c = x.NetConn()
		default:
			return nil
		}
	}
}

// The greetings a watchedConn tells apart.
const (
	greetHELO = 1 + iota
	greetEHLO
)

// greetingOf returns how the client of c last greeted in the clear:
// greetHELO, greetEHLO, or zero if unknown.
func greetingOf(c net.Conn) int32 {
	if w := watchedOf(c); w != nil {
		return w.greeting.Load()
	}
	return 0
}

// readFailed reports whether a read on c, or on the connection under it
// (a TLS connection's), has failed.
func readFailed(c net.Conn) bool {
	w := watchedOf(c)
	return w != nil && w.failed.Load()
}

// wholeBody reads a message body and fails with io.ErrUnexpectedEOF if it
// ends because the client's connection did.
type wholeBody struct {
	r    io.Reader
	conn func() net.Conn
}

func (b wholeBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err == io.EOF && readFailed(b.conn()) {
		return n, io.ErrUnexpectedEOF
	}
	return n, err
}

// Serve accepts connections on l until Close or Shutdown. The Guard
// decides on each connection as it is accepted, before the greeting: a
// refused client is answered 421 and closed.
// It returns ErrServerClosed after Shutdown or Close.
func (in *Inbound) Serve(l net.Listener) error { return in.serve(in.gated(l, false)) }

// ServeTLS is Serve for an implicit-TLS listener (RFC 8314): every
// connection starts with a TLS handshake under InboundConfig.TLS.
// A client the Guard refuses is closed before the handshake.
func (in *Inbound) ServeTLS(l net.Listener) error {
	if in.cfg.TLS == nil {
		return errors.New("mta: ServeTLS without InboundConfig.TLS")
	}
	return in.serve(tls.NewListener(in.gated(l, true), in.cfg.TLS))
}

// gated wraps l so that the Guard admits each connection at accept, under
// the listener's name ("smtp", "submission", and with an "s" for implicit
// TLS), and each admitted connection is watched. The gate names the
// listener in its own log lines, so it gets the logger without the name.
func (in *Inbound) gated(l net.Listener, implicitTLS bool) net.Listener {
	g := &gate.Listener{Listener: l, Name: in.name, Admitter: in.cfg.Guard, Logger: in.base,
		Refusal: fmt.Appendf(nil, "421 4.7.0 %s Too many connections, try again later\r\n", in.cfg.Hostname)}
	if implicitTLS {
		g.Name += "s"
		g.Refusal = nil
	}
	if _, none := in.cfg.Metrics.(noMetrics); !none {
		g.Admitter = countingGuard{in.cfg.Guard, in.cfg.Metrics}
	}
	return watchedListener{g, in}
}
