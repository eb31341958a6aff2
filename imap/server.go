package imap

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	goimap "github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"github.com/mailsys/mailsys/internal/gate"
	"github.com/mailsys/mailsys/msstore"
	"github.com/mailsys/mailsys/userdata"
)

// Guard is the access policy the server shares with the other listeners:
// *mta.Guard satisfies it.
type Guard interface {
	// Admit decides, as the listener accepts it, whether a connection
	// from ip is served; release gives its slot back when it ends. The
	// listener is "imap" for Serve and "imaps" for ServeTLS. It must not
	// block.
	Admit(listener string, ip netip.Addr) (release func(), err error)
	// AuthAllowed reports whether ip may try to log in to account now.
	AuthAllowed(ip netip.Addr, account string) bool
	AuthFailed(ip netip.Addr, account string) (delay time.Duration)
	AuthSucceeded(ip netip.Addr, account string)
}

// UserDB is what the server needs of the user database: the whole of it,
// and the watcher that tells sessions about each other's changes and
// about new mail. userdata.DB satisfies it.
type UserDB interface {
	userdata.UserDB
	userdata.Watcher
}

// Bodies is what the server needs of the message store; msstore.Storage
// satisfies it.
type Bodies interface {
	Put(ctx context.Context, r io.Reader, meta msstore.Meta) (msstore.Ref, error)
	Open(ctx context.Context, ref msstore.Ref) (msstore.Body, error)
	Retain(ctx context.Context, ref msstore.Ref, n int) error
	Release(ctx context.Context, ref msstore.Ref) error
}

// Config configures a Server. The zero value serves IMAP4rev1 and
// IMAP4rev2 without TLS, refuses logins before TLS (so nobody can log in),
// and has no access limits.
type Config struct {
	// TLS enables STARTTLS and is the configuration ServeTLS uses.
	TLS *tls.Config
	// InsecureAuth allows LOGIN and AUTHENTICATE before TLS.
	InsecureAuth bool
	// Guard limits connections and failed logins; nil means no limits.
	Guard Guard
	// MaxAppendSize bounds an APPEND (APPENDLIMIT); 0 means 64 MiB. A
	// user's own smaller limit (userdata.Limits.MaxMessageSize) applies too.
	MaxAppendSize int64
	// PreAuthTimeout and PreAuthBytes bound a connection until it logs in:
	// 0 means 60 seconds and 64 KiB.
	PreAuthTimeout time.Duration
	PreAuthBytes   int64
	// IdleTimeout is the autologout timer (RFC 9051 and RFC 3501 section
	// 5.4): a logged-in session that does not send a whole command within
	// IdleTimeout of the server starting to wait for one is closed. The
	// time is counted from then, not from the client's last byte, so a
	// command trickled in a byte at a time does not extend it. Zero means
	// 30 minutes, the least the RFCs allow. go-imap's own limits apply
	// too: a command must come whole within 30 seconds of its first byte,
	// and an APPEND's message within 5 minutes.
	IdleTimeout time.Duration
	// IdleCommandTimeout bounds an IDLE command (RFC 2177), during which
	// IdleTimeout does not run: a session still in IDLE after this long is
	// closed. Clients re-issue IDLE every 29 minutes at least. Zero means
	// 30 minutes.
	IdleCommandTimeout time.Duration
	Logger             *slog.Logger // nil means slog.Default()
}

// Server is an IMAP server over a UserDB and a message store.
type Server struct {
	cfg   Config
	log   *slog.Logger
	users UserDB
	store Bodies
	open  *mailboxes
	srv   *imapserver.Server

	mu       sync.Mutex
	sessions map[*session]struct{}
	closing  atomic.Bool
	done     chan struct{} // closed when Shutdown begins
	doneOnce sync.Once

	unfollowed sync.Once // logs that go-imap's commands cannot be followed
}

// Capabilities advertised beyond those go-imap adds by itself. Not
// BINARY, until go-imap can write a partial BINARY response: see binary.go.
var caps = goimap.CapSet{
	goimap.CapIMAP4rev1:        {},
	goimap.CapIMAP4rev2:        {},
	goimap.CapNamespace:        {},
	goimap.CapUIDPlus:          {},
	goimap.CapESearch:          {},
	goimap.CapSearchRes:        {},
	goimap.CapListExtended:     {},
	goimap.CapListStatus:       {},
	goimap.CapMove:             {},
	goimap.CapStatusSize:       {},
	goimap.CapChildren:         {},
	goimap.CapSpecialUse:       {},
	goimap.CapLiteralPlus:      {},
	goimap.CapCreateSpecialUse: {},
}

// NewServer returns a server of users' mail, with bodies in store.
func NewServer(cfg Config, users UserDB, store Bodies) *Server {
	if cfg.MaxAppendSize <= 0 {
		cfg.MaxAppendSize = 64 << 20
	}
	if cfg.PreAuthTimeout <= 0 {
		cfg.PreAuthTimeout = time.Minute
	}
	if cfg.PreAuthBytes <= 0 {
		cfg.PreAuthBytes = 64 << 10
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = 30 * time.Minute
	}
	if cfg.IdleCommandTimeout <= 0 {
		cfg.IdleCommandTimeout = 30 * time.Minute
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	s := &Server{cfg: cfg, log: log.With("component", "imap"), users: users, store: store, sessions: map[*session]struct{}{}, done: make(chan struct{})}
	s.open = newMailboxes(users)
	s.srv = imapserver.New(&imapserver.Options{
		NewSession:   s.newSession,
		Caps:         caps,
		Logger:       errorLog{s.log},
		TLSConfig:    cfg.TLS,
		InsecureAuth: cfg.InsecureAuth,
	})
	return s
}

// ErrServerClosed is returned by Serve and ServeTLS once Shutdown has
// begun.
var ErrServerClosed = errors.New("imap: server closed")

// Serve accepts connections on l until Shutdown. The Guard admits each
// connection as it is accepted, as listener "imap"; a refused one is
// answered "* BYE [UNAVAILABLE]" and closed before any greeting. An
// accept error that is temporary (too many open files, for one) is
// retried with a backoff of up to a second, by go-imap's accept loop, so
// that serving resumes once the load drops; any other ends Serve.
func (s *Server) Serve(l net.Listener) error {
	return s.serve(limitListener{s.gated(l, "imap", refusal), s})
}

// ServeTLS is Serve for an implicit-TLS listener (RFC 8314): every
// connection starts with a TLS handshake under Config.TLS. The Guard
// admits connections as listener "imaps", before the handshake, so a
// refused client costs none: it is closed without a word.
func (s *Server) ServeTLS(l net.Listener) error {
	if s.cfg.TLS == nil {
		return errors.New("imap: ServeTLS without Config.TLS")
	}
	return s.serve(tls.NewListener(limitListener{s.gated(l, "imaps", nil), s}, s.cfg.TLS))
}

// refusal is what a plain connection the Guard refuses is told.
var refusal = []byte("* BYE [UNAVAILABLE] Too many connections, try again later\r\n")

// gated wraps l so that the Guard admits each connection at accept.
func (s *Server) gated(l net.Listener, name string, refusal []byte) net.Listener {
	return &gate.Listener{Listener: l, Name: name, Admitter: s.cfg.Guard, Refusal: refusal, Logger: s.log}
}

func (s *Server) serve(l net.Listener) error {
	if s.closing.Load() {
		l.Close()
		return ErrServerClosed
	}
	err := s.srv.Serve(l)
	if s.closing.Load() {
		return ErrServerClosed // go-imap returns nil for its closed listener
	}
	return err
}

// Shutdown stops accepting connections, says BYE to every session and
// closes them. IMAP sessions are long-lived, so it does not wait for
// clients to log out; ctx bounds the goodbyes.
func (s *Server) Shutdown(ctx context.Context) error {
	s.closing.Store(true)
	s.doneOnce.Do(func() { close(s.done) })
	s.mu.Lock()
	list := make([]*session, 0, len(s.sessions))
	for sess := range s.sessions {
		list = append(list, sess)
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() {
		for _, sess := range list {
			sess.conn.Bye("Server shutting down")
		}
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
	}
	err := s.srv.Close()
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}

func (s *Server) newSession(c *imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
	if s.closing.Load() {
		return nil, nil, &goimap.Error{Type: goimap.StatusResponseTypeBye, Text: "Server shutting down"}
	}
	ap, _ := netip.ParseAddrPort(c.NetConn().RemoteAddr().String())
	sess := &session{srv: s, conn: c, ip: ap.Addr().Unmap()}
	sess.followCommands()
	s.mu.Lock()
	s.sessions[sess] = struct{}{}
	s.mu.Unlock()
	return sess, nil, nil
}

// pause waits d, or until Shutdown begins.
func (s *Server) pause(d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-s.done:
	}
}

func (s *Server) forget(sess *session) {
	s.mu.Lock()
	delete(s.sessions, sess)
	s.mu.Unlock()
}

// errorLog sends go-imap's error log to slog.
type errorLog struct{ log *slog.Logger }

func (e errorLog) Printf(format string, v ...any) { e.log.Warn(fmt.Sprintf(format, v...)) }

// limitListener bounds each connection until it logs in.
type limitListener struct {
	net.Listener
	s *Server
}

func (l limitListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &limitConn{Conn: c, deadline: time.Now().Add(l.s.cfg.PreAuthTimeout), left: l.s.cfg.PreAuthBytes, idleTimeout: l.s.cfg.IdleTimeout}, nil
}

// limitConn is a client connection that, until authenticated, reads at
// most left bytes and nothing after deadline. Once authenticated it
// reads nothing after the deadline of the command being waited for, which
// runs IdleTimeout from when the server started waiting for it, or, in
// IDLE, after the IDLE command's own end. It can also hold writes back:
// go-imap flushes every response line, one write each, so a FETCH of many
// messages would cost a system call per message.
//
// go-imap (v2.0.0-beta.8) sets read deadlines of its own, and they tell
// limitConn where the session is: 35 minutes when it starts waiting for a
// logged-in session's next command (and for the DONE of an IDLE, which
// Idle announces itself), 30 seconds once a command's first byte has
// come, 5 minutes for an APPEND's message. SetReadDeadline keeps the
// first within the command's deadline, lets the literal have its 5
// minutes, and bounds the others by both.
type limitConn struct {
	net.Conn
	idleTimeout time.Duration
	authed      atomic.Bool
	mu          sync.Mutex
	deadline    time.Time // before login, the connection's; after, the command's
	left        int64
	idling      bool // in IDLE, until idleEnd
	idleEnd     time.Time
	onWait      func() // called when go-imap starts waiting for a logged-in session's command

	wmu     sync.Mutex
	holding bool
	held    []byte
}

// maxHeld bounds the bytes held back before they are written anyway.
const maxHeld = 64 << 10

func (c *limitConn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if !c.holding {
		return c.Conn.Write(p)
	}
	c.held = append(c.held, p...)
	if len(c.held) >= maxHeld {
		if err := c.flushLocked(); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

func (c *limitConn) flushLocked() error {
	if len(c.held) == 0 {
		return nil
	}
	_, err := c.Conn.Write(c.held)
	c.held = c.held[:0]
	return err
}

// hold makes writes on the connection under c wait in a buffer until the
// returned function is called, which writes them.
func hold(c net.Conn) (release func() error) {
	x := limitConnOf(c)
	if x == nil {
		return func() error { return nil }
	}
	x.wmu.Lock()
	x.holding = true
	x.wmu.Unlock()
	return func() error {
		x.wmu.Lock()
		defer x.wmu.Unlock()
		x.holding = false
		err := x.flushLocked()
		if cap(x.held) > maxHeld*2 {
			x.held = nil
		}
		return err
	}
}

var errPreAuthLimit = errors.New("imap: connection not authenticated in time or within its byte limit")

func (c *limitConn) Read(p []byte) (int, error) {
	if c.authed.Load() {
		return c.Conn.Read(p)
	}
	c.mu.Lock()
	left, deadline := c.left, c.deadline
	c.mu.Unlock()
	if left <= 0 || time.Now().After(deadline) {
		return 0, errPreAuthLimit
	}
	if int64(len(p)) > left {
		p = p[:left]
	}
	n, err := c.Conn.Read(p)
	c.mu.Lock()
	c.left -= int64(n)
	c.mu.Unlock()
	return n, err
}

// How far ahead go-imap's deadlines are when it waits for a command of a
// logged-in session (35 minutes) and for an APPEND's message (5 minutes);
// its deadline for reading a command is 30 seconds.
const (
	waitSignal    = 10 * time.Minute
	literalSignal = time.Minute
)

// SetReadDeadline turns go-imap's deadlines into the connection's: within
// the pre-authentication one before login; after it, as the type's
// comment says.
func (c *limitConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	now := time.Now()
	var wait func()
	switch {
	case !c.authed.Load():
		t = earliest(t, c.deadline)
	case c.idling:
		t = c.idleEnd
	case !t.IsZero() && t.Sub(now) >= waitSignal:
		// Waiting for the next command: it must come whole in time.
		c.deadline = now.Add(c.idleTimeout)
		t = c.deadline
		wait = c.onWait
	case !t.IsZero() && t.Sub(now) >= literalSignal:
		// An APPEND's message has go-imap's time, and the command the
		// rest of it.
		if t.After(c.deadline) {
			c.deadline = t
		}
	default:
		t = earliest(t, c.deadline)
	}
	c.mu.Unlock()
	err := c.Conn.SetReadDeadline(t)
	if wait != nil {
		wait()
	}
	return err
}

// setOnWait makes f called, in go-imap's goroutine, each time go-imap
// starts waiting for a command of the logged-in session.
func (c *limitConn) setOnWait(f func()) {
	c.mu.Lock()
	c.onWait = f
	c.mu.Unlock()
}

// timeoutReason says which deadline a read of a logged-in session missed.
func (c *limitConn) timeoutReason() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	switch {
	case c.idling && !now.Before(c.idleEnd):
		return "IDLE for too long"
	case !c.idling && !now.Before(c.deadline):
		return "Autologout; idle for too long"
	}
	return "Command not completed in time"
}

// earliest returns the earlier of t and d, a zero t meaning no deadline.
func earliest(t, d time.Time) time.Time {
	if t.IsZero() || d.Before(t) {
		return d
	}
	return t
}

// startIdle lets the connection under c, in IDLE, be read until d from
// now, whatever go-imap's deadlines; endIdle ends that.
func startIdle(c net.Conn, d time.Duration) {
	if x := limitConnOf(c); x != nil {
		x.mu.Lock()
		x.idling = true
		x.idleEnd = time.Now().Add(d)
		end := x.idleEnd
		x.mu.Unlock()
		x.Conn.SetReadDeadline(end)
	}
}

func endIdle(c net.Conn) {
	if x := limitConnOf(c); x != nil {
		x.mu.Lock()
		x.idling = false
		x.mu.Unlock()
	}
}

func (c *limitConn) SetDeadline(t time.Time) error {
	if err := c.Conn.SetWriteDeadline(t); err != nil {
		return err
	}
	return c.SetReadDeadline(t)
}

// lift replaces the pre-authentication limits of the connection under c
// by the logged-in session's, once logged in.
func lift(c net.Conn) {
	if x := limitConnOf(c); x != nil {
		x.mu.Lock()
		x.authed.Store(true)
		x.deadline = time.Now().Add(x.idleTimeout)
		d := x.deadline
		x.mu.Unlock()
		x.Conn.SetReadDeadline(d)
	}
}

// limitConnOf finds the limitConn under c (a TLS connection's), or nil.
func limitConnOf(c net.Conn) *limitConn {
	for {
		switch x := c.(type) {
		case *limitConn:
			return x
		case interface{ NetConn() net.Conn }:
			c = x.NetConn()
		default:
			return nil
		}
	}
}
