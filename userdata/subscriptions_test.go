package userdata

import (
	"context"
	"encoding/binary"
	"slices"
	"testing"
)

func subscriptionsOf(t *testing.T, d *DB, u UserID) []string {
	t.Helper()
	var names []string
	if err := d.Subscriptions(t.Context(), u, func(name string) error {
		names = append(names, name)
		return nil
	}); err != nil {
		t.Fatalf("Subscriptions(%d): %v", u, err)
	}
	return names
}

// oldFolderRecord encodes f as folder records were written before schema
// version 1, when they held the subscription: at version 1 (no \Recent
// watermark) or 2.
func oldFolderRecord(f Folder, version byte, subscribed bool) []byte {
	e := enc{version}.u(uint64(f.ID)).s(f.Name).s(f.SpecialUse).bool(subscribed).
		u(uint64(f.UIDValidity)).u(uint64(f.UIDNext)).u(f.HighestModSeq).
		u(uint64(f.Messages)).u(uint64(f.Unseen)).i(f.Size)
	if version >= 2 {
		e = e.u(uint64(f.RecentUID))
	}
	return e
}

// TestUpgradeSubscriptions opens a database written in the layout before
// schema version 1 (subscriptions as a bit of the folder records, no
// subscription table, no schema version): Open copies the bits into the
// table once, and the copy survives a crash part way and later changes.
func TestUpgradeSubscriptions(t *testing.T) {
	ctx := t.Context()
	cfg := mirrorConfig(t)
	cfg.Mirror = ""
	d, err := Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.CreateDomain(ctx, Domain{Name: "example.test"}); err != nil {
		t.Fatal(err)
	}
	var users []UserID
	for _, addr := range []string{"ann@example.test", "bob@example.test"} {
		u, err := d.CreateUser(ctx, NewUser{Address: addr})
		if err != nil {
			t.Fatal(err)
		}
		users = append(users, u.ID)
		for _, name := range []string{"Work/Later", "Lists"} {
			if _, err := d.CreateFolder(ctx, u.ID, name, ""); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Rewrite the database as the old layout had it: ann's INBOX, Work
	// and Sent (the last at record version 1) subscribed, bob's Lists.
	subscribed := map[UserID][]string{
		users[0]: {Inbox, "Sent", "Work"},
		users[1]: {"Lists"},
	}
	b := d.db.NewBatch()
	for _, u := range users {
		if err := d.ListFolders(ctx, u, func(f Folder) error {
			version := byte(2)
			if f.Name == "Sent" {
				version = 1
			}
			b.Set(keyFolder(u, f.ID), oldFolderRecord(f, version, slices.Contains(subscribed[u], f.Name)), nil)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		prefix := keyID(tagSubscribed, uint64(u))
		b.DeleteRange(prefix, prefixEnd(prefix), nil)
	}
	b.Delete(schemaKey, nil)
	// A crash part way through an upgrade left one name copied already.
	b.Set(keySubscribed(users[1], "Lists"), nil, nil)
	if err := d.commit(b); err != nil {
		t.Fatal(err)
	}
	b.Close()
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}

	reopen := func() *DB {
		t.Helper()
		d, err := Open(ctx, cfg)
		if err != nil {
			t.Fatalf("Open of the old layout: %v", err)
		}
		return d
	}
	d = reopen()
	for _, u := range users {
		want := slices.Sorted(slices.Values(subscribed[u]))
		if got := subscriptionsOf(t, d, u); !slices.Equal(got, want) {
			t.Errorf("user %d after the upgrade: Subscriptions = %q, want %q", u, got, want)
		}
	}
	if v, err := readKey(d.db, schemaKey); err != nil || binary.BigEndian.Uint64(v) != schemaVersion {
		t.Errorf("schema version after the upgrade: %x, %v", v, err)
	}
	// The old records still read, with everything but the subscription.
	if f, err := d.Folder(ctx, users[0], "Sent"); err != nil || f.SpecialUse != SpecialSent || f.UIDNext != 1 {
		t.Errorf("Folder(Sent) from a version 1 record: %+v, %v", f, err)
	}
	// The upgrade runs once: what changes after it stays changed.
	if err := d.Subscribe(ctx, users[0], Inbox, false); err != nil {
		t.Fatal(err)
	}
	if err := d.DeleteFolder(ctx, users[1], "Lists"); err != nil {
		t.Fatal(err)
	}
	d.Close()
	d = reopen()
	defer d.Close()
	if got, want := subscriptionsOf(t, d, users[0]), []string{"Sent", "Work"}; !slices.Equal(got, want) {
		t.Errorf("ann after a second Open: Subscriptions = %q, want %q", got, want)
	}
	if got, want := subscriptionsOf(t, d, users[1]), []string{"Lists"}; !slices.Equal(got, want) {
		t.Errorf("bob after a second Open: Subscriptions = %q, want %q", got, want)
	}
}

// TestUpgradeRefusesNewerSchema: a database from a newer program is not
// opened.
func TestUpgradeRefusesNewerSchema(t *testing.T) {
	ctx := t.Context()
	cfg := mirrorConfig(t)
	cfg.Mirror = ""
	d, err := Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	b := d.db.NewBatch()
	b.Set(schemaKey, binary.BigEndian.AppendUint64(nil, schemaVersion+1), nil)
	if err := d.commit(b); err != nil {
		t.Fatal(err)
	}
	b.Close()
	d.Close()
	if d, err := Open(ctx, cfg); err == nil {
		d.Close()
		t.Fatal("opened a database of a newer schema")
	}
}

// TestMirrorSubscriptions: subscription changes reach the hot standby, in
// the same commits as the rest.
func TestMirrorSubscriptions(t *testing.T) {
	ctx := context.Background()
	cfg := mirrorConfig(t)
	d, err := Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.CreateDomain(ctx, Domain{Name: "example.test"}); err != nil {
		t.Fatal(err)
	}
	u, err := d.CreateUser(ctx, NewUser{Address: "ann@example.test"})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"Work/Later", "Lists"} {
		if _, err := d.CreateFolder(ctx, u.ID, name, ""); err != nil {
			t.Fatal(err)
		}
		if err := d.Subscribe(ctx, u.ID, name, true); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.Subscribe(ctx, u.ID, "Junk", false); err != nil {
		t.Fatal(err)
	}
	if err := d.RenameFolder(ctx, u.ID, "Work", "Job"); err != nil {
		t.Fatal(err)
	}
	if err := d.DeleteFolder(ctx, u.ID, "Lists"); err != nil {
		t.Fatal(err)
	}
	want := subscriptionsOf(t, d, u.ID)
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	sameKeys(t, cfg.Dir, cfg.Mirror)
	alone := cfg
	alone.Dir, alone.Mirror = cfg.Mirror, ""
	m, err := Open(ctx, alone)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if got := subscriptionsOf(t, m, u.ID); !slices.Equal(got, want) || !slices.Contains(got, "Job/Later") || !slices.Contains(got, "Lists") {
		t.Errorf("the mirror alone: Subscriptions = %q, want %q (with Job/Later and Lists)", got, want)
	}
}
