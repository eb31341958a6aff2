package pop3_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/mailsys/mailsys/pop3"
	"github.com/mailsys/mailsys/userdata"
)

// TestConcurrentIMAP: while a POP3 session runs, IMAP-style changes go on
// in the same INBOX through the UserDB (appends, flags, expunges). The
// session keeps its snapshot, RETR of a message expunged meanwhile says
// -ERR, a second POP3 login gets [IN-USE], and QUIT deletes exactly what
// the session DELE'd: not the message IMAP flagged \Deleted.
func TestConcurrentIMAP(t *testing.T) {
	e := newEnv(t, pop3.Config{})
	ctx := context.Background()
	const n = 20
	var uids []userdata.UID
	for i := range n {
		uids = append(uids, e.deliver(fmt.Appendf(nil, "Subject: %d\r\n\r\nmessage %d\r\n", i+1, i+1)).UID)
	}
	one := func(i int) userdata.UIDSet { return userdata.UIDSet{{Start: uids[i-1], Stop: uids[i-1]}} }

	c := dial(t, e.addr)
	c.login()
	other := dial(t, e.addr)
	other.ok("USER " + testUser)
	if r := other.cmd("PASS " + testPass); !strings.HasPrefix(r, "-ERR [IN-USE]") {
		t.Errorf("second POP3 login: %q", r)
	}

	// IMAP expunges messages 3 and 7, then goes on appending and flagging
	// (5 gets \Deleted without an expunge) while POP3 reads.
	for _, i := range []int{3, 7} {
		if _, err := e.db.StoreFlags(ctx, e.user.ID, e.inbox.ID, one(i), userdata.FlagUpdate{Op: userdata.FlagsAdd, Flags: userdata.FlagDeleted}); err != nil {
			t.Fatal(err)
		}
		if _, err := e.db.Expunge(ctx, e.user.ID, e.inbox.ID, one(i)); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	var added []userdata.UID
	wg.Go(func() {
		for i := range 30 {
			added = append(added, deliver(t, e.store, e.db, e.user, fmt.Appendf(nil, "Subject: new %d\r\n\r\nnew\r\n", i)).UID)
			fl := userdata.FlagUpdate{Op: userdata.FlagsAdd, Flags: userdata.FlagSeen}
			if _, err := e.db.StoreFlags(ctx, e.user.ID, e.inbox.ID, nil, fl); err != nil {
				t.Error(err)
			}
			if i == 10 {
				fl.Flags = userdata.FlagDeleted
				if _, err := e.db.StoreFlags(ctx, e.user.ID, e.inbox.ID, one(5), fl); err != nil {
					t.Error(err)
				}
			}
		}
	})
	for round := range 3 {
		if r := c.ok("STAT"); !strings.HasPrefix(r, fmt.Sprintf("+OK %d ", n)) {
			t.Errorf("round %d: STAT = %q, want the snapshot's %d", round, r, n)
		}
		for i := 1; i <= n; i++ {
			r := c.cmd(fmt.Sprintf("RETR %d", i))
			if i == 3 || i == 7 {
				if !strings.HasPrefix(r, "-ERR") {
					t.Errorf("RETR of expunged message %d: %q", i, r)
					c.multi()
				}
				continue
			}
			if !strings.HasPrefix(r, "+OK") {
				t.Fatalf("RETR %d: %q", i, r)
			}
			if got := c.multi(); len(got) != 3 || got[2] != fmt.Sprintf("message %d", i) {
				t.Errorf("RETR %d = %q", i, got)
			}
		}
		c.ok("UIDL")
		if l := c.multi(); len(l) != n {
			t.Errorf("UIDL lists %d messages, want %d", len(l), n)
		}
	}
	dele := []int{1, 2, 7, 10, 11, 12, 20}
	for _, i := range dele {
		c.ok(fmt.Sprintf("DELE %d", i))
	}
	wg.Wait()
	c.ok("QUIT")
	c.closed()

	var want []userdata.UID
	for i, u := range uids {
		if !slices.Contains(dele, i+1) && i+1 != 3 && i+1 != 7 {
			want = append(want, u)
		}
	}
	want = append(want, added...)
	if got := e.uids(); !slices.Equal(got, want) {
		t.Errorf("INBOX after QUIT:\n%v\nwant\n%v", got, want)
	}
	// The maildrop is free again, and sees the new mail.
	c = dial(t, e.addr)
	c.login()
	if r := c.ok("STAT"); !strings.HasPrefix(r, fmt.Sprintf("+OK %d ", len(want))) {
		t.Errorf("STAT of the next session = %q, want %d messages", r, len(want))
	}
}
