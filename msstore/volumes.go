package msstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	"github.com/mailsys/mailsys/internal/fsutil"
)

// Volumes is the default Storage: message bodies packed many to a file in
// append-only volume files spread over one or more data directories. See the
// package documentation for the on-disk format and its invariants.
//
// All methods are safe for concurrent use.
type Volumes struct {
	cfg Config
	log *slog.Logger

	// appendMu serializes appends: the active volume, sequence numbers and
	// the choice of directory. Taken before mu, never while holding it.
	appendMu sync.Mutex
	active   *volume
	lsn      uint64 // last sequence number used
	nextVol  uint32 // number of the next volume to create

	// mu guards the index and the set of volumes.
	mu     sync.RWMutex
	index  map[uint64]entry
	stale  map[uint64][]uint32 // volumes holding superseded copies of a body (during or after an interrupted compaction)
	vols   map[uint32]*volume
	dirs   []*dataDir
	closed bool
	broken error // set when a sync (or the undoing of a failed write) failed; writes then fail

	compactMu sync.Mutex   // one Compact or Checkpoint at a time
	compacted atomic.Int64 // volumes rewritten by Compact since Open, for Stats
	reclaimed atomic.Int64 // bytes Compact freed since Open, for Stats

	commits committer
	storeID string // from the manifests
	tmp     string // where Put spools large bodies: tmp/ in the first directory

	// Automatic checkpoints keep the part of the volumes that recovery must
	// scan short: one is taken in the background when a volume is sealed and
	// enough was written since the last one.
	sinceCkpt   int64        // bytes appended since the last checkpoint, guarded by appendMu
	ckptSize    atomic.Int64 // size of the last checkpoint file
	ckptRunning atomic.Bool
	background  sync.WaitGroup
}

// entry is the in-memory index entry of a body: where its current record is
// and how many references it has. A body with no reference left keeps its
// entry, with refs 0, until compaction removes the record. vol 0 means the
// body has no current record but superseded copies still exist (see stale).
type entry struct {
	vol  uint32
	off  uint32
	size uint32 // the whole record's length
	refs uint32
}

var (
	_ Walker    = (*Volumes)(nil)
	_ Compactor = (*Volumes)(nil)
	_ Scrubber  = (*Volumes)(nil)
)

// OpenVolumes opens the store described by cfg, creating its directories if
// needed, and recovers it: it loads the last checkpoint if it is consistent
// with the volumes, scans what was written after it (or everything),
// verifies the records that may have been torn by a crash and truncates a
// torn tail. Damage found on the way is logged and does not stop the open.
func OpenVolumes(ctx context.Context, cfg Config) (*Volumes, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	s := &Volumes{
		cfg:   cfg,
		log:   logger(cfg.Logger).With("component", "msstore"),
		index: make(map[uint64]entry),
		stale: make(map[uint64][]uint32),
		vols:  make(map[uint32]*volume),
	}
	s.commits.Commit, s.commits.NoGather = s.commitBatch, cfg.NoSync
	for _, d := range cfg.Dirs {
		dd, err := s.prepareDir(d)
		if err != nil {
			s.unlockDirs()
			return nil, err
		}
		s.dirs = append(s.dirs, dd)
	}
	s.tmp = filepath.Join(s.dirs[0].path, "tmp")
	if err := s.checkManifests(); err != nil {
		s.unlockDirs()
		return nil, err
	}
	if err := s.recover(ctx); err != nil {
		s.closeFiles()
		return nil, err
	}
	return s, nil
}

// Stats is a snapshot of a store's size.
type Stats struct {
	Volumes   int   // volume files
	Bodies    int   // bodies with references
	Released  int   // bodies released but not yet compacted away
	LiveBytes int64 // bytes of the records of live bodies
	DeadBytes int64 // bytes compaction can reclaim
	DiskBytes int64 // total size of the volume files
	Compacted int64 // volumes rewritten by Compact since the store opened
	Reclaimed int64 // bytes Compact freed since the store opened
}

// Stats returns the store's current figures.
func (s *Volumes) Stats() Stats {
	s.mu.RLock()
	defer s.mu.RUnlock()
	st := Stats{Volumes: len(s.vols), Compacted: s.compacted.Load(), Reclaimed: s.reclaimed.Load()}
	for _, e := range s.index {
		if e.refs > 0 {
			st.Bodies++
		} else {
			st.Released++
		}
	}
	for _, v := range s.vols {
		st.LiveBytes += v.live
		st.DeadBytes += v.dead
		st.DiskBytes += v.size.Load()
	}
	return st
}

// Put stores a body; see [Storage.Put].
func (s *Volumes) Put(ctx context.Context, r io.Reader, meta Meta) (Ref, error) {
	if err := s.writable(); err != nil {
		return Ref{}, err
	}
	head := getBuf()
	defer func() { putBuf(head) }()
	var room [recHeaderLen]byte
	b, err := appendMeta(append((*head)[:0], room[:]...), &meta)
	if err != nil {
		return Ref{}, err
	}
	sp, err := readSpool(ctx, r, b, s.cfg.SpoolMemory, s.cfg.MaxBodySize, s.tmp)
	if err != nil {
		return Ref{}, err
	}
	defer sp.close()
	*head = sp.rec // keep the grown buffer for reuse
	h := recHeader{
		kind:    kindBody,
		refs:    meta.refs(),
		metaLen: uint32(sp.head - recHeaderLen),
		bodyLen: uint64(sp.n),
		bodySum: sp.sum,
	}
	req := &commitReq{prepare: func() (*recHeader, *spool, error) { return &h, sp, nil }}
	if err := s.commit(req); err != nil {
		return Ref{}, err
	}
	return Ref{Node: s.cfg.Node, Volume: req.v.num, Offset: req.off, Size: sp.n, ID: h.id, Sum: sp.sum}, nil
}

// Retain adds n references; see [Storage.Retain].
func (s *Volumes) Retain(ctx context.Context, ref Ref, n int) error {
	if n < 1 || n > 1<<30 {
		return fmt.Errorf("msstore: Retain: invalid count %d", n)
	}
	return s.changeRefs(ctx, ref, int64(n))
}

// Release drops a reference; see [Storage.Release].
func (s *Volumes) Release(ctx context.Context, ref Ref) error {
	return s.changeRefs(ctx, ref, -1)
}

func (s *Volumes) changeRefs(ctx context.Context, ref Ref, delta int64) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := s.writable(); err != nil {
		return err
	}
	if ref.Node != s.cfg.Node {
		return fmt.Errorf("%w: ref %v is for node %d, this is node %d", ErrNotFound, ref, ref.Node, s.cfg.Node)
	}
	return s.commit(&commitReq{prepare: func() (*recHeader, *spool, error) {
		s.mu.RLock()
		e, ok := s.index[ref.ID]
		s.mu.RUnlock()
		if !ok || e.refs == 0 {
			return nil, nil, fmt.Errorf("%w: ref %v", ErrNotFound, ref)
		}
		if err := s.checkRef(ref, e); err != nil {
			return nil, nil, err
		}
		refs := int64(e.refs) + delta
		if refs > 1<<32-1 {
			return nil, nil, fmt.Errorf("msstore: Retain: too many references to %v", ref)
		}
		return &recHeader{kind: kindRefs, id: ref.ID, refs: uint32(refs)}, nil, nil
	}})
}

// checkRef tells whether ref really names the body of entry e, by reading
// its record header. It catches refs forged, corrupted or from another store
// that happen to carry a known id.
func (s *Volumes) checkRef(ref Ref, e entry) error {
	h, err := s.readHeader(e)
	if err != nil {
		return err
	}
	if int64(h.bodyLen) != ref.Size || h.bodySum != ref.Sum {
		return fmt.Errorf("%w: ref %v does not match the stored body", ErrNotFound, ref)
	}
	return nil
}

// readHeader reads and checks the header of e's record.
func (s *Volumes) readHeader(e entry) (recHeader, error) {
	s.mu.RLock()
	v := s.vols[e.vol]
	if v != nil {
		v.acquire()
	}
	s.mu.RUnlock()
	if v == nil {
		return recHeader{}, fmt.Errorf("%w: volume %d is gone", ErrNotFound, e.vol)
	}
	defer v.release()
	var b [recHeaderLen]byte
	if _, err := v.f.ReadAt(b[:], int64(e.off)); err != nil {
		return recHeader{}, fmt.Errorf("msstore: volume %d offset %d: %w", e.vol, e.off, err)
	}
	h, err := parseHeader(b[:], int64(e.size))
	if err != nil {
		return h, fmt.Errorf("volume %d offset %d: %w", e.vol, e.off, err)
	}
	return h, nil
}

// appendLocked assigns h its sequence number (and id, for a new body),
// writes the record at the end of the active volume and updates the index.
// The record is not yet durable: the caller syncs (commitBatch, Compact).
// sp is nil for a record without meta or body.
func (s *Volumes) appendLocked(h *recHeader, sp *spool) (*volume, int64, error) {
	return s.appendWith(h, func(f *os.File, off int64) error { return writeRecord(f, off, h, sp) })
}

// appendWith is appendLocked with the record written by write, called once
// h has its sequence number. appendMu must be held.
func (s *Volumes) appendWith(h *recHeader, write func(f *os.File, off int64) error) (*volume, int64, error) {
	if err := s.writable(); err != nil {
		return nil, 0, err
	}
	size := h.size()
	if s.active == nil || s.active.size.Load()+size > s.cfg.VolumeSize {
		if err := s.roll(); err != nil {
			return nil, 0, err
		}
	}
	v := s.active
	off := v.size.Load()
	s.lsn++
	h.lsn = s.lsn
	if h.id == 0 {
		h.id = h.lsn
	}
	if err := write(v.f, off); err != nil {
		return nil, 0, s.undo(v, err)
	}
	v.size.Store(off + size)
	v.lastOff, v.lastLSN = off, h.lsn
	s.sinceCkpt += size
	s.mu.Lock()
	s.applyLocked(h, v, off)
	s.mu.Unlock()
	return v, off, nil
}

// applyLocked updates the index and the volumes' byte counts for a record
// just written (or found at recovery to be the newest about its body).
// s.mu must be held.
func (s *Volumes) applyLocked(h *recHeader, v *volume, off int64) {
	size := h.size()
	e, had := s.index[h.id]
	if h.kind == kindBody {
		if had && e.vol != 0 {
			if old := s.vols[e.vol]; old != nil {
				old.moveDead(e)
				// The old record stays on disk until its volume is
				// compacted away; until then it must not come back.
				s.stale[h.id] = append(s.stale[h.id], old.num)
			}
		}
		e = entry{vol: v.num, off: uint32(off), size: uint32(size), refs: h.refs}
		s.index[h.id] = e
		if e.refs > 0 {
			v.live += size
		} else {
			v.dead += size
		}
		return
	}
	v.dead += size
	if !had {
		return // the body is gone already
	}
	if e.refs > 0 && h.refs == 0 && e.vol != 0 {
		if bv := s.vols[e.vol]; bv != nil {
			bv.moveDead(e)
		}
	}
	e.refs = h.refs
	s.index[h.id] = e
}

// moveDead counts a body's record as dead space.
func (v *volume) moveDead(e entry) {
	if e.refs > 0 {
		v.live -= int64(e.size)
		v.dead += int64(e.size)
	}
}

// writeRecord writes a whole record at off. The meta is already in sp.rec.
func writeRecord(f *os.File, off int64, h *recHeader, sp *spool) error {
	var trailer [recTrailerLen]byte
	if sp == nil {
		var b [recHeaderLen + recTrailerLen]byte
		h.marshal(b[:])
		marshalTrailer(b[recHeaderLen:], h, 0)
		_, err := f.WriteAt(b[:], off)
		return err
	}
	h.marshal(sp.rec)
	marshalTrailer(trailer[:], h, metaTableSum(sp.rec[recHeaderLen:sp.head], sp.table))
	if sp.file == nil {
		// One write for the whole record; rec has room to spare usually.
		rec := append(append(sp.rec, sp.table...), trailer[:]...)
		_, err := f.WriteAt(rec, off)
		sp.rec = rec[:len(sp.rec)]
		return err
	}
	if _, err := f.WriteAt(sp.rec, off); err != nil {
		return err
	}
	if err := sp.copyFileTo(f, off+int64(len(sp.rec))); err != nil {
		return err
	}
	_, err := f.WriteAt(append(append([]byte(nil), sp.table...), trailer[:]...), off+h.tableOff())
	return err
}

// roll seals the active volume and starts a new one in a directory chosen by
// weight. appendMu must be held.
func (s *Volumes) roll() error {
	if err := s.sealActive(); err != nil {
		return err
	}
	d := s.pickDir()
	if d == nil {
		return fmt.Errorf("%w: every data directory is masked", ErrReadOnly)
	}
	s.nextVol++
	v, err := createVolume(d, s.nextVol, s.cfg.Node)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.vols[v.num] = v
	s.mu.Unlock()
	s.active = v
	s.log.Debug("new volume", "volume", v.num, "path", v.path)
	if s.sinceCkpt >= max(s.cfg.VolumeSize, 4*s.ckptSize.Load()) && !s.ckptRunning.Swap(true) {
		s.background.Add(1)
		go func() {
			defer s.background.Done()
			defer s.ckptRunning.Store(false)
			if err := s.Checkpoint(context.Background()); err != nil && !errors.Is(err, ErrClosed) {
				s.log.Warn("automatic checkpoint", "err", err)
			}
		}()
	}
	return nil
}

// sealActive makes the active volume durable and stops appending to it, so
// that only the newest volume can ever hold a torn record. appendMu must be
// held.
func (s *Volumes) sealActive() error {
	v := s.active
	if v == nil {
		return nil
	}
	s.active = nil
	if err := v.syncTo(v.size.Load()); err != nil {
		return s.fail(err)
	}
	return nil
}

// undo handles a failed write (a full disk, usually) to v: it cuts v back to
// its published size, so that nothing of the failed records stays in the
// volume and the next record goes where they began, and returns the error
// for the records that failed. The store goes on: once space returns, writes
// succeed again. Only if the cut itself fails does the store stop taking
// writes (see fail). appendMu must be held, and no record past v.size may
// have been published.
func (s *Volumes) undo(v *volume, cause error) error {
	err := fmt.Errorf("msstore: write to %s: %w", v.path, cause)
	end := v.size.Load()
	if terr := v.f.Truncate(end); terr != nil {
		return s.fail(fmt.Errorf("%w (undoing it: %w)", err, terr))
	}
	// The cut must be durable too: a volume sealed later with nothing
	// more written to it would otherwise keep the partial record at its
	// end, to be found as damage at the next open.
	if serr := fsutil.Fdatasync(v.f); serr != nil {
		return s.fail(fmt.Errorf("%w (undoing it: %w)", err, serr))
	}
	s.log.Warn("write failed and undone; the store goes on", "volume", v.num, "err", cause)
	return err
}

// fail makes the store refuse writes after a failed fsync: the page cache
// can no longer be trusted to match the disk. Reopening the store recovers
// from what is on disk.
func (s *Volumes) fail(err error) error {
	s.mu.Lock()
	if s.broken == nil {
		s.broken = err
		s.log.Error("write failed; store is read-only until reopened", "err", err)
	}
	s.mu.Unlock()
	return fmt.Errorf("%w: %w", ErrReadOnly, err)
}

func (s *Volumes) writable() error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return ErrClosed
	}
	if s.broken != nil {
		return fmt.Errorf("%w: %w", ErrReadOnly, s.broken)
	}
	return nil
}

// Sync makes every record written so far durable. It is needed only with
// Config.NoSync.
func (s *Volumes) Sync(ctx context.Context) error {
	if err := s.writable(); err != nil {
		return err
	}
	s.appendMu.Lock()
	v := s.active
	s.appendMu.Unlock()
	if v == nil {
		return nil
	}
	if err := v.syncTo(v.size.Load()); err != nil {
		return s.fail(err)
	}
	return nil
}

// Close writes a checkpoint (so the next open is fast), syncs and closes the
// store. Bodies still open stay readable until they are closed.
func (s *Volumes) Close() error {
	s.mu.RLock()
	closed, broken := s.closed, s.broken
	s.mu.RUnlock()
	if closed {
		return ErrClosed
	}
	var err error
	if broken == nil {
		err = s.Checkpoint(context.Background())
	}
	s.background.Wait()
	s.compactMu.Lock()
	defer s.compactMu.Unlock()
	s.appendMu.Lock()
	defer s.appendMu.Unlock()
	s.closeFiles()
	return err
}

func (s *Volumes) closeFiles() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	for _, v := range s.vols {
		v.release()
	}
	s.vols = map[uint32]*volume{}
	s.active = nil
	s.unlockDirs()
}

func (s *Volumes) unlockDirs() {
	for _, d := range s.dirs {
		if d.lock != nil {
			d.lock.Close()
			d.lock = nil
		}
	}
}

// buffers for Put's record head and small bodies.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 64<<10); return &b }}

func getBuf() *[]byte { return bufPool.Get().(*[]byte) }

func putBuf(b *[]byte) {
	if cap(*b) <= 2<<20 {
		*b = (*b)[:0]
		bufPool.Put(b)
	}
}

func logger(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.Default()
	}
	return l
}
