package rpc

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/mailsys/mailsys/cluster"
	"github.com/mailsys/mailsys/cluster/dirtest"
)

// openLocalDir opens a LocalDirectory for a test, closed at its end.
func openLocalDir(t testing.TB) *cluster.LocalDirectory {
	t.Helper()
	d, err := cluster.OpenLocalDirectory(t.TempDir(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// dirServer is a Directory served over mutual TLS on a loopback port,
// which can be stopped and started again on the same port.
type dirServer struct {
	t       testing.TB
	d       cluster.Directory
	addr    string
	srvCred cluster.Credentials
	cliCred cluster.Credentials
	srv     *grpc.Server
}

func serveDirectory(t testing.TB, d cluster.Directory) *dirServer {
	t.Helper()
	srvCreds, cliCreds := testCreds(t, "peer")
	s := &dirServer{t: t, d: d, srvCred: srvCreds, cliCred: cliCreds}
	s.start("127.0.0.1:0")
	t.Cleanup(func() { s.srv.Stop() })
	return s
}

// start serves on addr (the same port again, after stop).
func (s *dirServer) start(addr string) {
	s.t.Helper()
	var l net.Listener
	var err error
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if l, err = net.Listen("tcp", addr); err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		s.t.Fatal(err)
	}
	s.addr = l.Addr().String()
	s.srv = NewServer(s.srvCred)
	RegisterDirectory(s.srv, s.d)
	go s.srv.Serve(l)
}

// client dials the server on a connection of its own.
func (s *dirServer) client(t testing.TB, addr string, cfg DirectoryConfig) *Directory {
	t.Helper()
	conn, err := Dial(addr, "peer", s.cliCred)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	cfg.Peer = "peer"
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	c := NewDirectoryWith(conn, cfg)
	t.Cleanup(func() { c.Close() })
	return c
}

// TestDirectoryConformance runs dirtest over loopback mutual TLS on a
// LocalDirectory.
func TestDirectoryConformance(t *testing.T) {
	dirtest.Run(t, func(t *testing.T) cluster.Directory {
		conn := serve(t, func(s *grpc.Server) { RegisterDirectory(s, openLocalDir(t)) })
		return NewDirectoryWith(conn, DirectoryConfig{Peer: "peer", Logger: testLogger(t)})
	})
}

// TestDirectoryShared: two clients over two connections see each other's
// changes (WatchRegistry among them), and so do the node's own
// LocalDirectory and a client of it.
func TestDirectoryShared(t *testing.T) {
	t.Run("TwoClients", func(t *testing.T) {
		dirtest.RunShared(t, func(t *testing.T) (a, b cluster.Directory) {
			s := serveDirectory(t, openLocalDir(t))
			return s.client(t, s.addr, DirectoryConfig{}), s.client(t, s.addr, DirectoryConfig{})
		})
	})
	t.Run("LocalAndClient", func(t *testing.T) {
		dirtest.RunShared(t, func(t *testing.T) (a, b cluster.Directory) {
			local := openLocalDir(t)
			s := serveDirectory(t, local)
			return local, s.client(t, s.addr, DirectoryConfig{})
		})
	})
}

// regLog records the registries a watch is given.
type regLog struct {
	mu   sync.Mutex
	regs []cluster.Registry
}

func (l *regLog) record(r cluster.Registry) {
	l.mu.Lock()
	l.regs = append(l.regs, r)
	l.mu.Unlock()
}

func (l *regLog) calls() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.regs)
}

func (l *regLog) last() cluster.Registry {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.regs) == 0 {
		return cluster.Registry{}
	}
	return l.regs[len(l.regs)-1]
}

// TestDirectoryWatchServerRestart: the node serving the Directory stops
// and comes back on the same port; the client's watch opens its stream
// again by itself, calls fn with the registry once back, and then sees
// the changes made after (and during) the break.
func TestDirectoryWatchServerRestart(t *testing.T) {
	ctx := t.Context()
	local := openLocalDir(t)
	if err := local.PutNode(ctx, cluster.Node{ID: "ms1", Num: 1, Roles: cluster.RoleMS, Addr: "127.0.0.1:1", Weight: 10}); err != nil {
		t.Fatal(err)
	}
	s := serveDirectory(t, local)
	c := s.client(t, s.addr, DirectoryConfig{CallTimeout: time.Second})
	var log regLog
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- c.WatchRegistry(wctx, log.record) }()
	within(t, 2*time.Second, "the registry at once", func() bool { return log.calls() == 1 })

	for round := range 2 {
		s.srv.Stop()
		before := log.calls()
		// A change while the node is down for the clients.
		if err := local.SetWeight(ctx, "ms1", 20+round); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Registry(ctx); !cluster.IsUnavailable(err) {
			t.Errorf("round %d: Registry with the node down: %v, want unavailable", round, err)
		}
		time.Sleep(300 * time.Millisecond) // a few failed tries
		s.start(s.addr)
		within(t, 5*time.Second, "fn called again after the restart", func() bool { return log.calls() > before })
		if n, _ := log.last().Node("ms1"); n.Weight != 20+round {
			t.Errorf("round %d: registry after the restart has weight %d, want %d (set during the break)", round, n.Weight, 20+round)
		}
		if err := local.SetMasked(ctx, "ms1", round == 0); err != nil {
			t.Fatal(err)
		}
		within(t, 2*time.Second, "a change after the restart", func() bool {
			n, _ := log.last().Node("ms1")
			return n.Masked == (round == 0)
		})
	}
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("WatchRegistry after its context ended: %v", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("WatchRegistry did not return after its context ended")
	}
}

// TestDirectoryUnavailable: a node that stops answering (its connection
// open, nothing coming back) gives errors matching cluster.IsUnavailable
// before the call's deadline, or after CallTimeout for a call without
// one; so does a node with nothing listening. A watch with the node
// silent neither returns nor calls fn, and ends with its context.
func TestDirectoryUnavailable(t *testing.T) {
	const callTimeout = 500 * time.Millisecond
	s := serveDirectory(t, openLocalDir(t))
	p := newTCPProxy(t, s.addr)
	c := s.client(t, p.addr(), DirectoryConfig{CallTimeout: callTimeout})
	if _, err := c.NextID(t.Context(), "user"); err != nil {
		t.Fatal(err)
	}
	p.pause(true)
	calls := map[string]func(ctx context.Context) error{
		"Registry":      func(ctx context.Context) error { _, err := c.Registry(ctx); return err },
		"NextID":        func(ctx context.Context) error { _, err := c.NextID(ctx, "user"); return err },
		"PlaceUser":     func(ctx context.Context) error { return c.PlaceUser(ctx, 1, "a@example.org", "ud1") },
		"LookupAddress": func(ctx context.Context) error { _, err := c.LookupAddress(ctx, "a@example.org"); return err },
	}
	for name, fn := range calls {
		ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
		err := fn(ctx)
		ctxErr := ctx.Err()
		cancel()
		if !cluster.IsUnavailable(err) {
			t.Errorf("%s with a deadline, node silent: %v, want unavailable", name, err)
		}
		if ctxErr != nil {
			t.Errorf("%s with a deadline: returned after it", name)
		}
		start := time.Now()
		err = fn(t.Context())
		took := time.Since(start)
		if !cluster.IsUnavailable(err) || took < callTimeout/2 || took > callTimeout+time.Second {
			t.Errorf("%s without a deadline, node silent: %v after %v, want unavailable after CallTimeout %v", name, err, took, callTimeout)
		}
	}
	var log regLog
	wctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
	defer cancel()
	if err := c.WatchRegistry(wctx, log.record); !errors.Is(err, context.DeadlineExceeded) || log.calls() != 0 {
		t.Errorf("WatchRegistry with the node silent: %v after %d calls, want DeadlineExceeded after none", err, log.calls())
	}

	p.pause(false)
	within(t, 10*time.Second, "the node to answer again", func() bool {
		_, err := c.Registry(t.Context())
		return err == nil
	})

	// Nothing listening at all.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	gone := s.client(t, addr, DirectoryConfig{CallTimeout: callTimeout})
	start := time.Now()
	if _, err := gone.UserNode(t.Context(), 1); !cluster.IsUnavailable(err) || time.Since(start) > callTimeout+time.Second {
		t.Errorf("UserNode of a node with nothing listening: %v after %v, want unavailable", err, time.Since(start))
	}
}

// TestDirectoryCloseDuringWatch: Close ends a watch whose stream is
// broken and waiting to be opened again.
func TestDirectoryCloseDuringWatch(t *testing.T) {
	s := serveDirectory(t, openLocalDir(t))
	c := s.client(t, s.addr, DirectoryConfig{})
	var log regLog
	done := make(chan error, 1)
	go func() { done <- c.WatchRegistry(t.Context(), log.record) }()
	within(t, 2*time.Second, "the registry at once", func() bool { return log.calls() == 1 })
	s.srv.Stop()
	time.Sleep(200 * time.Millisecond)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, cluster.ErrClosed) {
			t.Errorf("WatchRegistry after Close: %v, want ErrClosed", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("WatchRegistry did not return after Close")
	}
	if err := c.Close(); !errors.Is(err, cluster.ErrClosed) {
		t.Errorf("second Close: %v, want ErrClosed", err)
	}
}
