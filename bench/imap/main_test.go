package main

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

func TestMain(m *testing.M) {
	serveIfChild()
	os.Exit(m.Run())
}

// TestSmall runs the benchmark on a few messages, so that it keeps working.
func TestSmall(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a server process")
	}
	var out bytes.Buffer
	if code := run([]string{"-messages", "200", "-big", "500", "-clients", "3", "-seconds", "1", "-idle", "20", "-dir", t.TempDir()}, &out); code != 0 {
		t.Fatalf("exit %d:\n%s", code, out.String())
	}
	if !strings.Contains(out.String(), "idle_kib_per_conn=") {
		t.Fatalf("no result line:\n%s", out.String())
	}
	t.Log(out.String())
}
