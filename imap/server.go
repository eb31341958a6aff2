package imap

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	goimap "github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"github.com/mailsys/mailsys/internal/gate"
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

// Config configures a Server. A zero field means its default (see
// DefaultConfig); NewServer copies the Config. The server needs TLS, or
// InsecureAuth, for anybody to log in: Validate refuses a Config with
// neither.
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
	// Logger receives the server's logs. Nil means slog.Default().
	Logger *slog.Logger
	// Metrics, if set, is told of connections, commands and logins (see
	// Metrics). Nil means none.
	Metrics Metrics
	// Logins, if set, is told of every user who logs in.
	Logins userdata.LoginObserver
}

// Defaults of Config's zero values.
const (
	defaultMaxAppendSize      = 64 << 20
	defaultPreAuthTimeout     = time.Minute
	defaultPreAuthBytes       = 64 << 10
	defaultIdleTimeout        = 30 * time.Minute
	defaultIdleCommandTimeout = 30 * time.Minute
)

// DefaultConfig returns the Config that the zero value stands for, with
// every default spelled out. It has neither TLS nor InsecureAuth: set one.
func DefaultConfig() Config {
	return Config{
		MaxAppendSize:      defaultMaxAppendSize,
		PreAuthTimeout:     defaultPreAuthTimeout,
		PreAuthBytes:       defaultPreAuthBytes,
		IdleTimeout:        defaultIdleTimeout,
		IdleCommandTimeout: defaultIdleCommandTimeout,
	}
}

// Validate reports every problem of c at once, each naming its field, or
// nil. NewServer calls it.
func (c Config) Validate() error {
	var errs []error
	for _, f := range []struct {
		name string
		v    int64
		unit string
	}{
		{"MaxAppendSize", c.MaxAppendSize, " bytes"}, {"PreAuthBytes", c.PreAuthBytes, " bytes"},
	} {
		if f.v < 0 {
			errs = append(errs, fmt.Errorf("imap: negative %s %d%s", f.name, f.v, f.unit))
		}
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"PreAuthTimeout", c.PreAuthTimeout}, {"IdleTimeout", c.IdleTimeout}, {"IdleCommandTimeout", c.IdleCommandTimeout},
	} {
		if d.v < 0 {
			errs = append(errs, fmt.Errorf("imap: negative %s %v", d.name, d.v))
		}
	}
	if c.TLS == nil && !c.InsecureAuth {
		errs = append(errs, errors.New("imap: neither TLS nor InsecureAuth: nobody could log in"))
	}
	return errors.Join(errs...)
}

// withDefaults returns c with its zero values replaced by the defaults.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.MaxAppendSize == 0 {
		c.MaxAppendSize = d.MaxAppendSize
	}
	if c.PreAuthTimeout == 0 {
		c.PreAuthTimeout = d.PreAuthTimeout
	}
	if c.PreAuthBytes == 0 {
		c.PreAuthBytes = d.PreAuthBytes
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = d.IdleTimeout
	}
	if c.IdleCommandTimeout == 0 {
		c.IdleCommandTimeout = d.IdleCommandTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Metrics == nil {
		c.Metrics = noMetrics{}
	}
	return c
}

// Server is an IMAP server over a UserDB and a message store.
type Server struct {
	cfg   Config
	log   *slog.Logger
	users UserDB
	store Bodies
	open  *mailboxes
	srv   *imapserver.Server

	// ctx is the context of every backend call; Close cancels it, and
	// Shutdown once the sessions are gone or its own context ends.
	ctx    context.Context
	cancel context.CancelFunc

	mu       sync.Mutex
	sessions map[*session]struct{}
	closing  atomic.Bool   // set under mu
	done     chan struct{} // closed when Shutdown or Close begins
	drained  chan struct{} // closed once closing and no session is left

	closeOnce sync.Once // closes go-imap's server
	closeErr  error

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

// NewServer returns a server of users' mail, with bodies in store, or
// Validate's error. Serve or ServeTLS starts it.
func NewServer(cfg Config, users UserDB, store Bodies) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{cfg: cfg, log: cfg.Logger.With("component", "imap"), users: users, store: store,
		ctx: ctx, cancel: cancel, sessions: map[*session]struct{}{},
		done: make(chan struct{}), drained: make(chan struct{})}
	s.open = newMailboxes(users)
	s.srv = imapserver.New(&imapserver.Options{
		NewSession:   s.newSession,
		Caps:         caps,
		Logger:       errorLog{s.log},
		TLSConfig:    cfg.TLS,
		InsecureAuth: cfg.InsecureAuth,
	})
	return s, nil
}

// ErrServerClosed is returned by Serve and ServeTLS once Shutdown or Close
// has begun.
var ErrServerClosed = errors.New("imap: server closed")

// Serve accepts connections on l until Shutdown or Close. The Guard admits each
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
	g := &gate.Listener{Listener: l, Name: name, Admitter: s.cfg.Guard, Refusal: refusal, Logger: s.log}
	if _, none := s.cfg.Metrics.(noMetrics); !none {
		g.Admitter = countingGuard{s.cfg.Guard, s.cfg.Metrics}
	}
	return g
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

// stop begins Shutdown or Close: no new session starts, and pauses end.
// It returns the sessions there are.
func (s *Server) stop() []*session {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closing.Load() {
		s.closing.Store(true)
		close(s.done)
		if len(s.sessions) == 0 {
			close(s.drained)
		}
	}
	list := make([]*session, 0, len(s.sessions))
	for sess := range s.sessions {
		list = append(list, sess)
	}
	return list
}

// Shutdown stops accepting connections, says BYE to every session and
// closes it, and waits for the sessions to end: a command in progress
// runs on until it notices its connection is gone. IMAP sessions are
// long-lived, so it does not wait for clients to log out. If ctx ends
// first, Shutdown does what Close does, cancelling the backend calls in
// progress, and returns ctx's error. Either way, the server's backend
// calls are cancelled when it returns.
func (s *Server) Shutdown(ctx context.Context) error {
	list := s.stop()
	byes := make(chan struct{})
	go func() {
		for _, sess := range list {
			sess.conn.Bye("Server shutting down")
		}
		close(byes)
	}()
	var err error
	select {
	case <-byes:
		select {
		case <-s.drained:
		case <-ctx.Done():
			err = ctx.Err()
		}
	case <-ctx.Done():
		err = ctx.Err()
	}
	s.cancel()
	if cerr := s.closeAll(); err == nil {
		err = cerr
	}
	return err
}

// Close stops accepting connections and closes every connection at once,
// without a word, cancelling the backend calls in progress. It does not
// wait for the sessions' commands to notice.
func (s *Server) Close() error {
	s.stop()
	s.cancel()
	return s.closeAll()
}

// closeAll closes go-imap's listeners and connections, once.
func (s *Server) closeAll() error {
	s.closeOnce.Do(func() {
		s.closeErr = s.srv.Close()
		if errors.Is(s.closeErr, net.ErrClosed) {
			s.closeErr = nil
		}
	})
	return s.closeErr
}

func (s *Server) newSession(c *imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
	ap, _ := netip.ParseAddrPort(c.NetConn().RemoteAddr().String())
	sess := &session{srv: s, conn: c, ip: ap.Addr().Unmap()}
	s.mu.Lock()
	if s.closing.Load() {
		s.mu.Unlock()
		return nil, nil, &goimap.Error{Type: goimap.StatusResponseTypeBye, Text: "Server shutting down"}
	}
	s.sessions[sess] = struct{}{}
	s.mu.Unlock()
	sess.followCommands()
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
	defer s.mu.Unlock()
	if _, ok := s.sessions[sess]; !ok {
		return
	}
	delete(s.sessions, sess)
	if s.closing.Load() && len(s.sessions) == 0 {
		close(s.drained)
	}
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

// took reports command name, begun at began, to the Metrics: deferred
// by the session's methods.
func (s *session) took(name string, began time.Time) {
	s.srv.cfg.Metrics.Command(name, time.Since(began))
}
