// Package gate admits or refuses connections as a listener accepts them,
// before the greeting and before TLS, for the protocol servers (mta, imap,
// pop3): a refused client gets the protocol's busy reply and is closed at
// once, and the accept loop goes on.
package gate

import (
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// Admitter decides on new connections; *mta.Guard satisfies it. Admit must
// not block. If it returns nil, release is called once the connection is
// closed.
type Admitter interface {
	Admit(listener string, ip netip.Addr) (release func(), err error)
}

// Listener is a net.Listener whose Accept returns only the connections
// Admitter admits, each of which gives its place back when closed.
type Listener struct {
	net.Listener
	// Name tells the listener apart from the others of the Admitter.
	Name string
	// Admitter decides; nil admits every connection.
	Admitter Admitter
	// Refusal is written to a refused connection before it is closed; nil
	// closes it without a word (for implicit TLS, where a reply would
	// need a handshake the client has not earned).
	Refusal []byte
	// Logger notes refusals, at most one line a second.
	Logger *slog.Logger

	refused atomic.Int64 // since the last log line
	logMu   sync.Mutex
	logged  time.Time
}

// Accept waits for a connection that is admitted. Refused ones are
// answered and closed here.
func (l *Listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.Admitter == nil {
			return c, nil
		}
		ap, _ := netip.ParseAddrPort(c.RemoteAddr().String())
		release, err := l.Admitter.Admit(l.Name, ap.Addr().Unmap())
		if err == nil {
			return &Conn{Conn: c, release: release}, nil
		}
		l.refuse(c, err)
	}
}

// refuse answers and closes c. The reply is a few bytes on a fresh
// socket, whose send buffer is empty: the write does not wait, and the
// deadline makes sure of it.
func (l *Listener) refuse(c net.Conn, why error) {
	if len(l.Refusal) > 0 {
		c.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
		c.Write(l.Refusal)
	}
	c.Close()
	n := l.refused.Add(1)
	if l.Logger == nil {
		return
	}
	l.logMu.Lock()
	defer l.logMu.Unlock()
	if now := time.Now(); now.Sub(l.logged) >= time.Second {
		l.logged = now
		l.refused.Add(-n)
		l.Logger.Warn("connections refused", "listener", l.Name, "count", n, "last", c.RemoteAddr().String(), "why", why)
	}
}

// Conn is an admitted connection; Close gives its place back.
type Conn struct {
	net.Conn
	once    sync.Once
	release func()
}

// Close closes the connection and gives its place back to the Admitter.
func (c *Conn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
