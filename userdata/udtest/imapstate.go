package udtest

import (
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/mailsys/mailsys/userdata"
)

// testKeywords checks userdata.KeywordLister and FolderEvent.Keywords: a
// folder's keywords grow with Append, StoreFlags, Copy and Move, in order
// of first use, without regard to case, and only grow.
func testKeywords(t *testing.T, e *env) {
	kl, ok := e.db.(userdata.KeywordLister)
	if !ok {
		t.Skip("the database does not implement userdata.KeywordLister")
	}
	ctx, db := e.ctx, e.db
	u := e.simpleUser("ann@example.test")
	inbox := e.folder(u.ID, userdata.Inbox)
	work := e.createFolder(u.ID, "Work")
	want := func(f userdata.Folder, kws []string, what string) {
		t.Helper()
		got, err := kl.Keywords(ctx, u.ID, f.ID)
		must(t, err, "Keywords(%s) %s", f.Name, what)
		if !slices.Equal(got, kws) {
			t.Errorf("%s: Keywords(%s) = %q, want %q", what, f.Name, got, kws)
		}
	}
	var events []userdata.FolderEvent
	var mu sync.Mutex
	if w, ok := db.(userdata.Watcher); ok {
		stop := w.Watch(u.ID, inbox.ID, func(ev userdata.FolderEvent) {
			mu.Lock()
			events = append(events, ev)
			mu.Unlock()
		})
		defer stop()
	}
	lastEvent := func() []string {
		mu.Lock()
		defer mu.Unlock()
		if len(events) == 0 {
			return []string{"(no event)"}
		}
		return events[len(events)-1].Keywords
	}
	_, watching := db.(userdata.Watcher)

	want(inbox, nil, "in a new folder")
	m := e.add(u.ID, inbox.ID, e.newMsg(u, "INBOX", 10, 0, "$Forwarded", "Junk"))
	want(inbox, []string{"$Forwarded", "Junk"}, "after Append")
	if watching && !slices.Equal(lastEvent(), []string{"$Forwarded", "Junk"}) {
		t.Errorf("Append's event has Keywords %q, want the folder's new list", lastEvent())
	}
	e.add(u.ID, inbox.ID, e.newMsg(u, "INBOX", 10, 0, "junk"))
	if watching && lastEvent() != nil {
		t.Errorf("an Append adding no keyword has event Keywords %q, want nil", lastEvent())
	}
	one := userdata.UIDSet{{Start: m.UID, Stop: m.UID}}
	_, err := db.StoreFlags(ctx, u.ID, inbox.ID, one, userdata.FlagUpdate{Op: userdata.FlagsAdd, Keywords: []string{"$label1", "JUNK"}})
	must(t, err, "StoreFlags(+$label1)")
	want(inbox, []string{"$Forwarded", "Junk", "$label1"}, "after StoreFlags")
	if watching && !slices.Equal(lastEvent(), []string{"$Forwarded", "Junk", "$label1"}) {
		t.Errorf("StoreFlags' event has Keywords %q, want the folder's new list", lastEvent())
	}
	_, err = db.StoreFlags(ctx, u.ID, inbox.ID, nil, userdata.FlagUpdate{Op: userdata.FlagsSet})
	must(t, err, "StoreFlags(FLAGS ())")
	want(inbox, []string{"$Forwarded", "Junk", "$label1"}, "after every keyword was taken off (the list only grows)")
	_, err = db.StoreFlags(ctx, u.ID, inbox.ID, one, userdata.FlagUpdate{Op: userdata.FlagsSet, Keywords: []string{"$MDNSent"}})
	must(t, err, "StoreFlags(FLAGS ($MDNSent))")
	_, err = db.Copy(ctx, u.ID, inbox.ID, one, work.ID)
	must(t, err, "Copy")
	want(work, []string{"$MDNSent"}, "after Copy")
	_, err = db.Move(ctx, u.ID, work.ID, nil, inbox.ID)
	must(t, err, "Move")
	want(inbox, []string{"$Forwarded", "Junk", "$label1", "$MDNSent"}, "after Move back")

	// The limit: a change adding one too many fails and changes nothing.
	var many []string
	for i := len([]string{"$Forwarded", "Junk", "$label1", "$MDNSent"}); i < userdata.MaxFolderKeywords; i++ {
		many = append(many, "k"+strings.Repeat("x", i%50)+string(rune('a'+i%26))+strings.Repeat("y", i/26))
	}
	for len(many) > 0 {
		n := min(len(many), 60)
		_, err = db.StoreFlags(ctx, u.ID, inbox.ID, one, userdata.FlagUpdate{Op: userdata.FlagsSet, Keywords: many[:n]})
		must(t, err, "StoreFlags of %d more keywords", n)
		many = many[n:]
	}
	before := e.folder(u.ID, userdata.Inbox)
	_, err = db.StoreFlags(ctx, u.ID, inbox.ID, one, userdata.FlagUpdate{Op: userdata.FlagsAdd, Keywords: []string{"OneTooMany"}})
	wantErr(t, err, userdata.ErrInvalid, "StoreFlags past MaxFolderKeywords")
	_, err = db.Append(ctx, u.ID, inbox.ID, e.newMsg(u, "INBOX", 10, 0, "OneTooMany"))
	wantErr(t, err, userdata.ErrInvalid, "Append past MaxFolderKeywords")
	if f := e.folder(u.ID, userdata.Inbox); f != before {
		t.Errorf("refused changes changed INBOX from %+v to %+v", before, f)
	}
	got, err := kl.Keywords(ctx, u.ID, inbox.ID)
	must(t, err, "Keywords at the limit")
	if len(got) != userdata.MaxFolderKeywords {
		t.Errorf("at the limit: %d keywords, want %d", len(got), userdata.MaxFolderKeywords)
	}
	_, err = kl.Keywords(ctx, u.ID, unknownFolder)
	wantErr(t, err, userdata.ErrNotFound, "Keywords of an unknown folder")
}

// testRecent checks userdata.RecentClaimer: each message is claimed once.
func testRecent(t *testing.T, e *env) {
	rc, ok := e.db.(userdata.RecentClaimer)
	if !ok {
		t.Skip("the database does not implement userdata.RecentClaimer")
	}
	ctx := e.ctx
	u := e.simpleUser("ann@example.test")
	inbox := e.folder(u.ID, userdata.Inbox)
	if inbox.RecentUID != 1 {
		t.Errorf("a new folder's RecentUID = %d, want 1", inbox.RecentUID)
	}
	var ms []userdata.Message
	for range 3 {
		ms = append(ms, e.add(u.ID, inbox.ID, e.newMsg(u, "INBOX", 10, 0)))
	}
	from, to, err := rc.ClaimRecent(ctx, u.ID, inbox.ID, 0)
	must(t, err, "ClaimRecent")
	if from != 1 || to != ms[2].UID+1 {
		t.Errorf("ClaimRecent = [%d, %d), want [1, %d)", from, to, ms[2].UID+1)
	}
	if f := e.folder(u.ID, userdata.Inbox); f.RecentUID != to {
		t.Errorf("after ClaimRecent: RecentUID %d, want %d", f.RecentUID, to)
	}
	if from, to2, err := rc.ClaimRecent(ctx, u.ID, inbox.ID, 0); err != nil || from != to || to2 != to {
		t.Errorf("a second ClaimRecent = [%d, %d), %v; want the empty [%d, %d)", from, to2, err, to, to)
	}
	m4 := e.add(u.ID, inbox.ID, e.newMsg(u, "INBOX", 10, 0))
	m5 := e.add(u.ID, inbox.ID, e.newMsg(u, "INBOX", 10, 0))
	if from, to2, err := rc.ClaimRecent(ctx, u.ID, inbox.ID, m5.UID); err != nil || from != m4.UID || to2 != m5.UID {
		t.Errorf("ClaimRecent(upto %d) = [%d, %d), %v; want [%d, %d)", m5.UID, from, to2, err, m4.UID, m5.UID)
	}
	if from, to2, err := rc.ClaimRecent(ctx, u.ID, inbox.ID, m4.UID); err != nil || from != to2 {
		t.Errorf("ClaimRecent below the watermark = [%d, %d), %v; want an empty range", from, to2, err)
	}
	if from, to2, err := rc.ClaimRecent(ctx, u.ID, inbox.ID, m5.UID+100); err != nil || from != m5.UID || to2 != m5.UID+1 {
		t.Errorf("ClaimRecent past UIDNext = [%d, %d), %v; want [%d, %d)", from, to2, err, m5.UID, m5.UID+1)
	}

	// Concurrent claims never share a UID.
	for range 20 {
		e.add(u.ID, inbox.ID, e.newMsg(u, "INBOX", 10, 0))
	}
	var mu sync.Mutex
	claimed := map[userdata.UID]int{}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			from, to, err := rc.ClaimRecent(ctx, u.ID, inbox.ID, 0)
			if err != nil {
				t.Errorf("concurrent ClaimRecent: %v", err)
				return
			}
			mu.Lock()
			for uid := from; uid < to; uid++ {
				claimed[uid]++
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	for uid, n := range claimed {
		if n != 1 {
			t.Errorf("UID %d claimed %d times", uid, n)
		}
	}
	if len(claimed) != 20 {
		t.Errorf("concurrent claims took %d UIDs, want the 20 new ones", len(claimed))
	}
	_, _, err = rc.ClaimRecent(ctx, u.ID, unknownFolder, 0)
	wantErr(t, err, userdata.ErrNotFound, "ClaimRecent in an unknown folder")
}

// testHold checks FolderEvent.Hold: the bodies an expunge drops stay
// readable until every watcher that held them is done.
func testHold(t *testing.T, e *env) {
	w, ok := e.db.(userdata.Watcher)
	if !ok {
		t.Skip("the database does not implement userdata.Watcher")
	}
	ctx, db := e.ctx, e.db
	u := e.simpleUser("ann@example.test")
	inbox := e.folder(u.ID, userdata.Inbox)
	m := e.add(u.ID, inbox.ID, e.newMsg(u, "INBOX", 10, userdata.FlagDeleted))
	var mu sync.Mutex
	var dones []func()
	holds := 0
	stop := w.Watch(u.ID, inbox.ID, func(ev userdata.FolderEvent) {
		if len(ev.Removed) == 0 {
			return
		}
		holds++
		if ev.Hold == nil {
			return
		}
		mu.Lock()
		dones = append(dones, ev.Hold(), ev.Hold())
		mu.Unlock()
	})
	defer stop()
	_, err := db.Expunge(ctx, u.ID, inbox.ID, nil)
	must(t, err, "Expunge")
	if holds != 1 {
		t.Fatalf("the expunge reached the watcher %d times, want once", holds)
	}
	if len(dones) == 0 {
		t.Skip("the database offers no Hold")
	}
	e.bodyLive(m.Ref, true, "after the expunge, held twice")
	dones[0]()
	dones[0]() // done twice is done once
	e.bodyLive(m.Ref, true, "after the expunge, one hold done")
	dones[1]()
	e.bodyLive(m.Ref, false, "after both holds are done")
}
