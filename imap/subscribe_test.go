package imap_test

import (
	"slices"
	"strings"
	"testing"
)

// okLines runs cmd, taken as is (it may hold "%"), which must succeed,
// and returns its untagged responses.
func okLines(rc *rawClient, cmd string) []string {
	rc.t.Helper()
	return rc.ok("%s", cmd)
}

// wantLines checks that the untagged responses to cmd are exactly want,
// in order.
func wantLines(rc *rawClient, cmd string, want ...string) {
	rc.t.Helper()
	if got := okLines(rc, cmd); !slices.Equal(got, want) {
		rc.t.Errorf("%s:\n got %q\nwant %q", cmd, got, want)
	}
}

// TestSubscriptions: subscriptions are names apart from the folders (RFC
// 3501 6.3.6), over the wire: new folders start unsubscribed but the
// default ones; DELETE leaves the subscription, which LIST (SUBSCRIBED)
// shows with \NonExistent and LSUB with \Noselect; RENAME moves it;
// CHILDINFO only for parents not selected themselves (RFC 5258 3.5); LSUB
// with LSUB's attributes only (RFC 3501 6.3.9).
func TestSubscriptions(t *testing.T) {
	e := newEnv(t)
	rc := e.raw()
	okLines(rc, `CREATE "Work/Projects/Alpha"`)
	okLines(rc, `CREATE "Lists"`)
	defaults := []string{
		`* LIST (\HasNoChildren \Subscribed \Archive) "/" "Archive"`,
		`* LIST (\HasNoChildren \Subscribed \Drafts) "/" "Drafts"`,
		`* LIST (\HasNoChildren \Subscribed) "/" INBOX`,
		`* LIST (\HasNoChildren \Subscribed \Junk) "/" "Junk"`,
		`* LIST (\HasNoChildren \Subscribed \Sent) "/" "Sent"`,
		`* LIST (\HasNoChildren \Subscribed \Trash) "/" "Trash"`,
	}
	// Only the folders made with the user start subscribed.
	wantLines(rc, `LIST (SUBSCRIBED) "" "*"`, defaults...)

	// DELETE leaves the subscription: the name shows \NonExistent.
	okLines(rc, `SUBSCRIBE "Lists"`)
	okLines(rc, `SUBSCRIBE "Work/Projects/Alpha"`)
	okLines(rc, `DELETE "Lists"`)
	wantLines(rc, `LIST (SUBSCRIBED) "" "*"`,
		defaults[0], defaults[1], defaults[2], defaults[3],
		`* LIST (\NonExistent \Subscribed) "/" "Lists"`,
		defaults[4], defaults[5],
		`* LIST (\HasNoChildren \Subscribed) "/" "Work/Projects/Alpha"`)
	// LIST-STATUS has no STATUS for a name without a folder.
	for _, l := range okLines(rc, `LIST (SUBSCRIBED) "" "L*" RETURN (STATUS (MESSAGES))`) {
		if strings.HasPrefix(l, "* STATUS") {
			t.Errorf("STATUS of a subscribed name without a folder: %q", l)
		}
	}
	// A plain LIST shows folders only.
	wantLines(rc, `LIST "" "L*" RETURN (SUBSCRIBED)`)
	wantLines(rc, `LIST "" "Work/*" RETURN (SUBSCRIBED)`,
		`* LIST (\HasChildren) "/" "Work/Projects"`,
		`* LIST (\HasNoChildren \Subscribed) "/" "Work/Projects/Alpha"`)

	// RECURSIVEMATCH: CHILDINFO for a parent that is not subscribed and
	// whose subscribed child the pattern does not list.
	wantLines(rc, `LIST (SUBSCRIBED RECURSIVEMATCH) "" "W%"`,
		`* LIST (\HasChildren) "/" "Work" (CHILDINFO ("SUBSCRIBED"))`)
	wantLines(rc, `LIST (SUBSCRIBED RECURSIVEMATCH) "" "Work*"`,
		`* LIST (\HasNoChildren \Subscribed) "/" "Work/Projects/Alpha"`)
	okLines(rc, `SUBSCRIBE "Work"`)
	wantLines(rc, `LIST (SUBSCRIBED RECURSIVEMATCH) "" "W%"`,
		`* LIST (\HasChildren \Subscribed) "/" "Work"`)
	okLines(rc, `UNSUBSCRIBE "Work"`)

	// LSUB: LSUB's attributes, \Noselect for a name without a folder and
	// for an unsubscribed parent that "%" stops at.
	wantLines(rc, `LSUB "" "*"`,
		`* LSUB () "/" "Archive"`, `* LSUB () "/" "Drafts"`, `* LSUB () "/" INBOX`, `* LSUB () "/" "Junk"`,
		`* LSUB (\Noselect) "/" "Lists"`,
		`* LSUB () "/" "Sent"`, `* LSUB () "/" "Trash"`,
		`* LSUB () "/" "Work/Projects/Alpha"`)
	wantLines(rc, `LSUB "" "W%"`, `* LSUB (\Noselect) "/" "Work"`)
	wantLines(rc, `LSUB "" "Work/%"`, `* LSUB (\Noselect) "/" "Work/Projects"`)
	wantLines(rc, `LSUB "" "Work/%/%"`, `* LSUB () "/" "Work/Projects/Alpha"`)
	wantLines(rc, `LSUB "" "Work"`)
	wantLines(rc, `LSUB "Work" "%"`, `* LSUB (\Noselect) "/" "Work/Projects"`)

	// A subscribed name whose parent is gone too: RECURSIVEMATCH lists
	// the parent \NonExistent with CHILDINFO, LSUB "%" with \Noselect.
	okLines(rc, `CREATE "Old/Box"`)
	okLines(rc, `SUBSCRIBE "Old/Box"`)
	okLines(rc, `DELETE "Old/Box"`)
	okLines(rc, `DELETE "Old"`)
	wantLines(rc, `LIST (SUBSCRIBED RECURSIVEMATCH) "" "O%"`, `* LIST (\NonExistent) "/" "Old" (CHILDINFO ("SUBSCRIBED"))`)
	wantLines(rc, `LIST (SUBSCRIBED RECURSIVEMATCH) "" "O%" RETURN (CHILDREN)`, `* LIST (\NonExistent \HasNoChildren) "/" "Old" (CHILDINFO ("SUBSCRIBED"))`)
	wantLines(rc, `LIST (SUBSCRIBED) "" "O%"`)
	wantLines(rc, `LSUB "" "O%"`, `* LSUB (\Noselect) "/" "Old"`)
	wantLines(rc, `LSUB "" "O*"`, `* LSUB (\Noselect) "/" "Old/Box"`)
	okLines(rc, `UNSUBSCRIBE "Old/Box"`)

	// SUBSCRIBE needs a mailbox; UNSUBSCRIBE does not.
	if _, status := rc.cmd("%s", `SUBSCRIBE "Nope"`); !strings.HasPrefix(status, "NO [NONEXISTENT]") {
		t.Errorf("SUBSCRIBE of a missing mailbox: %s", status)
	}
	okLines(rc, `UNSUBSCRIBE "Nope"`)
	okLines(rc, `UNSUBSCRIBE "Lists"`)
	wantLines(rc, `LSUB "" "L*"`)

	// RENAME moves the subscriptions of the folder and those below it.
	okLines(rc, `RENAME "Work" "Job"`)
	wantLines(rc, `LSUB "" "Work*"`)
	wantLines(rc, `LSUB "" "Job*"`, `* LSUB () "/" "Job/Projects/Alpha"`)
	// A new folder is unsubscribed, whatever its parents are.
	okLines(rc, `CREATE "Job/Projects/Beta"`)
	wantLines(rc, `LSUB "" "Job*"`, `* LSUB () "/" "Job/Projects/Alpha"`)
}
