package imap_test

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/mailsys/mailsys/imap"
	"github.com/mailsys/mailsys/mta"
)

// TestGuard: the Guard shared with SMTP refuses denied addresses at
// connect, and locks an account out after repeated failed logins, even
// with the right password.
func TestGuard(t *testing.T) {
	e := newEnv(t)
	serve := func(g *mta.Guard) string {
		srv, err := imap.NewServer(imap.Config{InsecureAuth: true, Guard: g, Logger: slog.New(slog.DiscardHandler)}, e.db, e.store)
		if err != nil {
			t.Fatal(err)
		}
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		go srv.Serve(l)
		t.Cleanup(func() { srv.Shutdown(context.Background()) })
		return l.Addr().String()
	}
	denied := serve(mta.NewGuard(mta.GuardConfig{Deny: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}))
	if c, err := imapclient.DialInsecure(denied, nil); err == nil {
		if err := c.Login("ann@example.test", "pw").Wait(); err == nil {
			t.Error("a denied address logged in")
		}
		c.Close()
	}

	addr := serve(mta.NewGuard(mta.GuardConfig{AuthFailures: 3, Lockout: time.Minute}))
	c, err := imapclient.DialInsecure(addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for range 3 {
		if err := c.Login("ann@example.test", "wrong").Wait(); err == nil {
			t.Fatal("wrong password accepted")
		}
	}
	err = c.Login("ann@example.test", "pw").Wait()
	if err == nil {
		t.Fatal("logged in while locked out")
	}
	if code := imapCode(err); code != "UNAVAILABLE" {
		t.Errorf("locked out: %v, want NO [UNAVAILABLE]", err)
	}
}
