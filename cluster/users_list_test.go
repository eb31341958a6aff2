package cluster_test

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/mailsys/mailsys/cluster"
	"github.com/mailsys/mailsys/msstore"
	"github.com/mailsys/mailsys/userdata"
)

// TestUsersList: with users on two UD nodes, ListUsers pages through all
// of a domain's in address order, filters as each node does, DomainUsage
// sums the nodes, a node down fails the listing rather than shortening it,
// and DeleteUser deletes on the user's node and frees its addresses in the
// Directory for a new user.
func TestUsersList(t *testing.T) {
	ctx := t.Context()
	p := newLocalPeers()
	mem := msstore.NewMemory(1)
	p.addUD(t, "ud1", 1, 10, mem)
	p.addUD(t, "ud2", 2, 10, mem)
	u := cluster.NewUsers(openDir(t), p, nil)
	for _, d := range []string{"list.test", "other.test"} {
		if err := u.CreateDomain(ctx, userdata.Domain{Name: d}); err != nil {
			t.Fatal(err)
		}
	}
	if err := u.DefineClass(ctx, userdata.ServiceClass{Name: "std"}); err != nil {
		t.Fatal(err)
	}
	unit, err := u.CreateUnit(ctx, userdata.OrgUnit{Domain: "list.test", Name: "Ops"})
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	nodes := map[string]int{}
	for i := range 60 {
		nu := userdata.NewUser{Address: fmt.Sprintf("user%02d@list.test", (i*37)%60), Name: fmt.Sprintf("Person %d", i)}
		if i%5 == 0 {
			nu.Unit = unit.ID
		}
		made, err := u.CreateUser(ctx, nu)
		if err != nil {
			t.Fatal(err)
		}
		nodes[made.Node]++
		want = append(want, made.Address)
	}
	if _, err := u.CreateUser(ctx, userdata.NewUser{Address: "user00@other.test"}); err != nil {
		t.Fatal(err)
	}
	if nodes["ud1"] == 0 || nodes["ud2"] == 0 {
		t.Fatalf("users on %v: want some on each node", nodes)
	}
	slices.Sort(want)

	list := func(q userdata.UserQuery) []string {
		t.Helper()
		var got []string
		for range 100 {
			us, err := u.ListUsers(ctx, q)
			if err != nil {
				t.Fatalf("ListUsers(%+v): %v", q, err)
			}
			if len(us) > q.Limit {
				t.Fatalf("ListUsers(%+v): %d users, over the limit", q, len(us))
			}
			for _, x := range us {
				got = append(got, x.Address)
			}
			if len(us) < q.Limit {
				return got
			}
			q.After = us[len(us)-1].Address
		}
		t.Fatal("ListUsers: too many pages")
		return nil
	}
	if got := list(userdata.UserQuery{Domain: "list.test", Limit: 7}); !slices.Equal(got, want) {
		t.Fatalf("ListUsers by pages of 7 =\n%q\nwant\n%q", got, want)
	}
	if got := list(userdata.UserQuery{Domain: "list.test", Unit: unit.ID, Limit: 5}); len(got) != 12 || !slices.IsSorted(got) {
		t.Errorf("ListUsers of the unit = %q, want 12 in order", got)
	}
	if got := list(userdata.UserQuery{Domain: "list.test", Search: "user1", Limit: 3}); !slices.Equal(got, want[10:20]) {
		t.Errorf("ListUsers searching user1 = %q, want %q", got, want[10:20])
	}
	if ds, err := u.ListDomains(ctx, "", 0); err != nil || len(ds) != 2 || ds[0].Name != "list.test" {
		t.Errorf("ListDomains = %+v, %v", ds, err)
	}
	if us, err := u.ListUnits(ctx, "list.test"); err != nil || len(us) != 1 || us[0] != unit {
		t.Errorf("ListUnits = %+v, %v", us, err)
	}
	if cs, err := u.ListClasses(ctx); err != nil || len(cs) != 1 || cs[0].Name != "std" {
		t.Errorf("ListClasses = %+v, %v", cs, err)
	}
	if du, err := u.DomainUsage(ctx, "list.test"); err != nil || du.Users != 60 {
		t.Errorf("DomainUsage = %+v, %v; want 60 users over both nodes", du, err)
	}

	// A node down: no listing short of its users.
	p.setDown("ud2", true)
	if _, err := u.ListUsers(ctx, userdata.UserQuery{Domain: "list.test"}); !errors.Is(err, userdata.ErrUnavailable) {
		t.Errorf("ListUsers with ud2 down: %v, want ErrUnavailable", err)
	}
	if _, err := u.DomainUsage(ctx, "list.test"); !errors.Is(err, userdata.ErrUnavailable) {
		t.Errorf("DomainUsage with ud2 down: %v, want ErrUnavailable", err)
	}
	if _, err := u.ListDomains(ctx, "", 0); err != nil {
		t.Errorf("ListDomains with ud2 down: %v", err)
	}
	p.setDown("ud2", false)

	// Deletion frees the address and the alias across the cluster.
	victim, err := u.LookupAddress(ctx, want[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := u.AddAlias(ctx, "alias@list.test", victim.ID); err != nil {
		t.Fatal(err)
	}
	if err := u.DeleteUser(ctx, victim.ID); err != nil {
		t.Fatalf("DeleteUser: %v", err)
	}
	if _, err := u.User(ctx, victim.ID); !errors.Is(err, userdata.ErrNotFound) {
		t.Errorf("User after DeleteUser: %v, want ErrNotFound", err)
	}
	if err := u.DeleteUser(ctx, victim.ID); !errors.Is(err, userdata.ErrNotFound) {
		t.Errorf("DeleteUser again: %v, want ErrNotFound", err)
	}
	if got := list(userdata.UserQuery{Domain: "list.test", Limit: 50}); !slices.Equal(got, want[1:]) {
		t.Errorf("ListUsers after the deletion = %q, want %q", got, want[1:])
	}
	again, err := u.CreateUser(ctx, userdata.NewUser{Address: victim.Address})
	if err != nil {
		t.Fatalf("CreateUser of a deleted user's address: %v", err)
	}
	if again.ID == victim.ID {
		t.Errorf("the new user got the deleted user's id %d", again.ID)
	}
	if err := u.AddAlias(ctx, "alias@list.test", again.ID); err != nil {
		t.Fatalf("AddAlias of a deleted user's alias: %v", err)
	}
	if got, err := u.LookupAddress(ctx, "alias@list.test"); err != nil || got.ID != again.ID {
		t.Errorf("LookupAddress(alias) = %d, %v; want %d", got.ID, err, again.ID)
	}
	if du, err := u.DomainUsage(ctx, "list.test"); err != nil || du.Users != 60 {
		t.Errorf("DomainUsage after delete and create = %+v, %v; want 60 users", du, err)
	}
}
