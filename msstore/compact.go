package msstore

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"slices"

	"github.com/mailsys/mailsys/internal/fsutil"
)

// Compact rewrites the sealed volumes in which at least Config.CompactRatio
// of the bytes belong to released bodies: it copies their live records to
// the end of the active volume, makes the copies durable, and only then
// removes the old volume. Reads and writes go on meanwhile. A crash at any
// point leaves either the old record or its copy as the current one, never
// neither and never both (the copy has the higher sequence number and wins
// at recovery). A volume with damaged records is left alone and logged.
func (s *Volumes) Compact(ctx context.Context) (CompactStats, error) {
	var st CompactStats
	defer func() { // counted for Stats, a compaction cut short too
		s.compacted.Add(int64(st.Volumes))
		s.reclaimed.Add(st.BytesReclaimed)
	}()
	s.compactMu.Lock()
	defer s.compactMu.Unlock()
	if err := s.writable(); err != nil {
		return st, err
	}
	s.appendMu.Lock()
	active := s.active
	s.appendMu.Unlock()

	type cand struct {
		v    *volume
		dead int64
	}
	var cands []cand
	s.mu.RLock()
	for _, v := range s.vols {
		total := v.live + v.dead
		if v == active || v.damaged || total == 0 || float64(v.dead) < s.cfg.CompactRatio*float64(total) {
			continue
		}
		v.acquire()
		cands = append(cands, cand{v, v.dead})
	}
	s.mu.RUnlock()
	slices.SortFunc(cands, func(a, b cand) int { return int(b.dead - a.dead) })
	defer func() {
		for _, c := range cands {
			c.v.release()
		}
	}()
	for _, c := range cands {
		if err := ctx.Err(); err != nil {
			return st, err
		}
		moved, copied, err := s.compactVolume(c.v)
		if err != nil {
			return st, err
		}
		if moved < 0 {
			continue // damaged: left alone
		}
		st.Volumes++
		st.BodiesMoved += moved
		st.BytesReclaimed += c.v.size.Load() - copied
	}
	if st.Volumes > 0 {
		s.log.Info("compacted", "volumes", st.Volumes, "moved", st.BodiesMoved, "reclaimed", st.BytesReclaimed)
		if ck, err := s.snapshot(); err == nil {
			if err := s.writeCheckpoint(ck); err != nil {
				s.log.Warn("checkpoint after compaction", "err", err)
			}
		}
	}
	return st, nil
}

// compactVolume moves v's live records away and removes v. It returns the
// number of bodies moved and the bytes written for them, or -1 if v is
// damaged and was left alone.
func (s *Volumes) compactVolume(v *volume) (int, int64, error) {
	// First read and check the whole volume: a damaged one is left alone,
	// before anything is copied out of it.
	type rec struct {
		h   recHeader
		off int64
	}
	var recs []rec
	var damaged error
	sc := &scanner{f: v.f, num: v.num, size: v.size.Load(), verify: true}
	sc.scan(volHeaderLen, func(h *recHeader, off int64, _ bool) {
		recs = append(recs, rec{*h, off})
	}, func(d Damage) {
		if damaged == nil {
			damaged = d.Err
		}
		s.log.Error("damaged records; volume not compacted", "volume", d.Volume, "offset", d.Offset, "bytes", d.Length, "err", d.Err)
	})
	if damaged != nil {
		s.mu.Lock()
		v.damaged = true
		s.mu.Unlock()
		return -1, 0, nil
	}
	moved, copied := 0, int64(0)
	for _, r := range recs {
		switch r.h.kind {
		case kindBody:
			ok, err := s.copyBody(v, r.h, r.off)
			if err != nil {
				return 0, 0, err
			}
			if ok {
				moved++
				copied += r.h.size()
			}
		case kindRefs:
			ok, err := s.carryRefs(v, r.h.id)
			if err != nil {
				return 0, 0, err
			}
			if ok {
				copied += r.h.size()
			}
		}
	}
	// The copies must be durable before the originals go.
	if err := s.Sync(context.Background()); err != nil {
		return 0, 0, err
	}
	s.mu.Lock()
	for _, b := range recs {
		if b.h.kind != kindBody {
			continue
		}
		id := b.h.id
		e, ok := s.index[id]
		if vols := slices.DeleteFunc(s.stale[id], func(n uint32) bool { return n == v.num }); len(vols) > 0 {
			s.stale[id] = vols
		} else {
			delete(s.stale, id)
		}
		if !ok {
			continue
		}
		if e.vol == v.num && int64(e.off) == b.off {
			if e.refs > 0 {
				s.mu.Unlock()
				return 0, 0, fmt.Errorf("msstore: compaction of volume %d left body %d behind", v.num, id)
			}
			s.dropLocked(id, e)
		} else if e.vol == 0 && len(s.stale[id]) == 0 {
			delete(s.index, id)
		}
	}
	delete(s.vols, v.num)
	s.mu.Unlock()
	v.release() // the store's hold; readers keep theirs
	if err := os.Remove(v.path); err != nil {
		return 0, 0, fmt.Errorf("msstore: compaction: %w", err)
	}
	if err := fsutil.SyncDir(v.dir.path); err != nil {
		return 0, 0, fmt.Errorf("msstore: compaction: %w", err)
	}
	return moved, copied, nil
}

// copyBody copies the record of body h at off in v to the active volume if
// it is still the body's current, live record. The copy keeps the id, meta,
// body and checksums, and takes a new sequence number and the current
// reference count.
func (s *Volumes) copyBody(v *volume, h recHeader, off int64) (bool, error) {
	if !s.isLive(h.id, v.num, off) {
		return false, nil
	}
	raw := make([]byte, h.size())
	if _, err := v.f.ReadAt(raw, off); err != nil {
		return false, fmt.Errorf("msstore: compaction: read volume %d: %w", v.num, err)
	}
	s.appendMu.Lock()
	defer s.appendMu.Unlock()
	s.mu.RLock()
	e := s.index[h.id]
	s.mu.RUnlock()
	if e.vol != v.num || int64(e.off) != off || e.refs == 0 {
		return false, nil // released meanwhile
	}
	c := h
	c.lsn, c.refs = 0, e.refs
	_, _, err := s.appendWith(&c, func(f *os.File, at int64) error {
		c.marshal(raw)
		binary.LittleEndian.PutUint64(raw[len(raw)-recTrailerLen:], c.lsn)
		_, err := f.WriteAt(raw, at)
		return err
	})
	return err == nil, err
}

// carryRefs rewrites, with a new sequence number, the reference count of a
// body whose count was last changed by a record in v, if the body has a
// record elsewhere that the count still applies to.
func (s *Volumes) carryRefs(v *volume, id uint64) (bool, error) {
	s.appendMu.Lock()
	defer s.appendMu.Unlock()
	s.mu.RLock()
	e, ok := s.index[id]
	others := slices.ContainsFunc(s.stale[id], func(n uint32) bool { return n != v.num })
	s.mu.RUnlock()
	if !ok || (e.vol == v.num && !others) {
		return false, nil // the body goes with v, or is gone already
	}
	h := recHeader{kind: kindRefs, id: id, refs: e.refs}
	_, _, err := s.appendLocked(&h, nil)
	return err == nil, err
}

// isLive reports whether the record at vol/off is still the current,
// referenced record of body id.
func (s *Volumes) isLive(id uint64, vol uint32, off int64) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	e, ok := s.index[id]
	return ok && e.vol == vol && int64(e.off) == off && e.refs > 0
}
