package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestSmall runs the benchmark in miniature, so that it keeps working: three
// nodes in this process, a few messages and sessions.
func TestSmall(t *testing.T) {
	var out bytes.Buffer
	args := []string{"-dir", t.TempDir(), "-clients", "2", "-messages", "40", "-sessions", "20", "-calls", "20", "-users", "3", "-dir-users", "200", "-ha-runs", "1", "-failover-runs", "0", "-time-limit", "2m"}
	if code := run(args, &out); code != 0 {
		t.Fatalf("exit %d:\n%s", code, out.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if !strings.HasPrefix(lines[len(lines)-1], "ratio_remote_vs_local=") || !strings.Contains(out.String(), "bytes per user") || !strings.Contains(out.String(), "ratio_with_standby=") {
		t.Fatalf("unexpected output:\n%s", out.String())
	}
}
