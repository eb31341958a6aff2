package udtest

import (
	"errors"
	"testing"

	"github.com/mailsys/mailsys/msstore"
	"github.com/mailsys/mailsys/userdata"
)

// testRewriteRefs checks userdata.RefRewriter: every entry of every user
// and folder is visited in batches, replaced Refs are stored without any
// change a client could see, the walk repeats harmlessly, and a
// replacement naming another body is refused.
func testRewriteRefs(t *testing.T, e *env) {
	rw, ok := e.db.(userdata.RefRewriter)
	if !ok {
		t.Skip("the database is not a userdata.RefRewriter")
	}
	alice, bob := e.simpleUser("alice@rw.example"), e.simpleUser("bob@rw.example")
	inbox := e.folder(alice.ID, "INBOX")
	arch := e.createFolder(bob.ID, "Old mail")
	const perFolder = userdata.RefBatchSize/2 + 20 // the walk needs more than one batch
	for range perFolder {
		e.add(alice.ID, inbox.ID, e.newMsg(alice, "INBOX", 40, userdata.FlagSeen))
		e.add(bob.ID, arch.ID, e.newMsg(bob, "Archive", 50, 0))
	}
	before := map[msstore.Ref]userdata.Message{}
	for _, where := range []struct {
		u userdata.UserID
		f userdata.FolderID
	}{{alice.ID, inbox.ID}, {bob.ID, arch.ID}} {
		for _, m := range e.messages(where.u, where.f, all) {
			before[m.Ref] = m
		}
	}
	fA, fB := e.folderByID(alice.ID, inbox.ID), e.folderByID(bob.ID, arch.ID)

	// The second copy a repair would add: node 2, another id.
	moved := func(r msstore.Ref) msstore.Ref {
		c, err := r.WithCopy(msstore.Ref{Node: 2, ID: r.ID + 1000, Size: r.Size, Sum: r.Sum})
		must(t, err, "WithCopy")
		return c
	}
	seen := map[msstore.Ref]int{}
	batches := 0
	n, err := rw.RewriteRefs(e.ctx, func(refs []msstore.Ref) error {
		batches++
		if len(refs) == 0 || len(refs) > userdata.RefBatchSize {
			t.Errorf("a batch of %d refs", len(refs))
		}
		for i, r := range refs {
			seen[r]++
			if r.ID%2 == 0 {
				refs[i] = moved(r)
			}
		}
		return nil
	})
	must(t, err, "RewriteRefs")
	if batches < 2 {
		t.Errorf("%d entries in %d batch(es)", 2*perFolder, batches)
	}
	want := 0
	for r := range before {
		if seen[r] != 1 {
			t.Errorf("entry with ref %v visited %d times", r, seen[r])
		}
		if r.ID%2 == 0 {
			want++
		}
	}
	if n != want || len(seen) != len(before) {
		t.Errorf("RewriteRefs = %d rewritten of %d seen, want %d of %d", n, len(seen), want, len(before))
	}
	// Only the Ref changed: same UIDs, MODSEQs, flags; no MODSEQ taken,
	// nothing in the change log.
	check := func(u userdata.UserID, f userdata.Folder) {
		t.Helper()
		for _, m := range e.messages(u, f.ID, all) {
			old := m.Ref
			if m.Ref.HasCopy() {
				old = m.Ref.First()
			}
			b, ok := before[old]
			switch {
			case !ok:
				t.Errorf("message %d has ref %v, not one it had", m.UID, m.Ref)
			case (old.ID%2 == 0) != m.Ref.HasCopy():
				t.Errorf("message %d: ref %v after the rewrite", m.UID, m.Ref)
			case b.UID != m.UID || b.ModSeq != m.ModSeq || b.Flags != m.Flags || b.Size != m.Size:
				t.Errorf("message %d: %+v became %+v", m.UID, b, m)
			}
		}
		after := e.folderByID(u, f.ID)
		if after.HighestModSeq != f.HighestModSeq || after.Messages != f.Messages || after.UIDNext != f.UIDNext {
			t.Errorf("folder %q: %+v became %+v", f.Name, f, after)
		}
		changes := 0
		must(t, e.db.Changes(e.ctx, u, f.ID, f.HighestModSeq, func(userdata.Change) error { changes++; return nil }), "Changes")
		if changes != 0 {
			t.Errorf("folder %q: %d changes logged by the rewrite", f.Name, changes)
		}
	}
	check(alice.ID, fA)
	check(bob.ID, fB)

	// Again: nothing to do, and the new refs are what fn sees.
	withCopy := 0
	n, err = rw.RewriteRefs(e.ctx, func(refs []msstore.Ref) error {
		for _, r := range refs {
			if r.HasCopy() {
				withCopy++
			}
		}
		return nil
	})
	if err != nil || n != 0 || withCopy != want {
		t.Errorf("second RewriteRefs = %d, %v with %d refs with a copy; want 0, nil, %d", n, err, withCopy, want)
	}

	// A replacement that is not the same body is refused, and nothing of
	// its batch is written.
	_, err = rw.RewriteRefs(e.ctx, func(refs []msstore.Ref) error {
		refs[0] = moved(refs[0].First())
		refs[len(refs)-1].Size++
		return nil
	})
	wantErr(t, err, userdata.ErrInvalid, "RewriteRefs to a ref of another size")
	_, err = rw.RewriteRefs(e.ctx, func(refs []msstore.Ref) error {
		refs[0] = msstore.Ref{}
		return nil
	})
	wantErr(t, err, userdata.ErrInvalid, "RewriteRefs to the zero ref")
	check(alice.ID, fA)
	check(bob.ID, fB)

	// fn's error ends the walk.
	stop := errors.New("stop")
	if _, err := rw.RewriteRefs(e.ctx, func([]msstore.Ref) error { return stop }); !errors.Is(err, stop) {
		t.Errorf("RewriteRefs with a failing fn = %v, want its error", err)
	}
}
