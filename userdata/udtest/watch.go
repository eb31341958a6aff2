package udtest

import (
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/mailsys/mailsys/userdata"
)

// testWatchMany checks that several watchers of one folder each get every
// field of every event (Added, Removed, Flags, Changed with the new flags,
// ModSeq, Origin, Keywords), and that the slices each gets are its own
// (but Changed, which they share read-only): a watcher that scribbles on
// its slices changes nothing for the others.
func testWatchMany(t *testing.T, e *env) {
	w, ok := e.db.(userdata.Watcher)
	if !ok {
		t.Skip("the database does not implement userdata.Watcher")
	}
	ctx, db := e.ctx, e.db
	u := e.simpleUser("ann@example.test")
	inbox := e.folder(u.ID, userdata.Inbox)

	const watchers = 3
	var mu sync.Mutex
	got := make([][]userdata.FolderEvent, watchers)
	for i := range watchers {
		stop := w.Watch(u.ID, inbox.ID, func(ev userdata.FolderEvent) {
			c := ev
			c.Added, c.Removed, c.Flags = slices.Clone(ev.Added), slices.Clone(ev.Removed), slices.Clone(ev.Flags)
			c.Keywords = slices.Clone(ev.Keywords)
			c.Changed = nil
			for _, m := range ev.Changed {
				c.Changed = append(c.Changed, copyMessage(&m))
			}
			c.Hold = nil
			mu.Lock()
			got[i] = append(got[i], c)
			mu.Unlock()
			// The slices are this watcher's own: scribble on them.
			for _, s := range [][]userdata.UID{ev.Added, ev.Removed, ev.Flags} {
				for k := range s {
					s[k] = 0
				}
			}
			for k := range ev.Keywords {
				ev.Keywords[k] = "scribbled"
			}
		})
		defer stop()
	}
	take := func(what string) []userdata.FolderEvent {
		t.Helper()
		mu.Lock()
		defer mu.Unlock()
		evs := got[0]
		for i := range got {
			if len(got[i]) != 1 {
				t.Errorf("%s: watcher %d got %d events, want 1", what, i, len(got[i]))
				evs = nil
			}
		}
		if evs == nil {
			clear(got)
			return nil
		}
		for i := 1; i < watchers; i++ {
			if a, b := describe(got[0][0]), describe(got[i][0]); a != b {
				t.Errorf("%s: watchers got different events:\n  watcher 0: %s\n  watcher %d: %s", what, a, i, b)
			}
		}
		clear(got)
		return evs
	}

	// An append adding keywords: Added, ModSeq, Keywords.
	m1 := e.add(u.ID, inbox.ID, e.newMsg(u, "INBOX", 10, 0, "$Label1"))
	if evs := take("append"); evs != nil {
		ev := evs[0]
		if !sameUIDs(ev.Added, []userdata.UID{m1.UID}) || ev.ModSeq != m1.ModSeq || !slices.Equal(ev.Keywords, []string{"$Label1"}) {
			t.Errorf("append: event %s, want Added [%d], ModSeq %d, Keywords [$Label1]", describe(ev), m1.UID, m1.ModSeq)
		}
	}
	m2 := e.add(u.ID, inbox.ID, e.newMsg(u, "INBOX", 10, 0))
	take("second append")

	// A flag change with an origin, adding a keyword: Flags, Changed with
	// the new flags, ModSeq, Origin, Keywords.
	both := userdata.UIDSet{{Start: m1.UID, Stop: m2.UID}}
	res, err := db.StoreFlags(userdata.WithOrigin(ctx, "session 1"), u.ID, inbox.ID, both,
		userdata.FlagUpdate{Op: userdata.FlagsAdd, Flags: userdata.FlagSeen | userdata.FlagDeleted, Keywords: []string{"$Label2"}})
	must(t, err, "StoreFlags")
	if evs := take("store flags"); evs != nil {
		ev := evs[0]
		ok := sameUIDs(ev.Flags, []userdata.UID{m1.UID, m2.UID}) && len(ev.Changed) == 2 && ev.Origin == "session 1" &&
			slices.Equal(ev.Keywords, []string{"$Label1", "$Label2"}) && len(res.Changed) == 2 && ev.ModSeq == res.Changed[0].ModSeq
		for k := 0; ok && k < 2; k++ {
			c := ev.Changed[k]
			ok = c.UID == ev.Flags[k] && c.Flags == userdata.FlagSeen|userdata.FlagDeleted && c.ModSeq == ev.ModSeq && slices.Contains(c.Keywords, "$Label2")
		}
		if !ok {
			t.Errorf("store flags: event %s; want Flags [%d %d], both Changed with \\Seen \\Deleted and $Label2 at the event's ModSeq, Origin \"session 1\", Keywords [$Label1 $Label2]",
				describe(ev), m1.UID, m2.UID)
		}
	}

	// An expunge with an origin: Removed, ModSeq, Origin.
	x, err := db.Expunge(userdata.WithOrigin(ctx, "session 2"), u.ID, inbox.ID, nil)
	must(t, err, "Expunge")
	if evs := take("expunge"); evs != nil {
		ev := evs[0]
		f := e.folder(u.ID, userdata.Inbox)
		if !sameUIDs(ev.Removed, x) || len(x) != 2 || ev.Origin != "session 2" || ev.ModSeq != f.HighestModSeq || ev.Keywords != nil {
			t.Errorf("expunge: event %s, want Removed %v, Origin \"session 2\", ModSeq %d, no Keywords", describe(ev), x, f.HighestModSeq)
		}
	}
}

// describe prints the fields of an event that watchers must all get.
func describe(ev userdata.FolderEvent) string {
	s := fmt.Sprintf("{User %d Folder %d Added %v Removed %v Flags %v ModSeq %d Origin %v Keywords %q Changed [",
		ev.User, ev.Folder, ev.Added, ev.Removed, ev.Flags, ev.ModSeq, ev.Origin, ev.Keywords)
	for _, m := range ev.Changed {
		s += fmt.Sprintf(" {UID %d ModSeq %d Flags %#x Keywords %q}", m.UID, m.ModSeq, m.Flags, m.Keywords)
	}
	return s + " ]}"
}
