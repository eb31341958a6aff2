package main

import (
	"bufio"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// dialFrom connects to addr from the local address src (any 127.x
// address is this machine's) and returns the connection and its first
// line, or "" and the error if there is none.
func dialFrom(t *testing.T, src, addr string) (net.Conn, string, error) {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, "", err
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	c.SetReadDeadline(time.Time{})
	if err != nil {
		c.Close()
		return nil, line, err
	}
	return c, strings.TrimSpace(line), nil
}

// TestConnectionCaps runs the real program with a limit of 512 open
// files: the bound over every listener defaults below it, so past 256
// connections a client is answered busy and closed instead of the server
// running out of descriptors, and it serves again once connections close.
// The bound per address is per listener: twenty SMTP sessions from one
// address do not keep it from IMAP.
func TestConnectionCaps(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	bin := buildBinary(t)
	smtpAddr, imapAddr := freeAddr(t), freeAddr(t)
	// bash's ulimit sets the hard limit too, which Go would otherwise
	// raise the soft one to.
	cmd := exec.Command("bash", "-c", `ulimit -n 512 && exec "$0" "$@"`, bin, "-data", t.TempDir(), "-smtp", smtpAddr,
		"-submission", "", "-submissions", "", "-imap", imapAddr, "-imaps", "", "-pop3", "", "-pop3s", "", "-insecure-auth")
	startCmd(t, cmd)

	// One address: 20 SMTP sessions, the 21st refused, IMAP still served.
	var open []net.Conn
	defer func() {
		for _, c := range open {
			c.Close()
		}
	}()
	for i := range 21 {
		c, line, err := dialFrom(t, "127.0.0.1", smtpAddr)
		if i < 20 {
			if err != nil || !strings.HasPrefix(line, "220 ") {
				t.Fatalf("SMTP session %d from one address: %q, %v", i+1, line, err)
			}
			open = append(open, c)
			continue
		}
		if c != nil {
			c.Close()
		}
		if !strings.HasPrefix(line, "421 4.7.0") {
			t.Fatalf("21st SMTP session from one address: %q, %v; want 421 4.7.0", line, err)
		}
	}
	c, line, err := dialFrom(t, "127.0.0.1", imapAddr)
	if err != nil || !strings.HasPrefix(line, "* OK") {
		t.Fatalf("IMAP from an address with 20 SMTP sessions: %q, %v", line, err)
	}
	open = append(open, c)

	// Many addresses: fill the server to its bound (256 with 512 files).
	served, refused := len(open), 0
	var last string
	for a := 2; refused == 0 && a < 40; a++ {
		for range 20 {
			c, line, err := dialFrom(t, "127.0.1."+itoa(a), smtpAddr)
			if err == nil && strings.HasPrefix(line, "220 ") {
				open = append(open, c)
				served++
				continue
			}
			if c != nil {
				c.Close()
			}
			last = line
			refused++
			break
		}
	}
	if served != 256 || !strings.HasPrefix(last, "421 4.7.0") {
		t.Fatalf("%d connections served, then %q; want 256, then 421 4.7.0", served, last)
	}
	if _, line, _ := dialFrom(t, "127.0.2.1", imapAddr); !strings.HasPrefix(line, "* BYE") {
		t.Fatalf("IMAP past the bound: %q; want * BYE", line)
	}
	for _, c := range open[:10] {
		c.Close()
	}
	open = open[10:]
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		c, line, _ := dialFrom(t, "127.0.2.2", imapAddr)
		if c != nil {
			c.Close()
		}
		if strings.HasPrefix(line, "* OK") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not serving again after connections closed: %q", line)
		}
	}
}
