package pop3_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/mailsys/mailsys/pop3"
)

// TestSession walks a whole session with a bare client: CAPA, login, STAT,
// LIST, UIDL, RETR, TOP, DELE, RSET, QUIT and the UPDATE state.
func TestSession(t *testing.T) {
	e := newEnv(t, pop3.Config{Hostname: "pop.example.test"})
	msgs := variedMessages()
	var sizes []int
	for _, m := range msgs {
		e.deliver(m.body)
		sizes = append(sizes, len(m.body))
	}
	c := dial(t, e.addr)
	c.ok("CAPA")
	caps := c.multi()
	for _, want := range []string{"TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING", "USER", "SASL PLAIN", "IMPLEMENTATION mailsys"} {
		if !slices.Contains(caps, want) {
			t.Errorf("CAPA lacks %q: %q", want, caps)
		}
	}
	if slices.Contains(caps, "STLS") {
		t.Errorf("CAPA offers STLS without TLS: %q", caps)
	}
	if r := c.cmd("STAT"); !strings.HasPrefix(r, "-ERR") {
		t.Errorf("STAT before login: %q", r)
	}
	c.ok("user " + testUser) // case-insensitive
	if r := c.cmd("PASS wrong"); r != "-ERR [AUTH] Authentication failed" {
		t.Errorf("wrong password: %q", r)
	}
	c.login()

	total := 0
	for _, s := range sizes {
		total += s
	}
	if r, want := c.ok("STAT"), fmt.Sprintf("+OK %d %d", len(msgs), total); r != want {
		t.Errorf("STAT = %q, want %q", r, want)
	}
	c.ok("LIST")
	list := c.multi()
	for i, s := range sizes {
		if want := fmt.Sprintf("%d %d", i+1, s); i >= len(list) || list[i] != want {
			t.Errorf("LIST line %d = %q, want %q", i, list, want)
		}
	}
	if r, want := c.ok("LIST 2"), fmt.Sprintf("+OK 2 %d", sizes[1]); r != want {
		t.Errorf("LIST 2 = %q, want %q", r, want)
	}
	c.ok("UIDL")
	uidl := c.multi()
	uids := e.uids()
	for i, u := range uids {
		if want := fmt.Sprintf("%d %d.%d", i+1, e.inbox.UIDValidity, u); uidl[i] != want {
			t.Errorf("UIDL line %d = %q, want %q", i, uidl[i], want)
		}
	}

	// RETR of the dots message: the wire has the stuffed form.
	c.ok("RETR 4")
	var raw []string
	for l := c.line(); l != "."; l = c.line() {
		raw = append(raw, l)
	}
	wantRaw := []string{"Subject: dots", "", "..", "...", "..leading dot", ".. space", "....", "middle . dot", "", "..", "last", ".."}
	if !slices.Equal(raw, wantRaw) {
		t.Errorf("RETR 4 on the wire:\n%q\nwant\n%q", raw, wantRaw)
	}
	// TOP: the header, the blank line, n lines.
	c.ok("TOP 7 2")
	if got, want := c.multi(), []string{"From: carol@example.net", "Subject: parts", "MIME-Version: 1.0",
		`Content-Type: multipart/mixed; boundary="b1"`, "", "Preamble.", "--b1"}; !slices.Equal(got, want) {
		t.Errorf("TOP 7 2 = %q, want %q", got, want)
	}
	c.ok("TOP 1 0")
	if got := c.multi(); len(got) != 4 || got[3] != "" {
		t.Errorf("TOP 1 0 = %q", got)
	}
	c.ok("TOP 8 5") // no blank line: all header
	if got := c.multi(); !slices.Equal(got, []string{"Subject: no body, no blank line"}) {
		t.Errorf("TOP 8 5 = %q", got)
	}

	// DELE, RSET, DELE again; QUIT removes exactly those.
	c.ok("DELE 1")
	if r := c.cmd("DELE 1"); !strings.HasPrefix(r, "-ERR") {
		t.Errorf("DELE twice: %q", r)
	}
	if r := c.cmd("RETR 1"); !strings.HasPrefix(r, "-ERR") {
		t.Errorf("RETR of a deleted message: %q", r)
	}
	if r, want := c.ok("STAT"), fmt.Sprintf("+OK %d %d", len(msgs)-1, total-sizes[0]); r != want {
		t.Errorf("STAT after DELE = %q, want %q", r, want)
	}
	c.ok("RSET")
	c.ok("STAT")
	c.ok("DELE 2")
	c.ok("DELE 3")
	c.ok("DELE 9")
	c.ok("LIST")
	if l := c.multi(); len(l) != len(msgs)-3 || l[0] != fmt.Sprintf("1 %d", sizes[0]) {
		t.Errorf("LIST after DELE = %q", l)
	}
	c.ok("NOOP")
	if r := c.ok("QUIT"); !strings.Contains(r, "pop.example.test") {
		t.Errorf("QUIT = %q", r)
	}
	if !c.closed() {
		t.Error("connection open after QUIT")
	}
	want := slices.Concat(uids[:1], uids[3:8])
	if got := e.uids(); !slices.Equal(got, want) {
		t.Errorf("INBOX after QUIT = %v, want %v", got, want)
	}
}

// TestDroppedSessionDeletesNothing: DELE without QUIT leaves the mailbox
// as it was, and frees the maildrop.
func TestDroppedSessionDeletesNothing(t *testing.T) {
	e := newEnv(t, pop3.Config{})
	for i := range 3 {
		e.deliver(fmt.Appendf(nil, "Subject: %d\r\n\r\nbody\r\n", i))
	}
	c := dial(t, e.addr)
	c.login()
	c.ok("DELE 1")
	c.ok("DELE 2")
	c.c.Close()
	c2 := dial(t, e.addr)
	c2.ok("USER " + testUser)
	for r := c2.cmd("PASS " + testPass); !strings.HasPrefix(r, "+OK "+testUser+" has 3 messages"); r = c2.cmd("PASS " + testPass) {
		if !strings.Contains(r, "[IN-USE]") { // the server may not have seen the close yet
			t.Fatalf("login after a dropped session: %q", r)
		}
		c2.ok("USER " + testUser)
	}
	c2.ok("QUIT")
	if n := len(e.uids()); n != 3 {
		t.Errorf("%d messages after a dropped session, want 3", n)
	}
}

// TestPipelining sends a batch of commands in one write and gets the
// replies in order.
func TestPipelining(t *testing.T) {
	e := newEnv(t, pop3.Config{})
	for i := range 3 {
		e.deliver(fmt.Appendf(nil, "Subject: %d\r\n\r\nbody %d\r\n", i, i))
	}
	c := dial(t, e.addr)
	c.send("USER " + testUser + "\r\nPASS " + testPass + "\r\nSTAT\r\nRETR 1\r\nRETR 2\r\nBOGUS\r\nDELE 3\r\nLIST\r\nQUIT\r\n")
	for _, want := range []string{"+OK", "+OK", "+OK 3 "} {
		if l := c.line(); !strings.HasPrefix(l, want) {
			t.Fatalf("got %q, want %q", l, want)
		}
	}
	for i := range 2 {
		if l := c.line(); !strings.HasPrefix(l, "+OK") {
			t.Fatalf("RETR %d: %q", i+1, l)
		}
		if got, want := c.multi(), []string{fmt.Sprintf("Subject: %d", i), "", fmt.Sprintf("body %d", i)}; !slices.Equal(got, want) {
			t.Fatalf("RETR %d = %q, want %q", i+1, got, want)
		}
	}
	if l := c.line(); !strings.HasPrefix(l, "-ERR") {
		t.Fatalf("BOGUS: %q", l)
	}
	c.line() // DELE
	c.line() // LIST
	if got := c.multi(); len(got) != 2 {
		t.Fatalf("LIST = %q", got)
	}
	if l := c.line(); !strings.HasPrefix(l, "+OK") {
		t.Fatalf("QUIT: %q", l)
	}
	if n := len(e.uids()); n != 2 {
		t.Errorf("%d messages left, want 2", n)
	}
}
