package userdata_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mailsys/mailsys/userdata"
)

// waitFor polls cond until it holds, failing the test after ten seconds.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func waiting(l *userdata.PasswordLimiter, n int) func() bool {
	return func() bool { return l.Stats().Waiting == n }
}

func mustAcquire(t *testing.T, l *userdata.PasswordLimiter, weight int64) func() {
	t.Helper()
	release, err := l.Acquire(t.Context(), weight)
	if err != nil {
		t.Fatalf("Acquire(%d): %v", weight, err)
	}
	return release
}

// acquireAsync starts an Acquire (or Wait) in a goroutine; the channel gets
// its outcome.
type outcome struct {
	release func()
	err     error
}

func acquireAsync(ctx context.Context, l *userdata.PasswordLimiter, weight int64, patient bool) <-chan outcome {
	ch := make(chan outcome, 1)
	go func() {
		var o outcome
		if patient {
			o.release, o.err = l.Wait(ctx, weight)
		} else {
			o.release, o.err = l.Acquire(ctx, weight)
		}
		ch <- o
	}()
	return ch
}

func TestLimiterDefaults(t *testing.T) {
	l := userdata.NewPasswordLimiter(userdata.PasswordLimiterConfig{})
	n := runtime.GOMAXPROCS(0)
	var releases []func()
	for range n {
		releases = append(releases, mustAcquire(t, l, 64<<20))
	}
	if s := l.Stats(); s.Running != n || s.Memory != int64(n)*64<<20 {
		t.Errorf("after %d acquires: %+v", n, s)
	}
	// The next ones wait: the default queue is 4*GOMAXPROCS long.
	var waiters []<-chan outcome
	for i := range 4 * n {
		waiters = append(waiters, acquireAsync(t.Context(), l, 1, false))
		waitFor(t, fmt.Sprintf("%d waiting", i+1), waiting(l, i+1))
	}
	start := time.Now()
	if _, err := l.Acquire(t.Context(), 1); !errors.Is(err, userdata.ErrBusy) {
		t.Errorf("Acquire with the default queue full: %v, want ErrBusy", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Acquire with the queue full took %v", d)
	}
	for _, r := range releases {
		r()
	}
	for _, w := range waiters {
		o := <-w
		if o.err != nil {
			t.Errorf("waiter: %v", o.err)
			continue
		}
		o.release()
	}
	if s := l.Stats(); s.Running != 0 || s.Waiting != 0 || s.Memory != 0 || s.Busy != 1 {
		t.Errorf("in the end: %+v", s)
	}
}

func TestLimiterMaxChecks(t *testing.T) {
	const max = 3
	l := userdata.NewPasswordLimiter(userdata.PasswordLimiterConfig{MaxChecks: max, MaxWaiting: 100, MaxWait: time.Minute})
	var running, peak atomic.Int32
	var wg sync.WaitGroup
	for range 30 {
		wg.Go(func() {
			release, err := l.Acquire(t.Context(), 1<<20)
			if err != nil {
				t.Error(err)
				return
			}
			defer release()
			n := running.Add(1)
			for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
			}
			time.Sleep(2 * time.Millisecond)
			running.Add(-1)
		})
	}
	wg.Wait()
	if p := peak.Load(); p > max {
		t.Errorf("%d checks ran at once, MaxChecks is %d", p, max)
	}
	if s := l.Stats(); s.PeakRunning > max || s.Running != 0 || s.Memory != 0 || s.Busy != 0 {
		t.Errorf("Stats = %+v", s)
	}
}

// TestLimiterMemory runs real 64 MiB argon2id checks through a DB whose
// limiter has room for two of them: never more than two run, and each
// weighs what its hash says.
func TestLimiterMemory(t *testing.T) {
	l := userdata.NewPasswordLimiter(userdata.PasswordLimiterConfig{
		MaxChecks: 8, MaxMemory: 2 * 64 << 20, MaxWaiting: 100, MaxWait: time.Minute,
	})
	cfg := testConfig(t, t.TempDir(), nil)
	cfg.Argon2 = userdata.Argon2Params{Time: 1, Memory: 64 << 10, Threads: 1}
	cfg.PasswordLimiter = l
	db, err := userdata.Open(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := t.Context()
	if err := db.CreateDomain(ctx, userdata.Domain{Name: "example.test"}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.CreateUser(ctx, userdata.NewUser{Address: "bob@example.test", Password: "secret"}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			addr := "bob@example.test"
			if i%2 == 1 {
				addr = "nobody@example.test" // the dummy hash weighs the same
			}
			if _, err := db.Authenticate(ctx, addr, "wrong", userdata.ProtoIMAP); !errors.Is(err, userdata.ErrAuthFailed) {
				t.Errorf("Authenticate(%s, wrong): %v, want ErrAuthFailed", addr, err)
			}
		})
	}
	wg.Wait()
	s := l.Stats()
	if s.PeakRunning != 2 || s.PeakMemory != 2*64<<20 {
		t.Errorf("8 checks of 64 MiB under a 128 MiB budget: peak %d running, %d bytes; want 2, %d", s.PeakRunning, s.PeakMemory, 2*64<<20)
	}
	if s.Running != 0 || s.Memory != 0 || s.Waiting != 0 {
		t.Errorf("in the end: %+v", s)
	}
}

func TestLimiterHugeCheckRunsAlone(t *testing.T) {
	l := userdata.NewPasswordLimiter(userdata.PasswordLimiterConfig{MaxChecks: 4, MaxMemory: 100, MaxWaiting: -1})
	release := mustAcquire(t, l, 1000)
	if s := l.Stats(); s.Memory != 100 {
		t.Errorf("a check over MaxMemory holds %d bytes, want MaxMemory (100)", s.Memory)
	}
	if _, err := l.Acquire(t.Context(), 1); !errors.Is(err, userdata.ErrBusy) {
		t.Errorf("Acquire beside a check holding all the memory: %v, want ErrBusy", err)
	}
	release()
	mustAcquire(t, l, 0)() // a weightless check counts against MaxChecks only
	release = mustAcquire(t, l, -5)
	if s := l.Stats(); s.Memory != 0 || s.Running != 1 {
		t.Errorf("negative weight: %+v", s)
	}
	release()
}

func TestLimiterQueueFull(t *testing.T) {
	l := userdata.NewPasswordLimiter(userdata.PasswordLimiterConfig{MaxChecks: 1, MaxWaiting: 2, MaxWait: time.Minute})
	release := mustAcquire(t, l, 1)
	w1 := acquireAsync(t.Context(), l, 1, false)
	waitFor(t, "1 waiting", waiting(l, 1))
	w2 := acquireAsync(t.Context(), l, 1, false)
	waitFor(t, "2 waiting", waiting(l, 2))
	start := time.Now()
	_, err := l.Acquire(t.Context(), 1)
	if !errors.Is(err, userdata.ErrBusy) {
		t.Errorf("Acquire with the queue full: %v, want ErrBusy", err)
	}
	if d := time.Since(start); d > 100*time.Millisecond {
		t.Errorf("Acquire with the queue full took %v; it must fail at once", d)
	}
	if s := l.Stats(); s.Busy != 1 || s.Waiting != 2 || s.Running != 1 {
		t.Errorf("Stats = %+v", s)
	}
	release()
	for _, w := range []<-chan outcome{w1, w2} {
		o := <-w
		if o.err != nil {
			t.Fatalf("waiter: %v", o.err)
		}
		o.release()
	}

	// Without a queue, a check that cannot run fails at once.
	for _, cfg := range []userdata.PasswordLimiterConfig{{MaxChecks: 1, MaxWaiting: -1}, {MaxChecks: 1, MaxWait: -1}} {
		l := userdata.NewPasswordLimiter(cfg)
		release := mustAcquire(t, l, 1)
		if _, err := l.Acquire(t.Context(), 1); !errors.Is(err, userdata.ErrBusy) {
			t.Errorf("%+v: Acquire beside a running check: %v, want ErrBusy", cfg, err)
		}
		release()
		mustAcquire(t, l, 1)()
	}
}

func TestLimiterMaxWait(t *testing.T) {
	const maxWait = 50 * time.Millisecond
	l := userdata.NewPasswordLimiter(userdata.PasswordLimiterConfig{MaxChecks: 1, MaxWait: maxWait})
	release := mustAcquire(t, l, 1)
	defer release()
	start := time.Now()
	_, err := l.Acquire(t.Context(), 1)
	d := time.Since(start)
	if !errors.Is(err, userdata.ErrBusy) {
		t.Errorf("Acquire behind a check that outlasts MaxWait: %v, want ErrBusy", err)
	}
	if d < maxWait || d > maxWait+time.Second {
		t.Errorf("Acquire gave up after %v, MaxWait is %v", d, maxWait)
	}
	if s := l.Stats(); s.Waiting != 0 || s.Busy != 1 || s.Running != 1 {
		t.Errorf("after the wait expired: %+v", s)
	}
}

func TestLimiterContext(t *testing.T) {
	l := userdata.NewPasswordLimiter(userdata.PasswordLimiterConfig{MaxChecks: 1, MaxWait: time.Minute})
	release := mustAcquire(t, l, 1)
	for _, patient := range []bool{false, true} {
		ctx, cancel := context.WithCancel(t.Context())
		w := acquireAsync(ctx, l, 1, patient)
		waitFor(t, "1 waiting", waiting(l, 1))
		cancel()
		o := <-w
		if !errors.Is(o.err, context.Canceled) || errors.Is(o.err, userdata.ErrBusy) {
			t.Errorf("patient %v: Acquire whose ctx was cancelled: %v, want context.Canceled", patient, o.err)
		}
		if s := l.Stats(); s.Waiting != 0 || s.Running != 1 || s.Busy != 0 {
			t.Errorf("patient %v: after the cancel: %+v", patient, s)
		}
	}
	release()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := l.Acquire(ctx, 1); !errors.Is(err, context.Canceled) {
		t.Errorf("Acquire with a cancelled ctx on an idle limiter: %v, want context.Canceled", err)
	}
	if s := l.Stats(); s.Running != 0 {
		t.Errorf("a failed Acquire holds a place: %+v", s)
	}
}

func TestLimiterFIFO(t *testing.T) {
	l := userdata.NewPasswordLimiter(userdata.PasswordLimiterConfig{MaxChecks: 1, MaxWaiting: 20, MaxWait: time.Minute})
	release := mustAcquire(t, l, 1)
	var mu sync.Mutex
	var order []int
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			r, err := l.Acquire(t.Context(), 1)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			order = append(order, i)
			mu.Unlock()
			r()
		})
		waitFor(t, fmt.Sprintf("%d waiting", i+1), waiting(l, i+1))
	}
	release()
	wg.Wait()
	for i, n := range order {
		if i != n {
			t.Fatalf("admitted in order %v, want the order of arrival", order)
		}
	}
	if len(order) != 20 {
		t.Fatalf("%d admitted, want 20", len(order))
	}
}

// TestLimiterNoOvertaking: a light check that would fit does not overtake
// a heavy one waiting before it; when the heavy one gives up, the light one
// is let in at once.
func TestLimiterNoOvertaking(t *testing.T) {
	l := userdata.NewPasswordLimiter(userdata.PasswordLimiterConfig{MaxChecks: 4, MaxMemory: 100, MaxWait: time.Minute})
	release := mustAcquire(t, l, 60)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	heavy := acquireAsync(ctx, l, 60, false)
	waitFor(t, "heavy waiting", waiting(l, 1))
	light := acquireAsync(t.Context(), l, 10, false)
	waitFor(t, "light waiting", waiting(l, 2))
	select {
	case o := <-light:
		t.Fatalf("a light check overtook a heavy one waiting before it: %v", o.err)
	case <-time.After(20 * time.Millisecond):
	}
	cancel()
	if o := <-heavy; !errors.Is(o.err, context.Canceled) {
		t.Fatalf("heavy: %v", o.err)
	}
	o := <-light
	if o.err != nil {
		t.Fatalf("light check once the heavy one left: %v", o.err)
	}
	if s := l.Stats(); s.Running != 2 || s.Memory != 70 {
		t.Errorf("Stats = %+v, want 2 running with 70 bytes", s)
	}
	o.release()
	release()

	// And in the normal course, the heavy one first, then the light one
	// beside it.
	release = mustAcquire(t, l, 60)
	heavy = acquireAsync(t.Context(), l, 60, false)
	waitFor(t, "heavy waiting", waiting(l, 1))
	light = acquireAsync(t.Context(), l, 10, false)
	waitFor(t, "light waiting", waiting(l, 2))
	release()
	h, lt := <-heavy, <-light
	if h.err != nil || lt.err != nil {
		t.Fatalf("heavy: %v, light: %v", h.err, lt.err)
	}
	if s := l.Stats(); s.Running != 2 || s.Memory != 70 {
		t.Errorf("Stats = %+v, want 2 running with 70 bytes", s)
	}
	h.release()
	lt.release()
}

func TestLimiterReleaseIdempotent(t *testing.T) {
	l := userdata.NewPasswordLimiter(userdata.PasswordLimiterConfig{MaxChecks: 1, MaxWaiting: -1})
	release := mustAcquire(t, l, 10)
	release()
	release()
	if s := l.Stats(); s.Running != 0 || s.Memory != 0 {
		t.Fatalf("after releasing twice: %+v", s)
	}
	r1 := mustAcquire(t, l, 10)
	release() // a stale release must not free r1's place
	if _, err := l.Acquire(t.Context(), 10); !errors.Is(err, userdata.ErrBusy) {
		t.Errorf("a second check ran beside the first after a stale release: %v", err)
	}
	r1()
	if s := l.Stats(); s.Running != 0 || s.Memory != 0 || s.PeakRunning != 1 {
		t.Errorf("in the end: %+v", s)
	}
}

// TestLimiterWait: Wait ignores the queue's bounds and MaxWait, but not ctx.
func TestLimiterWait(t *testing.T) {
	l := userdata.NewPasswordLimiter(userdata.PasswordLimiterConfig{MaxChecks: 1, MaxWaiting: -1, MaxWait: 10 * time.Millisecond})
	release := mustAcquire(t, l, 1)
	w := acquireAsync(t.Context(), l, 1, true)
	waitFor(t, "1 waiting", waiting(l, 1))
	select {
	case o := <-w:
		t.Fatalf("Wait returned while the check still ran: %v", o.err)
	case <-time.After(50 * time.Millisecond):
	}
	release()
	o := <-w
	if o.err != nil {
		t.Fatalf("Wait: %v", o.err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	if _, err := l.Wait(ctx, 1); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Wait until ctx's deadline: %v, want context.DeadlineExceeded", err)
	}
	o.release()
}

// TestAuthenticateLimited: every password check of Authenticate goes
// through the limiter, the dummy check of an unknown address included, and
// a refused one is ErrBusy; cached logins never touch it; CreateUser and
// SetPassword wait for it instead of failing.
func TestAuthenticateLimited(t *testing.T) {
	l := userdata.NewPasswordLimiter(userdata.PasswordLimiterConfig{MaxChecks: 1, MaxWaiting: -1})
	cfg := testConfig(t, t.TempDir(), nil)
	cfg.PasswordLimiter = l
	db, err := userdata.Open(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := t.Context()
	if err := db.CreateDomain(ctx, userdata.Domain{Name: "example.test"}); err != nil {
		t.Fatal(err)
	}
	alice, err := db.CreateUser(ctx, userdata.NewUser{Address: "alice@example.test", Password: "alice-pw"})
	if err != nil {
		t.Fatal(err)
	}
	bob, err := db.CreateUser(ctx, userdata.NewUser{Address: "bob@example.test", Password: "bob-pw"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.CreateUser(ctx, userdata.NewUser{Address: "nopw@example.test"}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Authenticate(ctx, "alice@example.test", "alice-pw", userdata.ProtoIMAP); err != nil {
		t.Fatal(err)
	}

	release := mustAcquire(t, l, 1) // every check's place taken
	if u, err := db.Authenticate(ctx, "alice@example.test", "alice-pw", userdata.ProtoIMAP); err != nil || u.ID != alice.ID {
		t.Errorf("cached login while the limiter is full: %d, %v", u.ID, err)
	}
	for _, c := range []struct{ addr, pw string }{
		{"bob@example.test", "bob-pw"},
		{"bob@example.test", "wrong"},
		{"alice@example.test", "wrong"},
		{"nobody@example.test", "x"},
		{"nopw@example.test", ""},
	} {
		if _, err := db.Authenticate(ctx, c.addr, c.pw, userdata.ProtoIMAP); !errors.Is(err, userdata.ErrBusy) {
			t.Errorf("Authenticate(%s, %s) while the limiter is full: %v, want ErrBusy", c.addr, c.pw, err)
		}
	}
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if err := db.SetPassword(short, bob.ID, "new"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("SetPassword while the limiter is full, until ctx's deadline: %v", err)
	}
	set := make(chan error, 1)
	go func() { set <- db.SetPassword(ctx, bob.ID, "new") }()
	waitFor(t, "SetPassword waiting", waiting(l, 1))
	release()
	if err := <-set; err != nil {
		t.Errorf("SetPassword once the limiter had room: %v", err)
	}
	if _, err := db.Authenticate(ctx, "bob@example.test", "new", userdata.ProtoIMAP); err != nil {
		t.Errorf("Authenticate once the limiter had room: %v", err)
	}
	if _, err := db.Authenticate(ctx, "nobody@example.test", "x", userdata.ProtoIMAP); !errors.Is(err, userdata.ErrAuthFailed) {
		t.Errorf("unknown address once the limiter had room: %v", err)
	}
	if s := l.Stats(); s.Running != 0 || s.Waiting != 0 || s.Busy != 5 {
		t.Errorf("Stats = %+v", s)
	}
}

// TestAuthenticateStorm: many concurrent wrong-password logins against a
// limiter of one check and no queue, with a slow argon2id: each fails with
// ErrBusy or ErrAuthFailed and none hangs, one check runs at a time, and a
// cached login of another user meanwhile is answered at once.
func TestAuthenticateStorm(t *testing.T) {
	l := userdata.NewPasswordLimiter(userdata.PasswordLimiterConfig{MaxChecks: 1, MaxWaiting: -1})
	cfg := testConfig(t, t.TempDir(), nil)
	cfg.Argon2 = userdata.Argon2Params{Time: 8, Memory: 8 << 10, Threads: 1}
	cfg.PasswordLimiter = l
	db, err := userdata.Open(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := t.Context()
	if err := db.CreateDomain(ctx, userdata.Domain{Name: "example.test"}); err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"alice", "bob"} {
		if _, err := db.CreateUser(ctx, userdata.NewUser{Address: u + "@example.test", Password: u + "-pw"}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.Authenticate(ctx, "alice@example.test", "alice-pw", userdata.ProtoIMAP); err != nil {
		t.Fatal(err)
	}

	const attackers, attempts = 32, 10
	var busy, failed atomic.Int64
	var storm sync.WaitGroup
	for i := range attackers {
		storm.Go(func() {
			addr := "bob@example.test"
			if i%4 == 0 {
				addr = "nobody@example.test"
			}
			for j := range attempts {
				_, err := db.Authenticate(ctx, addr, fmt.Sprint("wrong", i, j), userdata.ProtoIMAP)
				switch {
				case errors.Is(err, userdata.ErrBusy):
					busy.Add(1)
				case errors.Is(err, userdata.ErrAuthFailed):
					failed.Add(1)
				default:
					t.Errorf("wrong password for %s: %v, want ErrBusy or ErrAuthFailed", addr, err)
				}
				time.Sleep(time.Millisecond) // a client's round trip
			}
		})
	}
	stormDone := make(chan struct{})
	go func() { storm.Wait(); close(stormDone) }()

	var slowest time.Duration
	logins := 0
	hang := time.After(60 * time.Second)
	for done := false; !done; {
		select {
		case <-stormDone:
			done = true
		case <-hang:
			t.Fatal("the storm hangs")
		case <-time.After(5 * time.Millisecond):
		}
		start := time.Now()
		u, err := db.Authenticate(ctx, "alice@example.test", "alice-pw", userdata.ProtoIMAP)
		d := time.Since(start)
		if err != nil || u.Address != "alice@example.test" {
			t.Errorf("cached login during the storm: %q, %v", u.Address, err)
		}
		slowest = max(slowest, d)
		logins++
	}
	if slowest > 50*time.Millisecond {
		t.Errorf("the slowest of %d cached logins during the storm took %v", logins, slowest)
	}
	s := l.Stats()
	t.Logf("%d busy, %d failed; %d cached logins, slowest %v; limiter %+v", busy.Load(), failed.Load(), logins, slowest, s)
	if s.PeakRunning != 1 {
		t.Errorf("%d checks ran at once, MaxChecks is 1", s.PeakRunning)
	}
	if busy.Load() == 0 || failed.Load() == 0 {
		t.Errorf("%d busy, %d failed: want some of each", busy.Load(), failed.Load())
	}
	if busy.Load()+failed.Load() != attackers*attempts {
		t.Errorf("%d outcomes, want %d", busy.Load()+failed.Load(), attackers*attempts)
	}
}

// BenchmarkAuthenticateStorm runs concurrent wrong-password logins at
// DefaultArgon2 (64 MiB each) through the default limiter, and reports the
// peak heap and resident set reached, the share of logins refused with
// ErrBusy, and the latency of a cached login of another user meanwhile.
// Without the limiter, 300 such logins at once reach 16 GiB.
func BenchmarkAuthenticateStorm(b *testing.B) {
	l := userdata.NewPasswordLimiter(userdata.PasswordLimiterConfig{})
	cfg := userdata.Config{
		Dir:             b.TempDir(),
		Argon2:          userdata.DefaultArgon2(),
		PasswordLimiter: l,
		Logger:          slog.New(slog.DiscardHandler),
		CacheSize:       8 << 20,
		MemTableSize:    4 << 20,
	}
	ctx := b.Context()
	db, err := userdata.Open(ctx, cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	if err := db.CreateDomain(ctx, userdata.Domain{Name: "example.test"}); err != nil {
		b.Fatal(err)
	}
	for _, u := range []string{"alice", "bob"} {
		if _, err := db.CreateUser(ctx, userdata.NewUser{Address: u + "@example.test", Password: u + "-pw"}); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := db.Authenticate(ctx, "alice@example.test", "alice-pw", userdata.ProtoIMAP); err != nil {
		b.Fatal(err)
	}

	// Sample the heap and the resident set, and time cached logins, while
	// the storm lasts.
	stop := make(chan struct{})
	var sampler sync.WaitGroup
	var peakHeap, peakRSS uint64
	var cached []time.Duration
	sampler.Go(func() {
		var ms runtime.MemStats
		for {
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
			runtime.ReadMemStats(&ms)
			peakHeap = max(peakHeap, ms.HeapAlloc)
			peakRSS = max(peakRSS, rss())
			start := time.Now()
			if _, err := db.Authenticate(ctx, "alice@example.test", "alice-pw", userdata.ProtoIMAP); err != nil {
				b.Error(err)
			}
			cached = append(cached, time.Since(start))
		}
	})
	var busy atomic.Int64
	b.SetParallelism(64) // 64 logins per processor at once
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			_, err := db.Authenticate(ctx, "bob@example.test", "wrong", userdata.ProtoIMAP)
			switch {
			case errors.Is(err, userdata.ErrBusy):
				busy.Add(1)
				time.Sleep(time.Millisecond) // the client's round trip before it tries again
			case !errors.Is(err, userdata.ErrAuthFailed):
				b.Error(err)
			}
		}
	})
	b.StopTimer()
	close(stop)
	sampler.Wait()
	var worst, sum time.Duration
	for _, d := range cached {
		worst = max(worst, d)
		sum += d
	}
	b.ReportMetric(float64(peakHeap)/(1<<20), "peak-heap-MiB")
	if peakRSS > 0 {
		b.ReportMetric(float64(peakRSS)/(1<<20), "peak-RSS-MiB")
	}
	b.ReportMetric(float64(busy.Load())/float64(b.N), "busy/op")
	b.ReportMetric(float64(l.Stats().PeakRunning), "peak-checks")
	if len(cached) > 0 {
		b.ReportMetric(float64(sum.Microseconds())/float64(len(cached)), "cached-avg-µs")
		b.ReportMetric(float64(worst.Microseconds()), "cached-max-µs")
	}
}

// rss returns the process's resident set in bytes, 0 where it is unknown.
func rss() uint64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0
	}
	pages, err := strconv.ParseUint(f[1], 10, 64)
	if err != nil {
		return 0
	}
	return pages * uint64(os.Getpagesize())
}
