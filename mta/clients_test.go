package mta_test

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Real clients from Debian (installed by .ci/run): swaks and curl.

func TestInboundSwaks(t *testing.T) {
	swaks, err := exec.LookPath("swaks")
	if err != nil {
		t.Skip("swaks not installed (.ci/run installs it)")
	}
	s, addr := startInbound(t)
	host, port, _ := net.SplitHostPort(addr)
	out, err := exec.Command(swaks, "--server", host, "--port", port, "--from", "carol@example.net",
		"--to", "u1@example.test", "--header", "Subject: from swaks", "--body", "Hello from swaks.").CombinedOutput()
	if err != nil {
		t.Fatalf("swaks: %v\n%s", err, out)
	}
	if got := inbox(t, s, "u1@example.test", 1); len(got) != 1 || !bytes.Contains(got[0], []byte("Subject: from swaks")) {
		t.Fatalf("u1: %d messages: %q", len(got), got)
	}
	// A relay attempt is refused, and swaks says so with a failing exit.
	out, err = exec.Command(swaks, "--server", host, "--port", port, "--from", "carol@example.net",
		"--to", "someone@elsewhere.test").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "550") {
		t.Fatalf("relay through swaks: %v\n%s", err, out)
	}
}

func TestInboundCurl(t *testing.T) {
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Skip("curl not installed (.ci/run installs it)")
	}
	s, addr := startInbound(t)
	msg := "From: carol@example.net\r\nSubject: from curl\r\n\r\nHello from curl.\r\n"
	file := filepath.Join(t.TempDir(), "msg.txt")
	if err := os.WriteFile(file, []byte(msg), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(curl, "-sS", "smtp://"+addr, "--mail-from", "carol@example.net",
		"--mail-rcpt", "u2@example.test", "--upload-file", file).CombinedOutput()
	if err != nil {
		t.Fatalf("curl: %v\n%s", err, out)
	}
	got := inbox(t, s, "u2@example.test", 1)
	if len(got) != 1 || !bytes.HasSuffix(got[0], []byte(msg)) {
		t.Fatalf("u2: %d messages: %q", len(got), got)
	}
}
