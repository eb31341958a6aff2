package imap_test

import (
	"slices"
	"strings"
	"testing"
)

// TestMailboxNameInvalid: a mailbox name that can be no folder's (an
// empty level, a wildcard) is answered NO [CANNOT] with the reason, and
// CREATE makes nothing of it, not even its parents. (Control characters
// never get this far: the command reader answers them BAD, as it does
// names that are not modified UTF-7, see TestMailboxNameUTF7.)
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

// TestMailboxNameUTF7 checks mailbox names and LIST patterns that are not
// valid modified UTF-7 (RFC 3501 5.1.3) or hold a control character, in
// every command that takes one: go-imap v2.0.0-beta.8 would answer them
// NO [SERVERBUG] as it decodes them, so the command reader answers them
// BAD first, and nothing of the command runs. After ENABLE UTF8=ACCEPT
// names are UTF-8 (RFC 6855 3): non-ASCII ones pass, and only control
// characters and what is not UTF-8 are refused.
func TestMailboxNameUTF7(t *testing.T) {
	e := newEnv(t)
	e.deliver("one")
	rc := e.raw()
	okLines(rc, `CREATE "Work"`)
	okLines(rc, `SELECT INBOX`)
	const bad = "BAD Invalid mailbox name: "
	for _, tc := range []struct{ cmd, why string }{
		{`CREATE "z&AOQA5A"`, `"&" not closed by "-"`},
		{`CREATE z&AOQA5A`, `"&" not closed by "-"`},
		{"CREATE {8+}\r\nz&AOQA5A", `"&" not closed by "-"`},
		{`CREATE "z&AOQ*-"`, "not modified base64"},
		{`CREATE "z&AGEAYgBj-"`, "printable US-ASCII"},
		{`CREATE "z&AOQ-&AOQ-"`, "right after another"},
		{`CREATE "z&2D0-"`, "UTF-16"},
		{"CREATE \"zB\xc3\xbccher\"", "8-bit"},
		{"CREATE \"z\tb\"", "control character"},
		{`CREATE "z&AAE-"`, "control character"},
		{`DELETE "z&"`, "UTF-7"},
		{`RENAME "Work" "z&"`, "UTF-7"},
		{`RENAME "z&" "Work2"`, "UTF-7"},
		{`SELECT "z&"`, "UTF-7"},
		{`EXAMINE "z&"`, "UTF-7"},
		{`STATUS "z&" (MESSAGES)`, "UTF-7"},
		{`SUBSCRIBE "z&"`, "UTF-7"},
		{`UNSUBSCRIBE "z&"`, "UTF-7"},
		{"APPEND \"z&\" (\\Seen) {3+}\r\nabc", "UTF-7"},
		{`LIST "" "z&AOQ*"`, "UTF-7"},
		{`LIST "" z&AOQ*`, "UTF-7"},
		{`LIST "z&" "*"`, "UTF-7"},
		{`LIST (SUBSCRIBED) "" ("INBOX" "z&")`, "UTF-7"},
		{`LSUB "" "z&"`, "UTF-7"},
		{`LSUB "z&" "*"`, "UTF-7"},
		{`COPY 1 "z&"`, "UTF-7"},
		{`MOVE 1 "z&"`, "UTF-7"},
		{`UID COPY 1:* "z&"`, "UTF-7"},
		{`UID MOVE 1 "z&"`, "UTF-7"},
	} {
		_, status := rc.cmd("%s", tc.cmd)
		if !strings.HasPrefix(status, bad) || !strings.Contains(status, tc.why) {
			t.Errorf("%q: %s, want %s...%s...", tc.cmd, status, bad, tc.why)
		}
	}
	got := okLines(rc, `LIST "" "*"`)
	if i := slices.IndexFunc(got, func(l string) bool { return strings.Contains(l, `"z`) }); i >= 0 {
		t.Errorf("a refused command left %q", got[i])
	}
	if !slices.ContainsFunc(got, func(l string) bool { return strings.HasSuffix(l, `"Work"`) }) {
		t.Errorf("a refused RENAME moved Work: %q", got)
	}
	if u := okLines(rc, `STATUS INBOX (MESSAGES)`); !slices.Equal(u, []string{`* STATUS INBOX (MESSAGES 1)`}) {
		t.Errorf("a refused MOVE moved a message: %q", u)
	}

	// Modified UTF-7 passes, as does a LIST-EXTENDED pattern list.
	okLines(rc, `CREATE "Caf&AOk-"`)
	okLines(rc, `CREATE &ZeVnLIqe-/&2D3eAA-`)
	wantLines(rc, `LIST "" "Caf&AOk-"`, `* LIST (\HasNoChildren) "/" "Caf&AOk-"`)
	wantLines(rc, `LIST (SPECIAL-USE) "" ("Caf&AOk-" "&ZeVnLIqe-/%")`)
	wantLines(rc, `LIST "" ("Caf&AOk-" "&ZeVnLIqe-/%")`, `* LIST (\HasNoChildren) "/" "Caf&AOk-"`, `* LIST (\HasNoChildren) "/" "&ZeVnLIqe-/&2D3eAA-"`)

	// After UTF8=ACCEPT: UTF-8.
	okLines(rc, "ENABLE UTF8=ACCEPT")
	okLines(rc, "CREATE \"B\xc3\xbccher\"")
	wantLines(rc, `LIST "" "B*"`, "* LIST (\\HasNoChildren) \"/\" \"B\xc3\xbccher\"")
	for _, tc := range []struct{ cmd, why string }{
		{"CREATE \"z\xff\"", "not UTF-8"},
		{"CREATE \"z\xc3\"", "not UTF-8"},
		{"CREATE \"z\x01\"", "control character"},
		{"LIST \"\" \"z\x7f*\"", "control character"},
	} {
		_, status := rc.cmd("%s", tc.cmd)
		if !strings.HasPrefix(status, bad) || !strings.Contains(status, tc.why) {
			t.Errorf("%q: %s, want %s...%s...", tc.cmd, status, bad, tc.why)
		}
	}

	// "&" is then a character too (RFC 6855 3), but go-imap v2.0.0-beta.8
	// still decodes "&...-" in names, answers "R&D" NO [SERVERBUG] itself,
	// and writes "&" as "&-"; nothing in Session or the command reader
	// mends that, so while it does, this part skips, naming the
	// limitation.
	t.Run("ampersand after UTF8=ACCEPT", func(t *testing.T) {
		parent := rc.t
		rc.t = t
		defer func() { rc.t = parent }()
		if _, status := rc.cmd("%s", `CREATE "R&D"`); strings.HasPrefix(status, "NO [SERVERBUG]") {
			t.Skip(`known limitation: after UTF8=ACCEPT go-imap beta.8 still decodes modified UTF-7 and answers "R&D" NO [SERVERBUG] (see the package doc)`)
		}
		okLines(rc, `CREATE "x&AOQ-"`)
		wantLines(rc, `LIST "" "R*"`, `* LIST (\HasNoChildren) "/" "R&D"`)
		wantLines(rc, `LIST "" "x*"`, `* LIST (\HasNoChildren) "/" "x&AOQ-"`)
	})
}
