package mta

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"sync/atomic"

	"github.com/mailsys/mailsys/internal/gate"
)

// go-smtp (v0.25) takes a BDAT chunk cut short by a client that vanished
// for a whole one: the message would end where the connection did and be
// accepted. So every connection notes a failed read, and the body reader
// Data hands on turns the end of a message that came with one into
// io.ErrUnexpectedEOF. A read past the end of a chunk happens only when
// the chunk is short, so a client that sends its last chunk and closes
// its side is not affected.

// watchedConn is a client connection that notes a failed read.
type watchedConn struct {
	net.Conn
	failed atomic.Bool
}

func (c *watchedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if err != nil {
		c.failed.Store(true)
	}
	return n, err
}

// watchedListener wraps each accepted connection in a watchedConn.
type watchedListener struct {
	net.Listener
	in *Inbound
}

func (l watchedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &watchedConn{Conn: c}, nil
}

// readFailed reports whether a read on c, or on the connection under it
// (a TLS connection's), has failed.
func readFailed(c net.Conn) bool {
	for {
		switch x := c.(type) {
		case *watchedConn:
			return x.failed.Load()
		case interface{ NetConn() net.Conn }:
			c = x.NetConn()
		default:
			return false
		}
	}
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
func (in *Inbound) Serve(l net.Listener) error { return in.srv.Serve(in.gated(l, false)) }

// ServeTLS is Serve for an implicit-TLS listener (RFC 8314): every
// connection starts with a TLS handshake under InboundConfig.TLSConfig.
// A client the Guard refuses is closed before the handshake.
func (in *Inbound) ServeTLS(l net.Listener) error {
	if in.cfg.TLSConfig == nil {
		return errors.New("mta: ServeTLS without InboundConfig.TLSConfig")
	}
	return in.srv.Serve(tls.NewListener(in.gated(l, true), in.cfg.TLSConfig))
}

// gated wraps l so that the Guard admits each connection at accept, under
// the listener's name ("smtp", "submission", and with an "s" for implicit
// TLS), and each admitted connection is watched.
func (in *Inbound) gated(l net.Listener, implicitTLS bool) net.Listener {
	g := &gate.Listener{Listener: l, Name: in.name, Admitter: in.cfg.Guard, Logger: in.log,
		Refusal: fmt.Appendf(nil, "421 4.7.0 %s Too many connections, try again later\r\n", in.cfg.Hostname)}
	if implicitTLS {
		g.Name += "s"
		g.Refusal = nil
	}
	return watchedListener{g, in}
}
