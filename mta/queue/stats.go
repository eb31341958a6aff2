package queue

import "time"

// Stats is a snapshot of what a Queue holds, for monitoring: a metrics
// collector calls Stats when it is scraped, so the queue keeps no
// counters of its own.
type Stats struct {
	// Messages is the number of messages queued, held ones included.
	Messages int
	// Held is the number of them on hold (Hold).
	Held int
	// Oldest is when the oldest queued message was received; zero when
	// the queue is empty.
	Oldest time.Time
	// KeptBytes is the memory the bodies kept for their first attempts
	// take.
	KeptBytes int64
}

// Stats returns the queue's current figures. It takes the queue's lock
// for one pass over the messages in memory and reads no disk; it may be
// called concurrently with everything else, and after Close (it then
// reports an empty queue).
func (q *Queue) Stats() Stats {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return Stats{}
	}
	st := Stats{Messages: len(q.entries), KeptBytes: q.kept}
	for _, e := range q.entries {
		if e.held {
			st.Held++
		}
		if st.Oldest.IsZero() || e.m.Received.Before(st.Oldest) {
			st.Oldest = e.m.Received
		}
	}
	return st
}
