package queue

import (
	"container/heap"
	"context"
	"slices"
	"strings"
	"time"
)

// Entry is a queued message as List shows it.
type Entry struct {
	ID       string
	From     string
	Received time.Time
	Size     int64
	Held     bool
	Rcpts    []RcptStatus
}

// RcptStatus is where one recipient of a queued message is.
type RcptStatus struct {
	Addr        string
	State       State
	Attempts    int
	Next        time.Time // of the next attempt, for a queued or deferred one
	LastAttempt time.Time
	LastReply   string // the last reply or error, "" before any attempt
	Host        string // that gave it
	Busy        bool   // being tried now
}

// Dir returns the directory the queue keeps its database in.
func (q *Queue) Dir() string { return q.cfg.Dir }

// List returns the queued messages, oldest first.
func (q *Queue) List(ctx context.Context) ([]Entry, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return nil, ErrClosed
	}
	waiting := q.waitingRcpts()
	out := make([]Entry, 0, len(q.entries))
	for _, e := range q.entries {
		out = append(out, entryOf(e, waiting[e]))
	}
	slices.SortFunc(out, func(a, b Entry) int {
		if c := a.Received.Compare(b.Received); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out, nil
}

// Get returns one queued message, or ErrNotFound.
func (q *Queue) Get(ctx context.Context, id string) (Entry, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return Entry{}, ErrClosed
	}
	e := q.entries[id]
	if e == nil {
		return Entry{}, ErrNotFound
	}
	return entryOf(e, q.waitingRcpts()[e]), nil
}

// entryOf is e as List shows it; waiting holds its recipients in a job
// that waits (the others not final are being tried). Called with q.mu
// held.
func entryOf(e *entry, waiting map[int]bool) Entry {
	x := Entry{ID: e.id, From: e.m.From, Received: e.m.Received, Size: e.m.Size, Held: e.held}
	for i, r := range e.rcpts {
		x.Rcpts = append(x.Rcpts, RcptStatus{Addr: e.m.Rcpts[i].Addr, State: r.State, Attempts: r.Attempts, Next: r.Next,
			LastAttempt: r.Last, LastReply: r.Reply, Host: r.Host, Busy: !r.State.final() && !waiting[i] && e.busy > 0})
	}
	return x
}

// waitingRcpts returns, per entry, its recipients in jobs that wait (in
// the heap, ready, or parked), in one pass over the jobs. Called with
// q.mu held.
func (q *Queue) waitingRcpts() map[*entry]map[int]bool {
	out := map[*entry]map[int]bool{}
	note := func(j *job) {
		m := out[j.e]
		if m == nil {
			m = map[int]bool{}
			out[j.e] = m
		}
		for _, i := range j.rcpts {
			m[i] = true
		}
	}
	for _, j := range q.waiting {
		note(j)
	}
	for _, d := range q.dests {
		for _, j := range d.ready {
			note(j)
		}
	}
	for _, e := range q.entries {
		for _, j := range e.parked {
			note(j)
		}
	}
	return out
}

// jobsOf returns e's jobs that wait (in the heap, ready, or parked).
// Called with q.mu held.
func (q *Queue) jobsOf(e *entry) []*job {
	var out []*job
	for _, j := range q.waiting {
		if j.e == e {
			out = append(out, j)
		}
	}
	for _, d := range q.dests {
		for _, j := range d.ready {
			if j.e == e {
				out = append(out, j)
			}
		}
	}
	return append(out, e.parked...)
}

// Retry makes the recipients of id that wait due now, even at a
// destination marked dead. It returns ErrNotFound for an id not queued;
// a held message stays held.
func (q *Queue) Retry(ctx context.Context, id string) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	e, err := q.entry(id)
	if err != nil {
		return err
	}
	now := time.Now()
	for _, j := range q.jobsOf(e) {
		j.force = true
		for _, i := range j.rcpts {
			e.rcpts[i].Next = now
		}
		if j.index >= 0 {
			j.due = now
			heap.Fix(&q.waiting, j.index)
		}
	}
	q.poke()
	return nil
}

// Hold stops id from being tried until Release; an attempt in progress
// finishes. The mark is durable.
func (q *Queue) Hold(ctx context.Context, id string) error {
	return q.setHold(id, true)
}

// Release undoes Hold: the recipients that wait are due now.
func (q *Queue) Release(ctx context.Context, id string) error {
	return q.setHold(id, false)
}

func (q *Queue) setHold(id string, held bool) error {
	q.mu.Lock()
	e, err := q.entry(id)
	if err != nil || e.held == held {
		q.mu.Unlock()
		return err
	}
	q.mu.Unlock()
	if err := q.st.setHold(id, held); err != nil {
		return err
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if e.deleted {
		return ErrNotFound
	}
	e.held = held
	if held {
		for _, j := range q.jobsOf(e) {
			if j.index >= 0 {
				heap.Remove(&q.waiting, j.index)
				e.parked = append(e.parked, j)
			}
			// Ready ones are parked when a worker takes them.
		}
		q.log.Info("held", "id", id)
		return nil
	}
	parked := e.parked
	e.parked = nil
	now := time.Now()
	for _, j := range parked {
		j.due = now
		q.add(j)
	}
	q.log.Info("released", "id", id)
	return nil
}

// Delete takes id out of the queue. With bounce, the sender is told that
// the recipients not yet delivered failed ("5.0.0 Deleted by the
// administrator"), as NOTIFY allows; without it, nobody is told. An
// attempt in progress is not stopped, but its outcome is not recorded.
func (q *Queue) Delete(ctx context.Context, id string, bounce bool) error {
	q.mu.Lock()
	e, err := q.entry(id)
	if err != nil {
		q.mu.Unlock()
		return err
	}
	e.stopped = true
	for _, j := range q.jobsOf(e) {
		if j.index >= 0 {
			heap.Remove(&q.waiting, j.index)
		}
	}
	e.parked = nil
	states := make([]rcptState, len(e.rcpts))
	copy(states, e.rcpts)
	q.mu.Unlock()
	if bounce {
		var idx []int
		for i := range states {
			if !states[i].State.final() {
				states[i].State, states[i].Status = Failed, "5.0.0"
				states[i].Reply = "550 5.0.0 Deleted from the queue by the administrator"
				states[i].Reported = false
				idx = append(idx, i)
			}
		}
		// The notification is sent as any other, then the message goes.
		if err := q.st.setRcpts(id, idx, states, true); err != nil {
			return err
		}
		q.mu.Lock()
		defer q.mu.Unlock()
		for _, i := range idx {
			if !e.rcpts[i].State.final() {
				e.rcpts[i] = states[i]
			}
		}
		q.notify(e)
		q.log.Info("deleted, with a bounce", "id", id)
		return nil
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	e.deleted = true
	q.finish(e)
	q.log.Info("deleted", "id", id)
	return nil
}

// entry returns the entry of id. Called with q.mu held.
func (q *Queue) entry(id string) (*entry, error) {
	if q.closed {
		return nil, ErrClosed
	}
	e := q.entries[id]
	if e == nil || e.deleted || e.stopped {
		return nil, ErrNotFound
	}
	return e, nil
}
