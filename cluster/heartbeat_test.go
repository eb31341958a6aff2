package cluster

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// testLabels gives each test's cluster a label of its own: tests run in
// parallel, with nodes of the same names, on ports that the others may
// have used a moment before.
var testLabels sync.Map // *testing.T → string

func testLabel(t *testing.T) string {
	l, _ := testLabels.LoadOrStore(t, fmt.Sprintf("%s-%d", t.Name(), time.Now().UnixNano()))
	return l.(string)
}

// testLog collects the logs of a test's nodes, shown if it fails (not
// through t.Log: memberlist may log after the test ends).
type testLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *testLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

var testLogs sync.Map // *testing.T → *slog.Logger

func testLogger(t *testing.T) *slog.Logger {
	if l, ok := testLogs.Load(t); ok {
		return l.(*slog.Logger)
	}
	w := &testLog{}
	l := slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
	testLogs.Store(t, l)
	t.Cleanup(func() {
		if t.Failed() {
			w.mu.Lock()
			t.Logf("logs:\n%s", w.buf.String())
			w.mu.Unlock()
		}
		testLogs.Delete(t)
		testLabels.Delete(t)
	})
	return l
}

// newTestGossip starts the heartbeat of node id on 127.0.0.1:port (0: a
// free port), closed at the end of the test.
func newTestGossip(t *testing.T, id string, port int, key []byte) *Gossip {
	t.Helper()
	c := DefaultGossipConfig()
	c.Label = testLabel(t)
	c.ID, c.Num, c.Roles = id, uint32(len(id))*7+uint32(id[len(id)-1]), RoleUD|RoleMS
	c.RPCAddr = "10.0.0.1:" + strconv.Itoa(7000+int(id[len(id)-1]))
	c.BindAddr, c.BindPort = "127.0.0.1", port
	c.Key = key
	c.Logger = testLogger(t).With("test_node", id)
	g, err := NewGossip(c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	return g
}

// waitFor polls cond until it holds, failing the test after d.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > d {
			t.Fatalf("after %v: %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return time.Since(start)
}

func join(t *testing.T, g *Gossip, seeds ...*Gossip) {
	t.Helper()
	var addrs []string
	for _, s := range seeds {
		addrs = append(addrs, s.Addr())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := g.Join(ctx, addrs); err != nil {
		t.Fatalf("%s joins: %v", g.cfg.ID, err)
	}
}

func healthyCount(g *Gossip) int {
	n := 0
	for _, m := range g.Members() {
		if m.Healthy {
			n++
		}
	}
	return n
}

func member(g *Gossip, id string) (Member, bool) {
	for _, m := range g.Members() {
		if m.ID == id {
			return m, true
		}
	}
	return Member{}, false
}

// recorder keeps what a Watch was called with.
type recorder struct {
	mu     sync.Mutex
	events []Member
}

func (r *recorder) add(m Member) {
	r.mu.Lock()
	r.events = append(r.events, m)
	r.mu.Unlock()
}

func (r *recorder) has(pred func(Member) bool) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, m := range r.events {
		if pred(m) {
			return true
		}
	}
	return false
}

func (r *recorder) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.events)
}

// cluster3 starts nodes a, b and c and waits until each sees all three.
func cluster3(t *testing.T, key []byte) (a, b, c *Gossip) {
	t.Helper()
	a = newTestGossip(t, "a", 0, key)
	b = newTestGossip(t, "b", 0, key)
	c = newTestGossip(t, "c", 0, key)
	join(t, b, a)
	join(t, c, b) // through b: a hears of c by gossip
	for _, g := range []*Gossip{a, b, c} {
		waitFor(t, 4*time.Second, g.cfg.ID+" sees 3 healthy members", func() bool { return healthyCount(g) == 3 })
	}
	return a, b, c
}

func TestGossipJoinMembersAndVersion(t *testing.T) {
	t.Parallel()
	a, b, c := cluster3(t, nil)

	for _, g := range []*Gossip{a, b, c} {
		for _, want := range []*Gossip{a, b, c} {
			m, ok := member(g, want.cfg.ID)
			if !ok {
				t.Fatalf("%s does not list %s", g.cfg.ID, want.cfg.ID)
			}
			exp := Member{ID: want.cfg.ID, Num: want.cfg.Num, Roles: want.cfg.Roles, RPCAddr: want.cfg.RPCAddr,
				Healthy: true, Addr: want.Addr(), Started: m.Started}
			if m != exp || !m.Started.Equal(want.started) {
				t.Errorf("%s sees %+v, want %+v started %v", g.cfg.ID, m, exp, want.started)
			}
		}
	}
	if !a.Healthy("a") || !a.Healthy("b") || a.Healthy("nobody") || a.Healthy("") {
		t.Error("Healthy: want true for self and b, false for unknown ids")
	}

	// Watch starts with the members known now.
	var rec recorder
	stop := a.Watch(rec.add)
	defer stop()
	waitFor(t, time.Second, "Watch replays the 3 members", func() bool { return rec.len() >= 3 })

	b.SetVersion(42)
	d := waitFor(t, 2*time.Second, "a and c see b at version 42", func() bool {
		ma, _ := member(a, "b")
		mc, _ := member(c, "b")
		return ma.Version == 42 && mc.Version == 42
	})
	t.Logf("version seen by the peers after %v", d)
	waitFor(t, time.Second, "Watch reports b's new version", func() bool {
		return rec.has(func(m Member) bool { return m.ID == "b" && m.Version == 42 && m.Healthy })
	})
	if m, _ := member(b, "b"); m.Version != 42 {
		t.Errorf("b's own member has version %d", m.Version)
	}

	// After stop, no more calls.
	stop()
	n := rec.len()
	c.SetVersion(43)
	waitFor(t, 2*time.Second, "a sees c at version 43", func() bool { m, _ := member(a, "c"); return m.Version == 43 })
	time.Sleep(50 * time.Millisecond)
	if rec.len() != n {
		t.Errorf("Watch called %d times after stop", rec.len()-n)
	}
}

func TestGossipCrashAndRestart(t *testing.T) {
	t.Parallel()
	a, b, c := cluster3(t, nil)
	var rec recorder
	defer a.Watch(rec.add)()
	port := c.ml.LocalNode().Port
	oldStart := c.started

	c.Close() // no Leave: a crash
	d := waitFor(t, 4*time.Second, "a and b see c unhealthy", func() bool { return !a.Healthy("c") && !b.Healthy("c") })
	t.Logf("crash detected after %v", d)
	waitFor(t, time.Second, "Watch reports c failed", func() bool {
		return rec.has(func(m Member) bool { return m.ID == "c" && !m.Healthy && !m.Left })
	})
	if m, ok := member(a, "c"); !ok || m.Healthy {
		t.Errorf("a lists c as %+v (listed %v), want listed, not healthy", m, ok)
	}
	if !a.Healthy("b") {
		t.Error("b unhealthy after c's crash")
	}

	// The same node comes back on the same port.
	c2 := newTestGossip(t, "c", int(port), nil)
	c2.SetVersion(5)
	join(t, c2, a)
	d = waitFor(t, 4*time.Second, "a and b see c healthy again", func() bool {
		ma, _ := member(a, "c")
		mb, _ := member(b, "c")
		return a.Healthy("c") && b.Healthy("c") && ma.Started.Equal(c2.started) && mb.Started.Equal(c2.started)
	})
	t.Logf("restart seen after %v", d)
	waitFor(t, time.Second, "Watch reports c back, restarted", func() bool {
		return rec.has(func(m Member) bool { return m.ID == "c" && m.Healthy && m.Started.Equal(c2.started) })
	})
	if c2.started.Equal(oldStart) {
		t.Fatal("the restarted node has the old start time")
	}
	waitFor(t, 2*time.Second, "c sees 3 healthy members", func() bool { return healthyCount(c2) == 3 })
}

// TestGossipRestartElsewhere brings a crashed node back on another port:
// the peers take the dead node's name back after DeadNodeReclaimTime.
func TestGossipRestartElsewhere(t *testing.T) {
	t.Parallel()
	a, b, c := cluster3(t, nil)
	c.Close()
	waitFor(t, 4*time.Second, "a and b see c unhealthy", func() bool { return !a.Healthy("c") && !b.Healthy("c") })
	c2 := newTestGossip(t, "c", 0, nil)
	if c2.Addr() == c.Addr() {
		t.Skip("the free port picked was the old one")
	}
	join(t, c2, b)
	d := waitFor(t, 4*time.Second, "a and b see c healthy at its new address", func() bool {
		ma, _ := member(a, "c")
		mb, _ := member(b, "c")
		return ma.Healthy && mb.Healthy && ma.Addr == c2.Addr() && mb.Addr == c2.Addr()
	})
	t.Logf("restart elsewhere seen after %v", d)
}

func TestGossipLeave(t *testing.T) {
	t.Parallel()
	a, b, c := cluster3(t, nil)
	var rec recorder
	defer a.Watch(rec.add)()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := c.Leave(ctx); err != nil {
		t.Fatal(err)
	}
	d := waitFor(t, 2*time.Second, "a and b drop c", func() bool {
		_, inA := member(a, "c")
		_, inB := member(b, "c")
		return !inA && !inB && !a.Healthy("c") && !b.Healthy("c")
	})
	t.Logf("leave seen after %v", d)
	waitFor(t, time.Second, "Watch reports c left", func() bool {
		return rec.has(func(m Member) bool { return m.ID == "c" && m.Left && !m.Healthy })
	})
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); !errors.Is(err, ErrClosed) {
		t.Errorf("second Close = %v, want ErrClosed", err)
	}
	if err := c.Leave(ctx); !errors.Is(err, ErrClosed) {
		t.Errorf("Leave after Close = %v, want ErrClosed", err)
	}
	if err := c.Join(ctx, []string{a.Addr()}); !errors.Is(err, ErrClosed) {
		t.Errorf("Join after Close = %v, want ErrClosed", err)
	}
	c.SetVersion(99) // nothing, and no panic
	c.Watch(func(Member) { t.Error("Watch after Close called") })()
	if !c.Healthy("c") || c.Healthy("a") {
		t.Error("after Close, Healthy: want true for self only")
	}
}

func TestGossipKey(t *testing.T) {
	t.Parallel()
	key := bytes.Repeat([]byte{7}, 32)
	a := newTestGossip(t, "a", 0, key)
	b := newTestGossip(t, "b", 0, key)
	join(t, b, a)
	waitFor(t, 4*time.Second, "a and b see each other", func() bool { return healthyCount(a) == 2 && healthyCount(b) == 2 })

	for _, k := range [][]byte{bytes.Repeat([]byte{8}, 32), bytes.Repeat([]byte{7}, 16), nil} {
		x := newTestGossip(t, "x", 0, k)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := x.Join(ctx, []string{a.Addr()})
		cancel()
		if err == nil {
			t.Errorf("a node with key %x joined a cluster with key %x", k, key)
		}
		x.Close()
	}
	time.Sleep(300 * time.Millisecond)
	if _, ok := member(a, "x"); ok || a.Healthy("x") {
		t.Error("a lists the node with the wrong key")
	}
}

func TestGossipJoinErrors(t *testing.T) {
	t.Parallel()
	a := newTestGossip(t, "a", 0, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := a.Join(ctx, nil); !errors.Is(err, ErrInvalid) {
		t.Errorf("Join(no seeds) = %v, want ErrInvalid", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := l.Addr().String()
	l.Close()
	if err := a.Join(ctx, []string{dead, "not an address"}); err == nil || !strings.Contains(err.Error(), dead) {
		t.Errorf("Join(unreachable seeds) = %v, want an error naming %s", err, dead)
	}
	// A seed that never answers: the context bounds the wait.
	blackhole, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer blackhole.Close() // accepts (the backlog does), never answers
	short, cancel2 := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel2()
	start := time.Now()
	if err := a.Join(short, []string{blackhole.Addr().String()}); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Join(silent seed) = %v, want DeadlineExceeded", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Join took %v past its context", d)
	}
}

func TestGossipConfigValidate(t *testing.T) {
	t.Parallel()
	good := DefaultGossipConfig()
	good.ID, good.Num, good.Roles, good.RPCAddr = "ms1", 1, RoleMS, "10.0.0.1:7000"
	if err := good.Validate(); err != nil {
		t.Fatalf("good config: %v", err)
	}
	bad := good
	bad.ID, bad.Num, bad.Key, bad.ProbeTimeout = "Bad_ID", 0, []byte("short"), time.Second
	err := bad.Validate()
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("Validate = %v, want ErrInvalid", err)
	}
	for _, want := range []string{"node id", "number 0", "key of 5 bytes", "ProbeTimeout"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Validate error %q does not mention %q", err, want)
		}
	}
	big := good
	big.RPCAddr = strings.Repeat("x", 500)
	if _, err := NewGossip(big); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "metadata") {
		t.Errorf("NewGossip(500-byte RPCAddr) = %v, want ErrInvalid for the metadata", err)
	}
	// The largest that fits works.
	fits := good
	fits.BindAddr, fits.BindPort = "127.0.0.1", 0
	fits.Logger = quietLogger()
	fits.RPCAddr = strings.Repeat("x", 400)
	g, err := NewGossip(fits)
	if err != nil {
		t.Fatalf("NewGossip(400-byte RPCAddr): %v", err)
	}
	g.SetVersion(^uint64(0))
	g.Close()
	// A port in use is an error, not a crash.
	a := newTestGossip(t, "a", 0, nil)
	taken := good
	taken.BindAddr, taken.BindPort, taken.Logger = "127.0.0.1", int(a.ml.LocalNode().Port), quietLogger()
	if _, err := NewGossip(taken); err == nil {
		t.Error("NewGossip on a port in use succeeded")
	}
}

func TestGossipMetaEncoding(t *testing.T) {
	m := Member{ID: "ud-east-2", Num: 1<<32 - 1, Roles: RoleUD | RoleFront, RPCAddr: "[::1]:7000", Version: 1<<64 - 1,
		Started: time.Unix(1700000000, 123456789)}
	b := encodeMeta(m, metaLeaving)
	got, flags, err := decodeMeta(b)
	if err != nil || got != m || flags != metaLeaving {
		t.Fatalf("decode(encode(%+v)) = %+v, %x, %v", m, got, flags, err)
	}
	for i := range len(b) {
		if _, _, err := decodeMeta(b[:i]); err == nil {
			t.Errorf("decode of %d of %d bytes succeeded", i, len(b))
		}
	}
	if _, _, err := decodeMeta(append([]byte{9}, b[1:]...)); err == nil {
		t.Error("decode of format 9 succeeded")
	}
	// A later format's additions after the known fields are ignored.
	if got, _, err := decodeMeta(append(b, 1, 2, 3)); err != nil || got != m {
		t.Errorf("decode with trailing fields = %+v, %v", got, err)
	}
}

func FuzzDecodeMeta(f *testing.F) {
	f.Add(encodeMeta(Member{ID: "a", Num: 1, Roles: RoleMS, RPCAddr: "h:1", Version: 3, Started: time.Unix(0, 5)}, 0))
	f.Add([]byte{1, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, flags, err := decodeMeta(b)
		if err != nil {
			return
		}
		if got, gotFlags, err := decodeMeta(encodeMeta(m, flags)); err != nil || got != m || gotFlags != flags {
			t.Fatalf("re-decode of %+v = %+v, %v", m, got, err)
		}
	})
}

func TestGossipLogLevels(t *testing.T) {
	var buf bytes.Buffer
	w := &slogWriter{log: slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	for _, line := range []string{
		"[DEBUG] memberlist: Stream connection from=127.0.0.1:1\n",
		"[INFO] memberlist: Suspect c has failed\n",
		"[WARN] memberlist: Refuting a suspect message\n",
		"[ERR] memberlist: Failed to send gossip\n",
		"no level at all\n",
	} {
		w.Write([]byte(line))
	}
	out := buf.String()
	for _, want := range []string{
		`level=DEBUG msg="Stream connection from=127.0.0.1:1"`,
		`level=INFO msg="Suspect c has failed"`,
		`level=WARN msg="Refuting a suspect message"`,
		`level=ERROR msg="Failed to send gossip"`,
		`level=INFO msg="no level at all"`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %s:\n%s", want, out)
		}
	}
}

// stopSignals are SIGSTOP and SIGCONT where the test knows them (the
// syscall package names them only on unix).
var stopSignals = map[string][2]syscall.Signal{"linux": {19, 18}, "darwin": {17, 19}, "freebsd": {17, 19}}

// TestGossipStoppedProcess freezes a real peer process with SIGSTOP: the
// others must declare it dead within 3 seconds, and take it back when it
// runs again (SIGCONT).
func TestGossipStoppedProcess(t *testing.T) {
	t.Parallel()
	sig, ok := stopSignals[runtime.GOOS]
	if !ok {
		t.Skip("no SIGSTOP here")
	}
	a := newTestGossip(t, "a", 0, nil)
	b := newTestGossip(t, "b", 0, nil)
	join(t, b, a)

	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestGossipHelperProcess$")
	cmd.Env = append(os.Environ(), "GOSSIP_HELPER_SEED="+a.Addr(), "GOSSIP_HELPER_LABEL="+testLabel(t))
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdin, err := cmd.StdinPipe() // closed when the test ends: the helper exits
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Signal(sig[1])
		stdin.Close()
		cmd.Process.Kill()
		cmd.Wait()
	}()
	joined := make(chan error, 1)
	go func() {
		line, err := bufio.NewReader(stdout).ReadString('\n')
		if err == nil && !strings.HasPrefix(line, "joined") {
			err = fmt.Errorf("helper said %q", line)
		}
		joined <- err
	}()
	select {
	case err := <-joined:
		if err != nil {
			t.Fatal(err)
		}
	case <-ctx.Done():
		t.Fatal("the helper did not join")
	}
	waitFor(t, 4*time.Second, "a and b see p", func() bool { return a.Healthy("p") && b.Healthy("p") })

	if err := cmd.Process.Signal(sig[0]); err != nil {
		t.Fatal(err)
	}
	d := waitFor(t, 4*time.Second, "a and b see the stopped p unhealthy", func() bool { return !a.Healthy("p") && !b.Healthy("p") })
	t.Logf("stopped peer declared dead after %v", d)
	if d > 3*time.Second {
		t.Errorf("stopped peer declared dead after %v, want within 3s", d)
	}

	if err := cmd.Process.Signal(sig[1]); err != nil {
		t.Fatal(err)
	}
	d = waitFor(t, 5*time.Second, "a and b see p alive again", func() bool { return a.Healthy("p") && b.Healthy("p") })
	t.Logf("resumed peer alive again after %v", d)
}

// TestGossipHelperProcess is the peer TestGossipStoppedProcess runs in a
// process of its own; it does nothing in a normal run.
func TestGossipHelperProcess(t *testing.T) {
	seed := os.Getenv("GOSSIP_HELPER_SEED")
	if seed == "" {
		t.Skip("helper process for TestGossipStoppedProcess")
	}
	testLabels.Store(t, os.Getenv("GOSSIP_HELPER_LABEL"))
	g := newTestGossip(t, "p", 0, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := g.Join(ctx, []string{seed}); err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	fmt.Println("joined")
	// Run until the parent closes stdin (or kills the process), 30s at
	// the most.
	done := make(chan struct{})
	go func() { bufio.NewReader(os.Stdin).ReadString('\n'); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
	}
}
