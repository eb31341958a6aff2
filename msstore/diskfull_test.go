package msstore_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"testing"

	"github.com/mailsys/mailsys/internal/tmpfs"
	"github.com/mailsys/mailsys/msstore"
)

// TestDiskFull fills a small tmpfs with Puts of every size (gathered in a
// batch, written alone, spooled through a temporary file) from concurrent
// writers, with volumes small enough to roll near the full point. While the
// disk is full every Put either succeeds or fails with ENOSPC, never turns
// the store read-only; releases and a checkpoint fail or succeed alike. Once
// space returns the store takes writes again without a reopen. Reopened
// with a full scan, the volumes hold no damage, every acknowledged body
// reads back, released ones are gone and refused ones were never stored.
func TestDiskFull(t *testing.T) {
	dir := tmpfs.Mount(t, 8<<20)
	cfg := smallConfig(filepath.Join(dir, "store"))
	cfg.VolumeSize = 640 << 10
	cfg.MaxBodySize = 320 << 10
	cfg.SpoolMemory = 128 << 10
	s := openStore(t, cfg)
	filler := tmpfs.Fill(t, dir, 3<<20)
	ctx := t.Context()

	type stored struct {
		ref  msstore.Ref
		body []byte
	}
	var (
		mu       sync.Mutex
		acked    = map[string]stored{} // by message id
		released = map[string]msstore.Ref{}
		refused  int
		next     int
	)
	// put stores a new body and records the outcome; it reports whether
	// the Put succeeded.
	put := func(rng *rand.Rand) bool {
		mu.Lock()
		next++
		id := fmt.Sprintf("<%d@diskfull>", next)
		mu.Unlock()
		sizes := []int{1 << 10, 20 << 10, 100 << 10, 300 << 10}
		b := body(rng, sizes[rng.IntN(len(sizes))]+rng.IntN(1<<10))
		ref, err := s.Put(ctx, bytes.NewReader(b), msstore.Meta{MessageID: id})
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			if !errors.Is(err, syscall.ENOSPC) || errors.Is(err, msstore.ErrReadOnly) {
				t.Errorf("Put %s: %v (want an ENOSPC error that leaves the store writable)", id, err)
			}
			refused++
			return false
		}
		acked[id] = stored{ref, b}
		return true
	}
	// Concurrent writers, so that batches hold several records.
	for round := 0; refused < 30 && round < 100; round++ {
		var wg sync.WaitGroup
		for w := range 8 {
			wg.Go(func() { put(rand.New(rand.NewPCG(uint64(round), uint64(w)))) })
		}
		wg.Wait()
	}
	if refused == 0 {
		t.Fatal("the disk never filled")
	}
	t.Logf("%d bodies stored and %d refused before space returned", len(acked), refused)

	// Releases (small reference records) while the disk is full: each
	// works or fails alone.
	n := 0
	for id, st := range acked {
		if n++; n > 5 {
			break
		}
		if err := s.Release(ctx, st.ref); err != nil {
			if !errors.Is(err, syscall.ENOSPC) || errors.Is(err, msstore.ErrReadOnly) {
				t.Errorf("Release: %v", err)
			}
			continue
		}
		released[id] = st.ref
		delete(acked, id)
	}
	// A checkpoint that cannot be written leaves nothing behind.
	if err := s.Checkpoint(ctx); err != nil {
		t.Logf("checkpoint on a full disk: %v", err)
	}
	if _, err := os.Stat(filepath.Join(cfg.Dirs[0].Path, "msstore.ckpt.tmp")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a failed checkpoint left its temporary file: %v", err)
	}

	// Space returns: the store goes on without a reopen.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(7, 7))
	for range 10 {
		if !put(rng) {
			t.Fatal("Put failed after space returned")
		}
	}
	for id, st := range acked {
		if err := s.Release(ctx, st.ref); err != nil {
			t.Fatalf("Release after space returned: %v", err)
		}
		released[id] = st.ref
		delete(acked, id)
		break
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// Reopen with a full scan, watching for damage.
	if err := os.Remove(filepath.Join(cfg.Dirs[0].Path, "msstore.ckpt")); err != nil {
		t.Fatal(err)
	}
	var warned warnings
	cfg.Logger = slog.New(&warned)
	s = openStore(t, cfg)
	defer s.Close()
	if warned.n > 0 {
		t.Errorf("reopening logged %d warnings or errors; the first: %s", warned.n, warned.first)
	}
	st, err := s.Scrub(ctx, func(d msstore.Damage) { t.Errorf("scrub: %+v", d) })
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("scrub: %+v", st)
	for id, st := range acked {
		r, err := s.Open(ctx, st.ref)
		if err != nil {
			t.Errorf("acknowledged body %s: %v", id, err)
			continue
		}
		got, err := io.ReadAll(io.NewSectionReader(r, 0, r.Size()))
		r.Close()
		if err != nil || !bytes.Equal(got, st.body) {
			t.Errorf("acknowledged body %s reads back wrong (%d bytes, %v)", id, len(got), err)
		}
	}
	for id, ref := range released {
		if r, err := s.Open(ctx, ref); !errors.Is(err, msstore.ErrNotFound) {
			if err == nil {
				r.Close()
			}
			t.Errorf("released body %s: Open gave %v, want ErrNotFound", id, err)
		}
	}
	live := 0
	err = s.Walk(ctx, func(ref msstore.Ref, m msstore.Meta) error {
		live++
		if _, ok := acked[m.MessageID]; !ok {
			t.Errorf("body %s is in the store but was not acknowledged (or was released)", m.MessageID)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if live != len(acked) {
		t.Errorf("%d bodies in the store, %d acknowledged and kept", live, len(acked))
	}
	if ss := s.Stats(); ss.Bodies != len(acked) {
		t.Errorf("Stats.Bodies = %d, want %d", ss.Bodies, len(acked))
	}
}

// TestDiskFullRollAndCompact covers the writes the first test may not
// reach, on a disk filled to the last byte: a compaction copy that fails
// (undone, the old volume kept), a new volume that cannot be created (no
// half-made file left), and a plain append; then space returns.
func TestDiskFullRollAndCompact(t *testing.T) {
	dir := tmpfs.Mount(t, 8<<20)
	cfg := smallConfig(filepath.Join(dir, "store"))
	cfg.VolumeSize = 640 << 10
	cfg.MaxBodySize = 320 << 10
	cfg.SpoolMemory = 512 << 10 // bodies stay in memory: no spool file to fail first
	s := openStore(t, cfg)
	ctx := t.Context()
	rng := rand.New(rand.NewPCG(3, 4))
	bodies := map[string][]byte{}
	refs := map[string]msstore.Ref{}
	put := func(name string, size int) error {
		b := body(rng, size)
		ref, err := s.Put(ctx, bytes.NewReader(b), msstore.Meta{MessageID: name})
		if err == nil {
			bodies[name], refs[name] = b, ref
		}
		return err
	}
	full := func(what string, err error) {
		t.Helper()
		if err == nil {
			t.Fatalf("%s succeeded on a full disk", what)
		}
		if !errors.Is(err, syscall.ENOSPC) || errors.Is(err, msstore.ErrReadOnly) {
			t.Fatalf("%s: %v (want an ENOSPC error that leaves the store writable)", what, err)
		}
	}
	volumes := func() []string {
		names, _ := filepath.Glob(filepath.Join(cfg.Dirs[0].Path, "vol-*.msv"))
		return names
	}
	// Volume 1 gets a, b and c, of which a and b are released; d rolls
	// to volume 2, e joins it.
	for _, n := range []string{"a", "b", "c", "d", "e"} {
		if err := put(n, 200<<10); err != nil {
			t.Fatal(err)
		}
		if n == "b" {
			for _, r := range []string{"a", "b"} {
				if err := s.Release(ctx, refs[r]); err != nil {
					t.Fatal(err)
				}
				delete(bodies, r)
			}
		}
	}
	filler := tmpfs.Fill(t, dir, 0)

	// Compaction would copy c to volume 2: the copy fails and is undone.
	_, err := s.Compact(ctx)
	full("Compact", err)
	// f fits in volume 2, but not on the disk.
	full("Put f", put("f", 200<<10))
	// g needs volume 3, which cannot be created.
	full("Put g", put("g", 300<<10))
	if v := volumes(); len(v) != 2 {
		t.Errorf("volume files on the full disk: %v, want 2", v)
	}

	// Space returns.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	st, err := s.Compact(ctx)
	if err != nil || st.Volumes != 1 {
		t.Fatalf("Compact after space returned: %+v, %v", st, err)
	}
	for _, n := range []string{"f", "g"} {
		if err := put(n, 200<<10); err != nil {
			t.Fatalf("Put %s after space returned: %v", n, err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(cfg.Dirs[0].Path, "msstore.ckpt")); err != nil {
		t.Fatal(err)
	}
	var warned warnings
	cfg.Logger = slog.New(&warned)
	s = openStore(t, cfg)
	defer s.Close()
	if warned.n > 0 {
		t.Errorf("reopening logged %d warnings or errors; the first: %s", warned.n, warned.first)
	}
	if _, err := s.Scrub(ctx, func(d msstore.Damage) { t.Errorf("scrub: %+v", d) }); err != nil {
		t.Fatal(err)
	}
	var got []string
	err = s.Walk(ctx, func(ref msstore.Ref, m msstore.Meta) error {
		got = append(got, m.MessageID)
		r, err := s.Open(ctx, ref)
		if err != nil {
			return err
		}
		defer r.Close()
		b, err := io.ReadAll(io.NewSectionReader(r, 0, r.Size()))
		if err != nil || !bytes.Equal(b, bodies[m.MessageID]) {
			t.Errorf("body %s reads back wrong (%d bytes, %v)", m.MessageID, len(b), err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	if want := []string{"c", "d", "e", "f", "g"}; !slices.Equal(got, want) {
		t.Errorf("bodies in the store: %v, want %v", got, want)
	}
}

// warnings is a slog handler that counts records of level Warn and above.
type warnings struct {
	mu    sync.Mutex
	n     int
	first string
}

func (w *warnings) Enabled(context.Context, slog.Level) bool { return true }
func (w *warnings) WithAttrs([]slog.Attr) slog.Handler       { return w }
func (w *warnings) WithGroup(string) slog.Handler            { return w }

func (w *warnings) Handle(_ context.Context, r slog.Record) error {
	if r.Level < slog.LevelWarn {
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.n == 0 {
		w.first = r.Message
		r.Attrs(func(a slog.Attr) bool { w.first += " " + a.String(); return true })
	}
	w.n++
	return nil
}
