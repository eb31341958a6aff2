package udtest

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/mailsys/mailsys/msstore"
	"github.com/mailsys/mailsys/userdata"
)

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

// testConcurrentAppends appends to several folders of one user at once,
// one of them deleted just before, as deliveries to a busy mailbox do: each
// append has its own outcome, and each folder gets gapless UIDs and right
// counts.
func testConcurrentAppends(t *testing.T, e *env) {
	u := e.simpleUser("busy@example.test")
	names := []string{userdata.Inbox, "Lists", "Lists/go", "Gone"}
	var folders []userdata.Folder
	for _, n := range names {
		if n == userdata.Inbox {
			folders = append(folders, e.folder(u.ID, n))
		} else {
			folders = append(folders, e.createFolder(u.ID, n))
		}
	}
	if err := e.db.DeleteFolder(e.ctx, u.ID, "Gone"); err != nil {
		t.Fatalf("DeleteFolder: %v", err)
	}
	const each = 40
	var wg sync.WaitGroup
	var mu sync.Mutex
	got := map[userdata.FolderID][]userdata.UID{}
	start := make(chan struct{})
	for i := range each * len(folders) {
		f := folders[i%len(folders)]
		nm := e.newMsg(u, f.Name, 100+i, 0)
		wg.Go(func() {
			<-start
			m, err := e.db.Append(e.ctx, u.ID, f.ID, nm)
			if f.Name == "Gone" {
				if !errors.Is(err, userdata.ErrNotFound) {
					t.Errorf("Append to a deleted folder: %v, want ErrNotFound", err)
				}
				return
			}
			if err != nil {
				t.Errorf("Append to %s: %v", f.Name, err)
				return
			}
			mu.Lock()
			got[f.ID] = append(got[f.ID], m.UID)
			mu.Unlock()
		})
	}
	close(start)
	wg.Wait()
	for _, f := range folders[:3] {
		uids := got[f.ID]
		slices.Sort(uids)
		for i, uid := range uids {
			if uid != userdata.UID(i+1) {
				t.Fatalf("%s: UIDs %v, want 1 to %d without gaps", f.Name, uids, each)
			}
		}
		if len(uids) != each {
			t.Errorf("%s: %d appends succeeded, want %d", f.Name, len(uids), each)
		}
		if st := e.checkCounts(u.ID, f.ID); st.Messages != each || st.UIDNext != each+1 {
			t.Errorf("%s: %d messages, UIDNEXT %d; want %d and %d", f.Name, st.Messages, st.UIDNext, each, each+1)
		}
	}
	if use := e.usage(u.ID); use.Messages != 3*each {
		t.Errorf("usage: %d messages, want %d", use.Messages, 3*each)
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

// snapshot returns the events so far and keeps them for take.
func (r *recorder) snapshot() []userdata.FolderEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
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
	// A flag change carries the messages' new flags, and the origin the
	// caller gave its context.
	if _, err := db.StoreFlags(userdata.WithOrigin(ctx, "session 7"), u.ID, inbox.ID, one(m1.UID),
		userdata.FlagUpdate{Op: userdata.FlagsAdd, Flags: userdata.FlagSeen, Keywords: []string{"$Label1"}}); err != nil {
		t.Fatalf("StoreFlags: %v", err)
	}
	if evs := inboxRec.snapshot(); len(evs) == 1 {
		ev := evs[0]
		if len(ev.Changed) != 1 || ev.Changed[0].UID != m1.UID || ev.Changed[0].Flags != userdata.FlagSeen || !slices.Equal(ev.Changed[0].Keywords, []string{"$Label1"}) {
			t.Errorf("store flags: event's Changed %+v, want UID %d with \\Seen and $Label1", ev.Changed, m1.UID)
		}
		if ev.Origin != "session 7" {
			t.Errorf("store flags: event's Origin %v, want the context's", ev.Origin)
		}
	}
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
		{"Subscriptions", func() error {
			return db.Subscriptions(ctx, u.ID, func(string) error { return nil })
		}},
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
