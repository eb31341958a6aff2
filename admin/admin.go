package admin

import (
	"context"
	"crypto/tls"
	_ "embed"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/mailsys/mailsys/internal/fsutil"
	"github.com/mailsys/mailsys/userdata"
)

// UserDB is what the admin API needs of a UserDB: the UserDB, listing and
// deletion (userdata.Lister).
type UserDB interface {
	userdata.UserDB
	userdata.Lister
}

// Config configures a Server. The zero value of every field but DataDir
// and Users means its default.
type Config struct {
	// DataDir holds the API's own database (grants, tokens, the audit
	// log, statistics); created if missing, private to the process's
	// user.
	DataDir string
	// Users is the UserDB administered.
	Users UserDB
	// TLS, if set, serves HTTPS. Without it Serve accepts only on a
	// loopback address: passwords and tokens never cross a network in
	// clear.
	TLS *tls.Config
	// SessionTTL is how long a login's token (and session cookie) is
	// valid. Zero means 12 hours.
	SessionTTL time.Duration
	// TokenTTL is the longest life of an API token; zero means a year.
	TokenTTL time.Duration
	// MaxBody bounds a request body. Zero means 1 MiB.
	MaxBody int64
	// LoginFailures bounds the failed logins from one address per minute
	// (then 429). Zero means 10.
	LoginFailures int
	// Metrics, if set, is served at /metrics to system administrators
	// (an API token in Prometheus's authorization).
	Metrics http.Handler
	// Queue, if set, is the outbound queue served under /api/v1/queue.
	Queue Queue
	// DKIM, if set, is the signer whose DNS records and keys are served
	// under /api/v1/domains/{domain}/dkim.
	DKIM DKIM
	// Cluster, if set, is the cluster whose nodes are served under
	// /api/v1/nodes.
	Cluster Cluster
	// Events, if set, is the supervisor's log served at /api/v1/events.
	Events Events
	// Logger receives the API's logs. Nil means slog.Default().
	Logger *slog.Logger
}

// DefaultConfig returns the defaults for an API keeping its files in
// dataDir.
func DefaultConfig(dataDir string, users UserDB) Config {
	c := Config{DataDir: dataDir, Users: users}
	c.setDefaults()
	return c
}

func (c *Config) setDefaults() {
	if c.SessionTTL == 0 {
		c.SessionTTL = 12 * time.Hour
	}
	if c.TokenTTL == 0 {
		c.TokenTTL = 365 * 24 * time.Hour
	}
	if c.MaxBody == 0 {
		c.MaxBody = 1 << 20
	}
	if c.LoginFailures == 0 {
		c.LoginFailures = 10
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Validate reports every problem of c at once.
func (c Config) Validate() error {
	var errs []error
	if c.DataDir == "" {
		errs = append(errs, errors.New("admin: no DataDir"))
	}
	if c.Users == nil {
		errs = append(errs, errors.New("admin: no Users"))
	}
	if c.SessionTTL < 0 || c.TokenTTL < 0 || c.MaxBody < 0 || c.LoginFailures < 0 {
		errs = append(errs, errors.New("admin: negative SessionTTL, TokenTTL, MaxBody or LoginFailures"))
	}
	return errors.Join(errs...)
}

// Server is the administration API (and the pages built on it). Make one
// with New, serve it with Serve or mount Handler, and Close it.
type Server struct {
	cfg   Config
	log   *slog.Logger
	users UserDB
	st    *store
	mux   *http.ServeMux
	now   func() time.Time

	patterns []string // the routes, for TestOpenAPI

	mu       sync.Mutex
	failures map[string][]time.Time // failed logins by client address
	srv      *http.Server

	seenMu sync.Mutex
	seen   map[userdata.UserID]uint32 // the day each user's login was last recorded
}

// openAPI is the API's description, served at /api/v1/openapi.json.
//
//go:embed openapi.json
var openAPI []byte

// ErrServerClosed is what Serve returns after Close or Shutdown.
var ErrServerClosed = http.ErrServerClosed

// New opens the API's database in cfg.DataDir.
func New(cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	if err := os.MkdirAll(cfg.DataDir, fsutil.DirMode); err != nil {
		return nil, fmt.Errorf("admin: %w", err)
	}
	log := cfg.Logger.With("component", "admin")
	st, err := openStore(filepath.Join(cfg.DataDir, "admin"), log)
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: log, users: cfg.Users, st: st, now: time.Now, failures: map[string][]time.Time{}, seen: map[userdata.UserID]uint32{}}
	s.routes()
	return s, nil
}

// Handler returns the API's handler, for a host program's own listener.
func (s *Server) Handler() http.Handler { return s.mux }

// Serve serves the API on l until Close or Shutdown. Without Config.TLS,
// l must be a loopback address.
func (s *Server) Serve(l net.Listener) error {
	if s.cfg.TLS == nil {
		if a, ok := l.Addr().(*net.TCPAddr); !ok || !a.IP.IsLoopback() {
			return fmt.Errorf("admin: plain HTTP on %s: only on loopback; set Config.TLS", l.Addr())
		}
	} else {
		l = tls.NewListener(l, s.cfg.TLS)
	}
	srv := &http.Server{
		Handler:           s.mux,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       time.Minute,
		WriteTimeout:      2 * time.Minute,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	s.mu.Lock()
	s.srv = srv
	s.mu.Unlock()
	return srv.Serve(l)
}

// Shutdown stops serving, letting requests in progress finish until ctx
// ends. The API's database stays open: Serve may be called again.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	srv := s.srv
	s.srv = nil
	s.mu.Unlock()
	if srv == nil {
		return nil
	}
	return srv.Shutdown(ctx)
}

// Close stops serving at once and closes the API's database.
func (s *Server) Close() error {
	s.mu.Lock()
	srv := s.srv
	s.srv = nil
	s.mu.Unlock()
	var err error
	if srv != nil {
		err = srv.Close()
	}
	return errors.Join(err, s.st.close())
}

// routes registers every endpoint; openapi.json documents each (checked by
// TestOpenAPI).
func (s *Server) routes() {
	m := http.NewServeMux()
	s.mux = m
	h := func(pattern string, need access, fn handlerFunc) {
		s.patterns = append(s.patterns, pattern)
		m.Handle(pattern, s.endpoint(pattern, need, fn))
	}

	h("GET /api/v1/openapi.json", public, func(w http.ResponseWriter, r *http.Request, _ *principal) error {
		w.Header().Set("Content-Type", "application/json")
		_, err := w.Write(openAPI)
		return err
	})
	h("POST /api/v1/login", public, s.login)
	h("POST /api/v1/logout", anyUser, s.logout)
	h("GET /api/v1/me", anyUser, s.me)
	h("POST /api/v1/me/password", anyUser, s.mePassword)

	h("GET /api/v1/tokens", anyAdmin, s.listTokens)
	h("POST /api/v1/tokens", anyAdmin, s.createToken)
	h("DELETE /api/v1/tokens/{id}", anyAdmin, s.deleteToken)

	h("GET /api/v1/domains", anyAdmin, s.listDomains)
	h("POST /api/v1/domains", systemOnly, s.createDomain)
	h("GET /api/v1/domains/{domain}", anyAdmin, s.getDomain)
	h("PATCH /api/v1/domains/{domain}", anyAdmin, s.updateDomain)
	h("POST /api/v1/domains/{domain}/aliases", systemOnly, s.addDomainAlias)
	h("GET /api/v1/domains/{domain}/stats", anyAdmin, s.domainStats)
	h("GET /api/v1/domains/{domain}/units", anyAdmin, s.listUnits)

	h("POST /api/v1/units", anyAdmin, s.createUnit)
	h("GET /api/v1/units/{id}", anyAdmin, s.getUnit)
	h("PATCH /api/v1/units/{id}", anyAdmin, s.updateUnit)
	h("GET /api/v1/units/{id}/stats", anyAdmin, s.unitStats)

	h("GET /api/v1/classes", anyAdmin, s.listClasses)
	h("PUT /api/v1/classes/{name}", systemOnly, s.putClass)

	h("GET /api/v1/users", anyAdmin, s.listUsers)
	h("POST /api/v1/users", anyAdmin, s.createUser)
	h("GET /api/v1/users/{address}", anyAdmin, s.getUser)
	h("PATCH /api/v1/users/{address}", anyAdmin, s.updateUser)
	h("DELETE /api/v1/users/{address}", anyAdmin, s.deleteUser)
	h("POST /api/v1/users/{address}/password", anyAdmin, s.setUserPassword)
	h("POST /api/v1/users/{address}/aliases", anyAdmin, s.addAlias)
	h("DELETE /api/v1/users/{address}/aliases/{alias}", anyAdmin, s.removeAlias)

	h("GET /api/v1/admins", anyAdmin, s.listAdmins)
	h("POST /api/v1/admins", anyAdmin, s.grantAdmin)
	h("DELETE /api/v1/admins/{address}", anyAdmin, s.revokeAdmin)

	h("GET /api/v1/audit", anyAdmin, s.auditLog)

	h("GET /api/v1/queue", systemOnly, s.listQueue)
	h("POST /api/v1/queue/{id}/retry", systemOnly, s.queueAction(Queue.Retry))
	h("POST /api/v1/queue/{id}/hold", systemOnly, s.queueAction(Queue.Hold))
	h("POST /api/v1/queue/{id}/release", systemOnly, s.queueAction(Queue.Release))
	h("DELETE /api/v1/queue/{id}", systemOnly, s.deleteQueued)

	h("GET /api/v1/domains/{domain}/dkim", anyAdmin, s.getDKIM)
	h("POST /api/v1/domains/{domain}/dkim/rotate", anyAdmin, s.rotateDKIM)
	h("DELETE /api/v1/domains/{domain}/dkim/{selector}", anyAdmin, s.retireDKIM)

	h("GET /api/v1/nodes", systemOnly, s.listNodes)
	h("PATCH /api/v1/nodes/{id}", systemOnly, s.updateNode)
	h("GET /api/v1/events", systemOnly, s.listEvents)

	if s.cfg.Metrics != nil {
		h("GET /metrics", systemOnly, func(w http.ResponseWriter, r *http.Request, _ *principal) error {
			s.cfg.Metrics.ServeHTTP(w, r)
			return nil
		})
	}
	pp := func(w http.ResponseWriter, r *http.Request, _ *principal) error {
		switch strings.TrimPrefix(r.URL.Path, "/debug/pprof/") {
		case "cmdline":
			pprof.Cmdline(w, r)
		case "profile":
			pprof.Profile(w, r)
		case "symbol":
			pprof.Symbol(w, r)
		case "trace":
			pprof.Trace(w, r)
		default:
			pprof.Index(w, r)
		}
		return nil
	}
	h("GET /debug/pprof/", systemOnly, pp)
	s.webRoutes(m)
}
