// Package mailsys composes the mailsys packages into a running mail
// system: a message Storage (msstore), a UserDB (userdata), a delivery
// transaction log (txlog) and the protocol servers over them (mta's SMTP
// listeners, imap, pop3), opened, started and stopped together.
//
// A host program describes its system in a Config and calls Open, then
// Start; Shutdown stops it. Each backend is either the host program's own
// (Config.Storage, Config.UserDB, Config.TxLog: any implementation of the
// interfaces, such as msstore.Memory and userdata.Memory for a demo or a
// test, or remote ones) or, when nil, the embedded default under
// Config.DataDir, configured by StoreConfig, UserDBConfig and TxLogConfig.
// The protocol servers' own settings are Config.SMTP, IMAP and POP3, and
// the access rules shared by every listener Config.Access; every zero
// field means its package's default, and Config.Validate, which Open runs
// first, reports every problem at once. System hands the backends out as
// interfaces; their optional capabilities are found by interface
// assertion.
//
// Two Systems can run in one process: there is no global state.
package mailsys

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/mailsys/mailsys/admin"
	"github.com/mailsys/mailsys/imap"
	"github.com/mailsys/mailsys/internal/fsutil"
	"github.com/mailsys/mailsys/internal/tlsconf"
	"github.com/mailsys/mailsys/metrics"
	"github.com/mailsys/mailsys/msstore"
	"github.com/mailsys/mailsys/mta"
	"github.com/mailsys/mailsys/mta/mailauth"
	"github.com/mailsys/mailsys/mta/queue"
	"github.com/mailsys/mailsys/mta/resolve"
	"github.com/mailsys/mailsys/pop3"
	"github.com/mailsys/mailsys/txlog"
	"github.com/mailsys/mailsys/userdata"
)

// UserDB is what a System needs of its user database: the whole
// userdata.UserDB, with its changes streamed to watchers (userdata.Watcher,
// for IMAP's IDLE and concurrent sessions) and exact removal
// (userdata.Remover, for POP3's UPDATE state). userdata.DB and
// userdata.Memory satisfy it.
type UserDB interface {
	userdata.UserDB
	userdata.Watcher
	userdata.Remover
}

var _ UserDB = (*userdata.DB)(nil)

// System is a running composition of a Storage, a UserDB, a TxLog and the
// protocol servers over them. Make one with Open, serve with Start, stop
// with Shutdown. Its methods are safe for concurrent use.
type System struct {
	cfg       Config
	log       *slog.Logger
	store     msstore.Storage
	users     UserDB
	txlog     mta.TxLog
	passwords *userdata.PasswordLimiter
	deliverer *mta.Deliverer
	resolver  resolve.Resolver
	verifier  *mailauth.Verifier // the MX listener's checks, nil when off
	queue     *queue.Queue
	dkim      *mailauth.Signer
	admin     *admin.Server  // the administration API, nil when off
	closers   []func() error // what Open opened, to close in reverse

	mu        sync.Mutex
	started   bool
	servers   []server
	listeners []net.Listener
	serving   sync.WaitGroup
}

// server is a protocol server the System runs.
type server interface {
	Serve(l net.Listener) error
	ServeTLS(l net.Listener) error
	Shutdown(ctx context.Context) error
	Close() error
}

// Open validates cfg, opens the backends Config does not give (the
// embedded ones, under DataDir) and finishes the deliveries a crash left
// unfinished. It does not listen yet: see Start. If it fails, it has closed
// what it opened.
func Open(ctx context.Context, cfg Config) (*System, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.Hostname = cfg.hostname()
	s := &System{cfg: cfg, log: cfg.logger(), store: cfg.Storage, users: cfg.UserDB, txlog: cfg.TxLog}
	if err := s.open(ctx); err != nil {
		return nil, errors.Join(err, s.closeAll())
	}
	return s, nil
}

func (s *System) open(ctx context.Context) error {
	cfg := &s.cfg
	if cfg.DataDir != "" {
		if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
			return fmt.Errorf("mailsys: %w", err)
		}
		fsutil.TightenLog(s.log, cfg.DataDir) // the components tighten their own; this is for the rest
	}
	if s.store == nil {
		v, err := msstore.OpenVolumes(ctx, cfg.storeConfig())
		if err != nil {
			return err
		}
		s.store, s.closers = v, append(s.closers, v.Close)
	}
	if s.users == nil {
		s.passwords = userdata.NewPasswordLimiter(cfg.Passwords)
		db, err := userdata.Open(ctx, cfg.userDBConfig(s.store, s.passwords))
		if err != nil {
			return err
		}
		s.users, s.closers = db, append(s.closers, db.Close)
		if src, ok := s.store.(userdata.RepairSource); ok {
			db.EnableAutoRepair(src)
		}
	}
	if s.txlog == nil {
		l, err := txlog.Open(ctx, cfg.txLogConfig())
		if err != nil {
			return err
		}
		s.txlog, s.closers = l, append(s.closers, l.Close)
	}
	s.deliverer = &mta.Deliverer{Log: s.txlog, Store: s.store, Users: s.users, Summarize: imap.Summarize, Hostname: cfg.Hostname, Logger: s.log,
		Observer: cfg.Observer}
	if cfg.Metrics == nil && cfg.AdminAddr != "" {
		cfg.Metrics = metrics.New() // for the admin listener's /metrics
	}
	if cfg.Metrics != nil {
		s.deliverer.Metrics = cfg.Metrics.Deliveries()
	}
	if err := s.openOutbound(ctx); err != nil {
		return err
	}
	if cfg.AdminAddr != "" {
		if err := s.openAdmin(); err != nil {
			return err
		}
	}
	s.watch()
	return s.deliverer.Recover(ctx)
}

// openAdmin opens the administration API over the UserDB, with the
// System's metrics, queue and DKIM signer, and makes it the deliveries'
// Observer and the listeners' Logins unless Config gives them.
func (s *System) openAdmin() error {
	cfg := &s.cfg
	ac := cfg.Admin
	if ac.Users == nil {
		users, ok := s.users.(admin.UserDB)
		if !ok {
			return fmt.Errorf("mailsys: AdminAddr: the UserDB (%T) cannot list (userdata.Lister)", s.users)
		}
		ac.Users = users
	}
	if ac.DataDir == "" {
		ac.DataDir = filepath.Join(cfg.DataDir, "admin")
	}
	if ac.Metrics == nil {
		ac.Metrics = cfg.Metrics.Handler()
	}
	if ac.Queue == nil && s.queue != nil {
		ac.Queue = s.queue
	}
	if ac.DKIM == nil && s.dkim != nil {
		ac.DKIM = s.dkim
	}
	if ac.Logger == nil {
		ac.Logger = s.log
	}
	if ac.TLS == nil && !loopback(cfg.AdminAddr) {
		ac.TLS = tlsconf.Harden(cfg.TLS)
	}
	a, err := admin.New(ac)
	if err != nil {
		return err
	}
	s.admin, s.closers = a, append(s.closers, a.Close)
	if cfg.Observer == nil {
		cfg.Observer = a
		s.deliverer.Observer = a
	}
	if cfg.Logins == nil {
		cfg.Logins = a
	}
	return nil
}

// Admin returns the administration API, or nil when Config.AdminAddr is
// empty.
func (s *System) Admin() *admin.Server { return s.admin }

// adminServer is the API as one of the System's servers: it speaks TLS
// itself when it has a certificate (admin.Config.TLS).
type adminServer struct{ *admin.Server }

func (a adminServer) ServeTLS(l net.Listener) error { return a.Serve(l) }

// watch points Config.Metrics, if any, at what it collects at scrape
// time: the queue, the store's and the login cache's figures, where the
// backends have them.
func (s *System) watch() {
	m := s.cfg.Metrics
	if m == nil {
		return
	}
	if st, ok := s.store.(metrics.StoreStater); ok {
		m.WatchStore(st)
	}
	if lc, ok := s.users.(userdata.LoginCacheStater); ok {
		m.WatchLoginCache(lc)
	}
	if s.queue != nil {
		m.WatchQueue(s.queue)
	}
}

// openOutbound opens what sending and checking mail need: the resolver,
// the DKIM signer, the outbound queue (the Deliverer's Relay, and it
// hands its bounces to the Deliverer), and the MX listener's Verifier.
func (s *System) openOutbound(ctx context.Context) error {
	cfg := &s.cfg
	s.resolver = cfg.Resolver
	if s.resolver == nil && (cfg.outbound() || !cfg.DisableVerify) {
		r, err := resolve.System()
		if err != nil {
			return fmt.Errorf("mailsys: no Resolver, and the system's: %w", err)
		}
		s.resolver = r
	}
	if !cfg.DisableVerify {
		v, err := mailauth.NewVerifier(cfg.verifyConfig(s.resolver))
		if err != nil {
			return fmt.Errorf("mailsys: %w", err)
		}
		s.verifier = v
	}
	if !cfg.outbound() {
		return nil
	}
	oc := cfg.outboundConfig(s.resolver)
	if cfg.signs() && oc.Signer == nil {
		signer, err := mailauth.NewSigner(cfg.dkimConfig(s.users))
		if err != nil {
			return fmt.Errorf("mailsys: %w", err)
		}
		s.dkim, oc.Signer = signer, signer
	}
	if oc.Bounces == nil {
		oc.Bounces = s.deliverer
	}
	q, err := queue.Open(ctx, oc)
	if err != nil {
		return err
	}
	s.queue, s.closers = q, append(s.closers, q.Close)
	s.deliverer.Relay = q
	return nil
}

// Metrics returns Config.Metrics (nil when metrics are off), whose
// Handler serves /metrics.
func (s *System) Metrics() *metrics.Metrics { return s.cfg.Metrics }

// Queue returns the outbound queue (to list, retry, hold, release or
// delete what it holds), or nil when there is none (Config.Outbound).
func (s *System) Queue() *queue.Queue { return s.queue }

// DKIM returns the DKIM signer of the local domains' outbound mail (its
// Records are the TXT records to publish), or nil when signing is off.
func (s *System) DKIM() *mailauth.Signer { return s.dkim }

// Storage returns the message store the System runs on: Config.Storage,
// or the embedded msstore.Volumes. Optional capabilities (msstore.Walker,
// compaction, statistics) are found by interface assertion.
func (s *System) Storage() msstore.Storage { return s.store }

// UserDB returns the user database the System runs on: Config.UserDB, or
// the embedded userdata.DB. Optional capabilities (userdata.Watcher,
// userdata.Remover, repair, the mirror's state) are found by interface
// assertion.
func (s *System) UserDB() UserDB { return s.users }

// TxLog returns the delivery transaction log the System runs on.
func (s *System) TxLog() mta.TxLog { return s.txlog }

// Passwords returns the bound on the embedded UserDB's password checks, or
// nil when the UserDB was given in Config (it brings its own).
func (s *System) Passwords() *userdata.PasswordLimiter { return s.passwords }

// Start builds the protocol servers, listens on the configured addresses,
// drops root if RunAs says so, and serves in the background. It returns
// once every listener accepts connections. If it fails partway, it undoes
// what it did (listeners closed, servers stopped) and the System can still
// be shut down or started again.
func (s *System) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		return errors.New("mailsys: already started")
	}
	bound, err := s.bind()
	if err != nil {
		return err
	}
	s.started = true
	for _, l := range bound {
		if !slices.Contains(s.servers, l.srv) {
			s.servers = append(s.servers, l.srv)
		}
		s.listeners = append(s.listeners, l.ln)
		s.serving.Add(1)
		go func() {
			defer s.serving.Done()
			serve := l.srv.Serve
			if l.tls {
				serve = l.srv.ServeTLS
			}
			if err := serve(l.ln); err != nil && !isClosed(err) {
				s.log.Error("listener stopped", "addr", l.ln.Addr(), "err", err)
			}
		}()
	}
	return nil
}

// boundListener is a listener Start bound, with the server that will
// serve it.
type boundListener struct {
	ln  net.Listener
	tls bool
	srv server
}

// bind makes the servers and binds every listener, then drops root. On
// failure it closes what it opened.
func (s *System) bind() (_ []boundListener, err error) {
	cfg := &s.cfg
	guard := mta.NewGuard(cfg.Access)
	tlsConfig := tlsconf.Harden(cfg.TLS)
	var made []server
	var bound []boundListener
	defer func() {
		if err == nil {
			return
		}
		for _, l := range bound {
			l.ln.Close()
		}
		for _, srv := range made {
			srv.Close() // nothing was served yet
		}
	}()
	// One server of each kind for all its listeners: one IMAP server has
	// one set of open folders, one SMTP Inbound one set of deliveries.
	// Every server is made before any listener is bound, so that a
	// server's config error leaves no port taken.
	icfg := cfg.inboundConfig(tlsConfig, guard)
	makers := [...]func() (server, error){
		kindSMTP: func() (server, error) {
			mx := icfg
			if s.verifier != nil {
				mx.Verifier = s.verifier
			}
			return mta.NewInbound(mx, s.users, s.deliverer)
		},
		kindSubmission: func() (server, error) { return mta.NewSubmission(icfg, s.users, s.users, s.deliverer) },
		kindIMAP:       func() (server, error) { return imap.NewServer(cfg.imapConfig(tlsConfig, guard), s.users, s.store) },
		kindPOP3:       func() (server, error) { return pop3.NewServer(cfg.pop3Config(tlsConfig, guard), s.users, s.store) },
		kindAdmin:      func() (server, error) { return adminServer{s.admin}, nil },
	}
	var servers [len(makers)]server
	for _, l := range cfg.listenerAddrs() {
		if l.addr == "" || servers[l.kind] != nil {
			continue
		}
		srv, err := makers[l.kind]()
		if err != nil {
			return nil, fmt.Errorf("mailsys: %w", err)
		}
		servers[l.kind], made = srv, append(made, srv)
	}
	// Bind every listener first: ports below 1024 need root, which RunAs
	// then drops before anything is served.
	for _, l := range cfg.listenerAddrs() {
		if l.addr == "" {
			continue
		}
		ln, err := net.Listen("tcp", l.addr)
		if err != nil {
			return nil, fmt.Errorf("mailsys: listen on %s: %w", l.addr, err)
		}
		bound = append(bound, boundListener{ln, l.tls, servers[l.kind]})
	}
	if cfg.RunAs != "" {
		if err := dropPrivileges(cfg.RunAs, cfg.DataDir, s.log); err != nil {
			return nil, err
		}
	}
	if os.Geteuid() == 0 && !cfg.AllowRoot {
		for _, l := range bound {
			if ap, err := netip.ParseAddrPort(l.ln.Addr().String()); err != nil || !ap.Addr().IsLoopback() {
				return nil, fmt.Errorf("mailsys: refusing to serve %s as root: set RunAs (allinone: -run-as) to drop privileges, or AllowRoot", l.ln.Addr())
			}
		}
		if len(bound) > 0 {
			s.log.Warn("serving as root, on loopback addresses only; set RunAs to drop privileges")
		}
	}
	return bound, nil
}

// Addrs returns the addresses the listeners accept on, in the order of
// Config's address fields.
func (s *System) Addrs() []net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	var a []net.Addr
	for _, l := range s.listeners {
		a = append(a, l.Addr())
	}
	return a
}

func isClosed(err error) bool {
	return errors.Is(err, net.ErrClosed) || errors.Is(err, mta.ErrServerClosed) || errors.Is(err, pop3.ErrServerClosed) || errors.Is(err, imap.ErrServerClosed) || errors.Is(err, admin.ErrServerClosed)
}

// Shutdown stops accepting, lets sessions and deliveries finish until ctx
// ends (then cancels what is still in flight), and closes the backends
// Open opened; those given in Config stay open, for their owner to close.
func (s *System) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	for _, srv := range s.servers {
		if err := srv.Shutdown(ctx); err != nil && !isClosed(err) {
			errs = append(errs, err)
		}
	}
	for _, l := range s.listeners {
		l.Close() // in case Serve had not taken it yet when Shutdown began
	}
	s.serving.Wait()
	s.servers, s.listeners = nil, nil
	errs = append(errs, s.closeAll())
	return errors.Join(errs...)
}

// closeAll closes what Open opened, last first, once.
func (s *System) closeAll() error {
	var errs []error
	for i := len(s.closers) - 1; i >= 0; i-- {
		errs = append(errs, s.closers[i]())
	}
	s.closers = nil
	return errors.Join(errs...)
}

// EnsureUser makes address a user with password: it creates the domain
// and the user if missing, and sets the password otherwise. It reports
// whether the user was created.
func (s *System) EnsureUser(ctx context.Context, address, password string) (bool, error) {
	_, domain, ok := strings.Cut(address, "@")
	if !ok {
		return false, fmt.Errorf("mailsys: %q is not an address", address)
	}
	if err := s.users.CreateDomain(ctx, userdata.Domain{Name: domain}); err != nil && !errors.Is(err, userdata.ErrExists) {
		return false, err
	}
	u, err := s.users.LookupAddress(ctx, address)
	if errors.Is(err, userdata.ErrNotFound) {
		_, err := s.users.CreateUser(ctx, userdata.NewUser{Address: address, Password: password})
		return err == nil, err
	}
	if err != nil {
		return false, err
	}
	return false, s.users.SetPassword(ctx, u.ID, password)
}
