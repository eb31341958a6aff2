package userdata

import (
	"encoding/binary"
	"fmt"
	"slices"
	"testing"

	"github.com/mailsys/mailsys/msstore"
)

// TestUpgradeLister: a database from before schema version 2 (no domain
// user index, no alias table, no domain counts) is brought to it by Open:
// its users are listed, its domains counted as the records say, and a
// deletion finds the aliases made before.
func TestUpgradeLister(t *testing.T) {
	ctx := t.Context()
	cfg := mirrorConfig(t)
	cfg.Mirror = ""
	d, err := Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, dom := range []string{"a.test", "b.test"} {
		if err := d.CreateDomain(ctx, Domain{Name: dom}); err != nil {
			t.Fatal(err)
		}
	}
	var addrs []string
	var ids []UserID
	for i := range 30 {
		u, err := d.CreateUser(ctx, NewUser{Address: fmt.Sprintf("u%02d@a.test", 29-i), Name: fmt.Sprint("N", i)})
		if err != nil {
			t.Fatal(err)
		}
		addrs, ids = append(addrs, u.Address), append(ids, u.ID)
	}
	if _, err := d.CreateUser(ctx, NewUser{Address: "x@b.test"}); err != nil {
		t.Fatal(err)
	}
	yes := true
	if err := d.UpdateUser(ctx, ids[3], UserUpdate{Disabled: &yes}); err != nil {
		t.Fatal(err)
	}
	if err := d.AddAlias(ctx, "alias@b.test", ids[0]); err != nil {
		t.Fatal(err)
	}
	inbox, err := d.Folder(ctx, ids[0], Inbox)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if _, err := d.Append(ctx, ids[0], inbox.ID, NewMessage{Ref: msstore.Ref{Node: 1, ID: uint64(i + 1), Size: 10}, Size: 10}); err != nil {
			t.Fatal(err)
		}
	}
	before, err := d.DomainUsage(ctx, "a.test")
	if err != nil {
		t.Fatal(err)
	}
	if want := (DomainUsage{Users: 30, Disabled: 1, Usage: Usage{Messages: 3, Bytes: 30}}); before != want {
		t.Fatalf("DomainUsage before the downgrade = %+v, want %+v", before, want)
	}
	// Back to version 1: the Lister's tables gone.
	b := d.db.NewBatch()
	for _, tag := range []byte{tagDomainUser, tagUserAlias, tagDomainStat} {
		b.DeleteRange([]byte{tag}, []byte{tag + 1}, nil)
	}
	b.Set(schemaKey, binary.BigEndian.AppendUint64(nil, schemaSubscriptions), nil)
	if err := d.commit(b); err != nil {
		t.Fatal(err)
	}
	b.Close()
	if us, err := d.ListUsers(ctx, UserQuery{Domain: "a.test"}); err != nil || len(us) != 0 {
		t.Fatalf("ListUsers of the old layout = %d users, %v; want none (the test's downgrade did not take)", len(us), err)
	}
	d.Close()

	d, err = Open(ctx, cfg)
	if err != nil {
		t.Fatalf("Open of the old layout: %v", err)
	}
	defer d.Close()
	us, err := d.ListUsers(ctx, UserQuery{Domain: "a.test"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, u := range us {
		got = append(got, u.Address)
	}
	slices.Sort(addrs)
	if !slices.Equal(got, addrs) {
		t.Errorf("ListUsers after the upgrade = %q, want %q", got, addrs)
	}
	if got, err := d.DomainUsage(ctx, "a.test"); err != nil || got != before {
		t.Errorf("DomainUsage after the upgrade = %+v, %v; want %+v", got, err, before)
	}
	if got, err := d.DomainUsage(ctx, "b.test"); err != nil || got != (DomainUsage{Users: 1}) {
		t.Errorf("DomainUsage(b.test) after the upgrade = %+v, %v", got, err)
	}
	if err := d.DeleteUser(ctx, ids[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := d.LookupAddress(ctx, "alias@b.test"); err == nil {
		t.Error("the alias made before the upgrade outlived its user's deletion")
	}
	if got, err := d.DomainUsage(ctx, "a.test"); err != nil || got != (DomainUsage{Users: 29, Disabled: 1}) {
		t.Errorf("DomainUsage after the deletion = %+v, %v", got, err)
	}
	// Nothing of the user is left under its id.
	for _, tag := range []byte{tagUser, tagMailbox, tagFolder, tagFolderName, tagMessage, tagChange, tagKeywords, tagSubscribed, tagUserAlias} {
		p := keyID(tag, uint64(ids[0]))
		if err := d.scan(p, prefixEnd(p), func(k, v []byte) error { return fmt.Errorf("key %q left", k) }); err != nil {
			t.Errorf("after DeleteUser: %v", err)
		}
	}
}
