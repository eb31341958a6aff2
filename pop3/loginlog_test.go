package pop3_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/mailsys/mailsys/mta"
	"github.com/mailsys/mailsys/pop3"
	"github.com/mailsys/mailsys/userdata"
)

// jsonLog is a slog JSON sink that the test reads while the server writes.
type jsonLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *jsonLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// records parses every record, failing the test on one that names a key
// twice.
func (l *jsonLog) records(t *testing.T) []map[string]any {
	t.Helper()
	l.mu.Lock()
	text := l.b.String()
	l.mu.Unlock()
	var recs []map[string]any
	for line := range strings.Lines(text) {
		dec := json.NewDecoder(strings.NewReader(line))
		if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
			t.Fatalf("not a JSON object: %q", line)
		}
		rec := map[string]any{}
		for dec.More() {
			k, err := dec.Token()
			if err != nil {
				t.Fatalf("%q: %v", line, err)
			}
			var v any
			if err := dec.Decode(&v); err != nil {
				t.Fatalf("%q: %v", line, err)
			}
			if _, dup := rec[k.(string)]; dup {
				t.Errorf("key %q twice in %s", k, line)
			}
			rec[k.(string)] = v
		}
		recs = append(recs, rec)
	}
	return recs
}

// TestLoginLog: every login attempt, USER/PASS, AUTH PLAIN or APOP, is
// one line "login" with the user, the client's address, the mechanism
// and the result (ok, failed, busy, in use, locked out), each key once.
func TestLoginLog(t *testing.T) {
	var logs jsonLog
	lim := userdata.NewPasswordLimiter(userdata.PasswordLimiterConfig{MaxChecks: 1, MaxWaiting: -1})
	e := newEnvTuned(t, pop3.Config{Guard: mta.NewGuard(mta.GuardConfig{AuthFailures: 3}), Logger: slog.New(slog.NewJSONHandler(&logs, nil))},
		func(c *userdata.Config) { c.PasswordLimiter = lim }, nil)
	c := dial(t, e.addr)
	c.ok("USER " + testUser)
	if r := c.cmd("PASS wrong"); !strings.HasPrefix(r, "-ERR") {
		t.Fatalf("wrong password: %q", r)
	}
	other := base64.StdEncoding.EncodeToString([]byte("bob@example.test\x00" + testUser + "\x00" + testPass))
	if r := c.cmd("AUTH PLAIN " + other); !strings.HasPrefix(r, "-ERR") {
		t.Fatalf("PLAIN for another identity: %q", r)
	}
	if r := c.cmd("APOP " + testUser + " c4c9334bac560ecc979e58001b3e22fb"); !strings.HasPrefix(r, "-ERR") {
		t.Fatalf("APOP: %q", r)
	}
	release, err := lim.Acquire(t.Context(), 0) // the one check that may run
	if err != nil {
		t.Fatal(err)
	}
	c.ok("USER " + testUser)
	if r := c.cmd("PASS " + testPass); !strings.HasPrefix(r, "-ERR [SYS/TEMP]") {
		t.Fatalf("PASS while the limiter is full: %q", r)
	}
	release()
	if r := c.cmd("AUTH PLAIN " + authPlain); !strings.HasPrefix(r, "+OK") {
		t.Fatalf("AUTH PLAIN: %q", r)
	}
	c2 := dial(t, e.addr)
	c2.ok("USER " + testUser)
	if r := c2.cmd("PASS " + testPass); !strings.HasPrefix(r, "-ERR [IN-USE]") {
		t.Fatalf("second session: %q", r)
	}
	c.ok("QUIT")
	for range 3 {
		c2.ok("USER " + testUser)
		c2.cmd("PASS wrong")
	}
	c2.ok("USER " + testUser)
	if r := c2.cmd("PASS " + testPass); !strings.HasPrefix(r, "-ERR") {
		t.Fatalf("right password while locked out: %q", r)
	}
	c2.ok("QUIT")

	want := []struct{ mech, result string }{
		{"USER", "failed"}, {"PLAIN", "failed"}, {"APOP", "failed"}, {"USER", "busy"}, {"PLAIN", "ok"},
		{"USER", "in use"}, {"USER", "failed"}, {"USER", "failed"}, {"USER", "failed"}, {"USER", "locked out"},
	}
	var logins []map[string]any
	for _, r := range logs.records(t) {
		if r["level"] == "ERROR" {
			t.Errorf("logged as an error: %v", r)
		}
		if r["msg"] == "login" {
			logins = append(logins, r)
		}
	}
	if len(logins) != len(want) {
		t.Fatalf("%d login lines, want %d:\n%v", len(logins), len(want), logins)
	}
	for i, w := range want {
		r := logins[i]
		if r["user"] != testUser || r["mechanism"] != w.mech || r["result"] != w.result || r["tls"] != false ||
			!strings.HasPrefix(r["remote"].(string), "127.0.0.1:") || r["component"] != "pop3" {
			t.Errorf("login line %d: %v, want user=%s mechanism=%s result=%s tls=false and the remote address", i, r, testUser, w.mech, w.result)
		}
	}
	if logins[4]["messages"] != float64(0) {
		t.Errorf("the login line does not say how many messages there are: %v", logins[4])
	}
}
