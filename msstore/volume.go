package msstore

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mailsys/mailsys/internal/fsutil"
)

// dataDir is one configured data directory.
type dataDir struct {
	id     string // from the manifest
	path   string
	lock   *os.File // held while the store is open
	weight int
	masked atomic.Bool
	cur    int // smooth weighted round-robin state, guarded by Volumes.appendMu
}

// volume is one open volume file. The file stays open while the store or any
// open Body holds it (users); a compacted volume is unlinked at once and
// closed when its last reader is done.
type volume struct {
	num  uint32
	dir  *dataDir
	path string
	f    *os.File

	users atomic.Int32

	badHeader bool // found damaged at open: never appended to
	damaged   bool // holds damaged records: compaction leaves it alone; guarded by Volumes.mu

	// size is the length of the valid data: written by the appender (under
	// Volumes.appendMu), read by anyone.
	size atomic.Int64
	// lastOff and lastLSN locate the last record, for checkpoints; guarded
	// by Volumes.appendMu.
	lastOff int64
	lastLSN uint64
	// live and dead are the bytes of live records and of everything else
	// past the header, guarded by Volumes.mu.
	live, dead int64

	smu     sync.Mutex
	scond   *sync.Cond
	synced  int64 // bytes known durable
	syncing bool
	syncErr error // sticky: after a failed fsync nothing more is trusted
}

func volName(num uint32) string { return fmt.Sprintf("vol-%08d.msv", num) }

func newVolume(num uint32, dir *dataDir, f *os.File, size int64) *volume {
	v := &volume{num: num, dir: dir, path: filepath.Join(dir.path, volName(num)), f: f}
	v.scond = sync.NewCond(&v.smu)
	v.size.Store(size)
	v.synced = size
	v.users.Store(1) // the store's own hold
	return v
}

// createVolume makes a new, durable, empty volume file in dir.
func createVolume(dir *dataDir, num, node uint32) (*volume, error) {
	path := filepath.Join(dir.path, volName(num))
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, fsutil.FileMode)
	if err != nil {
		return nil, fmt.Errorf("msstore: create volume: %w", err)
	}
	var hdr [volHeaderLen]byte
	marshalVolHeader(hdr[:], num, node, time.Now())
	// Not "if _, err := ...": the error must reach the cleanup below.
	_, err = f.WriteAt(hdr[:], 0)
	if err == nil {
		err = f.Sync()
	}
	if err == nil {
		err = fsutil.SyncDir(dir.path)
	}
	if err != nil {
		f.Close()
		os.Remove(path)
		return nil, fmt.Errorf("msstore: create volume %s: %w", path, err)
	}
	return newVolume(num, dir, f, volHeaderLen), nil
}

// acquire adds a hold on the file. The caller must already know the volume
// is held (it found it in Volumes.vols under Volumes.mu).
func (v *volume) acquire() { v.users.Add(1) }

// release drops a hold and closes the file with the last one.
func (v *volume) release() {
	if v.users.Add(-1) == 0 {
		v.f.Close()
	}
}

// syncTo returns once the first end bytes of v are on stable storage.
// Concurrent callers share one fsync (group commit): whoever finds no fsync
// running starts one covering everything written so far; the others wait for
// it and return at once if it covered them.
func (v *volume) syncTo(end int64) error {
	v.smu.Lock()
	defer v.smu.Unlock()
	for v.synced < end {
		if v.syncErr != nil {
			return v.syncErr
		}
		if v.syncing {
			v.scond.Wait()
			continue
		}
		v.syncing = true
		target := v.size.Load()
		v.smu.Unlock()
		err := fsutil.Fdatasync(v.f)
		v.smu.Lock()
		v.syncing = false
		if err != nil {
			v.syncErr = fmt.Errorf("msstore: fsync %s: %w", v.path, err)
		} else if target > v.synced {
			v.synced = target
		}
		v.scond.Broadcast()
	}
	return nil
}
