// Command userdata benchmarks the Pebble UserDB of package userdata:
//
//   - accounts: N users (default 1,000,000) created in bulk, then login
//     latency with the login cache cold and warm, the cost of one argon2id
//     check at the default parameters (reported apart, since bulk-created
//     users get cheap hashes), lookup of a user by address, and memory;
//   - a folder of M messages (default 1,000,000): durable append rate,
//     STATUS cost as the folder grows (it must stay flat), streaming the
//     flags of UID 1:*, flag updates per second, and copy/move rates.
//
// Usage:
//
//	go run ./bench/userdata              # full run
//	go run ./bench/userdata -quick       # smoke test
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mailsys/mailsys/msstore"
	"github.com/mailsys/mailsys/userdata"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout)) }

type options struct {
	dir      string
	users    int
	messages int
	workers  int
	quick    bool
}

func run(args []string, w io.Writer) int {
	var o options
	fs := flag.NewFlagSet("userdata-bench", flag.ContinueOnError)
	fs.StringVar(&o.dir, "dir", "", "data directory (default: a temporary one, removed after)")
	fs.IntVar(&o.users, "users", 1_000_000, "users to create")
	fs.IntVar(&o.messages, "messages", 1_000_000, "messages in the big folder")
	fs.IntVar(&o.workers, "workers", 8, "concurrent writers for bulk loads")
	fs.BoolVar(&o.quick, "quick", false, "small counts, for a smoke test")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if o.quick {
		o.users, o.messages = 5000, 20000
	}
	if o.dir == "" {
		d, err := os.MkdirTemp("", "udbench-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(d)
		o.dir = d
	}
	fmt.Fprintf(w, "userdata benchmark: %s GOMAXPROCS=%d users=%d messages=%d dir=%s\n",
		runtime.Version(), runtime.GOMAXPROCS(0), o.users, o.messages, o.dir)
	if err := accounts(context.Background(), w, o); err != nil {
		fmt.Fprintln(os.Stderr, "accounts:", err)
		return 1
	}
	if err := folder(context.Background(), w, o); err != nil {
		fmt.Fprintln(os.Stderr, "folder:", err)
		return 1
	}
	return 0
}

var quiet = slog.New(slog.DiscardHandler)

// cheap are the argon2id parameters of bulk-created users, so that creating
// a million of them takes minutes, not days; the default cost is measured
// on its own.
var cheap = userdata.Argon2Params{Time: 1, Memory: 64, Threads: 1}

func open(dir string, noSync bool, argon userdata.Argon2Params) (*userdata.DB, error) {
	return userdata.Open(context.Background(), userdata.Config{
		Dir: dir, Node: "ud1", NoSync: noSync, Argon2: argon, Logger: quiet,
	})
}

func address(i int) string { return fmt.Sprintf("user%07d@bench.example", i) }

// parallel runs fn(i) for i in [0, n) on k goroutines.
func parallel(n, k int, fn func(i int) error) error {
	var next atomic.Int64
	var first error
	var once sync.Once
	var wg sync.WaitGroup
	for range k {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if err := fn(i); err != nil {
					once.Do(func() { first = err })
					return
				}
			}
		}()
	}
	wg.Wait()
	return first
}

// latencies times fn n times and returns the sorted durations.
func latencies(n int, fn func(i int) error) ([]time.Duration, error) {
	d := make([]time.Duration, n)
	for i := range n {
		t := time.Now()
		if err := fn(i); err != nil {
			return nil, err
		}
		d[i] = time.Since(t)
	}
	slices.Sort(d)
	return d, nil
}

func pct(d []time.Duration, p float64) time.Duration { return d[int(float64(len(d)-1)*p)] }

func heapMiB() float64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return float64(m.HeapAlloc) / (1 << 20)
}

func rssMiB() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	var kb float64
	for _, line := range strings.Split(string(b), "\n") {
		if n, _ := fmt.Sscanf(line, "VmRSS: %f kB", &kb); n == 1 {
			return kb / 1024
		}
	}
	return 0
}

func accounts(ctx context.Context, w io.Writer, o options) error {
	dir := o.dir + "/accounts"
	db, err := open(dir, true, cheap)
	if err != nil {
		return err
	}
	if err := db.CreateDomain(ctx, userdata.Domain{Name: "bench.example"}); err != nil {
		return err
	}
	start := time.Now()
	err = parallel(o.users, o.workers, func(i int) error {
		_, err := db.CreateUser(ctx, userdata.NewUser{Address: address(i), Password: "secret" + fmt.Sprint(i)})
		return err
	})
	if err != nil {
		return err
	}
	took := time.Since(start)
	fmt.Fprintf(w, "\n== accounts: %d users created in %.1fs (%.0f/s, %d writers, bulk: NoSync, cheap argon2id)\n",
		o.users, took.Seconds(), float64(o.users)/took.Seconds(), o.workers)
	if err := db.Close(); err != nil {
		return err
	}

	// Reopen durable, login cache cold.
	db, err = open(dir, false, cheap)
	if err != nil {
		return err
	}
	defer db.Close()
	n := min(20000, o.users)
	pick := func(i int) int { return (i * 7919) % o.users }
	cold, err := latencies(n, func(i int) error {
		_, err := db.Authenticate(ctx, address(pick(i)), "secret"+fmt.Sprint(pick(i)), userdata.ProtoIMAP)
		return err
	})
	if err != nil {
		return err
	}
	warm, err := latencies(n, func(i int) error {
		_, err := db.Authenticate(ctx, address(pick(i)), "secret"+fmt.Sprint(pick(i)), userdata.ProtoIMAP)
		return err
	})
	if err != nil {
		return err
	}
	lookup, err := latencies(n, func(i int) error {
		_, err := db.LookupAddress(ctx, address(pick(i*31)))
		return err
	})
	if err != nil {
		return err
	}
	hash, err := userdata.HashPassword("correct horse", userdata.DefaultArgon2())
	if err != nil {
		return err
	}
	argon, err := latencies(20, func(int) error {
		_, err := userdata.CheckPassword("correct horse", hash)
		return err
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "   login, cache cold (db read + cheap argon2id): p50 %v  p99 %v  (%d logins)\n", pct(cold, .5), pct(cold, .99), n)
	fmt.Fprintf(w, "   login, cache warm:                            p50 %v  p99 %v  (cold/warm p50 = %.0fx)\n",
		pct(warm, .5), pct(warm, .99), float64(pct(cold, .5))/float64(pct(warm, .5)))
	fmt.Fprintf(w, "   argon2id check at DefaultArgon2 (m=64MiB,t=3,p=2), apart: p50 %v  p99 %v\n", pct(argon, .5), pct(argon, .99))
	fmt.Fprintf(w, "   lookup by address:                            p50 %v  p99 %v\n", pct(lookup, .5), pct(lookup, .99))
	fmt.Fprintf(w, "   memory: heap %.0f MiB, RSS %.0f MiB (Pebble block cache 256 MiB, login cache %d entries)\n",
		heapMiB(), rssMiB(), n)
	return nil
}

func folder(ctx context.Context, w io.Writer, o options) error {
	dir := o.dir + "/folder"
	db, err := open(dir, false, cheap)
	if err != nil {
		return err
	}
	defer func() { db.Close() }()
	if err := db.CreateDomain(ctx, userdata.Domain{Name: "bench.example"}); err != nil {
		return err
	}
	u, err := db.CreateUser(ctx, userdata.NewUser{Address: "big@bench.example"})
	if err != nil {
		return err
	}
	inbox, err := db.Folder(ctx, u.ID, userdata.Inbox)
	if err != nil {
		return err
	}
	msg := func(i int) userdata.NewMessage {
		return userdata.NewMessage{
			Ref:          msstore.Ref{Node: 1, Volume: 1, Offset: int64(i) * 4096, Size: 4000, ID: uint64(i + 1), Sum: uint32(i)},
			InternalDate: time.Unix(1764331200+int64(i), 0),
			Size:         4000,
			Envelope:     []byte(`("Fri, 28 Nov 2026 12:00:00 +0000" "bench" NIL NIL NIL NIL NIL NIL NIL "<x@bench>")`),
			Structure:    []byte(`("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 4000 80)`),
		}
	}

	// Durable appends from 16 sessions, on a fresh database.
	durable := min(20000, o.messages)
	start := time.Now()
	if err := parallel(durable, 16, func(i int) error {
		_, err := db.Append(ctx, u.ID, inbox.ID, msg(i))
		return err
	}); err != nil {
		return err
	}
	took := time.Since(start)
	fmt.Fprintf(w, "\n== one folder of %d messages\n   append, durable, 16 sessions: %.0f/s (%d appends)\n",
		o.messages, float64(durable)/took.Seconds(), durable)

	// Fill the rest in bulk, timing STATUS as the folder grows.
	if err := db.Close(); err != nil {
		return err
	}
	if db, err = open(dir, true, cheap); err != nil {
		return err
	}
	status := func() (time.Duration, error) {
		d, err := latencies(200, func(int) error {
			_, err := db.Folder(ctx, u.ID, userdata.Inbox)
			return err
		})
		if err != nil {
			return 0, err
		}
		return pct(d, .5), nil
	}
	have := durable
	st, err := status()
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "   STATUS (Folder) at %8d messages: p50 %v\n", have, st)
	start = time.Now()
	for _, mark := range []int{100_000, 1_000_000, o.messages} {
		if mark > o.messages || mark <= have {
			continue
		}
		if err := parallel(mark-have, o.workers, func(i int) error {
			_, err := db.Append(ctx, u.ID, inbox.ID, msg(have+i))
			return err
		}); err != nil {
			return err
		}
		have = mark
		st, err := status()
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "   STATUS (Folder) at %8d messages: p50 %v\n", have, st)
	}
	fmt.Fprintf(w, "   bulk append (NoSync, %d writers): %.0f/s\n", o.workers, float64(have-durable)/time.Since(start).Seconds())
	if err := db.Close(); err != nil {
		return err
	}
	if db, err = open(dir, false, cheap); err != nil {
		return err
	}

	start = time.Now()
	n := 0
	if err := db.Messages(ctx, u.ID, inbox.ID, nil, func(m *userdata.Message) error {
		n++
		return nil
	}); err != nil {
		return err
	}
	took = time.Since(start)
	fmt.Fprintf(w, "   FETCH 1:* (FLAGS) stream: %d messages in %v (%.0f/s)\n", n, took.Round(time.Millisecond), float64(n)/took.Seconds())

	uids, err := db.UIDs(ctx, u.ID, inbox.ID)
	if err != nil {
		return err
	}
	flags := min(5000, len(uids))
	start = time.Now()
	if err := parallel(flags, 16, func(i int) error {
		uid := uids[(i*7919)%len(uids)]
		_, err := db.StoreFlags(ctx, u.ID, inbox.ID, userdata.UIDSet{{Start: uid, Stop: uid}},
			userdata.FlagUpdate{Op: userdata.FlagsAdd, Flags: userdata.FlagSeen | userdata.FlagFlagged})
		return err
	}); err != nil {
		return err
	}
	fmt.Fprintf(w, "   flag updates, durable, 16 sessions, one message each: %.0f/s\n", float64(flags)/time.Since(start).Seconds())

	dest, err := db.Folder(ctx, u.ID, "Archive")
	if err != nil {
		return err
	}
	rounds := 10
	batch := min(1000, len(uids)/(2*rounds))
	start = time.Now()
	for r := range rounds {
		set := userdata.UIDSet{{Start: uids[r*batch], Stop: uids[(r+1)*batch-1]}}
		if _, err := db.Copy(ctx, u.ID, inbox.ID, set, dest.ID); err != nil {
			return err
		}
	}
	fmt.Fprintf(w, "   COPY of %d messages per command: %.0f messages/s\n", batch, float64(rounds*batch)/time.Since(start).Seconds())
	start = time.Now()
	for r := range rounds {
		set := userdata.UIDSet{{Start: uids[(rounds+r)*batch], Stop: uids[(rounds+r+1)*batch-1]}}
		if _, err := db.Move(ctx, u.ID, inbox.ID, set, dest.ID); err != nil {
			return err
		}
	}
	fmt.Fprintf(w, "   MOVE of %d messages per command: %.0f messages/s\n", batch, float64(rounds*batch)/time.Since(start).Seconds())
	fmt.Fprintf(w, "   memory: heap %.0f MiB, RSS %.0f MiB\n", heapMiB(), rssMiB())
	return nil
}
