package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestSmall runs the whole benchmark on small counts, so that it keeps
// working as the package changes.
func TestSmall(t *testing.T) {
	var out bytes.Buffer
	if code := run([]string{"-dir", t.TempDir(), "-users", "300", "-messages", "2000", "-workers", "4"}, &out); code != 0 {
		t.Fatalf("exit %d:\n%s", code, out.String())
	}
	for _, want := range []string{"login, cache warm", "STATUS (Folder) at", "FETCH 1:* (FLAGS) stream: 2000 messages", "MOVE of"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}
