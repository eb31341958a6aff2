package imap

import (
	"math/rand/v2"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mailsys/mailsys/userdata"
)

// TestViewModel drives a view with random additions, removals, flag
// changes and polls (with and without expunges allowed) and checks it
// against a client that applies the responses it is sent to a plain list
// of UIDs: the view's numbering must always be the client's, and a full
// poll must leave the client with the server's UIDs.
func TestViewModel(t *testing.T) {
	for seed := range uint64(300) {
		r := rand.New(rand.NewPCG(seed, 1))
		mb := &mailbox{views: map[*view]struct{}{}}
		v := &view{mb: mb, notify: make(chan struct{}, 1)}
		next := userdata.UID(1)
		for range r.IntN(5) {
			mb.uids = append(mb.uids, next)
			next++
		}
		mb.views[v] = struct{}{}
		client := slices.Clone(mb.uids)
		fail := func(step int, format string, args ...any) {
			t.Helper()
			t.Fatalf("seed %d step %d: "+format+" (client %v, server %v, gone %v, added %v)",
				append(append([]any{seed, step}, args...), client, mb.uids, v.gone, v.added)...)
		}
		check := func(step int) {
			t.Helper()
			if v.count() != uint32(len(client)) {
				fail(step, "count %d, want %d", v.count(), len(client))
			}
			if len(client) > 0 {
				var walked []userdata.UID
				v.walk(1, uint32(len(client)), func(_ uint32, uid userdata.UID) bool { walked = append(walked, uid); return true })
				if !slices.Equal(walked, client) {
					fail(step, "walk gives %v", walked)
				}
				lo := uint32(1 + r.IntN(len(client)))
				v.walk(lo, lo, func(_ uint32, uid userdata.UID) bool {
					if uid != client[lo-1] {
						fail(step, "walk(%d) gives %d", lo, uid)
					}
					return false
				})
			}
			for i, uid := range client {
				if got := v.seqOf(uid); got != uint32(i+1) {
					fail(step, "seqOf(%d) = %d, want %d", uid, got, i+1)
				}
				if got := v.firstFrom(uid); got != uint32(i+1) {
					fail(step, "firstFrom(%d) = %d, want %d", uid, got, i+1)
				}
			}
		}
		deliver := func(step int, allowExpunge bool) {
			t.Helper()
			out, _ := v.take(allowExpunge)
			for _, resp := range out {
				switch resp.kind {
				case updateExpunge:
					if !allowExpunge || resp.seq == 0 || int(resp.seq) > len(client) {
						fail(step, "EXPUNGE %d", resp.seq)
					}
					client = slices.Delete(client, int(resp.seq-1), int(resp.seq))
				case updateExists:
					if int(resp.count) < len(client) {
						fail(step, "EXISTS %d", resp.count)
					}
					// The new messages are the server's (or gone) UIDs
					// above the client's last, in order.
					last := userdata.UID(0)
					if len(client) > 0 {
						last = client[len(client)-1]
					}
					cand := append(slices.Clone(mb.uids), v.gone...)
					slices.Sort(cand)
					for _, uid := range cand {
						if uid > last && len(client) < int(resp.count) {
							client = append(client, uid)
						}
					}
					if len(client) != int(resp.count) {
						fail(step, "EXISTS %d, but only %d messages", resp.count, len(client))
					}
				case updateFlags:
					if resp.seq == 0 || int(resp.seq) > len(client) || client[resp.seq-1] != resp.uid {
						fail(step, "FETCH %d (UID %d)", resp.seq, resp.uid)
					}
				}
			}
		}
		for step := range 300 {
			switch op := r.IntN(10); {
			case op < 3:
				ev := userdata.FolderEvent{}
				for range 1 + r.IntN(3) {
					ev.Added = append(ev.Added, next)
					next++
				}
				mb.apply(ev)
			case op < 5 && len(mb.uids) > 0:
				ev := userdata.FolderEvent{}
				for _, uid := range mb.uids {
					if r.IntN(3) == 0 {
						ev.Removed = append(ev.Removed, uid)
					}
				}
				mb.apply(ev)
			case op < 6 && len(mb.uids) > 0:
				uid := mb.uids[r.IntN(len(mb.uids))]
				mb.apply(userdata.FolderEvent{Changed: []userdata.Message{{UID: uid, Flags: userdata.FlagSeen}}})
			default:
				deliver(step, r.IntN(2) == 0)
			}
			check(step)
		}
		deliver(-1, true)
		check(-1)
		if !slices.Equal(client, mb.uids) {
			fail(-1, "after a full poll the client is not the server")
		}
	}
}

// TestViewOverflow: a view whose client reads none of its updates is
// dropped once its queue passes maxQueue: it leaves the mailbox, the
// claim on new messages passes on, its hold on an expunged body ends, and
// its connection is closed (overflow runs).
func TestViewOverflow(t *testing.T) {
	mb := &mailbox{views: map[*view]struct{}{}}
	closed := make(chan struct{})
	stuck := &view{mb: mb, notify: make(chan struct{}, 1), overflow: func() { close(closed) }}
	reader := &view{mb: mb, notify: make(chan struct{}, 1)}
	mb.views[stuck], mb.views[reader] = struct{}{}, struct{}{}
	mb.claimer = stuck
	mb.uids = []userdata.UID{1}
	var holds, ended atomic.Int32
	mb.apply(userdata.FolderEvent{Removed: []userdata.UID{1}, Hold: func() func() {
		holds.Add(1)
		return func() { ended.Add(1) }
	}})
	uid := userdata.UID(2)
	for range maxQueue {
		mb.apply(userdata.FolderEvent{Added: []userdata.UID{uid}})
		uid++
		_, done := reader.take(true)
		for _, d := range done {
			d()
		}
	}
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("the overflowing view's connection was not closed")
	}
	if _, ok := mb.views[stuck]; ok {
		t.Error("the overflowing view is still in the mailbox")
	}
	if mb.claimer != reader {
		t.Errorf("the claim went to %p, want the remaining read-write view %p", mb.claimer, reader)
	}
	if len(stuck.queue) != 0 {
		t.Errorf("the dropped view still queues %d updates", len(stuck.queue))
	}
	if holds.Load() != 2 || ended.Load() != 2 {
		t.Errorf("%d holds taken, %d ended; want both views' holds ended", holds.Load(), ended.Load())
	}
}
