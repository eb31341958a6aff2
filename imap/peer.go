package imap

import (
	"crypto/tls"
	"net"
	"syscall"
	"time"

	"github.com/mailsys/mailsys/internal/gate"
)

// go-imap gives a command no context, so a command that works long (a
// SEARCH over a large folder) would go on for a client that has hung up.
// A peerWatch tells, without reading from the connection, whether the
// client is gone: a non-blocking look at the socket under TLS and the
// limitConn (peerGone), at most every peerCheckEvery.

// peerCheckEvery is how often a long command looks at its connection.
const peerCheckEvery = 50 * time.Millisecond

// peerWatch watches the client of one connection.
type peerWatch struct {
	conn net.Conn
	next time.Time
}

// gone reports whether the client has closed the connection, looking at
// most every peerCheckEvery (false in between).
func (w *peerWatch) gone() bool {
	now := time.Now()
	if now.Before(w.next) {
		return false
	}
	w.next = now.Add(peerCheckEvery)
	return peerGone(w.conn)
}

// peerGone reports whether the client of c has closed its side of the
// connection or reset it. It neither reads nor waits. Under TLS a client
// that has closed the connection counts as gone even with bytes left
// unread (its close_notify); without TLS, a client that has only shut
// down its sending side with commands still to read does not.
func peerGone(c net.Conn) bool {
	raw, isTLS := socketOf(c)
	sc, ok := raw.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	gone := false
	if err := rc.Control(func(fd uintptr) { gone = socketClosed(fd, isTLS) }); err != nil {
		return true // the socket is closed already
	}
	return gone
}

// socketOf returns the network connection under c's TLS, limitConn and
// gate.Conn, and whether TLS was among them.
func socketOf(c net.Conn) (net.Conn, bool) {
	isTLS := false
	for {
		switch x := c.(type) {
		case *tls.Conn:
			isTLS = true
			c = x.NetConn()
		case *limitConn:
			c = x.Conn
		case *gate.Conn:
			c = x.Conn
		default:
			return c, isTLS
		}
	}
}
