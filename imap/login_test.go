package imap_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/mailsys/mailsys/imap"
	"github.com/mailsys/mailsys/mta"
	"github.com/mailsys/mailsys/userdata"
)

// busyDB refuses every password check of the password "busy" as the
// UserDB does when too many run at once.
type busyDB struct{ *userdata.DB }

func (b busyDB) Authenticate(ctx context.Context, address, password string, p userdata.Protocol) (userdata.User, error) {
	if password == "busy" {
		return userdata.User{}, fmt.Errorf("userdata: check password: %w", userdata.ErrBusy)
	}
	return b.DB.Authenticate(ctx, address, password, p)
}

// syncBuffer is a log destination for tests.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// serveWith runs a server over db with cfg (insecure auth allowed) on a
// plain listener and returns its address.
func serveWith(t *testing.T, cfg imap.Config, db imap.UserDB, store imap.Bodies) (*imap.Server, string) {
	t.Helper()
	cfg.InsecureAuth = true
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	srv, err := imap.NewServer(cfg, db, store)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Shutdown(context.Background()) })
	return srv, l.Addr().String()
}

// TestLoginBusy: a password check the UserDB refuses as busy is answered
// NO [UNAVAILABLE], over LOGIN and AUTHENTICATE PLAIN, and is no failed
// login: many of them do not lock the account out.
func TestLoginBusy(t *testing.T) {
	e := newEnv(t)
	g := mta.NewGuard(mta.GuardConfig{AuthFailures: 2})
	_, addr := serveWith(t, imap.Config{Guard: g}, busyDB{e.db}, e.store)
	c, err := imapclient.DialInsecure(addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for range 3 {
		err := c.Login("ann@example.test", "busy").Wait()
		if code := imapCode(err); code != "UNAVAILABLE" || !strings.Contains(err.Error(), "try again later") {
			t.Fatalf("LOGIN while busy: %v, want NO [UNAVAILABLE] ... try again later", err)
		}
		err = c.Authenticate(saslPlain("ann@example.test", "busy"))
		if code := imapCode(err); code != "UNAVAILABLE" {
			t.Fatalf("AUTHENTICATE PLAIN while busy: %v, want NO [UNAVAILABLE]", err)
		}
	}
	if err := c.Login("ann@example.test", "pw").Wait(); err != nil {
		t.Fatalf("LOGIN after busy refusals: %v (counted as failures?)", err)
	}
}

// TestLoginFailedDelay: a failed login is answered only after the delay
// the Guard asks for, and a server shutting down does not wait it out.
// The user name is logged cut to 256 bytes, however long the client made
// it.
func TestLoginFailedDelay(t *testing.T) {
	e := newEnv(t)
	g := mta.NewGuard(mta.GuardConfig{AuthFailures: 1000, AddrAuthFailures: -1, AccountFailures: 1, AccountDelay: time.Minute})
	var logs syncBuffer
	srv, addr := serveWith(t, imap.Config{Guard: g, Logger: slog.New(slog.NewTextHandler(&logs, nil))}, e.db, e.store)
	c, err := imapclient.DialInsecure(addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// The first failure is answered at once, the second after 250 ms, the
	// third after 500 ms.
	var took []time.Duration
	for range 3 {
		start := time.Now()
		if err := c.Login("ann@example.test", "wrong").Wait(); err == nil {
			t.Fatal("wrong password accepted")
		}
		took = append(took, time.Since(start))
	}
	if took[1] < 240*time.Millisecond || took[2] < 490*time.Millisecond {
		t.Errorf("failed logins answered after %v; want the Guard's delays of 0, 250 ms, 500 ms", took)
	}

	// A name longer than the log allows.
	long := strings.Repeat("x", 255) + "é" + strings.Repeat("y", 3000)
	if err := c.Login(long, "wrong").Wait(); err == nil {
		t.Fatal("wrong password accepted")
	}
	var logged string
	for _, line := range strings.Split(logs.String(), "\n") {
		if strings.Contains(line, "msg=login") && strings.Contains(line, "result=failed") && strings.Contains(line, "xxxx") {
			_, rest, _ := strings.Cut(line, "user=")
			logged, _, _ = strings.Cut(rest, " ")
		}
	}
	if logged != strings.Repeat("x", 255) {
		t.Errorf("long user name logged as %d bytes %.40q...; want it cut to 256 bytes at a character boundary", len(logged), logged)
	}

	// Now every failure waits a minute, but not past Shutdown, over
	// AUTHENTICATE PLAIN too.
	for range 10 {
		g.AuthFailed(netip.MustParseAddr("127.0.0.1"), "ann@example.test")
	}
	answered := make(chan time.Duration, 1)
	go func() {
		start := time.Now()
		c.Authenticate(saslPlain("ann@example.test", "wrong"))
		answered <- time.Since(start)
	}()
	time.Sleep(300 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	srv.Shutdown(ctx)
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Shutdown took %v with a failed login waiting", d)
	}
	select {
	case d := <-answered:
		if d > 5*time.Second {
			t.Errorf("failed login outlived Shutdown: answered after %v", d)
		}
	case <-time.After(5 * time.Second):
		t.Error("failed login still waiting after Shutdown")
	}
}

// TestLoginLogged: every login attempt is one log line with the user, the
// remote address, the mechanism and the result, each key once.
func TestLoginLogged(t *testing.T) {
	e := newEnv(t)
	var logs syncBuffer
	_, addr := serveWith(t, imap.Config{Logger: slog.New(slog.NewJSONHandler(&logs, nil))}, e.db, e.store)
	c, err := imapclient.DialInsecure(addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login("ann@example.test", "wrong").Wait(); err == nil {
		t.Fatal("wrong password accepted")
	}
	if err := c.Authenticate(saslPlain("ann@example.test", "pw")); err != nil {
		t.Fatal(err)
	}
	var got []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if strings.Count(line, `"user":`) > 1 || strings.Count(line, `"remote":`) > 1 {
			t.Errorf("a key twice in %s", line)
		}
		if rec["msg"] == "login" {
			got = append(got, rec)
		}
	}
	want := []struct{ mech, result string }{{"LOGIN", "failed"}, {"PLAIN", "ok"}}
	if len(got) != len(want) {
		t.Fatalf("login lines %v, want %d", got, len(want))
	}
	for i, w := range want {
		r := got[i]
		if r["user"] != "ann@example.test" || r["remote"] != "127.0.0.1" || r["mechanism"] != w.mech || r["result"] != w.result {
			t.Errorf("login line %d = %v, want user, remote 127.0.0.1, mechanism %s, result %s", i, r, w.mech, w.result)
		}
	}
}
