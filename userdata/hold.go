package userdata

import (
	"context"
	"sync"

	"github.com/mailsys/mailsys/msstore"
)

// bodyHold defers the release of the bodies an expunge dropped until every
// watcher that asked (FolderEvent.Hold) is done with them.
type bodyHold struct {
	d    *DB
	ctx  context.Context
	refs []msstore.Ref

	mu       sync.Mutex
	n        int // the expunge itself, plus each hold not yet done
	released bool
}

func (d *DB) newHold(ctx context.Context, refs []msstore.Ref) *bodyHold {
	return &bodyHold{d: d, ctx: context.WithoutCancel(ctx), refs: refs, n: 1}
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
		h.d.releaseBodies(h.ctx, h.refs)
	}
}
