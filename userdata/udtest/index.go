package udtest

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/mailsys/mailsys/userdata"
)

func testAppendAndCounts(t *testing.T, e *env) {
	ctx, db := e.ctx, e.db
	u := e.simpleUser("ann@example.test")
	inbox := e.folder(u.ID, userdata.Inbox)
	specs := []struct {
		size  int
		flags userdata.Flags
		kw    []string
	}{
		{120, userdata.FlagSeen, nil},
		{250, 0, []string{"$Forwarded"}},
		{1, userdata.FlagSeen | userdata.FlagFlagged, []string{"work", "$Label1"}},
		{4000, userdata.FlagDraft, nil},
		{77, userdata.FlagAnswered | userdata.FlagDeleted, []string{"todo"}},
	}
	var sent []userdata.NewMessage
	var got []userdata.Message
	prev := inbox
	var unseen uint32
	var size int64
	for i, s := range specs {
		nm := e.newMsg(u, "INBOX", s.size, s.flags, s.kw...)
		m := e.add(u.ID, inbox.ID, nm)
		sent, got = append(sent, nm), append(got, m)
		if m.UID != prev.UIDNext {
			t.Errorf("append %d: UID %d, want the folder's UIDNext %d", i, m.UID, prev.UIDNext)
		}
		if m.ModSeq <= prev.HighestModSeq {
			t.Errorf("append %d: ModSeq %d, want more than HighestModSeq %d", i, m.ModSeq, prev.HighestModSeq)
		}
		if s.flags&userdata.FlagSeen == 0 {
			unseen++
		}
		size += int64(s.size)
		f := e.folder(u.ID, userdata.Inbox)
		wantCounts(t, f, uint32(i+1), unseen, size)
		if f.UIDNext != m.UID+1 {
			t.Errorf("append %d: UIDNext %d, want %d", i, f.UIDNext, m.UID+1)
		}
		if f.HighestModSeq != m.ModSeq {
			t.Errorf("append %d: HighestModSeq %d, want the new message's ModSeq %d", i, f.HighestModSeq, m.ModSeq)
		}
		if f.UIDValidity != inbox.UIDValidity {
			t.Errorf("append %d: UIDValidity changed from %d to %d", i, inbox.UIDValidity, f.UIDValidity)
		}
		prev = f
	}
	wantUsage(t, e.usage(u.ID), int64(len(specs)), size, "after the appends")

	uids := e.uids(u.ID, inbox.ID)
	if !sameUIDs(uids, uidsOf(got)) || !strictlyIncreasing(uids) {
		t.Errorf("UIDs() = %v, want %v", uids, uidsOf(got))
	}
	ms := e.messages(u.ID, inbox.ID, all)
	if len(ms) != len(sent) {
		t.Fatalf("Messages(1:*) gave %d messages, want %d", len(ms), len(sent))
	}
	for i, m := range ms {
		if m.UID != got[i].UID || m.ModSeq != got[i].ModSeq {
			t.Errorf("Messages(1:*)[%d]: UID %d ModSeq %d, want %d %d", i, m.UID, m.ModSeq, got[i].UID, got[i].ModSeq)
		}
		sameContent(t, "Messages(1:*)", m, sent[i])
	}
	e.checkCounts(u.ID, inbox.ID)

	// Sets. Expunge UID 3 for a gap: 1 2 4 5 remain.
	u1, u2, u3, u4, u5 := got[0].UID, got[1].UID, got[2].UID, got[3].UID, got[4].UID
	e.store(u.ID, inbox.ID, userdata.UIDSet{{Start: u3, Stop: u3}}, userdata.FlagUpdate{Op: userdata.FlagsAdd, Flags: userdata.FlagDeleted})
	if x := e.expunge(u.ID, inbox.ID, userdata.UIDSet{{Start: u3, Stop: u3}}); !sameUIDs(x, []userdata.UID{u3}) {
		t.Fatalf("Expunge(%d) = %v", u3, x)
	}
	for _, c := range []struct {
		set  userdata.UIDSet
		want []userdata.UID
	}{
		{all, []userdata.UID{u1, u2, u4, u5}},
		{userdata.UIDSet{{Start: u2, Stop: u4}}, []userdata.UID{u2, u4}},
		{userdata.UIDSet{{Start: u4, Stop: 0}}, []userdata.UID{u4, u5}},
		{userdata.UIDSet{{Start: u5, Stop: u5}, {Start: u1, Stop: u2}}, []userdata.UID{u1, u2, u5}},
		{userdata.UIDSet{{Start: u1, Stop: u3}, {Start: u2, Stop: u4}}, []userdata.UID{u1, u2, u4}},
		{userdata.UIDSet{{Start: u3, Stop: u3}}, nil},
		{userdata.UIDSet{{Start: u5 + 1, Stop: 0}}, nil},
		{userdata.UIDSet{{Start: u5, Stop: u5 + 100}}, []userdata.UID{u5}},
		{userdata.UIDSet{{Start: u1, Stop: u1}, {Start: u5, Stop: 0}, {Start: u4, Stop: u4}}, []userdata.UID{u1, u4, u5}},
		{userdata.UIDSet{}, nil},
	} {
		ms := e.messages(u.ID, inbox.ID, c.set)
		if !sameUIDs(uidsOf(ms), c.want) {
			t.Errorf("Messages(%v) gave UIDs %v, want %v", c.set, uidsOf(ms), c.want)
		}
		for _, m := range ms {
			for i := range got {
				if got[i].UID == m.UID {
					sameContent(t, fmt.Sprintf("Messages(%v)", c.set), m, sent[i])
				}
			}
		}
	}

	// Messages stops at fn's first error and returns it.
	errStop := errors.New("stop here")
	calls := 0
	err := db.Messages(ctx, u.ID, inbox.ID, all, func(*userdata.Message) error { calls++; return errStop })
	if !errors.Is(err, errStop) || calls != 1 {
		t.Errorf("Messages with fn failing: %d calls, error %v; want 1 call and fn's error", calls, err)
	}

	// Failures write nothing.
	before := e.folder(u.ID, userdata.Inbox)
	_, err = db.Append(ctx, u.ID, unknownFolder, e.newMsg(u, "INBOX", 10, 0))
	wantErr(t, err, userdata.ErrNotFound, "Append to an unknown folder")
	_, err = db.Append(ctx, unknownUser, inbox.ID, e.newMsg(u, "INBOX", 10, 0))
	wantErr(t, err, userdata.ErrNotFound, "Append for an unknown user")
	_, err = db.Append(ctx, u.ID, inbox.ID, e.newMsg(u, "INBOX", 10, 0, "bad keyword"))
	wantErr(t, err, userdata.ErrInvalid, "Append with an invalid keyword")
	if f := e.folder(u.ID, userdata.Inbox); f != before {
		t.Errorf("failed appends changed INBOX from %+v to %+v", before, f)
	}
	_, err = db.UIDs(ctx, u.ID, unknownFolder)
	wantErr(t, err, userdata.ErrNotFound, "UIDs of an unknown folder")
	err = db.Messages(ctx, u.ID, unknownFolder, all, func(*userdata.Message) error { return nil })
	wantErr(t, err, userdata.ErrNotFound, "Messages of an unknown folder")

	// A folder's UIDs are its own.
	other := e.createFolder(u.ID, "Other")
	if m := e.add(u.ID, other.ID, e.newMsg(u, "Other", 10, 0)); m.UID != 1 {
		t.Errorf("first Append to a new folder: UID %d, want 1", m.UID)
	}
}

// checkChanges checks Changes(since) against the folder's messages:
// every message with a ModSeq above since is there with its ModSeq, no
// older one is, and the UIDs expunged after since are there as expunged.
func (e *env) checkChanges(u userdata.UserID, f userdata.FolderID, since uint64, expunged []userdata.UID) []userdata.Change {
	e.t.Helper()
	t := e.t
	var cs []userdata.Change
	must(t, e.db.Changes(e.ctx, u, f, since, func(c userdata.Change) error {
		cs = append(cs, c)
		return nil
	}), "Changes(since %d)", since)
	last := map[userdata.UID]userdata.Change{}
	for i, c := range cs {
		if c.ModSeq <= since {
			t.Errorf("Changes(since %d) reported %+v, not above since", since, c)
		}
		if i > 0 && c.ModSeq < cs[i-1].ModSeq {
			t.Errorf("Changes(since %d) not in ModSeq order: %+v after %+v", since, c, cs[i-1])
		}
		last[c.UID] = c
	}
	fo := e.folderByID(u, f)
	if len(cs) > 0 && cs[len(cs)-1].ModSeq > fo.HighestModSeq {
		t.Errorf("Changes(since %d) reported ModSeq %d above HighestModSeq %d", since, cs[len(cs)-1].ModSeq, fo.HighestModSeq)
	}
	for _, m := range e.messages(u, f, all) {
		c, ok := last[m.UID]
		delete(last, m.UID)
		switch {
		case m.ModSeq > since && !ok:
			t.Errorf("Changes(since %d) misses UID %d (ModSeq %d)", since, m.UID, m.ModSeq)
		case m.ModSeq > since && (c.Expunged || c.ModSeq != m.ModSeq):
			t.Errorf("Changes(since %d): last change of UID %d is %+v; the message has ModSeq %d", since, m.UID, c, m.ModSeq)
		case m.ModSeq <= since && ok:
			t.Errorf("Changes(since %d) reports UID %d (%+v), whose ModSeq %d is not above since", since, m.UID, c, m.ModSeq)
		}
	}
	for _, uid := range expunged {
		c, ok := last[uid]
		delete(last, uid)
		if !ok || !c.Expunged {
			t.Errorf("Changes(since %d): expunged UID %d reported as %+v (found %v), want Expunged", since, uid, c, ok)
		}
	}
	for uid, c := range last {
		t.Errorf("Changes(since %d) reports UID %d (%+v), neither a message changed since nor expunged since", since, uid, c)
	}
	return cs
}

func testFlagsAndModSeq(t *testing.T, e *env) {
	ctx, db := e.ctx, e.db
	u := e.simpleUser("ann@example.test")
	inbox := e.folder(u.ID, userdata.Inbox)
	var ms []userdata.Message
	for range 4 {
		ms = append(ms, e.add(u.ID, inbox.ID, e.newMsg(u, "INBOX", 100, 0)))
	}
	u1, u2, u3, u4 := ms[0].UID, ms[1].UID, ms[2].UID, ms[3].UID
	one := func(uid userdata.UID) userdata.UIDSet { return userdata.UIDSet{{Start: uid, Stop: uid}} }
	span := func(a, b userdata.UID) userdata.UIDSet { return userdata.UIDSet{{Start: a, Stop: b}} }
	changes0 := e.checkChanges(u.ID, inbox.ID, 0, nil)
	if len(changes0) < 4 {
		t.Errorf("Changes(0) after 4 appends: %+v", changes0)
	}

	// store runs a StoreFlags and checks which messages changed, to which
	// flags and keywords, and that their ModSeqs rose above the folder's.
	type state struct {
		flags userdata.Flags
		kw    []string
	}
	store := func(set userdata.UIDSet, fu userdata.FlagUpdate, changed []userdata.UID, want map[userdata.UID]state) userdata.StoreResult {
		t.Helper()
		before := e.folder(u.ID, userdata.Inbox)
		old := map[userdata.UID]userdata.Message{}
		for _, m := range e.messages(u.ID, inbox.ID, all) {
			old[m.UID] = m
		}
		r := e.store(u.ID, inbox.ID, set, fu)
		what := fmt.Sprintf("StoreFlags(%v, %+v)", set, fu)
		if !sameUIDs(uidsOf(r.Changed), changed) {
			t.Errorf("%s changed %v, want %v", what, uidsOf(r.Changed), changed)
		}
		var maxMod uint64
		for _, m := range r.Changed {
			maxMod = max(maxMod, m.ModSeq)
			if m.ModSeq <= before.HighestModSeq {
				t.Errorf("%s: UID %d got ModSeq %d, not above the folder's HighestModSeq %d", what, m.UID, m.ModSeq, before.HighestModSeq)
			}
			if w, ok := want[m.UID]; ok && (m.Flags != w.flags || !sameKeywords(m.Keywords, w.kw)) {
				t.Errorf("%s: result has UID %d with %#x %q, want %#x %q", what, m.UID, m.Flags, m.Keywords, w.flags, w.kw)
			}
			if o := old[m.UID]; m.Ref != o.Ref || m.Size != o.Size || !m.InternalDate.Equal(o.InternalDate) {
				t.Errorf("%s: result has UID %d with other content than before: %+v", what, m.UID, m)
			}
		}
		after := e.folder(u.ID, userdata.Inbox)
		if len(r.Changed) == 0 && after.HighestModSeq != before.HighestModSeq {
			t.Errorf("%s changed nothing but HighestModSeq went from %d to %d", what, before.HighestModSeq, after.HighestModSeq)
		}
		if len(r.Changed) > 0 && after.HighestModSeq < maxMod {
			t.Errorf("%s: HighestModSeq %d below a changed message's ModSeq %d", what, after.HighestModSeq, maxMod)
		}
		for _, m := range e.messages(u.ID, inbox.ID, all) {
			i := slices.IndexFunc(r.Changed, func(c userdata.Message) bool { return c.UID == m.UID })
			if i < 0 {
				if m.ModSeq != old[m.UID].ModSeq || m.Flags != old[m.UID].Flags || !sameKeywords(m.Keywords, old[m.UID].Keywords) {
					t.Errorf("%s: UID %d changed from %+v to %+v but is not in the result", what, m.UID, old[m.UID], m)
				}
				continue
			}
			if c := r.Changed[i]; m.ModSeq != c.ModSeq || m.Flags != c.Flags || !sameKeywords(m.Keywords, c.Keywords) {
				t.Errorf("%s: UID %d is stored as %#x %q ModSeq %d; the result said %#x %q ModSeq %d",
					what, m.UID, m.Flags, m.Keywords, m.ModSeq, c.Flags, c.Keywords, c.ModSeq)
			}
		}
		e.checkCounts(u.ID, inbox.ID)
		return r
	}
	seen, flagged, answered, deleted := userdata.FlagSeen, userdata.FlagFlagged, userdata.FlagAnswered, userdata.FlagDeleted
	add, remove, set := userdata.FlagsAdd, userdata.FlagsRemove, userdata.FlagsSet

	store(span(u1, u2), userdata.FlagUpdate{Op: add, Flags: seen | flagged, Keywords: []string{"todo"}},
		[]userdata.UID{u1, u2}, map[userdata.UID]state{u1: {seen | flagged, []string{"todo"}}, u2: {seen | flagged, []string{"todo"}}})
	wantCounts(t, e.folder(u.ID, userdata.Inbox), 4, 2, 400)
	store(span(u1, u2), userdata.FlagUpdate{Op: add, Flags: seen}, nil, nil)
	store(span(u1, u2), userdata.FlagUpdate{Op: add, Keywords: []string{"todo"}}, nil, nil)
	store(span(u1, u3), userdata.FlagUpdate{Op: add, Flags: seen}, []userdata.UID{u3}, map[userdata.UID]state{u3: {seen, nil}})
	wantCounts(t, e.folder(u.ID, userdata.Inbox), 4, 1, 400)
	store(one(u1), userdata.FlagUpdate{Op: remove, Flags: flagged, Keywords: []string{"todo"}},
		[]userdata.UID{u1}, map[userdata.UID]state{u1: {seen, nil}})
	store(one(u4), userdata.FlagUpdate{Op: remove, Flags: seen | flagged, Keywords: []string{"todo"}}, nil, nil)
	store(one(u2), userdata.FlagUpdate{Op: set, Flags: answered, Keywords: []string{"a", "b"}},
		[]userdata.UID{u2}, map[userdata.UID]state{u2: {answered, []string{"a", "b"}}})
	wantCounts(t, e.folder(u.ID, userdata.Inbox), 4, 2, 400)
	store(one(u2), userdata.FlagUpdate{Op: set, Flags: answered, Keywords: []string{"b", "a"}}, nil, nil)
	store(one(u2), userdata.FlagUpdate{Op: add, Keywords: []string{"c"}},
		[]userdata.UID{u2}, map[userdata.UID]state{u2: {answered, []string{"a", "b", "c"}}})
	store(one(u2), userdata.FlagUpdate{Op: remove, Keywords: []string{"a", "zzz"}},
		[]userdata.UID{u2}, map[userdata.UID]state{u2: {answered, []string{"b", "c"}}})
	store(userdata.UIDSet{{Start: u4 + 1, Stop: 0}}, userdata.FlagUpdate{Op: add, Flags: seen}, nil, nil)

	// CONDSTORE: a message changed after UnchangedSince is skipped.
	mark := e.folder(u.ID, userdata.Inbox).HighestModSeq
	store(one(u4), userdata.FlagUpdate{Op: add, Flags: flagged}, []userdata.UID{u4}, map[userdata.UID]state{u4: {flagged, nil}})
	r := store(span(u1, u4), userdata.FlagUpdate{Op: add, Flags: deleted, UnchangedSince: mark}, []userdata.UID{u1, u2, u3},
		map[userdata.UID]state{u1: {seen | deleted, nil}, u2: {answered | deleted, []string{"b", "c"}}, u3: {seen | deleted, nil}})
	if !sameUIDs(r.Skipped, []userdata.UID{u4}) {
		t.Errorf("StoreFlags with UnchangedSince %d: Skipped = %v, want [%d]", mark, r.Skipped, u4)
	}
	high := e.folder(u.ID, userdata.Inbox).HighestModSeq
	r = store(span(u1, u4), userdata.FlagUpdate{Op: remove, Flags: deleted, UnchangedSince: high}, []userdata.UID{u1, u2, u3}, nil)
	if len(r.Skipped) != 0 {
		t.Errorf("StoreFlags with UnchangedSince = HighestModSeq: Skipped = %v, want none", r.Skipped)
	}

	// The change log.
	e.checkChanges(u.ID, inbox.ID, 0, nil)
	e.checkChanges(u.ID, inbox.ID, mark, nil)
	since := e.folder(u.ID, userdata.Inbox).HighestModSeq
	if cs := e.checkChanges(u.ID, inbox.ID, since, nil); len(cs) != 0 {
		t.Errorf("Changes(HighestModSeq) = %+v, want none", cs)
	}
	store(one(u2), userdata.FlagUpdate{Op: add, Flags: deleted}, []userdata.UID{u2}, nil)
	store(one(u3), userdata.FlagUpdate{Op: add, Flags: deleted}, []userdata.UID{u3}, nil)
	if x := e.expunge(u.ID, inbox.ID, nil); !sameUIDs(x, []userdata.UID{u2, u3}) {
		t.Errorf("Expunge = %v, want [%d %d]", x, u2, u3)
	}
	cs := e.checkChanges(u.ID, inbox.ID, since, []userdata.UID{u2, u3})
	if n := len(cs); n < 2 || !cs[n-1].Expunged || !cs[n-2].Expunged {
		t.Errorf("Changes after an expunge: %+v, want the expunges last", cs)
	}
	after := e.folder(u.ID, userdata.Inbox)
	if after.HighestModSeq <= since {
		t.Errorf("HighestModSeq %d did not rise above %d with the changes and expunges", after.HighestModSeq, since)
	}
	e.checkChanges(u.ID, inbox.ID, 0, []userdata.UID{u2, u3})
	e.checkChanges(u.ID, inbox.ID, mark, []userdata.UID{u2, u3})
	errStop := errors.New("stop")
	calls := 0
	err := db.Changes(ctx, u.ID, inbox.ID, 0, func(userdata.Change) error { calls++; return errStop })
	if !errors.Is(err, errStop) || calls != 1 {
		t.Errorf("Changes with fn failing: %d calls, error %v; want 1 call and fn's error", calls, err)
	}

	// Invalid keywords change nothing.
	before := e.messages(u.ID, inbox.ID, all)
	beforeF := e.folder(u.ID, userdata.Inbox)
	for _, kw := range []string{"", "a b", `\Foo`, `\Seen`, "x(y)", "x{y", "x]", "x%", "x*", `x"y`, "\xff"} {
		for _, op := range []userdata.FlagOp{add, remove, set} {
			_, err := db.StoreFlags(ctx, u.ID, inbox.ID, all, userdata.FlagUpdate{Op: op, Keywords: []string{"fine", kw}})
			wantErr(t, err, userdata.ErrInvalid, "StoreFlags(op %d) with keyword %q", op, kw)
		}
	}
	if f := e.folder(u.ID, userdata.Inbox); f != beforeF {
		t.Errorf("StoreFlags with invalid keywords changed the folder from %+v to %+v", beforeF, f)
	}
	for i, m := range e.messages(u.ID, inbox.ID, all) {
		if i >= len(before) || m.ModSeq != before[i].ModSeq || m.Flags != before[i].Flags || !sameKeywords(m.Keywords, before[i].Keywords) {
			t.Errorf("StoreFlags with invalid keywords changed UID %d to %+v", m.UID, m)
		}
	}
	_, err = db.StoreFlags(ctx, u.ID, unknownFolder, all, userdata.FlagUpdate{Op: add, Flags: seen})
	wantErr(t, err, userdata.ErrNotFound, "StoreFlags in an unknown folder")
	err = db.Changes(ctx, u.ID, unknownFolder, 0, func(userdata.Change) error { return nil })
	wantErr(t, err, userdata.ErrNotFound, "Changes of an unknown folder")
}

func testCopyMove(t *testing.T, e *env) {
	ctx, db := e.ctx, e.db
	u := e.simpleUser("ann@example.test")
	inbox := e.folder(u.ID, userdata.Inbox)
	work := e.createFolder(u.ID, "Work")
	archive := e.folder(u.ID, "Archive")

	var sent []userdata.NewMessage
	var ms []userdata.Message
	for i, fl := range []userdata.Flags{userdata.FlagSeen, userdata.FlagFlagged, 0} {
		nm := e.newMsg(u, "INBOX", 100*(i+1), fl, fmt.Sprintf("kw%d", i))
		sent = append(sent, nm)
		ms = append(ms, e.add(u.ID, inbox.ID, nm))
	}
	u1, u2, u3 := ms[0].UID, ms[1].UID, ms[2].UID
	wantUsage(t, e.usage(u.ID), 3, 600, "before Copy")

	// Copy.
	workBefore := e.folder(u.ID, "Work")
	r, err := db.Copy(ctx, u.ID, inbox.ID, userdata.UIDSet{{Start: u1, Stop: u2}}, work.ID)
	must(t, err, "Copy(%d:%d to Work)", u1, u2)
	if r.UIDValidity != work.UIDValidity {
		t.Errorf("Copy: UIDValidity %d, want the destination's %d", r.UIDValidity, work.UIDValidity)
	}
	if !sameUIDs(r.Source, []userdata.UID{u1, u2}) || len(r.Dest) != 2 || !strictlyIncreasing(r.Dest) ||
		(len(r.Dest) > 0 && r.Dest[0] < workBefore.UIDNext) {
		t.Errorf("Copy = %+v, want Source [%d %d] and two new increasing UIDs from %d", r, u1, u2, workBefore.UIDNext)
	}
	workAfter := e.checkCounts(u.ID, work.ID)
	wantCounts(t, workAfter, 2, 1, 300)
	if len(r.Dest) == 2 && workAfter.UIDNext <= r.Dest[1] {
		t.Errorf("after Copy: Work's UIDNext %d, not above the copies' UIDs %v", workAfter.UIDNext, r.Dest)
	}
	if workAfter.HighestModSeq <= workBefore.HighestModSeq {
		t.Errorf("after Copy: Work's HighestModSeq %d did not rise from %d", workAfter.HighestModSeq, workBefore.HighestModSeq)
	}
	copies := e.messages(u.ID, work.ID, all)
	if !sameUIDs(uidsOf(copies), r.Dest) {
		t.Errorf("after Copy: Work has UIDs %v, want %v", uidsOf(copies), r.Dest)
	}
	for i, c := range copies {
		if i < 2 {
			sameContent(t, "a copy", c, sent[i])
		}
	}
	wantCounts(t, e.checkCounts(u.ID, inbox.ID), 3, 2, 600)
	wantUsage(t, e.usage(u.ID), 5, 900, "after Copy")

	// The copies keep the bodies referenced after the originals are gone.
	e.store(u.ID, inbox.ID, userdata.UIDSet{{Start: u1, Stop: u2}}, userdata.FlagUpdate{Op: userdata.FlagsAdd, Flags: userdata.FlagDeleted})
	if x := e.expunge(u.ID, inbox.ID, nil); !sameUIDs(x, []userdata.UID{u1, u2}) {
		t.Errorf("Expunge of the originals = %v, want [%d %d]", x, u1, u2)
	}
	for i := range 2 {
		e.bodyLive(sent[i].Ref, true, "after expunging the original of a copy")
	}
	if x := e.deleteAll(u.ID, work.ID); !sameUIDs(x, r.Dest) {
		t.Errorf("Expunge of the copies = %v, want %v", x, r.Dest)
	}
	for i := range 2 {
		e.bodyLive(sent[i].Ref, false, "after expunging the original and the copy")
	}
	e.bodyLive(sent[2].Ref, true, "a body never copied nor expunged")
	wantUsage(t, e.usage(u.ID), 1, 300, "after expunging originals and copies")

	// Move.
	nm4 := e.newMsg(u, "INBOX", 50, userdata.FlagAnswered|userdata.FlagSeen, "moved")
	sent = append(sent, nm4)
	m4 := e.add(u.ID, inbox.ID, nm4)
	archBefore := e.folder(u.ID, "Archive")
	inboxBefore := e.folder(u.ID, userdata.Inbox)
	r, err = db.Move(ctx, u.ID, inbox.ID, userdata.UIDSet{{Start: u3, Stop: 0}}, archive.ID)
	must(t, err, "Move(%d:* to Archive)", u3)
	if r.UIDValidity != archive.UIDValidity || !sameUIDs(r.Source, []userdata.UID{u3, m4.UID}) || len(r.Dest) != 2 ||
		!strictlyIncreasing(r.Dest) || (len(r.Dest) > 0 && r.Dest[0] < archBefore.UIDNext) {
		t.Errorf("Move = %+v, want UIDValidity %d, Source [%d %d], two new UIDs from %d", r, archive.UIDValidity, u3, m4.UID, archBefore.UIDNext)
	}
	inboxAfter := e.checkCounts(u.ID, inbox.ID)
	wantCounts(t, inboxAfter, 0, 0, 0)
	if inboxAfter.HighestModSeq <= inboxBefore.HighestModSeq || inboxAfter.UIDNext != inboxBefore.UIDNext {
		t.Errorf("after Move out: INBOX %+v, before %+v; want HighestModSeq up, UIDNext kept", inboxAfter, inboxBefore)
	}
	archAfter := e.checkCounts(u.ID, archive.ID)
	wantCounts(t, archAfter, 2, 1, 350)
	moved := e.messages(u.ID, archive.ID, all)
	if !sameUIDs(uidsOf(moved), r.Dest) {
		t.Errorf("after Move: Archive has UIDs %v, want %v", uidsOf(moved), r.Dest)
	}
	for i, m := range moved {
		if i < 2 {
			sameContent(t, "a moved message", m, sent[2+i])
		}
	}
	e.checkChanges(u.ID, inbox.ID, inboxBefore.HighestModSeq, []userdata.UID{u3, m4.UID})
	wantUsage(t, e.usage(u.ID), 2, 350, "after Move")
	e.bodyLive(sent[2].Ref, true, "after Move")
	e.bodyLive(sent[3].Ref, true, "after Move")
	e.deleteAll(u.ID, archive.ID)
	e.bodyLive(sent[2].Ref, false, "after Move and expunging the moved message")
	e.bodyLive(sent[3].Ref, false, "after Move and expunging the moved message")
	wantUsage(t, e.usage(u.ID), 0, 0, "after expunging everything")

	// Within one folder (RFC 3501 COPY, RFC 6851 MOVE): new UIDs after
	// the originals, the body shared.
	m5 := e.add(u.ID, inbox.ID, e.newMsg(u, "INBOX", 10, 0))
	before := e.folder(u.ID, userdata.Inbox)
	r, err = db.Copy(ctx, u.ID, inbox.ID, all, inbox.ID)
	must(t, err, "Copy to the same folder")
	if !sameUIDs(r.Source, []userdata.UID{m5.UID}) || len(r.Dest) != 1 || r.Dest[0] < before.UIDNext || r.UIDValidity != before.UIDValidity {
		t.Errorf("Copy to the same folder = %+v, want Source [%d] and one UID from %d", r, m5.UID, before.UIDNext)
	}
	inside := e.checkCounts(u.ID, inbox.ID)
	wantCounts(t, inside, 2, 2, 20)
	wantUsage(t, e.usage(u.ID), 2, 20, "after Copy to the same folder")
	copied := r.Dest[0]
	r, err = db.Move(ctx, u.ID, inbox.ID, userdata.UIDSet{{Start: copied, Stop: copied}}, inbox.ID)
	must(t, err, "Move to the same folder")
	if !sameUIDs(r.Source, []userdata.UID{copied}) || len(r.Dest) != 1 || r.Dest[0] <= copied {
		t.Errorf("Move to the same folder = %+v, want Source [%d] and a higher UID", r, copied)
	}
	if got := uidsOf(e.messages(u.ID, inbox.ID, all)); !sameUIDs(got, []userdata.UID{m5.UID, r.Dest[0]}) {
		t.Errorf("after Move to the same folder: INBOX has UIDs %v, want [%d %d]", got, m5.UID, r.Dest[0])
	}
	wantCounts(t, e.checkCounts(u.ID, inbox.ID), 2, 2, 20)
	e.checkChanges(u.ID, inbox.ID, inside.HighestModSeq, []userdata.UID{copied})
	last := userdata.UIDSet{{Start: r.Dest[0], Stop: r.Dest[0]}}
	_, err = db.StoreFlags(ctx, u.ID, inbox.ID, last, userdata.FlagUpdate{Op: userdata.FlagsAdd, Flags: userdata.FlagDeleted})
	must(t, err, "StoreFlags(\\Deleted)")
	_, err = db.Expunge(ctx, u.ID, inbox.ID, last)
	must(t, err, "Expunge")
	e.bodyLive(m5.Ref, true, "after expunging the copy made within the folder")

	// Failures change nothing.
	before = e.folder(u.ID, userdata.Inbox)
	_, err = db.Copy(ctx, u.ID, inbox.ID, all, unknownFolder)
	wantErr(t, err, userdata.ErrNotFound, "Copy to an unknown folder")
	_, err = db.Move(ctx, u.ID, inbox.ID, all, unknownFolder)
	wantErr(t, err, userdata.ErrNotFound, "Move to an unknown folder")
	_, err = db.Copy(ctx, u.ID, unknownFolder, all, work.ID)
	wantErr(t, err, userdata.ErrNotFound, "Copy from an unknown folder")
	if f := e.folder(u.ID, userdata.Inbox); f != before {
		t.Errorf("failed copies and moves changed INBOX from %+v to %+v", before, f)
	}
	e.checkCounts(u.ID, work.ID)
	e.bodyLive(m5.Ref, true, "after failed copies")
	e.deleteAll(u.ID, inbox.ID)
	e.bodyLive(m5.Ref, false, "after failed copies and the expunge of the only reference")
	r, err = db.Copy(ctx, u.ID, inbox.ID, all, work.ID)
	if err != nil || len(r.Source) != 0 || len(r.Dest) != 0 {
		t.Errorf("Copy of a set matching nothing = %+v, %v; want an empty result", r, err)
	}
}

func testExpunge(t *testing.T, e *env) {
	ctx, db := e.ctx, e.db
	u := e.simpleUser("ann@example.test")
	inbox := e.folder(u.ID, userdata.Inbox)
	d, s := userdata.FlagDeleted, userdata.FlagSeen
	var ms []userdata.Message
	for i, fl := range []userdata.Flags{d, 0, d | s, d, s, d} {
		ms = append(ms, e.add(u.ID, inbox.ID, e.newMsg(u, "INBOX", 10*(i+1), fl)))
	}
	uid := func(i int) userdata.UID { return ms[i].UID }
	wantUsage(t, e.usage(u.ID), 6, 210, "after the appends")
	wantCounts(t, e.folder(u.ID, userdata.Inbox), 6, 4, 210)
	uidNext := e.folder(u.ID, userdata.Inbox).UIDNext

	// Only the set, and only \Deleted.
	x := e.expunge(u.ID, inbox.ID, userdata.UIDSet{{Start: uid(1), Stop: uid(3)}})
	if !sameUIDs(x, []userdata.UID{uid(2), uid(3)}) {
		t.Errorf("Expunge(%d:%d) = %v, want [%d %d]", uid(1), uid(3), x, uid(2), uid(3))
	}
	f := e.checkCounts(u.ID, inbox.ID)
	wantCounts(t, f, 4, 3, 210-30-40)
	wantUsage(t, e.usage(u.ID), 4, 140, "after Expunge of a set")
	for i, live := range []bool{true, true, false, false, true, true} {
		e.bodyLive(ms[i].Ref, live, "message %d after Expunge of a set", i)
	}

	x = e.expunge(u.ID, inbox.ID, nil)
	if !sameUIDs(x, []userdata.UID{uid(0), uid(5)}) {
		t.Errorf("Expunge(nil) = %v, want [%d %d]", x, uid(0), uid(5))
	}
	f = e.checkCounts(u.ID, inbox.ID)
	wantCounts(t, f, 2, 1, 20+50)
	if f.UIDNext != uidNext {
		t.Errorf("Expunge changed UIDNext from %d to %d", uidNext, f.UIDNext)
	}
	if got := e.uids(u.ID, inbox.ID); !sameUIDs(got, []userdata.UID{uid(1), uid(4)}) {
		t.Errorf("UIDs after the expunges = %v, want [%d %d]", got, uid(1), uid(4))
	}
	wantUsage(t, e.usage(u.ID), 2, 70, "after Expunge(nil)")
	for i, live := range []bool{false, true, false, false, true, false} {
		e.bodyLive(ms[i].Ref, live, "message %d after Expunge(nil)", i)
	}
	before := e.folder(u.ID, userdata.Inbox)
	if x := e.expunge(u.ID, inbox.ID, nil); len(x) != 0 {
		t.Errorf("Expunge with nothing \\Deleted = %v", x)
	}
	if x := e.expunge(u.ID, inbox.ID, userdata.UIDSet{{Start: uid(1), Stop: uid(1)}}); len(x) != 0 {
		t.Errorf("Expunge of a message without \\Deleted = %v", x)
	}
	if f := e.folder(u.ID, userdata.Inbox); f != before {
		t.Errorf("Expunge removing nothing changed INBOX from %+v to %+v", before, f)
	}
	if m := e.add(u.ID, inbox.ID, e.newMsg(u, "INBOX", 5, 0)); m.UID != uidNext {
		t.Errorf("Append after expunges got UID %d, want %d (UIDs are never reused)", m.UID, uidNext)
	}
	_, err := db.Expunge(ctx, u.ID, unknownFolder, nil)
	wantErr(t, err, userdata.ErrNotFound, "Expunge of an unknown folder")

	// DeleteFolder releases the bodies of its messages, and only those.
	work := e.createFolder(u.ID, "Work")
	if _, err := db.Copy(ctx, u.ID, inbox.ID, userdata.UIDSet{{Start: uid(1), Stop: uid(1)}}, work.ID); err != nil {
		t.Fatalf("Copy to Work: %v", err)
	}
	w1 := e.add(u.ID, work.ID, e.newMsg(u, "Work", 300, 0))
	w2 := e.add(u.ID, work.ID, e.newMsg(u, "Work", 400, userdata.FlagDeleted))
	before2 := e.usage(u.ID)
	must(t, db.DeleteFolder(ctx, u.ID, "Work"), "DeleteFolder(Work)")
	wantUsage(t, e.usage(u.ID), before2.Messages-3, before2.Bytes-700-ms[1].Size, "after DeleteFolder")
	e.bodyLive(w1.Ref, false, "a message of a deleted folder")
	e.bodyLive(w2.Ref, false, "a \\Deleted message of a deleted folder")
	e.bodyLive(ms[1].Ref, true, "a body copied to a deleted folder")
	e.checkCounts(u.ID, inbox.ID)
	_, err = db.UIDs(ctx, u.ID, work.ID)
	wantErr(t, err, userdata.ErrNotFound, "UIDs of a deleted folder")
}

func testRemove(t *testing.T, e *env) {
	r, ok := e.db.(userdata.Remover)
	if !ok {
		t.Skip("the database does not implement userdata.Remover")
	}
	ctx := e.ctx
	u := e.simpleUser("ann@example.test")
	inbox := e.folder(u.ID, userdata.Inbox)
	d, s := userdata.FlagDeleted, userdata.FlagSeen
	var ms []userdata.Message
	for i, fl := range []userdata.Flags{0, d, s, d | s, 0} {
		ms = append(ms, e.add(u.ID, inbox.ID, e.newMsg(u, "INBOX", 10*(i+1), fl)))
	}
	uid := func(i int) userdata.UID { return ms[i].UID }

	// Exactly the set, whatever the flags: message 1's \Deleted (set by
	// someone else) keeps it, and a UID already gone is skipped.
	set := userdata.UIDSet{{Start: uid(0), Stop: uid(0)}, {Start: uid(2), Stop: uid(3)}, {Start: uid(4) + 10, Stop: uid(4) + 10}}
	x, err := r.Remove(ctx, u.ID, inbox.ID, set)
	must(t, err, "Remove(%v)", set)
	if !sameUIDs(x, []userdata.UID{uid(0), uid(2), uid(3)}) {
		t.Errorf("Remove(%v) = %v, want [%d %d %d]", set, x, uid(0), uid(2), uid(3))
	}
	if got := e.uids(u.ID, inbox.ID); !sameUIDs(got, []userdata.UID{uid(1), uid(4)}) {
		t.Errorf("UIDs after Remove = %v, want [%d %d]", got, uid(1), uid(4))
	}
	wantCounts(t, e.checkCounts(u.ID, inbox.ID), 2, 2, 20+50)
	wantUsage(t, e.usage(u.ID), 2, 70, "after Remove")
	for i, live := range []bool{false, true, false, false, true} {
		e.bodyLive(ms[i].Ref, live, "message %d after Remove", i)
	}
	var expunged []userdata.UID
	err = e.db.Changes(ctx, u.ID, inbox.ID, ms[4].ModSeq, func(c userdata.Change) error {
		if c.Expunged {
			expunged = append(expunged, c.UID)
		}
		return nil
	})
	must(t, err, "Changes after Remove")
	if !sameUIDs(expunged, x) {
		t.Errorf("Changes after Remove report %v expunged, want %v", expunged, x)
	}

	before := e.folder(u.ID, userdata.Inbox)
	if x, err := r.Remove(ctx, u.ID, inbox.ID, userdata.UIDSet{}); err != nil || len(x) != 0 {
		t.Errorf("Remove of an empty set = %v, %v", x, err)
	}
	if f := e.folder(u.ID, userdata.Inbox); f != before {
		t.Errorf("Remove of nothing changed INBOX from %+v to %+v", before, f)
	}
	_, err = r.Remove(ctx, u.ID, inbox.ID, nil)
	wantErr(t, err, userdata.ErrInvalid, "Remove(nil)")
	_, err = r.Remove(ctx, u.ID, unknownFolder, set)
	wantErr(t, err, userdata.ErrNotFound, "Remove in an unknown folder")
}
