package userdata

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/mailsys/mailsys/internal/fsutil"
)

// The disk reserve. Pebble does not survive a full disk: a WAL write that
// fails makes Commit fail and the WAL writer stays failed (Pebble calls
// Logger.Fatalf, and a later commit can panic holding the commit pipeline's
// lock, so that every commit after it, and Close, block for ever); a
// MANIFEST write that fails is fatal too, in a background goroutine. Pebble's
// answer is a ballast file, which vfs.OnDiskFull helps manage: when a write
// to the database's file system meets ENOSPC, the ballast is removed and the
// write tried again, into the space it gave back.
//
// The reserve is that ballast: a file of Config.DiskReserve bytes in the
// database's directory. Once it has been spent, the DB refuses writes with
// an error wrapping syscall.ENOSPC, without reaching Pebble, until the file
// system has room for two reserves again; then the reserve is made anew and
// writes resume. Reads go on throughout.

// reserveName is the ballast file in Config.Dir; Pebble ignores files
// whose names it does not know.
const reserveName = "mailsys-reserve"

// maxReserve bounds the default reserve: enough for the writes in flight
// when the disk fills and for Pebble's own background work meanwhile.
const maxReserve = 64 << 20

type reserve struct {
	path string
	dir  string
	size int64
	log  *slog.Logger

	mu    sync.Mutex  // held while the file is made or removed
	spent atomic.Bool // the file is gone: writes are refused
}

// newReserve returns the reserve of cfg (nil if turned off) and makes its
// file if needed. A file system too full for it gives a reserve already
// spent: writes wait for space.
func newReserve(cfg *Config, log *slog.Logger) *reserve {
	size := cfg.DiskReserve
	if size < 0 {
		return nil
	}
	if size == 0 {
		size = maxReserve
		if u, err := vfs.Default.GetDiskUsage(cfg.Dir); err == nil {
			size = min(maxReserve, int64(u.TotalBytes/100))
		}
	}
	r := &reserve{path: filepath.Join(cfg.Dir, reserveName), dir: cfg.Dir, size: size, log: log}
	if err := r.make(); err != nil {
		r.spent.Store(true)
		log.Warn("no room for the disk reserve; writes are refused until space returns", "bytes", size, "err", err)
	}
	return r
}

// make creates the file at its full size, unless it is there already.
func (r *reserve) make() error {
	if fi, err := os.Stat(r.path); err == nil && fi.Size() >= r.size {
		return nil
	}
	f, err := os.OpenFile(r.path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, fsutil.FileMode)
	if err != nil {
		return err
	}
	err = allocate(f, r.size)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(r.path)
		return fmt.Errorf("userdata: disk reserve: %w", err)
	}
	return nil
}

// allocate gives f size bytes of real disk space: allocated, not a hole.
func allocate(f *os.File, size int64) error {
	if err := fallocate(f, size); err == nil || !errors.Is(err, errors.ErrUnsupported) {
		return err
	}
	buf := make([]byte, 1<<20)
	for off := int64(0); off < size; off += int64(len(buf)) {
		if _, err := f.WriteAt(buf[:min(int64(len(buf)), size-off)], off); err != nil {
			return err
		}
	}
	return nil
}

// spend is the vfs.OnDiskFull callback: Pebble met ENOSPC, and will try the
// write again once this returns. Pebble's writes wait meanwhile.
func (r *reserve) spend() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.spent.Swap(true) {
		r.log.Error("disk full and the reserve is spent already; the database may fail")
		return
	}
	if err := os.Remove(r.path); err != nil {
		r.log.Error("disk full; cannot remove the reserve", "err", err)
		return
	}
	r.log.Warn("disk full; reserve released, writes refused until space returns", "bytes", r.size)
}

// check returns nil if a write may go to Pebble: the reserve is in place,
// or could be made again because space has returned.
func (r *reserve) check() error {
	if r == nil || !r.spent.Load() {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.spent.Load() {
		return nil
	}
	if u, err := vfs.Default.GetDiskUsage(r.dir); err == nil && int64(u.AvailBytes) < 2*r.size {
		return fmt.Errorf("userdata: disk full (%d bytes free), writes wait for %d: %w", u.AvailBytes, 2*r.size, syscall.ENOSPC)
	}
	if err := r.make(); err != nil {
		return fmt.Errorf("userdata: disk full, the reserve cannot be made again (%v): %w", err, syscall.ENOSPC)
	}
	r.spent.Store(false)
	r.log.Info("space returned; disk reserve made again, writes resume", "bytes", r.size)
	return nil
}
