package txlog_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailsys/mailsys/internal/killtest"
	"github.com/mailsys/mailsys/txlog"
)

// The crash test runs a child (this test binary) in which eight sessions
// accept transactions, record a step and mark some done, printing each
// acknowledgement; it kills the child with SIGKILL at a random moment and
// checks that every acknowledged transaction not acknowledged as done is
// pending with its body and steps, and that none acknowledged as done is.

const crashDirEnv = "TXLOG_CRASH_DIR"

func crashBody(w, i int) []byte {
	rng := rand.New(rand.NewPCG(uint64(w), uint64(i)))
	b := make([]byte, 100+rng.IntN(20000))
	for j := range b {
		b[j] = byte(rng.Uint32())
	}
	return b
}

func crashConfig(dir string) txlog.Config {
	return txlog.Config{Dir: dir, SegmentSize: 1 << 20, MaxBodySize: 64 << 10, Logger: slog.New(slog.DiscardHandler)}
}

func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		t.Skip("runs only as the child of TestCrash")
	}
	round, _ := strconv.Atoi(os.Getenv("TXLOG_CRASH_ROUND"))
	ctx := context.Background()
	l, err := txlog.Open(ctx, crashConfig(dir))
	if err != nil {
		fmt.Println("error", err)
		os.Exit(2)
	}
	// Finish what the last run left, as a delivery agent would.
	for _, tx := range l.Pending() {
		if err := l.Done(ctx, tx); err != nil {
			fmt.Println("error", err)
			os.Exit(2)
		}
		fmt.Printf("done %d\n", tx.ID)
	}
	var out sync.Mutex
	say := func(format string, args ...any) {
		out.Lock()
		fmt.Printf(format+"\n", args...)
		out.Unlock()
	}
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			writer := round*100 + w
			for i := 0; ; i++ {
				env := txlog.Envelope{From: "a@example.test", To: []string{fmt.Sprintf("w%d-%d@example.test", writer, i)}, Received: time.Now()}
				tx, err := l.Accept(ctx, env, bytes.NewReader(crashBody(writer, i)))
				if err != nil {
					say("error accept: %v", err)
					os.Exit(2)
				}
				say("accepted %d %d %d", tx.ID, writer, i)
				if err := l.Record(ctx, tx, "stored", []byte(strconv.Itoa(i))); err != nil {
					say("error record: %v", err)
					os.Exit(2)
				}
				say("stored %d", tx.ID)
				if i%4 == 1 {
					// Not acknowledged: after the kill it may be pending
					// again, or not.
					if err := l.DoneAsync(ctx, tx); err != nil {
						say("error done: %v", err)
						os.Exit(2)
					}
				} else if i%2 == 0 {
					if err := l.Done(ctx, tx); err != nil {
						say("error done: %v", err)
						os.Exit(2)
					}
					say("done %d", tx.ID)
				}
			}
		}()
	}
	wg.Wait()
}

func TestCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	dir := t.TempDir()
	type acked struct {
		writer, i int
		stored    bool
		done      bool
	}
	txns := map[uint64]*acked{}
	for round := range 5 {
		// The child first finishes what the last round left; kill it once
		// it accepts new mail.
		lines := killtest.Run(t, "TestCrashChild", []string{crashDirEnv + "=" + dir, fmt.Sprintf("TXLOG_CRASH_ROUND=%d", round)},
			"accepted ", 200*time.Millisecond, 700*time.Millisecond)
		accepted := 0
		for _, line := range lines {
			f := strings.Fields(line)
			if len(f) == 0 {
				continue
			}
			if f[0] == "error" {
				t.Fatalf("round %d: child: %s", round, line)
			}
			if len(f) < 2 {
				continue
			}
			id, err := strconv.ParseUint(f[1], 10, 64)
			if err != nil {
				continue
			}
			switch {
			case f[0] == "accepted" && len(f) == 4:
				w, err1 := strconv.Atoi(f[2])
				i, err2 := strconv.Atoi(f[3])
				if err1 != nil || err2 != nil {
					continue
				}
				if _, dup := txns[id]; dup {
					t.Fatalf("round %d: transaction id %d acknowledged twice", round, id)
				}
				txns[id] = &acked{writer: w, i: i}
				accepted++
			case f[0] == "stored" && txns[id] != nil:
				txns[id].stored = true
			case f[0] == "done" && txns[id] != nil:
				txns[id].done = true
			}
		}
		if accepted == 0 {
			t.Fatalf("round %d: nothing acknowledged", round)
		}
		l, err := txlog.Open(t.Context(), crashConfig(dir))
		if err != nil {
			t.Fatalf("round %d: Open: %v", round, err)
		}
		pending := map[uint64]*txlog.Txn{}
		for _, tx := range l.Pending() {
			pending[tx.ID] = tx
		}
		for id, a := range txns {
			tx, ok := pending[id]
			switch {
			case a.done && ok:
				t.Fatalf("round %d: transaction %d acknowledged done is pending again", round, id)
			case a.done:
			case !ok:
				// Done may have landed without its acknowledgement.
				continue
			default:
				body, err := io.ReadAll(tx.Body())
				if err != nil || !bytes.Equal(body, crashBody(a.writer, a.i)) {
					t.Fatalf("round %d: transaction %d: body damaged (%v)", round, id, err)
				}
				if v, ok := tx.Step("stored"); a.stored && (!ok || string(v) != strconv.Itoa(a.i)) {
					t.Fatalf("round %d: transaction %d: acknowledged step lost (%q, %v)", round, id, v, ok)
				}
			}
		}
		// The next child finishes the pending ones.
		for id, a := range txns {
			if _, ok := pending[id]; !ok {
				a.done = true
			}
		}
		segs, _ := os.ReadDir(dir)
		t.Logf("round %d: %d acknowledged, %d pending after the kill, %d segment files", round, accepted, len(pending), len(segs))
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
