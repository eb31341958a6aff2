package mta_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailsys/mailsys/internal/selfsigned"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/mailsys/mailsys/mta"
	"github.com/mailsys/mailsys/userdata"
)

func selfSigned(t *testing.T) *tls.Config {
	t.Helper()
	cert, err := selfsigned.New("localhost", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}}
}

func startSubmission(t *testing.T) (*system, string) {
	t.Helper()
	return startSubmissionWith(t, nil, nil)
}

// startSubmissionWith is startSubmission with configure applied to the
// listener's config first and auth, if not nil, checking passwords.
func startSubmissionWith(t *testing.T, configure func(*mta.InboundConfig), auth func(mta.Authenticator) mta.Authenticator) (*system, string) {
	t.Helper()
	s, _ := startInbound(t) // the users, and a system to deliver into
	ctx := t.Context()
	u, err := s.db.LookupAddress(ctx, "u0@example.test")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.db.SetPassword(ctx, u.ID, "pw0"); err != nil {
		t.Fatal(err)
	}
	if err := s.db.AddAlias(ctx, "alias0@example.test", u.ID); err != nil {
		t.Fatal(err)
	}
	cfg := mta.InboundConfig{Hostname: "mx.example.test", TLS: selfSigned(t), Logger: slog.New(slog.NewTextHandler(t.Output(), nil))}
	if configure != nil {
		configure(&cfg)
	}
	var a mta.Authenticator = s.db
	if auth != nil {
		a = auth(a)
	}
	sub, err := mta.NewSubmission(cfg, s.db, a, s.d)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go sub.Serve(l)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		sub.Shutdown(ctx)
	})
	return s, l.Addr().String()
}

func TestSubmission(t *testing.T) {
	s, addr := startSubmission(t)
	msg := "From: u0@example.test\r\nSubject: sent\r\n\r\nhi\r\n"

	// Without TLS: no AUTH offered, no MAIL accepted.
	c, err := smtp.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	if ok, _ := c.Extension("AUTH"); ok {
		t.Error("AUTH offered before TLS")
	}
	if err := c.Mail("u0@example.test", nil); smtpCode(err) != 530 {
		t.Errorf("MAIL without authentication: %v; want 530", err)
	}
	c.Close()

	tlsc := &tls.Config{InsecureSkipVerify: true}
	dial := func(a sasl.Client) (*smtp.Client, error) {
		c, err := smtp.DialStartTLS(addr, tlsc)
		if err != nil {
			return nil, err
		}
		if err := c.Auth(a); err != nil {
			c.Close()
			return nil, err
		}
		return c, nil
	}
	if _, err := dial(sasl.NewPlainClient("", "u0@example.test", "wrong")); smtpCode(err) != 535 {
		t.Errorf("wrong password: %v; want 535", err)
	}
	for _, mech := range []sasl.Client{sasl.NewPlainClient("", "u0@example.test", "pw0"), sasl.NewLoginClient("u0@example.test", "pw0")} {
		c, err := dial(mech)
		if err != nil {
			t.Fatalf("AUTH: %v", err)
		}
		if err := c.SendMail("alias0@example.test", []string{"u1@example.test"}, strings.NewReader(msg)); err != nil {
			t.Errorf("send as an alias to a local user: %v", err)
		}
		if err := c.SendMail("u1@example.test", []string{"u2@example.test"}, strings.NewReader(msg)); smtpCode(err) != 553 {
			t.Errorf("send as somebody else: %v; want 553", err)
		}
		if err := c.SendMail("u0@example.test", []string{"friend@elsewhere.test"}, strings.NewReader(msg)); smtpCode(err) != 550 {
			t.Errorf("send to another domain without a Relay: %v; want 550", err)
		}
		c.Quit()
	}
	if got := inbox(t, s, "u1@example.test", 2); len(got) != 2 {
		t.Fatalf("u1 got %d messages, want 2", len(got))
	}
}

// TestSubmissionLockout: after repeated failures even the right password
// is refused for a while, with a temporary error.
func TestSubmissionLockout(t *testing.T) {
	_, addr := startSubmission(t)
	tlsc := &tls.Config{InsecureSkipVerify: true}
	try := func(pw string) error {
		c, err := smtp.DialStartTLS(addr, tlsc)
		if err != nil {
			return err
		}
		defer c.Close()
		return c.Auth(sasl.NewPlainClient("", "u0@example.test", pw))
	}
	for i := range 5 {
		if err := try("wrong"); smtpCode(err) != 535 {
			t.Fatalf("failure %d: %v; want 535", i, err)
		}
	}
	if err := try("pw0"); smtpCode(err) != 454 {
		t.Fatalf("right password during the lockout: %v; want 454", err)
	}
}

// loginLog records the logins a listener reports.
type loginLog struct {
	mu     sync.Mutex
	logins []string
}

func (l *loginLog) LoggedIn(u userdata.User, p userdata.Protocol) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.logins = append(l.logins, fmt.Sprintf("%s %d", u.Address, p))
}

// TestSubmissionLoginObserver: InboundConfig.Logins hears of each AUTH
// that succeeds, as a submission, and of no failed one.
func TestSubmissionLoginObserver(t *testing.T) {
	var l loginLog
	_, addr := startSubmissionWith(t, func(c *mta.InboundConfig) { c.Logins = &l }, nil)
	for _, pw := range []string{"wrong", "pw0"} {
		c, err := smtp.DialStartTLS(addr, &tls.Config{InsecureSkipVerify: true})
		if err != nil {
			t.Fatal(err)
		}
		err = c.Auth(sasl.NewPlainClient("", "u0@example.test", pw))
		if (err == nil) != (pw == "pw0") {
			t.Fatalf("AUTH with %q: %v", pw, err)
		}
		c.Close()
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if want := fmt.Sprintf("u0@example.test %d", userdata.ProtoSubmission); len(l.logins) != 1 || l.logins[0] != want {
		t.Fatalf("logins reported: %q, want [%q]", l.logins, want)
	}
}
