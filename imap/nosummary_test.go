package imap_test

import (
	"strings"
	"testing"
	"time"

	"github.com/mailsys/mailsys/msstore"
	"github.com/mailsys/mailsys/userdata"
)

// TestFetchWithoutSummary: a message indexed without its cached ENVELOPE
// and BODYSTRUCTURE (a writer other than Summarize's callers) is parsed
// at FETCH the same way Summarize would have: groups kept, the subject as
// sent.
func TestFetchWithoutSummary(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	msg := "From: Bob <bob@example.net>\r\nTo: team: a@example.net, b@example.net;\r\nSubject: =?utf-8?b?w6l0w6k=?=\r\n\r\nhi\r\n"
	ref, err := e.store.Put(ctx, strings.NewReader(msg), msstore.Meta{})
	if err != nil {
		t.Fatal(err)
	}
	inbox, err := e.db.Folder(ctx, e.user.ID, userdata.Inbox)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.db.Append(ctx, e.user.ID, inbox.ID, userdata.NewMessage{Ref: ref, Size: ref.Size, InternalDate: time.Now()}); err != nil {
		t.Fatal(err)
	}
	c := e.raw()
	c.ok("SELECT INBOX")
	u := c.ok("FETCH 1 (ENVELOPE BODYSTRUCTURE)")
	if len(u) != 1 || !strings.Contains(u[0], `"=?utf-8?b?w6l0w6k=?="`) || !strings.Contains(u[0], `(NIL NIL "team" NIL)`) ||
		!strings.Contains(u[0], `BODYSTRUCTURE ("text" "plain"`) {
		t.Errorf("FETCH of a message without a summary: %q, want the raw subject, the group and a text/plain structure", u)
	}
}
