package msstore

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
)

// A checkpoint is a snapshot of the index written at Close (and on demand),
// so that opening the store reads one file and the volumes' tails instead of
// every record. It is written to a temporary file, synced and renamed over
// the previous one. It stays valid as the volumes grow after it: open checks
// that each volume still ends, at the size recorded, with the record
// recorded, then scans only what comes after.
const (
	ckptName  = "msstore.ckpt"
	ckptMagic = "msckpt01"
)

type checkpoint struct {
	dirs    []string // where to write it (the first) and where to remove older ones; not encoded
	node    uint32
	lsn     uint64
	nextVol uint32
	vols    map[uint32]ckptVol
	entries []ckptEntry
	stale   map[uint64][]uint32
}

type ckptVol struct {
	covered int64  // bytes of the volume the checkpoint accounts for
	lastOff int64  // offset of the last record in them, 0 if none
	lastLSN uint64 // that record's sequence number
}

type ckptEntry struct {
	id uint64
	entry
}

// volume returns what ck records of volume num; ck may be nil.
func (ck *checkpoint) volume(num uint32) (ckptVol, bool) {
	if ck == nil {
		return ckptVol{}, false
	}
	v, ok := ck.vols[num]
	return v, ok
}

// Checkpoint writes a snapshot of the index, so that the next open need not
// scan the volumes. Appends wait while the snapshot is taken; the file is
// written after they resume.
func (s *Volumes) Checkpoint(ctx context.Context) error {
	s.compactMu.Lock()
	defer s.compactMu.Unlock()
	if err := s.writable(); err != nil {
		return err
	}
	ck, err := s.snapshot()
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.writeCheckpoint(ck)
}

// snapshot copies the index once everything appended so far is durable.
func (s *Volumes) snapshot() (*checkpoint, error) {
	s.appendMu.Lock()
	defer s.appendMu.Unlock()
	if v := s.active; v != nil {
		if err := v.syncTo(v.size.Load()); err != nil {
			return nil, s.fail(err)
		}
	}
	s.sinceCkpt = 0
	s.mu.RLock()
	defer s.mu.RUnlock()
	ck := &checkpoint{
		node:    s.cfg.Node,
		lsn:     s.lsn,
		nextVol: s.nextVol,
		vols:    make(map[uint32]ckptVol, len(s.vols)),
		entries: make([]ckptEntry, 0, len(s.index)),
		stale:   make(map[uint64][]uint32, len(s.stale)),
	}
	for _, v := range s.vols {
		ck.vols[v.num] = ckptVol{covered: v.size.Load(), lastOff: v.lastOff, lastLSN: v.lastLSN}
	}
	for id, e := range s.index {
		ck.entries = append(ck.entries, ckptEntry{id: id, entry: e})
	}
	for id, vols := range s.stale {
		ck.stale[id] = append([]uint32(nil), vols...)
	}
	for _, d := range s.dirs {
		ck.dirs = append(ck.dirs, d.path)
	}
	return ck, nil
}

func (s *Volumes) writeCheckpoint(ck *checkpoint) error {
	var size int64
	err := replaceFile(ck.dirs[0], ckptName, func(bw *bufio.Writer) error {
		w := &crcWriter{w: bw}
		ck.encode(w)
		var sum [4]byte
		binary.LittleEndian.PutUint32(sum[:], w.sum)
		w.Write(sum[:])
		size = w.n
		return nil
	})
	if err != nil {
		return fmt.Errorf("msstore: checkpoint: %w", err)
	}
	s.ckptSize.Store(size)
	for _, d := range ck.dirs[1:] { // an older one left by an earlier first directory
		os.Remove(filepath.Join(d, ckptName))
	}
	return nil
}

func (ck *checkpoint) encode(w *crcWriter) {
	var b []byte
	b = append(b, ckptMagic...)
	b = binary.LittleEndian.AppendUint32(b, ck.node)
	b = binary.LittleEndian.AppendUint64(b, ck.lsn)
	b = binary.LittleEndian.AppendUint32(b, ck.nextVol)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(ck.vols)))
	for num, v := range ck.vols {
		b = binary.LittleEndian.AppendUint32(b, num)
		b = binary.LittleEndian.AppendUint64(b, uint64(v.covered))
		b = binary.LittleEndian.AppendUint64(b, uint64(v.lastOff))
		b = binary.LittleEndian.AppendUint64(b, v.lastLSN)
	}
	b = binary.LittleEndian.AppendUint64(b, uint64(len(ck.entries)))
	w.Write(b)
	for _, e := range ck.entries {
		b = binary.LittleEndian.AppendUint64(b[:0], e.id)
		b = binary.LittleEndian.AppendUint32(b, e.vol)
		b = binary.LittleEndian.AppendUint32(b, e.off)
		b = binary.LittleEndian.AppendUint32(b, e.size)
		b = binary.LittleEndian.AppendUint32(b, e.refs)
		w.Write(b)
	}
	b = binary.LittleEndian.AppendUint64(b[:0], uint64(len(ck.stale)))
	for id, vols := range ck.stale {
		b = binary.LittleEndian.AppendUint64(b, id)
		b = binary.LittleEndian.AppendUint32(b, uint32(len(vols)))
		for _, n := range vols {
			b = binary.LittleEndian.AppendUint32(b, n)
		}
	}
	w.Write(b)
}

// crcWriter checksums what it writes.
type crcWriter struct {
	w   *bufio.Writer
	sum uint32
	n   int64
}

func (c *crcWriter) Write(p []byte) {
	c.sum = crc32.Update(c.sum, castagnoli, p)
	c.n += int64(len(p))
	c.w.Write(p) // errors surface at Flush
}

// loadCheckpoint reads the newest checkpoint among the data directories and
// checks it against the volume files found. It returns nil if there is none
// that can be used, and logs why.
func (s *Volumes) loadCheckpoint(files []found) *checkpoint {
	var best *checkpoint
	for _, d := range s.dirs {
		path := filepath.Join(d.path, ckptName)
		ck, err := readCheckpoint(path)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err == nil && ck.node != s.cfg.Node {
			err = fmt.Errorf("written by node %d", ck.node)
		}
		if err == nil {
			err = ck.matches(files)
		}
		if err != nil {
			s.log.Warn("ignoring checkpoint", "path", path, "err", err)
			continue
		}
		if best == nil || ck.lsn > best.lsn {
			best = ck
		}
	}
	return best
}

// matches checks that every volume the checkpoint knows and that still
// exists ends, at the size recorded, with the record recorded.
func (ck *checkpoint) matches(files []found) error {
	for _, fv := range files {
		cv, ok := ck.vols[fv.num]
		if !ok {
			continue
		}
		if fv.size < cv.covered {
			return fmt.Errorf("volume %d is %d bytes, the checkpoint covers %d", fv.num, fv.size, cv.covered)
		}
		if cv.lastOff == 0 {
			if cv.covered != volHeaderLen {
				return fmt.Errorf("volume %d: no last record recorded", fv.num)
			}
			continue
		}
		var hb [recHeaderLen]byte
		if _, err := fv.f.ReadAt(hb[:], cv.lastOff); err != nil {
			return fmt.Errorf("volume %d: %w", fv.num, err)
		}
		h, err := parseHeader(hb[:], fv.size-cv.lastOff)
		if err != nil {
			return fmt.Errorf("volume %d: last record: %w", fv.num, err)
		}
		if h.lsn != cv.lastLSN || cv.lastOff+h.size() != cv.covered {
			return fmt.Errorf("volume %d: last record is not the one recorded", fv.num)
		}
	}
	return nil
}

func readCheckpoint(path string) (*checkpoint, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	r := &ckptReader{r: bufio.NewReaderSize(f, 1<<20), left: fi.Size() - 4}
	ck := &checkpoint{vols: map[uint32]ckptVol{}, stale: map[uint64][]uint32{}}
	if string(r.bytes(len(ckptMagic))) != ckptMagic {
		return nil, fmt.Errorf("%w: not a checkpoint", ErrCorrupt)
	}
	ck.node = r.u32()
	ck.lsn = r.u64()
	ck.nextVol = r.u32()
	nv := r.u32()
	for i := uint32(0); i < nv && r.err == nil; i++ {
		num := r.u32()
		ck.vols[num] = ckptVol{covered: int64(r.u64()), lastOff: int64(r.u64()), lastLSN: r.u64()}
	}
	ne := r.count(24)
	ck.entries = make([]ckptEntry, 0, ne)
	for i := uint64(0); i < ne && r.err == nil; i++ {
		ck.entries = append(ck.entries, ckptEntry{id: r.u64(), entry: entry{vol: r.u32(), off: r.u32(), size: r.u32(), refs: r.u32()}})
	}
	ns := r.count(12)
	for i := uint64(0); i < ns && r.err == nil; i++ {
		id := r.u64()
		n := r.count(4)
		for j := uint64(0); j < n && r.err == nil; j++ {
			ck.stale[id] = append(ck.stale[id], r.u32())
		}
	}
	if r.err == nil && r.left != 0 {
		r.err = fmt.Errorf("%w: %d trailing bytes in checkpoint", ErrCorrupt, r.left)
	}
	if r.err != nil {
		return nil, r.err
	}
	var sum [4]byte
	if _, err := io.ReadFull(r.r, sum[:]); err != nil {
		return nil, fmt.Errorf("%w: checkpoint: %w", ErrCorrupt, err)
	}
	if binary.LittleEndian.Uint32(sum[:]) != r.sum {
		return nil, fmt.Errorf("%w: checkpoint checksum", ErrCorrupt)
	}
	return ck, nil
}

// ckptReader decodes a checkpoint, checksumming as it goes and never reading
// past the bytes the file holds.
type ckptReader struct {
	r    *bufio.Reader
	left int64
	sum  uint32
	err  error
	buf  [8]byte
}

func (r *ckptReader) bytes(n int) []byte {
	if r.err != nil {
		return r.buf[:n]
	}
	if int64(n) > r.left {
		r.err = fmt.Errorf("%w: checkpoint truncated", ErrCorrupt)
		return r.buf[:n]
	}
	b := r.buf[:n]
	if _, err := io.ReadFull(r.r, b); err != nil {
		r.err = fmt.Errorf("%w: checkpoint: %w", ErrCorrupt, err)
	}
	r.left -= int64(n)
	r.sum = crc32.Update(r.sum, castagnoli, b)
	return b
}

func (r *ckptReader) u32() uint32 { return binary.LittleEndian.Uint32(r.bytes(4)) }
func (r *ckptReader) u64() uint64 { return binary.LittleEndian.Uint64(r.bytes(8)) }

// count reads an item count and checks that that many items of at least
// size bytes fit in what is left.
func (r *ckptReader) count(size int64) uint64 {
	var n uint64
	if size == 4 {
		n = uint64(r.u32())
	} else {
		n = r.u64()
	}
	if r.err == nil && n > uint64(r.left/size) {
		r.err = fmt.Errorf("%w: checkpoint count %d too large", ErrCorrupt, n)
	}
	return n
}
