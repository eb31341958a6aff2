package userdata

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"

	"github.com/mailsys/mailsys/msstore"
)

// The Index of a Memory, and its Remover. Each follows the DB method of
// the same name. A change is planned and checked in full before any of it
// is applied, so that a failing call changes nothing.

// each calls fn for each message of f in set (nil for all), in UID order,
// with its index in f.msgs.
func (f *memFolder) each(set UIDSet, fn func(i int, msg *Message)) {
	for _, r := range uidSpans(set) {
		i, _ := slices.BinarySearchFunc(f.msgs, r.Start, func(m *Message, uid UID) int { return cmp.Compare(m.UID, uid) })
		for ; i < len(f.msgs) && f.msgs[i].UID <= r.Stop; i++ {
			fn(i, f.msgs[i])
		}
	}
}

// remove takes the messages at the sorted indices idx out of f.msgs,
// leaving their tombstones at modseq, and off the folder's counters.
func (f *memFolder) remove(idx []int, modseq uint64) {
	for _, i := range idx {
		msg := f.msgs[i]
		countIn(&f.rec, msg, -1)
		f.gone = append(f.gone, Change{UID: msg.UID, ModSeq: modseq, Expunged: true})
	}
	out := f.msgs[:idx[0]]
	for k, i := range idx {
		end := len(f.msgs)
		if k+1 < len(idx) {
			end = idx[k+1]
		}
		out = append(out, f.msgs[i+1:end]...)
	}
	clear(f.msgs[len(out):])
	f.msgs = out
}

// Append implements Index. The Memory keeps copies of m's slices.
func (m *Memory) Append(ctx context.Context, user UserID, folder FolderID, nm NewMessage) (Message, error) {
	done, err := m.enter(ctx)
	if err != nil {
		return Message{}, err
	}
	defer done()
	kws, err := checkNewMessage(&nm)
	if err != nil {
		return Message{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	u, f, err := m.st.folder(user, folder)
	if err != nil {
		return Message{}, err
	}
	own, err := m.st.owner(u, m.log)
	if err != nil {
		return Message{}, err
	}
	if err := checkUIDs(&f.rec, 1); err != nil {
		return Message{}, err
	}
	fk := &folderKeywords{list: slices.Clip(f.keywords)}
	if err := fk.add(kws); err != nil {
		return Message{}, err
	}
	if err := m.st.checkQuota(u, &own, nm.Size); err != nil {
		return Message{}, err
	}
	msg := &Message{UID: f.rec.UIDNext, ModSeq: f.rec.HighestModSeq + 1, Ref: nm.Ref, InternalDate: nm.InternalDate,
		Size: nm.Size, Flags: nm.Flags, Keywords: kws, Envelope: slices.Clone(nm.Envelope), Structure: slices.Clone(nm.Structure)}
	f.msgs = append(f.msgs, msg)
	f.rec.UIDNext++
	f.rec.HighestModSeq = msg.ModSeq
	countIn(&f.rec, msg, 1)
	f.keywords = fk.list
	m.st.charge(u, 1, msg.Size)
	m.notify(FolderEvent{User: user, Folder: folder, Added: []UID{msg.UID}, ModSeq: msg.ModSeq, Keywords: fk.event()})
	return cloneMessage(msg), nil
}

// checkQuota fails with ErrQuota if bytes more would pass u's quota or its
// domain's.
func (s *memState) checkQuota(u *memUser, own *indexOwner, bytes int64) error {
	if err := own.checkUserQuota(u.rec.ID, u.mb.Bytes, bytes); err != nil {
		return err
	}
	return own.checkDomainQuota(s.domainUsage[own.domain], bytes)
}

// Messages implements Index. The messages are taken under the Memory's
// lock, as they are when the call begins, and fn is called after it is
// released, so fn may call the Memory. fn's *Message is valid only during
// the call and, with its slices, read-only.
func (m *Memory) Messages(ctx context.Context, user UserID, folder FolderID, set UIDSet, fn func(*Message) error) error {
	done, err := m.enter(ctx)
	if err != nil {
		return err
	}
	defer done()
	m.mu.RLock()
	_, f, err := m.st.folder(user, folder)
	var ms []*Message
	if err == nil {
		f.each(set, func(_ int, msg *Message) { ms = append(ms, msg) })
	}
	m.mu.RUnlock()
	if err != nil {
		return err
	}
	var cur Message
	for n, msg := range ms {
		if n%256 == 255 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		cur = *msg
		if err := fn(&cur); err != nil {
			return err
		}
	}
	return nil
}

// UIDs implements Index.
func (m *Memory) UIDs(ctx context.Context, user UserID, folder FolderID) ([]UID, error) {
	done, err := m.enter(ctx)
	if err != nil {
		return nil, err
	}
	defer done()
	m.mu.RLock()
	defer m.mu.RUnlock()
	_, f, err := m.st.folder(user, folder)
	if err != nil {
		return nil, err
	}
	uids := make([]UID, len(f.msgs))
	for i, msg := range f.msgs {
		uids[i] = msg.UID
	}
	return uids, nil
}

// StoreFlags implements Index.
func (m *Memory) StoreFlags(ctx context.Context, user UserID, folder FolderID, set UIDSet, fu FlagUpdate) (StoreResult, error) {
	done, err := m.enter(ctx)
	if err != nil {
		return StoreResult{}, err
	}
	defer done()
	if err := checkFlagUpdate(&fu); err != nil {
		return StoreResult{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	_, f, err := m.st.folder(user, folder)
	if err != nil {
		return StoreResult{}, err
	}
	fk := &folderKeywords{list: slices.Clip(f.keywords)}
	if fu.Op != FlagsRemove {
		if err := fk.add(fu.Keywords); err != nil {
			return StoreResult{}, err
		}
	}
	modseq := f.rec.HighestModSeq + 1
	var res StoreResult
	var idx []int
	var next []*Message
	err = nil
	f.each(set, func(i int, msg *Message) {
		if err != nil {
			return
		}
		if fu.UnchangedSince > 0 && msg.ModSeq > fu.UnchangedSince {
			res.Skipped = append(res.Skipped, msg.UID)
			return
		}
		flags, kws, changed := applyFlags(msg.Flags, msg.Keywords, &fu)
		if !changed {
			return
		}
		if err = checkKeywordCount(msg.UID, kws); err != nil {
			return
		}
		c := *msg
		c.Flags, c.Keywords, c.ModSeq = flags, kws, modseq
		idx, next = append(idx, i), append(next, &c)
	})
	if err != nil {
		return StoreResult{}, err
	}
	if len(idx) == 0 {
		return res, nil
	}
	uids := make([]UID, len(idx))
	for k, i := range idx {
		countIn(&f.rec, f.msgs[i], -1)
		countIn(&f.rec, next[k], 1)
		f.msgs[i] = next[k]
		uids[k] = next[k].UID
		res.Changed = append(res.Changed, cloneMessage(next[k]))
	}
	f.rec.HighestModSeq = modseq
	f.keywords = fk.list
	m.notify(FolderEvent{User: user, Folder: folder, Flags: uids, Changed: res.Changed, ModSeq: modseq, Origin: originOf(ctx), Keywords: fk.event()})
	return res, nil
}

// Copy implements Index. The bodies are retained with the Memory's lock
// held, before the copies are added.
func (m *Memory) Copy(ctx context.Context, user UserID, from FolderID, set UIDSet, to FolderID) (CopyResult, error) {
	return m.copyOrMove(ctx, user, from, set, to, false)
}

// Move implements Index.
func (m *Memory) Move(ctx context.Context, user UserID, from FolderID, set UIDSet, to FolderID) (CopyResult, error) {
	return m.copyOrMove(ctx, user, from, set, to, true)
}

func (m *Memory) copyOrMove(ctx context.Context, user UserID, from FolderID, set UIDSet, to FolderID, move bool) (CopyResult, error) {
	done, err := m.enter(ctx)
	if err != nil {
		return CopyResult{}, err
	}
	defer done()
	m.mu.Lock()
	defer m.mu.Unlock()
	u, src, err := m.st.folder(user, from)
	if err != nil {
		return CopyResult{}, err
	}
	_, dst, err := m.st.folder(user, to)
	if err != nil {
		return CopyResult{}, err
	}
	t, err := planTransfer(src, dst, set)
	if err != nil {
		return CopyResult{}, err
	}
	if len(t.src) == 0 {
		return CopyResult{UIDValidity: dst.rec.UIDValidity}, nil
	}
	if !move {
		own, err := m.st.owner(u, m.log)
		if err != nil {
			return CopyResult{}, err
		}
		if err := m.st.checkQuota(u, &own, t.bytes); err != nil {
			return CopyResult{}, err
		}
		if m.cfg.Bodies != nil && len(t.refs) > 0 {
			if err := retainBodies(ctx, m.cfg.Bodies, m.log, t.refs); err != nil {
				return CopyResult{}, err
			}
		}
		m.st.charge(u, int64(len(t.src)), t.bytes)
	}
	t.apply(move)
	if move {
		m.notify(FolderEvent{User: user, Folder: from, Removed: slices.Clone(t.src), ModSeq: src.rec.HighestModSeq, Origin: originOf(ctx)})
	}
	m.notify(FolderEvent{User: user, Folder: to, Added: slices.Clone(t.dst), ModSeq: dst.rec.HighestModSeq, Origin: originOf(ctx), Keywords: t.fk.event()})
	return CopyResult{UIDValidity: dst.rec.UIDValidity, Source: t.src, Dest: t.dst}, nil
}

// memTransfer is a copy or move from src to dst (which may be one folder),
// planned and checked by planTransfer and done by apply.
type memTransfer struct {
	from, to *memFolder
	picks    []int // indices of the messages in from.msgs
	src, dst []UID // their UIDs, and those of their copies
	bytes    int64
	refs     map[msstore.Ref]int // the references a copy adds
	fk       *folderKeywords     // to's keywords after the transfer
}

// planTransfer plans the transfer of from's messages in set (nil for all)
// into to: it fails, changing nothing, when to has too few UIDs left or
// would know too many keywords.
func planTransfer(from, to *memFolder, set UIDSet) (*memTransfer, error) {
	t := &memTransfer{from: from, to: to, fk: &folderKeywords{list: slices.Clip(to.keywords)}}
	from.each(set, func(i int, _ *Message) { t.picks = append(t.picks, i) })
	if len(t.picks) == 0 {
		return t, nil
	}
	if err := checkUIDs(&to.rec, uint64(len(t.picks))); err != nil {
		return nil, err
	}
	for k, i := range t.picks {
		msg := from.msgs[i]
		if err := t.fk.add(msg.Keywords); err != nil {
			return nil, err
		}
		t.src = append(t.src, msg.UID)
		t.dst = append(t.dst, to.rec.UIDNext+UID(k))
		t.bytes += msg.Size
		if !msg.Ref.IsZero() {
			if t.refs == nil {
				t.refs = map[msstore.Ref]int{}
			}
			t.refs[msg.Ref]++
		}
	}
	return t, nil
}

// apply does the transfer: the copies get the UIDs planned and one new
// MODSEQ of to; with move, the originals leave from with tombstones at one
// new MODSEQ of from. Usage is the caller's to charge.
func (t *memTransfer) apply(move bool) {
	if len(t.picks) == 0 {
		return
	}
	from, to := t.from, t.to
	fromMod, toMod := from.rec.HighestModSeq+1, to.rec.HighestModSeq+1
	copies := make([]*Message, len(t.picks))
	for k, i := range t.picks {
		c := *from.msgs[i]
		c.UID, c.ModSeq = t.dst[k], toMod
		copies[k] = &c
	}
	if move {
		from.remove(t.picks, fromMod)
		from.rec.HighestModSeq = fromMod
	}
	for _, c := range copies {
		countIn(&to.rec, c, 1)
	}
	to.msgs = append(to.msgs, copies...)
	to.rec.UIDNext += UID(len(copies))
	to.rec.HighestModSeq = toMod
	to.keywords = t.fk.list
}

// Expunge implements Index. The bodies are released after the Memory's
// lock, and after the watchers' holds (FolderEvent.Hold).
func (m *Memory) Expunge(ctx context.Context, user UserID, folder FolderID, set UIDSet) ([]UID, error) {
	return m.expunge(ctx, user, folder, set, func(msg *Message) bool { return msg.Flags&FlagDeleted != 0 })
}

// Remove implements Remover.
func (m *Memory) Remove(ctx context.Context, user UserID, folder FolderID, set UIDSet) ([]UID, error) {
	if set == nil {
		return nil, fmt.Errorf("%w: Remove needs a set of UIDs", ErrInvalid)
	}
	return m.expunge(ctx, user, folder, set, func(*Message) bool { return true })
}

// expunge removes the folder's messages in set (nil for all) that pick
// chooses: Expunge and Remove.
func (m *Memory) expunge(ctx context.Context, user UserID, folder FolderID, set UIDSet, pick func(*Message) bool) ([]UID, error) {
	done, err := m.enter(ctx)
	if err != nil {
		return nil, err
	}
	defer done()
	var hold *bodyHold
	uids, err := func() ([]UID, error) {
		m.mu.Lock()
		defer m.mu.Unlock()
		u, f, err := m.st.folder(user, folder)
		if err != nil {
			return nil, err
		}
		var idx []int
		var uids []UID
		var refs []msstore.Ref
		var bytes int64
		f.each(set, func(i int, msg *Message) {
			if !pick(msg) {
				return
			}
			idx, uids = append(idx, i), append(uids, msg.UID)
			bytes += msg.Size
			if m.cfg.Bodies != nil && !msg.Ref.IsZero() {
				refs = append(refs, msg.Ref)
			}
		})
		if len(idx) == 0 {
			return nil, nil
		}
		modseq := f.rec.HighestModSeq + 1
		f.remove(idx, modseq)
		f.rec.HighestModSeq = modseq
		m.st.charge(u, -int64(len(idx)), -bytes)
		ev := FolderEvent{User: user, Folder: folder, Removed: slices.Clone(uids), ModSeq: modseq, Origin: originOf(ctx)}
		if len(refs) > 0 {
			hold = newHold(ctx, refs, func(ctx context.Context, refs []msstore.Ref) {
				releaseBodies(ctx, m.cfg.Bodies, m.log, refs)
			})
			ev.Hold = hold.hold
		}
		m.notify(ev)
		return uids, nil
	}()
	if hold != nil {
		hold.done() // released now, or after the watchers that held them
	}
	return uids, err
}

// Changes implements Index. The changes are taken under the Memory's lock
// and fn is called after it is released.
func (m *Memory) Changes(ctx context.Context, user UserID, folder FolderID, since uint64, fn func(Change) error) error {
	done, err := m.enter(ctx)
	if err != nil {
		return err
	}
	defer done()
	m.mu.RLock()
	_, f, err := m.st.folder(user, folder)
	var cs []Change
	if err == nil && since < math.MaxUint64 {
		for _, msg := range f.msgs {
			if msg.ModSeq > since {
				cs = append(cs, Change{UID: msg.UID, ModSeq: msg.ModSeq})
			}
		}
		i, _ := slices.BinarySearchFunc(f.gone, since+1, func(c Change, modseq uint64) int { return cmp.Compare(c.ModSeq, modseq) })
		cs = append(cs, f.gone[i:]...)
	}
	m.mu.RUnlock()
	if err != nil {
		return err
	}
	slices.SortFunc(cs, func(a, b Change) int {
		return cmp.Or(cmp.Compare(a.ModSeq, b.ModSeq), cmp.Compare(a.UID, b.UID))
	})
	return each(cs, fn)
}
