package imap

import (
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2/imapserver"
)

func TestMatchPattern(t *testing.T) {
	for _, tc := range []struct {
		name, ref, pattern string
		want               bool
	}{
		{"INBOX", "", "*", true},
		{"INBOX", "", "inbox", true},
		{"INBOX/sub", "", "Inbox/%", true},
		{"Work/Later", "", "Work/%", true},
		{"Work/Projects/Alpha", "", "Work/%", false},
		{"Work/Projects/Alpha", "", "Work/*", true},
		{"Work/Projects/Alpha", "Work", "*", true},
		{"Work/Projects/Alpha", "Work/", "%/Alpha", true},
		{"Work", "Work", "*", false},
		{"Lists", "Work", "/Lists", true},
		{"Lists", "", "%", true},
		{"a/b", "", "%", false},
		{"a%b", "", "a%b", true},
		{"", "", "", true},
		{"abc", "", "a*c", true},
		{"abc", "", "a*d", false},
	} {
		if got := matchPattern(tc.name, tc.ref, tc.pattern); got != tc.want {
			t.Errorf("matchPattern(%q, %q, %q) = %v, want %v", tc.name, tc.ref, tc.pattern, got, tc.want)
		}
	}
	// A pattern that makes a backtracking matcher take exponential time.
	name := strings.Repeat("a", 200)
	if matchPattern(name, "", strings.Repeat("*%", 2000)+"b") {
		t.Error("matched a pattern ending in a letter the name lacks")
	}
}

// FuzzMatchPattern checks the matcher against go-imap's backtracking one
// on inputs small enough for it.
func FuzzMatchPattern(f *testing.F) {
	f.Add("Work/Projects/Alpha", "", "Work/%")
	f.Add("INBOX/x", "", "inbox/*")
	f.Add("a/b/c", "a", "%/c")
	f.Add("a%b*c", "", "a%*")
	f.Fuzz(func(t *testing.T, name, ref, pattern string) {
		if len(name) > 24 || len(ref) > 8 || len(pattern) > 12 {
			return
		}
		got := matchPattern(name, ref, pattern)
		if strings.HasPrefix(name, "INBOX") || strings.Contains(strings.ToUpper(ref+pattern), "INBOX") {
			return // go-imap's matcher knows nothing of INBOX's case
		}
		if want := imapserver.MatchList(name, '/', ref, pattern); got != want {
			t.Fatalf("matchPattern(%q, %q, %q) = %v, go-imap says %v", name, ref, pattern, got, want)
		}
	})
}
