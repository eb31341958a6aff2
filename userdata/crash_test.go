package userdata_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailsys/mailsys/internal/killtest"
	"github.com/mailsys/mailsys/msstore"
	"github.com/mailsys/mailsys/userdata"
)

// The crash test runs a child process (this test binary) in which eight
// sessions append to, flag and expunge in one folder and print every
// acknowledged change, kills it with SIGKILL at a random moment, reopens
// the database and checks that every acknowledged message is there once,
// with its UID, that no acknowledged expunge is undone, and that the
// folder's counters equal a recount.

const crashDirEnv = "USERDATA_CRASH_DIR"

func crashConfig(dir string) userdata.Config {
	return userdata.Config{
		Dir:          dir,
		Node:         "ud1",
		Argon2:       userdata.Argon2Params{Time: 1, Memory: 64, Threads: 1},
		CacheSize:    8 << 20,
		MemTableSize: 4 << 20,
		Logger:       slog.New(slog.DiscardHandler),
	}
}

func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		t.Skip("runs only as the child of TestCrash")
	}
	round, _ := strconv.Atoi(os.Getenv("USERDATA_CRASH_ROUND"))
	ctx := context.Background()
	db, err := userdata.Open(ctx, crashConfig(dir))
	if err != nil {
		fmt.Println("error", err)
		os.Exit(2)
	}
	u, err := db.LookupAddress(ctx, "crash@example.test")
	if err != nil {
		fmt.Println("error", err)
		os.Exit(2)
	}
	inbox, err := db.Folder(ctx, u.ID, userdata.Inbox)
	if err != nil {
		fmt.Println("error", err)
		os.Exit(2)
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
			for i := 0; ; i++ {
				id := uint64(round)<<48 | uint64(w)<<32 | uint64(i) // unique across rounds
				m, err := db.Append(ctx, u.ID, inbox.ID, userdata.NewMessage{
					Ref: msstore.Ref{Node: 1, ID: id, Size: 100}, Size: 100, InternalDate: time.Now(),
				})
				if err != nil {
					say("error append: %v", err)
					os.Exit(2)
				}
				say("add %d %d", m.UID, id)
				if i%4 == 3 {
					set := userdata.UIDSet{{Start: m.UID, Stop: m.UID}}
					say("deleting %d", m.UID)
					if _, err := db.StoreFlags(ctx, u.ID, inbox.ID, set, userdata.FlagUpdate{Op: userdata.FlagsAdd, Flags: userdata.FlagDeleted}); err != nil {
						say("error store: %v", err)
						os.Exit(2)
					}
					if _, err := db.Expunge(ctx, u.ID, inbox.ID, set); err != nil {
						say("error expunge: %v", err)
						os.Exit(2)
					}
					say("gone %d", m.UID)
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
	ctx := t.Context()
	dir := t.TempDir()
	db, err := userdata.Open(ctx, crashConfig(dir))
	if err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(db.CreateDomain(ctx, userdata.Domain{Name: "example.test"}))
	_, err = db.CreateUser(ctx, userdata.NewUser{Address: "crash@example.test"})
	must(err)
	must(db.Close())

	added := map[userdata.UID]uint64{} // acknowledged appends: UID -> body id
	gone := map[userdata.UID]bool{}    // acknowledged expunges
	maybe := map[userdata.UID]bool{}   // expunges begun, not acknowledged
	for round := range 5 {
		lines := killtest.Run(t, "TestCrashChild", []string{crashDirEnv + "=" + dir, fmt.Sprintf("USERDATA_CRASH_ROUND=%d", round)},
			"", 300*time.Millisecond, 800*time.Millisecond)
		n := 0
		for _, l := range lines {
			f := strings.Fields(l)
			if len(f) == 0 {
				continue
			}
			if f[0] == "error" {
				t.Fatalf("round %d: child: %s", round, l)
			}
			if len(f) < 2 {
				continue
			}
			uid, err := strconv.ParseUint(f[1], 10, 32)
			if err != nil {
				continue
			}
			switch f[0] {
			case "add":
				if len(f) == 3 {
					id, err := strconv.ParseUint(f[2], 10, 64)
					if err == nil {
						if _, dup := added[userdata.UID(uid)]; dup {
							t.Fatalf("round %d: UID %d acknowledged twice", round, uid)
						}
						added[userdata.UID(uid)] = id
						n++
					}
				}
			case "deleting":
				maybe[userdata.UID(uid)] = true
			case "gone":
				gone[userdata.UID(uid)] = true
				delete(maybe, userdata.UID(uid))
			}
		}
		if n == 0 {
			t.Fatalf("round %d: nothing acknowledged", round)
		}

		db, err := userdata.Open(ctx, crashConfig(dir))
		must(err)
		u, err := db.LookupAddress(ctx, "crash@example.test")
		must(err)
		f, err := db.Folder(ctx, u.ID, userdata.Inbox)
		must(err)
		have := map[userdata.UID]uint64{}
		bodies := map[uint64]bool{}
		var size int64
		must(db.Messages(ctx, u.ID, f.ID, nil, func(m *userdata.Message) error {
			if bodies[m.Ref.ID] {
				return fmt.Errorf("body %d indexed twice", m.Ref.ID)
			}
			bodies[m.Ref.ID] = true
			have[m.UID] = m.Ref.ID
			size += m.Size
			return nil
		}))
		for uid, id := range added {
			got, ok := have[uid]
			switch {
			case gone[uid] && ok:
				t.Fatalf("round %d: expunged UID %d is back", round, uid)
			case gone[uid]:
			case maybe[uid] && !ok:
				gone[uid] = true // the expunge happened before the kill
				delete(maybe, uid)
			case !ok:
				t.Fatalf("round %d: acknowledged UID %d lost", round, uid)
			case got != id:
				t.Fatalf("round %d: UID %d holds body %d, acknowledged with %d", round, uid, got, id)
			}
		}
		if int(f.Messages) != len(have) || f.Size != size {
			t.Fatalf("round %d: folder says %d messages, %d bytes; a recount finds %d, %d", round, f.Messages, f.Size, len(have), size)
		}
		for uid := range have {
			if uid >= f.UIDNext {
				t.Fatalf("round %d: UID %d at or above UIDNEXT %d", round, uid, f.UIDNext)
			}
		}
		t.Logf("round %d: %d appends acknowledged, %d expunged; %d messages in the folder", round, len(added), len(gone), len(have))
		must(db.Close())
	}
}
