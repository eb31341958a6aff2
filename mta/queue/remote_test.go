package queue_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/mailsys/mailsys/internal/selfsigned"
	"github.com/mailsys/mailsys/mta/queue"
	"github.com/mailsys/mailsys/mta/resolve"
)

// remote is a remote MX host: a go-smtp server on 127.0.0.x that keeps
// what it is sent, with replies a test sets.
type remote struct {
	addr string // ip:port
	ip   netip.Addr
	srv  *smtp.Server
	l    net.Listener

	mu       sync.Mutex
	got      []received
	conns    int
	rcpt     func(to string) error  // nil: accept
	data     func(r received) error // nil: accept
	dataWait time.Duration          // before answering DATA
	dsnOpts  []*smtp.RcptOptions    // of the last transaction's RCPTs
	mailOpts *smtp.MailOptions
}

type received struct {
	From string
	To   []string
	Data []byte
	TLS  bool
}

// freePort returns a TCP port free on 127.0.0.1, for every remote of a
// test to listen on (at different addresses), as MX hosts share port 25.
func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startRemote runs a remote on ip:port; tlsHost, if not "", makes it offer
// STARTTLS with a self-signed certificate for that name.
func startRemote(t *testing.T, ip string, port int, tlsHost string, opts ...func(*smtp.Server)) *remote {
	t.Helper()
	r := &remote{ip: netip.MustParseAddr(ip)}
	s := smtp.NewServer(r)
	s.Domain = "remote-" + ip
	s.EnableSMTPUTF8 = true
	s.EnableDSN = true
	s.MaxMessageBytes = 10 << 20
	s.ReadTimeout, s.WriteTimeout = 10*time.Second, 10*time.Second
	if tlsHost != "" {
		cert, err := selfsigned.New(tlsHost, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		s.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
	}
	for _, o := range opts {
		o(s)
	}
	l, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(port)))
	if err != nil {
		t.Fatal(err)
	}
	r.addr, r.srv, r.l = l.Addr().String(), s, l
	go s.Serve(l)
	t.Cleanup(func() { s.Close() })
	return r
}

func (r *remote) NewSession(c *smtp.Conn) (smtp.Session, error) {
	r.mu.Lock()
	r.conns++
	r.mu.Unlock()
	return &remoteSession{r: r, c: c}, nil
}

type remoteSession struct {
	r *remote
	c *smtp.Conn
	m received
}

func (s *remoteSession) Mail(from string, opts *smtp.MailOptions) error {
	s.m = received{From: from}
	s.r.mu.Lock()
	s.r.mailOpts, s.r.dsnOpts = opts, nil
	s.r.mu.Unlock()
	return nil
}

func (s *remoteSession) Rcpt(to string, opts *smtp.RcptOptions) error {
	s.r.mu.Lock()
	f := s.r.rcpt
	s.r.dsnOpts = append(s.r.dsnOpts, opts)
	s.r.mu.Unlock()
	if f != nil {
		if err := f(to); err != nil {
			return err
		}
	}
	s.m.To = append(s.m.To, to)
	return nil
}

func (s *remoteSession) Data(rd io.Reader) error {
	b, err := io.ReadAll(rd)
	if err != nil {
		return err
	}
	s.m.Data = b
	_, s.m.TLS = s.c.TLSConnectionState()
	s.r.mu.Lock()
	f, wait := s.r.data, s.r.dataWait
	s.r.mu.Unlock()
	if wait > 0 {
		time.Sleep(wait)
	}
	if f != nil {
		if err := f(s.m); err != nil {
			return err
		}
	}
	s.r.mu.Lock()
	s.r.got = append(s.r.got, s.m)
	s.r.mu.Unlock()
	return nil
}

func (s *remoteSession) Reset()        { s.m = received{} }
func (s *remoteSession) Logout() error { return nil }

// messages returns what the remote has taken.
func (r *remote) messages() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]received(nil), r.got...)
}

func (r *remote) set(f func(r *remote)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	f(r)
}

// waitFor waits up to 10 s for cond.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// bounces is a queue.Submitter that keeps what the queue gives it: the
// test's view of what the mta.Deliverer would deliver.
type bounces struct {
	mu   sync.Mutex
	msgs []bounce
	fail error
}

type bounce struct {
	From string
	To   []string
	Data []byte
}

func (b *bounces) Submit(ctx context.Context, from string, to []string, body io.Reader) error {
	data, err := io.ReadAll(body)
	if err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.fail != nil {
		return b.fail
	}
	b.msgs = append(b.msgs, bounce{from, to, data})
	return nil
}

func (b *bounces) all() []bounce {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]bounce(nil), b.msgs...)
}

// fixture is a queue over a static zone, with fast retries.
type fixture struct {
	t       *testing.T
	q       *queue.Queue
	zone    *resolve.Static
	bounces *bounces
	port    int
	cfg     queue.Config
}

func newFixture(t *testing.T, configure func(*queue.Config)) *fixture {
	t.Helper()
	f := &fixture{t: t, zone: &resolve.Static{}, bounces: &bounces{}, port: freePort(t)}
	cfg := queue.DefaultConfig(t.TempDir())
	cfg.Hostname = "out.example.org"
	cfg.Resolver = f.zone
	cfg.Port = f.port
	cfg.Bounces = f.bounces
	cfg.RetryFirst, cfg.RetryMax = 50*time.Millisecond, 200*time.Millisecond
	cfg.ConnectTimeout, cfg.CommandTimeout, cfg.DataTimeout = 2*time.Second, 2*time.Second, 5*time.Second
	cfg.DeadAfter = 1000
	cfg.STSFetcher = noSTS{}
	cfg.Logger = slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	if configure != nil {
		configure(&cfg)
	}
	f.cfg = cfg
	f.open()
	return f
}

func (f *fixture) open() {
	q, err := queue.Open(f.t.Context(), f.cfg)
	if err != nil {
		f.t.Fatal(err)
	}
	f.q = q
	f.t.Cleanup(func() { q.Close() })
}

// noSTS is an MTA-STS fetcher for domains without a policy: the zones
// of the tests have no _mta-sts records unless a test adds one.
type noSTS struct{}

func (noSTS) Fetch(ctx context.Context, domain string) ([]byte, error) {
	return nil, errors.New("no policy here")
}

// mx points domain at remotes (preference 10, 20, ...).
func (f *fixture) mx(domain string, hosts ...string) {
	var recs []string
	for i, h := range hosts {
		recs = append(recs, strconv.Itoa(10*(i+1))+" "+h)
	}
	f.zone.SetMX(domain, recs...)
}

func (f *fixture) host(name, ip string) {
	f.zone.SetIP(name, netip.MustParseAddr(ip))
}

// send queues a message from ann@example.org.
func (f *fixture) send(id string, notify string, to ...string) {
	f.t.Helper()
	m := queue.Message{ID: id, From: "ann@example.org"}
	for _, a := range to {
		m.Rcpts = append(m.Rcpts, queue.Rcpt{Addr: a, Notify: notify})
	}
	body := "From: ann@example.org\r\nTo: " + strings.Join(to, ", ") + "\r\nSubject: " + id + "\r\nMessage-ID: <" + id + "@example.org>\r\n\r\nHello " + id + "\r\n"
	if err := f.q.Enqueue(f.t.Context(), m, bytes.NewReader([]byte(body))); err != nil {
		f.t.Fatal(err)
	}
}

// state returns the state of addr in id, or -1 once id left the queue.
func (f *fixture) state(id, addr string) queue.State {
	e, err := f.q.Get(f.t.Context(), id)
	if errors.Is(err, queue.ErrNotFound) {
		return -1
	}
	if err != nil {
		f.t.Fatal(err)
	}
	for _, r := range e.Rcpts {
		if r.Addr == addr {
			return r.State
		}
	}
	f.t.Fatalf("%s not a recipient of %s", addr, id)
	return -1
}

// gone reports whether id left the queue.
func (f *fixture) gone(id string) bool {
	_, err := f.q.Get(f.t.Context(), id)
	return errors.Is(err, queue.ErrNotFound)
}
