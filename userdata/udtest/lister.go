package udtest

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/mailsys/mailsys/msstore"
	"github.com/mailsys/mailsys/userdata"
)

// testLister checks userdata.Lister: domains, units and classes listed in
// order and paged, users paged by address within their domain, filtered
// by unit and by a search of the local part and name, a domain's counts
// kept through creation, disabling, appends, expunges and deletion, and a
// deletion that takes the account, its addresses, aliases, folders and
// bodies and leaves the address free.
func testLister(t *testing.T, e *env) {
	l, ok := e.db.(userdata.Lister)
	if !ok {
		t.Skip("the database is not a userdata.Lister")
	}
	for _, c := range []string{"silver", "bronze", "gold"} {
		e.class(userdata.ServiceClass{Name: c, Quota: 1 << 30})
	}
	doms := []string{"b.lister.example", "a.lister.example", "c.lister.example", "other.lister.example"}
	for _, d := range doms {
		e.domain(userdata.Domain{Name: d})
	}
	const dom = "b.lister.example"

	classes, err := l.ListClasses(e.ctx)
	must(t, err, "ListClasses")
	if got := classNames(classes); !slices.Equal(got, []string{"bronze", "gold", "silver"}) {
		t.Errorf("ListClasses = %q, want bronze, gold, silver", got)
	}
	var pages [][]string
	after := ""
	for range 5 {
		ds, err := l.ListDomains(e.ctx, after, 2)
		must(t, err, "ListDomains(%q, 2)", after)
		if len(ds) == 0 {
			break
		}
		var names []string
		for _, d := range ds {
			names = append(names, d.Name)
		}
		pages = append(pages, names)
		after = names[len(names)-1]
	}
	if got := fmt.Sprint(pages); got != "[[a.lister.example b.lister.example] [c.lister.example other.lister.example]]" {
		t.Errorf("ListDomains by pages of 2 = %s", got)
	}
	if _, err := l.ListDomains(e.ctx, "", -1); err == nil {
		t.Error("ListDomains with a negative limit: no error")
	}

	top := e.unit(userdata.OrgUnit{Domain: dom, Name: "Top"})
	sales := e.unit(userdata.OrgUnit{Domain: dom, Parent: top.ID, Name: "Sales"})
	deep := e.unit(userdata.OrgUnit{Domain: dom, Parent: sales.ID, Name: "Deep"})
	e.unit(userdata.OrgUnit{Domain: "c.lister.example", Name: "Elsewhere"})
	units, err := l.ListUnits(e.ctx, "B.Lister.Example")
	must(t, err, "ListUnits")
	if len(units) != 3 || units[0] != top || units[1] != sales || units[2] != deep {
		t.Errorf("ListUnits(%s) = %+v, want %+v", dom, units, []userdata.OrgUnit{top, sales, deep})
	}
	_, err = l.ListUnits(e.ctx, "none.lister.example")
	wantErr(t, err, userdata.ErrNotFound, "ListUnits of an unknown domain")
	_, err = l.ListUnits(e.ctx, "not a domain")
	wantErr(t, err, userdata.ErrInvalid, "ListUnits of a bad name")

	// 23 users, in an order that is not the address order; every third
	// in Sales; names with "Smith" in some.
	var want []string
	inSales := map[string]bool{}
	smiths := map[string]bool{}
	for i := range 23 {
		addr := fmt.Sprintf("u%02d@%s", (i*7)%23, dom)
		nu := userdata.NewUser{Address: addr, Name: fmt.Sprintf("User %d", i)}
		if i%3 == 0 {
			nu.Unit = sales.ID
			inSales[addr] = true
		}
		if i%4 == 1 {
			nu.Name = fmt.Sprintf("Ann SMITH %d", i)
			smiths[addr] = true
		}
		e.user(nu)
		want = append(want, addr)
	}
	e.user(userdata.NewUser{Address: "u01@c.lister.example"}) // another domain's
	slices.Sort(want)

	page := func(q userdata.UserQuery) []string {
		t.Helper()
		var got []string
		for range 30 {
			us, err := l.ListUsers(e.ctx, q)
			must(t, err, "ListUsers(%+v)", q)
			for _, u := range us {
				got = append(got, u.Address)
			}
			if len(us) < q.Limit || len(us) == 0 {
				return got
			}
			q.After = us[len(us)-1].Address
		}
		t.Fatalf("ListUsers(%+v): more than 30 pages", q)
		return nil
	}
	if got := page(userdata.UserQuery{Domain: dom, Limit: 5}); !slices.Equal(got, want) {
		t.Errorf("ListUsers by pages of 5 = %q, want %q", got, want)
	}
	if got := page(userdata.UserQuery{Domain: dom}); !slices.Equal(got, want) {
		t.Errorf("ListUsers in one page = %q, want %q", got, want)
	}
	filtered := func(keep map[string]bool) []string {
		var w []string
		for _, a := range want {
			if keep[a] {
				w = append(w, a)
			}
		}
		return w
	}
	if got := page(userdata.UserQuery{Domain: dom, Unit: sales.ID, Limit: 3}); !slices.Equal(got, filtered(inSales)) {
		t.Errorf("ListUsers of unit Sales = %q, want %q", got, filtered(inSales))
	}
	if got := page(userdata.UserQuery{Domain: dom, Unit: top.ID}); len(got) != 0 {
		t.Errorf("ListUsers of unit Top (its users are below it) = %q, want none", got)
	}
	if got := page(userdata.UserQuery{Domain: dom, Search: "smith", Limit: 2}); !slices.Equal(got, filtered(smiths)) {
		t.Errorf("ListUsers searching smith = %q, want %q", got, filtered(smiths))
	}
	if got := page(userdata.UserQuery{Domain: dom, Search: "U1", Limit: 4}); !slices.Equal(got, want[10:20]) {
		t.Errorf("ListUsers searching U1 = %q, want %q", got, want[10:20])
	}
	if got := page(userdata.UserQuery{Domain: dom, Search: "lister"}); len(got) != 0 {
		t.Errorf("ListUsers searching the domain's name = %q, want none (the search is of local parts and names)", got)
	}
	if us, err := l.ListUsers(e.ctx, userdata.UserQuery{Domain: dom, After: want[20]}); err != nil || len(us) != 2 {
		t.Errorf("ListUsers after %s = %d users, %v; want 2", want[20], len(us), err)
	} else {
		u := e.lookup(want[21])
		sameUser(t, "ListUsers's user", us[0], u)
	}
	_, err = l.ListUsers(e.ctx, userdata.UserQuery{Domain: "none.lister.example"})
	wantErr(t, err, userdata.ErrNotFound, "ListUsers of an unknown domain")
	_, err = l.ListUsers(e.ctx, userdata.UserQuery{})
	wantErr(t, err, userdata.ErrInvalid, "ListUsers without a domain")
	_, err = l.ListUsers(e.ctx, userdata.UserQuery{Domain: dom, Limit: -1})
	wantErr(t, err, userdata.ErrInvalid, "ListUsers with a negative limit")

	// Counts.
	e.wantDomainUsage(l, dom, userdata.DomainUsage{Users: 23}, "after the creations")
	victim, other := e.lookup(want[3]), e.lookup(want[4])
	disabled := true
	must(t, e.db.UpdateUser(e.ctx, victim.ID, userdata.UserUpdate{Disabled: &disabled}), "UpdateUser(disabled)")
	must(t, e.db.UpdateUser(e.ctx, victim.ID, userdata.UserUpdate{Disabled: &disabled}), "UpdateUser(disabled) again")
	e.wantDomainUsage(l, dom, userdata.DomainUsage{Users: 23, Disabled: 1}, "after disabling one")
	renamed, moved := "Renamed Person", deep.ID
	must(t, e.db.UpdateUser(e.ctx, other.ID, userdata.UserUpdate{Name: &renamed, Unit: &moved}), "UpdateUser(name, unit)")
	if got := page(userdata.UserQuery{Domain: dom, Search: "person"}); !slices.Equal(got, []string{other.Address}) {
		t.Errorf("ListUsers searching the new name = %q, want %q", got, other.Address)
	}
	if got := page(userdata.UserQuery{Domain: dom, Unit: deep.ID}); !slices.Equal(got, []string{other.Address}) {
		t.Errorf("ListUsers of the new unit = %q, want %q", got, other.Address)
	}

	inbox := e.folder(victim.ID, "INBOX")
	work := e.createFolder(victim.ID, "Work")
	var refs []msstore.Ref
	for i := range 4 {
		m := e.add(victim.ID, inbox.ID, e.newMsg(victim, "INBOX", 100+i, 0))
		refs = append(refs, m.Ref)
	}
	_, err = e.db.Copy(e.ctx, victim.ID, inbox.ID, userdata.UIDSet{{Start: 1, Stop: 2}}, work.ID) // two bodies referenced twice
	must(t, err, "Copy")
	kept := e.add(other.ID, e.folder(other.ID, "INBOX").ID, e.newMsg(other, "INBOX", 1000, userdata.FlagDeleted))
	e.wantDomainUsage(l, dom, userdata.DomainUsage{Users: 23, Disabled: 1,
		Usage: userdata.Usage{Messages: 7, Bytes: 100 + 101 + 102 + 103 + 100 + 101 + 1000}}, "after appends and a copy")
	e.expunge(other.ID, e.folder(other.ID, "INBOX").ID, nil)
	e.bodyLive(kept.Ref, false, "an expunged body")
	e.wantDomainUsage(l, dom, userdata.DomainUsage{Users: 23, Disabled: 1,
		Usage: userdata.Usage{Messages: 6, Bytes: 100 + 101 + 102 + 103 + 100 + 101}}, "after an expunge")
	must(t, e.db.Subscribe(e.ctx, victim.ID, "Work", true), "Subscribe")
	aliasAddr := "alias.of.victim@a.lister.example"
	must(t, e.db.AddAlias(e.ctx, aliasAddr, victim.ID), "AddAlias")
	theirs := e.add(other.ID, e.folder(other.ID, "INBOX").ID, e.newMsg(other, "INBOX", 10, 0))

	// Deletion.
	must(t, l.DeleteUser(e.ctx, victim.ID), "DeleteUser")
	for _, r := range refs {
		e.bodyLive(r, false, "a body of the deleted user")
	}
	e.bodyLive(theirs.Ref, true, "another user's body")
	e.wantDomainUsage(l, dom, userdata.DomainUsage{Users: 22, Usage: userdata.Usage{Messages: 1, Bytes: 10}}, "after the deletion")
	_, err = e.db.User(e.ctx, victim.ID)
	wantErr(t, err, userdata.ErrNotFound, "User of the deleted user")
	for _, a := range []string{victim.Address, aliasAddr} {
		_, err = e.db.LookupAddress(e.ctx, a)
		wantErr(t, err, userdata.ErrNotFound, "LookupAddress(%s) of the deleted user", a)
	}
	_, err = e.db.Folder(e.ctx, victim.ID, "INBOX")
	wantErr(t, err, userdata.ErrNotFound, "Folder of the deleted user")
	_, err = e.db.Usage(e.ctx, victim.ID)
	wantErr(t, err, userdata.ErrNotFound, "Usage of the deleted user")
	wantErr(t, l.DeleteUser(e.ctx, victim.ID), userdata.ErrNotFound, "DeleteUser again")
	wantErr(t, l.DeleteUser(e.ctx, unknownUser), userdata.ErrNotFound, "DeleteUser of an unknown user")
	rest := slices.DeleteFunc(slices.Clone(want), func(a string) bool { return a == victim.Address })
	if got := page(userdata.UserQuery{Domain: dom, Limit: 7}); !slices.Equal(got, rest) {
		t.Errorf("ListUsers after the deletion = %q, want %q", got, rest)
	}

	// The address and the alias are free again; the new user starts clean.
	again := e.user(userdata.NewUser{Address: strings.ToUpper(victim.Address)})
	if again.ID == victim.ID {
		t.Errorf("the new user of a deleted address got the old id %d", again.ID)
	}
	if f := e.folder(again.ID, "INBOX"); f.Messages != 0 {
		t.Errorf("the new user's INBOX holds %d messages", f.Messages)
	}
	wantUsage(t, e.usage(again.ID), 0, 0, "the new user")
	must(t, e.db.AddAlias(e.ctx, aliasAddr, again.ID), "AddAlias of the deleted user's alias")
	if u := e.lookup(aliasAddr); u.ID != again.ID {
		t.Errorf("the alias delivers to %d, want %d", u.ID, again.ID)
	}
	e.wantDomainUsage(l, dom, userdata.DomainUsage{Users: 23, Usage: userdata.Usage{Messages: 1, Bytes: 10}}, "after the new user")
	e.wantDomainUsage(l, "c.lister.example", userdata.DomainUsage{Users: 1}, "another domain")
	_, err = l.DomainUsage(e.ctx, "none.lister.example")
	wantErr(t, err, userdata.ErrNotFound, "DomainUsage of an unknown domain")
}

func classNames(cs []userdata.ServiceClass) []string {
	var names []string
	for _, c := range cs {
		names = append(names, c.Name)
	}
	return names
}

func (e *env) lookup(addr string) userdata.User {
	e.t.Helper()
	u, err := e.db.LookupAddress(e.ctx, addr)
	must(e.t, err, "LookupAddress(%s)", addr)
	return u
}

func (e *env) wantDomainUsage(l userdata.Lister, domain string, want userdata.DomainUsage, what string) {
	e.t.Helper()
	got, err := l.DomainUsage(e.ctx, domain)
	must(e.t, err, "DomainUsage(%s)", domain)
	if got != want {
		e.t.Errorf("%s: DomainUsage(%s) = %+v, want %+v", what, domain, got, want)
	}
}
