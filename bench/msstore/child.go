package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mailsys/mailsys/msstore"
)

// statsJSON mirrors msstore.Stats in the result line.
type statsJSON struct {
	Volumes   int   `json:"volumes"`
	Bodies    int   `json:"bodies"`
	LiveBytes int64 `json:"live_bytes"`
	DeadBytes int64 `json:"dead_bytes"`
	DiskBytes int64 `json:"disk_bytes"`
}

func fromStats(s msstore.Stats) statsJSON {
	return statsJSON{Volumes: s.Volumes, Bodies: s.Bodies, LiveBytes: s.LiveBytes, DeadBytes: s.DeadBytes, DiskBytes: s.DiskBytes}
}

// result is the one JSON line a child prints on stdout.
type result struct {
	Phase   string `json:"phase"` // "write" or "index"
	Store   string `json:"store"` // "volumes" or "files"
	Size    int    `json:"size"`
	Count   int    `json:"count"`
	Writers int    `json:"writers"`

	WriteSeconds float64   `json:"write_seconds"` // puts (index phase: puts + Sync)
	CloseSeconds float64   `json:"close_seconds"`
	Files        int       `json:"files"` // regular files in the data tree after the phase
	Dirs         int       `json:"dirs"`
	DiskBytes    int64     `json:"disk_bytes"` // blocks allocated to those files
	Stats        statsJSON `json:"stats"`      // volumes: Stats() after the puts
	WriteHWMKiB  int64     `json:"write_hwm_kib"`
	PeakKiB      int64     `json:"peak_kib"` // VmHWM at the end of the child
	Verified     int       `json:"verified"` // bodies read back and compared byte for byte

	Read        bool    `json:"read"`
	ReadCount   int     `json:"read_count"`
	ReadBytes   int64   `json:"read_bytes"`
	ReadSeconds float64 `json:"read_seconds"`

	// Index phase.
	HeapGrowth       int64     `json:"heap_growth"`
	OpenSeconds      float64   `json:"open_seconds"`
	ReopenHeapGrowth int64     `json:"reopen_heap_growth"`
	ScanOpenSeconds  float64   `json:"scan_open_seconds"`
	ReopenStats      statsJSON `json:"reopen_stats"`

	Warnings []string `json:"warnings,omitempty"`
}

func (r *result) warnf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	r.Warnings = append(r.Warnings, msg)
	fmt.Fprintf(os.Stderr, "msstore-bench child: WARNING: %s\n", msg)
}

// childOptions are the hidden flags of a child.
type childOptions struct {
	phase, store, dir string
	size, count       int
	writers, readers  int
	read              bool
}

// child runs one phase and prints its result line on stdout. It is entered
// when MSBENCH_CHILD=1 is set, from main or from TestMain.
func child(args []string, stdout io.Writer) int {
	fs := flag.NewFlagSet("msstore-bench child", flag.ContinueOnError)
	var o childOptions
	fs.StringVar(&o.phase, "phase", "", "write or index")
	fs.StringVar(&o.store, "store", "volumes", "volumes or files")
	fs.StringVar(&o.dir, "dir", "", "phase directory")
	fs.IntVar(&o.size, "size", 4096, "body size")
	fs.IntVar(&o.count, "count", 1000, "messages")
	fs.IntVar(&o.writers, "writers", 16, "concurrent writers")
	fs.IntVar(&o.readers, "readers", 16, "concurrent readers")
	fs.BoolVar(&o.read, "read", false, "read every message back after writing")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if o.dir == "" || o.size < 1 || o.count < 1 || o.writers < 1 || o.readers < 1 {
		fmt.Fprintln(os.Stderr, "msstore-bench child: need -dir and positive -size, -count, -writers, -readers")
		return 2
	}
	ctx := context.Background()
	var r *result
	var err error
	switch {
	case o.phase == "write" && o.store == "volumes":
		r, err = writeVolumes(ctx, &o)
	case o.phase == "write" && o.store == "files":
		r, err = writeFiles(ctx, &o)
	case o.phase == "index":
		r, err = indexPhase(ctx, &o)
	default:
		err = fmt.Errorf("unknown -phase=%q -store=%q", o.phase, o.store)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "msstore-bench child: %s %s %d: ERROR: %v\n", o.phase, o.store, o.size, err)
		return 1
	}
	r.PeakKiB = vmHWMKiB()
	line, err := json.Marshal(r)
	if err != nil {
		fmt.Fprintln(os.Stderr, "msstore-bench child:", err)
		return 1
	}
	fmt.Fprintf(stdout, "%s\n", line)
	return 0
}

// makeBody returns the body writer w uses for size: pseudo-random bytes from
// a ChaCha8 stream seeded by (size, w).
func makeBody(size, w int) []byte {
	var seed [32]byte
	binary.LittleEndian.PutUint64(seed[0:], uint64(size))
	binary.LittleEndian.PutUint64(seed[8:], uint64(w))
	copy(seed[16:], "msstore-bench")
	b := make([]byte, size)
	rand.NewChaCha8(seed).Read(b)
	return b
}

// stamp overwrites the first 16 bytes of body (or fewer, if shorter) with the
// message number n and the writer w, so that all bodies differ.
func stamp(body []byte, n, w int) {
	var c [16]byte
	binary.BigEndian.PutUint64(c[:8], uint64(n))
	binary.BigEndian.PutUint64(c[8:], uint64(w)|0x6d73<<48)
	copy(body, c[:])
}

// expected returns message n's body as written by runWriters.
func expected(size, writers, n int) []byte {
	w := n % writers
	b := makeBody(size, w)
	stamp(b, n, w)
	return b
}

func meta(n int) msstore.Meta {
	return msstore.Meta{
		MessageID: fmt.Sprintf("<%d@bench>", n),
		Received:  time.Now(),
		Owners:    []msstore.Owner{{User: fmt.Sprintf("user%d@bench", n%1000), Mailbox: "INBOX"}},
	}
}

// runWriters puts count messages of size bytes with the given number of
// concurrent writers; writer w puts messages w, w+writers, w+2*writers...
// It returns the time from the first put to the last one returned, and the
// first error.
func runWriters(ctx context.Context, writers, count, size int, put func(ctx context.Context, w, n int, body []byte) error) (time.Duration, error) {
	bodies := make([][]byte, writers)
	for w := range bodies {
		bodies[w] = makeBody(size, w)
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var (
		wg   sync.WaitGroup
		once sync.Once
		ferr error
	)
	start := time.Now()
	for w := range writers {
		wg.Go(func() {
			body := bodies[w]
			for n := w; n < count; n += writers {
				if ctx.Err() != nil {
					return
				}
				stamp(body, n, w)
				if err := put(ctx, w, n, body); err != nil {
					once.Do(func() {
						ferr = fmt.Errorf("put of message %d (writer %d, %d bytes): %w", n, w, size, err)
						cancel(ferr)
					})
					return
				}
			}
		})
	}
	wg.Wait()
	d := time.Since(start)
	if ferr == nil && ctx.Err() != nil {
		ferr = context.Cause(ctx)
	}
	return d, ferr
}

// runReaders calls read for every message number below count from the given
// number of concurrent readers and returns the elapsed time and the bytes
// read.
func runReaders(ctx context.Context, readers, count int, read func(ctx context.Context, n int) (int64, error)) (time.Duration, int64, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var (
		next  atomic.Int64
		total atomic.Int64
		wg    sync.WaitGroup
		once  sync.Once
		ferr  error
	)
	start := time.Now()
	for range readers {
		wg.Go(func() {
			for ctx.Err() == nil {
				n := int(next.Add(1) - 1)
				if n >= count {
					return
				}
				c, err := read(ctx, n)
				if err != nil {
					once.Do(func() {
						ferr = fmt.Errorf("read of message %d: %w", n, err)
						cancel(ferr)
					})
					return
				}
				total.Add(c)
			}
		})
	}
	wg.Wait()
	d := time.Since(start)
	if ferr == nil && ctx.Err() != nil {
		ferr = context.Cause(ctx)
	}
	return d, total.Load(), ferr
}

// samples returns up to k message numbers spread over [0, count), always
// including the first and the last.
func samples(count, k int) []int {
	if count <= k {
		s := make([]int, count)
		for i := range s {
			s[i] = i
		}
		return s
	}
	s := make([]int, 0, k)
	for i := range k - 1 {
		s = append(s, i*count/(k-1))
	}
	return append(s, count-1)
}

// verifyVolumes reads the sampled bodies back and compares them byte for
// byte with what was put.
func verifyVolumes(ctx context.Context, st *msstore.Volumes, refs []msstore.Ref, size, writers, k int) (int, error) {
	ns := samples(len(refs), k)
	for _, n := range ns {
		b, err := st.Open(ctx, refs[n])
		if err != nil {
			return 0, fmt.Errorf("verify: open message %d (ref %v): %w", n, refs[n], err)
		}
		got, err := io.ReadAll(io.NewSectionReader(b, 0, b.Size()))
		b.Close()
		if err != nil {
			return 0, fmt.Errorf("verify: read message %d (ref %v): %w", n, refs[n], err)
		}
		if want := expected(size, writers, n); !bytes.Equal(got, want) {
			return 0, fmt.Errorf("verify: message %d (ref %v): read back %d bytes that differ from the %d bytes put", n, refs[n], len(got), len(want))
		}
	}
	return len(ns), nil
}

func writeVolumes(ctx context.Context, o *childOptions) (*result, error) {
	r := &result{Phase: "write", Store: "volumes", Size: o.size, Count: o.count, Writers: o.writers, Read: o.read}
	cfg := msstore.DefaultConfig(filepath.Join(o.dir, "data"))
	st, err := msstore.OpenVolumes(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("OpenVolumes: %w", err)
	}
	closed := false
	defer func() {
		if !closed {
			st.Close()
		}
	}()
	refs := make([]msstore.Ref, o.count)
	d, err := runWriters(ctx, o.writers, o.count, o.size, func(ctx context.Context, w, n int, body []byte) error {
		ref, err := st.Put(ctx, bytes.NewReader(body), meta(n))
		if err != nil {
			return err
		}
		if ref.Size != int64(len(body)) {
			return fmt.Errorf("put returned ref %v with size %d, want %d", ref, ref.Size, len(body))
		}
		refs[n] = ref
		return nil
	})
	if err != nil {
		return nil, err
	}
	r.WriteSeconds = d.Seconds()
	r.WriteHWMKiB = vmHWMKiB()
	r.Stats = fromStats(st.Stats())
	if r.Stats.Bodies != o.count {
		r.warnf("volumes %d: Stats().Bodies=%d after %d puts", o.size, r.Stats.Bodies, o.count)
	}
	if want := int64(o.count) * int64(o.size); r.Stats.LiveBytes < want {
		r.warnf("volumes %d: Stats().LiveBytes=%d, less than the %d body bytes put", o.size, r.Stats.LiveBytes, want)
	}

	if o.read {
		d, n, err := runReaders(ctx, o.readers, o.count, func(ctx context.Context, n int) (int64, error) {
			b, err := st.Open(ctx, refs[n])
			if err != nil {
				return 0, err
			}
			defer b.Close()
			if b.Size() != int64(o.size) {
				return 0, fmt.Errorf("Body.Size()=%d, want %d", b.Size(), o.size)
			}
			c, err := io.Copy(io.Discard, io.NewSectionReader(b, 0, b.Size()))
			if err == nil && c != int64(o.size) {
				err = fmt.Errorf("read %d bytes, want %d", c, o.size)
			}
			return c, err
		})
		if err != nil {
			return nil, err
		}
		r.ReadCount, r.ReadBytes, r.ReadSeconds = o.count, n, d.Seconds()
	}

	if r.Verified, err = verifyVolumes(ctx, st, refs, o.size, o.writers, 64); err != nil {
		return nil, err
	}
	start := time.Now()
	closed = true
	if err := st.Close(); err != nil {
		return nil, fmt.Errorf("close: %w", err)
	}
	r.CloseSeconds = time.Since(start).Seconds()
	if r.Files, r.Dirs, r.DiskBytes, err = treeUsage(o.dir); err != nil {
		return nil, err
	}
	return r, nil
}

func writeFiles(ctx context.Context, o *childOptions) (*result, error) {
	r := &result{Phase: "write", Store: "files", Size: o.size, Count: o.count, Writers: o.writers, Read: o.read}
	md := filepath.Join(o.dir, "Maildir")
	for _, sub := range []string{"tmp", "new", "cur"} {
		if err := os.MkdirAll(filepath.Join(md, sub), 0o700); err != nil {
			return nil, err
		}
	}
	// One handle on new/ per writer, fsynced after every rename into it.
	newDirs := make([]*os.File, o.writers)
	for w := range newDirs {
		f, err := os.Open(filepath.Join(md, "new"))
		if err != nil {
			return nil, err
		}
		defer f.Close()
		newDirs[w] = f
	}
	pid := os.Getpid()
	names := make([]string, o.count)
	d, err := runWriters(ctx, o.writers, o.count, o.size, func(ctx context.Context, w, n int, body []byte) error {
		now := time.Now()
		name := fmt.Sprintf("%d.M%dP%dQ%d.bench", now.Unix(), now.Nanosecond()/1000, pid, n)
		tmp := filepath.Join(md, "tmp", name)
		f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return err
		}
		if _, err := f.Write(body); err != nil {
			f.Close()
			return err
		}
		if err := f.Sync(); err != nil {
			f.Close()
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
		dst := filepath.Join(md, "new", name)
		if err := os.Rename(tmp, dst); err != nil {
			return err
		}
		if err := newDirs[w].Sync(); err != nil {
			return fmt.Errorf("fsync new/: %w", err)
		}
		names[n] = dst
		return nil
	})
	if err != nil {
		return nil, err
	}
	r.WriteSeconds = d.Seconds()
	r.WriteHWMKiB = vmHWMKiB()

	if o.read {
		d, n, err := runReaders(ctx, o.readers, o.count, func(ctx context.Context, n int) (int64, error) {
			f, err := os.Open(names[n])
			if err != nil {
				return 0, err
			}
			defer f.Close()
			c, err := io.Copy(io.Discard, f)
			if err == nil && c != int64(o.size) {
				err = fmt.Errorf("read %d bytes, want %d", c, o.size)
			}
			return c, err
		})
		if err != nil {
			return nil, err
		}
		r.ReadCount, r.ReadBytes, r.ReadSeconds = o.count, n, d.Seconds()
	}

	for _, n := range samples(o.count, 64) {
		got, err := os.ReadFile(names[n])
		if err != nil {
			return nil, fmt.Errorf("verify: %w", err)
		}
		if !bytes.Equal(got, expected(o.size, o.writers, n)) {
			return nil, fmt.Errorf("verify: %s differs from the body written", names[n])
		}
		r.Verified++
	}
	if r.Files, r.Dirs, r.DiskBytes, err = treeUsage(o.dir); err != nil {
		return nil, err
	}
	return r, nil
}

// heapAfterGC returns HeapAlloc after two full collections.
func heapAfterGC() int64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}

// indexPhase measures the memory the store's index takes per message, and
// the time to reopen (recover) a store of o.count bodies.
func indexPhase(ctx context.Context, o *childOptions) (*result, error) {
	r := &result{Phase: "index", Store: "volumes", Size: o.size, Count: o.count, Writers: o.writers}
	cfg := msstore.DefaultConfig(filepath.Join(o.dir, "data"))
	cfg.NoSync = true
	st, err := msstore.OpenVolumes(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("OpenVolumes: %w", err)
	}
	refs := make([]msstore.Ref, o.count)
	base := heapAfterGC()

	start := time.Now()
	_, err = runWriters(ctx, o.writers, o.count, o.size, func(ctx context.Context, w, n int, body []byte) error {
		ref, err := st.Put(ctx, bytes.NewReader(body), meta(n))
		if err != nil {
			return err
		}
		refs[n] = ref
		return nil
	})
	if err != nil {
		st.Close()
		return nil, err
	}
	if err := st.Sync(ctx); err != nil {
		st.Close()
		return nil, fmt.Errorf("sync: %w", err)
	}
	r.WriteSeconds = time.Since(start).Seconds()
	r.HeapGrowth = heapAfterGC() - base
	r.Stats = fromStats(st.Stats())
	if r.Stats.Bodies != o.count {
		r.warnf("index: Stats().Bodies=%d after %d puts", r.Stats.Bodies, o.count)
	}
	r.WriteHWMKiB = vmHWMKiB()

	start = time.Now()
	if err := st.Close(); err != nil {
		return nil, fmt.Errorf("close: %w", err)
	}
	r.CloseSeconds = time.Since(start).Seconds()
	st = nil

	base = heapAfterGC()
	start = time.Now()
	st2, err := msstore.OpenVolumes(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("reopen: OpenVolumes: %w", err)
	}
	defer st2.Close()
	r.OpenSeconds = time.Since(start).Seconds()
	r.ReopenHeapGrowth = heapAfterGC() - base
	r.ReopenStats = fromStats(st2.Stats())
	if r.ReopenStats.Bodies != o.count {
		r.warnf("index: Stats().Bodies=%d after reopening a store of %d bodies", r.ReopenStats.Bodies, o.count)
	}
	if r.ReopenStats.Volumes != r.Stats.Volumes || r.ReopenStats.LiveBytes != r.Stats.LiveBytes {
		r.warnf("index: Stats() differ before close (%+v) and after reopen (%+v)", r.Stats, r.ReopenStats)
	}

	// Every sampled ref must still open after the reopen, with its bytes.
	if r.Verified, err = verifyVolumes(ctx, st2, refs, o.size, o.writers, 1000); err != nil {
		return nil, fmt.Errorf("after reopen: %w", err)
	}
	r.ReadCount = r.Verified
	runtime.KeepAlive(refs)
	if err := st2.Close(); err != nil && !errors.Is(err, msstore.ErrClosed) {
		return nil, fmt.Errorf("close after reopen: %w", err)
	}

	// Recovery as after a crash: no checkpoint, every record scanned.
	if err := os.Remove(filepath.Join(cfg.Dirs[0].Path, "msstore.ckpt")); err != nil {
		return nil, err
	}
	start = time.Now()
	st3, err := msstore.OpenVolumes(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("reopen without checkpoint: %w", err)
	}
	r.ScanOpenSeconds = time.Since(start).Seconds()
	if n := st3.Stats().Bodies; n != o.count {
		r.warnf("index: %d bodies after a full scan of a store of %d", n, o.count)
	}
	if err := st3.Close(); err != nil {
		return nil, fmt.Errorf("close after full scan: %w", err)
	}
	if r.Files, r.Dirs, r.DiskBytes, err = treeUsage(o.dir); err != nil {
		return nil, err
	}
	return r, nil
}
