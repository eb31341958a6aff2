package main

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

// TestMain lets the test binary act as the benchmark's child process: run
// re-executes the running binary with MSBENCH_CHILD=1, which here is the
// test binary.
func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		os.Exit(child(os.Args[1:], os.Stdout))
	}
	os.Exit(m.Run())
}

func TestQuick(t *testing.T) {
	var out bytes.Buffer
	rc := run([]string{"-quick", "-index", "2000", "-dir", t.TempDir()}, &out)
	t.Logf("output:\n%s", out.String())
	if rc != 0 {
		t.Fatalf("run returned %d", rc)
	}
	lines := strings.Split(strings.TrimRight(out.String(), "\n"), "\n")
	last := lines[len(lines)-1]
	if !strings.HasPrefix(last, "ratio_vs_file_per_message=") {
		t.Fatalf("last line is %q, want ratio_vs_file_per_message=<x>", last)
	}
}
