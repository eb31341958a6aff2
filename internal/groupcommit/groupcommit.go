// Package groupcommit shares one write and one sync among concurrent
// writers: the group commit of msstore's volumes and of txlog's segments.
//
// Writers queue items; one of them at a time leads: it takes the whole
// queue as a batch, has Commit write and sync it, and wakes the others,
// whose items were in the batch or are now queued for the next leader.
// Writing and syncing in turns matters as much as sharing the sync: a
// write into a page that an fsync is flushing waits for the device (stable
// pages), so writers that append while a sync runs only slow it down.
//
// Under load the writers would split into one batch syncing and one
// queuing, each half as large as it could be. So a leader that finds
// fewer items queued than the last round saw (those it served and those
// queued meanwhile) waits for as many, at most half as long as the last
// Commit took and never more than MaxGather: the writers just served
// rejoin its batch instead of forming a second, smaller one.
package groupcommit

import (
	"sync"
	"time"
)

// MaxGather bounds a leader's wait for its batch to fill.
const MaxGather = 2 * time.Millisecond

// Queue is a group commit of items of type T (usually a pointer to a
// request that Commit fills with its result). Set Commit, and NoGather if
// need be, before the first Do; the zero value is otherwise ready. Do,
// Async and Flush are safe for concurrent use.
type Queue[T any] struct {
	// Commit writes the items of batch, in queue order, and makes them
	// durable; it records each item's outcome in the item. Only the
	// leader calls it, one batch at a time, without the Queue's lock, so
	// it may take the caller's own locks. Do returns to an item's writer
	// only after the Commit of its batch has returned.
	Commit func(batch []T)
	// NoGather turns off the wait for a batch to fill: for a Commit that
	// does not sync, where nothing is gained by waiting.
	NoGather bool

	mu                 sync.Mutex
	cond               sync.Cond // for writers: a batch is done, or there is no leader
	gather             sync.Cond // for a leader waiting for its batch to fill
	queue              []T
	waited             int // items in queue whose writers wait for them
	leading            bool
	gathering, expired bool
	queued, committed  uint64        // items queued, and committed, since the start
	recent             int           // items seen in the last round
	lastSync           time.Duration // how long the last Commit took
}

func (q *Queue[T]) init() {
	if q.cond.L == nil {
		q.cond.L, q.gather.L = &q.mu, &q.mu
	}
}

// Do queues item and returns once a Commit of a batch holding it has
// returned; the writer leads that batch itself if nobody else does. If
// prepare is not nil it runs first, with the Queue's lock held, so that
// items are queued in the order their prepare calls ran (txlog numbers
// its transactions there); if it returns an error, item is not queued and
// Do returns that error. Otherwise Do returns nil: the outcome of the
// commit is the item's.
func (q *Queue[T]) Do(item T, prepare func() error) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.init()
	if prepare != nil {
		if err := prepare(); err != nil {
			return err
		}
	}
	q.waitFor(q.enqueue(item, true))
	return nil
}

// Async is Do without the wait when a leader is at work: item joins the
// next batch, which that leader or a later writer commits, and Async
// returns at once with queued true. With no leader it is Do, and queued is
// false. An item queued this way is committed by the next writer to lead,
// or by Flush.
func (q *Queue[T]) Async(item T, prepare func() error) (queued bool, err error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.init()
	if prepare != nil {
		if err := prepare(); err != nil {
			return false, err
		}
	}
	if q.leading {
		q.enqueue(item, false)
		return true, nil
	}
	q.waitFor(q.enqueue(item, true))
	return false, nil
}

// Flush returns once every item queued before it has been committed.
func (q *Queue[T]) Flush() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.init()
	for q.leading || len(q.queue) > 0 {
		if q.leading {
			q.cond.Wait()
			continue
		}
		q.lead()
	}
}

// enqueue queues item, whose writer waits for it if wait is true, and
// returns its ticket: items are committed in ticket order. q.mu is held.
func (q *Queue[T]) enqueue(item T, wait bool) uint64 {
	q.queue = append(q.queue, item)
	if wait {
		q.waited++
	}
	q.queued++
	if q.gathering {
		q.gather.Signal()
	}
	return q.queued - 1
}

// waitFor waits until the item of ticket is committed, leading batches
// while nobody else does; then it goes on leading while the queue holds
// only items whose writers do not wait (Async's), which would have
// nobody else to lead them. q.mu is held.
func (q *Queue[T]) waitFor(ticket uint64) {
	for ticket >= q.committed || (!q.leading && len(q.queue) > 0 && q.waited == 0) {
		if q.leading {
			q.cond.Wait()
			continue
		}
		q.lead()
	}
}

// lead commits what is queued. q.mu is held and nobody leads; q.mu is
// released while Commit runs.
func (q *Queue[T]) lead() {
	q.leading = true
	if !q.NoGather && len(q.queue) < q.recent {
		q.gathering, q.expired = true, false
		t := time.AfterFunc(min(q.lastSync/2, MaxGather), func() {
			q.mu.Lock()
			q.expired = true
			q.gather.Signal()
			q.mu.Unlock()
		})
		for len(q.queue) < q.recent && !q.expired {
			q.gather.Wait()
		}
		t.Stop()
		q.gathering = false
	}
	batch := q.queue
	q.queue, q.waited = nil, 0
	q.mu.Unlock()
	start := time.Now()
	q.Commit(batch)
	took := time.Since(start)
	q.mu.Lock()
	q.lastSync = took
	q.recent = len(batch) + len(q.queue)
	q.committed += uint64(len(batch))
	q.leading = false
	q.cond.Broadcast()
}
