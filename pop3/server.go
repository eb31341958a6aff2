package pop3

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/mailsys/mailsys/internal/gate"
	"github.com/mailsys/mailsys/internal/tlsconf"
	"github.com/mailsys/mailsys/msstore"
	"github.com/mailsys/mailsys/userdata"
)

// ErrServerClosed is returned by Serve and ServeTLS after Shutdown or
// Close.
var ErrServerClosed = errors.New("pop3: server closed")

// UserDB is what the server needs of the user database: logins, the INBOX,
// its messages, and the removal of the messages a session deleted.
// *userdata.DB satisfies it. The methods are called concurrently by the
// sessions and may block on I/O.
type UserDB interface {
	// Authenticate checks a login; the server asks for
	// userdata.ProtoPOP3.
	Authenticate(ctx context.Context, address, password string, p userdata.Protocol) (userdata.User, error)
	// Folder returns the INBOX, for its id and UIDVALIDITY.
	Folder(ctx context.Context, user userdata.UserID, name string) (userdata.Folder, error)
	// Messages lists the INBOX at login: the session's snapshot.
	Messages(ctx context.Context, user userdata.UserID, folder userdata.FolderID, set userdata.UIDSet, fn func(*userdata.Message) error) error
	// Remove deletes, in one atomic step, exactly the messages the
	// session marked (the UPDATE state): see userdata.Remover.
	Remove(ctx context.Context, user userdata.UserID, folder userdata.FolderID, set userdata.UIDSet) ([]userdata.UID, error)
}

// Bodies opens message bodies; msstore.Storage (and so *msstore.Volumes)
// satisfies it. Open is called concurrently and may block on I/O.
type Bodies interface {
	Open(ctx context.Context, ref msstore.Ref) (msstore.Body, error)
}

// The defaults satisfy the interfaces.
var (
	_ UserDB = (*userdata.DB)(nil)
	_ Bodies = msstore.Storage(nil)
)

// Guard holds the access rules the protocol servers share: allow and deny
// lists and lockouts after repeated login failures. *mta.Guard satisfies
// it. Its methods are called concurrently and must not block.
type Guard interface {
	// Admit decides on a connection from ip as the listener named
	// listener ("pop3" for Serve, "pop3s" for ServeTLS) accepts it,
	// before the greeting and before TLS; if it returns no error, the
	// server calls release once the connection is closed.
	Admit(listener string, ip netip.Addr) (release func(), err error)
	// AuthAllowed reports whether a login from ip for account may be
	// tried now.
	AuthAllowed(ip netip.Addr, account string) bool
	// AuthFailed counts a failed login and returns how long the server
	// waits before it answers the failure (zero for at once); the wait
	// ends early at Shutdown or Close, or at the login timeout, which
	// also ends the session.
	AuthFailed(ip netip.Addr, account string) (delay time.Duration)
	// AuthSucceeded clears the account's failures.
	AuthSucceeded(ip netip.Addr, account string)
}

// Config configures a Server. A zero field means its default (see
// DefaultConfig); NewServer copies the Config. The server needs TLS, or
// InsecureAuth, for anybody to log in: Validate refuses a Config with
// neither.
type Config struct {
	// Hostname is announced in the greeting and at QUIT. Zero means
	// "localhost".
	Hostname string
	// TLS enables STLS (RFC 2595) and is what ServeTLS serves. Nil turns
	// both off. Left to Go, its version and cipher suites become TLS 1.2
	// or later with AEAD suites only.
	TLS *tls.Config
	// InsecureAuth allows plain-text passwords (USER/PASS, AUTH PLAIN) on a
	// connection without TLS. Off by default: a client must STLS first.
	InsecureAuth bool
	// Guard holds the access rules shared with the other listeners: the
	// host program passes the System's (an *mta.Guard). Nil means none: no
	// allow or deny list and no lockout after failed logins.
	Guard Guard
	// LoginTimeout bounds the time from connecting to a successful login,
	// TLS handshake included, however busy the client keeps itself: a
	// connection not logged in by then is closed. Zero means 60 s.
	LoginTimeout time.Duration
	// CommandTimeout is RFC 1939's autologout timer: once logged in, each
	// command line must have arrived whole within CommandTimeout from
	// when the server starts waiting for it (a deadline fixed then, which
	// trickling bytes does not extend). A session that runs out of it is
	// closed without a reply and without the UPDATE state, so nothing is
	// deleted. Zero means 10 minutes, the least RFC 1939 allows; shorter
	// ones are for tests.
	CommandTimeout time.Duration
	// MaxSession bounds a session's length, from connecting, however busy
	// the client keeps it: past it, the next command is not read but
	// answered "-ERR Session time limit reached" and the connection
	// closed, and a reply still being sent (a long RETR to a slow reader)
	// is cut off and the connection closed. Either way the session does
	// not enter the UPDATE state: nothing it marked is deleted, and its
	// maildrop is free again. A QUIT read in time is answered in full.
	// Zero means 1 hour, enough to download gigabytes over a slow link.
	MaxSession time.Duration
	// WriteTimeout bounds each write to a client, so that one that stops
	// reading in the middle of a message is dropped. Zero means 1 minute.
	WriteTimeout time.Duration
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
	defaultHostname       = "localhost"
	defaultLoginTimeout   = 60 * time.Second
	defaultCommandTimeout = 10 * time.Minute
	defaultMaxSession     = time.Hour
	defaultWriteTimeout   = time.Minute
)

// DefaultConfig returns the Config that the zero value stands for, with
// every default spelled out. It has neither TLS nor InsecureAuth: set one.
func DefaultConfig() Config {
	return Config{
		Hostname:       defaultHostname,
		LoginTimeout:   defaultLoginTimeout,
		CommandTimeout: defaultCommandTimeout,
		MaxSession:     defaultMaxSession,
		WriteTimeout:   defaultWriteTimeout,
	}
}

// Validate reports every problem of c at once, each naming its field, or
// nil. NewServer calls it.
func (c Config) Validate() error {
	var errs []error
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"LoginTimeout", c.LoginTimeout}, {"CommandTimeout", c.CommandTimeout}, {"MaxSession", c.MaxSession},
		{"WriteTimeout", c.WriteTimeout}} {
		if d.v < 0 {
			errs = append(errs, fmt.Errorf("pop3: negative %s %v", d.name, d.v))
		}
	}
	if c.TLS == nil && !c.InsecureAuth {
		errs = append(errs, errors.New("pop3: neither TLS nor InsecureAuth: nobody could log in"))
	}
	return errors.Join(errs...)
}

// withDefaults returns c with its zero values replaced by the defaults.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.Hostname == "" {
		c.Hostname = d.Hostname
	}
	if c.LoginTimeout == 0 {
		c.LoginTimeout = d.LoginTimeout
	}
	if c.CommandTimeout == 0 {
		c.CommandTimeout = d.CommandTimeout
	}
	if c.MaxSession == 0 {
		c.MaxSession = d.MaxSession
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = d.WriteTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Metrics == nil {
		c.Metrics = noMetrics{}
	}
	return c
}

// Server is a POP3 server (RFC 1939) over a UserDB and a message store.
// One Server may serve several listeners at once (plain and implicit TLS):
// they share its maildrop locks, so a host program makes one Server, not
// one per listener. Its methods are safe for concurrent use.
type Server struct {
	cfg   Config
	log   *slog.Logger
	users UserDB
	store Bodies

	ctx    context.Context // the sessions'; cancelled by Close
	cancel context.CancelFunc

	stopping chan struct{} // closed when Shutdown or Close begins

	mu        sync.Mutex
	closing   bool // stopping is closed
	listeners map[net.Listener]struct{}
	sessions  map[*session]struct{}
	inUse     map[userdata.UserID]struct{} // maildrops locked by a session
	done      sync.WaitGroup               // session goroutines
}

// NewServer returns a server over users and store, with cfg's zero values
// replaced by their defaults, or Validate's error. Serve or ServeTLS
// starts it.
func NewServer(cfg Config, users UserDB, store Bodies) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	cfg.TLS = tlsconf.Harden(cfg.TLS)
	ctx, cancel := context.WithCancel(context.Background())
	return &Server{
		cfg: cfg, log: cfg.Logger.With("component", "pop3"), users: users, store: store,
		ctx: ctx, cancel: cancel, stopping: make(chan struct{}),
		listeners: map[net.Listener]struct{}{},
		sessions:  map[*session]struct{}{},
		inUse:     map[userdata.UserID]struct{}{},
	}, nil
}

// Serve accepts connections on l, each served in a goroutine of its own,
// until Shutdown or Close, and returns ErrServerClosed then.
//
// Config.Guard decides on each connection as it is accepted, under the
// listener name "pop3", before the greeting: a refused client is sent
// "-ERR [SYS/TEMP] Too many connections, try again later" and closed, and
// an admitted one gives its place back when it is closed. An accept that
// fails for want of resources (EMFILE and the like) is retried after a
// pause that doubles up to a second, until accepting works again.
func (s *Server) Serve(l net.Listener) error {
	return s.serve(s.gated(l, "pop3", []byte(refusal)), false)
}

// ServeTLS is Serve for an implicit-TLS listener ("pop3s", RFC 8314):
// every connection starts with a TLS handshake under Config.TLS, which must
// be set. The Guard decides under the listener name "pop3s", before the
// handshake, and a refused client is closed without a word: a reply would
// cost a handshake.
func (s *Server) ServeTLS(l net.Listener) error {
	if s.cfg.TLS == nil {
		return errors.New("pop3: ServeTLS needs Config.TLS")
	}
	return s.serve(tls.NewListener(s.gated(l, "pop3s", nil), s.cfg.TLS), true)
}

// refusal is the reply of Serve to a connection the Guard refuses.
const refusal = "-ERR [SYS/TEMP] Too many connections, try again later\r\n"

// gated wraps l so that the Guard admits each connection as it is
// accepted.
func (s *Server) gated(l net.Listener, name string, refusal []byte) net.Listener {
	// A nil Guard makes a nil Admitter, which admits everyone.
	g := &gate.Listener{Listener: l, Name: name, Admitter: s.cfg.Guard, Refusal: refusal, Logger: s.log}
	if _, none := s.cfg.Metrics.(noMetrics); !none {
		g.Admitter = countingGuard{s.cfg.Guard, s.cfg.Metrics}
	}
	return g
}

func (s *Server) serve(l net.Listener, implicitTLS bool) error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		l.Close()
		return ErrServerClosed
	}
	s.listeners[l] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, l)
		s.mu.Unlock()
		l.Close()
	}()
	var delay time.Duration
	for {
		c, err := l.Accept()
		if err != nil {
			if s.isClosing() {
				return ErrServerClosed
			}
			if errors.Is(err, net.ErrClosed) {
				return fmt.Errorf("pop3: accept: %w", err)
			}
			// Out of file descriptors and the like: wait and go on.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			s.log.Warn("accept failed; retrying", "err", err, "in", delay)
			select {
			case <-time.After(delay):
			case <-s.stopping:
			}
			continue
		}
		delay = 0
		ss := newSession(s, c, implicitTLS)
		if !s.track(ss) {
			c.Close()
			return ErrServerClosed
		}
		go ss.serve()
	}
}

func (s *Server) isClosing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closing
}

// track registers a new session, unless the server is closing.
func (s *Server) track(ss *session) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	s.sessions[ss] = struct{}{}
	s.done.Add(1)
	return true
}

// untrack forgets a session that has ended.
func (s *Server) untrack(ss *session) {
	s.mu.Lock()
	delete(s.sessions, ss)
	s.mu.Unlock()
	s.done.Done()
}

// stop stops accepting and closes the sessions waiting for a command; a
// session in the middle of one (a RETR, or the UPDATE state after QUIT)
// finishes it and then ends.
func (s *Server) stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closing {
		s.closing = true
		close(s.stopping)
	}
	for l := range s.listeners {
		l.Close()
	}
	for ss := range s.sessions {
		if ss.idle {
			ss.raw.Close()
		}
	}
}

// Shutdown stops accepting, closes the idle sessions at once (telling them
// nothing more: a session ended without QUIT deletes nothing), and waits
// for the sessions in the middle of a command, such as a QUIT applying its
// deletions, to finish it, or for ctx to end, when it closes them all as
// Close does and returns ctx's error.
func (s *Server) Shutdown(ctx context.Context) error {
	s.stop()
	finished := make(chan struct{})
	go func() { s.done.Wait(); close(finished) }()
	select {
	case <-finished:
		s.cancel()
		return nil
	case <-ctx.Done():
		s.Close()
		return ctx.Err()
	}
}

// Close stops accepting and closes every session at once, cancelling the
// calls they have in progress. A deletion in progress either commits
// whole or not at all.
func (s *Server) Close() error {
	s.stop()
	s.cancel()
	s.mu.Lock()
	defer s.mu.Unlock()
	for ss := range s.sessions {
		ss.raw.Close()
	}
	return nil
}

// lock takes the maildrop of user for one session; it reports false if
// another session of this server holds it.
func (s *Server) lock(user userdata.UserID) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, held := s.inUse[user]; held {
		return false
	}
	s.inUse[user] = struct{}{}
	return true
}

// unlock gives the maildrop of user back.
func (s *Server) unlock(user userdata.UserID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.inUse, user)
}
