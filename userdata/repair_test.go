package userdata

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/mailsys/mailsys/msstore"
)

// repairLog collects a DB's log records for the tests to read; Pebble logs
// from its own goroutines, hence the lock.
type repairLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *repairLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *repairLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (l *repairLog) Reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b.Reset()
}

// repairEnv is a DB on a Memory store with two users: ann, whose index
// the tests damage and repair, and bob, who shares some of her mail.
type repairEnv struct {
	t        *testing.T
	ctx      context.Context
	dir      string
	mem      *msstore.Memory
	log      *repairLog
	noCache  bool
	d        *DB
	ann, bob User
	// delivered maps the body id of every message delivered to ann to the
	// folder it should be in.
	delivered map[uint64]string
	received  time.Time // the Received of the next delivery
}

// repairBase is the delivery time of the first test message.
var repairBase = time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)

func newRepairEnv(t *testing.T, noCache bool) *repairEnv {
	t.Helper()
	e := &repairEnv{t: t, ctx: t.Context(), dir: t.TempDir(), mem: msstore.NewMemory(1), log: &repairLog{},
		noCache: noCache, delivered: map[uint64]string{}, received: repairBase}
	e.open()
	t.Cleanup(func() {
		if e.d != nil {
			e.d.Close()
		}
	})
	e.must(e.d.CreateDomain(e.ctx, Domain{Name: "example.test"}), "CreateDomain")
	e.must(e.d.AddDomainAlias(e.ctx, "alias.test", "example.test"), "AddDomainAlias")
	var err error
	e.ann, err = e.d.CreateUser(e.ctx, NewUser{Address: "ann@example.test", Password: "secret"})
	e.must(err, "CreateUser(ann)")
	e.bob, err = e.d.CreateUser(e.ctx, NewUser{Address: "bob@example.test", Password: "secret"})
	e.must(err, "CreateUser(bob)")
	e.must(e.d.AddAlias(e.ctx, "anna@example.test", e.ann.ID), "AddAlias")
	_, err = e.d.CreateFolder(e.ctx, e.ann.ID, "Work/Reports", "")
	e.must(err, "CreateFolder")
	return e
}

// open opens the DB in e.dir with AutoRepair on.
func (e *repairEnv) open() {
	e.t.Helper()
	cfg := Config{
		Dir:          e.dir,
		Node:         "ud1",
		Bodies:       e.mem,
		Argon2:       Argon2Params{Time: 1, Memory: 64, Threads: 1},
		CacheSize:    8 << 20,
		MemTableSize: 4 << 20,
		Logger:       slog.New(slog.NewTextHandler(io.MultiWriter(e.log, e.t.Output()), nil)),
	}
	if e.noCache {
		cfg.LoginCache = -1
	}
	d, err := Open(e.ctx, cfg)
	e.must(err, "Open")
	d.EnableAutoRepair(e.mem)
	e.d = d
}

// reopen closes the DB and opens it again, as a restarted process would.
func (e *repairEnv) reopen() {
	e.t.Helper()
	e.must(e.d.Close(), "Close")
	e.d = nil
	e.open()
}

func (e *repairEnv) must(err error, what string) {
	e.t.Helper()
	if err != nil {
		e.t.Fatalf("%s: %v", what, err)
	}
}

// folder returns a folder of user.
func (e *repairEnv) folder(user UserID, name string) Folder {
	e.t.Helper()
	f, err := e.d.Folder(e.ctx, user, name)
	e.must(err, "Folder("+name+")")
	return f
}

// deliver stores a body delivered to owners and appends it to ann's
// folder box (and bob's INBOX if bob is an owner), as the delivery path
// does. Even deliveries are seen.
func (e *repairEnv) deliver(box string, owners ...msstore.Owner) (msstore.Ref, Message) {
	e.t.Helper()
	i := len(e.delivered)
	body := fmt.Sprintf("Message-ID: <%d@test>\r\nSubject: %d\r\n\r\n%s", i, i, strings.Repeat("x", 10*i))
	ref, err := e.mem.Put(e.ctx, strings.NewReader(body), msstore.Meta{MessageID: fmt.Sprintf("<%d@test>", i),
		Received: e.received, Owners: owners})
	e.must(err, "Put")
	var flags Flags
	if i%2 == 0 {
		flags = FlagSeen
	}
	nm := NewMessage{Ref: ref, InternalDate: e.received, Size: ref.Size, Flags: flags, Envelope: []byte("env")}
	e.received = e.received.Add(time.Minute)
	m, err := e.d.Append(e.ctx, e.ann.ID, e.folder(e.ann.ID, box).ID, nm)
	e.must(err, "Append")
	for _, o := range owners {
		if o.User == e.bob.Address {
			_, err := e.d.Append(e.ctx, e.bob.ID, e.folder(e.bob.ID, Inbox).ID, nm)
			e.must(err, "Append(bob)")
		}
	}
	e.delivered[ref.ID] = box
	return ref, m
}

// index returns, for each body ann's index references, the folders whose
// entries reference it.
func (e *repairEnv) index(user UserID) map[uint64][]string {
	e.t.Helper()
	got := map[uint64][]string{}
	var folders []Folder
	e.must(e.d.ListFolders(e.ctx, user, func(f Folder) error {
		folders = append(folders, f)
		return nil
	}), "ListFolders")
	for _, f := range folders {
		e.must(e.d.Messages(e.ctx, user, f.ID, nil, func(m *Message) error {
			got[m.Ref.ID] = append(got[m.Ref.ID], f.Name)
			return nil
		}), "Messages")
	}
	return got
}

// wantIndex checks that ann's index references every delivered body once,
// in the folder e.delivered says, and nothing else.
func (e *repairEnv) wantIndex() {
	e.t.Helper()
	got := e.index(e.ann.ID)
	for id, box := range e.delivered {
		if box == "" {
			if len(got[id]) != 0 {
				e.t.Errorf("body %d, expunged, is back in %q", id, got[id])
			}
			continue
		}
		if !slices.Equal(got[id], []string{box}) {
			e.t.Errorf("body %d is in %q, want [%s]", id, got[id], box)
		}
	}
	for id, boxes := range got {
		if _, ok := e.delivered[id]; !ok {
			e.t.Errorf("body %d, never delivered, is in %q", id, boxes)
		}
	}
}

// damage applies fn's changes to the database in one batch, behind the
// DB's back.
func (e *repairEnv) damage(fn func(b *pebble.Batch)) {
	e.t.Helper()
	b := e.d.db.NewBatch()
	defer b.Close()
	fn(b)
	e.must(e.d.commit(b), "commit damage")
}

// checkWhole checks the invariants Repair restores: every folder's
// counters, UIDNEXT and HIGHESTMODSEQ agree with its messages, its change
// log holds one live entry per message at its MODSEQ and no tombstone of a
// live UID, the usage is the sum, and the login check finds nothing.
func checkWhole(t *testing.T, d *DB, user UserID) {
	t.Helper()
	ctx := t.Context()
	var folders []Folder
	if err := d.ListFolders(ctx, user, func(f Folder) error {
		folders = append(folders, f)
		return nil
	}); err != nil {
		t.Fatalf("ListFolders: %v", err)
	}
	var usage Usage
	for _, f := range folders {
		var n, unseen uint32
		var size int64
		var maxUID UID
		var maxMod uint64
		msgs := map[UID]uint64{}
		if err := d.Messages(ctx, user, f.ID, nil, func(m *Message) error {
			n++
			size += m.Size
			if m.Flags&FlagSeen == 0 {
				unseen++
			}
			maxUID, maxMod = max(maxUID, m.UID), max(maxMod, m.ModSeq)
			msgs[m.UID] = m.ModSeq
			return nil
		}); err != nil {
			t.Fatalf("Messages(%s): %v", f.Name, err)
		}
		usage.Messages += int64(n)
		usage.Bytes += size
		if f.Messages != n || f.Unseen != unseen || f.Size != size || f.UIDNext <= maxUID || f.HighestModSeq < maxMod {
			t.Errorf("folder %q: %+v; holds %d messages, %d unseen, %d bytes, UIDs to %d, MODSEQs to %d",
				f.Name, f, n, unseen, size, maxUID, maxMod)
		}
		live := map[UID]uint64{}
		if err := d.Changes(ctx, user, f.ID, 0, func(c Change) error {
			if c.Expunged {
				if _, ok := msgs[c.UID]; ok {
					t.Errorf("folder %q: tombstone of live message %d", f.Name, c.UID)
				}
				return nil
			}
			if _, dup := live[c.UID]; dup {
				t.Errorf("folder %q: message %d has two change-log entries", f.Name, c.UID)
			}
			live[c.UID] = c.ModSeq
			return nil
		}); err != nil {
			t.Fatalf("Changes(%s): %v", f.Name, err)
		}
		if !maps.Equal(live, msgs) {
			t.Errorf("folder %q: change log's live entries %v, messages %v", f.Name, live, msgs)
		}
	}
	if u, err := d.Usage(ctx, user); err != nil || u != usage {
		t.Errorf("Usage = %+v, %v; the folders hold %+v", u, err, usage)
	}
	if damaged, err := d.checkIndex(ctx, user); err != nil || damaged {
		t.Errorf("checkIndex after repair = %v, %v; want false", damaged, err)
	}
}

// uidSet is the set of the given UIDs.
func uidSet(uids ...UID) UIDSet {
	var s UIDSet
	for _, u := range uids {
		s = append(s, UIDRange{u, u})
	}
	return s
}

// TestAutoRepair is the scenario: a user's index loses message
// records, folder and mailbox records; after a restart, her login brings
// every message back, once, where it was, and the expunged ones stay gone.
func TestAutoRepair(t *testing.T) {
	e := newRepairEnv(t, false)
	ctx, d := e.ctx, e.d
	addrs := []string{"ann@example.test", "anna@example.test", "ANN@alias.test"} // primary, alias, domain alias
	expunge := map[int]bool{4: true, 5: true, 7: true}
	move := map[int]bool{1: true, 2: true}
	refs := make([]msstore.Ref, 30)
	uids := make([]UID, 30)
	for i := range 30 {
		box := Inbox
		if i%3 == 0 {
			box = "Work/Reports"
		}
		owners := []msstore.Owner{{User: addrs[i%3], Mailbox: box}}
		if expunge[i] {
			// Bob got it too: the body outlives Ann's expunge.
			owners = append(owners, msstore.Owner{User: e.bob.Address, Mailbox: Inbox})
		}
		ref, m := e.deliver(box, owners...)
		refs[i], uids[i] = ref, m.UID
	}
	inbox, archive, work := e.folder(e.ann.ID, Inbox), e.folder(e.ann.ID, "Archive"), e.folder(e.ann.ID, "Work/Reports")

	var del []UID
	for i := range expunge {
		del = append(del, uids[i])
		e.delivered[refs[i].ID] = ""
	}
	_, err := d.StoreFlags(ctx, e.ann.ID, inbox.ID, uidSet(del...), FlagUpdate{Op: FlagsAdd, Flags: FlagDeleted})
	e.must(err, "StoreFlags")
	gone, err := d.Expunge(ctx, e.ann.ID, inbox.ID, nil)
	if err != nil || len(gone) != 3 {
		t.Fatalf("Expunge = %v, %v; want 3 UIDs", gone, err)
	}
	for i := range expunge {
		body, err := e.mem.Open(ctx, refs[i])
		if err != nil {
			t.Fatalf("body %d after Ann's expunge: %v; Bob still references it", i, err)
		}
		body.Close()
	}
	var mv []UID
	for i := range move {
		mv = append(mv, uids[i])
		e.delivered[refs[i].ID] = "Archive"
	}
	_, err = d.Move(ctx, e.ann.ID, inbox.ID, uidSet(mv...), archive.ID)
	e.must(err, "Move")
	e.wantIndex()
	checkWhole(t, d, e.ann.ID)

	// The expunges' tombstones name their bodies; the move's do not.
	named := 0
	e.must(d.scan(changePrefix(e.ann.ID, inbox.ID), prefixEnd(changePrefix(e.ann.ID, inbox.ID)), func(k, v []byte) error {
		if c, ok := parseChange(v); ok && c.named {
			named++
		}
		return nil
	}), "scan")
	if named != 3 {
		t.Errorf("%d tombstones name a body, want 3", named)
	}

	inbox = e.folder(e.ann.ID, Inbox)
	usage, err := d.Usage(ctx, e.ann.ID)
	e.must(err, "Usage")
	e.damage(func(b *pebble.Batch) {
		for _, i := range []int{10, 11, 0, 3, 6} { // (a) lost
			box := inbox.ID
			if i%3 == 0 {
				box = work.ID
			}
			b.Delete(keyMessage(e.ann.ID, box, uids[i]), nil)
		}
		for _, i := range []int{13, 14} { // (b) garbage
			b.Set(keyMessage(e.ann.ID, inbox.ID, uids[i]), []byte{recordVersion, 0xff, 0xff, 0xff}, nil)
		}
		b.Delete(keyFolder(e.ann.ID, work.ID), nil)                            // (c)
		b.Set(keyID(tagMailbox, uint64(e.ann.ID)), []byte("\x01garbage"), nil) // (d)
	})
	if _, err := d.Usage(ctx, e.ann.ID); err == nil {
		t.Fatal("Usage works with a corrupt mailbox record")
	}

	e.reopen()
	d = e.d
	e.log.Reset()
	if _, err := d.Authenticate(ctx, "ann@example.test", "secret", ProtoIMAP); err != nil {
		t.Fatalf("Authenticate: %v", err)
	}
	logged := e.log.String()
	for _, want := range []string{`msg="index damaged; repairing"`, `msg="index repaired"`, "restored=7", "dropped=2"} {
		if !strings.Contains(logged, want) {
			t.Errorf("log lacks %s:\n%s", want, logged)
		}
	}
	e.wantIndex()
	checkWhole(t, d, e.ann.ID)
	if u, err := d.Usage(ctx, e.ann.ID); err != nil || u != usage {
		t.Errorf("Usage after repair = %+v, %v; want %+v as before the damage", u, err, usage)
	}
	if f := e.folder(e.ann.ID, Inbox); f.UIDValidity != inbox.UIDValidity || f.ID != inbox.ID {
		t.Errorf("INBOX after repair: %+v, was %+v; its record was whole", f, inbox)
	}
	if f := e.folder(e.ann.ID, "Work/Reports"); f.UIDValidity <= work.UIDValidity || f.ID != work.ID || f.UIDNext <= uids[27] {
		t.Errorf("Work/Reports after repair: %+v, was %+v; want a new, higher UIDVALIDITY and UIDs after %d", f, work, uids[27])
	}

	// A QRESYNC client of INBOX sees the lost UIDs vanish and the restored
	// ones arrive.
	var vanished, added []UID
	e.must(d.Changes(ctx, e.ann.ID, inbox.ID, inbox.HighestModSeq, func(c Change) error {
		if c.Expunged {
			vanished = append(vanished, c.UID)
		} else {
			added = append(added, c.UID)
		}
		return nil
	}), "Changes")
	if want := []UID{uids[10], uids[11], uids[13], uids[14]}; !slices.Equal(vanished, want) || len(added) != 4 {
		t.Errorf("INBOX changes since the damage: vanished %v (want %v), added %v (want 4)", vanished, want, added)
	}

	// Bob's mailbox was not touched.
	if got := e.index(e.bob.ID); len(got) != 3 {
		t.Errorf("Bob's index: %v, want his 3 messages", got)
	}

	// Idempotent: nothing left to do.
	rep, err := d.Repair(ctx, e.ann.ID)
	if err != nil || rep.changed() || rep.Deferred != 0 {
		t.Errorf("second Repair = %+v, %v; want nothing done", rep, err)
	}
	// The mailbox works again.
	e.deliver(Inbox, msstore.Owner{User: "ann@example.test", Mailbox: Inbox})
	e.wantIndex()
	checkWhole(t, d, e.ann.ID)
}

// deliverSome delivers n messages to ann, every third to Work/Reports.
func (e *repairEnv) deliverSome(n int) (refs []msstore.Ref, msgs []Message) {
	e.t.Helper()
	for i := range n {
		box := Inbox
		if i%3 == 2 {
			box = "Work/Reports"
		}
		ref, m := e.deliver(box, msstore.Owner{User: e.ann.Address, Mailbox: box})
		refs, msgs = append(refs, ref), append(msgs, m)
	}
	return refs, msgs
}

// login authenticates ann.
func (e *repairEnv) login() {
	e.t.Helper()
	if _, err := e.d.Authenticate(e.ctx, e.ann.Address, "secret", ProtoIMAP); err != nil {
		e.t.Fatalf("Authenticate: %v", err)
	}
}

// repaired reports whether the log says a repair was made.
func (e *repairEnv) repaired() bool {
	return strings.Contains(e.log.String(), `msg="index repaired"`)
}

// TestAutoRepairHealthy checks that a whole index is left alone, and that
// a user is checked at most once per interval.
func TestAutoRepairHealthy(t *testing.T) {
	e := newRepairEnv(t, true)
	_, msgs := e.deliverSome(6)
	e.log.Reset()
	e.login()
	if logged := e.log.String(); strings.Contains(logged, "index damaged") || e.repaired() {
		t.Errorf("a healthy login repaired:\n%s", logged)
	}
	rep, err := e.d.Repair(e.ctx, e.ann.ID)
	if err != nil || rep.changed() || rep.Deferred != 0 {
		t.Errorf("Repair of a whole index = %+v, %v; want nothing done", rep, err)
	}
	if e.repaired() {
		t.Errorf("Repair of a whole index logged a repair:\n%s", e.log.String())
	}

	// Damage within the interval: the next login does not look.
	inbox := e.folder(e.ann.ID, Inbox)
	e.damage(func(b *pebble.Batch) { b.Delete(keyMessage(e.ann.ID, inbox.ID, msgs[0].UID), nil) })
	e.login()
	if e.repaired() {
		t.Errorf("a login within the interval repaired:\n%s", e.log.String())
	}
	// With a short interval it does.
	e.d.ConfigureAutoRepair(RepairConfig{Store: e.mem, Interval: time.Nanosecond})
	e.login()
	if !e.repaired() {
		t.Errorf("a login after the interval did not repair:\n%s", e.log.String())
	}
	e.wantIndex()
	checkWhole(t, e.d, e.ann.ID)

	// Off: no check, and Repair needs a store.
	e.d.ConfigureAutoRepair(RepairConfig{})
	e.damage(func(b *pebble.Batch) { b.Delete(keyMessage(e.ann.ID, inbox.ID, msgs[1].UID), nil) })
	e.log.Reset()
	e.login()
	if e.repaired() {
		t.Errorf("a login with AutoRepair off repaired:\n%s", e.log.String())
	}
	if _, err := e.d.Repair(e.ctx, e.ann.ID); !errors.Is(err, ErrInvalid) {
		t.Errorf("Repair with AutoRepair off: %v, want ErrInvalid", err)
	}
	if rep, err := e.d.RepairWith(e.ctx, e.ann.ID, RepairConfig{Store: e.mem}); err != nil || rep.Restored != 1 {
		t.Errorf("RepairWith = %+v, %v; want 1 restored", rep, err)
	}
	e.wantIndex()
	if _, err := e.d.RepairWith(e.ctx, 999, RepairConfig{Store: e.mem}); !errors.Is(err, ErrNotFound) {
		t.Errorf("RepairWith(unknown user): %v, want ErrNotFound", err)
	}
}

// TestRepairDamage damages one kind of record at a time and checks that a
// login (or, for damage the login check does not see, Repair) makes the
// index whole again.
func TestRepairDamage(t *testing.T) {
	type ids struct {
		user          UserID
		inbox, work   Folder
		parent        Folder    // Work
		msgs          []Message // 0, 1, 3, 4 in INBOX; 2, 5 in Work/Reports
		workMsgModSeq uint64
	}
	cases := []struct {
		name   string
		damage func(b *pebble.Batch, x ids)
		login  bool // the login check sees it
		check  func(t *testing.T, e *repairEnv, x ids, rep RepairReport)
	}{
		{name: "message lost", login: true, damage: func(b *pebble.Batch, x ids) {
			b.Delete(keyMessage(x.user, x.inbox.ID, x.msgs[0].UID), nil)
		}},
		{name: "message garbage", login: true, damage: func(b *pebble.Batch, x ids) {
			b.Set(keyMessage(x.user, x.inbox.ID, x.msgs[1].UID), []byte{9, 9, 9}, nil)
		}},
		{name: "message key malformed", login: true, damage: func(b *pebble.Batch, x ids) {
			b.Set(append(messagePrefix(x.user, x.inbox.ID), 1, 2), []byte{1}, nil)
		}},
		{name: "folder record lost", login: true, damage: func(b *pebble.Batch, x ids) {
			b.Delete(keyFolder(x.user, x.work.ID), nil)
		}},
		{name: "folder record garbage", login: true, damage: func(b *pebble.Batch, x ids) {
			b.Set(keyFolder(x.user, x.work.ID), []byte("garbage"), nil)
		}},
		{name: "folder name lost", login: true, damage: func(b *pebble.Batch, x ids) {
			b.Delete(keyFolderName(x.user, "Work/Reports"), nil)
		}, check: func(t *testing.T, e *repairEnv, x ids, _ RepairReport) {
			if f := e.folder(x.user, "Work/Reports"); f.UIDValidity != x.work.UIDValidity || f.ID != x.work.ID {
				t.Errorf("Work/Reports = %+v, want its record back as it was: %+v", f, x.work)
			}
		}},
		{name: "parent folder lost", login: true, damage: func(b *pebble.Batch, x ids) {
			b.Delete(keyFolderName(x.user, "Work"), nil)
			b.Delete(keyFolder(x.user, x.parent.ID), nil)
		}, check: func(t *testing.T, e *repairEnv, x ids, _ RepairReport) {
			e.folder(x.user, "Work")
		}},
		{name: "INBOX lost", login: true, damage: func(b *pebble.Batch, x ids) {
			b.Delete(keyFolderName(x.user, Inbox), nil)
			b.Delete(keyFolder(x.user, x.inbox.ID), nil)
		}, check: func(t *testing.T, e *repairEnv, x ids, _ RepairReport) {
			// Its messages tell what it was called.
			if f := e.folder(x.user, Inbox); f.ID != x.inbox.ID || f.UIDValidity <= x.inbox.UIDValidity {
				t.Errorf("INBOX = %+v, want folder %d with a new UIDVALIDITY", f, x.inbox.ID)
			}
		}},
		{name: "mailbox record lost", login: true, damage: func(b *pebble.Batch, x ids) {
			b.Delete(keyID(tagMailbox, uint64(x.user)), nil)
		}},
		{name: "mailbox usage wrong", login: true, damage: func(b *pebble.Batch, x ids) {
			mb := mailboxRecord{NextFolder: 8, LastValidity: x.work.UIDValidity, Usage: Usage{Messages: 1, Bytes: 2}}
			b.Set(keyID(tagMailbox, uint64(x.user)), encodeMailbox(&mb), nil)
		}},
		{name: "folder counters wrong", login: true, damage: func(b *pebble.Batch, x ids) {
			f := x.inbox
			f.Messages, f.Unseen, f.Size = 1, 0, 5
			b.Set(keyFolder(x.user, f.ID), encodeFolder(&f), nil)
		}},
		{name: "change-log entry lost", login: false, damage: func(b *pebble.Batch, x ids) {
			b.Delete(keyChangeUID(x.user, x.work.ID, x.workMsgModSeq, x.msgs[2].UID), nil)
		}, check: func(t *testing.T, e *repairEnv, x ids, rep RepairReport) {
			if rep.Fixed != 1 || rep.Restored != 0 {
				t.Errorf("report %+v, want one record fixed", rep)
			}
		}},
		{name: "whole index lost", login: true, damage: func(b *pebble.Batch, x ids) {
			for _, tag := range []byte{tagMailbox, tagFolder, tagFolderName, tagMessage, tagChange} {
				p := keyID(tag, uint64(x.user))
				b.DeleteRange(p, prefixEnd(p), nil)
			}
		}, check: func(t *testing.T, e *repairEnv, x ids, _ RepairReport) {
			e.folder(x.user, "Work")
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newRepairEnv(t, true)
			_, msgs := e.deliverSome(6)
			x := ids{user: e.ann.ID, inbox: e.folder(e.ann.ID, Inbox), work: e.folder(e.ann.ID, "Work/Reports"),
				parent: e.folder(e.ann.ID, "Work"), msgs: msgs}
			x.workMsgModSeq = msgs[2].ModSeq
			checkWhole(t, e.d, e.ann.ID)
			e.damage(func(b *pebble.Batch) { c.damage(b, x) })
			if damaged, err := e.d.checkIndex(e.ctx, e.ann.ID); err != nil || damaged != c.login {
				t.Fatalf("checkIndex = %v, %v; want %v", damaged, err, c.login)
			}
			e.log.Reset()
			e.login()
			if e.repaired() != c.login {
				t.Fatalf("login repaired: %v, want %v\n%s", e.repaired(), c.login, e.log.String())
			}
			rep, err := e.d.Repair(e.ctx, e.ann.ID)
			e.must(err, "Repair")
			if c.login && rep.changed() {
				t.Errorf("Repair after the login's repair = %+v, want nothing done", rep)
			}
			e.wantIndex()
			checkWhole(t, e.d, e.ann.ID)
			if c.check != nil {
				c.check(t, e, x, rep)
			}
			if again, err := e.d.Repair(e.ctx, e.ann.ID); err != nil || again.changed() {
				t.Errorf("third Repair = %+v, %v; want nothing done", again, err)
			}
		})
	}
}

// TestRepairKeepsDeletions checks that bodies the user let go of stay
// gone although others still reference them: by Expunge, by deleting
// their folder, and by expunging a copy.
func TestRepairKeepsDeletions(t *testing.T) {
	e := newRepairEnv(t, true)
	ctx, d := e.ctx, e.d
	shared := func(box string) (msstore.Ref, Message) {
		return e.deliver(box, msstore.Owner{User: e.ann.Address, Mailbox: box}, msstore.Owner{User: e.bob.Address, Mailbox: Inbox})
	}
	_, msgs := e.deliverSome(3)
	inbox := e.folder(e.ann.ID, Inbox)

	// Expunged.
	ref1, m1 := shared(Inbox)
	_, err := d.StoreFlags(ctx, e.ann.ID, inbox.ID, uidSet(m1.UID), FlagUpdate{Op: FlagsAdd, Flags: FlagDeleted})
	e.must(err, "StoreFlags")
	_, err = d.Expunge(ctx, e.ann.ID, inbox.ID, nil)
	e.must(err, "Expunge")
	e.delivered[ref1.ID] = ""

	// In a deleted folder, with an expunge there before.
	_, err = d.CreateFolder(ctx, e.ann.ID, "Projects", "")
	e.must(err, "CreateFolder")
	projects := e.folder(e.ann.ID, "Projects")
	ref2, _ := shared("Projects")
	ref3, m3 := shared("Projects")
	_, err = d.StoreFlags(ctx, e.ann.ID, projects.ID, uidSet(m3.UID), FlagUpdate{Op: FlagsAdd, Flags: FlagDeleted})
	e.must(err, "StoreFlags")
	_, err = d.Expunge(ctx, e.ann.ID, projects.ID, nil)
	e.must(err, "Expunge")
	e.must(d.DeleteFolder(ctx, e.ann.ID, "Projects"), "DeleteFolder")
	e.delivered[ref2.ID], e.delivered[ref3.ID] = "", ""
	if err := d.Changes(ctx, e.ann.ID, projects.ID, 0, func(Change) error { return nil }); !errors.Is(err, ErrNotFound) {
		t.Errorf("Changes of a deleted folder: %v, want ErrNotFound", err)
	}

	// Copied, and the copy expunged: the original stays, once.
	archive := e.folder(e.ann.ID, "Archive")
	cp, err := d.Copy(ctx, e.ann.ID, inbox.ID, uidSet(msgs[0].UID), archive.ID)
	e.must(err, "Copy")
	_, err = d.StoreFlags(ctx, e.ann.ID, archive.ID, uidSet(cp.Dest...), FlagUpdate{Op: FlagsAdd, Flags: FlagDeleted})
	e.must(err, "StoreFlags")
	_, err = d.Expunge(ctx, e.ann.ID, archive.ID, nil)
	e.must(err, "Expunge")

	for _, ref := range []msstore.Ref{ref1, ref2, ref3} {
		body, err := e.mem.Open(ctx, ref)
		e.must(err, "Open of a body Bob holds")
		body.Close()
	}
	e.wantIndex()
	checkWhole(t, d, e.ann.ID)

	// Lose one entry, so that the repair has something to do.
	e.damage(func(b *pebble.Batch) { b.Delete(keyMessage(e.ann.ID, inbox.ID, msgs[1].UID), nil) })
	rep, err := d.Repair(ctx, e.ann.ID)
	if err != nil || rep.Restored != 1 {
		t.Errorf("Repair = %+v, %v; want 1 restored", rep, err)
	}
	e.wantIndex()
	checkWhole(t, d, e.ann.ID)
	if got := e.index(e.bob.ID); len(got) != 3 {
		t.Errorf("Bob's index %v, want his 3 messages", got)
	}
}

// TestRepairMultiDelivery checks that a body delivered to two of the
// user's mailboxes comes back to the one whose entry was lost.
func TestRepairMultiDelivery(t *testing.T) {
	e := newRepairEnv(t, true)
	work := e.folder(e.ann.ID, "Work/Reports")
	ref, _ := e.deliver(Inbox, msstore.Owner{User: e.ann.Address, Mailbox: "inbox"}, msstore.Owner{User: "anna@example.test", Mailbox: "Work/Reports"})
	m, err := e.d.Append(e.ctx, e.ann.ID, work.ID, NewMessage{Ref: ref, InternalDate: repairBase, Size: ref.Size})
	e.must(err, "Append")
	e.damage(func(b *pebble.Batch) { b.Delete(keyMessage(e.ann.ID, work.ID, m.UID), nil) })
	rep, err := e.d.Repair(e.ctx, e.ann.ID)
	if err != nil || rep.Restored != 1 {
		t.Fatalf("Repair = %+v, %v; want 1 restored", rep, err)
	}
	if got := e.index(e.ann.ID)[ref.ID]; !slices.Equal(got, []string{Inbox, "Work/Reports"}) {
		t.Errorf("body in %q, want INBOX and Work/Reports", got)
	}
	checkWhole(t, e.d, e.ann.ID)

	// An unusable mailbox name falls back to INBOX; a missing one is made.
	ref2, err := e.mem.Put(e.ctx, strings.NewReader("x"), msstore.Meta{Received: repairBase,
		Owners: []msstore.Owner{{User: e.ann.Address, Mailbox: "bad/%name"}, {User: e.ann.Address, Mailbox: "New/Folder"}}})
	e.must(err, "Put")
	rep, err = e.d.Repair(e.ctx, e.ann.ID)
	if err != nil || rep.Restored != 2 {
		t.Fatalf("Repair = %+v, %v; want 2 restored", rep, err)
	}
	if got := e.index(e.ann.ID)[ref2.ID]; !slices.Equal(got, []string{Inbox, "New/Folder"}) {
		t.Errorf("body in %q, want INBOX and New/Folder", got)
	}
	e.folder(e.ann.ID, "New")
	checkWhole(t, e.d, e.ann.ID)
}

// TestRepairGrace checks that a body stored but not yet appended (a
// delivery in progress) is not restored until Grace has passed.
func TestRepairGrace(t *testing.T) {
	e := newRepairEnv(t, true)
	_, msgs := e.deliverSome(2)
	ref, err := e.mem.Put(e.ctx, strings.NewReader("in flight"), msstore.Meta{Received: time.Now(),
		Owners: []msstore.Owner{{User: e.ann.Address, Mailbox: Inbox}}})
	e.must(err, "Put")
	rep, err := e.d.Repair(e.ctx, e.ann.ID)
	if err != nil || rep.Restored != 0 || rep.Deferred != 1 {
		t.Errorf("Repair = %+v, %v; want 1 deferred", rep, err)
	}

	// At a login, the deferred entry is restored once Grace has passed.
	const grace = time.Second
	e.d.ConfigureAutoRepair(RepairConfig{Store: e.mem, Grace: grace})
	inbox := e.folder(e.ann.ID, Inbox)
	e.damage(func(b *pebble.Batch) { b.Delete(keyMessage(e.ann.ID, inbox.ID, msgs[0].UID), nil) })
	first := time.Now()
	e.login()
	if got := e.index(e.ann.ID); len(got[msgs[0].Ref.ID]) != 1 || len(got[ref.ID]) != 0 {
		t.Fatalf("after the first login: %v; want the lost entry back, the young body not yet", got)
	}
	time.Sleep(time.Until(first.Add(grace + 50*time.Millisecond)))
	e.login()
	if got := e.index(e.ann.ID)[ref.ID]; !slices.Equal(got, []string{Inbox}) {
		t.Errorf("after Grace: young body in %q, want INBOX", got)
	}
	checkWhole(t, e.d, e.ann.ID)

	// A negative Grace means none, through Repair's defaults too.
	ref2, err := e.mem.Put(e.ctx, strings.NewReader("in flight too"), msstore.Meta{Received: time.Now(),
		Owners: []msstore.Owner{{User: e.ann.Address, Mailbox: Inbox}}})
	e.must(err, "Put")
	e.d.ConfigureAutoRepair(RepairConfig{Store: e.mem, Grace: -1})
	if rep, err := e.d.Repair(e.ctx, e.ann.ID); err != nil || rep.Restored != 1 || rep.Deferred != 0 {
		t.Errorf("Repair without grace = %+v, %v; want 1 restored", rep, err)
	}
	if got := e.index(e.ann.ID)[ref2.ID]; !slices.Equal(got, []string{Inbox}) {
		t.Errorf("without grace: young body in %q, want INBOX", got)
	}
}

// failingSource is a RepairSource whose walk fails.
type failingSource struct{}

func (failingSource) Walk(ctx context.Context, fn func(msstore.Ref, msstore.Meta) error) error {
	return errors.New("store unreachable")
}

// TestRepairWalkFails checks that a repair whose walk fails changes
// nothing, and that the login still succeeds.
func TestRepairWalkFails(t *testing.T) {
	e := newRepairEnv(t, true)
	_, msgs := e.deliverSome(2)
	inbox := e.folder(e.ann.ID, Inbox)
	e.damage(func(b *pebble.Batch) { b.Delete(keyMessage(e.ann.ID, inbox.ID, msgs[0].UID), nil) })
	e.d.EnableAutoRepair(failingSource{})
	if _, err := e.d.Repair(e.ctx, e.ann.ID); err == nil || !strings.Contains(err.Error(), "store unreachable") {
		t.Errorf("Repair: %v, want the walk's error", err)
	}
	e.login()
	if !strings.Contains(e.log.String(), `msg="index repair failed"`) {
		t.Errorf("failed repair not logged:\n%s", e.log.String())
	}
	if damaged, err := e.d.checkIndex(e.ctx, e.ann.ID); err != nil || !damaged {
		t.Errorf("checkIndex = %v, %v; want the damage still there", damaged, err)
	}
	// The next login tries again.
	e.d.EnableAutoRepair(e.mem)
	e.login()
	e.wantIndex()
	checkWhole(t, e.d, e.ann.ID)
}

// TestRepairConcurrent runs repairs while messages are delivered, flagged
// and expunged: no delivery in progress is restored twice, and the index
// stays whole.
func TestRepairConcurrent(t *testing.T) {
	e := newRepairEnv(t, true)
	ctx, d := e.ctx, e.d
	inbox := e.folder(e.ann.ID, Inbox)
	var mu sync.Mutex // guards e.delivered
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 15 {
				ref, err := e.mem.Put(ctx, strings.NewReader(fmt.Sprintf("w%d m%d", w, i)), msstore.Meta{Received: time.Now(),
					Owners: []msstore.Owner{{User: e.ann.Address, Mailbox: Inbox}}})
				if err != nil {
					t.Error(err)
					return
				}
				m, err := d.Append(ctx, e.ann.ID, inbox.ID, NewMessage{Ref: ref, InternalDate: time.Now(), Size: ref.Size})
				if err != nil {
					t.Error(err)
					return
				}
				box := Inbox
				if i%5 == 4 {
					box = ""
					if _, err := d.StoreFlags(ctx, e.ann.ID, inbox.ID, uidSet(m.UID), FlagUpdate{Op: FlagsAdd, Flags: FlagDeleted}); err != nil {
						t.Error(err)
					}
					if _, err := d.Expunge(ctx, e.ann.ID, inbox.ID, uidSet(m.UID)); err != nil {
						t.Error(err)
					}
				}
				mu.Lock()
				e.delivered[ref.ID] = box
				mu.Unlock()
			}
		})
	}
	wg.Go(func() {
		for range 20 {
			if _, err := d.Repair(ctx, e.ann.ID); err != nil {
				t.Error(err)
			}
		}
	})
	wg.Wait()
	for id, box := range e.delivered {
		if box == "" {
			delete(e.delivered, id) // released: gone from the store too
		}
	}
	e.wantIndex()
	checkWhole(t, d, e.ann.ID)
}

// TestChangeLogFormats checks that tombstones written before they named
// bodies still read, and that an expunge's names its body.
func TestChangeLogFormats(t *testing.T) {
	e := newRepairEnv(t, true)
	ref, m := e.deliver(Inbox, msstore.Owner{User: e.ann.Address, Mailbox: Inbox})
	inbox := e.folder(e.ann.ID, Inbox)
	_, err := e.d.StoreFlags(e.ctx, e.ann.ID, inbox.ID, uidSet(m.UID), FlagUpdate{Op: FlagsAdd, Flags: FlagDeleted})
	e.must(err, "StoreFlags")
	_, err = e.d.Expunge(e.ctx, e.ann.ID, inbox.ID, nil)
	e.must(err, "Expunge")
	key := keyChangeUID(e.ann.ID, inbox.ID, m.ModSeq+2, m.UID)
	v, err := e.d.get(key)
	e.must(err, "get tombstone")
	if c, ok := parseChange(v); !ok || !c.expunged || !c.named || c.body != bodyOf(ref) || c.uid != m.UID {
		t.Errorf("tombstone %x = %+v, %v; want message %d's, naming body %v", v, c, ok, m.UID, bodyOf(ref))
	}
	e.damage(func(b *pebble.Batch) { b.Set(key, v[:changeLen], nil) })
	var got []Change
	e.must(e.d.Changes(e.ctx, e.ann.ID, inbox.ID, 0, func(c Change) error {
		got = append(got, c)
		return nil
	}), "Changes")
	if want := []Change{{UID: m.UID, ModSeq: m.ModSeq + 2, Expunged: true}}; !slices.Equal(got, want) {
		t.Errorf("Changes = %+v, want %+v", got, want)
	}
	for _, bad := range [][]byte{v[:4], append(v[:changeLen:changeLen], 1), {0, 0, 0, 1, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}} {
		if c, ok := parseChange(bad); ok {
			t.Errorf("parseChange(%x) = %+v, want malformed", bad, c)
		}
	}
}
