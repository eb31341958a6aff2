package msstore_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mailsys/mailsys/msstore"
	"github.com/mailsys/mailsys/msstore/storetest"
)

// testLogger sends the store's logs to the test log.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(string(bytes.TrimRight(p, "\n")))
	return len(p), nil
}

func openStore(t *testing.T, cfg msstore.Config) *msstore.Volumes {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	s, err := msstore.OpenVolumes(t.Context(), cfg)
	if err != nil {
		t.Fatalf("OpenVolumes: %v", err)
	}
	return s
}

func smallConfig(dir string) msstore.Config {
	cfg := msstore.DefaultConfig(dir)
	cfg.VolumeSize = 4 << 20
	cfg.MaxBodySize = 2 << 20
	cfg.SpoolMemory = 128 << 10
	return cfg
}

func TestVolumesConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) msstore.Storage {
		return openStore(t, smallConfig(t.TempDir()))
	})
}

func TestVolumesConformanceNoSync(t *testing.T) {
	storetest.Run(t, func(t *testing.T) msstore.Storage {
		cfg := smallConfig(t.TempDir())
		cfg.NoSync = true
		return openStore(t, cfg)
	})
}

func body(rng *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

func mustPut(t *testing.T, s msstore.Storage, b []byte, owners ...string) msstore.Ref {
	t.Helper()
	m := msstore.Meta{MessageID: fmt.Sprintf("<%d@test>", len(b))}
	for _, o := range owners {
		m.Owners = append(m.Owners, msstore.Owner{User: o, Mailbox: "INBOX"})
	}
	ref, err := s.Put(t.Context(), bytes.NewReader(b), m)
	if err != nil {
		t.Fatalf("Put: %v", err)
	}
	return ref
}

func read(t *testing.T, s msstore.Storage, ref msstore.Ref) ([]byte, error) {
	t.Helper()
	b, err := s.Open(t.Context(), ref)
	if err != nil {
		return nil, err
	}
	defer b.Close()
	return io.ReadAll(io.NewSectionReader(b, 0, b.Size()))
}

func mustRead(t *testing.T, s msstore.Storage, ref msstore.Ref, want []byte) {
	t.Helper()
	got, err := read(t, s, ref)
	if err != nil {
		t.Fatalf("read %v: %v", ref, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("read %v: got %d bytes, want %d, contents differ", ref, len(got), len(want))
	}
}

func TestReopen(t *testing.T) {
	for _, mode := range []string{"checkpoint", "scan"} {
		t.Run(mode, func(t *testing.T) {
			dir := t.TempDir()
			rng := rand.New(rand.NewPCG(1, 2))
			s := openStore(t, smallConfig(dir))
			var refs []msstore.Ref
			var bodies [][]byte
			for i := range 60 {
				b := body(rng, rng.IntN(300<<10))
				refs = append(refs, mustPut(t, s, b, "a", "b"))
				bodies = append(bodies, b)
				switch {
				case i%3 == 0:
					if err := s.Release(t.Context(), refs[i]); err != nil {
						t.Fatal(err)
					}
				case i%5 == 0:
					for range 2 {
						if err := s.Release(t.Context(), refs[i]); err != nil {
							t.Fatal(err)
						}
					}
				}
			}
			before := s.Stats()
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			if mode == "scan" {
				if err := os.Remove(filepath.Join(dir, "msstore.ckpt")); err != nil {
					t.Fatal(err)
				}
			}
			s = openStore(t, smallConfig(dir))
			defer s.Close()
			if after := s.Stats(); after != before {
				t.Errorf("stats after reopen %+v, before %+v", after, before)
			}
			for i, ref := range refs {
				_, err := read(t, s, ref)
				if i%5 == 0 && i%3 != 0 {
					if !errors.Is(err, msstore.ErrNotFound) {
						t.Errorf("body %d released twice of two: err %v, want ErrNotFound", i, err)
					}
					continue
				}
				mustRead(t, s, ref, bodies[i])
			}
			if before.Volumes < 2 {
				t.Errorf("only %d volumes: the test wants several", before.Volumes)
			}
		})
	}
}

func TestTooLarge(t *testing.T) {
	s := openStore(t, smallConfig(t.TempDir()))
	defer s.Close()
	_, err := s.Put(t.Context(), bytes.NewReader(make([]byte, 2<<20+1)), msstore.Meta{})
	if !errors.Is(err, msstore.ErrTooLarge) {
		t.Fatalf("Put over the limit: %v, want ErrTooLarge", err)
	}
	mustRead(t, s, mustPut(t, s, make([]byte, 2<<20)), make([]byte, 2<<20))
}

func TestCompactWhileBusy(t *testing.T) {
	dir := t.TempDir()
	cfg := smallConfig(dir)
	cfg.VolumeSize = 1 << 20
	cfg.MaxBodySize = 256 << 10
	s := openStore(t, cfg)
	ctx := t.Context()

	type item struct {
		ref  msstore.Ref
		body []byte
	}
	var mu sync.Mutex
	var live []item
	rng := rand.New(rand.NewPCG(3, 4))
	for range 200 {
		b := body(rng, 1+rng.IntN(40<<10))
		live = append(live, item{mustPut(t, s, b), b})
	}
	stop := make(chan struct{})
	var released atomic.Int64
	var wg sync.WaitGroup
	errc := make(chan error, 16)
	// Writers put and release; readers read; one goroutine compacts.
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 9))
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				b := body(rng, 1+rng.IntN(40<<10))
				ref, err := s.Put(ctx, bytes.NewReader(b), msstore.Meta{})
				if err != nil {
					errc <- err
					return
				}
				mu.Lock()
				live = append(live, item{ref, b})
				k := rng.IntN(len(live))
				victim := live[k]
				live[k] = live[len(live)-1]
				live = live[:len(live)-1]
				mu.Unlock()
				if err := s.Release(ctx, victim.ref); err != nil {
					errc <- fmt.Errorf("release: %w", err)
					return
				}
				released.Add(1)
			}
		}()
	}
	for r := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(r), 10))
			for {
				select {
				case <-stop:
					return
				default:
				}
				mu.Lock()
				it := live[rng.IntN(len(live))]
				b, err := s.Open(ctx, it.ref)
				mu.Unlock()
				if err != nil {
					errc <- fmt.Errorf("open: %w", err)
					return
				}
				got, err := io.ReadAll(io.NewSectionReader(b, 0, b.Size()))
				b.Close()
				if err != nil || !bytes.Equal(got, it.body) {
					errc <- fmt.Errorf("read %v: %v (equal %v)", it.ref, err, bytes.Equal(got, it.body))
					return
				}
			}
		}()
	}
	var total msstore.CompactStats
	for released.Load() < 1500 {
		st, err := s.Compact(ctx)
		if err != nil {
			t.Fatalf("Compact: %v", err)
		}
		total.Volumes += st.Volumes
		total.BodiesMoved += st.BodiesMoved
		total.BytesReclaimed += st.BytesReclaimed
		select {
		case err := <-errc:
			t.Fatal(err)
		case <-time.After(10 * time.Millisecond):
		}
	}
	close(stop)
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	t.Logf("compaction: %+v, stats %+v", total, s.Stats())
	if total.Volumes == 0 || total.BytesReclaimed <= 0 {
		t.Errorf("compaction reclaimed nothing: %+v", total)
	}
	for _, it := range live {
		mustRead(t, s, it.ref, it.body)
	}
	// After a reopen (full scan, no checkpoint) the same bodies are there
	// and nothing released comes back.
	want := s.Stats()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(dir, "msstore.ckpt"))
	s = openStore(t, cfg)
	defer s.Close()
	if got := s.Stats(); got.Bodies != want.Bodies || got.LiveBytes != want.LiveBytes {
		t.Errorf("after reopen %+v, want %+v", got, want)
	}
	for _, it := range live {
		mustRead(t, s, it.ref, it.body)
	}
}

// TestAutoCheckpoint checks that a busy store that is never closed still
// checkpoints as volumes fill, so that recovery after a crash reads the
// checkpoint and a short tail instead of every volume.
func TestAutoCheckpoint(t *testing.T) {
	dir := t.TempDir()
	cfg := smallConfig(dir)
	cfg.VolumeSize = 1 << 20
	cfg.MaxBodySize = 256 << 10
	s := openStore(t, cfg)
	defer s.Close()
	rng := rand.New(rand.NewPCG(5, 6))
	var refs []msstore.Ref
	var bodies [][]byte
	ckpt := filepath.Join(dir, "msstore.ckpt")
	for i := 0; ; i++ {
		b := body(rng, 50<<10)
		refs, bodies = append(refs, mustPut(t, s, b)), append(bodies, b)
		if _, err := os.Stat(ckpt); err == nil && i > 100 {
			break
		}
		if i > 2000 {
			t.Fatal("no checkpoint after 100 MB written")
		}
	}
	// A crash image: the directory as it is now, store still open.
	img := dmgCopyDir(t, dir)
	cfg2 := smallConfig(img)
	cfg2.VolumeSize, cfg2.MaxBodySize = cfg.VolumeSize, cfg.MaxBodySize
	s2, logs := dmgOpen(t, cfg2)
	defer s2.Close()
	if mode := logs.openMode(); mode != "checkpoint" {
		t.Errorf("crash image opened by %q, want from the automatic checkpoint", mode)
	}
	for i, ref := range refs {
		mustRead(t, s2, ref, bodies[i])
	}
}
