package imap_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mailsys/mailsys/imap"
	"github.com/mailsys/mailsys/mta"
)

// TestAdmitAtAccept: the Guard admits connections as the listener accepts
// them, per listener: past the cap a plain client is told BYE
// [UNAVAILABLE] before any greeting, an implicit-TLS one is closed before
// the handshake, and a slot given back admits the next client.
func TestAdmitAtAccept(t *testing.T) {
	e := newEnv(t)
	g := mta.NewGuard(mta.GuardConfig{MaxConnsPerListener: 1})
	srv, err := imap.NewServer(imap.Config{TLS: testTLS, InsecureAuth: true, Guard: g, Logger: slog.New(slog.DiscardHandler)}, e.db, e.store)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Shutdown(context.Background()) })
	listen := func(serve func(net.Listener) error) string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		go serve(l)
		return l.Addr().String()
	}
	plain, implicit := listen(srv.Serve), listen(srv.ServeTLS)
	firstLine := func(c net.Conn) string {
		t.Helper()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		line, _ := bufio.NewReader(c).ReadString('\n')
		return line
	}
	dial := func(addr string) net.Conn {
		t.Helper()
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}

	first := dial(plain)
	if line := firstLine(first); !strings.HasPrefix(line, "* OK") {
		t.Fatalf("first client greeted %q", line)
	}
	second := dial(plain)
	if line := firstLine(second); line != "* BYE [UNAVAILABLE] Too many connections, try again later\r\n" {
		t.Fatalf("client past the cap told %q", line)
	}
	if _, err := second.Read(make([]byte, 1)); err == nil {
		t.Error("refused connection left open")
	}

	// The other listener has its own cap.
	tc, err := tls.Dial("tcp", implicit, clientTLS)
	if err != nil {
		t.Fatalf("first implicit-TLS client: %v", err)
	}
	defer tc.Close()
	if line := firstLine(tc); !strings.HasPrefix(line, "* OK") {
		t.Fatalf("first implicit-TLS client greeted %q", line)
	}
	raw := dial(implicit)
	raw.SetDeadline(time.Now().Add(5 * time.Second))
	if n, err := raw.Read(make([]byte, 1)); n != 0 || err == nil || errorsIsTimeout(err) {
		t.Fatalf("implicit-TLS client past the cap: read %d bytes, %v; want the connection closed at once", n, err)
	}
	if _, err := tls.Dial("tcp", implicit, clientTLS); err == nil {
		t.Error("TLS handshake done for a refused client")
	}

	// Closing the first plain connection gives its slot back.
	first.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		c := dial(plain)
		line := firstLine(c)
		if strings.HasPrefix(line, "* OK") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("slot not given back: %q", line)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func errorsIsTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

// flakyListener fails its first Accepts with EMFILE, as a process out of
// file descriptors does.
type flakyListener struct {
	net.Listener
	fails atomic.Int32
}

func (l *flakyListener) Accept() (net.Conn, error) {
	if l.fails.Add(-1) >= 0 {
		return nil, &net.OpError{Op: "accept", Net: "tcp", Addr: l.Addr(), Err: os.NewSyscallError("accept4", syscall.EMFILE)}
	}
	return l.Listener.Accept()
}

// TestAcceptErrorsRetried: "too many open files" from accept does not end
// Serve: it keeps accepting once descriptors are free again.
func TestAcceptErrorsRetried(t *testing.T) {
	e := newEnv(t)
	srv, err := imap.NewServer(imap.Config{InsecureAuth: true, Logger: slog.New(slog.DiscardHandler)}, e.db, e.store)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fl := &flakyListener{Listener: l}
	fl.fails.Store(5)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(fl) }()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if !strings.HasPrefix(line, "* OK") {
		select {
		case err := <-served:
			t.Fatalf("Serve returned %v after accept errors", err)
		default:
		}
		t.Fatalf("no greeting after accept errors: %q, %v", line, err)
	}
	if n := fl.fails.Load(); n >= 0 {
		t.Fatalf("accept errors not all seen (%d left)", n+1)
	}
	srv.Shutdown(context.Background())
	if err := <-served; err != imap.ErrServerClosed {
		t.Errorf("Serve after Shutdown: %v", err)
	}
}
