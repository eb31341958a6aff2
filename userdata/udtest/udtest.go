// Package udtest checks that a [userdata.UserDB] implementation behaves as
// the interfaces document, in the manner of testing/fstest and
// msstore/storetest.
//
// An implementation's tests call [Run] with a function that makes a fresh,
// empty database for each subtest, wired to the body reference counter the
// suite hands it:
//
//	func TestConformance(t *testing.T) {
//		udtest.Run(t, func(t *testing.T, bodies userdata.BodyRefs) userdata.UserDB {
//			db, err := mydb.Open(t.Context(), mydb.Config{Bodies: bodies})
//			if err != nil {
//				t.Fatal(err)
//			}
//			return db
//		})
//	}
//
// The suite stores the bodies of the messages it appends in an
// [msstore.Memory] and passes that as bodies, so that it can check that Copy
// retains bodies and that Expunge and DeleteFolder release them. It closes
// each database at the end of its subtest. The Watch subtest runs only when
// the database implements [userdata.Watcher].
//
// Run the suite with -race: the Concurrency and QuotaConcurrent subtests are
// meant for it (the races QuotaConcurrent looks for rarely show without it).
package udtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mailsys/mailsys/msstore"
	"github.com/mailsys/mailsys/userdata"
)

// Run runs the conformance suite against the databases newDB makes, one
// fresh, empty database per subtest. newDB must give the database bodies as
// its body reference counter; it may call t.Fatal and t.Cleanup. The suite
// closes the database at the end of the subtest and reports an error from
// that Close.
func Run(t *testing.T, newDB func(t *testing.T, bodies userdata.BodyRefs) userdata.UserDB) {
	t.Helper()
	tests := []struct {
		name string
		fn   func(t *testing.T, e *env)
	}{
		{"Domains", testDomains},
		{"Units", testUnits},
		{"ClassesAndLimits", testClassesAndLimits},
		{"Users", testUsers},
		{"Authenticate", testAuthenticate},
		{"Folders", testFolders},
		{"AppendAndCounts", testAppendAndCounts},
		{"FlagsAndModSeq", testFlagsAndModSeq},
		{"CopyMove", testCopyMove},
		{"Expunge", testExpunge},
		{"Quota", testQuota},
		{"QuotaConcurrent", testQuotaConcurrent},
		{"Concurrency", testConcurrency},
		{"Watch", testWatch},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, newDB)
			t.Cleanup(func() {
				if err := e.db.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
			tc.fn(t, e)
		})
	}
	// Closed closes its database itself.
	t.Run("Closed", func(t *testing.T) { testClosed(t, newEnv(t, newDB)) })
}

// env is one subtest's database and the body store behind it.
type env struct {
	t   *testing.T
	ctx context.Context
	db  userdata.UserDB
	mem *msstore.Memory
	seq atomic.Int64 // numbers the bodies, so that no two are alike
}

func newEnv(t *testing.T, newDB func(t *testing.T, bodies userdata.BodyRefs) userdata.UserDB) *env {
	t.Helper()
	mem := msstore.NewMemory(1)
	db := newDB(t, mem)
	if db == nil {
		t.Fatal("newDB returned a nil UserDB")
	}
	return &env{t: t, ctx: t.Context(), db: db, mem: mem}
}

// unknownUser and unknownFolder are ids no test creates.
const (
	unknownUser   userdata.UserID   = 1 << 40
	unknownUnit   userdata.UnitID   = 1 << 40
	unknownFolder userdata.FolderID = 1 << 30
)

// all is the UIDSet of every message ("1:*").
var all = userdata.UIDSet{{Start: 1, Stop: 0}}

// baseDate is the InternalDate of the first body; later ones are a minute
// apart. Whole seconds, so that any database's timestamps hold it exactly.
var baseDate = time.Date(2025, 3, 14, 15, 9, 26, 0, time.FixedZone("UTC+2", 2*3600))

func wantErr(t *testing.T, err, target error, format string, args ...any) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Errorf("%s: error = %v, want %v", fmt.Sprintf(format, args...), err, target)
	}
}

func wantSomeErr(t *testing.T, err error, format string, args ...any) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: no error, want one", fmt.Sprintf(format, args...))
	}
}

func must(t *testing.T, err error, format string, args ...any) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", fmt.Sprintf(format, args...), err)
	}
}

func (e *env) domain(d userdata.Domain) {
	e.t.Helper()
	must(e.t, e.db.CreateDomain(e.ctx, d), "CreateDomain(%q)", d.Name)
}

func (e *env) class(c userdata.ServiceClass) {
	e.t.Helper()
	must(e.t, e.db.DefineClass(e.ctx, c), "DefineClass(%q)", c.Name)
}

func (e *env) unit(u userdata.OrgUnit) userdata.OrgUnit {
	e.t.Helper()
	got, err := e.db.CreateUnit(e.ctx, u)
	must(e.t, err, "CreateUnit(%q in %q, parent %d)", u.Name, u.Domain, u.Parent)
	return got
}

func (e *env) user(nu userdata.NewUser) userdata.User {
	e.t.Helper()
	u, err := e.db.CreateUser(e.ctx, nu)
	must(e.t, err, "CreateUser(%q)", nu.Address)
	return u
}

// simpleUser creates addr in a new domain of its own (unless the domain
// exists) without a password.
func (e *env) simpleUser(addr string) userdata.User {
	e.t.Helper()
	_, dom, _ := strings.Cut(addr, "@")
	if _, err := e.db.Domain(e.ctx, dom); errors.Is(err, userdata.ErrNotFound) {
		e.domain(userdata.Domain{Name: dom})
	}
	return e.user(userdata.NewUser{Address: addr})
}

func (e *env) folder(u userdata.UserID, name string) userdata.Folder {
	e.t.Helper()
	f, err := e.db.Folder(e.ctx, u, name)
	must(e.t, err, "Folder(%d, %q)", u, name)
	return f
}

func (e *env) folderByID(u userdata.UserID, id userdata.FolderID) userdata.Folder {
	e.t.Helper()
	f, err := e.db.FolderByID(e.ctx, u, id)
	must(e.t, err, "FolderByID(%d, %d)", u, id)
	return f
}

func (e *env) createFolder(u userdata.UserID, name string) userdata.Folder {
	e.t.Helper()
	f, err := e.db.CreateFolder(e.ctx, u, name, "")
	must(e.t, err, "CreateFolder(%d, %q)", u, name)
	return f
}

func (e *env) listFolders(u userdata.UserID) []userdata.Folder {
	e.t.Helper()
	var fs []userdata.Folder
	must(e.t, e.db.ListFolders(e.ctx, u, func(f userdata.Folder) error {
		fs = append(fs, f)
		return nil
	}), "ListFolders(%d)", u)
	return fs
}

func (e *env) usage(u userdata.UserID) userdata.Usage {
	e.t.Helper()
	us, err := e.db.Usage(e.ctx, u)
	must(e.t, err, "Usage(%d)", u)
	return us
}

func (e *env) limits(u userdata.UserID) userdata.Limits {
	e.t.Helper()
	l, err := e.db.Limits(e.ctx, u)
	must(e.t, err, "Limits(%d)", u)
	return l
}

// putBody stores a body of size bytes in e.mem with one reference, owned by
// owner's mailbox. It is safe for concurrent use.
func (e *env) putBody(owner, mailbox string, size int) (msstore.Ref, error) {
	n := e.seq.Add(1)
	data := []byte(fmt.Sprintf("Message-ID: <%d@udtest.invalid>\r\n\r\n", n))
	if size < len(data) {
		data = data[:size]
	}
	for len(data) < size {
		data = append(data, byte('a'+len(data)%26))
	}
	return e.mem.Put(e.ctx, bytes.NewReader(data), msstore.Meta{
		MessageID: fmt.Sprintf("<%d@udtest.invalid>", n),
		Received:  time.Now(),
		Owners:    []msstore.Owner{{User: owner, Mailbox: mailbox}},
	})
}

// newMsg stores a body for u's mailbox and returns a NewMessage referring
// to it, with its own date, envelope and structure.
func (e *env) newMsg(u userdata.User, mailbox string, size int, flags userdata.Flags, keywords ...string) userdata.NewMessage {
	e.t.Helper()
	ref, err := e.putBody(u.Address, mailbox, size)
	must(e.t, err, "Put of a %d-byte body", size)
	return msgFor(ref, size, flags, keywords...)
}

func msgFor(ref msstore.Ref, size int, flags userdata.Flags, keywords ...string) userdata.NewMessage {
	n := ref.ID
	return userdata.NewMessage{
		Ref:          ref,
		InternalDate: baseDate.Add(time.Duration(n) * time.Minute),
		Size:         int64(size),
		Flags:        flags,
		Keywords:     keywords,
		Envelope:     []byte(fmt.Sprintf(`(NIL "message %d" NIL)`, n)),
		Structure:    []byte(fmt.Sprintf(`("TEXT" "PLAIN" NIL NIL NIL "7BIT" %d)`, size)),
	}
}

// add appends m to folder f of u and checks the returned Message.
func (e *env) add(u userdata.UserID, f userdata.FolderID, m userdata.NewMessage) userdata.Message {
	e.t.Helper()
	got, err := e.db.Append(e.ctx, u, f, m)
	must(e.t, err, "Append(%d, folder %d, %d bytes)", u, f, m.Size)
	if got.UID == 0 || got.ModSeq == 0 {
		e.t.Errorf("Append returned UID %d, ModSeq %d; want both > 0", got.UID, got.ModSeq)
	}
	sameContent(e.t, "Append's result", got, m)
	return got
}

// messages returns copies of the messages of folder f in set.
func (e *env) messages(u userdata.UserID, f userdata.FolderID, set userdata.UIDSet) []userdata.Message {
	e.t.Helper()
	var ms []userdata.Message
	must(e.t, e.db.Messages(e.ctx, u, f, set, func(m *userdata.Message) error {
		ms = append(ms, copyMessage(m))
		return nil
	}), "Messages(%d, folder %d, %v)", u, f, set)
	return ms
}

func copyMessage(m *userdata.Message) userdata.Message {
	c := *m
	c.Keywords = slices.Clone(m.Keywords)
	c.Envelope = bytes.Clone(m.Envelope)
	c.Structure = bytes.Clone(m.Structure)
	return c
}

func (e *env) uids(u userdata.UserID, f userdata.FolderID) []userdata.UID {
	e.t.Helper()
	uids, err := e.db.UIDs(e.ctx, u, f)
	must(e.t, err, "UIDs(%d, folder %d)", u, f)
	return uids
}

func (e *env) store(u userdata.UserID, f userdata.FolderID, set userdata.UIDSet, fu userdata.FlagUpdate) userdata.StoreResult {
	e.t.Helper()
	r, err := e.db.StoreFlags(e.ctx, u, f, set, fu)
	must(e.t, err, "StoreFlags(%d, folder %d, %v, %+v)", u, f, set, fu)
	return r
}

func (e *env) expunge(u userdata.UserID, f userdata.FolderID, set userdata.UIDSet) []userdata.UID {
	e.t.Helper()
	uids, err := e.db.Expunge(e.ctx, u, f, set)
	must(e.t, err, "Expunge(%d, folder %d, %v)", u, f, set)
	return uids
}

// deleteAll sets \Deleted on every message of the folder and expunges them.
func (e *env) deleteAll(u userdata.UserID, f userdata.FolderID) []userdata.UID {
	e.t.Helper()
	e.store(u, f, all, userdata.FlagUpdate{Op: userdata.FlagsAdd, Flags: userdata.FlagDeleted})
	return e.expunge(u, f, nil)
}

// bodyLive checks that the body ref points to can (live) or cannot be
// opened from e.mem.
func (e *env) bodyLive(ref msstore.Ref, live bool, format string, args ...any) {
	e.t.Helper()
	what := fmt.Sprintf(format, args...)
	b, err := e.mem.Open(e.ctx, ref)
	if err == nil {
		b.Close()
	}
	switch {
	case live && err != nil:
		e.t.Errorf("%s: body %v: Open: %v; want it still referenced", what, ref, err)
	case !live && !errors.Is(err, msstore.ErrNotFound):
		e.t.Errorf("%s: body %v: Open error = %v, want msstore.ErrNotFound (every reference released)", what, ref, err)
	}
}

// checkCounts recounts the folder's messages and compares the result with
// the counters Folder reports and with UIDs.
func (e *env) checkCounts(u userdata.UserID, f userdata.FolderID) userdata.Folder {
	e.t.Helper()
	fo := e.folderByID(u, f)
	ms := e.messages(u, f, all)
	var unseen uint32
	var size int64
	var maxMod uint64
	uids := make([]userdata.UID, 0, len(ms))
	for _, m := range ms {
		if m.Flags&userdata.FlagSeen == 0 {
			unseen++
		}
		size += m.Size
		maxMod = max(maxMod, m.ModSeq)
		uids = append(uids, m.UID)
		if m.UID >= fo.UIDNext {
			e.t.Errorf("folder %q: message UID %d >= UIDNext %d", fo.Name, m.UID, fo.UIDNext)
		}
	}
	if int(fo.Messages) != len(ms) || fo.Unseen != unseen || fo.Size != size {
		e.t.Errorf("folder %q: Messages/Unseen/Size = %d/%d/%d; a recount gives %d/%d/%d",
			fo.Name, fo.Messages, fo.Unseen, fo.Size, len(ms), unseen, size)
	}
	if fo.HighestModSeq < maxMod {
		e.t.Errorf("folder %q: HighestModSeq %d < a message's ModSeq %d", fo.Name, fo.HighestModSeq, maxMod)
	}
	if got := e.uids(u, f); !slices.Equal(got, uids) {
		e.t.Errorf("folder %q: UIDs() = %v; Messages gives %v", fo.Name, got, uids)
	}
	return fo
}

func wantCounts(t *testing.T, f userdata.Folder, messages, unseen uint32, size int64) {
	t.Helper()
	if f.Messages != messages || f.Unseen != unseen || f.Size != size {
		t.Errorf("folder %q: Messages/Unseen/Size = %d/%d/%d, want %d/%d/%d",
			f.Name, f.Messages, f.Unseen, f.Size, messages, unseen, size)
	}
}

func wantUsage(t *testing.T, got userdata.Usage, messages, bytes int64, what string) {
	t.Helper()
	if got.Messages != messages || got.Bytes != bytes {
		t.Errorf("%s: Usage = %+v, want {Messages:%d Bytes:%d}", what, got, messages, bytes)
	}
}

// sameKeywords compares keyword lists as sets.
func sameKeywords(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(slices.Compact(a), slices.Compact(b))
}

// sameContent checks that m holds what was appended as want.
func sameContent(t *testing.T, what string, m userdata.Message, want userdata.NewMessage) {
	t.Helper()
	if m.Ref != want.Ref {
		t.Errorf("%s: UID %d: Ref = %v, want %v", what, m.UID, m.Ref, want.Ref)
	}
	if !m.InternalDate.Equal(want.InternalDate) {
		t.Errorf("%s: UID %d: InternalDate = %v, want %v", what, m.UID, m.InternalDate, want.InternalDate)
	}
	if m.Size != want.Size {
		t.Errorf("%s: UID %d: Size = %d, want %d", what, m.UID, m.Size, want.Size)
	}
	if m.Flags != want.Flags {
		t.Errorf("%s: UID %d: Flags = %#x, want %#x", what, m.UID, m.Flags, want.Flags)
	}
	if !sameKeywords(m.Keywords, want.Keywords) {
		t.Errorf("%s: UID %d: Keywords = %q, want %q", what, m.UID, m.Keywords, want.Keywords)
	}
	if !bytes.Equal(m.Envelope, want.Envelope) {
		t.Errorf("%s: UID %d: Envelope = %q, want %q", what, m.UID, m.Envelope, want.Envelope)
	}
	if !bytes.Equal(m.Structure, want.Structure) {
		t.Errorf("%s: UID %d: Structure = %q, want %q", what, m.UID, m.Structure, want.Structure)
	}
}

func uidsOf(ms []userdata.Message) []userdata.UID {
	var uids []userdata.UID
	for _, m := range ms {
		uids = append(uids, m.UID)
	}
	return uids
}

func strictlyIncreasing(uids []userdata.UID) bool {
	for i := 1; i < len(uids); i++ {
		if uids[i] <= uids[i-1] {
			return false
		}
	}
	return true
}

// sameUIDs compares UID lists, treating nil and empty alike.
func sameUIDs(a, b []userdata.UID) bool { return len(a) == len(b) && slices.Equal(a, b) }

func sameUser(t *testing.T, what string, got, want userdata.User) {
	t.Helper()
	g, w := got, want
	g.Created, w.Created = time.Time{}, time.Time{}
	if g != w || !got.Created.Equal(want.Created) {
		t.Errorf("%s = %+v, want %+v", what, got, want)
	}
}

// sameProtocols compares allowed protocols, 0 meaning all.
func sameProtocols(got, want userdata.Protocol) bool {
	norm := func(p userdata.Protocol) userdata.Protocol {
		if p == 0 {
			return userdata.AllProtocols
		}
		return p
	}
	return norm(got) == norm(want)
}

func (e *env) wantLimits(u userdata.User, want userdata.Limits, what string) {
	e.t.Helper()
	got := e.limits(u.ID)
	g, w := got, want
	g.Protocols, w.Protocols = 0, 0
	if g != w || !sameProtocols(got.Protocols, want.Protocols) {
		e.t.Errorf("%s: Limits(%s) = %+v, want %+v", what, u.Address, got, want)
	}
}

// ---------------------------------------------------------------------------

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

	foreign := e.unit(userdata.OrgUnit{Domain: "other.test", Name: "Other Corp"})
	if _, err := db.CreateUnit(ctx, userdata.OrgUnit{Domain: "example.test", Parent: foreign.ID, Name: "X"}); err == nil {
		t.Errorf("CreateUnit with a parent in another domain succeeded")
	}
	_, err := db.CreateUnit(ctx, userdata.OrgUnit{Domain: "example.test", Parent: unknownUnit, Name: "X"})
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

	carol := e.user(userdata.NewUser{Address: "Carol@Example.TEST"})
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

	// Subscriptions.
	for _, v := range []bool{false, true, false} {
		must(t, db.Subscribe(ctx, u.ID, "Sent", v), "Subscribe(Sent, %v)", v)
		if f := e.folder(u.ID, "Sent"); f.Subscribed != v {
			t.Errorf("after Subscribe(Sent, %v): Subscribed = %v", v, f.Subscribed)
		}
		for _, f := range e.listFolders(u.ID) {
			if f.Name == "Sent" && f.Subscribed != v {
				t.Errorf("after Subscribe(Sent, %v): ListFolders shows Subscribed = %v", v, f.Subscribed)
			}
		}
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

	// Failures change nothing.
	m5 := e.add(u.ID, inbox.ID, e.newMsg(u, "INBOX", 10, 0))
	before := e.folder(u.ID, userdata.Inbox)
	_, err = db.Copy(ctx, u.ID, inbox.ID, all, inbox.ID)
	wantSomeErr(t, err, "Copy to the same folder")
	_, err = db.Move(ctx, u.ID, inbox.ID, all, inbox.ID)
	wantSomeErr(t, err, "Move to the same folder")
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

func testQuota(t *testing.T, e *env) {
	ctx, db := e.ctx, e.db
	e.class(userdata.ServiceClass{Name: "small", Quota: 1000})
	e.domain(userdata.Domain{Name: "example.test"})
	ann := e.user(userdata.NewUser{Address: "ann@example.test", Class: "small"})
	inbox := e.folder(ann.ID, userdata.Inbox)
	sent := e.folder(ann.ID, "Sent")

	var first userdata.Message
	for i := range 4 {
		f := inbox
		if i%2 == 1 {
			f = sent // the quota counts all folders
		}
		m := e.add(ann.ID, f.ID, e.newMsg(ann, f.Name, 250, 0))
		if i == 0 {
			first = m
		}
	}
	wantUsage(t, e.usage(ann.ID), 4, 1000, "at the quota")
	overQuota := func(u userdata.User, f userdata.Folder, size int, what string) {
		t.Helper()
		before, beforeU := e.folderByID(u.ID, f.ID), e.usage(u.ID)
		beforeUIDs := e.uids(u.ID, f.ID)
		_, err := db.Append(ctx, u.ID, f.ID, e.newMsg(u, f.Name, size, 0))
		wantErr(t, err, userdata.ErrQuota, "%s: Append of %d bytes", what, size)
		if after := e.folderByID(u.ID, f.ID); after != before {
			t.Errorf("%s: failed Append changed the folder from %+v to %+v", what, before, after)
		}
		if after := e.usage(u.ID); after != beforeU {
			t.Errorf("%s: failed Append changed Usage from %+v to %+v", what, beforeU, after)
		}
		if after := e.uids(u.ID, f.ID); !sameUIDs(after, beforeUIDs) {
			t.Errorf("%s: failed Append changed UIDs from %v to %v", what, beforeUIDs, after)
		}
	}
	overQuota(ann, inbox, 1, "user quota")
	overQuota(ann, sent, 500, "user quota")
	e.store(ann.ID, inbox.ID, userdata.UIDSet{{Start: first.UID, Stop: first.UID}}, userdata.FlagUpdate{Op: userdata.FlagsAdd, Flags: userdata.FlagDeleted})
	e.expunge(ann.ID, inbox.ID, nil)
	e.add(ann.ID, inbox.ID, e.newMsg(ann, "INBOX", 250, 0))
	overQuota(ann, inbox, 1, "user quota after an expunge and an append")
	q := int64(2000)
	must(t, db.UpdateUser(ctx, ann.ID, userdata.UserUpdate{Quota: &q}), "UpdateUser(quota 2000)")
	e.add(ann.ID, inbox.ID, e.newMsg(ann, "INBOX", 1000, 0))
	overQuota(ann, inbox, 1, "raised user quota")

	// A domain's quota is shared by its users.
	e.domain(userdata.Domain{Name: "small.test", Quota: 1000})
	bea := e.user(userdata.NewUser{Address: "bea@small.test"})
	cid := e.user(userdata.NewUser{Address: "cid@small.test"})
	beaInbox, cidInbox := e.folder(bea.ID, userdata.Inbox), e.folder(cid.ID, userdata.Inbox)
	big := e.add(bea.ID, beaInbox.ID, e.newMsg(bea, "INBOX", 600, 0))
	e.add(cid.ID, cidInbox.ID, e.newMsg(cid, "INBOX", 400, 0))
	overQuota(cid, cidInbox, 1, "domain quota")
	overQuota(bea, beaInbox, 1, "domain quota")
	e.store(bea.ID, beaInbox.ID, userdata.UIDSet{{Start: big.UID, Stop: big.UID}}, userdata.FlagUpdate{Op: userdata.FlagsAdd, Flags: userdata.FlagDeleted})
	e.expunge(bea.ID, beaInbox.ID, nil)
	e.add(cid.ID, cidInbox.ID, e.newMsg(cid, "INBOX", 600, 0))
	overQuota(bea, beaInbox, 1, "domain quota after an expunge")
	must(t, db.UpdateDomain(ctx, userdata.Domain{Name: "small.test", Quota: 0}), "UpdateDomain(no quota)")
	e.add(bea.ID, beaInbox.ID, e.newMsg(bea, "INBOX", 5000, 0))
}

// testQuotaConcurrent checks that concurrent appends never pass a quota:
// those of one user, and those of several users of a domain (whose usage
// is shared). Each round starts its appenders together; the overrun it
// looks for is a race, so run it with -race.
func testQuotaConcurrent(t *testing.T, e *env) {
	const size, quota = 100, 700
	// appendAll appends n messages for each user, all at once, and returns
	// the total bytes the users then hold.
	appendAll := func(users []userdata.User, n int) int64 {
		t.Helper()
		var wg sync.WaitGroup
		start := make(chan struct{})
		for _, u := range users {
			inbox := e.folder(u.ID, userdata.Inbox)
			for range n {
				wg.Go(func() {
					ref, err := e.putBody(u.Address, "INBOX", size)
					if err != nil {
						t.Errorf("Put: %v", err)
						return
					}
					<-start
					_, err = e.db.Append(e.ctx, u.ID, inbox.ID, msgFor(ref, size, 0))
					if err != nil && !errors.Is(err, userdata.ErrQuota) {
						t.Errorf("Append for %s: %v", u.Address, err)
					}
				})
			}
		}
		close(start)
		wg.Wait()
		var total int64
		for _, u := range users {
			total += e.usage(u.ID).Bytes
			e.checkCounts(u.ID, e.folder(u.ID, userdata.Inbox).ID)
		}
		return total
	}

	e.class(userdata.ServiceClass{Name: "small", Quota: quota})
	e.domain(userdata.Domain{Name: "one.test"})
	solo := e.user(userdata.NewUser{Address: "solo@one.test", Class: "small"})
	if got := appendAll([]userdata.User{solo}, 12); got != quota {
		t.Errorf("12 concurrent appends of %d bytes under a user quota of %d: the user holds %d bytes, want %d", size, quota, got, quota)
	}

	const rounds, users = 40, 12
	over, under := 0, 0
	var worst int64
	for r := range rounds {
		dom := fmt.Sprintf("d%d.test", r)
		e.domain(userdata.Domain{Name: dom, Quota: quota})
		var us []userdata.User
		for i := range users {
			us = append(us, e.user(userdata.NewUser{Address: fmt.Sprintf("u%d@%s", i, dom)}))
		}
		total := appendAll(us, 2)
		switch {
		case total > quota:
			over++
			worst = max(worst, total)
		case total < quota:
			under++
		}
	}
	if over > 0 {
		t.Errorf("in %d of %d rounds, %d users appending %d-byte messages at once passed their domain's quota of %d bytes (up to %d held)",
			over, rounds, users, size, quota, worst)
	}
	if under > 0 {
		t.Errorf("in %d of %d rounds, concurrent appends stopped short of the domain's quota of %d bytes", under, rounds, quota)
	}
}

func testConcurrency(t *testing.T, e *env) {
	ctx, db := e.ctx, e.db
	u := e.simpleUser("ann@example.test")
	inbox := e.folder(u.ID, userdata.Inbox)
	const writers, each = 8, 50

	var mu sync.Mutex
	appended := map[userdata.UID]int64{} // UID → size
	var appenders, others sync.WaitGroup
	for g := range writers {
		appenders.Go(func() {
			for i := range each {
				size := 100 + 7*g + i
				ref, err := e.putBody(u.Address, "INBOX", size)
				if err != nil {
					t.Errorf("Put: %v", err)
					return
				}
				var fl userdata.Flags
				if i%3 == 0 {
					fl = userdata.FlagSeen
				}
				m, err := db.Append(ctx, u.ID, inbox.ID, msgFor(ref, size, fl))
				if err != nil {
					t.Errorf("appender %d: Append %d: %v", g, i, err)
					return
				}
				mu.Lock()
				if _, dup := appended[m.UID]; dup {
					t.Errorf("appender %d: Append gave UID %d a second time", g, m.UID)
				}
				appended[m.UID] = int64(size)
				mu.Unlock()
			}
		})
	}
	stop := make(chan struct{})
	stopped := func() bool {
		select {
		case <-stop:
			return true
		default:
			return false
		}
	}
	for g := range 2 {
		others.Go(func() {
			flag := []userdata.Flags{userdata.FlagSeen, userdata.FlagFlagged}[g]
			for i := 0; !stopped(); i++ {
				op := userdata.FlagsAdd
				if i%2 == 1 {
					op = userdata.FlagsRemove
				}
				start := userdata.UID(1 + (i*37+g*101)%(writers*each))
				set := userdata.UIDSet{{Start: start, Stop: start + 40}, {Start: start + 100, Stop: 0}}
				if _, err := db.StoreFlags(ctx, u.ID, inbox.ID, set, userdata.FlagUpdate{Op: op, Flags: flag, Keywords: []string{fmt.Sprintf("k%d", g)}}); err != nil {
					t.Errorf("flagger %d: StoreFlags: %v", g, err)
					return
				}
				time.Sleep(time.Millisecond)
			}
		})
	}
	others.Go(func() {
		for i := 0; !stopped(); i++ {
			var set userdata.UIDSet
			if i%2 == 1 {
				set = userdata.UIDSet{{Start: userdata.UID(i % 400), Stop: 0}}
			}
			x, err := db.Expunge(ctx, u.ID, inbox.ID, set)
			if err != nil {
				t.Errorf("expunger: Expunge: %v", err)
				return
			}
			if len(x) != 0 {
				t.Errorf("expunger: Expunge removed %v, none of which had \\Deleted", x)
			}
			time.Sleep(time.Millisecond)
		}
	})
	others.Go(func() {
		for !stopped() {
			uids, err := db.UIDs(ctx, u.ID, inbox.ID)
			if err != nil {
				t.Errorf("reader: UIDs: %v", err)
				return
			}
			if !strictlyIncreasing(uids) {
				t.Errorf("reader: UIDs() not strictly increasing: %v", uids)
				return
			}
			f, err := db.Folder(ctx, u.ID, userdata.Inbox)
			if err != nil {
				t.Errorf("reader: Folder: %v", err)
				return
			}
			if f.Messages > writers*each || f.Unseen > f.Messages {
				t.Errorf("reader: Folder = %+v", f)
				return
			}
			time.Sleep(time.Millisecond)
		}
	})
	appenders.Wait()
	close(stop)
	others.Wait()
	if t.Failed() {
		t.FailNow()
	}

	if len(appended) != writers*each {
		t.Errorf("%d distinct UIDs appended, want %d", len(appended), writers*each)
	}
	var want []userdata.UID
	var size int64
	for uid, sz := range appended {
		want = append(want, uid)
		size += sz
	}
	slices.Sort(want)
	got := e.uids(u.ID, inbox.ID)
	if !strictlyIncreasing(got) || !sameUIDs(got, want) {
		t.Errorf("UIDs() gives %d UIDs (strictly increasing: %v); want the %d appended", len(got), strictlyIncreasing(got), len(want))
	}
	f := e.checkCounts(u.ID, inbox.ID)
	if f.Messages != writers*each || f.UIDNext != writers*each+1 || f.Size != size {
		t.Errorf("Folder(INBOX) = %+v, want Messages %d, UIDNext %d, Size %d", f, writers*each, writers*each+1, size)
	}
	wantUsage(t, e.usage(u.ID), writers*each, size, "after the concurrent appends")
	e.checkChanges(u.ID, inbox.ID, 0, nil)
}

// recorder keeps the events a Watch delivers.
type recorder struct {
	mu     sync.Mutex
	events []userdata.FolderEvent
}

func (r *recorder) record(ev userdata.FolderEvent) {
	ev.Added, ev.Removed, ev.Flags = slices.Clone(ev.Added), slices.Clone(ev.Removed), slices.Clone(ev.Flags)
	r.mu.Lock()
	r.events = append(r.events, ev)
	r.mu.Unlock()
}

func (r *recorder) take() []userdata.FolderEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	evs := r.events
	r.events = nil
	return evs
}

func testWatch(t *testing.T, e *env) {
	w, ok := e.db.(userdata.Watcher)
	if !ok {
		t.Skip("the database does not implement userdata.Watcher")
	}
	ctx, db := e.ctx, e.db
	u := e.simpleUser("ann@example.test")
	other := e.simpleUser("bob@example.test")
	inbox := e.folder(u.ID, userdata.Inbox)
	work := e.createFolder(u.ID, "Work")
	otherInbox := e.folder(other.ID, userdata.Inbox)

	var inboxRec, workRec, otherRec recorder
	stopInbox := w.Watch(u.ID, inbox.ID, inboxRec.record)
	stopWork := w.Watch(u.ID, work.ID, workRec.record)
	stopOther := w.Watch(other.ID, otherInbox.ID, otherRec.record)
	defer stopWork()
	defer stopOther()

	lastMod := map[userdata.FolderID]uint64{}
	expect := func(r *recorder, f userdata.Folder, added, removed, flags []userdata.UID, what string) {
		t.Helper()
		evs := r.take()
		if len(evs) != 1 {
			t.Errorf("%s: folder %q got %d events %+v, want 1", what, f.Name, len(evs), evs)
			return
		}
		ev := evs[0]
		if ev.User != u.ID || ev.Folder != f.ID || !sameUIDs(ev.Added, added) || !sameUIDs(ev.Removed, removed) || !sameUIDs(ev.Flags, flags) {
			t.Errorf("%s: event %+v, want user %d folder %d Added %v Removed %v Flags %v", what, ev, u.ID, f.ID, added, removed, flags)
		}
		if ev.ModSeq <= lastMod[f.ID] {
			t.Errorf("%s: event ModSeq %d, not above the previous event's %d", what, ev.ModSeq, lastMod[f.ID])
		}
		lastMod[f.ID] = ev.ModSeq
	}
	none := func(r *recorder, what string) {
		t.Helper()
		if evs := r.take(); len(evs) != 0 {
			t.Errorf("%s: got events %+v, want none", what, evs)
		}
	}
	one := func(uid userdata.UID) userdata.UIDSet { return userdata.UIDSet{{Start: uid, Stop: uid}} }
	list := func(uids ...userdata.UID) []userdata.UID { return uids }

	m1 := e.add(u.ID, inbox.ID, e.newMsg(u, "INBOX", 10, 0))
	expect(&inboxRec, inbox, list(m1.UID), nil, nil, "append")
	m2 := e.add(u.ID, inbox.ID, e.newMsg(u, "INBOX", 10, 0))
	expect(&inboxRec, inbox, list(m2.UID), nil, nil, "second append")
	e.store(u.ID, inbox.ID, one(m1.UID), userdata.FlagUpdate{Op: userdata.FlagsAdd, Flags: userdata.FlagSeen})
	expect(&inboxRec, inbox, nil, nil, list(m1.UID), "store flags")
	e.store(u.ID, inbox.ID, one(m2.UID), userdata.FlagUpdate{Op: userdata.FlagsAdd, Flags: userdata.FlagDeleted})
	expect(&inboxRec, inbox, nil, nil, list(m2.UID), "store \\Deleted")
	e.expunge(u.ID, inbox.ID, nil)
	expect(&inboxRec, inbox, nil, list(m2.UID), nil, "expunge")
	none(&workRec, "changes to INBOX, seen in Work")

	r, err := db.Move(ctx, u.ID, inbox.ID, one(m1.UID), work.ID)
	must(t, err, "Move to Work")
	expect(&inboxRec, inbox, nil, list(m1.UID), nil, "move out")
	expect(&workRec, work, r.Dest, nil, nil, "move in")
	r2, err := db.Move(ctx, u.ID, work.ID, all, inbox.ID)
	must(t, err, "Move back to INBOX")
	expect(&workRec, work, nil, r.Dest, nil, "move back out")
	expect(&inboxRec, inbox, r2.Dest, nil, nil, "move back in")
	r3, err := db.Copy(ctx, u.ID, inbox.ID, all, work.ID)
	must(t, err, "Copy to Work")
	expect(&workRec, work, r3.Dest, nil, nil, "copy in")
	none(&inboxRec, "copy out")
	none(&otherRec, "another user's changes")

	stopInbox()
	e.add(u.ID, inbox.ID, e.newMsg(u, "INBOX", 10, 0))
	e.store(u.ID, inbox.ID, all, userdata.FlagUpdate{Op: userdata.FlagsAdd, Flags: userdata.FlagFlagged})
	none(&inboxRec, "after stop")
	stopInbox() // a second stop is harmless
	e.add(u.ID, work.ID, e.newMsg(u, "Work", 10, 0))
	if evs := workRec.take(); len(evs) != 1 {
		t.Errorf("Work's watcher after INBOX's stopped: %d events, want 1", len(evs))
	}
}

func testClosed(t *testing.T, e *env) {
	ctx, db := e.ctx, e.db
	u := e.simpleUser("ann@example.test")
	inbox := e.folder(u.ID, userdata.Inbox)
	e.add(u.ID, inbox.ID, e.newMsg(u, "INBOX", 10, 0))
	if err := db.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	nop := func(userdata.Folder) error { return nil }
	calls := []struct {
		name string
		fn   func() error
	}{
		{"CreateDomain", func() error { return db.CreateDomain(ctx, userdata.Domain{Name: "new.test"}) }},
		{"Domain", func() error { _, err := db.Domain(ctx, "example.test"); return err }},
		{"UpdateDomain", func() error { return db.UpdateDomain(ctx, userdata.Domain{Name: "example.test"}) }},
		{"AddDomainAlias", func() error { return db.AddDomainAlias(ctx, "alias.test", "example.test") }},
		{"CreateUnit", func() error {
			_, err := db.CreateUnit(ctx, userdata.OrgUnit{Domain: "example.test", Name: "X"})
			return err
		}},
		{"Unit", func() error { _, err := db.Unit(ctx, 1); return err }},
		{"UpdateUnit", func() error { return db.UpdateUnit(ctx, userdata.OrgUnit{ID: 1, Name: "X"}) }},
		{"DefineClass", func() error { return db.DefineClass(ctx, userdata.ServiceClass{Name: "x"}) }},
		{"CreateUser", func() error {
			_, err := db.CreateUser(ctx, userdata.NewUser{Address: "new@example.test"})
			return err
		}},
		{"User", func() error { _, err := db.User(ctx, u.ID); return err }},
		{"LookupAddress", func() error { _, err := db.LookupAddress(ctx, u.Address); return err }},
		{"UpdateUser", func() error { return db.UpdateUser(ctx, u.ID, userdata.UserUpdate{}) }},
		{"SetPassword", func() error { return db.SetPassword(ctx, u.ID, "x") }},
		{"AddAlias", func() error { return db.AddAlias(ctx, "alias@example.test", u.ID) }},
		{"RemoveAlias", func() error { return db.RemoveAlias(ctx, "alias@example.test") }},
		{"Limits", func() error { _, err := db.Limits(ctx, u.ID); return err }},
		{"Usage", func() error { _, err := db.Usage(ctx, u.ID); return err }},
		{"Authenticate", func() error {
			_, err := db.Authenticate(ctx, u.Address, "x", userdata.ProtoIMAP)
			return err
		}},
		{"ListFolders", func() error { return db.ListFolders(ctx, u.ID, nop) }},
		{"Folder", func() error { _, err := db.Folder(ctx, u.ID, "INBOX"); return err }},
		{"FolderByID", func() error { _, err := db.FolderByID(ctx, u.ID, inbox.ID); return err }},
		{"CreateFolder", func() error { _, err := db.CreateFolder(ctx, u.ID, "New", ""); return err }},
		{"RenameFolder", func() error { return db.RenameFolder(ctx, u.ID, "Sent", "Sent2") }},
		{"DeleteFolder", func() error { return db.DeleteFolder(ctx, u.ID, "Sent") }},
		{"Subscribe", func() error { return db.Subscribe(ctx, u.ID, "Sent", false) }},
		{"Append", func() error {
			_, err := db.Append(ctx, u.ID, inbox.ID, msgFor(msstore.Ref{Node: 1, ID: 999, Size: 3}, 3, 0))
			return err
		}},
		{"Messages", func() error {
			return db.Messages(ctx, u.ID, inbox.ID, all, func(*userdata.Message) error { return nil })
		}},
		{"UIDs", func() error { _, err := db.UIDs(ctx, u.ID, inbox.ID); return err }},
		{"StoreFlags", func() error {
			_, err := db.StoreFlags(ctx, u.ID, inbox.ID, all, userdata.FlagUpdate{Op: userdata.FlagsAdd, Flags: userdata.FlagSeen})
			return err
		}},
		{"Copy", func() error { _, err := db.Copy(ctx, u.ID, inbox.ID, all, inbox.ID+1); return err }},
		{"Move", func() error { _, err := db.Move(ctx, u.ID, inbox.ID, all, inbox.ID+1); return err }},
		{"Expunge", func() error { _, err := db.Expunge(ctx, u.ID, inbox.ID, nil); return err }},
		{"Changes", func() error {
			return db.Changes(ctx, u.ID, inbox.ID, 0, func(userdata.Change) error { return nil })
		}},
	}
	for _, c := range calls {
		wantErr(t, c.fn(), userdata.ErrClosed, "%s after Close", c.name)
	}
	if err := db.Close(); err != nil && !errors.Is(err, userdata.ErrClosed) {
		t.Errorf("second Close: error = %v, want nil or ErrClosed", err)
	}
}
