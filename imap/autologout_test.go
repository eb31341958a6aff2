package imap_test

import (
	"bufio"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/mailsys/mailsys/imap"
)

// rawLogin connects to addr, logs ann in and returns the connection and
// its reader, positioned after the LOGIN's OK, and the time it came.
func rawLogin(t *testing.T, addr string) (net.Conn, *bufio.Reader, time.Time) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(20 * time.Second))
	r := bufio.NewReader(c)
	r.ReadString('\n')
	io.WriteString(c, "l LOGIN ann@example.test pw\r\n")
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("login: %v", err)
		}
		if strings.HasPrefix(line, "l ") {
			if !strings.HasPrefix(line, "l OK") {
				t.Fatalf("login: %q", line)
			}
			return c, r, time.Now()
		}
	}
}

// closedAt reads r until the connection ends and returns when it did,
// and whether the server said BYE first.
func closedAt(t *testing.T, r *bufio.Reader) time.Time {
	t.Helper()
	rest, _ := io.ReadAll(r)
	if !strings.Contains(string(rest), "* BYE ") {
		t.Errorf("connection closed without BYE after %q", rest)
	}
	return time.Now()
}

// TestAutologout: a logged-in session that sends no whole command within
// IdleTimeout of the server waiting for one is closed, whether it sends
// nothing or trickles a command that never ends; one that keeps sending
// commands is not.
func TestAutologout(t *testing.T) {
	e := newEnv(t)
	const idle = 400 * time.Millisecond
	_, addr := serveWith(t, imap.Config{IdleTimeout: idle}, e.db, e.store)

	// Silent.
	_, r, start := rawLogin(t, addr)
	if d := closedAt(t, r).Sub(start); d < idle-50*time.Millisecond || d > idle+time.Second {
		t.Errorf("silent session closed after %v; want about %v", d, idle)
	}

	// Trickling a byte every 100 ms of a command that never ends.
	c, r, start := rawLogin(t, addr)
	go func(c net.Conn) {
		io.WriteString(c, "a NOOP ")
		for {
			time.Sleep(100 * time.Millisecond)
			if _, err := io.WriteString(c, "x"); err != nil {
				return
			}
		}
	}(c)
	if d := closedAt(t, r).Sub(start); d < idle-50*time.Millisecond || d > idle+time.Second {
		t.Errorf("trickling session closed after %v; want about %v", d, idle)
	}

	// Busy: a NOOP every 100 ms for three times IdleTimeout.
	c, r, _ = rawLogin(t, addr)
	for i := 0; i < 12; i++ {
		time.Sleep(100 * time.Millisecond)
		io.WriteString(c, "n NOOP\r\n")
		line, err := r.ReadString('\n')
		if err != nil || !strings.HasPrefix(line, "n OK") {
			t.Fatalf("NOOP %d of a busy session: %q, %v", i, line, err)
		}
	}
}

// TestAutologoutIdle: a session in IDLE outlives IdleTimeout and is closed
// at IdleCommandTimeout.
func TestAutologoutIdle(t *testing.T) {
	e := newEnv(t)
	const idle, idleCmd = 300 * time.Millisecond, 1500 * time.Millisecond
	_, addr := serveWith(t, imap.Config{IdleTimeout: idle, IdleCommandTimeout: idleCmd}, e.db, e.store)
	c, r, _ := rawLogin(t, addr)
	io.WriteString(c, "s SELECT INBOX\r\n")
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("SELECT: %v", err)
		}
		if strings.HasPrefix(line, "s ") {
			break
		}
	}
	io.WriteString(c, "i IDLE\r\n")
	if line, err := r.ReadString('\n'); err != nil || !strings.HasPrefix(line, "+") {
		t.Fatalf("IDLE: %q, %v", line, err)
	}
	start := time.Now()
	// Open at three times IdleTimeout.
	c.SetReadDeadline(time.Now().Add(3 * idle))
	if _, err := r.ReadByte(); !errorsIsTimeout(err) {
		t.Fatalf("session in IDLE: %v after %v, want it still open", err, time.Since(start))
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if d := closedAt(t, r).Sub(start); d < idleCmd-100*time.Millisecond || d > idleCmd+time.Second {
		t.Errorf("session in IDLE closed after %v; want about %v", d, idleCmd)
	}

	// DONE ends IDLE in time, and the autologout timer runs again.
	c, r, _ = rawLogin(t, addr)
	io.WriteString(c, "i IDLE\r\n")
	if line, err := r.ReadString('\n'); err != nil || !strings.HasPrefix(line, "+") {
		t.Fatalf("IDLE: %q, %v", line, err)
	}
	time.Sleep(2 * idle)
	io.WriteString(c, "DONE\r\n")
	if line, err := r.ReadString('\n'); err != nil || !strings.HasPrefix(line, "i OK") {
		t.Fatalf("DONE: %q, %v", line, err)
	}
	start = time.Now()
	if d := closedAt(t, r).Sub(start); d < idle-50*time.Millisecond || d > idle+time.Second {
		t.Errorf("session after IDLE closed after %v; want about %v", d, idle)
	}
}
