package groupcommit

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// req is a test item: Commit marks it synced, after a pause standing in
// for the fsync.
type req struct {
	n      int
	synced atomic.Bool
	batch  int // of the Commit that had it
}

// disk is a Commit that checks what a group commit promises: one batch at
// a time, items in queue order, each item once.
type disk struct {
	t        *testing.T
	pause    time.Duration
	running  atomic.Int32
	mu       sync.Mutex
	batches  int
	seen     map[*req]bool
	maxBatch int
}

func (d *disk) commit(batch []*req) {
	if d.running.Add(1) != 1 {
		d.t.Error("two Commits at once")
	}
	defer d.running.Add(-1)
	d.mu.Lock()
	d.batches++
	n := d.batches
	d.maxBatch = max(d.maxBatch, len(batch))
	for _, r := range batch {
		if d.seen[r] {
			d.t.Errorf("item %d committed twice", r.n)
		}
		d.seen[r] = true
		r.batch = n
	}
	d.mu.Unlock()
	time.Sleep(d.pause) // the write and the sync
	for _, r := range batch {
		r.synced.Store(true)
	}
}

// TestAcknowledgedAfterSync: no writer returns before the Commit of its
// batch has returned, whatever the concurrency; and batches form.
func TestAcknowledgedAfterSync(t *testing.T) {
	d := &disk{t: t, pause: 200 * time.Microsecond, seen: map[*req]bool{}}
	q := &Queue[*req]{Commit: d.commit}
	var wg sync.WaitGroup
	const writers, each = 16, 50
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				r := &req{n: w*each + i}
				if err := q.Do(r, nil); err != nil {
					t.Error(err)
					return
				}
				if !r.synced.Load() {
					t.Errorf("item %d acknowledged before its batch was synced", r.n)
					return
				}
			}
		}()
	}
	wg.Wait()
	if len(d.seen) != writers*each {
		t.Errorf("%d items committed, want %d", len(d.seen), writers*each)
	}
	if d.batches >= writers*each {
		t.Errorf("%d batches for %d items: no group commit", d.batches, writers*each)
	}
	t.Logf("%d items in %d batches, at most %d in one", writers*each, d.batches, d.maxBatch)
}

// TestPrepareOrder: items are committed in the order their prepare calls
// ran, and one whose prepare fails is not queued.
func TestPrepareOrder(t *testing.T) {
	var mu sync.Mutex
	var order, committed []int
	next := 0
	q := &Queue[*req]{Commit: func(batch []*req) {
		mu.Lock()
		defer mu.Unlock()
		for _, r := range batch {
			committed = append(committed, r.n)
		}
	}}
	errOdd := errors.New("odd")
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				r := &req{}
				err := q.Do(r, func() error {
					mu.Lock()
					defer mu.Unlock()
					next++
					if next%2 == 1 {
						return errOdd
					}
					r.n = next
					order = append(order, next)
					return nil
				})
				if err != nil && err != errOdd {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	if len(committed) != 400 || len(order) != 400 {
		t.Fatalf("%d committed, %d prepared; want 400", len(committed), len(order))
	}
	for i := range order {
		if committed[i] != order[i] {
			t.Fatalf("committed[%d] = %d, prepared %d", i, committed[i], order[i])
		}
	}
}

// TestAsync: an item queued behind a leader is committed by that leader's
// next round, with nobody waiting for it, and Flush waits for what is
// queued.
func TestAsync(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{}, 1)
	d := &disk{t: t, seen: map[*req]bool{}}
	q := &Queue[*req]{Commit: func(batch []*req) {
		select {
		case started <- struct{}{}:
			<-release // the first batch waits for the test
		default:
		}
		d.commit(batch)
	}}
	first := &req{n: 1}
	done := make(chan struct{})
	go func() { q.Do(first, nil); close(done) }()
	<-started
	async := &req{n: 2}
	if queued, err := q.Async(async, nil); !queued || err != nil {
		t.Fatalf("Async with a leader at work: queued %v, %v", queued, err)
	}
	close(release)
	<-done
	q.Flush()
	if !first.synced.Load() || !async.synced.Load() {
		t.Fatalf("synced: first %v, async %v", first.synced.Load(), async.synced.Load())
	}
	// Without a leader, Async commits at once.
	alone := &req{n: 3}
	if queued, err := q.Async(alone, nil); queued || err != nil || !alone.synced.Load() {
		t.Fatalf("Async without a leader: queued %v, %v, synced %v", queued, err, alone.synced.Load())
	}
}

// TestAsyncLeftAlone: the leader goes on while only asynchronous items are
// queued, so that none is left behind once every writer has returned.
func TestAsyncLeftAlone(t *testing.T) {
	d := &disk{t: t, pause: 50 * time.Microsecond, seen: map[*req]bool{}}
	q := &Queue[*req]{Commit: d.commit}
	var all []*req
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 100 {
				r := &req{n: w*100 + i}
				mu.Lock()
				all = append(all, r)
				mu.Unlock()
				if i%2 == 0 {
					q.Do(r, nil)
				} else {
					q.Async(r, nil)
				}
			}
		}()
	}
	wg.Wait()
	for _, r := range all {
		if !r.synced.Load() {
			t.Fatalf("item %d left in the queue", r.n)
		}
	}
}

// TestGatherBounded: a leader waiting for its batch to fill gives up
// after half the last Commit, so a lone writer is not held up long.
func TestGatherBounded(t *testing.T) {
	d := &disk{t: t, pause: time.Millisecond, seen: map[*req]bool{}}
	q := &Queue[*req]{Commit: d.commit}
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			q.Do(&req{n: w}, nil)
		}()
	}
	wg.Wait()
	start := time.Now()
	for i := range 20 {
		q.Do(&req{n: 100 + i}, nil)
	}
	if took := time.Since(start); took > 20*(time.Millisecond+MaxGather)+time.Second {
		t.Errorf("20 lone commits took %v", took)
	}
}
