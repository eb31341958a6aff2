package udtest

import (
	"slices"
	"strings"
	"testing"

	"github.com/mailsys/mailsys/msstore"
	"github.com/mailsys/mailsys/userdata"
)

func testFolders(t *testing.T, e *env) {
	ctx, db := e.ctx, e.db
	u := e.simpleUser("fred@example.test")

	abc, err := db.CreateFolder(ctx, u.ID, "A/B/C", "")
	must(t, err, "CreateFolder(A/B/C)")
	if abc.Name != "A/B/C" || abc.ID == 0 || abc.UIDNext != 1 || abc.UIDValidity == 0 || abc.Messages != 0 {
		t.Errorf("CreateFolder(A/B/C) = %+v", abc)
	}
	if g := e.folderByID(u.ID, abc.ID); g != abc {
		t.Errorf("FolderByID(A/B/C) = %+v, CreateFolder gave %+v", g, abc)
	}
	a := e.folder(u.ID, "A")
	ab := e.folder(u.ID, "A/B")
	for _, name := range []string{"A", "A/B", "A/B/C"} {
		_, err := db.CreateFolder(ctx, u.ID, name, "")
		wantErr(t, err, userdata.ErrExists, "CreateFolder(%q) of an existing folder", name)
	}
	inbox := e.folder(u.ID, userdata.Inbox)
	for _, name := range []string{"inbox", "InBox", "INBOX"} {
		if f, err := db.Folder(ctx, u.ID, name); err != nil || f.ID != inbox.ID || f.Name != userdata.Inbox {
			t.Errorf("Folder(%q) = %+v, %v; want INBOX", name, f, err)
		}
		_, err := db.CreateFolder(ctx, u.ID, name, "")
		wantErr(t, err, userdata.ErrExists, "CreateFolder(%q)", name)
	}
	sub, err := db.CreateFolder(ctx, u.ID, "inbox/Sub", "")
	must(t, err, "CreateFolder(inbox/Sub)")
	if sub.Name != "INBOX/Sub" {
		t.Errorf("CreateFolder(inbox/Sub): Name = %q, want INBOX/Sub", sub.Name)
	}
	if f, err := db.Folder(ctx, u.ID, "Inbox/Sub"); err != nil || f.ID != sub.ID {
		t.Errorf("Folder(Inbox/Sub) = %+v, %v; want INBOX/Sub", f, err)
	}
	intl := e.createFolder(u.ID, "Entwürfe/日本語")
	if f := e.folder(u.ID, "Entwürfe/日本語"); f.ID != intl.ID {
		t.Errorf("Folder(Entwürfe/日本語) has ID %d, CreateFolder gave %d", f.ID, intl.ID)
	}
	old, err := db.CreateFolder(ctx, u.ID, "Old Mail", userdata.SpecialArchive)
	must(t, err, "CreateFolder with a special use")
	if f := e.folder(u.ID, "Old Mail"); old.SpecialUse != userdata.SpecialArchive || f.SpecialUse != userdata.SpecialArchive {
		t.Errorf("CreateFolder(Old Mail, \\Archive): SpecialUse = %q, Folder gives %q", old.SpecialUse, f.SpecialUse)
	}
	_, err = db.CreateFolder(ctx, u.ID, "Bogus", `\Bogus`)
	wantErr(t, err, userdata.ErrInvalid, "CreateFolder with an unknown special use")

	longName := strings.Repeat(strings.Repeat("x", 99)+"/", 10) + "y" // 1001 bytes, every level short
	for _, bad := range []string{"", "a//b", "/a", "a/", "/", "x*y", "x%y", "tab\tname", longName, strings.Repeat("z", 256), "\xff", "ok/\xfe"} {
		_, err := db.CreateFolder(ctx, u.ID, bad, "")
		wantErr(t, err, userdata.ErrInvalid, "CreateFolder(%.40q)", bad)
	}

	// Name order.
	fs := e.listFolders(u.ID)
	var names []string
	for _, f := range fs {
		names = append(names, f.Name)
	}
	if !slices.IsSorted(names) {
		t.Errorf("ListFolders order: %q, want name order", names)
	}
	wantNames := []string{"A", "A/B", "A/B/C", "Archive", "Drafts", "Entwürfe", "Entwürfe/日本語", "INBOX", "INBOX/Sub", "Junk", "Old Mail", "Sent", "Trash"}
	slices.Sort(wantNames)
	if !slices.Equal(names, wantNames) {
		t.Errorf("ListFolders = %q, want %q", names, wantNames)
	}

	// Renames move the subtree and keep the IDs.
	must(t, db.RenameFolder(ctx, u.ID, "A", "Z"), "RenameFolder(A, Z)")
	for _, c := range []struct {
		f    userdata.Folder
		name string
	}{{a, "Z"}, {ab, "Z/B"}, {abc, "Z/B/C"}} {
		if g := e.folderByID(u.ID, c.f.ID); g.Name != c.name || g.UIDValidity != c.f.UIDValidity {
			t.Errorf("after RenameFolder(A, Z): FolderByID(%d) = %+v, want name %q", c.f.ID, g, c.name)
		}
		if g, err := db.Folder(ctx, u.ID, c.name); err != nil || g.ID != c.f.ID {
			t.Errorf("after RenameFolder(A, Z): Folder(%q) = %+v, %v; want ID %d", c.name, g, err, c.f.ID)
		}
	}
	for _, name := range []string{"A", "A/B", "A/B/C"} {
		_, err := db.Folder(ctx, u.ID, name)
		wantErr(t, err, userdata.ErrNotFound, "Folder(%q) after it was renamed", name)
	}
	wantErr(t, db.RenameFolder(ctx, u.ID, "Z", "Sent"), userdata.ErrExists, "RenameFolder onto an existing folder")
	wantErr(t, db.RenameFolder(ctx, u.ID, "Z/B/C", "inbox"), userdata.ErrExists, "RenameFolder onto INBOX")
	wantErr(t, db.RenameFolder(ctx, u.ID, "Nope", "Nope2"), userdata.ErrNotFound, "RenameFolder of an unknown folder")
	wantErr(t, db.RenameFolder(ctx, u.ID, "Z", "bad//name"), userdata.ErrInvalid, "RenameFolder to an invalid name")
	if g := e.folderByID(u.ID, a.ID); g.Name != "Z" {
		t.Errorf("after failed renames: folder %d is %q, want Z", a.ID, g.Name)
	}
	must(t, db.RenameFolder(ctx, u.ID, "Z/B/C", "Top"), "RenameFolder(Z/B/C, Top)")
	if g := e.folderByID(u.ID, abc.ID); g.Name != "Top" {
		t.Errorf("after RenameFolder(Z/B/C, Top): name %q", g.Name)
	}

	// Renaming INBOX moves its messages and leaves it empty.
	var refs []msstore.Ref
	for i := range 3 {
		m := e.add(u.ID, inbox.ID, e.newMsg(u, "INBOX", 100+i, 0))
		refs = append(refs, m.Ref)
	}
	must(t, db.RenameFolder(ctx, u.ID, "INBOX", "Old Inbox"), "RenameFolder(INBOX, Old Inbox)")
	oldInbox := e.folder(u.ID, "Old Inbox")
	ms := e.messages(u.ID, oldInbox.ID, all)
	if len(ms) != 3 || oldInbox.Messages != 3 {
		t.Errorf("after renaming INBOX: the new folder has %d messages (Messages %d), want 3", len(ms), oldInbox.Messages)
	}
	for i, m := range ms {
		if i < len(refs) && m.Ref != refs[i] {
			t.Errorf("after renaming INBOX: message %d has Ref %v, want %v", i, m.Ref, refs[i])
		}
	}
	newInbox := e.folder(u.ID, "INBOX")
	if newInbox.Messages != 0 || newInbox.Size != 0 || len(e.uids(u.ID, newInbox.ID)) != 0 {
		t.Errorf("after renaming INBOX: INBOX = %+v, want it empty", newInbox)
	}
	if f, err := db.Folder(ctx, u.ID, "INBOX/Sub"); err != nil || f.ID != sub.ID {
		t.Errorf("after renaming INBOX: Folder(INBOX/Sub) = %+v, %v; want it left in place", f, err)
	}
	e.add(u.ID, newInbox.ID, e.newMsg(u, "INBOX", 50, 0))
	e.checkCounts(u.ID, newInbox.ID)
	e.checkCounts(u.ID, oldInbox.ID)

	// Deleting.
	wantErr(t, db.DeleteFolder(ctx, u.ID, "Z"), userdata.ErrNotEmpty, "DeleteFolder of a folder with a subfolder")
	for _, name := range []string{"INBOX", "inbox"} {
		wantSomeErr(t, db.DeleteFolder(ctx, u.ID, name), "DeleteFolder(%q)", name)
	}
	if _, err := db.Folder(ctx, u.ID, "INBOX"); err != nil {
		t.Errorf("Folder(INBOX) after DeleteFolder(INBOX) failed: %v", err)
	}
	wantErr(t, db.DeleteFolder(ctx, u.ID, "Nope"), userdata.ErrNotFound, "DeleteFolder of an unknown folder")
	must(t, db.DeleteFolder(ctx, u.ID, "Z/B"), "DeleteFolder(Z/B)")
	_, err = db.Folder(ctx, u.ID, "Z/B")
	wantErr(t, err, userdata.ErrNotFound, "Folder(Z/B) after DeleteFolder")
	_, err = db.FolderByID(ctx, u.ID, ab.ID)
	wantErr(t, err, userdata.ErrNotFound, "FolderByID of a deleted folder")
	must(t, db.DeleteFolder(ctx, u.ID, "Z"), "DeleteFolder(Z) once it has no subfolder")
	again := e.createFolder(u.ID, "Z/B")
	if again.ID == ab.ID || again.ID == a.ID {
		t.Errorf("recreated Z/B got ID %d, a deleted folder's ID", again.ID)
	}
	if again.UIDValidity == ab.UIDValidity {
		t.Errorf("recreated Z/B got the deleted folder's UIDValidity %d", again.UIDValidity)
	}

	// Unknown users.
	wantErr(t, db.ListFolders(ctx, unknownUser, func(userdata.Folder) error { return nil }), userdata.ErrNotFound, "ListFolders of an unknown user")
	_, err = db.Folder(ctx, unknownUser, "INBOX")
	wantErr(t, err, userdata.ErrNotFound, "Folder of an unknown user")
	_, err = db.FolderByID(ctx, unknownUser, inbox.ID)
	wantErr(t, err, userdata.ErrNotFound, "FolderByID of an unknown user")
	_, err = db.CreateFolder(ctx, unknownUser, "X", "")
	wantErr(t, err, userdata.ErrNotFound, "CreateFolder of an unknown user")
	_, err = db.Folder(ctx, u.ID, "Nope")
	wantErr(t, err, userdata.ErrNotFound, "Folder of an unknown folder")
	_, err = db.FolderByID(ctx, u.ID, unknownFolder)
	wantErr(t, err, userdata.ErrNotFound, "FolderByID of an unknown folder")
}
