package cluster

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/mailsys/mailsys/msstore"
)

// RefWalker is what Repair needs of the user data: the walk of
// userdata.RefRewriter over every message entry. userdata.DB and
// userdata.Memory have it, so do the gRPC client of a remote UD node
// (cluster/rpc) and Users, over every UD node of the cluster.
type RefWalker interface {
	// RewriteRefs is userdata.RefRewriter's.
	RewriteRefs(ctx context.Context, fn func(refs []msstore.Ref) error) (int, error)
}

// RepairStats reports what a Repair did. Entries are index entries;
// bodies are stored bodies (one body may be named by many entries).
type RepairStats struct {
	Entries   int // index entries seen
	Affected  int // entries with a copy on the lost node, or fewer copies than Replicas
	Copied    int // bodies given a new copy
	Rewritten int // entries rewritten to a Ref naming the new copy
	Lost      int // affected entries whose body has no copy left: nothing to copy from
	Failed    int // affected entries left as they were for now (a copy failed): run Repair again
}

// maxRepairBodies bounds the map of the bodies a Repair copied, shared by
// the entries that name them. Past it the map starts over: a body named
// again after that gets a copy of its own, which is correct (each copy
// counts its own references) and costs only space.
const maxRepairBodies = 1 << 18

// Repair re-creates the copies of bodies lost with MS node lost (its node
// number; 0 for none) and, while s has two replicas, adds a second copy to
// bodies that have one: for every entry of users whose Ref names lost (as
// its first copy or its second) or has fewer copies than s writes, the
// body is copied once from a surviving copy to an MS node chosen by
// weight that holds no copy of it, the new copy is given one reference
// for every entry rewritten to it (Put gives one, Retain the others,
// before the entries are rewritten), and the entries are rewritten to a
// Ref naming the survivor and the new copy, with no change an IMAP client
// can see (userdata.RefRewriter).
//
// Repair first marks lost as lost for good in s: s writes no new body
// there and reads its bodies' other copies without asking it. A body that
// has no copy left is counted in Lost and its entries are kept; one whose
// copy cannot be made now (no node to take it, the survivor unavailable)
// in Failed. The walk is idempotent: an entry already repaired is kept,
// so running Repair again (after a failure, or an interruption) finishes
// the job; a walk interrupted between a copy and the rewrite of its
// entries leaks that copy's references, never a body. Entries changed
// while the walk runs (expunged, copied) are handled by the next walk, or
// leak a reference. Memory is bounded: a batch of entries at a time, and
// a bounded map of the bodies copied.
//
// The new copy's meta names no owners (the body's own meta stays with the
// surviving copy): a store walked to rebuild a lost index finds it under
// a MessageID saying what it copies.
func (s *Storage) Repair(ctx context.Context, users RefWalker, lost uint32) (RepairStats, error) {
	if s.closed.Load() {
		return RepairStats{}, msstore.ErrClosed
	}
	if lost != 0 {
		s.markLost(lost)
	}
	w := &repairWalk{s: s, ctx: ctx, lost: lost, done: map[bodyKey]msstore.Ref{}, failed: map[bodyKey]bool{}}
	n, err := users.RewriteRefs(ctx, w.batch)
	w.st.Rewritten = n
	if err != nil {
		return w.st, fmt.Errorf("cluster: repair of MS node %d: %w", lost, err)
	}
	s.log.Info("repair walk done", "lost", lost, "entries", w.st.Entries, "affected", w.st.Affected,
		"copied", w.st.Copied, "rewritten", w.st.Rewritten, "lost_bodies", w.st.Lost, "failed", w.st.Failed)
	return w.st, nil
}

// bodyKey names a body by the node and id of one copy.
type bodyKey struct {
	node uint32
	id   uint64
}

// repairWalk is one Repair's state.
type repairWalk struct {
	s      *Storage
	ctx    context.Context
	lost   uint32
	st     RepairStats
	done   map[bodyKey]msstore.Ref // body (its survivor) → the Ref naming survivor and new copy
	failed map[bodyKey]bool        // bodies whose copy failed in this walk
}

// use is how the entries of one batch use one new copy.
type use struct {
	entries []int       // indices in the batch
	created bool        // the copy was made in this batch: Put gave one reference
	copy    msstore.Ref // the new copy alone
}

// batch is the RewriteRefs callback.
func (w *repairWalk) batch(refs []msstore.Ref) error {
	orig := append([]msstore.Ref(nil), refs...)
	uses := map[bodyKey]*use{}
	for i, r := range refs {
		w.st.Entries++
		cs, err := copies(r)
		if err != nil {
			w.st.Affected++
			w.st.Lost++
			continue
		}
		live := w.survivors(cs)
		if len(live) >= max(len(cs), w.s.replicas) {
			continue
		}
		w.st.Affected++
		if len(live) == 0 {
			w.st.Lost++
			continue
		}
		src := live[0]
		key := bodyKey{src.Node, src.ID}
		if w.failed[key] {
			w.st.Failed++
			continue
		}
		nr, ok := w.done[key]
		created := false
		if !ok {
			var err error
			nr, err = w.copyBody(src, cs)
			if err != nil {
				if ctx := w.ctx; ctx.Err() != nil {
					return ctx.Err()
				}
				w.s.log.Warn("repair: body not copied", "ref", r, "err", err)
				w.failed[key] = true
				w.st.Failed++
				continue
			}
			if len(w.done) >= maxRepairBodies {
				clear(w.done)
			}
			w.done[key], created = nr, true
			w.st.Copied++
		}
		u := uses[key]
		if u == nil {
			u = &use{created: created, copy: newCopy(nr, src)}
			uses[key] = u
		}
		u.entries = append(u.entries, i)
		refs[i] = nr
	}
	// One reference on each new copy for every entry rewritten to it,
	// before the rewrite.
	for key, u := range uses {
		n := len(u.entries)
		if u.created {
			n--
		}
		if n == 0 {
			continue
		}
		err := w.s.retainCopy(w.ctx, u.copy, n)
		if err == nil {
			continue
		}
		w.s.log.Warn("repair: references not added to a new copy; its entries wait for the next walk", "ref", u.copy, "err", err)
		for _, i := range u.entries {
			refs[i] = orig[i]
		}
		w.st.Failed += len(u.entries)
		delete(w.done, key)
		if w.ctx.Err() != nil {
			return w.ctx.Err()
		}
	}
	return nil
}

// survivors returns the copies among cs whose node is not lost for good.
func (w *repairWalk) survivors(cs []msstore.Ref) []msstore.Ref {
	var live []msstore.Ref
	for _, c := range cs {
		if c.Node == w.lost {
			continue
		}
		if _, err := w.s.node(c.Node, c); isGone(err) {
			continue
		}
		live = append(live, c)
	}
	return live
}

// newCopy returns the copy of nr that is not src.
func newCopy(nr, src msstore.Ref) msstore.Ref {
	if nr.Node == src.Node {
		c, _ := nr.Second()
		return c
	}
	return nr.First()
}

// repairPutTimeout bounds the copy of one body when the walk's context
// has no deadline.
const repairPutTimeout = 5 * time.Minute

// copyBody copies the body of src to a node that holds none of cs, and
// returns the Ref naming src and the new copy: src first if it was the
// first copy (its Ref has the volume and offset), else the new copy.
func (w *repairWalk) copyBody(src msstore.Ref, cs []msstore.Ref) (msstore.Ref, error) {
	ctx := w.ctx
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, repairPutTimeout)
		defer cancel()
	}
	b, err := w.s.openCopy(ctx, src)
	if err != nil {
		return msstore.Ref{}, err
	}
	defer b.Close()
	if b.Size() != src.Size {
		return msstore.Ref{}, fmt.Errorf("%w: %v opens with %d bytes", msstore.ErrCorrupt, src, b.Size())
	}
	reg := w.s.registry()
	var skip []string
	for _, c := range cs {
		if n, ok := reg.ByNum(c.Node); ok {
			skip = append(skip, n.ID)
		}
	}
	meta := msstore.Meta{MessageID: "<repair-copy-of-" + src.String() + ">", Received: time.Now()}
	c, _, err := w.s.putOne(ctx, io.NewSectionReader(b, 0, src.Size), meta, skip)
	if err != nil {
		return msstore.Ref{}, err
	}
	if c.Size != src.Size || c.Sum != src.Sum {
		if err := w.s.releaseCopy(ctx, c, 1); err != nil {
			w.s.log.Warn("repair: a bad copy could not be released", "ref", c, "err", err)
		}
		return msstore.Ref{}, fmt.Errorf("%w: the copy of %v came out as %v", msstore.ErrCorrupt, src, c)
	}
	if src == cs[0] {
		return src.WithCopy(c)
	}
	return c.WithCopy(src)
}

// retainCopy adds n references to one copy.
func (s *Storage) retainCopy(ctx context.Context, c msstore.Ref, n int) error {
	st, err := s.node(c.Node, c)
	if err != nil {
		return err
	}
	return st.Retain(ctx, c, n)
}
