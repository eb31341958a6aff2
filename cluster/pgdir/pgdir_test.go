package pgdir_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mailsys/mailsys/cluster"
	"github.com/mailsys/mailsys/cluster/dirtest"
	"github.com/mailsys/mailsys/cluster/pgdir"
	"github.com/mailsys/mailsys/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// testConfig polls often, so that the tests of lost notifications are
// quick.
var testConfig = pgdir.Config{PollInterval: 300 * time.Millisecond, CallTimeout: 5 * time.Second}

func open(t *testing.T, dsn string) *pgdir.Directory {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	d, err := pgdir.Open(ctx, dsn, testConfig)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return d
}

func TestConformance(t *testing.T) {
	dirtest.Run(t, func(t *testing.T) cluster.Directory {
		return open(t, pgtest.Start(t))
	})
}

// TestShared: two Directories on one database, as two nodes of a cluster
// are; a change through one reaches the other's watcher without a
// restart.
func TestShared(t *testing.T) {
	dirtest.RunShared(t, func(t *testing.T) (a, b cluster.Directory) {
		dsn := pgtest.Start(t)
		return open(t, dsn), open(t, dsn)
	})
}

// watcher collects what WatchRegistry gives fn.
type watcher struct {
	mu   sync.Mutex
	regs []cluster.Registry
	ch   chan struct{}
	done chan error
}

func watch(t *testing.T, d cluster.Directory) *watcher {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	w := &watcher{ch: make(chan struct{}, 1), done: make(chan error, 1)}
	go func() {
		w.done <- d.WatchRegistry(ctx, func(r cluster.Registry) {
			w.mu.Lock()
			w.regs = append(w.regs, r)
			w.mu.Unlock()
			select {
			case w.ch <- struct{}{}:
			default:
			}
		})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-w.done:
		case <-time.After(5 * time.Second):
			t.Error("WatchRegistry did not return after its context ended")
		}
	})
	return w
}

func (w *watcher) calls() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.regs)
}

// await waits up to within for fn to be given, after its first after
// calls, a registry for which ok holds.
func (w *watcher) await(t *testing.T, what string, after int, within time.Duration, ok func(cluster.Registry) bool) {
	t.Helper()
	deadline := time.After(within)
	for {
		w.mu.Lock()
		for _, r := range w.regs[min(after, len(w.regs)):] {
			if ok(r) {
				w.mu.Unlock()
				return
			}
		}
		w.mu.Unlock()
		select {
		case <-w.ch:
		case err := <-w.done:
			t.Fatalf("%s: WatchRegistry returned %v", what, err)
		case <-deadline:
			t.Fatalf("%s: not given to fn within %v", what, within)
		}
	}
}

func weightIs(id string, weight int) func(cluster.Registry) bool {
	return func(r cluster.Registry) bool {
		n, ok := r.Node(id)
		return ok && n.Weight == weight
	}
}

// TestWatchAcrossRestart: WatchRegistry keeps going across a restart of
// the server: it gives fn the registry again once it has reconnected, and
// then sees changes made after the restart by another Directory.
func TestWatchAcrossRestart(t *testing.T) {
	srv := pgtest.New(t)
	dsn := srv.NewDatabase(t)
	a, b := open(t, dsn), open(t, dsn)
	defer a.Close()
	defer b.Close()
	ctx := t.Context()
	if err := a.PutNode(ctx, cluster.Node{ID: "ud1", Num: 1, Roles: cluster.RoleUD, Addr: "127.0.0.1:1", Weight: 1}); err != nil {
		t.Fatal(err)
	}
	w := watch(t, b)
	w.await(t, "the registry at once", 0, 2*time.Second, weightIs("ud1", 1))
	before := w.calls()
	start := time.Now()
	srv.Restart(t)
	w.await(t, "the registry after the restart", before, 5*time.Second, weightIs("ud1", 1))
	t.Logf("registry given again %v after the restart began", time.Since(start).Round(time.Millisecond))
	// The pool's connections died with the server; a call may fail
	// (Unavailable) before the pool has new ones.
	retry(t, "SetWeight after the restart", func() error { return a.SetWeight(ctx, "ud1", 2) })
	w.await(t, "a change after the restart", before, 2*time.Second, weightIs("ud1", 2))

	// A server down for a while: calls are Unavailable, and the watcher
	// waits.
	srv.Stop(t)
	if _, err := a.Registry(ctx); !cluster.IsUnavailable(err) {
		t.Errorf("Registry with the server down: %v, want Unavailable", err)
	}
	time.Sleep(500 * time.Millisecond)
	srv.StartAgain(t)
	retry(t, "SetWeight after a stop", func() error { return a.SetWeight(ctx, "ud1", 3) })
	w.await(t, "a change after the server came back", before, 8*time.Second, weightIs("ud1", 3))
}

func retry(t *testing.T, what string, fn func() error) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := fn()
		if err == nil {
			return
		}
		if !cluster.IsUnavailable(err) || time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestLostNotification: a change whose notification never comes (made here
// behind the Directory's back) reaches the watcher by the fallback poll.
func TestLostNotification(t *testing.T) {
	dsn := pgtest.Start(t)
	d := open(t, dsn)
	defer d.Close()
	ctx := t.Context()
	if err := d.PutNode(ctx, cluster.Node{ID: "ms1", Num: 1, Roles: cluster.RoleMS, Addr: "127.0.0.1:1", Weight: 1}); err != nil {
		t.Fatal(err)
	}
	w := watch(t, d)
	w.await(t, "the registry at once", 0, 2*time.Second, weightIs("ms1", 1))
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "UPDATE dir_nodes SET weight = 9; UPDATE dir_registry SET version = version + 1"); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	w.await(t, "a change without a notification", 0, 4*testConfig.PollInterval, weightIs("ms1", 9))
	t.Logf("seen after %v (PollInterval %v)", time.Since(start).Round(time.Millisecond), testConfig.PollInterval)
	// A poll that finds nothing new calls nobody.
	n := w.calls()
	time.Sleep(3 * testConfig.PollInterval)
	if w.calls() != n {
		t.Errorf("fn called %d times by polls that found the same version", w.calls()-n)
	}
}

// TestMigrateConcurrently: four nodes opening one empty database at once
// migrate it once; opening it again changes nothing.
func TestMigrateConcurrently(t *testing.T) {
	dsn := pgtest.Start(t)
	ctx := t.Context()
	dirs := make([]*pgdir.Directory, 4)
	errs := make([]error, 4)
	var wg sync.WaitGroup
	for i := range dirs {
		wg.Go(func() { dirs[i], errs[i] = pgdir.Open(ctx, dsn, testConfig) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("Open %d: %v", i, err)
		}
		defer dirs[i].Close()
	}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	migrations := func() []string {
		t.Helper()
		rows, err := conn.Query(ctx, "SELECT version || ' ' || name FROM mailsys_schema_migrations WHERE component = 'pgdir' ORDER BY version")
		if err != nil {
			t.Fatal(err)
		}
		s, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	first := migrations()
	if len(first) == 0 || first[0] != "1 0001_init.sql" {
		t.Fatalf("mailsys_schema_migrations: %q", first)
	}
	// Each works, on the one schema.
	for i, d := range dirs {
		if _, err := d.NextID(ctx, "user"); err != nil {
			t.Errorf("NextID through %d: %v", i, err)
		}
	}
	again := open(t, dsn)
	defer again.Close()
	if n, err := again.NextID(ctx, "user"); err != nil || n != 5 {
		t.Errorf("NextID after a fifth Open: %d, %v; want 5", n, err)
	}
	if m := migrations(); fmt.Sprint(m) != fmt.Sprint(first) {
		t.Errorf("migrations after opening again: %q, want %q", m, first)
	}
}

// TestOpenUnreachable: a DSN whose port nobody listens on is Unavailable,
// before the context's deadline; so is a server that accepts and says
// nothing, by the deadline.
func TestOpenUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	silent := l.Addr().String()
	defer l.Close()
	go func() {
		var conns []net.Conn // held open, never answered
		for {
			c, err := l.Accept()
			if err != nil {
				for _, c := range conns {
					c.Close()
				}
				return
			}
			conns = append(conns, c)
		}
	}()
	l2, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l2.Addr().String()
	l2.Close()

	for _, tc := range []struct{ what, addr string }{{"closed port", closed}, {"silent server", silent}} {
		ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
		start := time.Now()
		d, err := pgdir.Open(ctx, "postgres://postgres@"+tc.addr+"/x?sslmode=disable", pgdir.Config{})
		cancel()
		took := time.Since(start)
		if err == nil {
			d.Close()
			t.Fatalf("%s: Open succeeded", tc.what)
		}
		if !cluster.IsUnavailable(err) {
			t.Errorf("%s: Open: %v, want Unavailable", tc.what, err)
		}
		t.Logf("%s: %v", tc.what, err)
		if took > time.Second {
			t.Errorf("%s: Open took %v with a deadline of 500ms", tc.what, took)
		}
	}
}

func TestOpenInvalid(t *testing.T) {
	ctx := t.Context()
	for _, tc := range []struct {
		dsn string
		cfg pgdir.Config
	}{
		{"postgres://x:notanumber/db", pgdir.Config{}},
		{"host=127.0.0.1 port=1 connect_timeout=x", pgdir.Config{}},
		{"postgres://127.0.0.1:1/db", pgdir.Config{PollInterval: -1}},
		{"postgres://127.0.0.1:1/db", pgdir.Config{CallTimeout: -time.Second, MaxConns: -1}},
	} {
		if _, err := pgdir.Open(ctx, tc.dsn, tc.cfg); !errors.Is(err, cluster.ErrInvalid) {
			t.Errorf("Open(%q, %+v): %v, want ErrInvalid", tc.dsn, tc.cfg, err)
		}
	}
	if err := pgdir.DefaultConfig().Validate(); err != nil {
		t.Errorf("DefaultConfig: %v", err)
	}
}

// TestTimeout: a call the database cannot answer in CallTimeout (a lock
// held elsewhere) is Unavailable after CallTimeout.
func TestTimeout(t *testing.T) {
	dsn := pgtest.Start(t)
	ctx := t.Context()
	cfg := testConfig
	cfg.CallTimeout = 300 * time.Millisecond
	d, err := pgdir.Open(ctx, dsn, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, "LOCK TABLE dir_sequences"); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = d.NextID(ctx, "user")
	if took := time.Since(start); !cluster.IsUnavailable(err) || took > 2*time.Second {
		t.Errorf("NextID on a locked table: %v after %v, want Unavailable after about 300ms", err, took)
	}
	tx.Rollback(ctx)
	if _, err := d.NextID(ctx, "user"); err != nil {
		t.Errorf("NextID after the lock: %v", err)
	}
}

// TestUnstorable: a node address PostgreSQL cannot store as text (not
// checked by Node.Validate) is ErrInvalid, and changes nothing.
func TestUnstorable(t *testing.T) {
	d := open(t, pgtest.Start(t))
	defer d.Close()
	ctx := t.Context()
	for _, addr := range []string{"10.0.0.1:7443\x00", "h\xffst:1"} {
		n := cluster.Node{ID: "ud1", Num: 1, Roles: cluster.RoleUD, Addr: addr, Weight: 1}
		if err := d.PutNode(ctx, n); !errors.Is(err, cluster.ErrInvalid) {
			t.Errorf("PutNode with address %q: %v, want ErrInvalid", addr, err)
		}
	}
	if r, err := d.Registry(ctx); err != nil || len(r.Nodes) != 0 || r.Version != 0 {
		t.Errorf("registry after refused PutNodes: %+v, %v", r, err)
	}
}

// TestAdvanceIDBounds: AdvanceID past 0 changes nothing; past 2^63-1, the
// end of a bigint sequence, is refused and leaves the sequence usable.
func TestAdvanceIDBounds(t *testing.T) {
	d := open(t, pgtest.Start(t))
	defer d.Close()
	ctx := t.Context()
	if err := d.AdvanceID(ctx, "user", 0); err != nil {
		t.Errorf("AdvanceID(user, 0): %v", err)
	}
	if err := d.AdvanceID(ctx, "user", 1<<63); !errors.Is(err, cluster.ErrInvalid) {
		t.Errorf("AdvanceID(user, 2^63): %v, want ErrInvalid", err)
	}
	if n, err := d.NextID(ctx, "user"); err != nil || n != 1 {
		t.Errorf("NextID(user) = %d, %v; want 1", n, err)
	}
	if err := d.AdvanceID(ctx, "user", 1<<63-2); err != nil {
		t.Fatal(err)
	}
	if n, err := d.NextID(ctx, "user"); err != nil || n != 1<<63-1 {
		t.Errorf("NextID(user) = %d, %v; want 2^63-1", n, err)
	}
	// The sequence is used up: an error, never a number again.
	if n, err := d.NextID(ctx, "user"); err == nil {
		t.Errorf("NextID(user) past 2^63-1 = %d", n)
	}
}
