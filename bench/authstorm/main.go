// Command authstorm measures mailsys under a password-guessing storm: how
// much memory the server takes and how long a legitimate user waits to log
// in while hundreds of clients try wrong passwords over IMAP, POP3 and
// submission at once.
//
// The server runs in a child process (this binary, re-executed with
// AUTHSTORM_SERVE set): a real mailsys.System over a temporary data
// directory, with submission (STARTTLS, a self-signed certificate), IMAP
// and POP3 (both plain, with InsecureAuth, so that the clients need no TLS)
// on free ports of 127.0.0.1. Passwords have the default argon2id cost
// (userdata.DefaultArgon2: 64 MiB, t=3, p=2) and the password checks the
// default limiter (userdata.PasswordLimiterConfig: MaxChecks = GOMAXPROCS,
// MaxMemory 512 MiB, a queue of 4*MaxChecks for at most 2 s), which
// -max-checks and -max-memory-mib override. The Guard is set never to lock
// anyone out nor to slow a failed login down, nor to bound connections
// per address (AuthFailures 1<<30, AddrAuthFailures, AccountFailures and
// MaxConnsPerIP -1): the limiter alone stands between the storm and the
// server, the worst case. The users are legit@bench.example and -users
// others (the first -hashed of them with a password, the rest without one:
// a wrong login for either, or for an address that does not exist, costs
// the server the same argon2id check).
//
// First a legitimate client logs in over IMAP from 127.0.0.1 (which warms
// the login cache), then logs in again and again, sequentially, for
// -baseline-seconds: the baseline. Then, for -seconds, -attackers clients,
// each from its own address 127.0.X.Y, a third on each protocol, loop:
// connect, one wrong password for a random user (legit@, another user or
// nobody), read the answer, quit; meanwhile the legitimate client keeps
// logging in. A legitimate login's latency runs from the dial to the tagged
// OK of LOGIN; each login is a new connection, -legit-pause (10 ms) after
// the previous one. Every dial and read has a 10 s deadline. The attackers'
// answers are counted as busy (IMAP NO [UNAVAILABLE], POP3 -ERR [SYS/TEMP],
// SMTP 454), failed (IMAP NO [AUTHENTICATIONFAILED], POP3 -ERR, SMTP 535),
// or errors (timeouts, network errors, any other answer, and a wrong
// password taken, which would be a bug). The server's peak RSS is its VmHWM
// in /proc at the end, user creation included.
//
// The output ends with the line
//
//	peak_rss_mib=<x> legit_p50_ms=<x> legit_p99_ms=<x> legit_ok=<n> legit_failed=<n> baseline_p99_ms=<x> ratio_p99_vs_idle=<x> storm_attempts_per_s=<x> storm_busy=<n> storm_failed=<n> storm_errors=<n>
//
// and the lines before it say whether the targets are met: a peak RSS
// under 1 GiB and a legitimate p99 under 200 ms during the storm, with no
// legitimate login failed. They also give the phases of the legitimate
// logins (dial, greeting, LOGIN), the server's CPU time, GC cycles and
// pauses and scheduling latency (runtime/metrics), and the host's CPU time
// split between the server, the clients (this process, on the same host)
// and other processes, since the clients and anything else running
// compete with the server for the CPUs. -profile DIR writes the server's
// CPU profile and execution trace of the storm there; -server-procs sets
// the server's GOMAXPROCS.
//
//	go run ./bench/authstorm
//	go run ./bench/authstorm -attackers 300 -seconds 20 -baseline-seconds 5 -users 300
//	go run ./bench/authstorm -max-checks 8 -max-memory-mib 512
package main

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/mailsys/mailsys/internal/selfsigned"
	"github.com/mailsys/mailsys/userdata"
)

func main() {
	serveIfChild()
	os.Exit(run(os.Args[1:], os.Stdout))
}

type options struct {
	attackers       int
	seconds         float64
	baselineSeconds float64
	users, hashed   int
	maxChecks       int
	serverProcs     int
	maxMemoryMiB    int64
	legitPause      time.Duration
	dir, profile    string
}

func run(args []string, w io.Writer) int {
	var o options
	fs := flag.NewFlagSet("authstorm", flag.ContinueOnError)
	fs.IntVar(&o.attackers, "attackers", 300, "attacking clients, each from its own address, a third on each protocol")
	fs.Float64Var(&o.seconds, "seconds", 20, "length of the storm")
	fs.Float64Var(&o.baselineSeconds, "baseline-seconds", 5, "length of the legitimate logins alone, before the storm")
	fs.IntVar(&o.users, "users", 300, "users besides legit@")
	fs.IntVar(&o.hashed, "hashed", 8, "how many of -users get a password (each costs an argon2id hash to set)")
	fs.IntVar(&o.maxChecks, "max-checks", 0, "the limiter's MaxChecks (0: the default, GOMAXPROCS)")
	fs.Int64Var(&o.maxMemoryMiB, "max-memory-mib", 0, "the limiter's MaxMemory in MiB (0: the default, 512)")
	fs.IntVar(&o.serverProcs, "server-procs", 0, "GOMAXPROCS of the server (0: the Go default, the CPUs)")
	fs.DurationVar(&o.legitPause, "legit-pause", 10*time.Millisecond, "pause between two legitimate logins")
	fs.StringVar(&o.dir, "dir", "", "data directory (default: a temporary one, removed after)")
	fs.StringVar(&o.profile, "profile", "", "directory for the server's CPU profile and execution trace of the storm")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if o.attackers < 0 || o.attackers > 250*254 || o.seconds <= 0 || o.baselineSeconds <= 0 || o.users < 0 {
		fmt.Fprintln(os.Stderr, "authstorm: -attackers must be 0 to 63500, -seconds and -baseline-seconds positive, -users not negative")
		return 2
	}
	o.hashed = min(max(o.hashed, 0), o.users)
	if o.dir == "" {
		d, err := os.MkdirTemp("", "authstorm-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(d)
		o.dir = d
	}
	if err := bench(w, o); err != nil {
		fmt.Fprintln(os.Stderr, "authstorm:", err)
		return 1
	}
	return 0
}

const (
	certFile = "bench-cert.pem"
	keyFile  = "bench-key.pem"
)

// makeCert writes a self-signed certificate for localhost into dir, for
// the child, and returns the clients' TLS configuration, which trusts it.
func makeCert(dir string) (*tls.Config, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	cert, err := selfsigned.New("localhost", 24*time.Hour)
	if err != nil {
		return nil, err
	}
	key, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, certFile), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]}), 0o600); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, keyFile), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: key}), 0o600); err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert.Leaf)
	return &tls.Config{RootCAs: pool, ServerName: "localhost", MinVersion: tls.VersionTLS12}, nil
}

// child is the server process and the pipes to it.
type child struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines chan string // its stdout
}

func startChild(cfg childConfig, procs int) (*child, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), serveEnv+"="+string(b))
	if procs > 0 {
		cmd.Env = append(cmd.Env, fmt.Sprintf("GOMAXPROCS=%d", procs))
	}
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	c := &child{cmd: cmd, stdin: stdin, lines: make(chan string, 16)}
	go func() {
		defer close(c.lines)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			c.lines <- sc.Text()
		}
	}()
	return c, nil
}

// next returns the child's next line of output that begins with prefix,
// waiting at most timeout.
func (c *child) next(prefix string, timeout time.Duration) (string, error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		select {
		case l, ok := <-c.lines:
			if !ok {
				return "", fmt.Errorf("the server exited (waiting for %q)", prefix)
			}
			if rest, ok := strings.CutPrefix(l, prefix); ok {
				return rest, nil
			}
		case <-t.C:
			return "", fmt.Errorf("no %q from the server in %v", prefix, timeout)
		}
	}
}

// command sends the child a line and waits for its answer, which begins
// with want.
func (c *child) command(line, want string) (string, error) {
	if _, err := io.WriteString(c.stdin, line+"\n"); err != nil {
		return "", err
	}
	return c.next(want, 30*time.Second)
}

func (c *child) stats() (serverStats, error) {
	var s serverStats
	l, err := c.command("stats", "stats ")
	if err != nil {
		return s, err
	}
	return s, json.Unmarshal([]byte(l), &s)
}

// stop closes the child's stdin, which makes it shut down, and waits for it
// (killing it after a minute).
func (c *child) stop() {
	c.stdin.Close()
	done := make(chan struct{})
	go func() {
		for range c.lines {
		}
		c.cmd.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(time.Minute):
		c.cmd.Process.Kill()
		<-done
	}
}

// memKiB returns the VmHWM (peak RSS) and VmRSS of process pid, in KiB.
func memKiB(pid int) (hwm, rss int64) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		var kb int64
		if n, _ := fmt.Sscanf(line, "VmHWM: %d kB", &kb); n == 1 {
			hwm = kb
		}
		if n, _ := fmt.Sscanf(line, "VmRSS: %d kB", &kb); n == 1 {
			rss = kb
		}
	}
	return hwm, rss
}

func bench(w io.Writer, o options) error {
	raiseFileLimit()
	clientTLS, err := makeCert(o.dir)
	if err != nil {
		return err
	}
	cfg := childConfig{Dir: o.dir, Users: o.users, Hashed: o.hashed, MaxChecks: o.maxChecks, MaxMemory: o.maxMemoryMiB << 20}
	c, err := startChild(cfg, o.serverProcs)
	if err != nil {
		return err
	}
	defer c.stop()
	pid := c.cmd.Process.Pid
	line, err := c.next("addrs ", 10*time.Minute)
	if err != nil {
		return err
	}
	var a addrs
	var nUsers int
	var createdMs int64
	if _, err := fmt.Sscanf(line, "submission=%s imap=%s pop3=%s users=%d created_ms=%d", &a.submission, &a.imap, &a.pop3, &nUsers, &createdMs); err != nil {
		return fmt.Errorf("server said %q: %w", line, err)
	}
	if err := checkGreetings(a); err != nil {
		return err
	}

	// Warm the login cache: the first login pays for an argon2id check.
	warmStart := time.Now()
	for {
		_, err := legitLogin(a.imap)
		if err == nil {
			break
		}
		if time.Since(warmStart) > time.Minute {
			return fmt.Errorf("legitimate login during warm-up: %w", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	warm := time.Since(warmStart)
	hwmBefore, _ := memKiB(pid)
	st0, err := c.stats() // starts the baseline's interval
	if err != nil {
		return err
	}

	checks := o.maxChecks
	if checks <= 0 {
		checks = st0.GOMAXPROCS
	}
	memMiB := o.maxMemoryMiB
	if memMiB <= 0 {
		memMiB = 512
	}
	argon := userdata.DefaultArgon2()
	fmt.Fprintf(w, "authstorm: mailsys under a password-guessing storm (%d CPUs; GOMAXPROCS %d in the server, %d in the clients)\n", runtime.NumCPU(), st0.GOMAXPROCS, runtime.GOMAXPROCS(0))
	fmt.Fprintf(w, "  server: child pid %d; argon2id m=%d MiB t=%d p=%d (userdata.DefaultArgon2); limiter MaxChecks %d, MaxMemory %d MiB%s\n",
		pid, argon.Memory>>10, argon.Time, argon.Threads, checks, memMiB, map[bool]string{true: " (defaults)", false: ""}[o.maxChecks <= 0 && o.maxMemoryMiB <= 0])
	fmt.Fprintf(w, "  guard: lockouts, slow-downs and the bound per address off (AuthFailures 1<<30, AddrAuthFailures -1, AccountFailures -1, MaxConnsPerIP -1): the limiter alone holds the storm\n")
	fmt.Fprintf(w, "  users: %s and %d others (%d with a password), created in %v; listeners: submission %s (STARTTLS), imap %s, pop3 %s (plain, InsecureAuth)\n",
		legitUser, nUsers-1, o.hashed, time.Duration(createdMs)*time.Millisecond, a.submission, a.imap, a.pop3)
	fmt.Fprintf(w, "  warm-up: first legitimate login (login cache cold) done after %v\n", warm.Round(time.Millisecond))

	// Baseline.
	base := legitLoop(a.imap, time.Now().Add(seconds(o.baselineSeconds)), o.legitPause)
	baseStats, err := c.stats()
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "  baseline, no storm, %.0f s: %s\n", o.baselineSeconds, base.summary())
	fmt.Fprintf(w, "    server: %s\n", baseStats.summary())
	if len(base.ok) == 0 {
		return fmt.Errorf("no legitimate login succeeded in the baseline: %v", base.fails)
	}

	// Storm.
	if o.profile != "" {
		if _, err := c.command("profile "+o.profile, "ok"); err != nil {
			return err
		}
	}
	clientStats := newStatsTaker()
	host0 := readHostCPU()
	st := storm(a, o, clientTLS)
	host := readHostCPU().sub(host0)
	cs := clientStats.take()
	if o.profile != "" {
		if _, err := c.command("profile-stop", "ok"); err != nil {
			return err
		}
	}
	stormStats, err := c.stats()
	if err != nil {
		return err
	}
	hwm, rss := memKiB(pid)

	total := st.total()
	fmt.Fprintf(w, "  storm: %d attackers (imap %d, pop3 %d, submission %d) from 127.0.1.1 on, %.0f s (all back after %v)\n",
		o.attackers, st.perProto[protoIMAP], st.perProto[protoPOP3], st.perProto[protoSubmission], o.seconds, st.elapsed.Round(time.Millisecond))
	fmt.Fprintf(w, "    attempts: %d, %.0f/s: %s\n", total.sum(), float64(total.sum())/st.elapsed.Seconds(), total)
	for p := range numProtocols {
		fmt.Fprintf(w, "    %-10s %7d: %s\n", protocolNames[p], st.n[p].sum(), st.n[p])
	}
	if len(st.details) > 0 {
		fmt.Fprintf(w, "    other answers and errors:\n")
		for _, d := range sortedCounts(st.details) {
			fmt.Fprintf(w, "      %7d  %s\n", d.n, d.key)
		}
	}
	fmt.Fprintf(w, "  legitimate logins during the storm: %s\n", st.legit.summary())
	if len(st.legit.ok) > 0 {
		fmt.Fprintf(w, "    slowest: %s\n", st.legit.slowest(5))
	}
	fmt.Fprintf(w, "    server: %s\n", stormStats.summary())
	fmt.Fprintf(w, "    clients (this process): CPU %.1f s; scheduling latency p50 %.3f ms p99 %.2f ms max %.1f ms\n", cs.CPUSeconds, cs.SchedLatP50Ms, cs.SchedLatP99Ms, cs.SchedLatMaxMs)
	fmt.Fprintf(w, "    host: %d CPUs %.0f%% busy (%.1f CPU-s: server %.1f, clients %.1f, other processes %.1f; stolen by the hypervisor %.1f)\n",
		runtime.NumCPU(), 100*host.busy/(host.busy+host.idle), host.busy, stormStats.CPUSeconds, cs.CPUSeconds, max(host.busy-stormStats.CPUSeconds-cs.CPUSeconds, 0), host.steal)
	if len(stormStats.Logs) > 0 {
		fmt.Fprintf(w, "    server log records (WARN and above) during the storm:\n")
		for _, d := range sortedCounts(stormStats.Logs) {
			fmt.Fprintf(w, "      %7d  %s\n", d.n, d.key)
		}
	}
	fmt.Fprintf(w, "  server memory: peak RSS (VmHWM) %.0f MiB (%.0f MiB before the storm), RSS at the end %.0f MiB\n",
		float64(hwm)/1024, float64(hwmBefore)/1024, float64(rss)/1024)

	peakMiB := float64(hwm) / 1024
	p50, p99 := st.legit.quantile(0.5), st.legit.quantile(0.99)
	bp99 := base.quantile(0.99)
	ratio := 0.0
	if bp99 > 0 {
		ratio = float64(p99) / float64(bp99)
	}
	metRSS := peakMiB < 1024
	metP99 := len(st.legit.ok) > 0 && p99 < 200*time.Millisecond && st.legit.failed == 0
	fmt.Fprintf(w, "  target peak RSS < 1 GiB: %s (%.0f MiB)\n", met(metRSS), peakMiB)
	fmt.Fprintf(w, "  target legitimate p99 < 200 ms during the storm, no login failed: %s (p99 %s, %d failed)\n", met(metP99), fmtMs(p99), st.legit.failed)
	errs := total[outError] + total[outOther] + total[outOK]
	fmt.Fprintf(w, "peak_rss_mib=%.0f legit_p50_ms=%.1f legit_p99_ms=%.1f legit_ok=%d legit_failed=%d baseline_p99_ms=%.1f ratio_p99_vs_idle=%.1f storm_attempts_per_s=%.0f storm_busy=%d storm_failed=%d storm_errors=%d\n",
		peakMiB, ms(p50), ms(p99), len(st.legit.ok), st.legit.failed, ms(bp99), ratio,
		float64(total.sum())/st.elapsed.Seconds(), total[outBusy], total[outFailed], errs)
	return nil
}

func met(ok bool) string {
	if ok {
		return "met"
	}
	return "NOT met"
}

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func fmtMs(d time.Duration) string { return fmt.Sprintf("%.1f ms", ms(d)) }

// checkGreetings makes sure the addresses are what the child said: a POP3
// server on a.pop3 and an SMTP one on a.submission (IMAP's is checked by
// the first login).
func checkGreetings(a addrs) error {
	for _, g := range []struct{ addr, want, what string }{{a.pop3, "+OK", "POP3"}, {a.submission, "220 ", "SMTP"}} {
		c, err := dial(nil, g.addr)
		if err != nil {
			return err
		}
		l, err := c.line()
		c.close()
		if err != nil {
			return fmt.Errorf("%s greeting on %s: %w", g.what, g.addr, err)
		}
		if !strings.HasPrefix(l, g.want) {
			return fmt.Errorf("%s is not %s: it says %q", g.addr, g.what, l)
		}
	}
	return nil
}

// legitResult is a run of legitimate logins.
type legitResult struct {
	ok     []legitTiming
	failed int
	fails  map[string]int
}

// legitLoop logs legit@ in again and again until until, sequentially, a
// pause apart.
func legitLoop(addr string, until time.Time, pause time.Duration) legitResult {
	r := legitResult{fails: map[string]int{}}
	for time.Now().Before(until) {
		t, err := legitLogin(addr)
		if err != nil {
			r.failed++
			r.fails[errorKind(err)]++
		} else {
			r.ok = append(r.ok, t)
		}
		time.Sleep(pause)
	}
	return r
}

// quantile returns the q-quantile of the successful logins' latency.
func (r legitResult) quantile(q float64) time.Duration {
	return quantileOf(r.ok, q, legitTiming.total)
}

func quantileOf(ts []legitTiming, q float64, f func(legitTiming) time.Duration) time.Duration {
	if len(ts) == 0 {
		return 0
	}
	d := make([]time.Duration, len(ts))
	for i, t := range ts {
		d[i] = f(t)
	}
	slices.Sort(d)
	i := int(math.Ceil(q*float64(len(d)))) - 1
	return d[min(max(i, 0), len(d)-1)]
}

func (r legitResult) summary() string {
	s := fmt.Sprintf("%d ok, %d failed", len(r.ok), r.failed)
	if len(r.ok) > 0 {
		s += fmt.Sprintf("; latency p50 %s, p99 %s, max %s", fmtMs(r.quantile(0.5)), fmtMs(r.quantile(0.99)), fmtMs(r.quantile(1)))
		phase := func(f func(legitTiming) time.Duration) string {
			return fmt.Sprintf("p50 %s p99 %s", fmtMs(quantileOf(r.ok, 0.5, f)), fmtMs(quantileOf(r.ok, 0.99, f)))
		}
		s += "; dial " + phase(func(t legitTiming) time.Duration { return t.dial }) +
			", greeting " + phase(func(t legitTiming) time.Duration { return t.greeting }) +
			", LOGIN " + phase(func(t legitTiming) time.Duration { return t.login })
	}
	for _, f := range sortedCounts(r.fails) {
		s += fmt.Sprintf("; %d× %s", f.n, f.key)
	}
	return s
}

// slowest lists the n slowest logins' phases.
func (r legitResult) slowest(n int) string {
	ts := slices.Clone(r.ok)
	sort.Slice(ts, func(i, j int) bool { return ts[i].total() > ts[j].total() })
	var parts []string
	for _, t := range ts[:min(n, len(ts))] {
		parts = append(parts, fmt.Sprintf("%s (dial %s, greeting %s, LOGIN %s)", fmtMs(t.total()), fmtMs(t.dial), fmtMs(t.greeting), fmtMs(t.login)))
	}
	return strings.Join(parts, "; ")
}

// counts is the number of attempts of each outcome.
type counts [numOutcomes]int

func (c counts) sum() int {
	n := 0
	for _, v := range c {
		n += v
	}
	return n
}

func (c counts) String() string {
	var parts []string
	for o, v := range c {
		if v > 0 || outcome(o) == outBusy || outcome(o) == outFailed || outcome(o) == outError {
			parts = append(parts, fmt.Sprintf("%s %d", outcomeNames[o], v))
		}
	}
	return strings.Join(parts, ", ")
}

type stormResult struct {
	n        [numProtocols]counts
	perProto [numProtocols]int // attackers
	details  map[string]int    // other answers and errors, by kind
	elapsed  time.Duration     // until the last attacker was back
	legit    legitResult
}

func (s *stormResult) total() counts {
	var t counts
	for _, c := range s.n {
		for o, v := range c {
			t[o] += v
		}
	}
	return t
}

// maxAttempts bounds the attempts of a storm, whatever its length.
const maxAttempts = 5_000_000

// storm runs the attackers for o.seconds and the legitimate logins
// meanwhile. An attempt started before the end finishes (each is bounded
// by ioTimeout); none starts after it.
func storm(a addrs, o options, clientTLS *tls.Config) stormResult {
	var res stormResult
	res.details = map[string]int{}
	start := time.Now()
	end := start.Add(seconds(o.seconds))
	var mu sync.Mutex
	var wg sync.WaitGroup
	var started atomic.Int64
	for i := range o.attackers {
		p := protocol(i % int(numProtocols))
		res.perProto[p]++
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(i), 0x5eed))
			ip := attackerIP(i)
			var n counts
			details := map[string]int{}
			for time.Now().Before(end) && started.Add(1) <= maxAttempts {
				user := pickUser(rng, o.users)
				pw := fmt.Sprintf("guess-%08x", rng.Uint32())
				out, detail := attempt(p, a, ip, user, pw, clientTLS)
				n[out]++
				if out == outOther || out == outError || out == outOK {
					details[protocolNames[p]+" "+outcomeNames[out]+": "+detail]++
				}
			}
			mu.Lock()
			defer mu.Unlock()
			for o, v := range n {
				res.n[p][o] += v
			}
			for k, v := range details {
				res.details[k] += v
			}
		})
	}
	res.legit = legitLoop(a.imap, end, o.legitPause)
	wg.Wait()
	res.elapsed = time.Since(start)
	return res
}

type keyCount struct {
	key string
	n   int
}

func sortedCounts(m map[string]int) []keyCount {
	var s []keyCount
	for k, v := range m {
		s = append(s, keyCount{k, v})
	}
	sort.Slice(s, func(i, j int) bool {
		if s[i].n != s[j].n {
			return s[i].n > s[j].n
		}
		return s[i].key < s[j].key
	})
	return s
}

func (s serverStats) summary() string {
	procs := float64(max(s.GOMAXPROCS, 1))
	return fmt.Sprintf("CPU %.1f s over %.1f s (%.0f%% of %d Ps), of which GC %.1f s; %d GC cycles, GC pauses p99 %.2f ms max %.2f ms; scheduling latency p50 %.3f ms p99 %.2f ms p99.9 %.2f ms max %.1f ms; %d goroutines, heap goal %.0f MiB",
		s.CPUSeconds, s.Seconds, 100*s.CPUSeconds/s.Seconds/procs, s.GOMAXPROCS, s.GCCPUSeconds, s.GCCycles, s.GCPauseP99Ms, s.GCPauseMaxMs,
		s.SchedLatP50Ms, s.SchedLatP99Ms, s.SchedLatP999Ms, s.SchedLatMaxMs, s.Goroutines, s.HeapGoalMiB)
}

// hostCPU is the host's CPU time from /proc/stat, in seconds.
type hostCPU struct{ busy, idle, steal float64 }

func readHostCPU() hostCPU {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return hostCPU{}
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return hostCPU{}
	}
	var v [8]float64
	for i := range v {
		n, _ := strconv.ParseUint(f[i+1], 10, 64)
		v[i] = float64(n) / 100 // USER_HZ
	}
	// user nice system idle iowait irq softirq steal
	return hostCPU{busy: v[0] + v[1] + v[2] + v[5] + v[6] + v[7], idle: v[3] + v[4], steal: v[7]}
}

func (h hostCPU) sub(o hostCPU) hostCPU {
	return hostCPU{h.busy - o.busy, h.idle - o.idle, h.steal - o.steal}
}

// raiseFileLimit lifts the open-files limit to its maximum, for the
// attackers' connections.
func raiseFileLimit() {
	var l syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l) == nil {
		l.Cur = l.Max
		syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l)
	}
}
