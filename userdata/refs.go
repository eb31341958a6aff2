package userdata

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/mailsys/mailsys/msstore"
)

// RefRewriter is an optional capability of a UserDB: rewriting the body
// Refs of its message entries in place, for a repair of the body store (a
// cluster's, when an MS node is lost for good and the bodies it held get a
// new copy elsewhere).
//
// A rewrite changes nothing an IMAP or POP3 client can see: an entry keeps
// its UID, MODSEQ, flags, size and dates, no change is logged, no MODSEQ
// is taken, no watcher is told, and usage is unchanged. A new Ref must
// name the same body, with the same Size and Sum; the body's reference
// counts are the caller's to set (a new copy must hold one reference for
// every entry rewritten to it, retained before the rewrite, as for Copy).
type RefRewriter interface {
	UserDB
	// RewriteRefs walks every message entry of the database (every user,
	// every folder) in batches of at most RefBatchSize entries, in an
	// order of its own, and calls fn once per batch with the batch's Refs,
	// one per entry, in a slice that fn may change: an element fn sets to
	// another Ref is that entry's new Ref, and elements left as they were
	// are kept. The entries of a batch fn changed are rewritten
	// atomically, after fn returns, if they still hold the Ref fn was
	// given; one that changed meanwhile (expunged, or rewritten by
	// another walk) is left as it is. fn must not keep the slice, nor call
	// back into the database; calls of fn are sequential.
	//
	// RewriteRefs returns the number of entries rewritten. An error of fn
	// ends the walk and is returned (the batches before it stay
	// rewritten), as is a replacement that names another body (a
	// different Size or Sum, or the zero Ref), with ErrInvalid, before
	// anything of its batch is written. Entries added during the walk may
	// or may not be visited; the walk may be repeated, and a walk whose fn
	// keeps every Ref it has already replaced changes nothing the second
	// time.
	RewriteRefs(ctx context.Context, fn func(refs []msstore.Ref) error) (int, error)
}

// RefBatchSize is the most entries a RefRewriter hands fn at once.
const RefBatchSize = 256

var (
	_ RefRewriter = (*DB)(nil)
	_ RefRewriter = (*Memory)(nil)
)

// CheckRefRewrite reports whether the Ref of an entry may go from old to
// new in a RewriteRefs: new names the same body (same Size and Sum) and
// encodes. RefRewriters (and what carries one over a network) call it for
// every replacement.
func CheckRefRewrite(old, new msstore.Ref) error {
	if new.IsZero() || new.Size != old.Size || new.Sum != old.Sum {
		return fmt.Errorf("%w: ref %v cannot replace %v: not the same body", ErrInvalid, new, old)
	}
	if _, err := new.MarshalBinary(); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return nil
}

// errBatchFull ends the scan of a batch.
var errBatchFull = errors.New("userdata: batch full")

// RewriteRefs implements RefRewriter. Each batch's entries are read from
// the database as it is, and those fn changed are re-read and rewritten
// under their users' locks, in one commit per user of the batch.
func (d *DB) RewriteRefs(ctx context.Context, fn func(refs []msstore.Ref) error) (int, error) {
	done, err := d.enter(ctx)
	if err != nil {
		return 0, err
	}
	defer done()
	lo, hi := []byte{tagMessage}, prefixEnd([]byte{tagMessage})
	total := 0
	var keys [][]byte
	var refs, orig []msstore.Ref
	var m Message
	for {
		if err := ctx.Err(); err != nil {
			return total, err
		}
		keys, refs = keys[:0], refs[:0]
		err := d.scan(lo, hi, func(k, v []byte) error {
			if len(keys) == RefBatchSize {
				return errBatchFull
			}
			if len(k) != 1+8+4+4 {
				return fmt.Errorf("userdata: bad message key %x", k)
			}
			if err := decodeMessage(v, 0, &m); err != nil {
				return fmt.Errorf("userdata: message %x: %w", k, err)
			}
			keys, refs = append(keys, bytes.Clone(k)), append(refs, m.Ref)
			return nil
		})
		if err != nil && !errors.Is(err, errBatchFull) {
			return total, err
		}
		if len(keys) == 0 {
			return total, nil
		}
		orig = append(orig[:0], refs...)
		if err := fn(refs); err != nil {
			return total, err
		}
		n, err := d.rewriteRefs(keys, orig, refs)
		total += n
		if err != nil {
			return total, err
		}
		lo = append(bytes.Clone(keys[len(keys)-1]), 0)
	}
}

// rewriteRefs writes the entries at keys whose Ref went from orig to refs
// (see RewriteRefs).
func (d *DB) rewriteRefs(keys [][]byte, orig, refs []msstore.Ref) (int, error) {
	byUser := map[UserID][]int{}
	for i := range keys {
		if refs[i] == orig[i] {
			continue
		}
		if err := CheckRefRewrite(orig[i], refs[i]); err != nil {
			return 0, err
		}
		u := UserID(binary.BigEndian.Uint64(keys[i][1:]))
		byUser[u] = append(byUser[u], i)
	}
	total := 0
	for _, u := range slices.Sorted(maps.Keys(byUser)) {
		n, err := d.rewriteUserRefs(u, byUser[u], keys, orig, refs)
		total += n
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

func (d *DB) rewriteUserRefs(u UserID, idx []int, keys [][]byte, orig, refs []msstore.Ref) (int, error) {
	lk := d.userLock(u)
	lk.Lock()
	defer lk.Unlock()
	b := d.db.NewBatch()
	defer b.Close()
	var m Message
	var buf []byte
	n := 0
	for _, i := range idx {
		v, err := d.get(keys[i])
		if errors.Is(err, ErrNotFound) {
			continue // expunged meanwhile
		}
		if err != nil {
			return 0, err
		}
		if err := decodeMessage(v, 0, &m); err != nil {
			return 0, fmt.Errorf("userdata: message %x: %w", keys[i], err)
		}
		if m.Ref != orig[i] {
			continue // changed meanwhile
		}
		m.Ref = refs[i]
		if buf, err = encodeMessage(buf[:0], &m); err != nil {
			return 0, err
		}
		b.Set(keys[i], buf, nil)
		n++
	}
	if n == 0 {
		return 0, nil
	}
	if err := d.commit(b); err != nil {
		return 0, err
	}
	return n, nil
}

// memRefPos is the place of a message entry in a Memory: the walk's cursor.
type memRefPos struct {
	user   UserID
	folder FolderID
	uid    UID
}

func (p memRefPos) compare(q memRefPos) int {
	return cmp.Or(cmp.Compare(p.user, q.user), cmp.Compare(p.folder, q.folder), cmp.Compare(p.uid, q.uid))
}

// RewriteRefs implements RefRewriter, in the order of user, folder and
// UID; each batch is taken and written under the Memory's lock.
func (m *Memory) RewriteRefs(ctx context.Context, fn func(refs []msstore.Ref) error) (int, error) {
	done, err := m.enter(ctx)
	if err != nil {
		return 0, err
	}
	defer done()
	total := 0
	after := memRefPos{}
	first := true
	for {
		if err := ctx.Err(); err != nil {
			return total, err
		}
		pos, refs := m.refBatch(after, first)
		if len(pos) == 0 {
			return total, nil
		}
		orig := slices.Clone(refs)
		if err := fn(refs); err != nil {
			return total, err
		}
		n, err := m.rewriteRefs(pos, orig, refs)
		total += n
		if err != nil {
			return total, err
		}
		after, first = pos[len(pos)-1], false
	}
}

// refBatch returns the next RefBatchSize entries after the position after
// (from the first if first), and their Refs.
func (m *Memory) refBatch(after memRefPos, first bool) ([]memRefPos, []msstore.Ref) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	var pos []memRefPos
	var refs []msstore.Ref
	users := slices.Sorted(maps.Keys(m.st.users))
	for _, uid := range users {
		if !first && uid < after.user {
			continue
		}
		u := m.st.users[uid]
		for _, fid := range slices.Sorted(maps.Keys(u.folders)) {
			if !first && (memRefPos{uid, fid, 0}).compare(memRefPos{after.user, after.folder, 0}) < 0 {
				continue
			}
			msgs := u.folders[fid].msgs
			if !first && uid == after.user && fid == after.folder {
				i, found := slices.BinarySearchFunc(msgs, after.uid, func(m *Message, v UID) int { return cmp.Compare(m.UID, v) })
				if found {
					i++
				}
				msgs = msgs[i:]
			}
			for _, msg := range msgs {
				pos, refs = append(pos, memRefPos{uid, fid, msg.UID}), append(refs, msg.Ref)
				if len(pos) == RefBatchSize {
					return pos, refs
				}
			}
		}
	}
	return pos, refs
}

func (m *Memory) rewriteRefs(pos []memRefPos, orig, refs []msstore.Ref) (int, error) {
	for i := range pos {
		if refs[i] != orig[i] {
			if err := CheckRefRewrite(orig[i], refs[i]); err != nil {
				return 0, err
			}
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for i, p := range pos {
		if refs[i] == orig[i] {
			continue
		}
		_, f, err := m.st.folder(p.user, p.folder)
		if err != nil {
			continue // gone meanwhile
		}
		j, found := slices.BinarySearchFunc(f.msgs, p.uid, func(msg *Message, uid UID) int { return cmp.Compare(msg.UID, uid) })
		if !found || f.msgs[j].Ref != orig[i] {
			continue
		}
		// A stored *Message never changes: store a new one.
		c := cloneMessage(f.msgs[j])
		c.Ref = refs[i]
		f.msgs[j] = &c
		n++
	}
	return n, nil
}
