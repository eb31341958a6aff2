package msstore

import "github.com/mailsys/mailsys/internal/groupcommit"

// Group commit (internal/groupcommit): Puts and reference changes queue
// their records; one caller at a time leads: it takes the whole queue,
// writes every record, syncs once and wakes the others, and the next
// batch, queued meanwhile, gets a new leader. OpenVolumes sets the
// queue's Commit to commitBatch (and NoGather with NoSync, where waiting
// for a batch to fill gains nothing).

// commitReq is one record waiting to be committed.
type commitReq struct {
	// prepare runs in the leader with appendMu held, in queue order. It
	// returns the record's header (the sequence number is assigned after)
	// and its spooled meta and body (nil for a reference record), or an
	// error that fails this request alone.
	prepare func() (*recHeader, *spool, error)

	h   *recHeader
	v   *volume
	off int64
	err error
}

// committer is the queue, owned by a Volumes.
type committer = groupcommit.Queue[*commitReq]

// commit queues r and returns once its record is durable (or written, with
// NoSync), or failed.
func (s *Volumes) commit(r *commitReq) error {
	s.commits.Do(r, nil)
	return r.err
}

// commitBatch writes the records of batch and syncs the volumes they went
// to. Records held in memory are gathered and written with one call per
// volume.
func (s *Volumes) commitBatch(batch []*commitReq) {
	w := batchWriter{s: s, buf: getBuf()}
	s.appendMu.Lock()
	for _, r := range batch {
		h, sp, err := r.prepare()
		if err == nil {
			err = w.add(r, h, sp)
		}
		if err != nil {
			r.err = err
		}
	}
	w.flush()
	s.appendMu.Unlock()
	putBuf(w.buf)
	if s.cfg.NoSync {
		return
	}
	for _, sv := range w.synced {
		if err := sv.v.syncTo(sv.end); err != nil {
			err = s.fail(err)
			for _, r := range batch {
				if r.v == sv.v && r.err == nil {
					r.err = err
				}
			}
		}
	}
}

// gatherMax is the largest record a batch copies into its buffer; larger
// ones are written where they are.
const gatherMax = 256 << 10

// batchWriter gathers consecutive records for the active volume into one
// buffer. appendMu is held throughout.
type batchWriter struct {
	s      *Volumes
	buf    *[]byte
	start  int64        // offset of buf in the active volume
	pend   []*commitReq // the records in buf
	synced []struct {
		v   *volume
		end int64
	}
}

func (w *batchWriter) add(r *commitReq, h *recHeader, sp *spool) error {
	s := w.s
	if err := s.writable(); err != nil {
		return err
	}
	size := h.size()
	if s.active == nil || w.end()+size > s.cfg.VolumeSize {
		w.flush()
		if err := s.roll(); err != nil {
			return err
		}
	}
	v := s.active
	if len(w.pend) == 0 {
		w.start = v.size.Load()
	}
	off := w.end()
	s.lsn++
	h.lsn = s.lsn
	if h.id == 0 {
		h.id = h.lsn
	}
	r.h, r.v, r.off = h, v, off
	if sp != nil && (sp.file != nil || size > gatherMax) {
		w.flush()
		if err := writeRecord(v.f, off, h, sp); err != nil {
			return s.undo(v, err)
		}
		w.publish(v, off, []*commitReq{r})
		return nil
	}
	b := *w.buf
	at := len(b)
	b = append(b, make([]byte, recHeaderLen)...)
	h.marshal(b[at:])
	var sum uint32
	if sp != nil {
		b = append(b, sp.rec[recHeaderLen:]...)
		b = append(b, sp.table...)
		sum = metaTableSum(sp.rec[recHeaderLen:sp.head], sp.table)
	}
	var trailer [recTrailerLen]byte
	marshalTrailer(trailer[:], h, sum)
	*w.buf = append(b, trailer[:]...)
	w.pend = append(w.pend, r)
	return nil
}

// end is where the next record goes in the active volume.
func (w *batchWriter) end() int64 {
	if len(w.pend) == 0 {
		return w.s.active.size.Load()
	}
	return w.start + int64(len(*w.buf))
}

// flush writes the gathered records and publishes them. If the write
// fails, it is undone and fails those records alone; the batch goes on.
func (w *batchWriter) flush() {
	if len(w.pend) == 0 {
		return
	}
	s, v := w.s, w.pend[0].v
	if _, err := v.f.WriteAt(*w.buf, w.start); err != nil {
		err = s.undo(v, err)
		for _, r := range w.pend {
			r.err = err
		}
	} else {
		w.publish(v, w.start, w.pend)
	}
	*w.buf = (*w.buf)[:0]
	w.pend = w.pend[:0]
}

// publish makes written records visible: the volume's size, the index, and
// the sync the batch owes.
func (w *batchWriter) publish(v *volume, start int64, recs []*commitReq) {
	last := recs[len(recs)-1]
	end := last.off + last.h.size()
	w.s.sinceCkpt += end - start
	v.size.Store(end)
	v.lastOff, v.lastLSN = last.off, last.h.lsn
	w.s.mu.Lock()
	for _, r := range recs {
		w.s.applyLocked(r.h, v, r.off)
	}
	w.s.mu.Unlock()
	if n := len(w.synced); n > 0 && w.synced[n-1].v == v {
		w.synced[n-1].end = end
	} else {
		w.synced = append(w.synced, struct {
			v   *volume
			end int64
		}{v, end})
	}
}
