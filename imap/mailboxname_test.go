package imap_test

import (
	"slices"
	"strings"
	"testing"
)

// TestMailboxNameInvalid: a mailbox name that can be no folder's (an
// empty level, a wildcard) is answered NO [CANNOT] with the reason, and
// CREATE makes nothing of it, not even its parents. (Control characters
// never get this far: go-imap refuses them as it refuses bad modified
// UTF-7, see TestMailboxNameUTF7.)
func TestMailboxNameInvalid(t *testing.T) {
	e := newEnv(t)
	rc := e.raw()
	okLines(rc, `CREATE "Work"`)
	const bad = "NO [CANNOT] Invalid mailbox name: "
	for _, cmd := range []string{
		`CREATE "a//b"`, `CREATE "x*y"`, `CREATE "a/%/b"`,
		`DELETE "a//b"`, `RENAME "Work" "a//b"`, `RENAME "a//b" "c"`, `SELECT "a//b"`, `EXAMINE "a//b"`,
		`STATUS "a//b" (MESSAGES)`, `SUBSCRIBE "a//b"`, `UNSUBSCRIBE "a//b"`, `CREATE "a//b" (USE (\Sent))`,
	} {
		if _, status := rc.cmd("%s", cmd); !strings.HasPrefix(status, bad) {
			t.Errorf("%s: %s, want %s...", cmd, status, bad)
		}
	}
	if _, status := rc.cmd("%s", `RENAME "Work" "Work/Sub"`); !strings.HasPrefix(status, "NO [CANNOT] A mailbox cannot be renamed into itself") {
		t.Errorf("RENAME into itself: %s", status)
	}
	// A special use the server has no folder for is NO [USEATTR] (RFC
	// 6154 5.1).
	if _, status := rc.cmd("%s", `CREATE "Bills" (USE (\Flagged))`); !strings.HasPrefix(status, "NO [USEATTR]") {
		t.Errorf("CREATE with an unsupported special use: %s", status)
	}
	got := okLines(rc, `LIST "" "*"`)
	if i := slices.IndexFunc(got, func(l string) bool {
		return strings.HasSuffix(l, `"a"`) || strings.Contains(l, `"Work/`) || strings.HasSuffix(l, `"Bills"`)
	}); i >= 0 {
		t.Errorf("a refused CREATE or RENAME left %q", got[i])
	}
}

// TestMailboxNameUTF7 checks mailbox names that are not valid modified
// UTF-7 (RFC 3501 5.1.3), in CREATE and in a LIST pattern, and names after
// ENABLE UTF8=ACCEPT, where they are UTF-8 and "&" is just a character
// (RFC 6855 3).
//
// go-imap v2.0.0-beta.8 decodes every mailbox argument with its utf7
// package before the backend sees the command, and answers a decoding
// error NO [SERVERBUG] itself; it decodes mUTF-7 after UTF8=ACCEPT too,
// and writes "&" as "&-". Nothing in Session can change that, so while
// go-imap still answers SERVERBUG the test skips, naming the limitation.
func TestMailboxNameUTF7(t *testing.T) {
	e := newEnv(t)
	rc := e.raw()
	_, status := rc.cmd("%s", `CREATE "z&AOQA5A"`)
	if strings.HasPrefix(status, "NO [SERVERBUG]") {
		t.Skip(`known limitation: go-imap beta.8 answers a mailbox name that is not modified UTF-7 NO [SERVERBUG] before the server sees it (see the doc comment)`)
	}
	if !strings.HasPrefix(status, "BAD") && !strings.HasPrefix(status, "NO") || !strings.Contains(status, "UTF-7") {
		t.Errorf(`CREATE "z&AOQA5A": %s, want BAD or NO saying it is not modified UTF-7`, status)
	}
	if _, status := rc.cmd("%s", `LIST "" "z&AOQ*"`); strings.Contains(status, "SERVERBUG") || strings.HasPrefix(status, "OK") {
		t.Errorf(`LIST with a pattern that is not modified UTF-7: %s, want BAD or NO`, status)
	}
	okLines(rc, "ENABLE UTF8=ACCEPT")
	okLines(rc, `CREATE "R&D"`)
	okLines(rc, `CREATE "x&AOQ-"`)
	wantLines(rc, `LIST "" "R*"`, `* LIST (\HasNoChildren) "/" "R&D"`)
	wantLines(rc, `LIST "" "x*"`, `* LIST (\HasNoChildren) "/" "x&AOQ-"`)
}
