package pop3_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailsys/mailsys/mta"
	"github.com/mailsys/mailsys/pop3"
	"github.com/mailsys/mailsys/userdata"
)

// authPlain is AUTH PLAIN's initial response for the test user and
// password.
const authPlain = "AGFubkBleGFtcGxlLnRlc3QAc2VjcmV0IHBhc3M="

// recorder is a slog.Handler that keeps every record, with the attributes
// of its logger, for the tests to look at.
type recorder struct {
	mu    *sync.Mutex
	recs  *[]logRecord
	attrs []slog.Attr
}

type logRecord struct {
	level slog.Level
	msg   string
	attrs map[string]string
}

func newRecorder() *recorder { return &recorder{mu: new(sync.Mutex), recs: new([]logRecord)} }

func (h *recorder) Enabled(context.Context, slog.Level) bool { return true }

func (h *recorder) Handle(_ context.Context, r slog.Record) error {
	rec := logRecord{level: r.Level, msg: r.Message, attrs: map[string]string{}}
	for _, a := range h.attrs {
		rec.attrs[a.Key] = a.Value.String()
	}
	r.Attrs(func(a slog.Attr) bool { rec.attrs[a.Key] = a.Value.String(); return true })
	h.mu.Lock()
	defer h.mu.Unlock()
	*h.recs = append(*h.recs, rec)
	return nil
}

func (h *recorder) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &recorder{mu: h.mu, recs: h.recs, attrs: append(h.attrs[:len(h.attrs):len(h.attrs)], attrs...)}
}

func (h *recorder) WithGroup(string) slog.Handler { return h }

func (h *recorder) records() []logRecord {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]logRecord(nil), *h.recs...)
}

// TestLoginBusy: a login the UserDB's password limiter turns away
// (userdata.ErrBusy) is answered [SYS/TEMP] "try again later", for
// USER/PASS and AUTH PLAIN, is not an error of the server's, and does not
// count as a failed login: with a lockout after one failure, the right
// password logs in once the limiter has room.
func TestLoginBusy(t *testing.T) {
	lim := userdata.NewPasswordLimiter(userdata.PasswordLimiterConfig{MaxChecks: 1, MaxWaiting: -1})
	logs := newRecorder()
	e := newEnvTuned(t, pop3.Config{Guard: mta.NewGuard(mta.GuardConfig{AuthFailures: 1}), Logger: slog.New(logs)},
		func(c *userdata.Config) { c.PasswordLimiter = lim }, nil)
	release, err := lim.Acquire(t.Context(), 0) // the one check that may run
	if err != nil {
		t.Fatal(err)
	}
	c := dial(t, e.addr)
	const busy = "-ERR [SYS/TEMP] Server busy, try again later"
	c.ok("USER " + testUser)
	if r := c.cmd("PASS " + testPass); r != busy {
		t.Errorf("PASS while the limiter is full: %q, want %q", r, busy)
	}
	if r := c.cmd("AUTH PLAIN " + authPlain); r != busy {
		t.Errorf("AUTH PLAIN while the limiter is full: %q, want %q", r, busy)
	}
	release()
	c.login()
	c.ok("QUIT")
	for _, r := range logs.records() {
		if r.level >= slog.LevelError {
			t.Errorf("logged at %v: %s %v", r.level, r.msg, r.attrs)
		}
	}
}

// TestLoginDelay: a failed login is answered only after the delay the
// Guard asks for (its slow-down of an account under attack), for
// USER/PASS and AUTH PLAIN; the right password is answered at once.
func TestLoginDelay(t *testing.T) {
	g := mta.NewGuard(mta.GuardConfig{AccountFailures: 1, AccountDelay: 400 * time.Millisecond,
		AuthFailures: 100, AddrAuthFailures: 100})
	e := newEnv(t, pop3.Config{Guard: g})
	c := dial(t, e.addr)
	timed := func(line string) (string, time.Duration) {
		t.Helper()
		start := time.Now()
		r := c.cmd(line)
		return r, time.Since(start)
	}
	c.ok("USER " + testUser)
	if r, d := timed("PASS wrong"); r != "-ERR [AUTH] Authentication failed" || d > 200*time.Millisecond {
		t.Errorf("first failure: %q after %v, want [AUTH] at once", r, d)
	}
	c.ok("USER " + testUser)
	if r, d := timed("PASS wrong"); r != "-ERR [AUTH] Authentication failed" || d < 250*time.Millisecond {
		t.Errorf("second failure: %q after %v, want [AUTH] after 250ms", r, d)
	}
	// AUTH PLAIN as ann with the password "wrong".
	if r, d := timed("AUTH PLAIN AGFubkBleGFtcGxlLnRlc3QAd3Jvbmc="); r != "-ERR [AUTH] Authentication failed" || d < 400*time.Millisecond {
		t.Errorf("third failure: %q after %v, want [AUTH] after 400ms (AccountDelay)", r, d)
	}
	c.ok("USER " + testUser)
	if r, d := timed("PASS " + testPass); !strings.HasPrefix(r, "+OK") || d > 200*time.Millisecond {
		t.Errorf("right password: %q after %v, want +OK at once", r, d)
	}
}

// slowGuard admits everyone and asks for a long delay after every failed
// login.
type slowGuard struct{ delay time.Duration }

func (slowGuard) Admit(string, netip.Addr) (func(), error)      { return func() {}, nil }
func (slowGuard) AuthAllowed(netip.Addr, string) bool           { return true }
func (g slowGuard) AuthFailed(netip.Addr, string) time.Duration { return g.delay }
func (slowGuard) AuthSucceeded(netip.Addr, string)              {}

// TestLoginDelayBounded: the delay of a failed login does not outlive the
// connection's login timeout, nor the server's Shutdown.
func TestLoginDelayBounded(t *testing.T) {
	e := newEnv(t, pop3.Config{Guard: slowGuard{time.Minute}, LoginTimeout: 700 * time.Millisecond})
	c := dial(t, e.addr)
	c.ok("USER " + testUser)
	c.send("PASS wrong\r\n")
	start := time.Now()
	if !c.drained() {
		t.Error("not closed at the login timeout while delaying a failure")
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("closed after %v, with a login timeout of 700ms", d)
	}

	e = newEnv(t, pop3.Config{Guard: slowGuard{time.Minute}})
	c = dial(t, e.addr)
	c.send("AUTH PLAIN AGFubkBleGFtcGxlLnRlc3QAd3Jvbmc=\r\n")
	time.Sleep(100 * time.Millisecond) // into the delay
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	start = time.Now()
	if err := e.srv.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown during a failed login's delay: %v", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Shutdown took %v: it waited for the delay", d)
	}
	if !c.drained() {
		t.Error("session in a failed login's delay not closed by Shutdown")
	}
}

// TestLoginLogsCutNames: a user name a client typed is logged cut to 256
// bytes, however long it is.
func TestLoginLogsCutNames(t *testing.T) {
	logs := newRecorder()
	e := newEnv(t, pop3.Config{Guard: mta.NewGuard(mta.GuardConfig{AuthFailures: 1}), Logger: slog.New(logs)})
	c := dial(t, e.addr)
	long := strings.Repeat("x", 1000) + "@example.test"
	for range 2 { // a failure, then a lockout
		c.ok("USER " + long)
		if r := c.cmd("PASS wrong"); !strings.HasPrefix(r, "-ERR") {
			t.Fatalf("PASS: %q", r)
		}
	}
	n := 0
	for _, r := range logs.records() {
		if u, ok := r.attrs["user"]; ok {
			n++
			if len(u) > 256 || !strings.HasPrefix(long, u) {
				t.Errorf("%q logged the user name as %d bytes, want its first 256", r.msg, len(u))
			}
		}
	}
	if n < 2 {
		t.Errorf("%d log records name the user, want the failure and the lockout", n)
	}
}

// loginLog records the logins a server reports.
type loginLog struct {
	mu     sync.Mutex
	logins []string
}

func (l *loginLog) LoggedIn(u userdata.User, p userdata.Protocol) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.logins = append(l.logins, fmt.Sprintf("%s %d", u.Address, p))
}

// TestLoginObserver: Config.Logins hears of each successful login, with
// the POP3 protocol, and of no failed one.
func TestLoginObserver(t *testing.T) {
	var l loginLog
	e := newEnv(t, pop3.Config{Logins: &l})
	c := dial(t, e.addr)
	c.ok("USER " + testUser)
	if r := c.cmd("PASS wrong"); !strings.HasPrefix(r, "-ERR") {
		t.Fatalf("wrong password: %q", r)
	}
	c.login()
	c.ok("QUIT")
	l.mu.Lock()
	defer l.mu.Unlock()
	if want := fmt.Sprintf("%s %d", e.user.Address, userdata.ProtoPOP3); len(l.logins) != 1 || l.logins[0] != want {
		t.Fatalf("logins reported: %q, want [%q]", l.logins, want)
	}
}
