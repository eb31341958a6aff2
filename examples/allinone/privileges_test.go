package main

import (
	"bufio"
	"crypto/tls"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// buildBinary builds the program into a temporary directory.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "allinone")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	return bin
}

// startBinary runs bin with args and waits for its ready line; it is
// stopped at the end of the test.
func startBinary(t *testing.T, bin string, args ...string) *exec.Cmd {
	t.Helper()
	return startCmd(t, exec.Command(bin, args...))
}

// startCmd starts cmd, the program, and waits for its ready line; it is
// stopped at the end of the test.
func startCmd(t *testing.T, cmd *exec.Cmd) *exec.Cmd {
	t.Helper()
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() })
	ready := make(chan struct{})
	var mu sync.Mutex
	var logs strings.Builder
	go func() {
		sc := bufio.NewScanner(stderr)
		once := sync.Once{}
		for sc.Scan() {
			mu.Lock()
			logs.WriteString(sc.Text() + "\n")
			mu.Unlock()
			if strings.Contains(sc.Text(), "ready") {
				once.Do(func() { close(ready) })
			}
		}
	}()
	select {
	case <-ready:
	case <-time.After(30 * time.Second):
		mu.Lock()
		defer mu.Unlock()
		t.Fatalf("no ready line:\n%s", logs.String())
	}
	return cmd
}

// TestRunAs starts the real program as root with -run-as nobody: once it
// serves, every uid and gid of the process is nobody's, the data
// directory is nobody's and private, and mail is received and read.
func TestRunAs(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Skip("no user nobody")
	}
	bin := buildBinary(t)
	// nobody must reach the data directory: a parent it may pass through.
	parent, err := os.MkdirTemp("", "runas")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(parent) })
	if err := os.Chmod(parent, 0o711); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(parent, "data")
	smtpAddr, popAddr := freeAddr(t), freeAddr(t)
	cmd := startBinary(t, bin, "-data", data, "-run-as", "nobody", "-smtp", smtpAddr, "-submission", "", "-submissions", "",
		"-imap", "", "-imaps", "", "-pop3", "", "-pop3s", popAddr, "-user", "ann@example.test:pw")

	status, err := os.ReadFile("/proc/" + itoa(cmd.Process.Pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, field := range []string{"Uid", "Gid"} {
		m := regexp.MustCompile(`(?m)^` + field + `:\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)$`).FindStringSubmatch(string(status))
		want := nobody.Uid
		if field == "Gid" {
			want = nobody.Gid
		}
		if m == nil || m[1] != want || m[2] != want || m[3] != want || m[4] != want {
			t.Fatalf("%s of the serving process: %v, want %s everywhere\n%s", field, m, want, status)
		}
	}
	if m := regexp.MustCompile(`(?m)^Groups:[ \t]*(.*)$`).FindStringSubmatch(string(status)); m == nil || strings.TrimSpace(m[1]) != "" {
		t.Fatalf("supplementary groups kept: %v", m)
	}

	c, err := smtp.Dial(smtpAddr)
	if err != nil {
		t.Fatal(err)
	}
	msg := "From: bob@example.net\r\nSubject: as nobody\r\n\r\nDelivered by an unprivileged server.\r\n"
	if err := c.SendMail("bob@example.net", []string{"ann@example.test"}, strings.NewReader(msg)); err != nil {
		t.Fatalf("send: %v", err)
	}
	c.Quit()
	var body string
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(body, "unprivileged server"); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("message not readable over POP3: %q", body)
		}
		pc, err := tls.Dial("tcp", popAddr, &tls.Config{InsecureSkipVerify: true})
		if err != nil {
			t.Fatal(err)
		}
		body = pop3Talk(t, pc, "USER ann@example.test\r\nPASS pw\r\nRETR 1\r\nQUIT\r\n")
		pc.Close()
	}

	uid, gid := atoi(nobody.Uid), atoi(nobody.Gid)
	err = filepath.WalkDir(data, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := os.Lstat(path)
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		if int(st.Uid) != uid || int(st.Gid) != gid {
			t.Errorf("%s belongs to %d:%d, not nobody", path, st.Uid, st.Gid)
		}
		if fi.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s is %v: readable by others", path, fi.Mode().Perm())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestRefusesRoot: as root, without -run-as or -allow-root, the program
// will not serve a non-loopback address.
func TestRefusesRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	l, err := net.Listen("tcp", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	out, err := exec.Command(buildBinary(t), "-data", t.TempDir(), "-smtp", addr, "-submission", "", "-submissions", "",
		"-imap", "", "-imaps", "", "-pop3", "", "-pop3s", "").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "as root") {
		t.Fatalf("served %s as root: %v\n%s", addr, err, out)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}
