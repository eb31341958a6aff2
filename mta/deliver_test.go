package mta_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailsys/mailsys/internal/killtest"
	"github.com/mailsys/mailsys/msstore"
	"github.com/mailsys/mailsys/mta"
	"github.com/mailsys/mailsys/txlog"
	"github.com/mailsys/mailsys/userdata"
)

// The delivery crash test: a child process accepts messages into the
// transaction log and delivers them (store once, index per recipient, done)
// from eight sessions, printing each acceptance; it is killed with SIGKILL
// at a random moment. The parent reopens the three stores, lets Recover
// finish the deliveries, and checks that every accepted message is in each
// recipient's INBOX exactly once and that the store holds no body that no
// mailbox references.

const crashDirEnv = "MTA_CRASH_DIR"

var users = []string{"u0@example.test", "u1@example.test", "u2@example.test", "u3@example.test"}

type system struct {
	log   *txlog.Log
	store *msstore.Volumes
	db    *userdata.DB
	d     *mta.Deliverer
}

func open(ctx context.Context, dir string) (*system, error) {
	quiet := slog.New(slog.DiscardHandler)
	l, err := txlog.Open(ctx, txlog.Config{Dir: filepath.Join(dir, "txlog"), SegmentSize: 1 << 20, MaxBodySize: 64 << 10, Logger: quiet})
	if err != nil {
		return nil, err
	}
	cfg := msstore.DefaultConfig(filepath.Join(dir, "store"))
	cfg.VolumeSize, cfg.MaxBodySize, cfg.Logger = 4<<20, 1<<20, quiet
	st, err := msstore.OpenVolumes(ctx, cfg)
	if err != nil {
		l.Close()
		return nil, err
	}
	db, err := userdata.Open(ctx, userdata.Config{Dir: filepath.Join(dir, "ud"), Bodies: st, Argon2: userdata.Argon2Params{Time: 1, Memory: 64, Threads: 1},
		CacheSize: 8 << 20, MemTableSize: 4 << 20, Logger: quiet})
	if err != nil {
		l.Close()
		st.Close()
		return nil, err
	}
	return &system{l, st, db, &mta.Deliverer{Log: l, Store: st, Users: db, Logger: quiet}}, nil
}

func (s *system) close() {
	s.log.Close()
	s.db.Close()
	s.store.Close()
}

func crashBody(w, i int) []byte {
	rng := rand.New(rand.NewPCG(uint64(w), uint64(i)))
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: sender@example.net\r\nX-Test: %d-%d\r\nSubject: crash test\r\n\r\n", w, i)
	for range 20 + rng.IntN(200) {
		fmt.Fprintf(&b, "line %d of a message body for the delivery crash test\r\n", rng.IntN(1000))
	}
	return b.Bytes()
}

func TestDeliverCrashChild(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		t.Skip("runs only as the child of TestDeliverCrash")
	}
	round, _ := strconv.Atoi(os.Getenv("MTA_CRASH_ROUND"))
	ctx := context.Background()
	s, err := open(ctx, dir)
	if err != nil {
		fmt.Println("error", err)
		os.Exit(2)
	}
	if err := s.d.Recover(ctx); err != nil {
		fmt.Println("error recover:", err)
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
			writer := round*100 + w
			rng := rand.New(rand.NewPCG(uint64(writer), 1))
			for i := 0; ; i++ {
				to := []string{users[rng.IntN(len(users))]}
				if extra := users[rng.IntN(len(users))]; extra != to[0] && i%2 == 0 {
					to = append(to, extra)
				}
				tx, err := s.log.Accept(ctx, txlog.Envelope{From: "sender@example.net", To: to, Received: time.Now()}, bytes.NewReader(crashBody(writer, i)))
				if err != nil {
					say("error accept: %v", err)
					os.Exit(2)
				}
				say("accepted %d %d %s", writer, i, strings.Join(to, ","))
				if err := s.d.Deliver(ctx, tx); err != nil {
					say("error deliver: %v", err)
					os.Exit(2)
				}
			}
		}()
	}
	wg.Wait()
}

func TestDeliverCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	ctx := t.Context()
	dir := t.TempDir()
	s, err := open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.db.CreateDomain(ctx, userdata.Domain{Name: "example.test"}); err != nil {
		t.Fatal(err)
	}
	for _, u := range users {
		if _, err := s.db.CreateUser(ctx, userdata.NewUser{Address: u}); err != nil {
			t.Fatal(err)
		}
	}
	s.close()

	want := map[string]map[[32]byte]bool{} // user -> bodies accepted for them
	for _, u := range users {
		want[u] = map[[32]byte]bool{}
	}
	for round := range 4 {
		lines := killtest.Run(t, "TestDeliverCrashChild", []string{crashDirEnv + "=" + dir, fmt.Sprintf("MTA_CRASH_ROUND=%d", round)},
			"accepted ", 100*time.Millisecond, 500*time.Millisecond)
		accepted := 0
		for _, l := range lines {
			f := strings.Fields(l)
			if len(f) > 0 && f[0] == "error" {
				t.Fatalf("round %d: child: %s", round, l)
			}
			if len(f) != 4 || f[0] != "accepted" {
				continue
			}
			w, _ := strconv.Atoi(f[1])
			i, _ := strconv.Atoi(f[2])
			// Stored as delivered: the Return-Path on top, made again the
			// same by a replay.
			sum := sha256.Sum256(append([]byte("Return-Path: <sender@example.net>\r\n"), crashBody(w, i)...))
			for _, u := range strings.Split(f[3], ",") {
				want[u][sum] = true
			}
			accepted++
		}

		// Reopen, finish the deliveries, check every mailbox.
		s, err := open(ctx, dir)
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		pending := len(s.log.Pending())
		var recovery bytes.Buffer
		s.d.Logger = slog.New(slog.NewTextHandler(&recovery, nil))
		if err := s.d.Recover(ctx); err != nil {
			t.Fatalf("round %d: recover: %v", round, err)
		}
		referenced := map[uint64]bool{}
		for _, addr := range users {
			u, err := s.db.LookupAddress(ctx, addr)
			if err != nil {
				t.Fatal(err)
			}
			inbox, err := s.db.Folder(ctx, u.ID, userdata.Inbox)
			if err != nil {
				t.Fatal(err)
			}
			seen := map[[32]byte]int{}
			err = s.db.Messages(ctx, u.ID, inbox.ID, nil, func(m *userdata.Message) error {
				referenced[m.Ref.ID] = true
				b, err := s.store.Open(ctx, m.Ref)
				if err != nil {
					return fmt.Errorf("UID %d: %w", m.UID, err)
				}
				defer b.Close()
				data, err := io.ReadAll(io.NewSectionReader(b, 0, b.Size()))
				if err != nil {
					return err
				}
				seen[sha256.Sum256(data)]++
				return nil
			})
			if err != nil {
				t.Fatalf("round %d: %s: %v", round, addr, err)
			}
			for sum := range want[addr] {
				if seen[sum] != 1 {
					t.Fatalf("round %d: %s has an accepted message %d times", round, addr, seen[sum])
				}
			}
			for sum, n := range seen {
				if n != 1 {
					t.Fatalf("round %d: %s has message %x %d times", round, addr, sum[:4], n)
				}
			}
		}
		orphans := 0
		err = s.store.Walk(ctx, func(ref msstore.Ref, m msstore.Meta) error {
			if !referenced[ref.ID] {
				orphans++
			}
			return nil
		})
		if err != nil || orphans != 0 {
			t.Fatalf("round %d: %d stored bodies no mailbox references (%v)", round, orphans, err)
		}
		t.Logf("round %d: %d accepted, %d unfinished at the kill (%d bodies adopted whose stored step the kill lost); all delivered exactly once, no orphan body",
			round, accepted, pending, strings.Count(recovery.String(), "adopted a body"))
		s.close()
	}
}
