package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestSmall runs the benchmark on a few messages, so that it keeps working.
func TestSmall(t *testing.T) {
	var out bytes.Buffer
	if code := run([]string{"-dir", t.TempDir(), "-messages", "200", "-senders", "8"}, &out); code != 0 {
		t.Fatalf("exit %d:\n%s", code, out.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if !strings.HasPrefix(lines[len(lines)-1], "ratio_vs_direct=") {
		t.Fatalf("unexpected output:\n%s", out.String())
	}
}
