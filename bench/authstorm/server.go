package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"runtime/trace"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/mailsys/mailsys"
	"github.com/mailsys/mailsys/mta"
	"github.com/mailsys/mailsys/userdata"
)

// serveEnv, set to the JSON of a childConfig, makes the program the server
// child.
const serveEnv = "AUTHSTORM_SERVE"

// childConfig is what the parent tells the server child.
type childConfig struct {
	Dir       string // data directory; the certificate is in it
	Users     int    // users besides legit@
	Hashed    int    // how many of them get a password
	MaxChecks int    // Passwords.MaxChecks, 0 for the default
	MaxMemory int64  // Passwords.MaxMemory, 0 for the default
}

// benchGuard is the Guard of the child: no lockout, no slow-down, no bound
// per address, so that the password limiter alone stands between the storm
// and the server (the worst case).
var benchGuard = mta.GuardConfig{AuthFailures: 1 << 30, AddrAuthFailures: -1, AccountFailures: -1, MaxConnsPerIP: -1}

const (
	domain    = "bench.example"
	legitUser = "legit@" + domain
	legitPass = "legit-password-1"
	otherPass = "other-password-1"
)

func otherUser(i int) string { return fmt.Sprintf("user%04d@%s", i, domain) }

// serveIfChild runs the server and exits when this process is the child.
func serveIfChild() {
	if v := os.Getenv(serveEnv); v != "" {
		var cfg childConfig
		if err := json.Unmarshal([]byte(v), &cfg); err != nil {
			fmt.Fprintln(os.Stderr, "authstorm server:", err)
			os.Exit(1)
		}
		if err := serve(cfg); err != nil {
			fmt.Fprintln(os.Stderr, "authstorm server:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
}

// serve is the child: a mailsys.System over cfg.Dir with submission
// (STARTTLS), IMAP and POP3 (both plain with InsecureAuth) on free ports
// of 127.0.0.1. It prints "addrs submission=A imap=B pop3=C users=N
// created_ms=T" once it accepts connections, then obeys the lines of its
// stdin (see command) until stdin closes or a signal comes.
func serve(cfg childConfig) error {
	raiseFileLimit()
	ctx := context.Background()
	cert, err := tls.LoadX509KeyPair(filepath.Join(cfg.Dir, certFile), filepath.Join(cfg.Dir, keyFile))
	if err != nil {
		return err
	}
	logs := newLogCounter(slog.LevelWarn)
	sys, err := mailsys.Open(ctx, mailsys.Config{
		DataDir:        filepath.Join(cfg.Dir, "data"),
		Hostname:       "localhost",
		SubmissionAddr: "127.0.0.1:0",
		IMAPAddr:       "127.0.0.1:0",
		POP3Addr:       "127.0.0.1:0",
		TLS:            &tls.Config{Certificates: []tls.Certificate{cert}},
		InsecureAuth:   true,
		Access:         benchGuard,
		Passwords:      userdata.PasswordLimiterConfig{MaxChecks: cfg.MaxChecks, MaxMemory: cfg.MaxMemory},
		Logger:         slog.New(logs),
	})
	if err != nil {
		return err
	}
	shutdown := func() error {
		c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		return sys.Shutdown(c)
	}
	start := time.Now()
	if err := createUsers(ctx, sys, cfg); err != nil {
		shutdown()
		return fmt.Errorf("creating users: %w", err)
	}
	created := time.Since(start)
	if err := sys.Start(ctx); err != nil {
		shutdown()
		return err
	}
	// Addrs follows the order of Config's fields (SMTP, submission,
	// submissions, IMAP, IMAPS, POP3, POP3S), skipping the empty ones.
	addrs := sys.Addrs()
	if len(addrs) != 3 {
		shutdown()
		return fmt.Errorf("%d listeners, want 3", len(addrs))
	}
	out := &syncWriter{w: os.Stdout}
	out.printf("addrs submission=%s imap=%s pop3=%s users=%d created_ms=%d\n", addrs[0], addrs[1], addrs[2], cfg.Users+1, created.Milliseconds())

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	eof := make(chan struct{})
	go func() {
		defer close(eof)
		st := newStatsTaker()
		var prof *profiler
		sc := bufio.NewScanner(os.Stdin)
		for sc.Scan() {
			cmd, arg, _ := strings.Cut(strings.TrimSpace(sc.Text()), " ")
			switch cmd {
			case "stats":
				s := st.take()
				s.Logs = logs.take()
				b, _ := json.Marshal(s)
				out.printf("stats %s\n", b)
			case "profile":
				if prof == nil {
					p, err := startProfile(arg)
					if err != nil {
						fmt.Fprintln(os.Stderr, "authstorm server: profile:", err)
					}
					prof = p
				}
				out.printf("ok\n")
			case "profile-stop":
				if prof != nil {
					prof.stop()
					prof = nil
				}
				out.printf("ok\n")
			}
		}
		if prof != nil {
			prof.stop()
		}
	}()
	select {
	case <-eof:
	case <-sig:
	}
	return shutdown()
}

// createUsers makes legit@ with its password and cfg.Users others, the
// first cfg.Hashed of them with a password and the rest without one (a
// password costs an argon2id hash to set; a wrong login for an account
// without one costs the server the same check, against a dummy hash of the
// same cost). Users already there (a reused -dir) are kept.
func createUsers(ctx context.Context, sys *mailsys.System, cfg childConfig) error {
	if _, err := sys.EnsureUser(ctx, legitUser, legitPass); err != nil {
		return err
	}
	jobs := make(chan int)
	errs := make(chan error, 1)
	var wg sync.WaitGroup
	for range max(2, runtime.GOMAXPROCS(0)) {
		wg.Go(func() {
			for i := range jobs {
				addr := otherUser(i)
				if _, err := sys.UserDB().LookupAddress(ctx, addr); err == nil {
					continue
				}
				pw := ""
				if i < cfg.Hashed {
					pw = otherPass
				}
				if _, err := sys.UserDB().CreateUser(ctx, userdata.NewUser{Address: addr, Password: pw}); err != nil && !errors.Is(err, userdata.ErrExists) {
					select {
					case errs <- fmt.Errorf("%s: %w", addr, err):
					default:
					}
				}
			}
		})
	}
	for i := range cfg.Users {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	select {
	case err := <-errs:
		return err
	default:
		return nil
	}
}

type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) printf(format string, a ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fmt.Fprintf(s.w, format, a...)
}

// profiler is a CPU profile and an execution trace being written.
type profiler struct{ cpu, tr *os.File }

func startProfile(dir string) (*profiler, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	cpu, err := os.Create(filepath.Join(dir, "server-cpu.pprof"))
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(cpu); err != nil {
		cpu.Close()
		return nil, err
	}
	tr, err := os.Create(filepath.Join(dir, "server-trace.out"))
	if err != nil {
		pprof.StopCPUProfile()
		cpu.Close()
		return nil, err
	}
	if err := trace.Start(tr); err != nil {
		pprof.StopCPUProfile()
		cpu.Close()
		tr.Close()
		return nil, err
	}
	return &profiler{cpu, tr}, nil
}

func (p *profiler) stop() {
	trace.Stop()
	pprof.StopCPUProfile()
	p.cpu.Close()
	p.tr.Close()
}

// serverStats are the child's runtime figures over the interval since the
// last "stats" command.
type serverStats struct {
	Seconds        float64        `json:"seconds"`
	CPUSeconds     float64        `json:"cpu_s"`    // user+system time of the process
	GCCPUSeconds   float64        `json:"gc_cpu_s"` // of which the GC (runtime estimate)
	GCCycles       uint64         `json:"gc_cycles"`
	GCPauseP99Ms   float64        `json:"gc_pause_p99_ms"`
	GCPauseMaxMs   float64        `json:"gc_pause_max_ms"`
	SchedLatP50Ms  float64        `json:"sched_p50_ms"` // time goroutines waited runnable
	SchedLatP99Ms  float64        `json:"sched_p99_ms"`
	SchedLatP999Ms float64        `json:"sched_p999_ms"`
	SchedLatMaxMs  float64        `json:"sched_max_ms"`
	Goroutines     uint64         `json:"goroutines"` // now
	HeapGoalMiB    float64        `json:"heap_goal_mib"`
	HeapObjMiB     float64        `json:"heap_objects_mib"`
	GOMAXPROCS     int            `json:"gomaxprocs"`
	Logs           map[string]int `json:"logs"`
}

var metricNames = []string{
	"/cpu/classes/gc/total:cpu-seconds",
	"/gc/cycles/total:gc-cycles",
	"/sched/pauses/total/gc:seconds",
	"/sched/latencies:seconds",
	"/sched/goroutines:goroutines",
	"/gc/heap/goal:bytes",
	"/memory/classes/heap/objects:bytes",
}

type statsTaker struct {
	last    []metrics.Sample
	lastAt  time.Time
	lastCPU float64
}

func newStatsTaker() *statsTaker {
	st := &statsTaker{}
	st.last, st.lastAt, st.lastCPU = readMetrics(), time.Now(), processCPU()
	return st
}

func readMetrics() []metrics.Sample {
	s := make([]metrics.Sample, len(metricNames))
	for i, n := range metricNames {
		s[i].Name = n
	}
	metrics.Read(s)
	return s
}

func (st *statsTaker) take() serverStats {
	now, cur, cpu := time.Now(), readMetrics(), processCPU()
	s := serverStats{Seconds: now.Sub(st.lastAt).Seconds(), CPUSeconds: cpu - st.lastCPU, GOMAXPROCS: runtime.GOMAXPROCS(0)}
	f := func(i int) float64 {
		if cur[i].Value.Kind() == metrics.KindFloat64 {
			return cur[i].Value.Float64() - st.last[i].Value.Float64()
		}
		return 0
	}
	s.GCCPUSeconds = f(0)
	if cur[1].Value.Kind() == metrics.KindUint64 {
		s.GCCycles = cur[1].Value.Uint64() - st.last[1].Value.Uint64()
	}
	ms := func(v float64) float64 { return math.Round(v*1e6) / 1e3 }
	if p := histDelta(cur[2], st.last[2]); p != nil {
		s.GCPauseP99Ms, s.GCPauseMaxMs = ms(p.quantile(0.99)), ms(p.quantile(1))
	}
	if p := histDelta(cur[3], st.last[3]); p != nil {
		s.SchedLatP50Ms, s.SchedLatP99Ms, s.SchedLatP999Ms, s.SchedLatMaxMs = ms(p.quantile(0.5)), ms(p.quantile(0.99)), ms(p.quantile(0.999)), ms(p.quantile(1))
	}
	if cur[4].Value.Kind() == metrics.KindUint64 {
		s.Goroutines = cur[4].Value.Uint64()
	}
	if cur[5].Value.Kind() == metrics.KindUint64 {
		s.HeapGoalMiB = float64(cur[5].Value.Uint64()) / (1 << 20)
	}
	if cur[6].Value.Kind() == metrics.KindUint64 {
		s.HeapObjMiB = float64(cur[6].Value.Uint64()) / (1 << 20)
	}
	st.last, st.lastAt, st.lastCPU = cur, now, cpu
	return s
}

// hist is the difference of two readings of a runtime histogram.
type hist struct {
	counts  []uint64
	buckets []float64
}

func histDelta(cur, prev metrics.Sample) *hist {
	if cur.Value.Kind() != metrics.KindFloat64Histogram || prev.Value.Kind() != metrics.KindFloat64Histogram {
		return nil
	}
	c, p := cur.Value.Float64Histogram(), prev.Value.Float64Histogram()
	h := &hist{counts: make([]uint64, len(c.Counts)), buckets: c.Buckets}
	for i := range c.Counts {
		h.counts[i] = c.Counts[i]
		if i < len(p.Counts) {
			h.counts[i] -= p.Counts[i]
		}
	}
	return h
}

// quantile returns the upper bound of the bucket holding quantile q (the
// lower bound for the last, unbounded bucket), 0 for an empty histogram.
func (h *hist) quantile(q float64) float64 {
	var total uint64
	for _, c := range h.counts {
		total += c
	}
	if total == 0 {
		return 0
	}
	want := uint64(math.Ceil(q * float64(total)))
	want = max(want, 1)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= want {
			if hi := h.buckets[i+1]; !math.IsInf(hi, 1) {
				return hi
			}
			return h.buckets[i]
		}
	}
	return h.buckets[len(h.buckets)-1]
}

// processCPU returns this process's user and system time in seconds.
func processCPU() float64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

// logCounter is a slog.Handler that counts records at level or above by
// level and message instead of writing them: under a storm the servers
// log a line per refused login.
type logCounter struct {
	level slog.Level
	mu    *sync.Mutex
	n     map[string]int
}

func newLogCounter(level slog.Level) *logCounter {
	return &logCounter{level: level, mu: &sync.Mutex{}, n: map[string]int{}}
}

func (l *logCounter) Enabled(_ context.Context, lv slog.Level) bool { return lv >= l.level }

func (l *logCounter) Handle(_ context.Context, r slog.Record) error {
	key := r.Level.String() + " " + r.Message
	if r.Level >= slog.LevelError {
		// Errors say what went wrong in their "err" attribute.
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "err" {
				msg := a.Value.String()
				if len(msg) > 80 {
					msg = msg[:80]
				}
				// Figures (queue lengths, waits) would make every
				// record a key of its own.
				key += ": " + strings.Map(func(r rune) rune {
					if r >= '0' && r <= '9' {
						return '#'
					}
					return r
				}, msg)
				return false
			}
			return true
		})
	}
	l.mu.Lock()
	l.n[key]++
	l.mu.Unlock()
	return nil
}

func (l *logCounter) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logCounter) WithGroup(string) slog.Handler      { return l }

// take returns the counts since the last take.
func (l *logCounter) take() map[string]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := l.n
	l.n = map[string]int{}
	return n
}
