package main

import (
	"bytes"
	"os"
	"regexp"
	"strconv"
	"testing"
)

func TestMain(m *testing.M) {
	serveIfChild()
	os.Exit(m.Run())
}

// TestSmall runs a short storm, so that the benchmark keeps working. Each
// wrong password costs the server a default-cost argon2id check (64 MiB,
// t=3: about 100 to 300 ms of CPU), so a few attackers already fill the
// limiter.
func TestSmall(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a server process")
	}
	var out bytes.Buffer
	args := []string{"-attackers", "20", "-seconds", "2", "-baseline-seconds", "1", "-users", "20", "-hashed", "2", "-dir", t.TempDir()}
	if code := run(args, &out); code != 0 {
		t.Fatalf("exit %d:\n%s", code, out.String())
	}
	t.Log(out.String())
	m := regexp.MustCompile(`(?m)^peak_rss_mib=\S+ .*legit_ok=(\d+) legit_failed=\d+ .*storm_attempts_per_s=\S+ storm_busy=(\d+) storm_failed=(\d+) storm_errors=\d+\n\z`).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatal("no result line at the end")
	}
	if n, _ := strconv.Atoi(m[1]); n == 0 {
		t.Error("no legitimate login succeeded during the storm")
	}
	busy, _ := strconv.Atoi(m[2])
	failed, _ := strconv.Atoi(m[3])
	if busy+failed == 0 {
		t.Error("no attacker was answered")
	}
}
