package imap_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	goimap "github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/mailsys/mailsys/msstore"
	"github.com/mailsys/mailsys/userdata"
)

// deliver appends a message to ann's INBOX the way SMTP delivery does:
// straight into the store and the index, not through IMAP.
func (e *env) deliver(subject string) userdata.Message {
	e.t.Helper()
	ctx := e.t.Context()
	msg := message(subject, "delivered\r\n")
	ref, err := e.store.Put(ctx, strings.NewReader(msg), msstore.Meta{Owners: []msstore.Owner{{User: e.user.Address, Mailbox: "INBOX"}}})
	if err != nil {
		e.t.Fatal(err)
	}
	inbox, err := e.db.Folder(ctx, e.user.ID, userdata.Inbox)
	if err != nil {
		e.t.Fatal(err)
	}
	m, err := e.db.Append(ctx, e.user.ID, inbox.ID, userdata.NewMessage{Ref: ref, Size: ref.Size, InternalDate: time.Now()})
	if err != nil {
		e.t.Fatal(err)
	}
	return m
}

// TestIdleSeesDelivery: a session in IDLE learns of new mail within a
// second, and of another session's flag change and expunge.
func TestIdleSeesDelivery(t *testing.T) {
	e := newEnv(t)
	var mu sync.Mutex
	var exists []uint32
	var expunged []uint32
	var fetched []uint32
	c, err := imapclient.DialInsecure(e.addr, &imapclient.Options{UnilateralDataHandler: &imapclient.UnilateralDataHandler{
		Mailbox: func(d *imapclient.UnilateralDataMailbox) {
			if d.NumMessages != nil {
				mu.Lock()
				exists = append(exists, *d.NumMessages)
				mu.Unlock()
			}
		},
		Expunge: func(seq uint32) {
			mu.Lock()
			expunged = append(expunged, seq)
			mu.Unlock()
		},
		Fetch: func(m *imapclient.FetchMessageData) {
			mu.Lock()
			fetched = append(fetched, m.SeqNum)
			mu.Unlock()
			for m.Next() != nil {
			}
		},
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login("ann@example.test", "pw").Wait(); err != nil {
		t.Fatal(err)
	}
	e.deliver("before")
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	idle, err := c.Idle()
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	e.deliver("while idle")
	wait := func(what string, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(time.Second); ; time.Sleep(5 * time.Millisecond) {
			mu.Lock()
			done := ok()
			mu.Unlock()
			if done {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("IDLE: no %s within a second", what)
			}
		}
	}
	wait("EXISTS", func() bool { return slices.Contains(exists, 2) })
	t.Logf("EXISTS reached the idle client %v after the delivery", time.Since(start))
	other := e.client()
	if _, err := other.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	if err := other.Store(goimap.SeqSetNum(1), &goimap.StoreFlags{Op: goimap.StoreFlagsAdd, Flags: []goimap.Flag{goimap.FlagDeleted}}, nil).Close(); err != nil {
		t.Fatal(err)
	}
	wait("FETCH FLAGS", func() bool { return slices.Contains(fetched, 1) })
	if err := other.Expunge().Close(); err != nil {
		t.Fatal(err)
	}
	wait("EXPUNGE", func() bool { return slices.Contains(expunged, 1) })
	if err := idle.Close(); err != nil {
		t.Fatal(err)
	}
	if err := idle.Wait(); err != nil {
		t.Fatal(err)
	}
	if n := c.Mailbox().NumMessages; n != 1 {
		t.Errorf("the idle client counts %d messages, want 1", n)
	}
}

// TestConcurrentSessions runs deliveries, flag changes and expunges on one
// folder from several sessions at once; each session's view must stay
// consistent with the folder (go-imap's tracker panics otherwise), and
// every session must end with the folder's real content.
func TestConcurrentSessions(t *testing.T) {
	e := newEnv(t)
	const sessions, rounds = 4, 25
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := range rounds * 2 {
			e.deliver(fmt.Sprintf("delivery %d", i))
		}
	})
	clients := make([]*imapclient.Client, sessions)
	for i := range clients {
		clients[i] = e.client()
		if _, err := clients[i].Select("INBOX", nil).Wait(); err != nil {
			t.Fatal(err)
		}
	}
	for i, c := range clients {
		wg.Go(func() {
			for r := range rounds {
				n := c.Mailbox().NumMessages
				if n == 0 {
					c.Noop().Wait()
					continue
				}
				seq := uint32(r%int(n)) + 1
				var err error
				switch (i + r) % 3 {
				case 0:
					_, err = c.Store(goimap.SeqSetNum(seq), &goimap.StoreFlags{Op: goimap.StoreFlagsAdd, Flags: []goimap.Flag{goimap.FlagSeen}}, nil).Collect()
				case 1:
					_, err = c.Fetch(goimap.SeqSet{{Start: 1, Stop: 0}}, &goimap.FetchOptions{UID: true, Flags: true}).Collect()
				case 2:
					if err = c.Store(goimap.SeqSetNum(seq), &goimap.StoreFlags{Op: goimap.StoreFlagsAdd, Silent: true, Flags: []goimap.Flag{goimap.FlagDeleted}}, nil).Close(); err == nil {
						_, err = c.Expunge().Collect()
					}
				}
				// A message another session expunged but this one was
				// not told of yet may be refused (RFC 9051 7.1).
				if err != nil && imapCode(err) != "EXPUNGEISSUED" {
					t.Errorf("session %d round %d: %v", i, r, err)
					return
				}
			}
		})
	}
	wg.Wait()
	ctx := t.Context()
	inbox, _ := e.db.Folder(ctx, e.user.ID, userdata.Inbox)
	uids, _ := e.db.UIDs(ctx, e.user.ID, inbox.ID)
	for i, c := range clients {
		// A session learns of the last changes with its next command.
		if err := c.Noop().Wait(); err != nil {
			t.Fatal(err)
		}
		got, err := c.Fetch(goimap.SeqSet{{Start: 1, Stop: 0}}, &goimap.FetchOptions{UID: true}).Collect()
		if err != nil {
			t.Fatal(err)
		}
		var seen []userdata.UID
		for _, m := range got {
			seen = append(seen, userdata.UID(m.UID))
		}
		if !slices.Equal(seen, uids) || c.Mailbox().NumMessages != uint32(len(uids)) {
			t.Errorf("session %d sees %d messages %v, the folder has %v", i, c.Mailbox().NumMessages, seen, uids)
		}
	}
}

// TestExamineIsReadOnly: go-imap does not stop changes to a folder opened
// with EXAMINE; the server does.
func TestExamineIsReadOnly(t *testing.T) {
	e := newEnv(t)
	e.deliver("one")
	c := e.client()
	if _, err := c.Select("INBOX", &goimap.SelectOptions{ReadOnly: true}).Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Store(goimap.SeqSetNum(1), &goimap.StoreFlags{Op: goimap.StoreFlagsAdd, Flags: []goimap.Flag{goimap.FlagDeleted}}, nil).Collect(); err == nil {
		t.Error("STORE in an EXAMINEd folder succeeded")
	}
	if _, err := c.Expunge().Collect(); err == nil {
		t.Error("EXPUNGE in an EXAMINEd folder succeeded")
	}
	if _, err := c.Move(goimap.SeqSetNum(1), "Archive").Wait(); err == nil {
		t.Error("MOVE out of an EXAMINEd folder succeeded")
	}
	// Reading does not set \Seen.
	if _, err := c.Fetch(goimap.SeqSetNum(1), &goimap.FetchOptions{BodySection: []*goimap.FetchItemBodySection{{}}}).Collect(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Copy(goimap.SeqSetNum(1), "Archive").Wait(); err != nil {
		t.Errorf("COPY out of an EXAMINEd folder: %v", err)
	}
	if err := c.Unselect().Wait(); err != nil {
		t.Fatal(err)
	}
	inbox, _ := e.db.Folder(t.Context(), e.user.ID, userdata.Inbox)
	if inbox.Messages != 1 || inbox.Unseen != 1 {
		t.Errorf("INBOX after EXAMINE: %d messages, %d unseen; want 1 and 1", inbox.Messages, inbox.Unseen)
	}
}

// TestBadInput sends what a broken or hostile client might: each gets a
// tagged BAD or NO, or the connection closes, and the server stays up.
func TestBadInput(t *testing.T) {
	e := newEnv(t)
	e.deliver("one")
	before := runtime.NumGoroutine()
	talk := func(login bool, script string) string {
		t.Helper()
		c, err := net.Dial("tcp", e.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		r := bufio.NewReader(c)
		r.ReadString('\n')
		if login {
			io.WriteString(c, "l LOGIN ann@example.test pw\r\n")
			if line, _ := r.ReadString('\n'); !strings.HasPrefix(line, "l OK") {
				for !strings.HasPrefix(line, "l ") {
					line, err = r.ReadString('\n')
					if err != nil {
						t.Fatalf("login: %v", err)
					}
				}
			}
		}
		io.WriteString(c, script)
		c.(*net.TCPConn).CloseWrite()
		out, _ := io.ReadAll(r)
		return string(out)
	}
	cases := []struct {
		login  bool
		script string
		want   string
	}{
		{false, "a SELECT INBOX\r\n", "a BAD"},
		{false, "a LOGIN ann@example.test wrong\r\n", "a NO"},
		{false, "\x00\x01\xff garbage\r\n", ""},       // go-imap hangs up
		{false, "a APPEND INBOX {999999999}\r\n", ""}, // literal refused or connection closed
		{true, "a SELECT Nope\r\n", "a NO"},
		{true, "a SELECT INBOX\r\nb FETCH 1:* (FLAGS\r\n", "b BAD"},
		{true, "a SELECT INBOX\r\nb FETCH 0:-1 FLAGS\r\n", "b NO"}, // go-imap's parser calls it a server error
		{true, "a SELECT INBOX\r\nb FETCH 4294967295 FLAGS\r\nc UID FETCH 1:4294967295 FLAGS\r\n", "c OK"},
		{true, "a SELECT INBOX\r\nb SEARCH " + strings.Repeat("(", 5000) + "ALL" + strings.Repeat(")", 5000) + "\r\n", "b BAD"},
		{true, "a LIST \"\" \"" + strings.Repeat("*%", 2000) + "x\"\r\n", "a OK"},
		{true, "a APPEND INBOX {10}\r\nshort", ""}, // cut mid-literal
		{true, "a STORE 1 +FLAGS (\\Bogus)\r\n", "a BAD"},
	}
	for _, tc := range cases {
		out := talk(tc.login, tc.script)
		if !strings.Contains(out, tc.want) {
			t.Errorf("%q: got %q, want %q in it", tc.script, out, tc.want)
		}
	}
	// No goroutine is left behind by the connections that are gone.
	for deadline := time.Now().Add(5 * time.Second); runtime.NumGoroutine() > before; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Errorf("%d goroutines after the bad connections closed, %d before", runtime.NumGoroutine(), before)
			break
		}
	}
	// Still serving, and the half-sent APPEND left nothing.
	c := e.client()
	sel, err := c.Select("INBOX", nil).Wait()
	if err != nil || sel.NumMessages != 1 {
		t.Fatalf("after bad input: %+v, %v", sel, err)
	}
}

// TestPreAuthLimits: an unauthenticated client may not send much or
// linger.
func TestPreAuthLimits(t *testing.T) {
	e := newEnv(t)
	c, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	go func() {
		line := "a NOOP " + strings.Repeat("x", 1000) + "\r\n"
		for range 200 { // 200 KB, above the 64 KiB allowed before login
			if _, err := io.WriteString(c, line); err != nil {
				return
			}
		}
	}()
	// The server hangs up (a reset, as it leaves data unread).
	if _, err := io.Copy(io.Discard, c); errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("connection not closed after the byte limit: %v", err)
	}
}

// TestPythonImaplib drives the server with Python's imaplib.
func TestPythonImaplib(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("no python3")
	}
	e := newEnv(t)
	host, port, _ := net.SplitHostPort(e.addr)
	script := `
import imaplib, ssl, sys
M = imaplib.IMAP4(sys.argv[1], int(sys.argv[2]))
M.starttls(ssl_context=ssl._create_unverified_context())
M.login("ann@example.test", "pw")
M.create("Py")
msg = b"From: py@example.net\r\nSubject: from python\r\n\r\nhello \xc3\xa9\r\n"
typ, data = M.append("Py", r"(\Flagged)", None, msg)
assert typ == "OK", data
typ, data = M.select("Py")
assert typ == "OK" and data[0] == b"1", data
typ, data = M.fetch("1", "(FLAGS BODY[] ENVELOPE)")
assert typ == "OK", data
assert data[0][1] == msg, data
assert b"\\Flagged" in data[0][0] and b"\\Seen" in data[0][0], data
typ, data = M.search(None, "FLAGGED", "SUBJECT", "python")
assert data == [b"1"], data
typ, data = M.uid("SEARCH", "ALL")
assert data == [b"1"], data
typ, data = M.check()
assert typ == "OK", data
typ, data = M.uid("COPY", "1", "INBOX")
assert typ == "OK", data
assert M.response("COPYUID")[1][0] is not None
M.select("INBOX")
typ, data = M.uid("SEARCH", "CHARSET", "UTF-8", "BODY", "\u00e9".encode())
assert data == [b"1"], data
typ, data = M.fetch("1", "(BINARY.PEEK[1] BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
assert typ == "OK" and any(b"hello" in p[1] for p in data if isinstance(p, tuple)), data
typ, data = M.uid("MOVE", "1", "Py")
assert typ == "OK", data
M.select("Py")
typ, data = M.store("1:*", "+FLAGS", r"(\Deleted)")
assert typ == "OK", data
typ, data = M.expunge()
assert data == [b"2", b"1"] or data == [b"1", b"1"], data
typ, data = M.list()
assert any(b'"Py"' in l or b" Py" in l for l in data), data
M.subscribe("Py")
typ, data = M.lsub('""', "P%")
assert typ == "OK" and len(data) == 1 and data[0].rstrip(b'"').endswith(b"Py"), data
M.unsubscribe("Py")
typ, data = M.lsub()
assert not any(l and l.rstrip(b'"').endswith(b"Py") for l in data), data
M.close()
M.logout()
print("ok")
`
	out, err := exec.Command("python3", "-c", script, host, port).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "ok") {
		t.Fatalf("imaplib: %v\n%s", err, out)
	}
}
