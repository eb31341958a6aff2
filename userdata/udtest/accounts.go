package udtest

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mailsys/mailsys/userdata"
)

func testDomains(t *testing.T, e *env) {
	ctx, db := e.ctx, e.db
	e.domain(userdata.Domain{Name: "example.test"})
	d, err := db.Domain(ctx, "example.test")
	must(t, err, "Domain(example.test)")
	if d != (userdata.Domain{Name: "example.test"}) {
		t.Errorf("Domain(example.test) = %+v, want {Name:example.test}", d)
	}
	if d, err := db.Domain(ctx, "EXAMPLE.Test"); err != nil || d.Name != "example.test" {
		t.Errorf("Domain(EXAMPLE.Test) = %+v, %v; want example.test (names are case-insensitive)", d, err)
	}
	wantErr(t, db.CreateDomain(ctx, userdata.Domain{Name: "example.test"}), userdata.ErrExists, "CreateDomain of an existing domain")
	wantErr(t, db.CreateDomain(ctx, userdata.Domain{Name: "Example.TEST"}), userdata.ErrExists, "CreateDomain of an existing domain in other case")

	long := strings.Repeat("abcdefghij.", 27) + "test" // 301 bytes, every label valid
	for _, bad := range []string{"", "a..b", "-x.com", "x-.com", ".", long, "bad domain", "\xff.com", "a@b.com", "tab\t.com"} {
		wantErr(t, db.CreateDomain(ctx, userdata.Domain{Name: bad}), userdata.ErrInvalid, "CreateDomain(%q)", bad)
		if _, err := db.Domain(ctx, bad); err == nil {
			t.Errorf("Domain(%q) succeeded after a failed CreateDomain", bad)
		}
	}

	_, err = db.Domain(ctx, "unknown.test")
	wantErr(t, err, userdata.ErrNotFound, "Domain of an unknown domain")
	wantErr(t, db.UpdateDomain(ctx, userdata.Domain{Name: "unknown.test", Quota: 5}), userdata.ErrNotFound, "UpdateDomain of an unknown domain")

	e.class(userdata.ServiceClass{Name: "gold", Quota: 1 << 20})
	want := userdata.Domain{Name: "example.test", Class: "gold", Quota: 12345, Disabled: true}
	must(t, db.UpdateDomain(ctx, want), "UpdateDomain(%+v)", want)
	if d, err := db.Domain(ctx, "example.test"); err != nil || d != want {
		t.Errorf("after UpdateDomain: Domain = %+v, %v; want %+v", d, err, want)
	}
	want = userdata.Domain{Name: "example.test"}
	must(t, db.UpdateDomain(ctx, want), "UpdateDomain(%+v)", want)
	if d, err := db.Domain(ctx, "example.test"); err != nil || d != want {
		t.Errorf("after UpdateDomain: Domain = %+v, %v; want %+v", d, err, want)
	}

	// Domain aliases.
	bob := e.user(userdata.NewUser{Address: "bob@example.test"})
	e.domain(userdata.Domain{Name: "other.test"})
	must(t, db.AddDomainAlias(ctx, "alias.test", "example.test"), "AddDomainAlias(alias.test, example.test)")
	for _, a := range []string{"bob@alias.test", "BOB@Alias.Test"} {
		if u, err := db.LookupAddress(ctx, a); err != nil || u.ID != bob.ID {
			t.Errorf("LookupAddress(%q) = user %d, %v; want bob (%d) through the domain alias", a, u.ID, err, bob.ID)
		}
	}
	_, err = db.LookupAddress(ctx, "nobody@alias.test")
	wantErr(t, err, userdata.ErrNotFound, "LookupAddress of an unknown user in an alias domain")
	_, err = db.LookupAddress(ctx, "bob@other.test")
	wantErr(t, err, userdata.ErrNotFound, "LookupAddress(bob@other.test)")
	wantErr(t, db.AddDomainAlias(ctx, "alias.test", "other.test"), userdata.ErrExists, "AddDomainAlias of an existing alias")
	wantErr(t, db.AddDomainAlias(ctx, "other.test", "example.test"), userdata.ErrExists, "AddDomainAlias named like an existing domain")
	wantErr(t, db.CreateDomain(ctx, userdata.Domain{Name: "alias.test"}), userdata.ErrExists, "CreateDomain named like an existing alias")
	wantErr(t, db.AddDomainAlias(ctx, "second.test", "unknown.test"), userdata.ErrNotFound, "AddDomainAlias to an unknown domain")
	wantErr(t, db.AddDomainAlias(ctx, "bad domain", "example.test"), userdata.ErrInvalid, "AddDomainAlias(%q)", "bad domain")
}

func testUnits(t *testing.T, e *env) {
	ctx, db := e.ctx, e.db
	e.domain(userdata.Domain{Name: "example.test"})
	e.domain(userdata.Domain{Name: "other.test"})

	ent := e.unit(userdata.OrgUnit{Domain: "example.test", Name: "Enterprise"})
	dept := e.unit(userdata.OrgUnit{Domain: "example.test", Parent: ent.ID, Name: "Sales"})
	team := e.unit(userdata.OrgUnit{Domain: "example.test", Parent: dept.ID, Name: "Team 1"})
	for _, c := range []struct {
		got    userdata.OrgUnit
		parent userdata.UnitID
		name   string
	}{{ent, 0, "Enterprise"}, {dept, ent.ID, "Sales"}, {team, dept.ID, "Team 1"}} {
		if c.got.ID == 0 || c.got.Domain != "example.test" || c.got.Parent != c.parent || c.got.Name != c.name {
			t.Errorf("CreateUnit(%q) = %+v, want a new ID, domain example.test, parent %d", c.name, c.got, c.parent)
		}
		if u, err := db.Unit(ctx, c.got.ID); err != nil || u != c.got {
			t.Errorf("Unit(%d) = %+v, %v; want %+v", c.got.ID, u, err, c.got)
		}
	}
	if ent.ID == dept.ID || dept.ID == team.ID || ent.ID == team.ID {
		t.Errorf("units got IDs %d, %d, %d; want distinct", ent.ID, dept.ID, team.ID)
	}

	// A unit made with an id keeps it; the ids chosen later pass it.
	given := e.unit(userdata.OrgUnit{ID: team.ID + 100, Domain: "example.test", Name: "Given"})
	if given.ID != team.ID+100 {
		t.Errorf("CreateUnit with ID %d = %+v, want that ID", team.ID+100, given)
	}
	_, err := db.CreateUnit(ctx, userdata.OrgUnit{ID: given.ID, Domain: "example.test", Name: "Again"})
	wantErr(t, err, userdata.ErrExists, "CreateUnit with a taken ID")
	if next := e.unit(userdata.OrgUnit{Domain: "example.test", Name: "Next"}); next.ID <= given.ID {
		t.Errorf("CreateUnit after one with ID %d got ID %d, want a higher one", given.ID, next.ID)
	}

	foreign := e.unit(userdata.OrgUnit{Domain: "other.test", Name: "Other Corp"})
	if _, err := db.CreateUnit(ctx, userdata.OrgUnit{Domain: "example.test", Parent: foreign.ID, Name: "X"}); err == nil {
		t.Errorf("CreateUnit with a parent in another domain succeeded")
	}
	_, err = db.CreateUnit(ctx, userdata.OrgUnit{Domain: "example.test", Parent: unknownUnit, Name: "X"})
	wantErr(t, err, userdata.ErrNotFound, "CreateUnit with an unknown parent")
	_, err = db.CreateUnit(ctx, userdata.OrgUnit{Domain: "unknown.test", Name: "X"})
	wantErr(t, err, userdata.ErrNotFound, "CreateUnit in an unknown domain")
	_, err = db.CreateUnit(ctx, userdata.OrgUnit{Domain: "example.test", Name: ""})
	wantErr(t, err, userdata.ErrInvalid, "CreateUnit without a name")
	_, err = db.CreateUnit(ctx, userdata.OrgUnit{Domain: "example.test", Name: strings.Repeat("n", 300)})
	wantErr(t, err, userdata.ErrInvalid, "CreateUnit with a 300-byte name")
	_, err = db.Unit(ctx, unknownUnit)
	wantErr(t, err, userdata.ErrNotFound, "Unit of an unknown id")

	e.class(userdata.ServiceClass{Name: "silver"})
	want := team
	want.Name, want.Class, want.Disabled = "Team One", "silver", true
	must(t, db.UpdateUnit(ctx, want), "UpdateUnit(%+v)", want)
	if u, err := db.Unit(ctx, team.ID); err != nil || u != want {
		t.Errorf("after UpdateUnit: Unit = %+v, %v; want %+v", u, err, want)
	}
	wantErr(t, db.UpdateUnit(ctx, userdata.OrgUnit{ID: unknownUnit, Domain: "example.test", Name: "X"}), userdata.ErrNotFound, "UpdateUnit of an unknown unit")

	// Users are placed in units of their own domain only.
	u := e.user(userdata.NewUser{Address: "ann@example.test", Unit: team.ID})
	if u.Unit != team.ID {
		t.Errorf("CreateUser in unit %d: Unit = %d", team.ID, u.Unit)
	}
	if _, err := db.CreateUser(ctx, userdata.NewUser{Address: "bea@example.test", Unit: foreign.ID}); err == nil {
		t.Errorf("CreateUser in a unit of another domain succeeded")
	}
	_, err = db.CreateUser(ctx, userdata.NewUser{Address: "cid@example.test", Unit: unknownUnit})
	wantErr(t, err, userdata.ErrNotFound, "CreateUser in an unknown unit")
	if err := db.UpdateUser(ctx, u.ID, userdata.UserUpdate{Unit: &foreign.ID}); err == nil {
		t.Errorf("UpdateUser moving a user to a unit of another domain succeeded")
	}
}

func testClassesAndLimits(t *testing.T, e *env) {
	ctx, db := e.ctx, e.db
	wantErr(t, db.DefineClass(ctx, userdata.ServiceClass{Name: ""}), userdata.ErrInvalid, "DefineClass without a name")
	gold := userdata.ServiceClass{Name: "gold", Quota: 5000, MaxMessageSize: 1000, Protocols: 0}
	silver := userdata.ServiceClass{Name: "silver", Quota: 3000, MaxMessageSize: 500, Protocols: userdata.ProtoSMTP | userdata.ProtoIMAP}
	bronze := userdata.ServiceClass{Name: "bronze", Quota: 1000, MaxMessageSize: 100, Protocols: userdata.ProtoPOP3}
	e.class(gold)
	e.class(silver)
	e.class(bronze)

	e.domain(userdata.Domain{Name: "example.test", Class: "gold", Quota: 100000})
	ent := e.unit(userdata.OrgUnit{Domain: "example.test", Name: "Enterprise"})
	dept := e.unit(userdata.OrgUnit{Domain: "example.test", Parent: ent.ID, Name: "Dept", Class: "silver"})
	team := e.unit(userdata.OrgUnit{Domain: "example.test", Parent: dept.ID, Name: "Team"})

	limitsOf := func(c userdata.ServiceClass, domainQuota int64) userdata.Limits {
		return userdata.Limits{Class: c.Name, Quota: c.Quota, DomainQuota: domainQuota, MaxMessageSize: c.MaxMessageSize, Protocols: c.Protocols}
	}
	withQuota := func(l userdata.Limits, q int64) userdata.Limits { l.Quota = q; return l }

	top := e.user(userdata.NewUser{Address: "top@example.test", Password: "pw"})
	member := e.user(userdata.NewUser{Address: "member@example.test", Unit: team.ID})
	own := e.user(userdata.NewUser{Address: "own@example.test", Unit: team.ID, Class: "bronze"})
	ownQuota := e.user(userdata.NewUser{Address: "ownquota@example.test", Unit: team.ID, Class: "bronze", Quota: 777})
	quotaOnly := e.user(userdata.NewUser{Address: "quota@example.test", Quota: 123})

	e.wantLimits(top, limitsOf(gold, 100000), "class of the domain")
	e.wantLimits(member, limitsOf(silver, 100000), "class of a parent unit")
	e.wantLimits(own, limitsOf(bronze, 100000), "class of the user")
	e.wantLimits(ownQuota, withQuota(limitsOf(bronze, 100000), 777), "class and quota of the user")
	e.wantLimits(quotaOnly, withQuota(limitsOf(gold, 100000), 123), "quota of the user, class of the domain")

	// Protocols 0 means all.
	for _, p := range []userdata.Protocol{userdata.ProtoSMTP, userdata.ProtoSubmission, userdata.ProtoIMAP, userdata.ProtoPOP3} {
		if _, err := db.Authenticate(ctx, "top@example.test", "pw", p); err != nil {
			t.Errorf("Authenticate with protocol %d under a class with Protocols 0: %v", p, err)
		}
	}

	// Changes apply at once.
	gold.Quota, gold.MaxMessageSize, gold.Protocols = 6000, 2000, userdata.ProtoIMAP
	e.class(gold)
	e.wantLimits(top, limitsOf(gold, 100000), "after redefining the domain's class")
	e.wantLimits(quotaOnly, withQuota(limitsOf(gold, 100000), 123), "after redefining the class, user quota")
	if _, err := db.Authenticate(ctx, "top@example.test", "pw", userdata.ProtoPOP3); !errors.Is(err, userdata.ErrProtocol) {
		t.Errorf("Authenticate POP3 after the class was limited to IMAP: error = %v, want ErrProtocol", err)
	}

	dept.Class = ""
	must(t, db.UpdateUnit(ctx, dept), "UpdateUnit(dept, no class)")
	e.wantLimits(member, limitsOf(gold, 100000), "after removing the unit's class")
	team.Class = "bronze"
	must(t, db.UpdateUnit(ctx, team), "UpdateUnit(team, bronze)")
	e.wantLimits(member, limitsOf(bronze, 100000), "after setting the nearest unit's class")

	cls := "silver"
	must(t, db.UpdateUser(ctx, own.ID, userdata.UserUpdate{Class: &cls}), "UpdateUser(class silver)")
	e.wantLimits(own, limitsOf(silver, 100000), "after changing the user's class")
	cls = ""
	must(t, db.UpdateUser(ctx, own.ID, userdata.UserUpdate{Class: &cls}), "UpdateUser(no class)")
	e.wantLimits(own, limitsOf(bronze, 100000), "after removing the user's class")
	var q int64
	must(t, db.UpdateUser(ctx, quotaOnly.ID, userdata.UserUpdate{Quota: &q}), "UpdateUser(quota 0)")
	e.wantLimits(quotaOnly, limitsOf(gold, 100000), "after removing the user's quota")

	must(t, db.UpdateDomain(ctx, userdata.Domain{Name: "example.test", Class: "gold", Quota: 50000}), "UpdateDomain(quota 50000)")
	e.wantLimits(top, limitsOf(gold, 50000), "after changing the domain's quota")
	must(t, db.UpdateDomain(ctx, userdata.Domain{Name: "example.test", Class: "silver", Quota: 0}), "UpdateDomain(class silver)")
	e.wantLimits(top, limitsOf(silver, 0), "after changing the domain's class")

	// No class anywhere: no limits.
	plain := e.simpleUser("plain@plain.test")
	e.wantLimits(plain, userdata.Limits{}, "without any class")

	_, err := db.Limits(ctx, unknownUser)
	wantErr(t, err, userdata.ErrNotFound, "Limits of an unknown user")
}

func testUsers(t *testing.T, e *env) {
	ctx, db := e.ctx, e.db
	e.domain(userdata.Domain{Name: "example.test"})

	before := time.Now()
	bob, err := db.CreateUser(ctx, userdata.NewUser{Address: "bob@example.test", Password: "pw", Name: "Bob"})
	must(t, err, "CreateUser(bob)")
	if bob.ID == 0 || bob.Address != "bob@example.test" || bob.Name != "Bob" || bob.Unit != 0 || bob.Disabled || bob.Node == "" {
		t.Errorf("CreateUser(bob) = %+v; want a new ID, the address, the name and the node", bob)
	}
	if bob.Created.Before(before.Add(-time.Minute)) || bob.Created.After(time.Now().Add(time.Minute)) {
		t.Errorf("CreateUser(bob): Created = %v, want about %v", bob.Created, before)
	}
	if u, err := db.User(ctx, bob.ID); err != nil {
		t.Errorf("User(bob): %v", err)
	} else {
		sameUser(t, "User(bob)", u, bob)
	}
	for _, a := range []string{"bob@example.test", "BOB@Example.TEST"} {
		if u, err := db.LookupAddress(ctx, a); err != nil {
			t.Errorf("LookupAddress(%q): %v", a, err)
		} else {
			sameUser(t, fmt.Sprintf("LookupAddress(%q)", a), u, bob)
		}
	}
	checkDefaultFolders(t, e, bob)

	// A user made with an id keeps it; the ids chosen later pass it.
	given := e.user(userdata.NewUser{ID: bob.ID + 1000, Address: "given@example.test"})
	if given.ID != bob.ID+1000 {
		t.Errorf("CreateUser with ID %d = %+v, want that ID", bob.ID+1000, given)
	}
	_, err = db.CreateUser(ctx, userdata.NewUser{ID: given.ID, Address: "again@example.test"})
	wantErr(t, err, userdata.ErrExists, "CreateUser with a taken ID")
	if _, err := db.LookupAddress(ctx, "again@example.test"); !errors.Is(err, userdata.ErrNotFound) {
		t.Errorf("LookupAddress after CreateUser with a taken ID: %v, want ErrNotFound", err)
	}

	carol := e.user(userdata.NewUser{Address: "Carol@Example.TEST"})
	if carol.ID <= given.ID {
		t.Errorf("CreateUser after one with ID %d got ID %d, want a higher one", given.ID, carol.ID)
	}
	if carol.Address != "carol@example.test" {
		t.Errorf("CreateUser(Carol@Example.TEST): Address = %q, want carol@example.test", carol.Address)
	}
	if carol.ID == bob.ID {
		t.Errorf("two users got ID %d", bob.ID)
	}
	for _, a := range []string{"bob@example.test", "BOB@example.test", "Bob@EXAMPLE.test", "carol@example.test"} {
		_, err := db.CreateUser(ctx, userdata.NewUser{Address: a})
		wantErr(t, err, userdata.ErrExists, "CreateUser(%q) of an existing address", a)
	}
	long := strings.Repeat("l", 65)
	for _, a := range []string{"", "noat", "a@", "@b.c", "a b@x.test", "a@b@c", long + "@example.test",
		"\xff@example.test", "bad\xfe@example.test", "a@exa mple.test", "a<b@example.test", "x@-example.test"} {
		_, err := db.CreateUser(ctx, userdata.NewUser{Address: a})
		wantErr(t, err, userdata.ErrInvalid, "CreateUser(%q)", a)
	}
	if u, err := db.CreateUser(ctx, userdata.NewUser{Address: long[:64] + "@example.test"}); err != nil {
		t.Errorf("CreateUser with a 64-byte local part: %v", err)
	} else if u.Address != long[:64]+"@example.test" {
		t.Errorf("CreateUser with a 64-byte local part: Address = %q", u.Address)
	}
	_, err = db.CreateUser(ctx, userdata.NewUser{Address: "x@unknown.test"})
	wantErr(t, err, userdata.ErrNotFound, "CreateUser in an unknown domain")
	_, err = db.CreateUser(ctx, userdata.NewUser{Address: "x@example.test", Name: strings.Repeat("N", 300)})
	wantErr(t, err, userdata.ErrInvalid, "CreateUser with a 300-byte display name")
	_, err = db.LookupAddress(ctx, "x@example.test")
	wantErr(t, err, userdata.ErrNotFound, "LookupAddress after a failed CreateUser")
	_, err = db.User(ctx, unknownUser)
	wantErr(t, err, userdata.ErrNotFound, "User of an unknown id")

	// UpdateUser.
	e.class(userdata.ServiceClass{Name: "gold"})
	unit := e.unit(userdata.OrgUnit{Domain: "example.test", Name: "Staff"})
	name, cls, quota, disabled := "Robert", "gold", int64(4321), true
	must(t, db.UpdateUser(ctx, bob.ID, userdata.UserUpdate{Name: &name, Unit: &unit.ID, Class: &cls, Quota: &quota, Disabled: &disabled}), "UpdateUser(bob, all fields)")
	want := bob
	want.Name, want.Unit, want.Class, want.Quota, want.Disabled = name, unit.ID, cls, quota, disabled
	if u, err := db.User(ctx, bob.ID); err != nil {
		t.Errorf("User(bob): %v", err)
	} else {
		sameUser(t, "User(bob) after UpdateUser", u, want)
	}
	must(t, db.UpdateUser(ctx, bob.ID, userdata.UserUpdate{}), "UpdateUser(bob, no fields)")
	overlong := strings.Repeat("N", 300)
	wantErr(t, db.UpdateUser(ctx, bob.ID, userdata.UserUpdate{Name: &overlong}), userdata.ErrInvalid, "UpdateUser with a 300-byte display name")
	if u, err := db.User(ctx, bob.ID); err != nil {
		t.Errorf("User(bob): %v", err)
	} else {
		sameUser(t, "User(bob) after a failed UpdateUser", u, want)
	}
	enabled := false
	must(t, db.UpdateUser(ctx, bob.ID, userdata.UserUpdate{Disabled: &enabled}), "UpdateUser(bob, enabled)")
	want.Disabled = false
	if u, err := db.User(ctx, bob.ID); err != nil {
		t.Errorf("User(bob): %v", err)
	} else {
		sameUser(t, "User(bob) after UpdateUser of Disabled alone", u, want)
	}
	wantErr(t, db.UpdateUser(ctx, unknownUser, userdata.UserUpdate{Name: &name}), userdata.ErrNotFound, "UpdateUser of an unknown user")
	wantErr(t, db.SetPassword(ctx, unknownUser, "x"), userdata.ErrNotFound, "SetPassword of an unknown user")

	// Aliases.
	must(t, db.AddAlias(ctx, "robert@example.test", bob.ID), "AddAlias(robert, bob)")
	must(t, db.AddAlias(ctx, "Rob@Example.Test", bob.ID), "AddAlias(Rob, bob)")
	for _, a := range []string{"robert@example.test", "ROBERT@example.test", "rob@example.test"} {
		if u, err := db.LookupAddress(ctx, a); err != nil || u.ID != bob.ID || u.Address != "bob@example.test" {
			t.Errorf("LookupAddress(%q) = %d %q, %v; want bob and his primary address", a, u.ID, u.Address, err)
		}
	}
	wantErr(t, db.AddAlias(ctx, "carol@example.test", bob.ID), userdata.ErrExists, "AddAlias of a primary address")
	wantErr(t, db.AddAlias(ctx, "robert@example.test", carol.ID), userdata.ErrExists, "AddAlias of an existing alias")
	_, err = db.CreateUser(ctx, userdata.NewUser{Address: "robert@example.test"})
	wantErr(t, err, userdata.ErrExists, "CreateUser with an alias address")
	wantErr(t, db.AddAlias(ctx, "x@example.test", unknownUser), userdata.ErrNotFound, "AddAlias to an unknown user")
	wantSomeErr(t, db.AddAlias(ctx, "x@unknown.test", bob.ID), "AddAlias in a domain that is not served")
	wantErr(t, db.AddAlias(ctx, "not an address", bob.ID), userdata.ErrInvalid, "AddAlias(%q)", "not an address")

	must(t, db.RemoveAlias(ctx, "robert@example.test"), "RemoveAlias(robert)")
	_, err = db.LookupAddress(ctx, "robert@example.test")
	wantErr(t, err, userdata.ErrNotFound, "LookupAddress of a removed alias")
	if u, err := db.LookupAddress(ctx, "rob@example.test"); err != nil || u.ID != bob.ID {
		t.Errorf("LookupAddress(rob) after removing another alias = %d, %v; want bob", u.ID, err)
	}
	wantErr(t, db.RemoveAlias(ctx, "robert@example.test"), userdata.ErrNotFound, "RemoveAlias of a removed alias")
	must(t, db.AddAlias(ctx, "robert@example.test", carol.ID), "AddAlias(robert, carol) after its removal")
	if u, err := db.LookupAddress(ctx, "robert@example.test"); err != nil || u.ID != carol.ID {
		t.Errorf("LookupAddress(robert) = %d, %v; want carol", u.ID, err)
	}
	wantSomeErr(t, db.RemoveAlias(ctx, "bob@example.test"), "RemoveAlias of a primary address")
	if u, err := db.LookupAddress(ctx, "bob@example.test"); err != nil || u.ID != bob.ID {
		t.Errorf("LookupAddress(bob) after RemoveAlias of it = %d, %v; want bob still", u.ID, err)
	}
	_, err = db.LookupAddress(ctx, "nobody@example.test")
	wantErr(t, err, userdata.ErrNotFound, "LookupAddress of an unknown address")
	_, err = db.LookupAddress(ctx, "nobody@unknown.test")
	wantErr(t, err, userdata.ErrNotFound, "LookupAddress in an unknown domain")
}

// checkDefaultFolders checks the folders made with user u.
func checkDefaultFolders(t *testing.T, e *env, u userdata.User) {
	t.Helper()
	want := map[string]string{
		userdata.Inbox: "",
		"Sent":         userdata.SpecialSent,
		"Drafts":       userdata.SpecialDrafts,
		"Trash":        userdata.SpecialTrash,
		"Junk":         userdata.SpecialJunk,
		"Archive":      userdata.SpecialArchive,
	}
	fs := e.listFolders(u.ID)
	validity := map[uint32]string{}
	ids := map[userdata.FolderID]string{}
	for _, f := range fs {
		special, ok := want[f.Name]
		if !ok {
			t.Errorf("new user %s has folder %q, want only the default ones", u.Address, f.Name)
			continue
		}
		delete(want, f.Name)
		if f.SpecialUse != special || f.UIDNext != 1 || f.UIDValidity == 0 || f.Messages != 0 || f.Unseen != 0 || f.Size != 0 {
			t.Errorf("new user's folder %+v: want SpecialUse %q, UIDNext 1, UIDValidity > 0, empty", f, special)
		}
		if other, dup := validity[f.UIDValidity]; dup {
			t.Errorf("folders %q and %q have the same UIDValidity %d", other, f.Name, f.UIDValidity)
		}
		validity[f.UIDValidity] = f.Name
		if other, dup := ids[f.ID]; dup {
			t.Errorf("folders %q and %q have the same ID %d", other, f.Name, f.ID)
		}
		ids[f.ID] = f.Name
		if g := e.folder(u.ID, f.Name); g != f {
			t.Errorf("Folder(%q) = %+v; ListFolders gave %+v", f.Name, g, f)
		}
		if g := e.folderByID(u.ID, f.ID); g != f {
			t.Errorf("FolderByID(%d) = %+v; ListFolders gave %+v", f.ID, g, f)
		}
	}
	for name := range want {
		t.Errorf("new user %s has no folder %q", u.Address, name)
	}
}

func testAuthenticate(t *testing.T, e *env) {
	ctx, db := e.ctx, e.db
	e.domain(userdata.Domain{Name: "example.test"})
	ent := e.unit(userdata.OrgUnit{Domain: "example.test", Name: "Enterprise"})
	dept := e.unit(userdata.OrgUnit{Domain: "example.test", Parent: ent.ID, Name: "Dept"})
	team := e.unit(userdata.OrgUnit{Domain: "example.test", Parent: dept.ID, Name: "Team"})
	const pw = "correct horse battery staple"
	bob := e.user(userdata.NewUser{Address: "bob@example.test", Password: pw, Unit: team.ID})
	e.user(userdata.NewUser{Address: "eve@example.test", Password: "eve's"})

	login := func(addr, password string, p userdata.Protocol, want error, what string) {
		t.Helper()
		u, err := db.Authenticate(ctx, addr, password, p)
		switch {
		case want == nil && err != nil:
			t.Errorf("%s: Authenticate(%q): %v", what, addr, err)
		case want == nil && (u.ID != bob.ID || u.Address != bob.Address):
			t.Errorf("%s: Authenticate(%q) = user %d %q, want bob (%d)", what, addr, u.ID, u.Address, bob.ID)
		case want != nil && !errors.Is(err, want):
			t.Errorf("%s: Authenticate(%q) error = %v, want %v", what, addr, err, want)
		}
	}
	imap := userdata.ProtoIMAP
	login("bob@example.test", pw, imap, nil, "right password")
	login("bob@example.test", pw, imap, nil, "right password again (cached)")
	login("BOB@Example.Test", pw, imap, nil, "address in other case")
	login("bob@example.test", pw+"x", imap, userdata.ErrAuthFailed, "wrong password")
	login("bob@example.test", "", imap, userdata.ErrAuthFailed, "empty password")
	login("bob@example.test", "eve's", imap, userdata.ErrAuthFailed, "another user's password")
	login("nobody@example.test", pw, imap, userdata.ErrAuthFailed, "unknown address")
	login("bob@unknown.test", pw, imap, userdata.ErrAuthFailed, "unknown domain")
	login("not an address", pw, imap, userdata.ErrAuthFailed, "not an address")

	must(t, db.AddAlias(ctx, "robert@example.test", bob.ID), "AddAlias")
	login("robert@example.test", pw, imap, nil, "alias address")
	login("robert@example.test", pw, imap, nil, "alias address again (cached)")

	// A new password works at once, and the old one fails, cache or not.
	const pw2 = "new password"
	must(t, db.SetPassword(ctx, bob.ID, pw2), "SetPassword")
	login("bob@example.test", pw, imap, userdata.ErrAuthFailed, "old password after SetPassword")
	login("robert@example.test", pw, imap, userdata.ErrAuthFailed, "old password through the alias after SetPassword")
	login("bob@example.test", pw2, imap, nil, "new password")
	login("robert@example.test", pw2, imap, nil, "new password through the alias")

	// Disabling, at every level, applies at once.
	disable := func(what string, set func(bool) error) {
		t.Helper()
		login("bob@example.test", pw2, imap, nil, what+": before")
		login("robert@example.test", pw2, imap, nil, what+": before, alias")
		must(t, set(true), "%s: disabling", what)
		login("bob@example.test", pw2, imap, userdata.ErrDisabled, what+": disabled")
		login("robert@example.test", pw2, imap, userdata.ErrDisabled, what+": disabled, alias")
		must(t, set(false), "%s: enabling", what)
		login("bob@example.test", pw2, imap, nil, what+": enabled again")
		login("robert@example.test", pw2, imap, nil, what+": enabled again, alias")
	}
	disable("user", func(v bool) error { return db.UpdateUser(ctx, bob.ID, userdata.UserUpdate{Disabled: &v}) })
	disable("unit", func(v bool) error { u := team; u.Disabled = v; return db.UpdateUnit(ctx, u) })
	disable("parent unit", func(v bool) error { u := dept; u.Disabled = v; return db.UpdateUnit(ctx, u) })
	disable("top unit", func(v bool) error { u := ent; u.Disabled = v; return db.UpdateUnit(ctx, u) })
	disable("domain", func(v bool) error {
		return db.UpdateDomain(ctx, userdata.Domain{Name: "example.test", Disabled: v})
	})

	// Protocols.
	login("bob@example.test", pw2, userdata.ProtoPOP3, nil, "POP3 without a class")
	e.class(userdata.ServiceClass{Name: "imaponly", Protocols: userdata.ProtoIMAP})
	cls := "imaponly"
	must(t, db.UpdateUser(ctx, bob.ID, userdata.UserUpdate{Class: &cls}), "UpdateUser(class imaponly)")
	login("bob@example.test", pw2, userdata.ProtoPOP3, userdata.ErrProtocol, "POP3 with an IMAP-only class")
	login("bob@example.test", pw2, userdata.ProtoIMAP, nil, "IMAP with an IMAP-only class")
	login("bob@example.test", pw2+"x", userdata.ProtoPOP3, userdata.ErrAuthFailed, "POP3, wrong password, IMAP-only class")
	e.class(userdata.ServiceClass{Name: "imaponly", Protocols: userdata.ProtoIMAP | userdata.ProtoPOP3})
	login("bob@example.test", pw2, userdata.ProtoPOP3, nil, "POP3 after the class allowed it")
	e.class(userdata.ServiceClass{Name: "imaponly", Protocols: userdata.ProtoIMAP})
	login("bob@example.test", pw2, userdata.ProtoPOP3, userdata.ErrProtocol, "POP3 after the class forbade it again")

	// Accounts without a password cannot log in.
	nopw := e.user(userdata.NewUser{Address: "nopw@example.test"})
	for _, p := range []string{"", "x"} {
		_, err := db.Authenticate(ctx, "nopw@example.test", p, imap)
		wantErr(t, err, userdata.ErrAuthFailed, "Authenticate(nopw, %q) of an account without a password", p)
	}
	must(t, db.SetPassword(ctx, nopw.ID, "now"), "SetPassword(nopw)")
	if u, err := db.Authenticate(ctx, "nopw@example.test", "now", imap); err != nil || u.ID != nopw.ID {
		t.Errorf("Authenticate(nopw) after SetPassword = %d, %v", u.ID, err)
	}
	must(t, db.SetPassword(ctx, nopw.ID, ""), "SetPassword(nopw, \"\")")
	for _, p := range []string{"", "now"} {
		_, err := db.Authenticate(ctx, "nopw@example.test", p, imap)
		wantErr(t, err, userdata.ErrAuthFailed, "Authenticate(nopw, %q) after its password was removed", p)
	}
}
