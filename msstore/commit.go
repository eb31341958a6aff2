package msstore

import (
	"sync"
	"time"
)

// Group commit. Puts and reference changes queue their records; one caller at
// a time leads: it takes the whole queue, writes every record, syncs once and
// wakes the others, and the next batch, queued meanwhile, gets a new leader.
// Writing and syncing in turns matters as much as sharing the fsync: a write
// into the page that an fsync is flushing waits for the device (stable pages),
// so writers that append while a sync runs only slow it down.

// commitReq is one record waiting to be committed.
type commitReq struct {
	// prepare runs in the leader with appendMu held, in queue order. It
	// returns the record's header (the sequence number is assigned after)
	// and its spooled meta and body (nil for a reference record), or an
	// error that fails this request alone.
	prepare func() (*recHeader, *spool, error)

	h    *recHeader
	v    *volume
	off  int64
	err  error
	done bool
}

// committer is the queue, owned by a Volumes.
type committer struct {
	mu                 sync.Mutex
	cond               *sync.Cond // for waiters: their batch is done, or there is no leader
	gather             *sync.Cond // for a leader waiting for its batch to fill
	queue              []*commitReq
	gathering, expired bool
	leading            bool
	recent             int           // requests seen in the last round: those served and those queued meanwhile
	lastSync           time.Duration // how long the last batch's sync took
}

// commit queues r and returns once its record is durable (or written, with
// NoSync), or failed.
func (s *Volumes) commit(r *commitReq) error {
	c := &s.commits
	c.mu.Lock()
	c.queue = append(c.queue, r)
	if c.gathering {
		c.gather.Signal()
	}
	for !r.done {
		if c.leading {
			c.cond.Wait()
			continue
		}
		c.leading = true
		if !s.cfg.NoSync {
			// Under load the writers would split into one batch syncing
			// and one queuing, each half as large as it could be. Waiting
			// a fraction of an fsync for as many requests as the last
			// round saw lets the writers just served rejoin.
			if len(c.queue) < c.recent {
				c.gathering, c.expired = true, false
				t := time.AfterFunc(min(c.lastSync/2, 2*time.Millisecond), func() {
					c.mu.Lock()
					c.expired = true
					c.gather.Signal()
					c.mu.Unlock()
				})
				for len(c.queue) < c.recent && !c.expired {
					c.gather.Wait()
				}
				t.Stop()
				c.gathering = false
			}
		}
		batch := c.queue
		c.queue = nil
		c.mu.Unlock()
		t0 := time.Now()
		s.commitBatch(batch)
		c.mu.Lock()
		c.lastSync = time.Since(t0)
		c.recent = len(batch) + len(c.queue)
		c.mu.Unlock()
		c.mu.Lock()
		for _, b := range batch {
			b.done = true
		}
		c.leading = false
		c.cond.Broadcast()
	}
	c.mu.Unlock()
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
