package udtest

import (
	"bytes"
	"slices"
	"testing"

	"github.com/mailsys/mailsys/userdata"
)

// testOwnership checks the rules of userdata.UserDB on values passed in
// and returned: the database keeps none of the caller's slices, the
// caller may modify what it gets back, and callbacks may call the
// database.
func testOwnership(t *testing.T, e *env) {
	ctx, db := e.ctx, e.db
	u := e.simpleUser("ann@example.test")
	inbox := e.folder(u.ID, userdata.Inbox)
	nm := e.newMsg(u, "INBOX", 10, 0, "$Label1")
	want := nm
	want.Keywords = slices.Clone(nm.Keywords)
	want.Envelope, want.Structure = bytes.Clone(nm.Envelope), bytes.Clone(nm.Structure)
	m, err := db.Append(ctx, u.ID, inbox.ID, nm)
	must(t, err, "Append")
	// The caller reuses what it passed, and scribbles on what it got.
	nm.Keywords[0] = "Scribbled"
	clear(nm.Envelope)
	clear(nm.Structure)
	m.Keywords[0] = "Scribbled2"
	clear(m.Envelope)
	uids := e.uids(u.ID, inbox.ID)
	uids[0] = 999
	set := userdata.UIDSet{{Start: m.UID, Stop: m.UID}}
	fu := userdata.FlagUpdate{Op: userdata.FlagsAdd, Keywords: []string{"$Label2"}}
	res, err := db.StoreFlags(ctx, u.ID, inbox.ID, set, fu)
	must(t, err, "StoreFlags")
	fu.Keywords[0] = "Scribbled3"
	set[0] = userdata.UIDRange{Start: 1000, Stop: 1000}
	if len(res.Changed) != 1 {
		t.Fatalf("StoreFlags changed %d messages, want 1", len(res.Changed))
	}
	want.Keywords = append(want.Keywords, "$Label2")
	got := e.messages(u.ID, inbox.ID, all)
	if len(got) != 1 {
		t.Fatalf("%d messages, want 1", len(got))
	}
	sameContent(t, "after the caller modified what it passed and got", got[0], want)
	if uids := e.uids(u.ID, inbox.ID); !sameUIDs(uids, []userdata.UID{m.UID}) {
		t.Errorf("UIDs after the caller modified an earlier result = %v, want [%d]", uids, m.UID)
	}

	// Callbacks may call the database.
	must(t, db.Messages(ctx, u.ID, inbox.ID, all, func(*userdata.Message) error {
		_, err := db.Folder(ctx, u.ID, userdata.Inbox)
		return err
	}), "Folder from a Messages callback")
	must(t, db.ListFolders(ctx, u.ID, func(f userdata.Folder) error {
		_, err := db.FolderByID(ctx, u.ID, f.ID)
		return err
	}), "FolderByID from a ListFolders callback")
	must(t, db.Changes(ctx, u.ID, inbox.ID, 0, func(userdata.Change) error {
		_, err := db.UIDs(ctx, u.ID, inbox.ID)
		return err
	}), "UIDs from a Changes callback")
	must(t, db.Subscriptions(ctx, u.ID, func(string) error {
		_, err := db.Usage(ctx, u.ID)
		return err
	}), "Usage from a Subscriptions callback")
}
