package imap_test

import (
	"fmt"
	"strings"
	"testing"
)

// appendRaw appends msg to INBOX over rc and selects INBOX.
func (rc *rawClient) appendRaw(msgs ...string) {
	rc.t.Helper()
	for _, msg := range msgs {
		rc.ok("APPEND INBOX {%d+}\r\n%s", len(msg), msg)
	}
	rc.ok("SELECT INBOX")
}

// fetchEnvelope returns the ENVELOPE of message seq as the server wrote it.
func (rc *rawClient) fetchEnvelope(seq int) string {
	rc.t.Helper()
	u := rc.ok("FETCH %d ENVELOPE", seq)
	for _, l := range u {
		if _, env, ok := strings.Cut(l, "ENVELOPE "); ok && strings.HasPrefix(l, fmt.Sprintf("* %d FETCH", seq)) {
			return strings.TrimSuffix(env, ")")
		}
	}
	rc.t.Fatalf("FETCH %d ENVELOPE: %q", seq, u)
	return ""
}

// TestEnvelopeAddresses: groups, empty groups, routes and comments in
// addresses come out as RFC 3501 section 7.4.2 says, on the wire.
func TestEnvelopeAddresses(t *testing.T) {
	e := newEnv(t)
	rc := e.raw()
	rc.appendRaw(
		crlf("From: Ann <ann@example.test>\nTo: group: a@b.example, c@d.example;, group2: e@f.example;\nCc: undisclosed-recipients:;\nSubject: groups\n\nbody\n"),
		crlf("From: <@route.example:user@domain.example>\nSubject: route\n\nbody\n"),
		crlf("From: <user (comment)@ (comment) domain.org>\nReply-To: Joe Q. Public <@a.example,@b.example:joe@c.example>\nSubject: comments\n\nbody\n"),
		crlf("From: \"Doe, John\" <john@example.test> (the boss), root\nSender: =?utf-8?b?5byg5LiJ?= <zs@example.cn>\nSubject: names\n\nbody\n"),
	)
	ann := `(("Ann" NIL "ann" "example.test"))`
	for i, want := range []string{
		`(NIL "groups" ` + ann + ` ` + ann + ` ` + ann +
			` ((NIL NIL "group" NIL) (NIL NIL "a" "b.example") (NIL NIL "c" "d.example") (NIL NIL NIL NIL) (NIL NIL "group2" NIL) (NIL NIL "e" "f.example") (NIL NIL NIL NIL))` +
			` ((NIL NIL "undisclosed-recipients" NIL) (NIL NIL NIL NIL)) NIL NIL NIL)`,
		`(NIL "route" ((NIL NIL "user" "domain.example")) ((NIL NIL "user" "domain.example")) ((NIL NIL "user" "domain.example")) NIL NIL NIL NIL NIL)`,
		`(NIL "comments" ((NIL NIL "user" "domain.org")) ((NIL NIL "user" "domain.org")) (("Joe Q. Public" NIL "joe" "c.example")) NIL NIL NIL NIL NIL)`,
		`(NIL "names" (("Doe, John" NIL "john" "example.test") (NIL NIL "root" "MISSING_DOMAIN")) (("=?utf-8?b?5byg5LiJ?=" NIL "zs" "example.cn"))` +
			` (("Doe, John" NIL "john" "example.test") (NIL NIL "root" "MISSING_DOMAIN")) NIL NIL NIL NIL NIL)`,
	} {
		if got := rc.fetchEnvelope(i + 1); got != want {
			t.Errorf("message %d: ENVELOPE\n got %s\nwant %s", i+1, got, want)
		}
	}
}

// TestEnvelopeRawText: the subject, display names, message ID and
// In-Reply-To are the header's text, unfolded, encoded words as sent;
// raw UTF-8 is MIME-encoded by go-imap's writer, before and after ENABLE
// UTF8=ACCEPT alike (see extractEnvelope).
func TestEnvelopeRawText(t *testing.T) {
	e := newEnv(t)
	rc := e.raw()
	rc.appendRaw(
		crlf("Subject: =?utf-8?b?5L2g5aW977yM5LiW55WM?=\n =?utf-8?b?5LiW55WM?=\nFrom: =?UTF-8?Q?J=C3=BCrgen_M=C3=BCller?= <jm@example.de>\n"+
			"Message-ID: <id.1@example.de>\nIn-Reply-To: <p1@example.de> <p2@example.de>\nDate: Mon, 02 Jan 2006 15:04:05 +0100\n\nbody\n"),
		crlf("Subject: 你好 wörld\nFrom: Jürgen <j@example.de>\n\nbody\n"),
	)
	want := `("Mon, 02 Jan 2006 15:04:05 +0100" "=?utf-8?b?5L2g5aW977yM5LiW55WM?= =?utf-8?b?5LiW55WM?="` +
		strings.Repeat(` (("=?UTF-8?Q?J=C3=BCrgen_M=C3=BCller?=" NIL "jm" "example.de"))`, 3) +
		` NIL NIL NIL "<p1@example.de> <p2@example.de>" "<id.1@example.de>")`
	if got := rc.fetchEnvelope(1); got != want {
		t.Errorf("ENVELOPE\n got %s\nwant %s", got, want)
	}
	want8 := `(NIL "=?utf-8?q?=E4=BD=A0=E5=A5=BD_w=C3=B6rld?="` + strings.Repeat(` (("=?utf-8?q?J=C3=BCrgen?=" NIL "j" "example.de"))`, 3) + ` NIL NIL NIL NIL NIL)`
	if got := rc.fetchEnvelope(2); got != want8 {
		t.Errorf("ENVELOPE of raw UTF-8\n got %s\nwant %s", got, want8)
	}
	rc.ok("ENABLE UTF8=ACCEPT")
	if got := rc.fetchEnvelope(2); got != want8 {
		t.Errorf("ENVELOPE of raw UTF-8 after ENABLE UTF8=ACCEPT\n got %s\nwant %s", got, want8)
	}
}

// TestSearchAddresses: FROM, TO, CC and BCC match the parsed addresses
// and the decoded display names (RFC 3501 section 6.4.4), and still any
// substring of the field as it is.
func TestSearchAddresses(t *testing.T) {
	e := newEnv(t)
	rc := e.raw()
	rc.appendRaw(
		crlf("From: <user (comment)@ (comment) domain.org>\nTo: group: a@b.example, c@d.example;\nSubject: one\n\nbody\n"),
		crlf("From: =?utf-8?b?5byg5LiJ?= <zs@example.cn>\nCc: <@route.example:carol@example.net>\nSubject: two\n\nbody\n"),
		crlf("From: Bob <bob@example.net>\nBcc: undisclosed-recipients:;\nSubject: three\n\nbody\n"),
	)
	for _, c := range []struct{ query, want string }{
		{`FROM user@domain.org`, "* SEARCH 1"},
		{`FROM "(comment)"`, "* SEARCH 1"}, // the raw text, as before
		{`FROM USER@DOMAIN`, "* SEARCH 1"},
		{`TO c@d.example`, "* SEARCH 1"},
		{`TO group`, "* SEARCH 1"},
		{"CHARSET UTF-8 FROM {6+}\r\n张三", "* SEARCH 2"},
		{`CC carol@example.net`, "* SEARCH 2"},
		{`FROM "bob <bob@"`, "* SEARCH 3"},
		{`BCC undisclosed`, "* SEARCH 3"},
		{`HEADER FROM user@domain.org`, "* SEARCH 1"},
		{`FROM nobody@example.org`, "* SEARCH"},
	} {
		u := rc.ok("SEARCH %s", c.query)
		if got := find(u, `^\* SEARCH`); len(got) != 1 || got[0] != c.want {
			t.Errorf("SEARCH %s: %q, want %q", c.query, u, c.want)
		}
	}
}

// crlf turns a message written with \n into one with \r\n.
func crlf(s string) string { return strings.ReplaceAll(s, "\n", "\r\n") }
