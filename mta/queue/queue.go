package queue

import (
	"bytes"
	"container/heap"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/mailsys/mailsys/internal/fsutil"
	"github.com/mailsys/mailsys/mta/mtasts"
	"github.com/mailsys/mailsys/mta/resolve"
)

// Errors.
var (
	// ErrClosed is returned by calls after Close.
	ErrClosed = errors.New("queue: closed")
	// ErrNotFound is returned for an ID the queue does not hold.
	ErrNotFound = errors.New("queue: no such message")
	// ErrInvalid wraps the reason a Message is refused.
	ErrInvalid = errors.New("queue: invalid message")
)

// Queue is the outbound mail queue: it holds messages for recipients of
// other domains durably, sends them to their domains' MX hosts (or a
// configured route) with the retries, limits and TLS policies of Config,
// and bounces what cannot be delivered.
//
// Each recipient has its own state, so a message to five domains can be
// done for three and deferred for two. Recipients of one message and one
// destination go in one SMTP transaction; messages to one destination
// share its connections. A destination's mail waits only for that
// destination's workers (Config.PerDestination of Config.Concurrency),
// and one that keeps failing is marked dead for a while rather than
// trying every message, so mail delayed never holds up mail ready.
//
// A Queue is safe for concurrent use.
type Queue struct {
	cfg Config
	log *slog.Logger
	st  *store
	res resolve.Resolver
	sts *mtasts.Cache

	ctx    context.Context // of deliveries: Close cancels it
	cancel context.CancelFunc
	wg     sync.WaitGroup // the dispatcher and workers
	wake   chan struct{}  // to the dispatcher: something changed

	mu       sync.Mutex
	closed   bool
	entries  map[string]*entry
	adding   map[string]bool // ids being queued by Enqueue
	dests    map[string]*dest
	pending  map[*dest]bool // destinations with jobs ready
	waiting  jobHeap        // jobs not yet due
	running  int            // workers
	kept     int64          // bytes of the bodies kept in memory (entry.body)
	shutdown chan struct{}
}

// entry is a queued message in memory.
type entry struct {
	id      string
	m       *stored
	rcpts   []rcptState
	held    bool
	deleted bool // by Delete: gone, what an attempt in progress finds is dropped
	stopped bool // by Delete with a bounce: tried no more, reported, then gone
	busy    int  // jobs of it being tried
	// reporting is set while a goroutine sends its notifications.
	reporting bool
	// body, if not nil, is the body as queued, kept in memory from
	// Enqueue to the end of its first attempts (within keepMax bytes for
	// the queue), so that they do not read it back from the database.
	body   []byte
	parked []*job // jobs set aside while it is held
}

// job is some recipients of an entry for one destination, tried
// together.
type job struct {
	e     *entry
	dest  string
	route *Route // nil for the destination's MX hosts
	rcpts []int
	due   time.Time
	force bool // Retry: tried even if the destination is dead
	index int  // in the heap, -1 when not in it
}

// dest is a destination: a domain's MX hosts, or a route.
type dest struct {
	name     string
	ready    []*job
	active   int // workers
	failures int // connection failures in a row
	lastFail time.Time
	dead     time.Time
	lastErr  string
	more     chan struct{} // closed when a job is made ready
}

// Open opens (or creates) the queue in cfg.Dir, loads the messages it
// holds and starts delivering them. It returns the error of
// cfg.Validate, if any.
func Open(ctx context.Context, cfg Config) (*Queue, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	log := cfg.Logger.With("component", "queue")
	if err := os.MkdirAll(cfg.Dir, fsutil.DirMode); err != nil {
		return nil, fmt.Errorf("queue: %w", err)
	}
	fsutil.TightenLog(log, cfg.Dir)
	res := cfg.Resolver
	if res == nil {
		sys, err := resolve.System()
		if err != nil {
			return nil, fmt.Errorf("queue: no Resolver, and the system's: %w", err)
		}
		res = sys
	}
	st, err := openStore(filepath.Join(cfg.Dir, "db"), log)
	if err != nil {
		return nil, err
	}
	q := &Queue{cfg: cfg, log: log, st: st, res: res, wake: make(chan struct{}, 1),
		entries: map[string]*entry{}, adding: map[string]bool{}, dests: map[string]*dest{}, pending: map[*dest]bool{}, shutdown: make(chan struct{})}
	if !cfg.DisableSTS {
		f := cfg.STSFetcher
		if f == nil {
			f = mtasts.HTTPSFetcher{Client: httpsClient(cfg.TLS)}
		}
		if q.sts, err = mtasts.NewCache(res, f, filepath.Join(cfg.Dir, "mta-sts.json"), log); err != nil {
			st.close()
			return nil, fmt.Errorf("queue: %w", err)
		}
	}
	msgs, err := st.load()
	if err != nil {
		st.close()
		return nil, err
	}
	if _, err := st.forget(time.Now().Add(-cfg.Remember)); err != nil {
		log.Warn("old message ids not forgotten", "err", err)
	}
	q.ctx, q.cancel = context.WithCancel(context.Background())
	q.mu.Lock()
	for _, l := range msgs {
		e := &entry{id: l.id, m: &l.m, rcpts: l.rcpts, held: l.held}
		q.entries[e.id] = e
		q.schedule(e, nil)
	}
	q.mu.Unlock()
	if len(msgs) > 0 {
		log.Info("queue loaded", "messages", len(msgs))
	}
	q.wg.Add(1)
	go q.dispatch()
	return q, nil
}

// Close stops delivering: attempts in progress are cut short (their
// recipients stay as they were, and are tried again at the next Open),
// and the database is closed. A second call returns ErrClosed.
func (q *Queue) Close() error {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return ErrClosed
	}
	q.closed = true
	close(q.shutdown)
	q.mu.Unlock()
	q.cancel()
	q.wg.Wait()
	return q.st.close()
}

// keepMax bounds the bytes of the bodies the queue keeps in memory for
// their first attempts.
const keepMax = 64 << 20

// maxID bounds a Message's ID.
const maxID = 128

func (m *Message) validate() error {
	var errs []error
	if m.ID == "" || len(m.ID) > maxID || strings.ContainsFunc(m.ID, func(r rune) bool { return r <= ' ' || r >= 0x7f || r == '/' }) {
		errs = append(errs, fmt.Errorf("%w: ID %q is not 1 to %d printable ASCII characters without '/'", ErrInvalid, m.ID, maxID))
	}
	if len(m.Rcpts) == 0 {
		errs = append(errs, fmt.Errorf("%w: no recipients", ErrInvalid))
	}
	if len(m.Rcpts) > 1<<16-1 {
		errs = append(errs, fmt.Errorf("%w: %d recipients", ErrInvalid, len(m.Rcpts)))
	}
	seen := map[string]bool{}
	for _, r := range m.Rcpts {
		_, domain, ok := strings.Cut(r.Addr, "@")
		if !ok || domain == "" || strings.ContainsAny(r.Addr, " \t\r\n<>") {
			errs = append(errs, fmt.Errorf("%w: recipient %q", ErrInvalid, r.Addr))
		}
		if k := strings.ToLower(r.Addr); seen[k] {
			errs = append(errs, fmt.Errorf("%w: recipient %q twice", ErrInvalid, r.Addr))
		} else {
			seen[k] = true
		}
	}
	if strings.ContainsAny(m.From, " \t\r\n<>") {
		errs = append(errs, fmt.Errorf("%w: sender %q", ErrInvalid, m.From))
	}
	if m.Ret != "" && m.Ret != "FULL" && m.Ret != "HDRS" {
		errs = append(errs, fmt.Errorf("%w: Ret %q", ErrInvalid, m.Ret))
	}
	return errors.Join(errs...)
}

// Enqueue queues m with its body, the message as it is to be sent
// (header and body, CRLF line ends), and returns once it is durable. A
// message whose ID the queue holds, or remembers (Config.Remember), is
// not queued again: Enqueue returns nil. With a Signer, the message is
// signed first.
func (q *Queue) Enqueue(ctx context.Context, m Message, body io.Reader) error {
	if err := m.validate(); err != nil {
		return err
	}
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return ErrClosed
	}
	if q.entries[m.ID] != nil || q.adding[m.ID] {
		q.mu.Unlock()
		return nil
	}
	q.adding[m.ID] = true
	q.mu.Unlock()
	defer func() {
		q.mu.Lock()
		delete(q.adding, m.ID)
		q.mu.Unlock()
	}()
	if dup, err := q.st.has(m.ID); err != nil || dup {
		return err
	}
	b, err := io.ReadAll(body)
	if err != nil {
		return fmt.Errorf("queue: reading the body of %s: %w", m.ID, err)
	}
	s := &stored{From: m.From, EnvID: m.EnvID, Ret: m.Ret, Received: m.Received, Size: int64(len(b)), Rcpts: m.Rcpts}
	if s.Received.IsZero() {
		s.Received = time.Now()
	}
	s.EightBit, s.UTF8 = needs(m, b)
	if q.cfg.Signer != nil {
		if s.Sig, err = q.cfg.Signer.Sign(ctx, bytes.NewReader(b)); err != nil {
			return fmt.Errorf("queue: signing %s: %w", m.ID, err)
		}
	}
	rcpts := make([]rcptState, len(m.Rcpts))
	if err := q.st.put(m.ID, s, b, rcpts); err != nil {
		return err
	}
	e := &entry{id: m.ID, m: s, rcpts: rcpts}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return nil // durable: the next Open sends it
	}
	if q.kept+int64(len(b)) <= keepMax {
		e.body, q.kept = b, q.kept+int64(len(b))
	}
	q.entries[e.id] = e
	q.schedule(e, nil)
	q.log.Info("queued", "id", m.ID, "from", reversePath(m.From), "rcpts", len(m.Rcpts), "size", len(b))
	return nil
}

// needs reports whether a message needs 8BITMIME (8-bit bytes in its
// body) and SMTPUTF8 (non-ASCII in an address or in its header).
func needs(m Message, b []byte) (eightBit, utf8 bool) {
	nonASCII := func(s string) bool { return strings.ContainsFunc(s, func(r rune) bool { return r >= 0x80 }) }
	utf8 = nonASCII(m.From)
	for _, r := range m.Rcpts {
		utf8 = utf8 || nonASCII(r.Addr)
	}
	if i := slices.IndexFunc(b, func(c byte) bool { return c >= 0x80 }); i >= 0 {
		header := bytes.Index(b, []byte("\r\n\r\n"))
		eightBit, utf8 = true, utf8 || header < 0 || i < header
	}
	return eightBit, utf8
}

// destOf returns the destination of a recipient: its route's, or its
// domain's.
func (q *Queue) destOf(addr string) (string, *Route) {
	_, domain, _ := strings.Cut(addr, "@")
	domain = strings.ToLower(strings.TrimSuffix(domain, "."))
	if r, ok := q.cfg.Transports[domain]; ok {
		return "[" + r.Addr + "]", &r
	}
	if sh := q.cfg.SmartHost; sh != nil {
		if len(q.cfg.SmartHostDomains) == 0 || containsFold(q.cfg.SmartHostDomains, domain) {
			return "[" + sh.Addr + "]", sh
		}
	}
	return domain, nil
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

// schedule makes jobs of e's recipients that are not final and are in
// none (only, nil: all of them), grouped by destination and due time.
// Called with q.mu held.
func (q *Queue) schedule(e *entry, only []int) {
	if only == nil {
		for i := range e.rcpts {
			only = append(only, i)
		}
	}
	type key struct {
		dest string
		due  time.Time
	}
	jobs := map[key]*job{}
	var order []*job
	for _, i := range only {
		r := &e.rcpts[i]
		if r.State.final() {
			continue
		}
		name, route := q.destOf(e.m.Rcpts[i].Addr)
		k := key{name, r.Next}
		j := jobs[k]
		if j == nil {
			j = &job{e: e, dest: name, route: route, due: r.Next, index: -1}
			jobs[k] = j
			order = append(order, j)
		}
		j.rcpts = append(j.rcpts, i)
	}
	for _, j := range order {
		q.add(j)
	}
	q.notify(e)
}

// add puts j where it waits: aside if its message is held, in the heap
// if not due, else ready at its destination. Called with q.mu held.
func (q *Queue) add(j *job) {
	switch {
	case j.e.deleted, j.e.stopped:
	case j.e.held:
		j.e.parked = append(j.e.parked, j)
	case j.due.After(time.Now()):
		heap.Push(&q.waiting, j)
		q.poke()
	default:
		d := q.dest(j.dest)
		d.ready = append(d.ready, j)
		q.pending[d] = true
		close(d.more)
		d.more = make(chan struct{})
		q.poke()
	}
}

func (q *Queue) dest(name string) *dest {
	d := q.dests[name]
	if d == nil {
		d = &dest{name: name, more: make(chan struct{})}
		q.dests[name] = d
	}
	return d
}

// poke wakes the dispatcher.
func (q *Queue) poke() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// dispatch moves jobs from the heap to their destinations when due, and
// starts workers for destinations with jobs ready, within the limits.
func (q *Queue) dispatch() {
	defer q.wg.Done()
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	sweep := time.Now()
	for {
		q.mu.Lock()
		now := time.Now()
		for len(q.waiting) > 0 && !q.waiting[0].due.After(now) {
			j := heap.Pop(&q.waiting).(*job)
			j.due = now
			q.add(j)
		}
		q.startWorkers(now)
		wait := time.Hour
		if len(q.waiting) > 0 {
			wait = q.waiting[0].due.Sub(now)
		}
		q.mu.Unlock()
		if now.Sub(sweep) > time.Hour {
			sweep = now
			q.mu.Lock()
			for _, d := range q.dests {
				q.forgetDest(d, now)
			}
			q.mu.Unlock()
			if n, err := q.st.forget(now.Add(-q.cfg.Remember)); err != nil {
				q.log.Warn("old message ids not forgotten", "err", err)
			} else if n > 0 {
				q.log.Debug("forgot old message ids", "count", n)
			}
		}
		t.Reset(max(wait, time.Millisecond))
		select {
		case <-q.shutdown:
			return
		case <-q.wake:
		case <-t.C:
		}
	}
}

// startWorkers starts a worker for each destination with jobs ready and
// room under its limit and the global one; a dead destination's jobs are
// deferred without a try. Called with q.mu held.
func (q *Queue) startWorkers(now time.Time) {
	for d := range q.pending {
		if len(d.ready) > 0 && d.dead.After(now) {
			kept := d.ready[:0]
			for _, j := range d.ready {
				if j.force {
					kept = append(kept, j)
					continue
				}
				q.deferDead(j, d, now)
			}
			clear(d.ready[len(kept):])
			d.ready = kept
		}
		for len(d.ready) > d.active && d.active < q.cfg.PerDestination && q.running < q.cfg.Concurrency {
			d.active++
			q.running++
			q.wg.Add(1)
			go q.worker(d)
		}
		if len(d.ready) == 0 {
			delete(q.pending, d)
			q.forgetDest(d, now)
		}
	}
}

// forgetDest drops d if nothing is ready or running there, and it is
// not dead nor has failed in the last DeadFor. Called with q.mu held.
func (q *Queue) forgetDest(d *dest, now time.Time) {
	if len(d.ready) == 0 && d.active == 0 && !d.dead.After(now) && now.Sub(d.lastFail) > q.cfg.DeadFor {
		delete(q.dests, d.name)
	}
}

// deferDead defers j's recipients to when its destination may be tried
// again, without counting an attempt. Called with q.mu held.
func (q *Queue) deferDead(j *job, d *dest, now time.Time) {
	next := d.dead.Add(q.jitter(q.cfg.RetryFirst / 10))
	for _, i := range j.rcpts {
		r := &j.e.rcpts[i]
		r.State = Deferred
		if next.After(r.Next) {
			r.Next = next
		}
		if r.Reply == "" {
			r.Reply = "destination not answering: " + d.lastErr
		}
	}
	j.due = next
	// In memory only: after a restart the destination is tried again.
	heap.Push(&q.waiting, j)
}

// jitter returns d moved by up to ±Jitter of itself.
func (q *Queue) jitter(d time.Duration) time.Duration {
	f := 1 + q.cfg.Jitter*(2*rand.Float64()-1)
	return time.Duration(float64(d) * f)
}

// backoff is the delay after a recipient's attempt-th failed attempt.
func (q *Queue) backoff(attempt int) time.Duration {
	d := q.cfg.RetryFirst
	for i := 1; i < attempt && d < q.cfg.RetryMax; i++ {
		d *= 2
	}
	return q.jitter(min(d, q.cfg.RetryMax))
}

// take returns the next job ready at d for a worker, or nil. Called with
// q.mu held.
func (q *Queue) take(d *dest) *job {
	for len(d.ready) > 0 {
		j := d.ready[0]
		d.ready[0] = nil
		d.ready = d.ready[1:]
		switch {
		case j.e.deleted, j.e.stopped:
			continue
		case j.e.held:
			j.e.parked = append(j.e.parked, j)
			continue
		}
		j.e.busy++
		return j
	}
	return nil
}

// linger is how long a worker with an open connection waits for another
// message to its destination before it quits.
const linger = time.Second

// worker sends d's ready jobs, one after another over connections it
// keeps open, until there are none.
func (q *Queue) worker(d *dest) {
	defer q.wg.Done()
	var c *conn
	defer func() {
		if c != nil {
			c.quit()
		}
	}()
	for {
		q.mu.Lock()
		j := q.take(d)
		for j != nil && !j.force && d.dead.After(time.Now()) {
			// Marked dead while its jobs waited: they wait for it.
			j.e.busy--
			q.deferDead(j, d, time.Now())
			j = q.take(d)
		}
		if j == nil && c != nil {
			more := d.more
			q.mu.Unlock()
			t := time.NewTimer(linger)
			select {
			case <-more:
			case <-t.C:
			case <-q.shutdown:
			}
			t.Stop()
			q.mu.Lock()
			j = q.take(d)
		}
		if j == nil || q.closed {
			if j != nil {
				j.e.busy--
			}
			d.active--
			q.running--
			q.forgetDest(d, time.Now())
			q.poke()
			q.mu.Unlock()
			return
		}
		q.mu.Unlock()
		c = q.attempt(d, j, c)
	}
}

// jobHeap orders jobs by due time.
type jobHeap []*job

func (h jobHeap) Len() int           { return len(h) }
func (h jobHeap) Less(i, k int) bool { return h[i].due.Before(h[k].due) }
func (h jobHeap) Swap(i, k int) {
	h[i], h[k] = h[k], h[i]
	h[i].index, h[k].index = i, k
}
func (h *jobHeap) Push(x any) {
	j := x.(*job)
	j.index = len(*h)
	*h = append(*h, j)
}
func (h *jobHeap) Pop() any {
	old := *h
	j := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	j.index = -1
	return j
}

// reversePath is how the logs show an envelope sender: "<>" for the null
// sender.
func reversePath(from string) string {
	if from == "" {
		return "<>"
	}
	return from
}
