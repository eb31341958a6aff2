package msstore

import (
	"context"
	"fmt"
)

// Walk visits every live body's Ref and Meta; see [Walker].
func (s *Volumes) Walk(ctx context.Context, fn func(Ref, Meta) error) error {
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return ErrClosed
	}
	ids := make([]uint64, 0, len(s.index))
	for id, e := range s.index {
		if e.refs > 0 {
			ids = append(ids, id)
		}
	}
	s.mu.RUnlock()
	for _, id := range ids {
		if err := ctx.Err(); err != nil {
			return err
		}
		ref, meta, ok, err := s.readMeta(id)
		if err != nil {
			return err
		}
		if !ok {
			continue // released or moved away meanwhile
		}
		if err := fn(ref, meta); err != nil {
			return err
		}
	}
	return nil
}

// readMeta reads the Ref and Meta of body id. ok is false if the body is no
// longer live.
func (s *Volumes) readMeta(id uint64) (Ref, Meta, bool, error) {
	for try := 0; try < 3; try++ {
		s.mu.RLock()
		e, ok := s.index[id]
		v := s.vols[e.vol]
		if !ok || e.refs == 0 || v == nil {
			s.mu.RUnlock()
			return Ref{}, Meta{}, false, nil
		}
		v.acquire()
		s.mu.RUnlock()
		b := make([]byte, min(int64(e.size), recHeaderLen+maxMetaLen))
		_, err := v.f.ReadAt(b, int64(e.off))
		v.release()
		if err != nil {
			if !s.isLive(id, e.vol, int64(e.off)) {
				continue // compacted away meanwhile: look again
			}
			return Ref{}, Meta{}, false, fmt.Errorf("msstore: volume %d offset %d: %w", e.vol, e.off, err)
		}
		h, err := parseHeader(b, int64(e.size))
		if err == nil && h.bodyOff() > int64(len(b)) {
			err = fmt.Errorf("%w: meta past its record", ErrCorrupt)
		}
		var m Meta
		if err == nil {
			m, err = decodeMeta(b[recHeaderLen:h.bodyOff()])
		}
		if err != nil {
			return Ref{}, Meta{}, false, fmt.Errorf("volume %d offset %d: %w", e.vol, e.off, err)
		}
		ref := Ref{Node: s.cfg.Node, Volume: e.vol, Offset: int64(e.off), Size: int64(h.bodyLen), ID: id, Sum: h.bodySum}
		return ref, m, true, nil
	}
	return Ref{}, Meta{}, false, nil
}

// Scrub reads every record of every volume and checks all its checksums;
// see [Scrubber]. It reads with its own file handles' positions, so service
// goes on; records appended during the scrub may not be checked.
func (s *Volumes) Scrub(ctx context.Context, report func(Damage)) (ScrubStats, error) {
	var st ScrubStats
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return st, ErrClosed
	}
	vols := make([]*volume, 0, len(s.vols))
	for _, v := range s.vols {
		v.acquire()
		vols = append(vols, v)
	}
	s.mu.RUnlock()
	defer func() {
		for _, v := range vols {
			v.release()
		}
	}()
	for _, v := range vols {
		if err := ctx.Err(); err != nil {
			return st, err
		}
		sc := &scanner{f: v.f, num: v.num, size: v.size.Load(), verify: true}
		sc.scan(volHeaderLen, func(h *recHeader, off int64, _ bool) {
			st.Records++
			st.Bytes += h.size()
		}, func(d Damage) {
			s.mu.Lock()
			v.damaged = true // compaction leaves it alone
			s.mu.Unlock()
			st.Damaged++
			s.log.Error("scrub found damage", "volume", d.Volume, "offset", d.Offset, "bytes", d.Length, "err", d.Err)
			if report != nil {
				report(d)
			}
		})
	}
	return st, nil
}
