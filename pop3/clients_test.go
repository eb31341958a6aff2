package pop3_test

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mailsys/mailsys/pop3"
)

// Real clients: Python's poplib, curl and fetchmail (installed by .ci/run)
// fetch a mailbox of varied messages, which must come back byte for byte.

// poplibScript fetches every message into a directory with poplib
// (POP3, POP3 with STLS, or POP3_SSL), writes each one back with CRLF line
// endings, deletes them all and quits. It prints the STAT, UIDL and CAPA
// results.
const poplibScript = `
import os, poplib, ssl, sys
poplib._MAXLINE = 1 << 22  # the long-lines message has lines of 20,000 octets
mode, host, port, user, password, out = sys.argv[1:7]
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
if mode == "ssl":
    p = poplib.POP3_SSL(host, int(port), context=ctx)
else:
    p = poplib.POP3(host, int(port))
    if mode == "stls":
        p.stls(context=ctx)
caps = p.capa()
p.user(user)
p.pass_(password)
n, size = p.stat()
uidl = [u.decode() for u in p.uidl()[1]]
for i in range(1, n + 1):
    resp, lines, octets = p.retr(i)
    with open(os.path.join(out, str(i)), "wb") as f:
        f.write(b"\r\n".join(lines) + b"\r\n")
resp, lines, octets = p.top(n, 0)
print("top", len(lines))
for i in range(1, n + 1):
    p.dele(i)
print("quit", p.quit().decode())
print("stat", n, size)
print("uidl", ",".join(uidl))
print("capa", ",".join(sorted(caps)))
`

func TestPoplib(t *testing.T) {
	python, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not installed")
	}
	for _, mode := range []string{"plain", "stls", "ssl"} {
		t.Run(mode, func(t *testing.T) {
			cfg := pop3.Config{}
			if mode != "plain" {
				cfg.TLS = selfSigned(t)
			}
			e := newEnv(t, cfg)
			msgs := variedMessages()
			total := 0
			for _, m := range msgs {
				e.deliver(m.body)
				total += len(m.body)
			}
			addr := e.addr
			if mode == "ssl" {
				addr = e.tls
			}
			host, port, _ := net.SplitHostPort(addr)
			out := t.TempDir()
			res, err := exec.Command(python, "-c", poplibScript, mode, host, port, testUser, testPass, out).CombinedOutput()
			if err != nil {
				t.Fatalf("poplib: %v\n%s", err, res)
			}
			for i, m := range msgs {
				got, err := os.ReadFile(filepath.Join(out, fmt.Sprint(i+1)))
				if err != nil {
					t.Fatal(err)
				}
				if want := onTheWire(m.body); !bytes.Equal(got, want) {
					t.Errorf("message %s: poplib got %d bytes, want %d%s", m.name, len(got), len(want), firstDiff(got, want))
				}
			}
			report := string(res)
			uids := e.uids()
			if len(uids) != 0 {
				t.Errorf("INBOX holds %v after poplib deleted everything", uids)
			}
			for _, want := range []string{
				fmt.Sprintf("stat %d %d\n", len(msgs), total),
				fmt.Sprintf("uidl 1 %d.1,2 %d.2,", e.inbox.UIDValidity, e.inbox.UIDValidity),
				"top 3\n", // the 1 MiB one: two header lines and the blank line
				"quit +OK",
				"capa AUTH-RESP-CODE,IMPLEMENTATION,PIPELINING,RESP-CODES,SASL,TOP,UIDL,USER\n",
			} {
				if !strings.Contains(report, want) {
					t.Errorf("poplib's report lacks %q:\n%s", want, report)
				}
			}
		})
	}
}

// firstDiff describes where a and b first differ.
func firstDiff(a, b []byte) string {
	n := min(len(a), len(b))
	for i := range n {
		if a[i] != b[i] {
			return fmt.Sprintf("; first difference at %d: %q vs %q", i, a[i:min(i+20, len(a))], b[i:min(i+20, len(b))])
		}
	}
	return fmt.Sprintf("; one is a prefix of the other, up to %d", n)
}

// TestCurl fetches each message with curl's pop3:// URLs (RETR), over
// plain POP3 with AUTH PLAIN (with and without an initial response), over
// STLS and over implicit TLS, and compares the bytes.
func TestCurl(t *testing.T) {
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Skip("curl not installed")
	}
	tlsEnv := newEnv(t, pop3.Config{TLS: selfSigned(t)})
	plainEnv := newEnv(t, pop3.Config{})
	msgs := variedMessages()
	for _, m := range msgs {
		tlsEnv.deliver(m.body)
		plainEnv.deliver(m.body)
	}
	for _, v := range []struct {
		name string
		url  string
		args []string
	}{
		{"sasl-plain", "pop3://" + plainEnv.addr, nil},
		{"sasl-ir", "pop3://" + plainEnv.addr, []string{"--sasl-ir"}},
		{"stls", "pop3://" + tlsEnv.addr, []string{"--ssl-reqd", "--insecure"}},
		{"pop3s", "pop3s://" + tlsEnv.tls, []string{"--insecure"}},
	} {
		t.Run(v.name, func(t *testing.T) {
			for i, m := range msgs {
				args := append(slices.Clone(v.args), "-sS", "--user", testUser+":"+testPass, fmt.Sprintf("%s/%d", v.url, i+1))
				got, err := exec.Command(curl, args...).Output()
				if err != nil {
					t.Fatalf("curl %s: %v", m.name, err)
				}
				if want := onTheWire(m.body); !bytes.Equal(got, want) {
					t.Errorf("message %s: curl got %d bytes, want %d%s", m.name, len(got), len(want), firstDiff(got, want))
				}
			}
		})
	}
	// Without TLS, a server without InsecureAuth refuses the password.
	out, err := exec.Command(curl, "-sS", "--user", testUser+":"+testPass, "pop3://"+tlsEnv.addr+"/1").CombinedOutput()
	if err == nil {
		t.Errorf("curl logged in without TLS on a server without InsecureAuth:\n%s", out)
	}
}

// TestFetchmail runs fetchmail against the server: it fetches every
// message over STLS, hands each to an MDA that writes it to a file, and
// deletes them.
func TestFetchmail(t *testing.T) {
	fetchmail, err := exec.LookPath("fetchmail")
	if err != nil {
		t.Skip("fetchmail not installed (.ci/run installs it)")
	}
	e := newEnv(t, pop3.Config{TLS: selfSigned(t)}) // fetchmail goes for STLS
	msgs := variedMessages()
	for _, m := range msgs {
		e.deliver(m.body)
	}
	host, port, _ := net.SplitHostPort(e.addr)
	home, out := t.TempDir(), t.TempDir()
	rc := filepath.Join(home, "fetchmailrc")
	conf := fmt.Sprintf("set no syslog\nset invisible\npoll %s protocol POP3 port %s auth password uidl\n"+
		"  user %q there with password %q is root here\n"+
		"  mda \"cat > %s/msg.$$\" norewrite no stripcr sslproto tls1.2+ no sslcertck\n", host, port, testUser, testPass, out)
	if err := os.WriteFile(rc, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(fetchmail, "-f", rc, "--nosyslog", "-v", "--limit", "0")
	cmd.Env = append(os.Environ(), "HOME="+home, "FETCHMAILHOME="+home)
	res, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("fetchmail: %v\n%s", err, res)
	}
	files, _ := filepath.Glob(filepath.Join(out, "msg.*"))
	var got [][]byte
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, b)
	}
	if len(got) != len(msgs) {
		t.Fatalf("fetchmail delivered %d messages, want %d\n%s", len(got), len(msgs), res)
	}
	for _, m := range msgs {
		want := onTheWire(m.body)
		switch m.name {
		case "long-lines":
			// fetchmail cuts lines at its 8 KiB buffer (and mangles the
			// cut): only that the message arrived is checked.
			want = want[:len("Subject: long lines\r\n")]
			if !slices.ContainsFunc(got, func(b []byte) bool { return bytes.HasPrefix(b, want) }) {
				t.Errorf("message %s not delivered", m.name)
			}
			continue
		case "header-only":
			want = append(want, "\r\n"...) // fetchmail ends the header with a blank line
		}
		if !slices.ContainsFunc(got, func(b []byte) bool { return bytes.Equal(b, want) }) {
			t.Errorf("message %s: no file holds it as sent", m.name)
			for _, b := range got {
				if bytes.Contains(b, m.body[:min(len(m.body), 30)]) {
					t.Logf("closest: %d bytes, want %d%s", len(b), len(want), firstDiff(b, want))
				}
			}
		}
	}
	if uids := e.uids(); len(uids) != 0 {
		t.Errorf("INBOX holds %v after fetchmail", uids)
	}
}
