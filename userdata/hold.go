package userdata

import (
	"context"
	"sync"

	"github.com/mailsys/mailsys/msstore"
)

// bodyHold defers the release of the bodies an expunge dropped until every
// watcher that asked (FolderEvent.Hold) is done with them.
type bodyHold struct {
	release func(context.Context, []msstore.Ref)
	ctx     context.Context
	refs    []msstore.Ref

	mu       sync.Mutex
	n        int // the expunge itself, plus each hold not yet done
	released bool
}

// newHold returns the hold of an expunge that dropped refs, which release
// releases after the expunge's own done and that of every hold.
func newHold(ctx context.Context, refs []msstore.Ref, release func(context.Context, []msstore.Ref)) *bodyHold {
	return &bodyHold{release: release, ctx: context.WithoutCancel(ctx), refs: refs, n: 1}
}

// hold is FolderEvent.Hold.
func (h *bodyHold) hold() (done func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.released {
		return func() {} // called after the event: too late to hold anything
	}
	h.n++
	var once sync.Once
	return func() { once.Do(h.done) }
}

// done ends one hold, releasing the bodies after the last.
func (h *bodyHold) done() {
	h.mu.Lock()
	h.n--
	last := h.n == 0
	if last {
		h.released = true
	}
	h.mu.Unlock()
	if last {
		h.release(h.ctx, h.refs)
	}
}
