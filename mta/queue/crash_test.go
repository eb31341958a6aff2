package queue_test

import (
	"bytes"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/mailsys/mailsys/internal/killtest"
	"github.com/mailsys/mailsys/mta/queue"
	"github.com/mailsys/mailsys/mta/resolve"
)

const (
	crashDirEnv   = "QUEUE_CRASH_DIR"
	crashPortEnv  = "QUEUE_CRASH_PORT"
	crashModeEnv  = "QUEUE_CRASH_MODE" // "fill": queue crashMessages and print acks; "drain": only deliver
	crashMessages = 1000
	crashPerDest  = 10
)

// A queue killed with SIGKILL while 1,000 messages wait for a slow
// remote (each DATA answered after 50 ms) delivers every one it
// acknowledged once it is started again. A message may reach the remote
// twice only through the window SMTP cannot close: the remote's 250 came,
// and the kill came before it was recorded; at most one per connection
// open at the kill. The test reports how many did.
func TestCrashWhileQueued(t *testing.T) {
	if testing.Short() {
		t.Skip("kills child processes")
	}
	port := freePort(t)
	r := startRemote(t, "127.0.0.2", port, "")
	r.set(func(r *remote) { r.dataWait = 50 * time.Millisecond })
	dir := t.TempDir()
	env := func(mode string) []string {
		return []string{crashDirEnv + "=" + dir, crashPortEnv + "=" + strconv.Itoa(port), crashModeEnv + "=" + mode}
	}
	// Fill: kill once every message is queued, some have gone out and
	// most still wait.
	c := killtest.Start(t, "TestCrashChild", env("fill"), "queued")
	n := len(r.messages())
	waitFor(t, "some deliveries", func() bool { return len(r.messages()) >= n+30 })
	lines := c.Kill()
	acked := map[string]bool{}
	for _, l := range lines {
		if id, ok := cutPrefix(l, "ack "); ok {
			acked[id] = true
		}
	}
	before := len(r.messages())
	t.Logf("killed with %d messages acknowledged, %d delivered", len(acked), before)
	if len(acked) != crashMessages {
		t.Fatalf("%d acknowledged before the kill, want %d", len(acked), crashMessages)
	}
	if before > crashMessages/2 {
		t.Fatalf("%d of %d delivered before the kill: the remote is not slow enough to test anything", before, crashMessages)
	}
	// Drain: a second run delivers the rest.
	c = killtest.Start(t, "TestCrashChild", env("drain"), "ready")
	defer c.Kill()
	idRe := regexp.MustCompile(`Subject: (m\d+)`)
	count := func() map[string]int {
		n := map[string]int{}
		for _, m := range r.messages() {
			if s := idRe.FindSubmatch(m.Data); s != nil {
				n[string(s[1])]++
			}
		}
		return n
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		n := count()
		missing := 0
		for id := range acked {
			if n[id] == 0 {
				missing++
			}
		}
		if missing == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d acknowledged messages never reached the remote", missing)
		}
		time.Sleep(20 * time.Millisecond)
	}
	dups := 0
	for _, k := range count() {
		if k > 1 {
			dups += k - 1
		}
	}
	t.Logf("duplicates: %d (the window between the remote's 250 and its record; at most %d, one per connection)", dups, crashPerDest)
	if dups > crashPerDest {
		t.Errorf("%d duplicates: more than the %d connections open at the kill", dups, crashPerDest)
	}
}

func cutPrefix(s, p string) (string, bool) {
	if len(s) > len(p) && s[:len(p)] == p {
		return s[len(p):], true
	}
	return "", false
}

// TestCrashChild is TestCrashWhileQueued's child.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		t.Skip("run by TestCrashWhileQueued")
	}
	port, _ := strconv.Atoi(os.Getenv(crashPortEnv))
	zone := &resolve.Static{}
	zone.SetMX("example.net", "10 mx.example.net")
	zone.SetIP("mx.example.net", netip.MustParseAddr("127.0.0.2"))
	cfg := queue.DefaultConfig(dir)
	cfg.Resolver, cfg.Port, cfg.STSFetcher = zone, port, noSTS{}
	cfg.PerDestination = crashPerDest
	cfg.RetryFirst = 100 * time.Millisecond
	cfg.Logger = slog.New(slog.DiscardHandler)
	q, err := queue.Open(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if os.Getenv(crashModeEnv) == "fill" {
		// From 20 senders at once, as sessions would: their syncs are
		// shared.
		var mu sync.Mutex
		var wg sync.WaitGroup
		for w := range 20 {
			wg.Go(func() {
				for i := w; i < crashMessages; i += 20 {
					id := "m" + strconv.Itoa(i)
					body := "From: ann@example.org\r\nSubject: " + id + "\r\n\r\nbody\r\n"
					m := queue.Message{ID: id, From: "ann@example.org", Rcpts: []queue.Rcpt{{Addr: "bob@example.net"}}}
					if err := q.Enqueue(t.Context(), m, bytes.NewReader([]byte(body))); err != nil {
						panic(err)
					}
					mu.Lock()
					fmt.Println("ack " + id)
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		fmt.Println("queued")
	} else {
		fmt.Println("ready")
	}
	time.Sleep(5 * time.Minute) // killed before
}
