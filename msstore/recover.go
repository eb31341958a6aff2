package msstore

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mailsys/mailsys/internal/fsutil"
)

// errMissingVolumes reports index entries of live bodies whose volume file
// is not in any data directory. It stops the open: scanning what is there
// instead would silently lose those bodies.
var errMissingVolumes = errors.New("msstore: live bodies in missing volume files")

// found is a volume file found at open.
type found struct {
	num  uint32
	dir  *dataDir
	f    *os.File
	size int64
	bad  error // the header is damaged
}

// recover rebuilds the in-memory state from the volumes: from the checkpoint
// and what follows it when the checkpoint is consistent, from a full scan
// otherwise.
func (s *Volumes) recover(ctx context.Context) error {
	start := time.Now()
	files, err := s.findVolumes()
	if err != nil {
		return err
	}
	// Files are owned by s.vols from here; closeFiles closes them on error.
	s.mu.Lock()
	for _, fv := range files {
		v := newVolume(fv.num, fv.dir, fv.f, fv.size)
		v.badHeader = fv.bad != nil
		s.vols[fv.num] = v
		s.nextVol = max(s.nextVol, fv.num)
	}
	s.mu.Unlock()

	ck := s.loadCheckpoint(files)
	mode := "full scan"
	if ck != nil {
		mode = "checkpoint"
		if err := s.recoverFrom(ctx, files, ck); err != nil {
			if errors.Is(err, errMissingVolumes) {
				return err
			}
			s.log.Warn("checkpoint does not match the volumes; scanning them all", "err", err)
			ck, mode = nil, "full scan"
		}
	}
	if ck == nil {
		if err := s.recoverFrom(ctx, files, nil); err != nil {
			return err
		}
	}
	st := s.Stats()
	s.log.Info("store opened", "mode", mode, "volumes", st.Volumes, "bodies", st.Bodies,
		"live_bytes", st.LiveBytes, "dead_bytes", st.DeadBytes, "took", time.Since(start))
	return nil
}

// findVolumes opens every volume file in the data directories.
func (s *Volumes) findVolumes() ([]found, error) {
	var files []found
	seen := map[uint32]string{}
	for _, d := range s.dirs {
		names, err := filepath.Glob(filepath.Join(d.path, "vol-*.msv"))
		if err != nil {
			return nil, err
		}
		for _, path := range names {
			base := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(path), "vol-"), ".msv")
			n, err := strconv.ParseUint(base, 10, 32)
			if err != nil || n == 0 {
				s.log.Warn("ignoring file with a volume-like name", "path", path)
				continue
			}
			num := uint32(n)
			if other, dup := seen[num]; dup {
				closeFound(files)
				return nil, fmt.Errorf("msstore: volume %d found twice: %s and %s", num, other, path)
			}
			seen[num] = path
			f, err := os.OpenFile(path, os.O_RDWR, 0)
			if errors.Is(err, fs.ErrPermission) {
				f, err = os.Open(path)
			}
			if err != nil {
				closeFound(files)
				return nil, fmt.Errorf("msstore: open volume: %w", err)
			}
			fv := found{num: num, dir: d, f: f}
			if fi, err := f.Stat(); err == nil {
				fv.size = fi.Size()
			}
			var hb [volHeaderLen]byte
			_, rerr := f.ReadAt(hb[:], 0)
			gotNum, node, perr := parseVolHeader(hb[:])
			switch {
			case rerr != nil:
				fv.bad = fmt.Errorf("%w: reading volume header: %w", ErrCorrupt, rerr)
			case perr != nil:
				fv.bad = perr
			case gotNum != num:
				fv.bad = fmt.Errorf("%w: header says volume %d", ErrCorrupt, gotNum)
			case node != s.cfg.Node:
				f.Close()
				closeFound(files)
				return nil, fmt.Errorf("msstore: %s belongs to node %d, this store is node %d", path, node, s.cfg.Node)
			}
			files = append(files, fv)
		}
	}
	slices.SortFunc(files, func(a, b found) int { return int(a.num) - int(b.num) })
	return files, nil
}

func closeFound(files []found) {
	for _, f := range files {
		f.f.Close()
	}
}

// tailRec is a record found past the checkpoint (or anywhere, in a full
// scan), to be applied in sequence order.
type tailRec struct {
	h   recHeader
	vol uint32
	off int64
}

// recoverFrom loads ck (nil for none), scans every volume past what ck
// covers, applies the records found in sequence order, and checks the
// result. It leaves the store empty and returns an error if ck turns out
// not to match the volumes.
func (s *Volumes) recoverFrom(ctx context.Context, files []found, ck *checkpoint) error {
	s.mu.Lock()
	s.index = make(map[uint64]entry)
	s.stale = make(map[uint64][]uint32)
	for _, v := range s.vols {
		v.live, v.dead = 0, 0
	}
	var base uint64
	if ck != nil {
		base = ck.lsn
		for _, e := range ck.entries {
			s.index[e.id] = e.entry
		}
		for id, vols := range ck.stale {
			s.stale[id] = vols
		}
		s.nextVol = max(s.nextVol, ck.nextVol)
	}
	s.mu.Unlock()

	var recs []tailRec
	newest := uint32(0)
	if len(files) > 0 {
		newest = files[len(files)-1].num
	}
	for _, fv := range files {
		if err := ctx.Err(); err != nil {
			return err
		}
		from := int64(volHeaderLen)
		if ck != nil {
			if cv, ok := ck.vols[fv.num]; ok {
				from = cv.covered
			}
		}
		if fv.bad != nil {
			s.log.Error("volume header damaged; scanning its records anyway", "volume", fv.num, "err", fv.bad)
		}
		v := s.vols[fv.num]
		if ck != nil {
			if cv, ok := ck.vols[fv.num]; ok {
				v.lastOff, v.lastLSN = cv.lastOff, cv.lastLSN
			}
		}
		sc := &scanner{f: fv.f, num: fv.num, size: fv.size, verify: fv.num == newest}
		var damaged []Damage
		torn := int64(-1) // start of a run of body-damaged records that ends the file
		first := len(recs)
		end := sc.scan(from, func(h *recHeader, off int64, bad bool) {
			if !bad {
				torn = -1
			} else if torn < 0 {
				torn = off
			}
			recs = append(recs, tailRec{h: *h, vol: fv.num, off: off})
			v.lastOff, v.lastLSN = off, h.lsn
		}, func(d Damage) { damaged = append(damaged, d) })
		if fv.num == newest && torn >= 0 {
			// Whole records whose bodies did not reach the disk before a
			// crash: never acknowledged, cut off with the rest of the tail.
			end = torn
			recs = slices.DeleteFunc(recs, func(r tailRec) bool {
				return r.vol == fv.num && r.off >= torn
			})
			if n := len(recs); n > first {
				v.lastOff, v.lastLSN = recs[n-1].off, recs[n-1].h.lsn
			} else if ck == nil || ck.vols[fv.num].lastOff == 0 {
				v.lastOff, v.lastLSN = 0, 0
			} else {
				v.lastOff, v.lastLSN = ck.vols[fv.num].lastOff, ck.vols[fv.num].lastLSN
			}
		}
		for _, d := range damaged {
			if fv.num == newest && d.Offset >= end {
				s.log.Warn("torn record at the end of the newest volume; truncating", "volume", d.Volume,
					"offset", d.Offset, "bytes", d.Length, "err", d.Err)
				continue
			}
			s.log.Error("damaged record", "volume", d.Volume, "offset", d.Offset, "bytes", d.Length, "err", d.Err)
			v.damaged = true
		}
		if fv.num == newest && end < fv.size {
			if err := s.truncate(v, end); err != nil {
				return err
			}
		}
		_, known := ck.volume(fv.num)
		if fv.bad != nil && fv.num == newest && len(recs) == first && !known {
			// A volume whose creation was cut short: it never held a record.
			s.log.Warn("removing volume whose creation did not finish", "path", v.path)
			s.mu.Lock()
			delete(s.vols, v.num)
			s.mu.Unlock()
			v.release()
			if err := os.Remove(v.path); err != nil {
				return fmt.Errorf("msstore: %w", err)
			}
			continue
		}
	}

	slices.SortFunc(recs, func(a, b tailRec) int {
		switch {
		case a.h.lsn < b.h.lsn:
			return -1
		case a.h.lsn > b.h.lsn:
			return 1
		}
		return 0
	})
	for i, r := range recs {
		if r.h.lsn <= base || (i > 0 && recs[i-1].h.lsn == r.h.lsn) {
			return fmt.Errorf("msstore: record sequence %d in volume %d seen twice", r.h.lsn, r.vol)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lsn = base
	for _, r := range recs {
		s.applyLocked(&r.h, s.vols[r.vol], r.off)
		s.lsn = r.h.lsn
	}
	return s.settleLocked()
}

// truncate cuts a torn tail off the newest volume.
func (s *Volumes) truncate(v *volume, end int64) error {
	if err := v.f.Truncate(end); err != nil {
		return fmt.Errorf("msstore: truncate %s: %w", v.path, err)
	}
	if err := fsutil.Fdatasync(v.f); err != nil {
		return fmt.Errorf("msstore: truncate %s: %w", v.path, err)
	}
	v.size.Store(end)
	v.synced = end
	return nil
}

// settleLocked finishes recovery: it drops index entries whose volume is
// gone, recounts each volume's live and dead bytes and picks the volume to
// append to. s.mu must be held.
func (s *Volumes) settleLocked() error {
	lost := map[uint32]int{}
	for id, e := range s.index {
		if e.vol == 0 {
			continue
		}
		if _, ok := s.vols[e.vol]; ok {
			continue
		}
		if e.refs > 0 {
			lost[e.vol]++
			continue
		}
		s.dropLocked(id, e)
	}
	for id, vols := range s.stale {
		vols = slices.DeleteFunc(vols, func(n uint32) bool { return s.vols[n] == nil })
		if len(vols) == 0 {
			delete(s.stale, id)
			if e, ok := s.index[id]; ok && e.vol == 0 {
				delete(s.index, id)
			}
		} else {
			s.stale[id] = vols
		}
	}
	if len(lost) > 0 {
		return fmt.Errorf("%w (volume:bodies) %v; is a data directory missing?", errMissingVolumes, lost)
	}
	for _, v := range s.vols {
		v.live, v.dead = 0, 0
	}
	for _, e := range s.index {
		if v := s.vols[e.vol]; v != nil && e.refs > 0 {
			v.live += int64(e.size)
		}
	}
	var newest *volume
	for _, v := range s.vols {
		v.dead = v.size.Load() - volHeaderLen - v.live
		if newest == nil || v.num > newest.num {
			newest = v
		}
	}
	if newest != nil && !newest.dir.masked.Load() && !newest.badHeader && newest.size.Load() < s.cfg.VolumeSize {
		s.active = newest
	}
	return nil
}

// dropLocked forgets a released body whose record is gone, unless superseded
// copies of it remain, whose tombstones must then be kept. s.mu must be held.
func (s *Volumes) dropLocked(id uint64, e entry) {
	if len(s.stale[id]) > 0 {
		e.vol, e.off, e.size = 0, 0, 0
		s.index[id] = e
		return
	}
	delete(s.index, id)
}
