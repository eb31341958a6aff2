package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/mailsys/mailsys"
)

// exitCode runs bin with args and returns its exit status, and what it
// wrote to stdout and to stderr. A program still running after 20 s (it
// took the command line and serves) is killed: -1.
func exitCode(t *testing.T, bin string, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil:
		return -1, stdout.String(), stderr.String()
	case err == nil:
		return 0, stdout.String(), stderr.String()
	case errors.As(err, &ee):
		return ee.ExitCode(), stdout.String(), stderr.String()
	}
	t.Fatal(err)
	return 0, "", ""
}

// noListeners turns every listener off but those given after it.
var noListeners = []string{"-smtp", "", "-submission", "", "-submissions", "", "-imap", "", "-imaps", "", "-pop3", "", "-pop3s", ""}

// TestBadFlags: a command line the program refuses exits with status 2
// and says why, before anything is written: the data directory is not
// made.
func TestBadFlags(t *testing.T) {
	bin := buildBinary(t)
	for _, tc := range []struct {
		args []string
		says string
	}{
		{[]string{"-user", "bad"}, `invalid value "bad" for flag -user: want EMAIL:PASSWORD`},
		{[]string{"-user", "ann@example.test:"}, "want EMAIL:PASSWORD"},
		{[]string{"-user", "ann@:pw"}, `"ann@" is not an address`},
		{[]string{"-user", "a b@example.test:pw"}, `"a b@example.test" is not an address`},
		{[]string{"-any-from", "nobody"}, "want an address or @domain"},
		{[]string{"-tls-cert", "cert.pem"}, "-tls-cert and -tls-key go together"},
		{[]string{"-smtp", "2525"}, `-smtp "2525": want HOST:PORT`},
		{[]string{"-lockout", "-1m"}, "-lockout -1m0s: negative"},
		{[]string{"-password-memory", "-1"}, "-password-memory -1: negative"},
		{[]string{"-hostname", ""}, "-hostname"},
		{[]string{"stray"}, `unexpected argument "stray"`},
		{[]string{"-no-such-flag"}, "flag provided but not defined: -no-such-flag"},
		{[]string{"-transport", "x=y"}, `invalid value "x=y" for flag -transport: "y": want HOST:PORT`},
		{[]string{"-transport", "example.net=nohost"}, `"nohost": want HOST:PORT`},
		{[]string{"-smarthost", "smtp.example.com:587", "-smarthost-user", "u", "-smarthost-password-file", "/nonexistent/pw"},
			"-smarthost-password-file: open /nonexistent/pw: no such file"},
		{[]string{"-smarthost", "smtp.example.com:587", "-smarthost-user", "u"}, "-smarthost-user: without -smarthost-password-file"},
	} {
		data := filepath.Join(t.TempDir(), "data")
		code, _, stderr := exitCode(t, bin, append([]string{"-data", data}, tc.args...)...)
		if code != 2 || !strings.Contains(stderr, tc.says) || !strings.Contains(stderr, "Usage of allinone") {
			t.Errorf("%q: exit %d, want 2 saying %q and the usage:\n%s", tc.args, code, tc.says, stderr)
		}
		if _, err := os.Stat(data); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%q: the data directory was made (%v)", tc.args, err)
		}
	}
}

// TestHelp: -h and -help print the usage and exit 0.
func TestHelp(t *testing.T) {
	bin := buildBinary(t)
	for _, arg := range []string{"-h", "-help", "--help"} {
		data := filepath.Join(t.TempDir(), "data")
		code, _, stderr := exitCode(t, bin, "-data", data, arg)
		if code != 0 || !strings.Contains(stderr, "-hostname string") || strings.Contains(stderr, "help requested") {
			t.Errorf("%s: exit %d, want 0 and the usage alone:\n%s", arg, code, stderr)
		}
		if _, err := os.Stat(data); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s: the data directory was made", arg)
		}
	}
}

// startLogged runs bin with args until its ready line and returns it,
// with what the program printed on stdout by then. The program is
// stopped, as SIGTERM does, at the end of the test.
func startLogged(t *testing.T, bin string, args ...string) (ready, stdout string) {
	t.Helper()
	ready, out, _ := startProgram(t, bin, args...)
	return ready, out
}

// startProgram is startLogged that returns the program's logs too, which
// it goes on writing.
func startProgram(t *testing.T, bin string, args ...string) (ready, stdout string, logs *syncBuffer) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	var out syncBuffer
	logs = &syncBuffer{}
	cmd.Stdout, cmd.Stderr = &out, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		if err := <-exited; err != nil {
			t.Errorf("the program ended with %v:\n%s", err, logs.String())
		}
	})
	re := regexp.MustCompile(`(?m)^.*mailsys ready.*$`)
	deadline := time.After(30 * time.Second)
	for {
		if m := re.FindString(logs.String()); m != "" {
			return m, out.String(), logs
		}
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("the program ended (%v) before its ready line:\n%s", err, logs.String())
		case <-deadline:
			t.Fatalf("no ready line:\n%s", logs.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// TestDemoUser: the demo user is made and printed whenever the UserDB has
// no user: after a refused -user (which wrote nothing), and in a data
// directory whose UserDB exists but is empty; it logs in. A later start
// prints none.
func TestDemoUser(t *testing.T) {
	bin := buildBinary(t)
	for _, prepare := range []string{"refused -user", "empty UserDB"} {
		data := filepath.Join(t.TempDir(), "data")
		switch prepare {
		case "refused -user":
			if code, _, _ := exitCode(t, bin, "-data", data, "-user", "bad"); code != 2 {
				t.Fatalf("-user bad: exit %d", code)
			}
		case "empty UserDB":
			sys, err := mailsys.Open(t.Context(), mailsys.Config{DataDir: data, Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				t.Fatal(err)
			}
			sys.Shutdown(t.Context())
		}
		sub := freeAddr(t)
		args := append([]string{"-data", data}, noListeners...)
		ctx, cancel := context.WithCancel(t.Context())
		cmd := exec.CommandContext(ctx, bin, append(args, "-submissions", sub)...)
		cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
		var out, logs syncBuffer
		cmd.Stdout, cmd.Stderr = &out, &logs
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		for deadline := time.Now().Add(30 * time.Second); !strings.Contains(logs.String(), "mailsys ready"); time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: no ready line:\n%s", prepare, logs.String())
			}
		}
		m := regexp.MustCompile(`demo user: (demo@localhost) password: (\S+)`).FindStringSubmatch(out.String())
		if m == nil {
			t.Fatalf("%s: no demo user printed:\n%s", prepare, out.String())
		}
		c, err := smtp.DialTLS(sub, &tls.Config{InsecureSkipVerify: true})
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Auth(sasl.NewPlainClient("", m[1], m[2])); err != nil {
			t.Errorf("%s: the demo user's login: %v", prepare, err)
		}
		c.Close()
		cancel()
		cmd.Wait()

		// Started again: the user is there, and no new password.
		_, stdout := startLogged(t, bin, append(args, "-submissions", freeAddr(t))...)
		if strings.Contains(stdout, "demo user") {
			t.Errorf("%s: second start printed a demo user again: %s", prepare, stdout)
		}
	}
}

// TestReadyLine: the ready line names each listener's service and
// address, and only the listeners that are on.
func TestReadyLine(t *testing.T) {
	bin := buildBinary(t)
	addrs := map[string]string{"smtp": freeAddr(t), "submission": freeAddr(t), "imaps": freeAddr(t), "pop3": freeAddr(t)}
	args := append([]string{"-data", t.TempDir(), "-user", "ann@example.test:pw"}, noListeners...)
	for k, v := range addrs {
		args = append(args, "-"+k, v)
	}
	ready, _ := startLogged(t, bin, args...)
	for k, v := range addrs {
		if !strings.Contains(ready, " "+k+"="+v) {
			t.Errorf("ready line without %s=%s: %s", k, v, ready)
		}
	}
	for _, k := range []string{"submissions", "imap", "pop3s"} {
		if strings.Contains(ready, " "+k+"=") {
			t.Errorf("ready line names %s, which is off: %s", k, ready)
		}
	}
	if !strings.Contains(ready, `msg="mailsys ready"`) {
		t.Errorf("ready line: %s", ready)
	}
}

// TestCertificate: the self-signed certificate, in the data directory as
// tls-cert.pem, is one that clients which verify can be given to trust:
// Go's and OpenSSL's (through Python, as s-nail and fetchmail use it)
// accept it for localhost, and it covers 127.0.0.1, ::1 and the
// -hostname. One made before, for the -hostname and 127.0.0.1 only, is
// replaced.
func TestCertificate(t *testing.T) {
	bin := buildBinary(t)
	data := t.TempDir()
	old, err := makeCert([]string{"mail.example.test"}, []net.IP{net.IPv4(127, 0, 0, 1).To4()})
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(old.PrivateKey.(*ecdsa.PrivateKey))
	if err != nil {
		t.Fatal(err)
	}
	certFile := filepath.Join(data, "tls-cert.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: old.Certificate[0]}), 0o600)
	os.WriteFile(filepath.Join(data, "tls-key.pem"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)

	subs, smtpAddr := freeAddr(t), freeAddr(t)
	startLogged(t, bin, append(append([]string{"-data", data, "-hostname", "mail.example.test", "-user", "ann@example.test:pw"}, noListeners...),
		"-submissions", subs, "-smtp", smtpAddr)...)
	pemBytes, err := os.ReadFile(certFile)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(pemBytes)
	if block == nil || block.Type != "CERTIFICATE" {
		t.Fatalf("%s is not a PEM certificate", certFile)
	}
	leaf, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if leaf.Equal(old.Leaf) {
		t.Fatal("the old certificate, without localhost, was kept")
	}
	for _, name := range []string{"localhost", "127.0.0.1", "::1", "mail.example.test"} {
		if err := leaf.VerifyHostname(name); err != nil {
			t.Errorf("certificate: %v", err)
		}
	}
	roots := x509.NewCertPool()
	roots.AddCert(leaf)
	for _, name := range []string{"localhost", "127.0.0.1", "mail.example.test"} {
		c, err := tls.Dial("tcp", subs, &tls.Config{RootCAs: roots, ServerName: name})
		if err != nil {
			t.Errorf("TLS with the certificate as the one to trust, for %s: %v", name, err)
			continue
		}
		c.Close()
	}

	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not installed: OpenSSL's verification not tried")
	}
	_, port, _ := net.SplitHostPort(smtpAddr)
	script := `
import smtplib, ssl, sys
ctx = ssl.create_default_context(cafile=sys.argv[2])
ctx.verify_flags |= ssl.VERIFY_X509_STRICT  # the default from Python 3.13
with smtplib.SMTP("localhost", int(sys.argv[1]), timeout=10) as c:
    c.starttls(context=ctx)
    c.ehlo()
print("verified")
`
	if out, err := exec.Command(py, "-c", script, port, certFile).CombinedOutput(); err != nil || !strings.Contains(string(out), "verified") {
		t.Errorf("Python (OpenSSL) STARTTLS verifying localhost against %s: %v\n%s", certFile, err, out)
	}
}
