package msstore_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
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
)

// The crash test runs a child process (this test binary) that puts,
// releases and compacts concurrently and prints a line for every
// acknowledged operation, kills it with SIGKILL at a random moment, reopens
// the store and checks that every acknowledged Put reads back intact, that
// no acknowledged release is undone and that no body is there twice.

const crashDirEnv = "MSSTORE_CRASH_DIR"

// crashBody is the body writer w puts as its seq-th message: the parent
// regenerates it to check what it reads.
func crashBody(w, seq int) []byte {
	rng := rand.New(rand.NewPCG(uint64(w), uint64(seq)))
	sizes := []int{0, 1, 100, 4 << 10, 20 << 10, 64<<10 + 1, 200 << 10}
	b := make([]byte, sizes[rng.IntN(len(sizes))]+rng.IntN(100))
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

func crashConfig(dir string) msstore.Config {
	cfg := msstore.DefaultConfig(dir)
	cfg.VolumeSize = 2 << 20 // many volumes, so compaction has work
	cfg.MaxBodySize = 1 << 20
	cfg.SpoolMemory = 64 << 10 // the larger bodies spill to a temp file
	return cfg
}

// TestCrashChild is the child's side; it does nothing in a normal run.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		t.Skip("runs only as the child of TestCrash")
	}
	round, _ := strconv.Atoi(os.Getenv("MSSTORE_CRASH_ROUND"))
	ctx := context.Background()
	s, err := msstore.OpenVolumes(ctx, crashConfig(dir))
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
	go func() { // compaction, all the time
		for {
			if _, err := s.Compact(ctx); err != nil {
				say("error compact: %v", err)
				os.Exit(2)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			writer := round*100 + w
			var mine []msstore.Ref
			for seq := 0; ; seq++ {
				b := crashBody(writer, seq)
				ref, err := s.Put(ctx, bytes.NewReader(b), msstore.Meta{MessageID: fmt.Sprintf("%d/%d", writer, seq)})
				if err != nil {
					say("error put: %v", err)
					os.Exit(2)
				}
				say("put %d %d %s", writer, seq, ref)
				mine = append(mine, ref)
				if seq%3 == 2 { // release an earlier one of ours
					k := rand.IntN(len(mine))
					say("releasing %s", mine[k])
					if err := s.Release(ctx, mine[k]); err != nil {
						say("error release: %v", err)
						os.Exit(2)
					}
					say("rel %s", mine[k])
					mine = append(mine[:k], mine[k+1:]...)
				}
			}
		}()
	}
	wg.Wait()
}

type acked struct {
	writer, seq int
}

func TestCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	dir := t.TempDir()
	puts := map[msstore.Ref]acked{}
	released := map[msstore.Ref]bool{}
	const rounds = 6
	for round := range rounds {
		lines := killtest.Run(t, "TestCrashChild", []string{crashDirEnv + "=" + dir, fmt.Sprintf("MSSTORE_CRASH_ROUND=%d", round)},
			"", 300*time.Millisecond, time.Second)
		inFlight := map[msstore.Ref]bool{} // releases begun but not acknowledged

		n := 0
		for _, l := range lines {
			f := strings.Fields(l)
			switch {
			case len(f) == 0:
			case f[0] == "error":
				t.Fatalf("round %d: child: %s", round, l)
			case f[0] == "put" && len(f) == 4:
				w, _ := strconv.Atoi(f[1])
				seq, _ := strconv.Atoi(f[2])
				ref, err := msstore.ParseRef(f[3])
				if err != nil {
					continue // the last line, cut short by the kill
				}
				puts[ref] = acked{w, seq}
				n++
			case f[0] == "releasing" && len(f) == 2:
				if ref, err := msstore.ParseRef(f[1]); err == nil {
					inFlight[ref] = true
				}
			case f[0] == "rel" && len(f) == 2:
				if ref, err := msstore.ParseRef(f[1]); err == nil {
					released[ref] = true
					delete(inFlight, ref)
				}
			}
		}
		if n == 0 {
			t.Fatalf("round %d: the child acknowledged nothing", round)
		}
		checkCrashStore(t, dir, puts, released, inFlight, round)
	}
}

// checkCrashStore reopens the store after a kill and checks it.
// A release the kill cut short may or may not have happened; what the store
// says settles it for the later rounds.
func checkCrashStore(t *testing.T, dir string, puts map[msstore.Ref]acked, released, inFlight map[msstore.Ref]bool, round int) {
	t.Helper()
	if round%2 == 1 { // every other round recovers by a full scan
		os.Remove(filepath.Join(dir, "msstore.ckpt"))
	}
	s := openStore(t, crashConfig(dir))
	ctx := t.Context()
	live := 0
	for ref, a := range puts {
		b, err := s.Open(ctx, ref)
		if released[ref] {
			if !errors.Is(err, msstore.ErrNotFound) {
				t.Fatalf("round %d: released body %v (%d/%d) opens: %v", round, ref, a.writer, a.seq, err)
			}
			if err == nil {
				b.Close()
			}
			continue
		}
		if inFlight[ref] && errors.Is(err, msstore.ErrNotFound) {
			released[ref] = true
			continue
		}
		if err != nil {
			t.Fatalf("round %d: acknowledged body %v (%d/%d) lost: %v", round, ref, a.writer, a.seq, err)
		}
		got, err := io.ReadAll(io.NewSectionReader(b, 0, b.Size()))
		b.Close()
		if err != nil || !bytes.Equal(got, crashBody(a.writer, a.seq)) {
			t.Fatalf("round %d: body %v (%d/%d) damaged: %v", round, ref, a.writer, a.seq, err)
		}
		live++
	}
	seen := map[string]bool{}
	walked := 0
	err := s.Walk(ctx, func(ref msstore.Ref, m msstore.Meta) error {
		if seen[m.MessageID] {
			return fmt.Errorf("message %s stored twice", m.MessageID)
		}
		seen[m.MessageID] = true
		walked++
		return nil
	})
	if err != nil {
		t.Fatalf("round %d: walk: %v", round, err)
	}
	st, err := s.Scrub(ctx, nil)
	if err != nil || st.Damaged != 0 {
		t.Fatalf("round %d: scrub: %+v, %v", round, st, err)
	}
	// Bodies put but not acknowledged before the kill may be there too,
	// each once; an acknowledged release may not be undone.
	if walked < live {
		t.Fatalf("round %d: walk saw %d bodies, %d acknowledged ones are live", round, walked, live)
	}
	t.Logf("round %d: %d acknowledged puts (%d live, %d released) all intact; %d bodies in the store; %+v",
		round, len(puts), live, len(released), walked, s.Stats())
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// Now and then the next child starts from a stale checkpoint, taken
	// rounds ago: volumes it names have been compacted away since, and much
	// was written after it.
	ckpt := filepath.Join(dir, "msstore.ckpt")
	switch round % 3 {
	case 0:
		b, err := os.ReadFile(ckpt)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(ckpt+".old", b, 0o600); err != nil {
			t.Fatal(err)
		}
	case 2:
		if err := os.Rename(ckpt+".old", ckpt); err != nil {
			t.Fatal(err)
		}
	}
}
