package userdata

import (
	"container/list"
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// PasswordLimiterConfig configures a [PasswordLimiter]. The zero value of
// every field means its default.
type PasswordLimiterConfig struct {
	// MaxChecks is how many password checks may run at once. Zero means
	// runtime.GOMAXPROCS(0): argon2id is CPU-bound, more would only share
	// the processors and hold more memory.
	MaxChecks int
	// MaxMemory is how many bytes of argon2id memory the running checks may
	// hold together. Zero means 512 MiB (eight checks at DefaultArgon2).
	MaxMemory int64
	// MaxWaiting is how many checks may wait, first in first out, behind
	// the running ones; a check that finds the queue full fails at once
	// with ErrBusy. Zero means 4*MaxChecks; negative means no queue: a
	// check that cannot run at once fails.
	MaxWaiting int
	// MaxWait is the longest a check waits in the queue before it fails
	// with ErrBusy. Zero means two seconds; negative means no queue, as a
	// negative MaxWaiting.
	MaxWait time.Duration
}

// PasswordLimiter bounds the password checks (argon2id hashes) that run at
// once, by count and by memory, so that a storm of logins with wrong
// passwords costs a bounded amount of memory and CPU instead of exhausting
// the host: the checks beyond the bounds wait in a short FIFO queue, and
// those beyond the queue fail at once with ErrBusy, a temporary condition.
//
// A check's weight is the memory of the hash it computes (the m parameter
// of the PHC string, in bytes); a weight above MaxMemory counts as
// MaxMemory, so that one huge hash still runs, alone. A check runs when
// fewer than MaxChecks run and its weight fits in what the running ones
// leave of MaxMemory, and no check waits before it.
//
// A PasswordLimiter is safe for concurrent use, and one may be shared by
// several DBs (Config.PasswordLimiter) so that they are bounded together.
type PasswordLimiter struct {
	maxChecks  int
	maxMemory  int64
	maxWaiting int // < 0: no queue
	maxWait    time.Duration

	mu      sync.Mutex
	running int
	used    int64
	queue   list.List // of *limitWaiter, oldest first
	peak    int       // highest running
	peakMem int64     // highest used
	busy    uint64    // checks refused with ErrBusy
}

// limitWaiter is a check in the queue. admitted is set, under the
// limiter's lock, when the check is let in; ready is closed then.
type limitWaiter struct {
	weight   int64
	ready    chan struct{}
	admitted bool
}

// PasswordLimiterStats is a snapshot of a [PasswordLimiter], for metrics and
// tests.
type PasswordLimiterStats struct {
	Running     int    // checks running now
	Waiting     int    // checks in the queue now
	Memory      int64  // bytes the running checks hold
	PeakRunning int    // most checks that ever ran at once
	PeakMemory  int64  // most bytes the running checks ever held at once
	Busy        uint64 // checks refused with ErrBusy so far
}

// Defaults of PasswordLimiterConfig.
const (
	defaultLimiterMemory = 512 << 20
	defaultLimiterWait   = 2 * time.Second
)

// NewPasswordLimiter returns a limiter with cfg's bounds, defaults filled
// in.
func NewPasswordLimiter(cfg PasswordLimiterConfig) *PasswordLimiter {
	l := &PasswordLimiter{maxChecks: cfg.MaxChecks, maxMemory: cfg.MaxMemory, maxWaiting: cfg.MaxWaiting, maxWait: cfg.MaxWait}
	if l.maxChecks <= 0 {
		l.maxChecks = runtime.GOMAXPROCS(0)
	}
	if l.maxMemory <= 0 {
		l.maxMemory = defaultLimiterMemory
	}
	if l.maxWaiting == 0 {
		l.maxWaiting = 4 * l.maxChecks
	}
	switch {
	case l.maxWait == 0:
		l.maxWait = defaultLimiterWait
	case l.maxWait < 0:
		l.maxWaiting = -1
	}
	return l
}

// Acquire admits a password check of weight bytes (see [PasswordLimiter]):
// at once if it can run, otherwise after waiting in the queue. It fails
// with an error wrapping ErrBusy when the queue is full or the check has
// waited MaxWait, and with one wrapping ctx's error when ctx ends first.
// On success the caller runs its check and then calls release, once or
// more: calls after the first do nothing.
func (l *PasswordLimiter) Acquire(ctx context.Context, weight int64) (release func(), err error) {
	return l.acquire(ctx, weight, false)
}

// Wait is Acquire for callers that would rather wait than fail, such as an
// administrator setting a password: it joins the queue however long it is,
// and waits, without MaxWait, until the check is admitted or ctx ends (an
// error wrapping ctx's). It never returns ErrBusy. The checks it queues
// count against MaxWaiting for those that Acquire.
func (l *PasswordLimiter) Wait(ctx context.Context, weight int64) (release func(), err error) {
	return l.acquire(ctx, weight, true)
}

func (l *PasswordLimiter) acquire(ctx context.Context, weight int64, patient bool) (func(), error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("userdata: password check: %w", err)
	}
	weight = min(max(weight, 0), l.maxMemory)
	l.mu.Lock()
	if l.queue.Len() == 0 && l.fitsLocked(weight) {
		l.admitLocked(weight)
		l.mu.Unlock()
		return l.releaser(weight), nil
	}
	if !patient && l.queue.Len() >= l.maxWaiting {
		// maxWaiting < 0 (no queue) lands here too.
		l.busy++
		running, waiting := l.running, l.queue.Len()
		l.mu.Unlock()
		return nil, fmt.Errorf("%w (%d running, %d waiting)", ErrBusy, running, waiting)
	}
	w := &limitWaiter{weight: weight, ready: make(chan struct{})}
	el := l.queue.PushBack(w)
	l.mu.Unlock()

	var expired <-chan time.Time
	if !patient {
		t := time.NewTimer(l.maxWait)
		defer t.Stop()
		expired = t.C
	}
	var err error
	timedOut := false
	select {
	case <-w.ready:
		return l.releaser(weight), nil
	case <-expired:
		timedOut = true
		err = fmt.Errorf("%w (waited %v)", ErrBusy, l.maxWait)
	case <-ctx.Done():
		err = fmt.Errorf("userdata: password check: %w", context.Cause(ctx))
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if w.admitted {
		// Let in while giving up. A check that timed out at that very
		// moment may as well run; one whose ctx ended hands its place on.
		if timedOut {
			return l.releaser(weight), nil
		}
		l.running--
		l.used -= weight
	} else {
		l.queue.Remove(el)
		if timedOut {
			l.busy++
		}
	}
	// The check that left may have been the one holding the others back.
	l.wakeLocked()
	return nil, err
}

// fitsLocked reports whether a check of weight can run now.
func (l *PasswordLimiter) fitsLocked(weight int64) bool {
	return l.running < l.maxChecks && l.used+weight <= l.maxMemory
}

func (l *PasswordLimiter) admitLocked(weight int64) {
	l.running++
	l.used += weight
	l.peak = max(l.peak, l.running)
	l.peakMem = max(l.peakMem, l.used)
}

// wakeLocked admits the waiting checks that fit, oldest first, stopping at
// the first that does not (FIFO: none overtakes another).
func (l *PasswordLimiter) wakeLocked() {
	for el := l.queue.Front(); el != nil; el = l.queue.Front() {
		w := el.Value.(*limitWaiter)
		if !l.fitsLocked(w.weight) {
			return
		}
		l.queue.Remove(el)
		l.admitLocked(w.weight)
		w.admitted = true
		close(w.ready)
	}
}

// releaser returns the idempotent release of an admitted check.
func (l *PasswordLimiter) releaser(weight int64) func() {
	var done atomic.Bool
	return func() {
		if done.Swap(true) {
			return
		}
		l.mu.Lock()
		l.running--
		l.used -= weight
		l.wakeLocked()
		l.mu.Unlock()
	}
}

// Stats returns the limiter's current figures.
func (l *PasswordLimiter) Stats() PasswordLimiterStats {
	l.mu.Lock()
	defer l.mu.Unlock()
	return PasswordLimiterStats{
		Running: l.running, Waiting: l.queue.Len(), Memory: l.used,
		PeakRunning: l.peak, PeakMemory: l.peakMem, Busy: l.busy,
	}
}
