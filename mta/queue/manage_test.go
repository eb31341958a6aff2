package queue_test

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/mailsys/mailsys/internal/selfsigned"
	"github.com/mailsys/mailsys/mta/dsn"
	"github.com/mailsys/mailsys/mta/queue"
)

// Hold keeps a message from being tried, even by Retry; Release sends
// it; Delete with a bounce tells the sender, without one nobody.
func TestManage(t *testing.T) {
	f := newFixture(t, func(c *queue.Config) { c.RetryFirst, c.RetryMax = time.Hour, time.Hour })
	r := startRemote(t, "127.0.0.2", f.port, "")
	f.mx("example.net", "mx.example.net")
	f.host("mx.example.net", "127.0.0.2")
	refuse := true
	r.set(func(r *remote) {
		r.rcpt = func(string) error {
			if refuse {
				return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "not now"}
			}
			return nil
		}
	})
	for _, id := range []string{"m1", "m2", "m3"} {
		f.send(id, "", "bob@example.net")
	}
	waitFor(t, "three deferred", func() bool {
		l, _ := f.q.List(t.Context())
		n := 0
		for _, e := range l {
			if e.Rcpts[0].State == queue.Deferred && e.Rcpts[0].Attempts == 1 {
				n++
			}
		}
		return n == 3
	})
	l, err := f.q.List(t.Context())
	if err != nil || len(l) != 3 || l[0].ID != "m1" || l[0].Rcpts[0].LastReply != "451 4.3.0 not now" || l[0].Rcpts[0].Host != "mx.example.net" {
		t.Fatalf("List: %+v, %v", l, err)
	}
	r.set(func(*remote) { refuse = false })

	// m1 held: Retry does not send it; Release does.
	if err := f.q.Hold(t.Context(), "m1"); err != nil {
		t.Fatal(err)
	}
	if err := f.q.Retry(t.Context(), "m1"); err != nil {
		t.Fatal(err)
	}
	if err := f.q.Retry(t.Context(), "m2"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "m2 delivered", func() bool { return f.gone("m2") })
	if e, _ := f.q.Get(t.Context(), "m1"); !e.Held || e.Rcpts[0].State != queue.Deferred {
		t.Fatalf("held m1: %+v", e)
	}
	// The hold is durable.
	f.q.Close()
	f.open()
	if e, _ := f.q.Get(t.Context(), "m1"); !e.Held {
		t.Fatal("hold lost on reopening")
	}
	if err := f.q.Release(t.Context(), "m1"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "m1 delivered", func() bool { return f.gone("m1") })

	// m3 deleted with a bounce.
	r.set(func(*remote) { refuse = true })
	if err := f.q.Delete(t.Context(), "m3", true); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "m3 gone", func() bool { return f.gone("m3") })
	b := f.bounces.all()
	if len(b) != 1 {
		t.Fatalf("%d bounces", len(b))
	}
	p, err := dsn.Parse(bytes.NewReader(b[0].Data))
	if err != nil {
		t.Fatal(err)
	}
	checkDSN(t, p, "bob@example.net", dsn.Failed, "5.0.0", "Deleted")
	// Without a bounce: nobody is told.
	f.send("m4", "", "bob@example.net")
	waitFor(t, "m4 deferred", func() bool { return f.state("m4", "bob@example.net") == queue.Deferred })
	if err := f.q.Delete(t.Context(), "m4", false); err != nil {
		t.Fatal(err)
	}
	if !f.gone("m4") || len(f.bounces.all()) != 1 {
		t.Error("m4 not deleted silently")
	}
	if err := f.q.Delete(t.Context(), "m4", false); !errors.Is(err, queue.ErrNotFound) {
		t.Errorf("Delete of a deleted message: %v", err)
	}
	if n := len(r.messages()); n != 2 {
		t.Errorf("remote got %d messages, want 2", n)
	}
}

// A destination that does not answer is marked dead, and its mail is
// deferred without holding the workers: mail for a live destination,
// queued after it, goes through at once even with one worker in all.
func TestDeadDestinationDoesNotBlock(t *testing.T) {
	f := newFixture(t, func(c *queue.Config) {
		c.Concurrency, c.PerDestination = 1, 1
		c.DeadAfter, c.DeadFor = 1, time.Hour
		c.CommandTimeout = 500 * time.Millisecond
		c.RetryFirst, c.RetryMax = time.Hour, time.Hour
	})
	// A tarpit: it takes the connection and never greets.
	rawRemote(t, "127.0.0.2", f.port, func(c net.Conn) { time.Sleep(5 * time.Second) })
	f.mx("dead.example", "mx.dead.example")
	f.host("mx.dead.example", "127.0.0.2")
	live := startRemote(t, "127.0.0.3", f.port, "")
	f.mx("live.example", "mx.live.example")
	f.host("mx.live.example", "127.0.0.3")
	for i := range 20 {
		f.send("dead"+strconv.Itoa(i), "", "bob@dead.example")
	}
	f.send("live", "", "bob@live.example")
	start := time.Now()
	waitFor(t, "the live one", func() bool { return len(live.messages()) == 1 })
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("live mail waited %v behind a dead destination", d)
	}
	waitFor(t, "all dead ones deferred", func() bool {
		for i := range 20 {
			if f.state("dead"+strconv.Itoa(i), "bob@dead.example") != queue.Deferred {
				return false
			}
		}
		return true
	})
	tried := 0
	l, _ := f.q.List(t.Context())
	for _, e := range l {
		tried += e.Rcpts[0].Attempts
	}
	if tried > 2 {
		t.Errorf("%d attempts at a dead destination, want 1 or 2", tried)
	}
}

// A transport map entry sends a domain's mail to a fixed host; a smart
// host takes the rest, with AUTH over verified TLS.
func TestRoutes(t *testing.T) {
	cert, err := selfsigned.New("smarthost.example", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(cert.Leaf)
	port := freePort(t)
	mapped := startRemote(t, "127.0.0.4", port, "")
	smart := &authRemote{user: "relay", pass: "s3cret"}
	startAuthRemote(t, smart, "127.0.0.5:"+strconv.Itoa(port), cert)
	f := newFixture(t, func(c *queue.Config) {
		c.Transports = map[string]queue.Route{"mapped.example": {Addr: "127.0.0.4:" + strconv.Itoa(port)}}
		c.SmartHost = &queue.Route{Addr: "smarthost.example:" + strconv.Itoa(port), Username: "relay", Password: "s3cret"}
		c.TLS = &tls.Config{RootCAs: roots}
	})
	f.host("smarthost.example", "127.0.0.5")
	f.send("m1", "", "bob@mapped.example", "carl@anywhere.example", "dan@elsewhere.example")
	waitFor(t, "both routes", func() bool { return len(mapped.messages()) == 1 && smart.count() == 1 })
	waitFor(t, "queue empty", func() bool { return f.gone("m1") })
	smart.mu.Lock()
	defer smart.mu.Unlock()
	if !smart.tls || smart.authed != "relay" || len(smart.to[0]) != 2 {
		t.Errorf("smart host: tls %v, user %q, rcpts %v", smart.tls, smart.authed, smart.to)
	}
}

// authRemote is a smart host: it wants AUTH PLAIN over TLS.
type authRemote struct {
	user, pass string
	mu         sync.Mutex
	tls        bool
	authed     string
	to         [][]string
}

func (a *authRemote) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.to)
}

func startAuthRemote(t *testing.T, a *authRemote, addr string, cert tls.Certificate) {
	s := smtp.NewServer(a)
	s.Domain = "smarthost.example"
	s.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(l)
	t.Cleanup(func() { s.Close() })
}

func (a *authRemote) NewSession(c *smtp.Conn) (smtp.Session, error) {
	return &authSession{a: a, c: c}, nil
}

type authSession struct {
	a    *authRemote
	c    *smtp.Conn
	user string
	to   []string
}

func (s *authSession) AuthMechanisms() []string { return []string{sasl.Plain} }
func (s *authSession) Auth(mech string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(identity, user, pass string) error {
		if user != s.a.user || pass != s.a.pass {
			return errors.New("bad credentials")
		}
		s.user = user
		return nil
	}), nil
}
func (s *authSession) Mail(string, *smtp.MailOptions) error {
	if s.user == "" {
		return smtp.ErrAuthRequired
	}
	return nil
}
func (s *authSession) Rcpt(to string, _ *smtp.RcptOptions) error { s.to = append(s.to, to); return nil }
func (s *authSession) Data(r io.Reader) error {
	io.Copy(io.Discard, r)
	_, tls := s.c.TLSConnectionState()
	s.a.mu.Lock()
	defer s.a.mu.Unlock()
	s.a.tls, s.a.authed, s.a.to = tls, s.user, append(s.a.to, s.to)
	return nil
}
func (s *authSession) Reset()        { s.to = nil }
func (s *authSession) Logout() error { return nil }
