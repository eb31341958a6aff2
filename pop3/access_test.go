package pop3_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"io"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mailsys/mailsys/mta"
	"github.com/mailsys/mailsys/pop3"
	"github.com/mailsys/mailsys/userdata"
)

// TestLockout: the shared Guard's lockout after failed logins answers
// [SYS/TEMP], even to the right password, for USER/PASS and AUTH alike.
func TestLockout(t *testing.T) {
	e := newEnv(t, pop3.Config{Guard: mta.NewGuard(mta.GuardConfig{AuthFailures: 3})})
	c := dial(t, e.addr)
	for range 3 {
		c.ok("USER " + testUser)
		if r := c.cmd("PASS wrong"); r != "-ERR [AUTH] Authentication failed" {
			t.Fatalf("wrong password: %q", r)
		}
	}
	c.ok("USER " + testUser)
	if r := c.cmd("PASS " + testPass); r != "-ERR [SYS/TEMP] Too many failed logins, try again later" {
		t.Errorf("locked out, USER/PASS: %q", r)
	}
	if r := c.cmd("AUTH PLAIN AGFubkBleGFtcGxlLnRlc3QAc2VjcmV0IHBhc3M="); !strings.HasPrefix(r, "-ERR [SYS/TEMP]") {
		t.Errorf("locked out, AUTH PLAIN: %q", r)
	}
}

// TestDenied: a client the Guard does not admit gets -ERR and the door,
// at accept: the one refusal Serve has, whatever the Guard's reason.
func TestDenied(t *testing.T) {
	g := mta.NewGuard(mta.GuardConfig{Allow: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}})
	e := newEnv(t, pop3.Config{Guard: g})
	c, err := netDial(e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(c)
	line, _ := r.ReadString('\n')
	if line != "-ERR [SYS/TEMP] Too many connections, try again later\r\n" {
		t.Errorf("greeting to a denied client: %q", line)
	}
	if _, err := r.ReadByte(); err == nil {
		t.Error("denied connection left open")
	}
}

// TestTLSRequired: without InsecureAuth, passwords wait for STLS; what a
// client sends after STLS in the same packet, before the handshake, is
// dropped (no plain-text command injection).
func TestTLSRequired(t *testing.T) {
	e := newEnv(t, pop3.Config{TLS: selfSigned(t)})
	e.deliver([]byte("Subject: x\r\n\r\nx\r\n"))
	c := dial(t, e.addr)
	c.ok("CAPA")
	caps := c.multi()
	if !slices.Contains(caps, "STLS") || slices.Contains(caps, "USER") || slices.Contains(caps, "SASL PLAIN") {
		t.Errorf("CAPA before TLS: %q", caps)
	}
	for _, line := range []string{"USER " + testUser, "PASS " + testPass, "AUTH PLAIN AGFubkBleGFtcGxlLnRlc3QAc2VjcmV0IHBhc3M="} {
		if r := c.cmd(line); !strings.HasPrefix(r, "-ERR Plain-text passwords need TLS") {
			t.Errorf("%s before TLS: %q", line, r)
		}
	}
	c.send("STLS\r\nUSER " + testUser + "\r\n")
	if r := c.line(); !strings.HasPrefix(r, "+OK") {
		t.Fatalf("STLS: %q", r)
	}
	tc := tls.Client(c.c, &tls.Config{InsecureSkipVerify: true})
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	c.c, c.r = tc, bufio.NewReader(tc)
	if r := c.cmd("PASS " + testPass); r != "-ERR USER first" {
		t.Errorf("PASS after an injected USER: %q", r)
	}
	c.ok("CAPA")
	caps = c.multi()
	if slices.Contains(caps, "STLS") || !slices.Contains(caps, "USER") {
		t.Errorf("CAPA over TLS: %q", caps)
	}
	if r := c.cmd("STLS"); !strings.HasPrefix(r, "-ERR") {
		t.Errorf("STLS twice: %q", r)
	}
	c.login()
	c.ok("QUIT")
}

// TestTimeouts: a silent client is dropped, before and after login, and
// so is one that keeps itself busy without logging in.
func TestTimeouts(t *testing.T) {
	busy := newEnv(t, pop3.Config{LoginTimeout: 300 * time.Millisecond})
	bc := dial(t, busy.addr)
	dropped := false
	for range 40 { // 2 s of CAPA, every 50 ms
		bc.c.Write([]byte("CAPA\r\n"))
		bc.c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		if _, err := io.Copy(io.Discard, bc.r); err == nil || !isTimeout(err) {
			dropped = true
			break
		}
	}
	if !dropped {
		t.Error("a client sending CAPA without logging in was not dropped after the login timeout")
	}

	e := newEnv(t, pop3.Config{LoginTimeout: 400 * time.Millisecond, CommandTimeout: time.Second})
	c := dial(t, e.addr)
	start := time.Now()
	if !c.closed() {
		t.Fatal("silent client not dropped before login")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("dropped after %v", d)
	}
	c = dial(t, e.addr)
	c.login()
	time.Sleep(600 * time.Millisecond) // past the login timeout, within the idle one: still there
	c.ok("NOOP")
	if !c.closed() {
		t.Fatal("silent client not dropped after login")
	}
	// The maildrop is free again.
	c = dial(t, e.addr)
	c.login()
}

// gatedDB is the real UserDB with Remove held until gate is closed, to
// catch a session in its UPDATE state.
type gatedDB struct {
	*userdata.DB
	entered chan struct{}
	gate    chan struct{}
}

func (g *gatedDB) Remove(ctx context.Context, user userdata.UserID, folder userdata.FolderID, set userdata.UIDSet) ([]userdata.UID, error) {
	close(g.entered)
	<-g.gate
	return g.DB.Remove(ctx, user, folder, set)
}

// TestShutdown: Shutdown closes idle sessions at once and lets a session
// in its UPDATE state finish, +OK and all.
func TestShutdown(t *testing.T) {
	g := &gatedDB{entered: make(chan struct{}), gate: make(chan struct{})}
	e := newEnvWith(t, pop3.Config{}, func(db *userdata.DB) pop3.UserDB { g.DB = db; return g })
	for range 3 {
		e.deliver([]byte("Subject: x\r\n\r\nx\r\n"))
	}
	idle := dial(t, e.addr)
	busy := dial(t, e.addr)
	busy.login()
	busy.ok("DELE 2")
	busy.send("QUIT\r\n")
	<-g.entered
	done := make(chan error)
	go func() { done <- e.srv.Shutdown(context.Background()) }()
	if !idle.closed() {
		t.Error("idle session not closed by Shutdown")
	}
	select {
	case err := <-done:
		t.Fatalf("Shutdown returned %v during an UPDATE", err)
	case <-time.After(100 * time.Millisecond):
	}
	close(g.gate)
	if r := busy.line(); !strings.HasPrefix(r, "+OK") {
		t.Errorf("QUIT during Shutdown: %q", r)
	}
	if err := <-done; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if n := len(e.uids()); n != 2 {
		t.Errorf("%d messages after the UPDATE, want 2", n)
	}
	if _, err := netDial(e.addr); err == nil {
		t.Error("still accepting after Shutdown")
	}
}
