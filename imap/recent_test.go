package imap_test

import (
	"strings"
	"testing"
)

// TestRecent: \Recent (RFC 3501 2.3.2) is kept, per session: the first
// session to select a folder has its new messages recent, later ones do
// not; EXAMINE sees them without claiming them; messages that come while
// a folder is selected are recent in one session; SEARCH RECENT, NEW and
// OLD, STATUS RECENT and SELECT's UNSEEN follow.
func TestRecent(t *testing.T) {
	e := newEnv(t)
	e.deliver("one")
	e.deliver("two")

	watcher := e.raw()
	if u := watcher.ok(`STATUS INBOX (RECENT UNSEEN)`); len(find(u, `^\* STATUS INBOX \((RECENT 2 UNSEEN 2|UNSEEN 2 RECENT 2)\)$`)) != 1 {
		t.Errorf("STATUS before any SELECT: %q, want RECENT 2", u)
	}
	ex := e.raw()
	u := ex.ok("EXAMINE INBOX")
	if len(find(u, `^\* 2 RECENT$`)) != 1 {
		t.Errorf("EXAMINE: %q, want * 2 RECENT", u)
	}

	a := e.raw()
	u = a.ok("SELECT INBOX")
	if len(find(u, `^\* 2 RECENT$`)) != 1 || len(find(u, `^\* OK \[UNSEEN 1\]`)) != 1 {
		t.Errorf("first SELECT: %q, want * 2 RECENT and OK [UNSEEN 1] (EXAMINE claims nothing)", u)
	}
	if u := a.ok("FETCH 1:* FLAGS"); len(find(u, `FLAGS \(\\Recent\)`)) != 2 {
		t.Errorf("FETCH FLAGS in the first session: %q, want \\Recent on both", u)
	}
	a.ok(`STORE 1 +FLAGS.SILENT (\Seen)`)
	for _, c := range []struct{ search, want string }{
		{"RECENT", "* SEARCH 1 2"},
		{"NEW", "* SEARCH 2"},
		{"OLD", "* SEARCH"},
		{"NOT RECENT", "* SEARCH"},
	} {
		if u := a.ok("SEARCH %s", c.search); len(u) != 1 || strings.TrimSpace(u[0]) != c.want {
			t.Errorf("SEARCH %s: %q, want %q", c.search, u, c.want)
		}
	}
	if u := a.ok("SELECT INBOX"); len(find(u, `^\* OK \[UNSEEN 2\]`)) != 1 {
		t.Errorf("SELECT again: %q, want OK [UNSEEN 2]", u)
	}

	b := e.raw()
	u = b.ok("SELECT INBOX")
	if len(find(u, `^\* 0 RECENT$`)) != 1 {
		t.Errorf("second SELECT: %q, want * 0 RECENT", u)
	}
	if u := b.ok("SEARCH RECENT"); len(u) != 1 || strings.TrimSpace(u[0]) != "* SEARCH" {
		t.Errorf("SEARCH RECENT in the second session: %q, want none", u)
	}
	if u := watcher.ok(`STATUS INBOX (RECENT)`); len(find(u, `\(RECENT 0\)`)) != 1 {
		t.Errorf("STATUS after a SELECT: %q, want RECENT 0", u)
	}

	// A message that comes now is recent in one of the two sessions.
	e.deliver("three")
	ua, ub := a.ok("NOOP"), b.ok("NOOP")
	ia, ib := index(ua, `^\* 3 EXISTS$`), index(ub, `^\* 3 EXISTS$`)
	if ia < 0 || ib < 0 {
		t.Fatalf("NOOP after a delivery: %q and %q, want * 3 EXISTS in both", ua, ub)
	}
	// a selected first, and is still there: the message is recent in a.
	if ra, rb := find(ua, `^\* \d+ RECENT$`), find(ub, `^\* \d+ RECENT$`); len(ra) != 1 || ra[0] != "* 1 RECENT" || len(rb) != 1 || rb[0] != "* 0 RECENT" {
		t.Errorf("RECENT after the delivery: %q in a and %q in b, want * 1 RECENT and * 0 RECENT", ra, rb)
	}
	if u := a.ok("FETCH 3 FLAGS"); len(find(u, `\\Recent`)) != 1 {
		t.Errorf("FETCH 3 FLAGS in a: %q, want \\Recent", u)
	}
	if u := b.ok("FETCH 3 FLAGS"); len(find(u, `\\Recent`)) != 0 {
		t.Errorf("FETCH 3 FLAGS in b: %q, want no \\Recent", u)
	}
	a.ok("LOGOUT")
	b.ok("LOGOUT")
	if u := e.raw().ok("SELECT INBOX"); len(find(u, `^\* 0 RECENT$`)) != 1 {
		t.Errorf("SELECT after the others left: %q, want * 0 RECENT", u)
	}

	// APPEND and COPY make messages recent in their folder.
	c := e.raw()
	c.ok("CREATE Work")
	c.ok("SELECT INBOX")
	c.ok("COPY 1:2 Work")
	if u := c.ok(`STATUS Work (RECENT MESSAGES)`); len(find(u, `\(RECENT 2 MESSAGES 2\)|\(MESSAGES 2 RECENT 2\)`)) != 1 {
		t.Errorf("STATUS after COPY: %q, want RECENT 2", u)
	}
	if u := c.ok("SELECT Work"); len(find(u, `^\* 2 RECENT$`)) != 1 {
		t.Errorf("SELECT after COPY: %q, want * 2 RECENT", u)
	}
}

// TestRecentIMAP4rev2: IMAP4rev2 has no \Recent: none in FLAGS, no RECENT
// response.
func TestRecentIMAP4rev2(t *testing.T) {
	e := newEnv(t)
	e.deliver("one")
	c := e.raw()
	c.ok("ENABLE IMAP4rev2")
	u := c.ok("SELECT INBOX")
	if len(find(u, `RECENT|UNSEEN`)) != 0 {
		t.Errorf("SELECT under IMAP4rev2: %q, want no RECENT or UNSEEN", u)
	}
	if u := c.ok("FETCH 1 FLAGS"); len(find(u, `\\Recent`)) != 0 {
		t.Errorf("FETCH FLAGS under IMAP4rev2: %q, want no \\Recent", u)
	}
	e.deliver("two")
	if u := c.ok("NOOP"); len(find(u, `^\* 2 EXISTS$`)) != 1 || len(find(u, `RECENT`)) != 0 {
		t.Errorf("NOOP under IMAP4rev2: %q, want * 2 EXISTS and no RECENT", u)
	}
}
