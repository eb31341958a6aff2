package pop3_test

import (
	"bufio"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mailsys/mailsys/mta"
	"github.com/mailsys/mailsys/pop3"
)

const refusal = "-ERR [SYS/TEMP] Too many connections, try again later\r\n"

// TestAdmitAtAccept: the Guard decides as a connection is accepted; a
// client over the bound hears -ERR [SYS/TEMP] and is closed, and once a
// place is free again a new client is served.
func TestAdmitAtAccept(t *testing.T) {
	e := newEnv(t, pop3.Config{Guard: mta.NewGuard(mta.GuardConfig{MaxConnsPerIP: 2})})
	first := dial(t, e.addr)
	second := dial(t, e.addr)
	second.ok("CAPA")
	second.multi()
	c, err := netDial(e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("third connection: %v (read %q)", err, got)
	}
	if string(got) != refusal {
		t.Errorf("third connection got %q, want %q and EOF", got, refusal)
	}

	first.ok("QUIT")
	if !first.closed() {
		t.Fatal("QUIT did not close")
	}
	// The place is given back when the session's connection is closed,
	// just after QUIT's reply: try for a while.
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := netDial(e.addr)
		if err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		line, err := bufio.NewReader(c).ReadString('\n')
		c.Close()
		if err != nil {
			t.Fatalf("after a place was freed: %v (read %q)", err, line)
		}
		if strings.HasPrefix(line, "+OK") {
			break
		}
		if line != refusal || time.Now().After(deadline) {
			t.Fatalf("after a place was freed: %q", line)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestAdmitImplicitTLS: on the implicit-TLS listener a refused client is
// closed before the handshake, without a byte from the server; the
// listeners are counted apart ("pop3" and "pop3s"), so a full pop3s does
// not refuse pop3.
func TestAdmitImplicitTLS(t *testing.T) {
	e := newEnv(t, pop3.Config{TLS: selfSigned(t), Guard: mta.NewGuard(mta.GuardConfig{MaxConnsPerIP: 1})})
	tc, err := tls.Dial("tcp", e.tls, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	tc.SetReadDeadline(time.Now().Add(10 * time.Second))
	if g, err := bufio.NewReader(tc).ReadString('\n'); !strings.HasPrefix(g, "+OK") {
		t.Fatalf("greeting over TLS: %q, %v", g, err)
	}

	// A second client on pop3s: closed at once, before any handshake.
	c, err := netDial(e.tls)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	got, err := io.ReadAll(c)
	if err != nil || len(got) != 0 {
		t.Errorf("refused pop3s connection: read %q, %v; want EOF at once", got, err)
	}

	// The plain listener has places of its own.
	dial(t, e.addr)
}

// flakyListener fails Accept with EMFILE, as a process out of file
// descriptors does, while fail is positive.
type flakyListener struct {
	net.Listener
	fail atomic.Int32
}

func (l *flakyListener) Accept() (net.Conn, error) {
	if l.fail.Add(-1) >= 0 {
		return nil, &net.OpError{Op: "accept", Net: "tcp", Addr: l.Addr(), Err: os.NewSyscallError("accept", syscall.EMFILE)}
	}
	return l.Listener.Accept()
}

// TestAcceptRetries: the accept loop outlives a run of EMFILE errors and
// serves again once they stop, every time.
func TestAcceptRetries(t *testing.T) {
	e := newEnv(t, pop3.Config{Guard: mta.NewGuard(mta.GuardConfig{})})
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := &flakyListener{Listener: inner}
	l.fail.Store(6)
	srv, err := pop3.NewServer(pop3.Config{InsecureAuth: true, Logger: quietLogger()}, e.db, e.store)
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-served; err != pop3.ErrServerClosed {
			t.Errorf("Serve: %v", err)
		}
	})
	for range 3 {
		c := dial(t, inner.Addr().String())
		c.login()
		c.ok("QUIT")
		l.fail.Store(6)
	}
}

func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
