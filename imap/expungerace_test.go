package imap_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mailsys/mailsys/msstore"
	"github.com/mailsys/mailsys/userdata"
)

// TestFetchRacingExpunge: a session fetching bodies it has not finished
// reading while another session expunges them still gets every body, and
// no EXPUNGE until the FETCH is done; the bodies are released once it has
// been told (RFC 9051 7.4.1 would allow NO [EXPUNGEISSUED], never
// SERVERBUG). SEARCH and COPY of the expunged messages answer OK.
func TestFetchRacingExpunge(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	inbox, err := e.db.Folder(ctx, e.user.ID, userdata.Inbox)
	if err != nil {
		t.Fatal(err)
	}
	const n = 200
	body := strings.Repeat("0123456789abcdef", 64<<10/16)
	var refs []msstore.Ref
	for i := range n {
		msg := fmt.Sprintf("Subject: big %d\r\n\r\n%s\r\n", i, body)
		ref, err := e.store.Put(ctx, strings.NewReader(msg), msstore.Meta{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.db.Append(ctx, e.user.ID, inbox.ID, userdata.NewMessage{Ref: ref, Size: ref.Size, InternalDate: time.Now()}); err != nil {
			t.Fatal(err)
		}
		refs = append(refs, ref)
	}
	a, b := e.raw(), e.raw()
	a.ok("SELECT INBOX")
	a.ok("CREATE Other")
	b.ok("SELECT INBOX")

	// a asks for all 13 MB and reads nothing yet: the server blocks
	// writing them, with the index read for the first messages.
	tag := a.send("FETCH 1:* (BODY.PEEK[])")
	time.Sleep(300 * time.Millisecond)
	b.ok(`STORE 1:* +FLAGS.SILENT (\Deleted)`)
	if u := b.ok("EXPUNGE"); len(find(u, `^\* 1 EXPUNGE$`)) != n {
		t.Fatalf("b's EXPUNGE: %d responses, want %d", len(u), n)
	}
	untagged, status := a.wait(tag)
	if !strings.HasPrefix(status, "OK") {
		t.Errorf("a's FETCH racing the expunge: %s, want OK", status)
	}
	fetched := 0
	for _, l := range untagged {
		switch {
		case strings.Contains(l, "EXPUNGE"):
			t.Errorf("EXPUNGE during FETCH: %q", l)
		case strings.Contains(l, " FETCH ") && strings.HasSuffix(l, body+"\r\n)"):
			fetched++
		}
	}
	if fetched != n {
		t.Errorf("a's FETCH gave %d whole bodies, want %d", fetched, n)
	}
	if _, err := e.store.Open(ctx, refs[n-1]); err != nil {
		t.Errorf("a body a session can still address was released: %v", err)
	}
	// Not told yet, a still addresses the messages: SEARCH and COPY of
	// what is gone answer OK.
	if u := a.ok("SEARCH BODY 0123"); len(u) != 1 || strings.TrimSpace(u[0]) != "* SEARCH" {
		t.Errorf("SEARCH BODY of expunged messages: %q", u)
	}
	if _, err := e.store.Open(ctx, refs[0]); err != nil {
		t.Errorf("after SEARCH, a body a session can still address was released: %v", err)
	}
	// COPY may tell of expunges; it copies nothing that is gone.
	u := append(a.ok("COPY 1:5 Other"), a.ok("NOOP")...)
	if got := len(find(u, `^\* 1 EXPUNGE$`)); got != n || len(find(u, `COPYUID`)) != 0 {
		t.Errorf("a's COPY and NOOP: %d EXPUNGE responses, want %d, and no COPYUID (%q)", got, n, u[:min(len(u), 3)])
	}
	for i, ref := range refs {
		if _, err := e.store.Open(ctx, ref); !errors.Is(err, msstore.ErrNotFound) {
			t.Fatalf("body %d after every session was told of its expunge: %v, want it released", i, err)
		}
	}
}

// TestExpungeHoldEndsAtLogout: the bodies held for a session that never
// hears of their expunge are released when it logs out.
func TestExpungeHoldEndsAtLogout(t *testing.T) {
	e := newEnv(t)
	m := e.deliver("held")
	a, b := e.raw(), e.raw()
	a.ok("SELECT INBOX")
	b.ok("SELECT INBOX")
	b.ok(`STORE 1 +FLAGS.SILENT (\Deleted)`)
	b.ok("EXPUNGE")
	if _, err := e.store.Open(t.Context(), m.Ref); err != nil {
		t.Fatalf("body released while a can still address it: %v", err)
	}
	a.ok("LOGOUT")
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := e.store.Open(t.Context(), m.Ref)
		if errors.Is(err, msstore.ErrNotFound) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("body after the last session that could address it logged out: %v, want it released", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
