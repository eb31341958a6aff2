package imap_test

import (
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/mailsys/mailsys/userdata"
)

// announced checks that every keyword a FETCH in lines shows was named in
// a FLAGS before it (starting from those of flags), and returns the
// keywords known at the end.
func announced(t *testing.T, what string, flags []string, lines []string) []string {
	t.Helper()
	known := map[string]bool{}
	for _, f := range flags {
		known[strings.ToLower(f)] = true
	}
	list := regexp.MustCompile(`\(([^()]*)\)`)
	for _, l := range lines {
		switch {
		case strings.HasPrefix(l, "* FLAGS "):
			clear(known)
			for _, f := range strings.Fields(list.FindStringSubmatch(l)[1]) {
				known[strings.ToLower(f)] = true
			}
		case strings.Contains(l, " FETCH "):
			i := strings.Index(l, "FLAGS (")
			if i < 0 {
				continue
			}
			for _, f := range strings.Fields(list.FindStringSubmatch(l[i:])[1]) {
				if !strings.HasPrefix(f, `\`) && !known[strings.ToLower(f)] {
					t.Errorf("%s: %q shows keyword %s, not yet in a FLAGS (%q)", what, l, f, lines)
				}
			}
		}
	}
	var out []string
	for k := range known {
		out = append(out, k)
	}
	return out
}

// selectFlags runs SELECT and returns the keywords of its FLAGS and
// whether PERMANENTFLAGS has them and \*.
func selectFlags(t *testing.T, rc *rawClient, mailbox string) (flags []string, perm string) {
	t.Helper()
	u := rc.ok("SELECT %s", mailbox)
	f := find(u, `^\* FLAGS `)
	p := find(u, `PERMANENTFLAGS`)
	if len(f) != 1 || len(p) != 1 {
		t.Fatalf("SELECT %s: %q", mailbox, u)
	}
	return strings.Fields(strings.Trim(strings.TrimPrefix(f[0], "* FLAGS "), "()")), p[0]
}

// TestKeywordsAnnounced: SELECT lists the folder's keywords in FLAGS and
// PERMANENTFLAGS, and a keyword first used by STORE, APPEND or COPY is
// announced with FLAGS to every session on the folder before any FETCH
// that shows it, the STORE's own FETCH included.
func TestKeywordsAnnounced(t *testing.T) {
	e := newEnv(t)
	for i := range 3 {
		e.deliver(fmt.Sprintf("m%d", i))
	}
	a, b := e.raw(), e.raw()
	flagsA, perm := selectFlags(t, a, "INBOX")
	if len(flagsA) != 5 || !strings.Contains(perm, `\*`) {
		t.Errorf("SELECT of a folder without keywords: FLAGS %q, %q", flagsA, perm)
	}
	flagsB, _ := selectFlags(t, b, "INBOX")

	// b's STORE: b's own FETCH comes after the FLAGS naming $Label7.
	u := b.ok(`STORE 1 +FLAGS ($Label7)`)
	if index(u, `^\* FLAGS .*\$Label7`) < 0 || index(u, `^\* 1 FETCH .*\$Label7`) < index(u, `^\* FLAGS `) {
		t.Errorf("STORE of a new keyword: %q, want * FLAGS with it, then * 1 FETCH", u)
	}
	flagsB = announced(t, "b's STORE", flagsB, u)
	// a, told nothing yet, fetches: the keyword it has not been told of
	// is not shown at first, then FLAGS and a FETCH with it follow.
	u = append(a.ok("FETCH 1 FLAGS"), a.ok("NOOP")...)
	flagsA = announced(t, "a's FETCH after b's STORE", flagsA, u)
	if i := index(u, `^\* FLAGS .*\$Label7`); i < 0 || index(u[i:], `^\* 1 FETCH .*\$Label7`) < 0 {
		t.Errorf("a after b's STORE: %q, want * FLAGS with $Label7, then * 1 FETCH with it", u)
	}

	// An APPEND with a new keyword into the selected folder.
	msg := "Subject: kw\r\n\r\nbody\r\n"
	tag := a.send("APPEND INBOX (Work $Junk) {%d+}\r\n%s", len(msg), msg)
	u, status := a.wait(tag)
	if !strings.HasPrefix(status, "OK") {
		t.Fatalf("APPEND: %s", status)
	}
	u = append(u, a.ok("NOOP")...)
	u = append(u, a.ok("FETCH 1:* FLAGS")...)
	flagsA = announced(t, "a after its APPEND", flagsA, u)
	u = append(b.ok("FETCH 1:* FLAGS"), b.ok("NOOP")...)
	flagsB = announced(t, "b after a's APPEND", flagsB, u)
	for _, kw := range []string{"work", "$junk", "$label7"} {
		if !strings.Contains(strings.Join(flagsA, " "), kw) || !strings.Contains(strings.Join(flagsB, " "), kw) {
			t.Errorf("keyword %s not announced to both: a %q, b %q", kw, flagsA, flagsB)
		}
	}

	// COPY into a selected folder.
	a.ok("CREATE Other")
	c := e.raw()
	flagsC, _ := selectFlags(t, c, "Other")
	b.ok(`STORE 2 +FLAGS.SILENT (Copied)`)
	b.ok("COPY 1:2 Other")
	u = append(c.ok("NOOP"), c.ok("FETCH 1:* FLAGS")...)
	announced(t, "c after the COPY into its folder", flagsC, u)

	// A new SELECT lists them all, in FLAGS and PERMANENTFLAGS.
	flags, perm := selectFlags(t, e.raw(), "INBOX")
	for _, kw := range []string{"$Label7", "Work", "$Junk", "Copied"} {
		if !strings.Contains(strings.Join(flags, " "), kw) || !strings.Contains(perm, kw) {
			t.Errorf("SELECT: FLAGS %q, %s; want %s in both", flags, perm, kw)
		}
	}
	if !strings.Contains(perm, `\*`) {
		t.Errorf("PERMANENTFLAGS %s without \\*", perm)
	}

	// Past the limit a new keyword is refused, and \* goes.
	var kws []string
	for i := 4; i < userdata.MaxFolderKeywords; i++ {
		kws = append(kws, fmt.Sprintf("k%d", i))
	}
	for len(kws) > 0 {
		n := min(len(kws), 60)
		b.ok("STORE 3 FLAGS.SILENT (%s)", strings.Join(kws[:n], " "))
		kws = kws[n:]
	}
	if _, status := b.cmd("STORE 3 +FLAGS (OneTooMany)"); !strings.HasPrefix(status, "NO") {
		t.Errorf("STORE of a keyword past the folder's limit: %s, want NO", status)
	}
	if _, perm := selectFlags(t, e.raw(), "INBOX"); strings.Contains(perm, `\*`) {
		t.Errorf("PERMANENTFLAGS of a folder at its keyword limit: %s, want no \\*", perm)
	}
}

// TestMoveWithinMailbox: MOVE into the selected folder (RFC 6851 3.3)
// gives the messages new UIDs: COPYUID, then the EXPUNGEs and the EXISTS.
func TestMoveWithinMailbox(t *testing.T) {
	e := newEnv(t)
	for i := range 3 {
		e.deliver(fmt.Sprintf("m%d", i))
	}
	a := e.raw()
	a.ok("SELECT INBOX")
	u := a.ok("MOVE 1 INBOX")
	if index(u, `^\* OK \[COPYUID \d+ 1 4\]`) != 0 || index(u, `^\* 1 EXPUNGE$`) < 0 || index(u, `^\* 3 EXISTS$`) < 0 {
		t.Errorf("MOVE 1 INBOX: %q, want COPYUID 1 4, * 1 EXPUNGE and * 3 EXISTS", u)
	}
	if u := a.ok("UID SEARCH ALL"); len(u) != 1 || strings.TrimSpace(u[0]) != "* SEARCH 2 3 4" {
		t.Errorf("UID SEARCH ALL after MOVE: %q, want 2 3 4", u)
	}
	u = a.ok("UID MOVE 2:3 INBOX")
	if index(u, `^\* OK \[COPYUID \d+ 2:3 5:6\]`) != 0 {
		t.Errorf("UID MOVE 2:3 INBOX: %q, want COPYUID 2:3 5:6", u)
	}
	if u := a.ok("UID SEARCH ALL"); len(u) != 1 || strings.TrimSpace(u[0]) != "* SEARCH 4 5 6" {
		t.Errorf("UID SEARCH ALL after UID MOVE: %q, want 4 5 6", u)
	}
	if u := a.ok("COPY 1 INBOX"); index(u, `^\* 4 EXISTS$`) < 0 {
		t.Errorf("COPY 1 INBOX: %q, want * 4 EXISTS", u)
	}
}
