package userdata

import (
	"cmp"
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strings"

	"github.com/cockroachdb/pebble/v2"

	"github.com/mailsys/mailsys/msstore"
)

// Limits on keywords (IMAP user flags).
const (
	maxKeywords   = 64  // per message
	maxKeywordLen = 100 // bytes
)

// allFlags are the system flags a message can have.
const allFlags = FlagSeen | FlagAnswered | FlagFlagged | FlagDeleted | FlagDraft

// The change log. Every mutation of a folder takes the next MODSEQ of the
// folder, shared by all the messages it touches, so one MODSEQ may have
// many entries: the key is keyChange(user, folder, modseq) followed by the
// uid(4), and the value is uid(4) expunged(1). A live message has exactly
// one entry, at its current ModSeq; an expunged one leaves a tombstone.
//
// The tombstone of a message whose body reference the user dropped (an
// Expunge, or the deletion of its folder) also names the body: its value
// is uid(4) expunged(1) body-id(8) node(4). AutoRepair reads these to tell
// a body the user deleted from one whose entry was lost (see repair.go).
// A move's tombstone does not name the body, which is still referenced
// from the destination; neither do tombstones written before this format.

// Lengths of a change-log value: without and with the body of a tombstone.
const (
	changeLen     = 5
	changeBodyLen = changeLen + 8 + 4
)

// keyChangeUID is the change-log key of uid at modseq.
func keyChangeUID(u UserID, f FolderID, modseq uint64, uid UID) []byte {
	return binary.BigEndian.AppendUint32(keyChange(u, f, modseq), uint32(uid))
}

// changeValue is the value of a change-log entry for uid; the tombstone
// (expunged) of a message whose body reference was dropped names the body,
// by ref's ID and Node.
func changeValue(uid UID, expunged bool, ref msstore.Ref) []byte {
	v := binary.BigEndian.AppendUint32(make([]byte, 0, changeBodyLen), uint32(uid))
	v = append(v, boolByte(expunged))
	if expunged && !ref.IsZero() {
		v = binary.BigEndian.AppendUint64(v, ref.ID)
		v = binary.BigEndian.AppendUint32(v, ref.Node)
	}
	return v
}

// changeEntry is a decoded change-log value.
type changeEntry struct {
	uid      UID
	expunged bool
	named    bool    // a tombstone that names the body whose reference went
	body     bodyKey // that body, if named
}

// parseChange decodes a change-log value; ok is false for a malformed one.
// Values of both lengths are read: tombstones written before bodies were
// named simply name none.
func parseChange(v []byte) (e changeEntry, ok bool) {
	if len(v) != changeLen && len(v) != changeBodyLen {
		return changeEntry{}, false
	}
	e.uid, e.expunged = UID(binary.BigEndian.Uint32(v)), v[4] != 0
	if len(v) == changeBodyLen {
		if !e.expunged {
			return changeEntry{}, false
		}
		e.named = true
		e.body = bodyKey{id: binary.BigEndian.Uint64(v[5:]), node: binary.BigEndian.Uint32(v[13:])}
	}
	return e, true
}

// bodyKey identifies a body as the store finds it, by node and id: a Ref's
// volume and offset may change when the store compacts.
type bodyKey struct {
	node uint32
	id   uint64
}

// bodyOf returns ref's bodyKey.
func bodyOf(ref msstore.Ref) bodyKey { return bodyKey{node: ref.Node, id: ref.ID} }

// logChange records in b that uid changed (or, if expunged, went without
// dropping a body reference: a move) at modseq, dropping its entry at old
// (0 for a new message).
func logChange(b *pebble.Batch, u UserID, f FolderID, uid UID, old, modseq uint64, expunged bool) {
	if old != 0 {
		b.Delete(keyChangeUID(u, f, old, uid), nil)
	}
	b.Set(keyChangeUID(u, f, modseq, uid), changeValue(uid, expunged, msstore.Ref{}), nil)
}

// logExpunge records in b that uid was expunged at modseq, dropping its
// entry at old; the tombstone names the body whose reference goes with it
// (none if ref is zero).
func logExpunge(b *pebble.Batch, u UserID, f FolderID, uid UID, old, modseq uint64, ref msstore.Ref) {
	b.Delete(keyChangeUID(u, f, old, uid), nil)
	b.Set(keyChangeUID(u, f, modseq, uid), changeValue(uid, true, ref), nil)
}

// dropChangeLog deletes in b the change log of a folder being deleted,
// except what AutoRepair needs to know about the bodies the user dropped:
// the tombstones that name a body stay, and every message in gone (the
// folder's messages, deleted in the same batch) leaves one in place of its
// live entry. The folder's id is never reused and Changes needs the folder
// record, so these entries are seen by nothing but Repair.
func (d *DB) dropChangeLog(b *pebble.Batch, u UserID, f FolderID, gone []Message) error {
	replaced := make(map[string]bool, len(gone))
	for i := range gone {
		if !gone[i].Ref.IsZero() {
			replaced[string(keyChangeUID(u, f, gone[i].ModSeq, gone[i].UID))] = true
		}
	}
	prefix := changePrefix(u, f)
	err := d.scan(prefix, prefixEnd(prefix), func(k, v []byte) error {
		if replaced[string(k)] {
			return nil
		}
		if e, ok := parseChange(v); ok && e.named {
			return nil
		}
		b.Delete(k, nil)
		return nil
	})
	if err != nil {
		return err
	}
	for i := range gone {
		if m := &gone[i]; !m.Ref.IsZero() {
			b.Set(keyChangeUID(u, f, m.ModSeq, m.UID), changeValue(m.UID, true, m.Ref), nil)
		}
	}
	return nil
}

// messagePrefix and changePrefix are the key prefixes of a folder's
// messages and change log.
func messagePrefix(u UserID, f FolderID) []byte {
	return binary.BigEndian.AppendUint32(keyID(tagMessage, uint64(u)), uint32(f))
}

func changePrefix(u UserID, f FolderID) []byte {
	return binary.BigEndian.AppendUint32(keyID(tagChange, uint64(u)), uint32(f))
}

// Messages calls fn for each message of the folder in set (nil for all),
// in UID order, streaming from one consistent view of the folder. fn's
// *Message is one value reused for every message: it, its Keywords,
// Envelope and Structure are valid only during the call, so fn copies what
// it keeps. Messages stops at fn's first error and returns it.
func (d *DB) Messages(ctx context.Context, user UserID, folder FolderID, set UIDSet, fn func(*Message) error) error {
	done, err := d.enter(ctx)
	if err != nil {
		return err
	}
	defer done()
	if _, err := readFolderFrom(d.db, user, folder); err != nil {
		return err
	}
	n := 0
	return d.eachMessage(user, folder, set, func(m *Message) error {
		if n++; n%256 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		return fn(m)
	})
}

// UIDs returns all the folder's UIDs in order.
func (d *DB) UIDs(ctx context.Context, user UserID, folder FolderID) ([]UID, error) {
	done, err := d.enter(ctx)
	if err != nil {
		return nil, err
	}
	defer done()
	f, err := readFolderFrom(d.db, user, folder)
	if err != nil {
		return nil, err
	}
	uids := make([]UID, 0, f.Messages)
	prefix := messagePrefix(user, folder)
	err = d.scan(prefix, prefixEnd(prefix), func(k, _ []byte) error {
		if len(k) != len(prefix)+4 {
			return fmt.Errorf("userdata: folder %d of user %d: bad message key", folder, user)
		}
		uids = append(uids, UID(binary.BigEndian.Uint32(k[len(prefix):])))
		return nil
	})
	return uids, err
}

// StoreFlags changes the flags and keywords of the messages in set (nil
// for all). Only messages whose flags actually change are rewritten; they
// share one new MODSEQ and are returned in Changed. With UnchangedSince,
// messages with a higher ModSeq are left alone and listed in Skipped
// (CONDSTORE). Keywords are matched without regard to case.
func (d *DB) StoreFlags(ctx context.Context, user UserID, folder FolderID, set UIDSet, u FlagUpdate) (StoreResult, error) {
	done, err := d.enter(ctx)
	if err != nil {
		return StoreResult{}, err
	}
	defer done()
	if err := checkFlagUpdate(&u); err != nil {
		return StoreResult{}, err
	}
	lk := d.userLock(user)
	lk.Lock()
	defer lk.Unlock()
	f, err := readFolderFrom(d.db, user, folder)
	if err != nil {
		return StoreResult{}, err
	}
	modseq := f.HighestModSeq + 1
	fk, err := d.readKeywords(user, folder)
	if err != nil {
		return StoreResult{}, err
	}
	if u.Op != FlagsRemove {
		if err := fk.add(u.Keywords); err != nil {
			return StoreResult{}, err
		}
	}
	b := d.db.NewBatch()
	defer b.Close()
	var res StoreResult
	var buf []byte
	var uids []UID
	err = d.eachMessage(user, folder, set, func(m *Message) error {
		if u.UnchangedSince > 0 && m.ModSeq > u.UnchangedSince {
			res.Skipped = append(res.Skipped, m.UID)
			return nil
		}
		flags, kws, changed := applyFlags(m.Flags, m.Keywords, &u)
		if !changed {
			return nil
		}
		if err := checkKeywordCount(m.UID, kws); err != nil {
			return err
		}
		countIn(&f, m, -1)
		old := m.ModSeq
		m.Flags, m.Keywords, m.ModSeq = flags, kws, modseq
		countIn(&f, m, 1)
		var err error
		if buf, err = encodeMessage(buf[:0], m); err != nil {
			return err
		}
		b.Set(keyMessage(user, folder, m.UID), buf, nil)
		logChange(b, user, folder, m.UID, old, modseq, false)
		res.Changed = append(res.Changed, cloneMessage(m))
		uids = append(uids, m.UID)
		return nil
	})
	if err != nil {
		return StoreResult{}, err
	}
	if len(uids) == 0 {
		return res, nil
	}
	f.HighestModSeq = modseq
	writeFolderRec(b, user, &f)
	fk.put(b, user, folder)
	if err := d.commit(b); err != nil {
		return StoreResult{}, err
	}
	d.notify(FolderEvent{User: user, Folder: folder, Flags: uids, Changed: res.Changed, ModSeq: modseq, Origin: originOf(ctx), Keywords: fk.event()})
	return res, nil
}

// Copy copies the messages in set (nil for all) from one folder to
// another of the same user, giving each a new UID and MODSEQ there, and
// returns the UIDs on both sides (UIDPLUS). The bodies are shared: each is
// retained before the copies are committed, so a crash leaks a reference
// rather than losing a body. It returns ErrQuota when the user's or the
// domain's quota would be passed. from may be to: the copies are added
// after the originals (RFC 3501 allows COPY into the selected mailbox).
func (d *DB) Copy(ctx context.Context, user UserID, from FolderID, set UIDSet, to FolderID) (CopyResult, error) {
	return d.copyOrMove(ctx, user, from, set, to, false)
}

// Move moves the messages in set (nil for all) from one folder to another
// of the same user in one atomic step: each gets a new UID and MODSEQ in
// to, and leaves an expunge in from's change log. Bodies and usage are
// unchanged. from may be to (RFC 6851): each message then gets a new UID
// in its own folder, and watchers see the removal, then the addition.
func (d *DB) Move(ctx context.Context, user UserID, from FolderID, set UIDSet, to FolderID) (CopyResult, error) {
	return d.copyOrMove(ctx, user, from, set, to, true)
}

// copyOrMove is Copy, or Move if move.
func (d *DB) copyOrMove(ctx context.Context, user UserID, from FolderID, set UIDSet, to FolderID, move bool) (CopyResult, error) {
	done, err := d.enter(ctx)
	if err != nil {
		return CopyResult{}, err
	}
	defer done()
	var own indexOwner
	if !move {
		if own, err = d.ownerOf(user, true); err != nil {
			return CopyResult{}, err
		}
	}
	lk := d.userLock(user)
	lk.Lock()
	defer lk.Unlock()
	srcRec, err := readFolderFrom(d.db, user, from)
	if err != nil {
		return CopyResult{}, err
	}
	src, dst := &srcRec, &srcRec
	if to != from {
		dstRec, err := readFolderFrom(d.db, user, to)
		if err != nil {
			return CopyResult{}, err
		}
		dst = &dstRec
	}
	fk, err := d.readKeywords(user, to)
	if err != nil {
		return CopyResult{}, err
	}
	b := d.db.NewBatch()
	defer b.Close()
	t, err := d.transfer(b, user, src, dst, fk, set, move)
	if err != nil {
		return CopyResult{}, err
	}
	if len(t.src) == 0 {
		return CopyResult{UIDValidity: dst.UIDValidity}, nil
	}
	if !move {
		release, err := d.charge(b, user, own, int64(len(t.src)), t.bytes, true)
		defer release()
		if err != nil {
			return CopyResult{}, err
		}
		if err := retainBodies(ctx, d.cfg.Bodies, d.log, t.refs); err != nil {
			return CopyResult{}, err
		}
	} else if src != dst {
		writeFolderRec(b, user, src)
	}
	writeFolderRec(b, user, dst)
	fk.put(b, user, to)
	if err := d.commit(b); err != nil {
		return CopyResult{}, err
	}
	if move {
		d.notify(FolderEvent{User: user, Folder: from, Removed: slices.Clone(t.src), ModSeq: src.HighestModSeq, Origin: originOf(ctx)})
	}
	d.notify(FolderEvent{User: user, Folder: to, Added: slices.Clone(t.dst), ModSeq: dst.HighestModSeq, Origin: originOf(ctx), Keywords: fk.event()})
	return CopyResult{UIDValidity: dst.UIDValidity, Source: t.src, Dest: t.dst}, nil
}

// transferred is what transfer did.
type transferred struct {
	src, dst []UID               // the source UIDs and their copies' UIDs
	bytes    int64               // their total size
	refs     map[msstore.Ref]int // for a copy with d.cfg.Bodies: references to add
}

// transfer writes in b copies of src's messages in set (nil for all) into
// dst, with dst's next UIDs and MODSEQ, and with move deletes the originals
// (leaving tombstones in src's log). It updates the counters of src and dst
// (which may be one folder) and dst's keywords, which the caller writes
// back. The user's lock is held.
func (d *DB) transfer(b *pebble.Batch, user UserID, src, dst *Folder, fk *folderKeywords, set UIDSet, move bool) (transferred, error) {
	var t transferred
	srcMod, dstMod := src.HighestModSeq+1, dst.HighestModSeq+1
	var buf []byte
	err := d.eachMessage(user, src.ID, set, func(m *Message) error {
		if err := checkUIDs(dst, 1); err != nil {
			return err
		}
		if err := fk.add(m.Keywords); err != nil {
			return err
		}
		uid, old := m.UID, m.ModSeq
		m.UID, m.ModSeq = dst.UIDNext, dstMod
		dst.UIDNext++
		var err error
		if buf, err = encodeMessage(buf[:0], m); err != nil {
			return err
		}
		b.Set(keyMessage(user, dst.ID, m.UID), buf, nil)
		logChange(b, user, dst.ID, m.UID, 0, dstMod, false)
		countIn(dst, m, 1)
		if move {
			b.Delete(keyMessage(user, src.ID, uid), nil)
			logChange(b, user, src.ID, uid, old, srcMod, true)
			countIn(src, m, -1)
		} else if d.cfg.Bodies != nil && !m.Ref.IsZero() {
			if t.refs == nil {
				t.refs = map[msstore.Ref]int{}
			}
			t.refs[m.Ref]++
		}
		t.src = append(t.src, uid)
		t.dst = append(t.dst, m.UID)
		t.bytes += m.Size
		return nil
	})
	if err != nil {
		return transferred{}, err
	}
	if len(t.src) > 0 {
		dst.HighestModSeq = dstMod
		if move {
			src.HighestModSeq = srcMod
		}
	}
	return t, nil
}

// retainBodies adds to bodies the references a copy makes, each body once
// with its count. If one fails, those already added are released again
// (nothing points at them), and the error is returned.
func retainBodies(ctx context.Context, bodies BodyRefs, log *slog.Logger, refs map[msstore.Ref]int) error {
	var done []msstore.Ref
	for ref, n := range refs {
		if err := bodies.Retain(ctx, ref, n); err != nil {
			var undo []msstore.Ref
			for _, r := range done {
				for range refs[r] {
					undo = append(undo, r)
				}
			}
			releaseBodies(ctx, bodies, log, undo)
			return fmt.Errorf("userdata: retaining body %s: %w", ref, err)
		}
		done = append(done, ref)
	}
	return nil
}

// Expunge removes the folder's messages that have \Deleted (only those in
// set when set is not nil) and returns their UIDs in order. They leave
// tombstones in the change log, and their size leaves the user's and the
// domain's usage. Once the removal is committed their bodies are released,
// after the last of any watchers' holds (FolderEvent.Hold); a failed
// release is logged and leaks the body rather than losing one.
func (d *DB) Expunge(ctx context.Context, user UserID, folder FolderID, set UIDSet) ([]UID, error) {
	return d.expunge(ctx, user, folder, set, func(m *Message) bool { return m.Flags&FlagDeleted != 0 })
}

// Remove removes the folder's messages in set, whatever their flags, in
// one atomic step, and returns the UIDs of those it found, in order. set
// must not be nil. The messages go as with Expunge: tombstones in the
// change log, usage taken off, bodies released once the removal is
// committed, and watchers told.
func (d *DB) Remove(ctx context.Context, user UserID, folder FolderID, set UIDSet) ([]UID, error) {
	if set == nil {
		return nil, fmt.Errorf("%w: Remove needs a set of UIDs", ErrInvalid)
	}
	return d.expunge(ctx, user, folder, set, func(*Message) bool { return true })
}

// expunge removes the folder's messages in set (nil for all) that pick
// chooses: Expunge and Remove.
func (d *DB) expunge(ctx context.Context, user UserID, folder FolderID, set UIDSet, pick func(*Message) bool) ([]UID, error) {
	done, err := d.enter(ctx)
	if err != nil {
		return nil, err
	}
	defer done()
	own, err := d.ownerOf(user, false)
	if err != nil {
		return nil, err
	}
	var hold *bodyHold
	uids, err := func() ([]UID, error) {
		lk := d.userLock(user)
		lk.Lock()
		defer lk.Unlock()
		f, err := readFolderFrom(d.db, user, folder)
		if err != nil {
			return nil, err
		}
		modseq := f.HighestModSeq + 1
		b := d.db.NewBatch()
		defer b.Close()
		var uids []UID
		var refs []msstore.Ref
		var bytes int64
		err = d.eachMessage(user, folder, set, func(m *Message) error {
			if !pick(m) {
				return nil
			}
			b.Delete(keyMessage(user, folder, m.UID), nil)
			logExpunge(b, user, folder, m.UID, m.ModSeq, modseq, m.Ref)
			countIn(&f, m, -1)
			uids = append(uids, m.UID)
			bytes += m.Size
			if d.cfg.Bodies != nil && !m.Ref.IsZero() {
				refs = append(refs, m.Ref)
			}
			return nil
		})
		if err != nil || len(uids) == 0 {
			return nil, err
		}
		if _, err := d.charge(b, user, own, -int64(len(uids)), -bytes, false); err != nil {
			return nil, err
		}
		f.HighestModSeq = modseq
		writeFolderRec(b, user, &f)
		if err := d.commit(b); err != nil {
			return nil, err
		}
		ev := FolderEvent{User: user, Folder: folder, Removed: slices.Clone(uids), ModSeq: modseq, Origin: originOf(ctx)}
		if len(refs) > 0 {
			hold = newHold(ctx, refs, d.releaseBodies)
			ev.Hold = hold.hold
		}
		d.notify(ev)
		return uids, nil
	}()
	if err != nil {
		return nil, err
	}
	if hold != nil {
		hold.done() // released now, or after the watchers that held them
	}
	return uids, nil
}

// Changes calls fn for every entry of the folder's change log with a
// MODSEQ above since, in MODSEQ order (UID order within one MODSEQ): the
// live messages added or changed since, at their current MODSEQ, and the
// messages expunged since.
func (d *DB) Changes(ctx context.Context, user UserID, folder FolderID, since uint64, fn func(Change) error) error {
	done, err := d.enter(ctx)
	if err != nil {
		return err
	}
	defer done()
	if _, err := readFolderFrom(d.db, user, folder); err != nil {
		return err
	}
	if since == math.MaxUint64 {
		return nil
	}
	prefix := changePrefix(user, folder)
	return d.scan(keyChange(user, folder, since+1), prefixEnd(prefix), func(k, v []byte) error {
		e, ok := parseChange(v)
		if len(k) != len(prefix)+12 || !ok {
			return fmt.Errorf("userdata: folder %d of user %d: bad change-log entry", folder, user)
		}
		return fn(Change{
			UID:      e.uid,
			ModSeq:   binary.BigEndian.Uint64(k[len(prefix):]),
			Expunged: e.expunged,
		})
	})
}

// eachMessage calls fn for each message of the folder in set (nil for
// all) in UID order, from one iterator, decoding into one reused Message
// whose slices are valid only during the call.
func (d *DB) eachMessage(user UserID, folder FolderID, set UIDSet, fn func(*Message) error) error {
	prefix := messagePrefix(user, folder)
	it, err := d.db.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return fmt.Errorf("userdata: %w", err)
	}
	var m Message
	for _, r := range uidSpans(set) {
		for ok := it.SeekGE(keyMessage(user, folder, r.Start)); ok; ok = it.Next() {
			k := it.Key()
			if len(k) != len(prefix)+4 {
				it.Close()
				return fmt.Errorf("userdata: folder %d of user %d: bad message key", folder, user)
			}
			uid := UID(binary.BigEndian.Uint32(k[len(prefix):]))
			if uid > r.Stop {
				break
			}
			v, err := it.ValueAndErr()
			if err == nil {
				err = decodeMessage(v, uid, &m)
			}
			if err == nil {
				err = fn(&m)
			}
			if err != nil {
				it.Close()
				return err
			}
		}
	}
	if err := it.Close(); err != nil {
		return fmt.Errorf("userdata: %w", err)
	}
	return nil
}

// uidSpans turns a set into sorted, disjoint ranges with explicit ends
// (math.MaxUint32 for "*"); nil means every UID. A range written backwards
// (5:3) means the same as 3:5, as in IMAP.
func uidSpans(set UIDSet) []UIDRange {
	if set == nil {
		return []UIDRange{{1, math.MaxUint32}}
	}
	spans := make([]UIDRange, 0, len(set))
	for _, r := range set {
		if r.Stop == 0 {
			r.Stop = math.MaxUint32
		}
		if r.Start > r.Stop {
			r.Start, r.Stop = r.Stop, r.Start
		}
		spans = append(spans, r)
	}
	slices.SortFunc(spans, func(a, b UIDRange) int { return cmp.Compare(a.Start, b.Start) })
	out := spans[:0]
	for _, r := range spans {
		if n := len(out); n > 0 && uint64(r.Start) <= uint64(out[n-1].Stop)+1 {
			out[n-1].Stop = max(out[n-1].Stop, r.Stop)
			continue
		}
		out = append(out, r)
	}
	return out
}

// countIn adds (sign 1) or removes (sign -1) m in f's counters.
func countIn(f *Folder, m *Message, sign int) {
	f.Messages += uint32(sign)
	f.Size += int64(sign) * m.Size
	if m.Flags&FlagSeen == 0 {
		f.Unseen += uint32(sign)
	}
}

// checkUIDs fails when f cannot take n more UIDs.
func checkUIDs(f *Folder, n uint64) error {
	if f.UIDNext == 0 || uint64(f.UIDNext)+n > math.MaxUint32 {
		return fmt.Errorf("%w: folder %q has run out of UIDs", ErrInvalid, f.Name)
	}
	return nil
}

// indexOwner is what a mutation needs to know about the user.
type indexOwner struct {
	domain string // charged with the user's bytes
	limits Limits
}

// ownerOf reads the user's domain and, if withLimits, effective limits.
func (d *DB) ownerOf(user UserID, withLimits bool) (indexOwner, error) {
	rec, err := d.userRecord(user)
	if err != nil {
		return indexOwner{}, err
	}
	own := indexOwner{domain: addressDomain(rec.Address)}
	if withLimits {
		if own.limits, err = limitsOf(d, d.log, &rec.User); err != nil {
			return indexOwner{}, err
		}
	}
	return own, nil
}

// charge adds n messages of size bytes (negative to take them off) to the
// user's usage, and the bytes to the domain's, in b. With check it first
// fails with ErrQuota if that would pass the user's or the domain's quota.
// The user's lock is held.
//
// When check is set and the domain has a quota, charge takes the domain's
// lock, so that appends by different users of the domain cannot pass the
// quota together; the caller must call release after committing b (and in
// any case), still holding the user's lock.
func (d *DB) charge(b *pebble.Batch, user UserID, own indexOwner, n, bytes int64, check bool) (release func(), err error) {
	release = func() {}
	mb, err := readMailboxFrom(d.db, user)
	if err != nil {
		return release, err
	}
	if check {
		if err := own.checkUserQuota(user, mb.Bytes, bytes); err != nil {
			return release, err
		}
	}
	if check && own.limits.DomainQuota > 0 {
		lk := d.domainLock(own.domain)
		lk.Lock()
		release = lk.Unlock
		used, err := d.domainUsage(own.domain)
		if err != nil {
			return release, err
		}
		if err := own.checkDomainQuota(used, bytes); err != nil {
			return release, err
		}
	}
	mb.Messages += n
	mb.Bytes += bytes
	writeMailboxRec(b, user, &mb)
	if bytes != 0 {
		addDomainUsage(b, own.domain, bytes)
	}
	addDomainStat(b, own.domain, statMessages, n)
	return release, nil
}

// checkUserQuota fails with ErrQuota if adding bytes to the used bytes of
// user passes the user's quota.
func (own *indexOwner) checkUserQuota(user UserID, used, bytes int64) error {
	if q := own.limits.Quota; q > 0 && used+bytes > q {
		return fmt.Errorf("%w: user %d holds %d bytes, %d more would pass the quota of %d", ErrQuota, user, used, bytes, q)
	}
	return nil
}

// checkDomainQuota fails with ErrQuota if adding bytes to the used bytes
// of the user's domain passes the domain's quota.
func (own *indexOwner) checkDomainQuota(used, bytes int64) error {
	if q := own.limits.DomainQuota; q > 0 && used+bytes > q {
		return fmt.Errorf("%w: domain %s holds %d bytes, %d more would pass its quota of %d", ErrQuota, own.domain, used, bytes, q)
	}
	return nil
}

// checkFlagUpdate checks u's operation and flags, and normalizes its
// keywords.
func checkFlagUpdate(u *FlagUpdate) error {
	if u.Op > FlagsRemove || u.Flags&^allFlags != 0 {
		return fmt.Errorf("%w: flag operation %d, flags %#x", ErrInvalid, u.Op, u.Flags)
	}
	var err error
	u.Keywords, err = normalizeKeywords(u.Keywords, nil)
	return err
}

// checkKeywordCount fails when a StoreFlags would leave message uid with
// more than maxKeywords keywords.
func checkKeywordCount(uid UID, kws []string) error {
	if len(kws) > maxKeywords {
		return fmt.Errorf("%w: more than %d keywords on message %d", ErrInvalid, maxKeywords, uid)
	}
	return nil
}

// applyFlags computes the flags and keywords u makes of flags and kws, and
// whether they differ. The keywords returned never alias kws.
func applyFlags(flags Flags, kws []string, u *FlagUpdate) (Flags, []string, bool) {
	var nf Flags
	var nk []string
	switch u.Op {
	case FlagsSet:
		nf, nk = u.Flags, slices.Clone(u.Keywords)
	case FlagsAdd:
		nf, nk = flags|u.Flags, slices.Clone(kws)
		for _, k := range u.Keywords {
			if !hasKeyword(nk, k) {
				nk = append(nk, k)
			}
		}
	case FlagsRemove:
		nf = flags &^ u.Flags
		nk = slices.DeleteFunc(slices.Clone(kws), func(k string) bool { return hasKeyword(u.Keywords, k) })
	}
	changed := nf != flags || len(nk) != len(kws)
	for i := 0; !changed && i < len(nk); i++ {
		changed = !hasKeyword(kws, nk[i])
	}
	return nf, nk, changed
}

// normalizeKeywords checks kws and appends those not in to yet (without
// regard to case) to to. It fails with ErrInvalid for a keyword that is not
// an IMAP atom, or is longer than maxKeywordLen, or when more than
// maxKeywords result.
func normalizeKeywords(kws, to []string) ([]string, error) {
	for _, k := range kws {
		if !validKeyword(k) {
			return nil, fmt.Errorf("%w: keyword %q", ErrInvalid, k)
		}
		if !hasKeyword(to, k) {
			to = append(to, k)
		}
	}
	if len(to) > maxKeywords {
		return nil, fmt.Errorf("%w: more than %d keywords", ErrInvalid, maxKeywords)
	}
	return to, nil
}

// validKeyword reports whether k is an IMAP atom fit for a keyword: 1 to
// maxKeywordLen printable ASCII characters, none of the atom-specials
// (RFC 3501) nor '\' (which starts system flags).
func validKeyword(k string) bool {
	if k == "" || len(k) > maxKeywordLen {
		return false
	}
	for i := range len(k) {
		c := k[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`()"{%*\]`, c) >= 0 {
			return false
		}
	}
	return true
}

func hasKeyword(kws []string, k string) bool {
	return slices.ContainsFunc(kws, func(s string) bool { return strings.EqualFold(s, k) })
}

// cloneMessage copies m, slices included.
func cloneMessage(m *Message) Message {
	c := *m
	c.Keywords = slices.Clone(m.Keywords)
	c.Envelope = slices.Clone(m.Envelope)
	c.Structure = slices.Clone(m.Structure)
	return c
}
