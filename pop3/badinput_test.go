package pop3_test

import (
	"encoding/base64"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/mailsys/mailsys/pop3"
)

// TestBadInput: bad input gets -ERR (or, after too many, the connection
// closed), and the server stays up with no goroutine left behind.
func TestBadInput(t *testing.T) {
	e := newEnv(t, pop3.Config{})
	for i := range 3 {
		e.deliver(fmt.Appendf(nil, "Subject: %d\r\n\r\nbody\r\n", i))
	}
	e.deliver(bigMessage(4<<20, 7))
	base := runtime.NumGoroutine()

	wantErr := func(c *client, line string) {
		t.Helper()
		if r := c.cmd(line); !strings.HasPrefix(r, "-ERR") {
			t.Errorf("%q: %q, want -ERR", line, r)
		}
	}
	// Before login: garbage, control characters, commands of the other
	// state. CAPA's +OK starts the count of errors in a row again.
	c := dial(t, e.addr)
	for i, line := range []string{"", "\x00\x01\x02", "garbage here", "\xff\xfe", "STAT", "RETR 1", "USER a\x00b",
		"STAT\rLIST", "NOOP", "APOP ann 0123456789abcdef", "QUITX", "LIST 1", "AUTH XOAUTH2", "PASS before user"} {
		if i%5 == 4 {
			c.ok("CAPA")
			c.multi()
		}
		wantErr(c, line)
	}
	// A 100 KB line is refused and skipped; the session goes on.
	wantErr(c, "USER "+strings.Repeat("a", 100<<10))
	c.ok("CAPA")
	c.multi()
	// AUTH: bad base64, at once and after the continuation; "*" cancels;
	// an authorization identity that is not the user is refused.
	wantErr(c, "AUTH PLAIN !!!notbase64")
	if r := c.cmd("AUTH PLAIN"); r != "+ " {
		t.Fatalf("AUTH PLAIN: %q, want the continuation", r)
	}
	wantErr(c, "@@@")
	if r := c.cmd("AUTH PLAIN"); r != "+ " {
		t.Fatalf("AUTH PLAIN: %q", r)
	}
	wantErr(c, "*")
	wantErr(c, "AUTH PLAIN "+base64.StdEncoding.EncodeToString([]byte("no NULs")))
	c.ok("CAPA")
	c.multi()
	wantErr(c, "AUTH PLAIN "+base64.StdEncoding.EncodeToString([]byte("bob@example.test\x00"+testUser+"\x00"+testPass)))
	wantErr(c, "AUTH PLAIN =")
	c.ok("AUTH PLAIN " + base64.StdEncoding.EncodeToString([]byte("\x00"+testUser+"\x00"+testPass)))

	// After login: commands of the other state, bad numbers, DELE twice.
	for i, line := range []string{"USER x", "PASS x", "AUTH PLAIN", "STLS", "RETR 0", "RETR 99999", "RETR -1", "RETR +1",
		"RETR abc", "RETR", "RETR 1 2", "TOP 1", "TOP 1 -1", "TOP 0 1", "LIST 0", "UIDL 5", "DELE 1000000000000",
		"STAT x", "NOOP x", "RSET x", "RETR 1\x00"} {
		if i%5 == 4 {
			c.ok("NOOP")
		}
		wantErr(c, line)
	}
	c.ok("DELE 1")
	wantErr(c, "DELE 1")
	wantErr(c, "RETR 1")
	wantErr(c, "TOP 1 1")
	c.ok("LIST 2")

	// Ten errors in a row end the session.
	for range 9 {
		wantErr(c, "BOGUS")
	}
	if r := c.cmd("BOGUS"); !strings.HasPrefix(r, "-ERR") {
		t.Errorf("tenth error: %q", r)
	}
	if r := c.line(); !strings.HasPrefix(r, "-ERR Too many errors") {
		t.Errorf("after ten errors: %q", r)
	}
	if !c.closed() {
		t.Error("connection still open after ten errors in a row")
	}

	// A client that vanishes in the middle of a 4 MiB RETR, and one that
	// vanishes in the middle of a line.
	c = dial(t, e.addr)
	c.login()
	c.send("RETR 4\r\n")
	c.line()
	buf := make([]byte, 1000)
	if _, err := c.r.Read(buf); err != nil {
		t.Fatal(err)
	}
	c.c.Close()
	c = dial(t, e.addr)
	c.send("USER " + testUser)
	c.c.Close()

	// The server is still there, with the maildrop free again (once the
	// session of the vanished client has seen it go), and nothing deleted.
	deadline := time.Now().Add(10 * time.Second)
	for {
		c = dial(t, e.addr)
		c.ok("USER " + testUser)
		r := c.cmd("PASS " + testPass)
		if strings.HasPrefix(r, "+OK") {
			break
		}
		if !strings.Contains(r, "[IN-USE]") || time.Now().After(deadline) {
			t.Fatalf("login after a vanished client: %q", r)
		}
		c.c.Close()
		time.Sleep(10 * time.Millisecond)
	}
	if r := c.ok("STAT"); !strings.HasPrefix(r, "+OK 4 ") {
		t.Errorf("STAT = %q, want 4 messages", r)
	}
	c.ok("QUIT")
	c.closed()
	waitGoroutines(t, base)
}

// waitGoroutines waits up to 10 s for the number of goroutines to fall back
// to base.
func waitGoroutines(t *testing.T, base int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > base {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines, %d before:\n%s", runtime.NumGoroutine(), base, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}
