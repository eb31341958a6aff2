package main

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-msgauth/dkim"
	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/mailsys/mailsys/mta/queue"
)

// TestOutboundFlags: each outbound flag reaches the mailsys.Config that
// allinone opens: -transport's domains in lower case in
// Outbound.Transports, the smart host's route with the password read
// from its file (its line end cut), the switches as Disable fields.
func TestOutboundFlags(t *testing.T) {
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "pw")
	os.WriteFile(pwFile, []byte("s3cret: with spaces\r\n"), 0o600)

	o, err := parseFlags(nil)
	if err != nil {
		t.Fatal(err)
	}
	if oc := o.cfg.Outbound; oc.Transports != nil || oc.SmartHost != nil || oc.SmartHostDomains != nil ||
		o.cfg.DisableOutbound || o.cfg.DisableDKIM || o.cfg.DisableVerify {
		t.Errorf("defaults: %+v, DisableOutbound %v, DisableDKIM %v, DisableVerify %v", oc, o.cfg.DisableOutbound, o.cfg.DisableDKIM, o.cfg.DisableVerify)
	}

	o, err = parseFlags([]string{"-transport", "example.net=127.0.0.1:2525", "-transport", "Example.ORG.=[2001:db8::5]:25",
		"-smarthost", "smtp.example.com:465", "-smarthost-user", "me@example.com", "-smarthost-password-file", pwFile,
		"-smarthost-tls", "implicit", "-smarthost-domains", "A.example, b.example",
		"-outbound=false", "-dkim=false", "-verify=false"})
	if err != nil {
		t.Fatal(err)
	}
	c := o.cfg
	for _, tc := range []struct {
		name      string
		got, want any
	}{
		{"-transport", c.Outbound.Transports, map[string]queue.Route{"example.net": {Addr: "127.0.0.1:2525"}, "example.org": {Addr: "[2001:db8::5]:25"}}},
		{"-smarthost...", c.Outbound.SmartHost, &queue.Route{Addr: "smtp.example.com:465", Username: "me@example.com", Password: "s3cret: with spaces", ImplicitTLS: true}},
		{"-smarthost-domains", c.Outbound.SmartHostDomains, []string{"a.example", "b.example"}},
		{"-outbound=false", c.DisableOutbound, true},
		{"-dkim=false", c.DisableDKIM, true},
		{"-verify=false", c.DisableVerify, true},
	} {
		if !reflect.DeepEqual(tc.got, tc.want) {
			t.Errorf("%s: %+v, want %+v", tc.name, tc.got, tc.want)
		}
	}

	// STARTTLS by default, and no credentials.
	o, err = parseFlags([]string{"-smarthost", "10.0.0.1:25"})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := o.cfg.Outbound.SmartHost, (&queue.Route{Addr: "10.0.0.1:25"}); !reflect.DeepEqual(got, want) || o.cfg.Outbound.SmartHostDomains != nil {
		t.Errorf("-smarthost alone: %+v %q, want %+v and all domains", got, o.cfg.Outbound.SmartHostDomains, want)
	}
}

// TestOutboundFlagProblems: bad outbound values are refused, each problem
// naming its flag.
func TestOutboundFlagProblems(t *testing.T) {
	dir := t.TempDir()
	pw, empty, twoLines := filepath.Join(dir, "pw"), filepath.Join(dir, "empty"), filepath.Join(dir, "two")
	os.WriteFile(pw, []byte("pw\n"), 0o600)
	os.WriteFile(empty, []byte("\n"), 0o600)
	os.WriteFile(twoLines, []byte("pw\nmore\n"), 0o600)
	sh := []string{"-smarthost", "smtp.example.com:587"}
	for _, tc := range []struct {
		args []string
		says string
	}{
		{[]string{"-transport", "x=y"}, `invalid value "x=y" for flag -transport: "y": want HOST:PORT`},
		{[]string{"-transport", "example.net=nohost"}, `"nohost": want HOST:PORT`},
		{[]string{"-transport", "example.net"}, "want DOMAIN=HOST:PORT"},
		{[]string{"-transport", "exa mple.net=10.0.0.1:25"}, `"exa mple.net" is not a domain name`},
		{[]string{"-transport", "example.net=10.0.0.1:0"}, `"10.0.0.1:0": port "0" out of range`},
		{[]string{"-transport", "example.net=bad/host:25"}, `"bad/host" is not a host name or an IP address`},
		{[]string{"-transport", "example.net=10.0.0.1:25", "-transport", "EXAMPLE.net=10.0.0.2:25"}, "example.net given twice"},
		{[]string{"-smarthost", "smtp.example.com"}, `invalid value "smtp.example.com" for flag -smarthost: "smtp.example.com": want HOST:PORT`},
		{append(sh, "-smarthost-tls", "ssl"), `"ssl": want implicit or starttls`},
		{append(sh, "-smarthost-domains", "a.example,b c"), `"b c" is not a domain name`},
		{append(sh, "-smarthost-user", "me", "-smarthost-password-file", filepath.Join(dir, "none")), "-smarthost-password-file: open " + filepath.Join(dir, "none") + ": no such file"},
		{append(sh, "-smarthost-user", "me"), "-smarthost-user: without -smarthost-password-file"},
		{append(sh, "-smarthost-password-file", pw), "-smarthost-password-file: without -smarthost-user"},
		{append(sh, "-smarthost-user", "me", "-smarthost-password-file", empty), empty + ": empty"},
		{append(sh, "-smarthost-user", "me", "-smarthost-password-file", twoLines), twoLines + ": more than one line"},
		{[]string{"-smarthost-user", "me", "-smarthost-password-file", pw}, "-smarthost-user: without -smarthost"},
		{[]string{"-smarthost-domains", "a.example"}, "-smarthost-domains: without -smarthost"},
		{[]string{"-smarthost-tls", "implicit"}, "-smarthost-tls: without -smarthost"},
	} {
		_, err := parseFlags(tc.args)
		var ue usageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("%q: %v; want a usage error saying %q", tc.args, err, tc.says)
		}
	}
}

// TestOutboundFile: the file's [outbound], [dkim] and [verify] keys reach
// the Config; -transport replaces outbound.transports and the smart
// host's flags override its keys one by one; the file's problems name the
// key, with its line.
func TestOutboundFile(t *testing.T) {
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "pw")
	os.WriteFile(pwFile, []byte("from the file\n"), 0o600)
	file := filepath.Join(dir, "mailsys.toml")
	os.WriteFile(file, fmt.Appendf(nil, `
[outbound]
enabled = true
dir = "/var/spool/mailsys"
transports = { "Example.NET" = "10.0.0.5:25", "example.org" = "relay.example.org:2525" }
[outbound.smarthost]
address = "smtp.example.com:587"
user = "me@example.com"
password_file = %q
tls = "starttls"
domains = ["Example.com"]
[dkim]
enabled = false
dir = "/etc/mailsys/dkim"
[verify]
enabled = false
`, pwFile), 0o600)

	o, err := parseFlags([]string{"-config", file})
	if err != nil {
		t.Fatal(err)
	}
	c := o.cfg
	for _, tc := range []struct {
		name      string
		got, want any
	}{
		{"outbound.dir", c.Outbound.Dir, "/var/spool/mailsys"},
		{"outbound.transports", c.Outbound.Transports, map[string]queue.Route{"example.net": {Addr: "10.0.0.5:25"}, "example.org": {Addr: "relay.example.org:2525"}}},
		{"outbound.smarthost", c.Outbound.SmartHost, &queue.Route{Addr: "smtp.example.com:587", Username: "me@example.com", Password: "from the file"}},
		{"outbound.smarthost.domains", c.Outbound.SmartHostDomains, []string{"example.com"}},
		{"outbound.enabled", c.DisableOutbound, false},
		{"dkim.enabled", c.DisableDKIM, true},
		{"dkim.dir", c.DKIM.Dir, "/etc/mailsys/dkim"},
		{"verify.enabled", c.DisableVerify, true},
	} {
		if !reflect.DeepEqual(tc.got, tc.want) {
			t.Errorf("%s: %+v, want %+v", tc.name, tc.got, tc.want)
		}
	}

	o, err = parseFlags([]string{"-config", file, "-transport", "example.com=10.0.0.9:25", "-smarthost-tls", "implicit", "-dkim", "-outbound=false"})
	if err != nil {
		t.Fatal(err)
	}
	c = o.cfg
	if want := map[string]queue.Route{"example.com": {Addr: "10.0.0.9:25"}}; !reflect.DeepEqual(c.Outbound.Transports, want) {
		t.Errorf("-transport over the file: %v, want %v", c.Outbound.Transports, want)
	}
	if want := (&queue.Route{Addr: "smtp.example.com:587", Username: "me@example.com", Password: "from the file", ImplicitTLS: true}); !reflect.DeepEqual(c.Outbound.SmartHost, want) {
		t.Errorf("-smarthost-tls over the file: %+v, want %+v", c.Outbound.SmartHost, want)
	}
	if c.DisableDKIM || !c.DisableOutbound || !c.DisableVerify {
		t.Errorf("-dkim, -outbound=false over the file: DisableDKIM %v, DisableOutbound %v, DisableVerify %v", c.DisableDKIM, c.DisableOutbound, c.DisableVerify)
	}

	for _, tc := range []struct {
		file string
		says []string
	}{
		{`[outbound]
transports = { "example.net" = "nohost", "x" = "y", "a b" = "10.0.0.1:25", "c" = 25 }
[outbound.smarthost]
address = "smtp.example.com"
tls = "ssl"
domains = "example.com"
`, []string{
			`F:2: outbound.transports: "a b": "a b" is not a domain name (ASCII, xn--... for others); "c": want a string, not 25; "example.net": "nohost": want HOST:PORT; "x": "y": want HOST:PORT`,
			`F:4: outbound.smarthost.address: "smtp.example.com": want HOST:PORT`,
			`F:5: outbound.smarthost.tls: "ssl": want implicit or starttls`,
			`F:6: outbound.smarthost.domains: want an array of strings, not "example.com"`,
		}},
		{"[outbound]\ntransports = { \"example.net\" = \"10.0.0.1:25\", \"EXAMPLE.NET\" = \"10.0.0.2:25\" }\n",
			[]string{`F:2: outbound.transports: "example.net": example.net given twice`}},
		{"[outbound]\ntransports = [\"example.net=10.0.0.1:25\"]\n",
			[]string{`F:2: outbound.transports: want a table of "domain" = "HOST:PORT", not an array`}},
		{"[outbound.smarthost]\naddress = \"smtp.example.com:587\"\nuser = \"me\"\n",
			[]string{"F: outbound.smarthost.user: without outbound.smarthost.password_file"}},
		{"[outbound.smarthost]\naddress = \"smtp.example.com:587\"\nuser = \"me\"\npassword_file = \"/nonexistent/pw\"\n",
			[]string{"F: outbound.smarthost.password_file: open /nonexistent/pw: no such file"}},
		{"[outbound.smarthost]\nuser = \"me\"\ndomains = [\"example.com\"]\n", []string{
			"F: outbound.smarthost.user: without outbound.smarthost.address",
			"F: outbound.smarthost.domains: without outbound.smarthost.address",
		}},
		{"[dkim]\nenabled = \"no\"\n[verify]\nenabld = false\n", []string{
			"F:2: dkim.enabled: want true or false",
			"F:4: verify.enabld: unknown key",
		}},
	} {
		os.WriteFile(file, []byte(tc.file), 0o600)
		_, err := parseFlags([]string{"-config", file})
		if err == nil {
			t.Errorf("%s: accepted", tc.file)
			continue
		}
		for _, s := range tc.says {
			if s = strings.ReplaceAll(s, "F", file); !strings.Contains(err.Error(), s) {
				t.Errorf("the problems do not say %q:\n%v", s, err)
			}
		}
		if n := strings.Count(err.Error(), file+":"); n != len(tc.says) {
			t.Errorf("%d problems said, want %d:\n%v", n, len(tc.says), err)
		}
	}
	// A flag's value is the flag's problem, even over the file's key.
	os.WriteFile(file, []byte("[outbound.smarthost]\naddress = \"smtp.example.com:587\"\n"), 0o600)
	if _, err := parseFlags([]string{"-config", file, "-smarthost-user", "me"}); err == nil ||
		!strings.Contains(err.Error(), "-smarthost-user: without -smarthost-password-file") {
		t.Errorf("-smarthost-user over a file without password_file: %v", err)
	}
}

// received is a message the test's MX host took.
type received struct {
	from string
	to   []string
	data []byte
}

// mxBackend is a go-smtp backend that keeps every message it is given.
type mxBackend struct {
	mu   sync.Mutex
	msgs []received
}

func (b *mxBackend) NewSession(*smtp.Conn) (smtp.Session, error) { return &mxSession{b: b}, nil }

// wait returns the first message, waiting up to d for it.
func (b *mxBackend) wait(t *testing.T, d time.Duration, logs *syncBuffer) received {
	t.Helper()
	for deadline := time.Now().Add(d); ; time.Sleep(20 * time.Millisecond) {
		b.mu.Lock()
		if len(b.msgs) > 0 {
			defer b.mu.Unlock()
			return b.msgs[0]
		}
		b.mu.Unlock()
		if time.Now().After(deadline) {
			t.Fatalf("the MX host received nothing in %v:\n%s", d, logs.String())
		}
	}
}

type mxSession struct {
	b   *mxBackend
	msg received
}

func (s *mxSession) Reset()        { s.msg = received{} }
func (s *mxSession) Logout() error { return nil }
func (s *mxSession) Mail(from string, _ *smtp.MailOptions) error {
	s.msg.from = from
	return nil
}
func (s *mxSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.msg.to = append(s.msg.to, to)
	return nil
}
func (s *mxSession) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.msg.data = data
	s.b.mu.Lock()
	s.b.msgs = append(s.b.msgs, s.msg)
	s.b.mu.Unlock()
	return nil
}

// startMX runs an SMTP server on loopback, without TLS, that keeps what
// it receives; it stops at the end of the test.
func startMX(t *testing.T) (*mxBackend, string) {
	t.Helper()
	be := &mxBackend{}
	s := smtp.NewServer(be)
	s.Domain = "mx.example.net"
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(l)
	t.Cleanup(func() { s.Close() })
	return be, l.Addr().String()
}

// submit sends msg from alice@example.test, logged in over STARTTLS on
// the submission port, to rcpt.
func submit(addr, rcpt, msg string) error {
	c, err := smtp.DialStartTLS(addr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Auth(sasl.NewPlainClient("", "alice@example.test", "secret")); err != nil {
		return fmt.Errorf("AUTH: %w", err)
	}
	if err := c.SendMail("alice@example.test", []string{rcpt}, strings.NewReader(msg)); err != nil {
		return err
	}
	return c.Quit()
}

// dkimLines matches the DKIM records allinone prints, as zone file lines.
var dkimLines = regexp.MustCompile(`(?m)^(\S+)\. IN TXT ((?:"[^"]*" ?)+)$`)

// TestOutbound runs the program with -transport sending example.net's
// mail to a test MX host, and a user submits a message to
// bob@example.net: the host receives it, with a DKIM signature of the
// user's domain that verifies against the records the program printed at
// start. With -dkim=false it arrives unsigned and no records are printed;
// with -outbound=false submission refuses the recipient.
func TestOutbound(t *testing.T) {
	bin := buildBinary(t)
	msg := "From: Alice <alice@example.test>\r\nTo: bob@example.net\r\nSubject: out\r\nDate: Mon, 01 Jun 2026 10:00:00 +0000\r\nMessage-ID: <1@example.test>\r\n\r\nGoes out.\r\n"
	start := func(t *testing.T, flags ...string) (mx *mxBackend, sub, stdout string, logs *syncBuffer, data string) {
		mx, mxAddr := startMX(t)
		data, sub = t.TempDir(), freeAddr(t)
		args := append([]string{"-data", data, "-hostname", "mail.example.test", "-user", "alice@example.test:secret",
			"-transport", "example.net=" + mxAddr}, noListeners...)
		_, stdout, logs = startProgram(t, bin, append(append(args, "-submission", sub), flags...)...)
		return mx, sub, stdout, logs, data
	}

	t.Run("signed", func(t *testing.T) {
		mx, sub, stdout, logs, data := start(t)
		if n := strings.Count(stdout, "DKIM records to publish in the DNS of example.test:\n"); n != 1 {
			t.Errorf("the DKIM records' heading printed %d times, want once:\n%s", n, stdout)
		}
		txt := map[string]string{}
		for _, m := range dkimLines.FindAllStringSubmatch(stdout, -1) {
			var v strings.Builder // the record's character strings, joined
			for _, s := range regexp.MustCompile(`"([^"]*)"`).FindAllStringSubmatch(m[2], -1) {
				v.WriteString(s[1])
			}
			txt[m[1]] = v.String()
		}
		if len(txt) != 2 {
			t.Fatalf("%d DKIM records printed, want an ed25519 and an RSA one:\n%s", len(txt), stdout)
		}
		for name, v := range txt {
			if !strings.HasSuffix(name, "._domainkey.example.test") || !strings.HasPrefix(v, "v=DKIM1; k=") {
				t.Errorf("DKIM record %s: %q", name, v)
			}
		}
		if want := "dir=" + filepath.Join(data, "queue"); !regexp.MustCompile(`msg="outbound queue" ` + regexp.QuoteMeta(want) + ` dkim=true transports="?example.net=127.0.0.1:\d+`).MatchString(logs.String()) {
			t.Errorf("no outbound queue line with %s and the transport:\n%s", want, logs.String())
		}

		if err := submit(sub, "bob@example.net", msg); err != nil {
			t.Fatalf("submission to bob@example.net: %v", err)
		}
		got := mx.wait(t, 20*time.Second, logs)
		if got.from != "alice@example.test" || len(got.to) != 1 || got.to[0] != "bob@example.net" {
			t.Errorf("envelope %q -> %q, want alice@example.test -> bob@example.net", got.from, got.to)
		}
		if !bytes.Contains(got.data, []byte("\r\n\r\nGoes out.\r\n")) {
			t.Errorf("the body is not there:\n%s", got.data)
		}
		vs, err := dkim.VerifyWithOptions(bytes.NewReader(got.data), &dkim.VerifyOptions{LookupTXT: func(name string) ([]string, error) {
			if v, ok := txt[strings.TrimSuffix(name, ".")]; ok {
				return []string{v}, nil
			}
			return nil, &net.DNSError{Err: "no such record", Name: name, IsNotFound: true}
		}})
		if err != nil {
			t.Fatal(err)
		}
		if len(vs) != 2 {
			t.Fatalf("%d DKIM signatures, want 2:\n%s", len(vs), got.data)
		}
		for _, v := range vs {
			if v.Err != nil || v.Domain != "example.test" {
				t.Errorf("DKIM signature of d=%s: %v, want d=example.test verified against the printed records", v.Domain, v.Err)
			}
		}
	})

	t.Run("-dkim=false", func(t *testing.T) {
		mx, sub, stdout, logs, _ := start(t, "-dkim=false")
		if strings.Contains(stdout, "DKIM") || dkimLines.MatchString(stdout) {
			t.Errorf("DKIM records printed without signing:\n%s", stdout)
		}
		if err := submit(sub, "bob@example.net", msg); err != nil {
			t.Fatalf("submission to bob@example.net: %v", err)
		}
		if got := mx.wait(t, 20*time.Second, logs); bytes.Contains(bytes.ToLower(got.data), []byte("dkim-signature:")) {
			t.Errorf("signed with -dkim=false:\n%s", got.data)
		}
	})

	t.Run("-outbound=false", func(t *testing.T) {
		_, sub, stdout, logs, data := start(t, "-outbound=false")
		if strings.Contains(stdout, "DKIM") {
			t.Errorf("DKIM records printed without an outbound queue:\n%s", stdout)
		}
		if !strings.Contains(logs.String(), "no outbound queue") {
			t.Errorf("the logs do not say the queue is off:\n%s", logs.String())
		}
		var se *smtp.SMTPError
		if err := submit(sub, "bob@example.net", msg); !errors.As(err, &se) || se.Code != 550 {
			t.Errorf("submission to bob@example.net without a queue: %v, want 550", err)
		}
		if _, err := os.Stat(filepath.Join(data, "queue")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("a queue directory was made: %v", err)
		}
	})
}
