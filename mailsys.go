// Package mailsys composes the mailsys packages into a running mail
// system: a message store (msstore), a UserDB (userdata), a transaction log
// (txlog) and the protocol servers (mta, imap, pop3), started and stopped
// together. Host programs build their own server from a Config; two Systems
// can run in one process (there is no global state).
package mailsys

import (
	"context"
	"crypto/tls"
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

	"github.com/emersion/go-smtp"

	"github.com/mailsys/mailsys/imap"
	"github.com/mailsys/mailsys/internal/fsutil"
	"github.com/mailsys/mailsys/internal/tlsconf"
	"github.com/mailsys/mailsys/msstore"
	"github.com/mailsys/mailsys/mta"
	"github.com/mailsys/mailsys/pop3"
	"github.com/mailsys/mailsys/txlog"
	"github.com/mailsys/mailsys/userdata"
)

// Config says what a System runs. Only DataDir is required; every
// component defaults to the embedded one under it.
type Config struct {
	// DataDir holds the default components' files: store/, userdb/ and
	// txlog/.
	DataDir string
	// Hostname is the name the servers announce. Zero means "localhost".
	Hostname string
	// SMTPAddr is the inbound (MX) SMTP listener's address, such as
	// "127.0.0.1:2525"; empty turns it off.
	SMTPAddr string
	// SubmissionAddr is the submission listener's address, such as
	// "127.0.0.1:2587" (authentication over STARTTLS); empty turns it off.
	SubmissionAddr string
	// SubmissionTLSAddr is the implicit-TLS submission listener's address
	// (RFC 8314, "submissions", usually port 465); it needs TLS. Empty
	// turns it off.
	SubmissionTLSAddr string
	// IMAPAddr is the IMAP listener's address, such as "127.0.0.1:1143"
	// (STARTTLS when TLS is set; it needs TLS or InsecureAuth, or nobody
	// could log in); empty turns it off.
	IMAPAddr string
	// IMAPTLSAddr is the implicit-TLS IMAP listener's address (usually
	// port 993); it needs TLS. Empty turns it off.
	IMAPTLSAddr string
	// POP3Addr is the POP3 listener's address, such as "127.0.0.1:1110"
	// (STLS when TLS is set; it needs TLS or InsecureAuth, or nobody could
	// log in); empty turns it off.
	POP3Addr string
	// POP3TLSAddr is the implicit-TLS POP3 listener's address (usually port
	// 995); it needs TLS. Empty turns it off.
	POP3TLSAddr string
	// TLS, if set, enables STARTTLS (STLS in POP3).
	TLS *tls.Config
	// InsecureAuth lets IMAP and POP3 clients log in with a plain-text
	// password before TLS; for tests and loopback-only setups.
	InsecureAuth bool
	// Access holds the allow and deny lists, the bounds on connections
	// (over all listeners, per listener, per address on a listener) and the
	// rules for failed logins, shared by every listener. The zero value
	// means mta's defaults (see mta.GuardConfig).
	Access mta.GuardConfig
	// Passwords bounds the password checks (argon2id) that logins on every
	// listener make at once, by count and by memory; past a short queue a
	// login is answered with its protocol's "try again later". Logins the
	// login cache answers never wait. The zero value means userdata's
	// defaults (see userdata.PasswordLimiterConfig).
	Passwords userdata.PasswordLimiterConfig
	// SMTP holds the SMTP listeners' limits and timeouts (sizes, recipients,
	// deadlines, AnyFrom); zero fields mean mta's defaults. Its Hostname,
	// TLS, Guard, Filter and Logger are the System's and are ignored.
	SMTP mta.InboundConfig
	// IMAP holds the IMAP server's limits and timeouts; zero fields mean
	// imap's defaults. Its TLS, InsecureAuth, Guard and Logger are the
	// System's and are ignored.
	IMAP imap.Config
	// POP3 holds the POP3 server's limits and timeouts; zero fields mean
	// pop3's defaults. Its Hostname, TLS, InsecureAuth, Guard and Logger
	// are the System's and are ignored.
	POP3 pop3.Config
	// RunAs, as "user" or "user:group", is who the System serves as once
	// its listeners are bound, when started as root (so it may bind ports
	// below 1024): Start makes DataDir that user's, then drops root for
	// every thread (setgroups, setgid, setuid). The user needs to reach
	// DataDir (search permission on its parents). Empty means no change.
	RunAs string
	// AllowRoot lets the System serve as root. Without it (and without
	// RunAs) Start refuses to serve as root on any address that is not a
	// loopback one.
	AllowRoot bool
	// Filter, if set, sees every message before it is accepted (antispam,
	// antivirus): it can reject it, file it into Junk or add headers.
	Filter mta.Filter
	// Logger receives every component's logs. Nil means slog.Default().
	Logger *slog.Logger
}

// System is a running composition. Its fields are the components, for the
// host program's own use (administration, metrics); they stay owned by the
// System, which closes them at Shutdown.
type System struct {
	Store *msstore.Volumes
	Users *userdata.DB
	Log   *txlog.Log
	// Passwords bounds the password checks of every listener's logins.
	Passwords *userdata.PasswordLimiter

	cfg       Config
	log       *slog.Logger
	deliverer *mta.Deliverer
	servers   []server
	listeners []net.Listener
	serving   sync.WaitGroup
}

// server is a protocol server the System runs.
type server interface {
	Serve(l net.Listener) error
	ServeTLS(l net.Listener) error
	Shutdown(ctx context.Context) error
}

// Open opens the components and finishes the deliveries a crash left
// unfinished. It does not listen yet: see Start.
func Open(ctx context.Context, cfg Config) (*System, error) {
	if cfg.DataDir == "" {
		return nil, errors.New("mailsys: no data directory")
	}
	if cfg.Hostname == "" {
		cfg.Hostname = "localhost"
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	s := &System{cfg: cfg, log: log}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("mailsys: %w", err)
	}
	fsutil.TightenLog(log, cfg.DataDir) // the components tighten their own; this is for the rest
	scfg := msstore.DefaultConfig(filepath.Join(cfg.DataDir, "store"))
	scfg.Logger = log
	var err error
	if s.Store, err = msstore.OpenVolumes(ctx, scfg); err != nil {
		return nil, err
	}
	s.Passwords = userdata.NewPasswordLimiter(cfg.Passwords)
	if s.Users, err = userdata.Open(ctx, userdata.Config{Dir: filepath.Join(cfg.DataDir, "userdb"), Node: cfg.Hostname, Bodies: s.Store, Logger: log,
		PasswordLimiter: s.Passwords}); err != nil {
		s.Store.Close()
		return nil, err
	}
	s.Users.EnableAutoRepair(s.Store)
	if s.Log, err = txlog.Open(ctx, txlog.Config{Dir: filepath.Join(cfg.DataDir, "txlog"), Logger: log}); err != nil {
		s.Users.Close()
		s.Store.Close()
		return nil, err
	}
	s.deliverer = &mta.Deliverer{Log: s.Log, Store: s.Store, Users: s.Users, Summarize: imap.Summarize, Logger: log}
	if err := s.deliverer.Recover(ctx); err != nil {
		s.closeAll()
		return nil, err
	}
	return s, nil
}

// Start listens on the configured addresses, drops root if RunAs says
// so, and serves in the background. It returns once every listener
// accepts connections.
func (s *System) Start(ctx context.Context) error {
	guard := mta.NewGuard(s.cfg.Access)
	tlsConfig := tlsconf.Harden(s.cfg.TLS)
	icfg := s.cfg.SMTP
	icfg.Hostname, icfg.TLS, icfg.Guard, icfg.Filter, icfg.Logger = s.cfg.Hostname, tlsConfig, guard, s.cfg.Filter, s.log
	imapCfg := s.cfg.IMAP
	imapCfg.TLS, imapCfg.InsecureAuth, imapCfg.Guard, imapCfg.Logger = tlsConfig, s.cfg.InsecureAuth, guard, s.log
	pop3Cfg := s.cfg.POP3
	pop3Cfg.Hostname, pop3Cfg.TLS, pop3Cfg.InsecureAuth, pop3Cfg.Guard, pop3Cfg.Logger = s.cfg.Hostname, tlsConfig, s.cfg.InsecureAuth, guard, s.log
	if (s.cfg.SubmissionTLSAddr != "" || s.cfg.IMAPTLSAddr != "" || s.cfg.POP3TLSAddr != "") && s.cfg.TLS == nil {
		return errors.New("mailsys: an implicit-TLS listener needs Config.TLS")
	}
	if s.cfg.IMAPAddr != "" && s.cfg.TLS == nil && !s.cfg.InsecureAuth {
		return errors.New("mailsys: an IMAP listener without TLS or InsecureAuth would let nobody log in")
	}
	if s.cfg.POP3Addr != "" || s.cfg.POP3TLSAddr != "" {
		if err := pop3Cfg.Validate(); err != nil {
			return fmt.Errorf("mailsys: %w", err)
		}
	}
	// One IMAP server for both its listeners: one set of open folders.
	var imapSrv *imap.Server
	imapServer := func() server {
		if imapSrv == nil {
			imapSrv = imap.NewServer(imapCfg, s.Users, s.Store)
		}
		return imapSrv
	}
	var pop3Srv *pop3.Server
	pop3Server := func() server {
		if pop3Srv == nil {
			pop3Srv = pop3.NewServer(pop3Cfg, s.Users, s.Store)
		}
		return pop3Srv
	}
	type listener struct {
		ln  net.Listener
		tls bool
		srv server
	}
	var bound []listener
	fail := func(err error) error {
		for _, l := range bound {
			l.ln.Close()
		}
		return err
	}
	// Bind every listener first: ports below 1024 need root, which RunAs
	// then drops before anything is served.
	for _, l := range []struct {
		addr string
		tls  bool
		srv  func() server
	}{
		{s.cfg.SMTPAddr, false, func() server { return mta.NewInbound(icfg, s.Users, s.deliverer) }},
		{s.cfg.SubmissionAddr, false, func() server { return mta.NewSubmission(icfg, s.Users, s.Users, s.deliverer) }},
		{s.cfg.SubmissionTLSAddr, true, func() server { return mta.NewSubmission(icfg, s.Users, s.Users, s.deliverer) }},
		{s.cfg.IMAPAddr, false, imapServer},
		{s.cfg.IMAPTLSAddr, true, imapServer},
		{s.cfg.POP3Addr, false, pop3Server},
		{s.cfg.POP3TLSAddr, true, pop3Server},
	} {
		if l.addr == "" {
			continue
		}
		ln, err := net.Listen("tcp", l.addr)
		if err != nil {
			return fail(fmt.Errorf("mailsys: listen on %s: %w", l.addr, err))
		}
		bound = append(bound, listener{ln, l.tls, l.srv()})
	}
	if s.cfg.RunAs != "" {
		if err := dropPrivileges(s.cfg.RunAs, s.cfg.DataDir, s.log); err != nil {
			return fail(err)
		}
	}
	if os.Geteuid() == 0 && !s.cfg.AllowRoot {
		for _, l := range bound {
			if ap, err := netip.ParseAddrPort(l.ln.Addr().String()); err != nil || !ap.Addr().IsLoopback() {
				return fail(fmt.Errorf("mailsys: refusing to serve %s as root: set RunAs (allinone: -run-as) to drop privileges, or AllowRoot", l.ln.Addr()))
			}
		}
		if len(bound) > 0 {
			s.log.Warn("serving as root, on loopback addresses only; set RunAs to drop privileges")
		}
	}
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

// Addrs returns the addresses the listeners accept on.
func (s *System) Addrs() []net.Addr {
	var a []net.Addr
	for _, l := range s.listeners {
		a = append(a, l.Addr())
	}
	return a
}

func isClosed(err error) bool {
	return errors.Is(err, net.ErrClosed) || errors.Is(err, smtp.ErrServerClosed) || errors.Is(err, pop3.ErrServerClosed) || errors.Is(err, imap.ErrServerClosed)
}

// Shutdown stops accepting, lets sessions and deliveries finish (or ctx
// end), and closes the components.
func (s *System) Shutdown(ctx context.Context) error {
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
	errs = append(errs, s.closeAll())
	return errors.Join(errs...)
}

func (s *System) closeAll() error {
	return errors.Join(s.Log.Close(), s.Users.Close(), s.Store.Close())
}

// EnsureUser makes address a user with password: it creates the domain
// and the user if missing, and sets the password otherwise. It reports
// whether the user was created.
func (s *System) EnsureUser(ctx context.Context, address, password string) (bool, error) {
	_, domain, ok := strings.Cut(address, "@")
	if !ok {
		return false, fmt.Errorf("mailsys: %q is not an address", address)
	}
	if err := s.Users.CreateDomain(ctx, userdata.Domain{Name: domain}); err != nil && !errors.Is(err, userdata.ErrExists) {
		return false, err
	}
	u, err := s.Users.LookupAddress(ctx, address)
	if errors.Is(err, userdata.ErrNotFound) {
		_, err := s.Users.CreateUser(ctx, userdata.NewUser{Address: address, Password: password})
		return err == nil, err
	}
	if err != nil {
		return false, err
	}
	return false, s.Users.SetPassword(ctx, u.ID, password)
}
