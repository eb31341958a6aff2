package imap_test

import "testing"

// TestListRoot: LIST with an empty mailbox name answers the hierarchy
// delimiter and the root name of the reference (RFC 3501 6.3.8, RFC 9051
// 6.3.9), which Mutt asks for to learn the delimiter: the reference up to
// its first delimiter, as UW-IMAP and Dovecot answer. go-imap hands the
// server no pattern at all for it. An extended LIST's "" matches nothing,
// and so does LSUB's.
func TestListRoot(t *testing.T) {
	e := newEnv(t)
	rc := e.raw()
	okLines(rc, `CREATE "Work/Later"`)
	wantLines(rc, `LIST "" ""`, `* LIST (\Noselect) "/" ""`)
	wantLines(rc, `LIST "foo" ""`, `* LIST (\Noselect) "/" ""`)
	wantLines(rc, `LIST "Work/Later" ""`, `* LIST (\Noselect) "/" "Work/"`)
	wantLines(rc, `LIST "" "" RETURN (CHILDREN)`, `* LIST (\Noselect) "/" ""`)
	wantLines(rc, `LIST (SUBSCRIBED) "" ""`)
	wantLines(rc, `LSUB "" ""`)
}
