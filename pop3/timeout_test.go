package pop3_test

import (
	"bytes"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/mailsys/mailsys/pop3"
)

// trickle writes s, then one byte every 50 ms, until a write fails or
// stop is closed.
func trickle(c net.Conn, s string, stop <-chan struct{}) {
	if _, err := c.Write([]byte(s)); err != nil {
		return
	}
	for {
		select {
		case <-stop:
			return
		case <-time.After(50 * time.Millisecond):
		}
		if _, err := c.Write([]byte("x")); err != nil {
			return
		}
	}
}

// TestCommandTimeoutTrickle: a logged-in client that trickles a command
// line that never ends is closed at the command's deadline, counted from
// when the server began to wait for it, however many bytes keep coming.
func TestCommandTimeoutTrickle(t *testing.T) {
	const timeout = 600 * time.Millisecond
	e := newEnv(t, pop3.Config{CommandTimeout: timeout})
	e.deliver([]byte("Subject: x\r\n\r\nx\r\n"))
	c := dial(t, e.addr)
	c.login()
	c.ok("DELE 1")
	stop := make(chan struct{})
	defer close(stop)
	start := time.Now() // the server waits for the next command from about now
	go trickle(c.c, "NOOP", stop)
	c.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	got, err := io.ReadAll(c.r)
	d := time.Since(start)
	if isTimeout(err) {
		t.Fatal("a trickling client was not closed")
	}
	if len(got) > 0 {
		t.Errorf("closed with %q; RFC 1939's autologout says nothing", got)
	}
	if d < timeout-100*time.Millisecond || d > timeout+700*time.Millisecond {
		t.Errorf("a trickling client was closed after %v, want about %v", d, timeout)
	}
	if n := len(e.uids()); n != 1 {
		t.Errorf("%d messages after the autologout, want 1: nothing deleted", n)
	}
}

// TestCommandTimeoutIdle: a logged-in client that says nothing is closed
// after CommandTimeout, without a reply, and its maildrop is free again.
func TestCommandTimeoutIdle(t *testing.T) {
	const timeout = 500 * time.Millisecond
	e := newEnv(t, pop3.Config{CommandTimeout: timeout})
	c := dial(t, e.addr)
	c.login()
	start := time.Now()
	c.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	got, err := io.ReadAll(c.r)
	d := time.Since(start)
	if isTimeout(err) || len(got) > 0 {
		t.Fatalf("idle session: read %q, %v; want EOF", got, err)
	}
	if d < timeout-100*time.Millisecond || d > timeout+700*time.Millisecond {
		t.Errorf("idle session closed after %v, want about %v", d, timeout)
	}
	c = dial(t, e.addr)
	c.login()
}

// TestMaxSession: a client busy with commands is closed at MaxSession
// with -ERR; it never reaches the UPDATE state, so what it marked is not
// deleted, and the maildrop lock is released.
func TestMaxSession(t *testing.T) {
	const limit = 1500 * time.Millisecond
	e := newEnv(t, pop3.Config{MaxSession: limit, CommandTimeout: time.Minute})
	for range 2 {
		e.deliver([]byte("Subject: x\r\n\r\nx\r\n"))
	}
	start := time.Now()
	c := dial(t, e.addr)
	c.login()
	c.ok("DELE 1")
	var last string
	for time.Since(start) < 10*time.Second {
		if last = c.cmd("NOOP"); last != "+OK" {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	d := time.Since(start)
	if !strings.HasPrefix(last, "-ERR ") || !strings.Contains(last, "Session time limit") {
		t.Fatalf("a busy session past MaxSession got %q", last)
	}
	if d < limit || d > limit+time.Second {
		t.Errorf("closed after %v, want %v", d, limit)
	}
	if !c.drained() {
		t.Error("not closed after the -ERR")
	}
	if n := len(e.uids()); n != 2 {
		t.Errorf("%d messages after the session, want 2: nothing deleted", n)
	}
	c = dial(t, e.addr)
	c.login() // not [IN-USE]
	if r := c.ok("STAT"); !strings.HasPrefix(r, "+OK 2 ") {
		t.Errorf("STAT: %q", r)
	}
}

// TestMaxSessionSlowReader: a client that reads a RETR slowly does not
// keep the session past MaxSession: the reply is cut off there and the
// session ends, long before WriteTimeout, its maildrop free again.
func TestMaxSessionSlowReader(t *testing.T) {
	const limit = time.Second
	e := newEnv(t, pop3.Config{MaxSession: limit, WriteTimeout: time.Minute})
	body := append([]byte("Subject: big\r\n\r\n"), bytes.Repeat([]byte(strings.Repeat("y", 78)+"\r\n"), 7<<20/80)...)
	e.deliver(body)
	c := dial(t, e.addr)
	// A small window, so that the server's writes block well before the
	// whole body is on its way (its send buffer takes up to 4 MiB).
	c.c.(*net.TCPConn).SetReadBuffer(64 << 10)
	c.login()
	start := time.Now()
	c.send("RETR 1\r\n")
	time.Sleep(limit + time.Second) // read nothing: the server's writes block
	again := dial(t, e.addr)
	again.ok("USER " + testUser)
	if r := again.cmd("PASS " + testPass); !strings.HasPrefix(r, "+OK") {
		t.Errorf("login %v after a RETR to a slow reader began, with a MaxSession of %v: %q", time.Since(start), limit, r)
	}
	c.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := io.Copy(io.Discard, c.r)
	if isTimeout(err) {
		t.Fatalf("still open %v after a RETR to a slow reader, with a MaxSession of %v", time.Since(start), limit)
	}
	if n >= int64(len(body)) {
		t.Errorf("read %d bytes, the whole body: the RETR was not cut off at MaxSession", n)
	}
}
