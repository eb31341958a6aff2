package udtest

import (
	"errors"
	"slices"
	"testing"

	"github.com/mailsys/mailsys/userdata"
)

// subscriptions returns u's subscribed names, checking that they come in
// name order.
func (e *env) subscriptions(u userdata.UserID) []string {
	e.t.Helper()
	var names []string
	must(e.t, e.db.Subscriptions(e.ctx, u, func(name string) error {
		names = append(names, name)
		return nil
	}), "Subscriptions(%d)", u)
	if !slices.IsSorted(names) {
		e.t.Errorf("Subscriptions(%d) = %q, not in name order", u, names)
	}
	return names
}

// wantSubscriptions checks u's subscribed names after what.
func (e *env) wantSubscriptions(u userdata.UserID, what string, want ...string) {
	e.t.Helper()
	slices.Sort(want)
	if got := e.subscriptions(u); !slices.Equal(got, want) {
		e.t.Errorf("after %s: Subscriptions = %q, want %q", what, got, want)
	}
}

// testSubscriptions checks the subscription contract of [userdata.Folders]:
// a set of names apart from the folders, which DeleteFolder leaves alone
// and RenameFolder moves.
func testSubscriptions(t *testing.T, e *env) {
	ctx, db := e.ctx, e.db
	u := e.simpleUser("sue@example.test")
	other := e.simpleUser("otto@example.test")
	defaults := []string{"Archive", "Drafts", "INBOX", "Junk", "Sent", "Trash"}
	e.wantSubscriptions(u.ID, "CreateUser", defaults...)

	// New folders, their implicit parents included, start unsubscribed.
	e.createFolder(u.ID, "A/B/C")
	e.createFolder(u.ID, "AB")
	e.createFolder(u.ID, "A-x")
	e.wantSubscriptions(u.ID, "CreateFolder(A/B/C)", defaults...)

	// Subscribe and unsubscribe, twice each: the second changes nothing.
	for range 2 {
		must(t, db.Subscribe(ctx, u.ID, "A/B", true), "Subscribe(A/B)")
	}
	e.wantSubscriptions(u.ID, "Subscribe(A/B)", append([]string{"A/B"}, defaults...)...)
	for range 2 {
		must(t, db.Subscribe(ctx, u.ID, "A/B", false), "Subscribe(A/B, false)")
	}
	e.wantSubscriptions(u.ID, "Subscribe(A/B, false)", defaults...)
	// INBOX in any case is INBOX.
	must(t, db.Subscribe(ctx, u.ID, "inbox", false), "Subscribe(inbox, false)")
	e.wantSubscriptions(u.ID, "Subscribe(inbox, false)", "Archive", "Drafts", "Junk", "Sent", "Trash")
	must(t, db.Subscribe(ctx, u.ID, "Inbox", true), "Subscribe(Inbox)")
	e.wantSubscriptions(u.ID, "Subscribe(Inbox)", defaults...)

	// Only existing folders can be subscribed; any valid name unsubscribed.
	wantErr(t, db.Subscribe(ctx, u.ID, "Nope", true), userdata.ErrNotFound, "Subscribe of a name with no folder")
	must(t, db.Subscribe(ctx, u.ID, "Nope", false), "Subscribe(Nope, false) of a name never subscribed")
	for _, bad := range []string{"", "a//b", "x*y", "\xff"} {
		wantErr(t, db.Subscribe(ctx, u.ID, bad, true), userdata.ErrInvalid, "Subscribe(%q)", bad)
		wantErr(t, db.Subscribe(ctx, u.ID, bad, false), userdata.ErrInvalid, "Subscribe(%q, false)", bad)
	}
	wantErr(t, db.Subscribe(ctx, unknownUser, "INBOX", true), userdata.ErrNotFound, "Subscribe of an unknown user")
	wantErr(t, db.Subscribe(ctx, unknownUser, "INBOX", false), userdata.ErrNotFound, "Subscribe(false) of an unknown user")
	wantErr(t, db.Subscriptions(ctx, unknownUser, func(string) error { return nil }), userdata.ErrNotFound, "Subscriptions of an unknown user")

	// A deleted folder stays subscribed (RFC 3501 6.3.6), and a folder
	// made again under its name is subscribed.
	must(t, db.Subscribe(ctx, u.ID, "A/B/C", true), "Subscribe(A/B/C)")
	must(t, db.DeleteFolder(ctx, u.ID, "A/B/C"), "DeleteFolder(A/B/C)")
	e.wantSubscriptions(u.ID, "DeleteFolder of a subscribed folder", append([]string{"A/B/C"}, defaults...)...)
	e.createFolder(u.ID, "A/B/C")
	e.wantSubscriptions(u.ID, "CreateFolder of a subscribed name", append([]string{"A/B/C"}, defaults...)...)
	must(t, db.DeleteFolder(ctx, u.ID, "A/B/C"), "DeleteFolder(A/B/C)")
	must(t, db.Subscribe(ctx, u.ID, "A/B/C", false), "Subscribe(A/B/C, false) of a deleted folder")
	e.wantSubscriptions(u.ID, "unsubscribing a deleted folder", defaults...)

	// RenameFolder moves the subscriptions of the folder and of the names
	// below it, existing or not, and no others.
	e.createFolder(u.ID, "A/Gone")
	for _, name := range []string{"A", "A/B", "A/Gone", "AB", "A-x"} {
		must(t, db.Subscribe(ctx, u.ID, name, true), "Subscribe(%q)", name)
	}
	must(t, db.DeleteFolder(ctx, u.ID, "A/Gone"), "DeleteFolder(A/Gone)")
	wantErr(t, db.RenameFolder(ctx, u.ID, "A", "AB"), userdata.ErrExists, "RenameFolder onto a folder")
	e.wantSubscriptions(u.ID, "a failed RenameFolder", append([]string{"A", "A/B", "A/Gone", "AB", "A-x"}, defaults...)...)
	must(t, db.RenameFolder(ctx, u.ID, "A", "Z/Y"), "RenameFolder(A, Z/Y)")
	e.wantSubscriptions(u.ID, "RenameFolder(A, Z/Y)", append([]string{"Z/Y", "Z/Y/B", "Z/Y/Gone", "AB", "A-x"}, defaults...)...)

	// Renaming INBOX makes a new, unsubscribed folder; INBOX stays.
	must(t, db.RenameFolder(ctx, u.ID, "INBOX", "Old Inbox"), "RenameFolder(INBOX, Old Inbox)")
	e.wantSubscriptions(u.ID, "RenameFolder(INBOX, Old Inbox)", append([]string{"Z/Y", "Z/Y/B", "Z/Y/Gone", "AB", "A-x"}, defaults...)...)

	// fn's error stops the listing and is returned.
	stop := errors.New("stop")
	calls := 0
	err := db.Subscriptions(ctx, u.ID, func(string) error { calls++; return stop })
	if !errors.Is(err, stop) || calls != 1 {
		t.Errorf("Subscriptions with an fn that fails: %v after %d calls, want fn's error after 1", err, calls)
	}

	// Another user's subscriptions are their own.
	e.wantSubscriptions(other.ID, "another user's changes", defaults...)
}
