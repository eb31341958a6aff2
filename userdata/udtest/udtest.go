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
// each database at the end of its subtest. The Watch and WatchMany
// subtests run only when the database implements [userdata.Watcher] (and
// Hold only when its events offer FolderEvent.Hold), Remove only when it
// implements [userdata.Remover], Keywords only for [userdata.KeywordLister]
// and Recent only for [userdata.RecentClaimer], RewriteRefs only for
// [userdata.RefRewriter], Lister only for [userdata.Lister]. Ownership checks the
// general rules of [userdata.UserDB] on the values passed and returned.
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
		{"Subscriptions", testSubscriptions},
		{"AppendAndCounts", testAppendAndCounts},
		{"FlagsAndModSeq", testFlagsAndModSeq},
		{"CopyMove", testCopyMove},
		{"Expunge", testExpunge},
		{"Remove", testRemove},
		{"Quota", testQuota},
		{"QuotaConcurrent", testQuotaConcurrent},
		{"Concurrency", testConcurrency},
		{"ConcurrentAppends", testConcurrentAppends},
		{"Watch", testWatch},
		{"WatchMany", testWatchMany},
		{"Ownership", testOwnership},
		{"Keywords", testKeywords},
		{"Recent", testRecent},
		{"Hold", testHold},
		{"RewriteRefs", testRewriteRefs},
		{"Lister", testLister},
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
