package logname

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestCut(t *testing.T) {
	if got := Cut("bob@example.test"); got != "bob@example.test" {
		t.Errorf("a short name was changed: %q", got)
	}
	if got := Cut(strings.Repeat("x", 12_000)); len(got) != Max {
		t.Errorf("a 12,000-byte name kept at %d bytes", len(got))
	}
	long := strings.Repeat("x", Max-1) + "é" // the rune straddles the limit
	if got := Cut(long); len(got) != Max-1 || !utf8.ValidString(got) {
		t.Errorf("cut inside a rune: %d bytes, valid %v", len(got), utf8.ValidString(got))
	}
}
