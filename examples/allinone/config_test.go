package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/mailsys/mailsys"
	"github.com/mailsys/mailsys/imap"
	"github.com/mailsys/mailsys/msstore"
	"github.com/mailsys/mailsys/mta"
	"github.com/mailsys/mailsys/mta/queue"
	"github.com/mailsys/mailsys/pop3"
	"github.com/mailsys/mailsys/txlog"
	"github.com/mailsys/mailsys/userdata"
)

// sampleConfig is the Config mailsys.toml says: every default spelled
// out, where it can be.
func sampleConfig() mailsys.Config {
	return mailsys.Config{
		DataDir:           "./mailsys-data",
		Hostname:          "localhost",
		SMTPAddr:          "127.0.0.1:2525",
		SubmissionAddr:    "127.0.0.1:2587",
		SubmissionTLSAddr: "127.0.0.1:2465",
		IMAPAddr:          "127.0.0.1:1143",
		IMAPTLSAddr:       "127.0.0.1:1993",
		POP3Addr:          "127.0.0.1:1110",
		POP3TLSAddr:       "127.0.0.1:1995",
		StoreConfig:       msstore.Config{VolumeSize: 1 << 30, SpoolMemory: 256 << 10, CompactRatio: 0.5},
		UserDBConfig: userdata.Config{
			CacheSize:     256 << 20,
			MemTableSize:  64 << 20,
			LoginCache:    100_000,
			LoginCacheTTL: 10 * time.Minute,
			Argon2:        userdata.DefaultArgon2(),
		},
		TxLogConfig: txlog.Config{SegmentSize: 64 << 20, MaxBodySize: 64 << 20},
		Access: mta.GuardConfig{
			Allow:            []netip.Prefix{},
			Deny:             []netip.Prefix{},
			MaxConnsPerIP:    20,
			AuthFailures:     5,
			AddrAuthFailures: 20,
			AccountFailures:  10,
			AccountDelay:     5 * time.Second,
			AuthWindow:       10 * time.Minute,
			Lockout:          15 * time.Minute,
			MaxTracked:       1 << 16,
		},
		Passwords: userdata.PasswordLimiterConfig{MaxMemory: 512 << 20, MaxWait: 2 * time.Second},
		SMTP: mta.InboundConfig{
			MaxMessageSize:       32 << 20,
			MaxRecipients:        100,
			MaxUnknownRecipients: 20,
			ReadTimeout:          5 * time.Minute,
			DataTimeout:          10 * time.Minute,
			LoginTimeout:         time.Minute,
			MaxSession:           30 * time.Minute,
			WriteTimeout:         time.Minute,
			AnyFrom:              []string{},
		},
		IMAP: imap.Config{
			MaxAppendSize:      64 << 20,
			PreAuthTimeout:     time.Minute,
			PreAuthBytes:       64 << 10,
			IdleTimeout:        30 * time.Minute,
			IdleCommandTimeout: 30 * time.Minute,
		},
		POP3: pop3.Config{
			LoginTimeout:   time.Minute,
			CommandTimeout: 10 * time.Minute,
			MaxSession:     time.Hour,
			WriteTimeout:   time.Minute,
		},
	}
}

// TestSampleConfig: mailsys.toml, as committed, yields the defaults
// spelled out, which Validate accepts, and no domain or user; with its
// examples uncommented ("#key = value" lines), the store's directories,
// the domain and the user too. Between them they have every key there is.
func TestSampleConfig(t *testing.T) {
	o, err := parseFlags([]string{"-config", "mailsys.toml"})
	if err != nil {
		t.Fatal(err)
	}
	if want := sampleConfig(); !reflect.DeepEqual(o.cfg, want) {
		t.Errorf("mailsys.toml gives\n%+v\nwant\n%+v", o.cfg, want)
	}
	cfg := o.cfg
	cfg.TLS = &tls.Config{}
	if err := cfg.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
	if o.certFile != "" || o.keyFile != "" || len(o.domains) > 0 || len(o.fileUsers) > 0 {
		t.Errorf("mailsys.toml gives a certificate %q %q, domains %v, users %v", o.certFile, o.keyFile, o.domains, o.fileUsers)
	}

	sample, err := os.ReadFile("mailsys.toml")
	if err != nil {
		t.Fatal(err)
	}
	examples := regexp.MustCompile(`(?m)^#(\[|[a-z_]+ = )`).ReplaceAll(sample, []byte("$1"))
	// The smart host's password file, which must be there.
	pwFile := filepath.Join(t.TempDir(), "smarthost-password")
	os.WriteFile(pwFile, []byte("smart secret\n"), 0o600)
	examples = regexp.MustCompile(`(?m)^password_file = .*$`).ReplaceAll(examples, fmt.Appendf(nil, "password_file = %q", pwFile))
	file := filepath.Join(t.TempDir(), "examples.toml")
	os.WriteFile(file, examples, 0o600)
	o, err = parseFlags([]string{"-config", file})
	if err != nil {
		t.Fatal(err)
	}
	want := sampleConfig()
	want.StoreConfig.Dirs = []msstore.Dir{{Path: "/disk1/mailsys-store", Weight: 2}, {Path: "/disk2/mailsys-store", Weight: 1, Masked: true}}
	want.Outbound.Transports = map[string]queue.Route{"example.net": {Addr: "10.0.0.5:25"}, "example.com": {Addr: "[2001:db8::5]:2525"}}
	want.Outbound.SmartHost = &queue.Route{Addr: "smtp.example.com:587", Username: "mailsys@example.com", Password: "smart secret"}
	want.Outbound.SmartHostDomains = []string{"example.com", "example.org"}
	if !reflect.DeepEqual(o.cfg, want) {
		t.Errorf("mailsys.toml's examples give\n%+v\nwant\n%+v", o.cfg, want)
	}
	if d := []domainEntry{{"example.org", 10 << 30}}; !slices.Equal(o.domains, d) {
		t.Errorf("domains %v, want %v", o.domains, d)
	}
	if u := []userEntry{{"alice@example.org", "change me"}}; !slices.Equal(o.fileUsers, u) {
		t.Errorf("users %v, want %v", o.fileUsers, u)
	}

	var v any
	md, err := toml.Decode(string(examples), &v)
	if err != nil {
		t.Fatal(err)
	}
	has := map[string]bool{}
	for _, k := range md.Keys() {
		has[k.String()] = true
	}
	for _, k := range keyNames("", reflect.ValueOf(new(options).keys()).Elem()) {
		if !has[k] {
			t.Errorf("mailsys.toml does not show %s", k)
		}
	}
}

// keyNames lists the keys of v, settings as decodeFile takes them, and of
// the tables below, under prefix.
func keyNames(prefix string, v reflect.Value) []string {
	var keys []string
	for i := range v.NumField() {
		k, f := prefix+v.Type().Field(i).Tag.Get("toml"), v.Field(i)
		keys = append(keys, k)
		switch {
		case reflect.PointerTo(f.Type()).Implements(unmarshalerType):
		case f.Type().Implements(tablesType):
			keys = append(keys, keyNames(k+".", reflect.ValueOf(f.Interface().(tables).elements(1)[0]).Elem())...)
		default:
			keys = append(keys, keyNames(k+".", f)...)
		}
	}
	return keys
}

// TestConfigProblems: a file's problems are all said at once, each naming
// the file, the key, and the line where toml knows it, with exit status
// 2, before anything is written.
func TestConfigProblems(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	for _, tc := range []struct {
		file string
		says []string
	}{
		{`data_dir = "DATA"
hostnme = "x"
[listen]
smtp = 25
smpt = "127.0.0.1:25"
imap = "1143"
[store]
volume_size = "1GB"
[[store.dirs]]
path = 3
[[store.dirs]]
pth = "x"
[userdb]
login_cache_ttl = 10
[userdb.argon2]
threads = 300
[access]
allow = ["192.0.2.1", "10.0.0.0/33"]
[imap]
idle_timeout = "-5m"
[frobs]
x = 1
[[domains]]
name = "example.test"
quota = -1
[[users]]
address = "ann@example.test"
password = 5
[[users]]
address = "nobody"
`, []string{
			`F:2: hostnme: unknown key`,
			`F:4: listen.smtp: want a string, not 25`,
			`F:5: listen.smpt: unknown key`,
			`F: listen.imap "1143": want HOST:PORT`,
			`F:8: store.volume_size: "1GB" is not a size`,
			`F: store.dirs[1].path: want a string, not 3`,
			`F: store.dirs[2].pth: unknown key`,
			`F:14: userdb.login_cache_ttl: want a duration, a string such as "5m", not 10`,
			`F:16: userdb.argon2.threads: 300 is out of range`,
			`F:18: access.allow: "10.0.0.0/33" is not a network`,
			`F:20: imap.idle_timeout: "-5m": negative`,
			`F:21: frobs: unknown key`,
			`F: domains[1].quota -1: negative`,
			`F: users[1].password: want a string, not 5`,
			`F: users[2].address: "nobody" is not an address`,
			`F: users[2].password: empty or missing`,
		}},
		{"data_dir = \"DATA\"\n[listen\n", []string{"F:3: expected '.' or ']' to end table name"}},
		{"data_dir = \"DATA\"\nlisten = \"x\"\n[[users]]\nname = \"x\"\nusers = 1\n", []string{
			`F:2: listen: want a table, not "x"`,
			`F: users[1].name: unknown key`,
			`F: users[1].users: unknown key`,
			`F: users[1].address: empty or missing`,
			`F: users[1].password: empty or missing`,
		}},
		{"data_dir = \"DATA\"\n[listen]\nsmtp = \"127.0.0.1:2525\"\nimap = \"127.0.0.1:2525\"\n", []string{"IMAPAddr: 127.0.0.1:2525 is SMTPAddr's address too"}},
	} {
		data := filepath.Join(dir, "data")
		file := filepath.Join(dir, "bad.toml")
		os.WriteFile(file, []byte(strings.ReplaceAll(tc.file, "DATA", data)), 0o600)
		code, _, stderr := exitCode(t, bin, "-config", file)
		if code != 2 {
			t.Errorf("exit %d, want 2:\n%s", code, stderr)
		}
		for _, s := range tc.says {
			if s = strings.ReplaceAll(s, "F", file); !strings.Contains(stderr, s) {
				t.Errorf("the problems do not say %q:\n%s", s, stderr)
			}
		}
		if len(tc.says) > 1 && strings.Count(stderr, file) != len(tc.says) {
			t.Errorf("%d problems said, want %d:\n%s", strings.Count(stderr, file), len(tc.says), stderr)
		}
		if _, err := os.Stat(data); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("the data directory was made (%v)", err)
		}
	}
	code, _, stderr := exitCode(t, bin, "-config", filepath.Join(dir, "none.toml"))
	if code != 2 || !strings.Contains(stderr, "none.toml: no such file") {
		t.Errorf("a missing file: exit %d:\n%s", code, stderr)
	}
}

// TestConfigOverride: the flags given override the file, the file
// overrides the flags' defaults, and the defaults stay where neither
// says anything.
func TestConfigOverride(t *testing.T) {
	file := filepath.Join(t.TempDir(), "mailsys.toml")
	os.WriteFile(file, []byte(`
hostname = "mail.example.test"
[listen]
smtp = "127.0.0.1:25"
submission = ""
imap = "127.0.0.1:143"
[access]
lockout = "1h"
max_conns = 100
[passwords]
max_memory = "1GiB"
max_checks = 4
[smtp]
any_from = ["@example.test"]
max_session = "1h"
[[users]]
address = "ann@example.test"
password = "from the file"
`), 0o600)
	o, err := parseFlags([]string{"-config", file, "-smtp", "127.0.0.1:2525", "-lockout", "5m", "-password-memory", "64",
		"-any-from", "boss@example.test", "-user", "ann@example.test:from the flag", "-imaps", ""})
	if err != nil {
		t.Fatal(err)
	}
	c := o.cfg
	for _, tc := range []struct {
		name      string
		got, want any
	}{
		{"flag over file: -smtp", c.SMTPAddr, "127.0.0.1:2525"},
		{"flag over file: -lockout", c.Access.Lockout, 5 * time.Minute},
		{"flag over file: -password-memory", c.Passwords.MaxMemory, int64(64 << 20)},
		{"flag over file: -any-from", c.SMTP.AnyFrom, []string{"boss@example.test"}},
		{"flag over default: -imaps", c.IMAPTLSAddr, ""},
		{"file over default: hostname", c.Hostname, "mail.example.test"},
		{"file over default: listen.submission", c.SubmissionAddr, ""},
		{"file over default: listen.imap", c.IMAPAddr, "127.0.0.1:143"},
		{"file over default: access.max_conns", c.Access.MaxConns, 100},
		{"file over default: passwords.max_checks", c.Passwords.MaxChecks, 4},
		{"file over default: smtp.max_session", c.SMTP.MaxSession, time.Hour},
		{"default: data_dir", c.DataDir, "./mailsys-data"},
		{"default: listen.pop3", c.POP3Addr, "127.0.0.1:1110"},
		{"default: access.max_conns_per_ip", c.Access.MaxConnsPerIP, 0},
		{"users: the file's, then -user's", slices.Concat(o.fileUsers, []userEntry(o.users)),
			[]userEntry{{"ann@example.test", "from the file"}, {"ann@example.test", "from the flag"}}},
	} {
		if !reflect.DeepEqual(tc.got, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, tc.got, tc.want)
		}
	}
	// A flag's problem is the flag's, the file's is the file's.
	os.WriteFile(file, []byte("[listen]\nsmtp = \"2525\"\n"), 0o600)
	_, err = parseFlags([]string{"-config", file, "-imap", "1143"})
	for _, s := range []string{file + `: listen.smtp "2525"`, `-imap "1143"`} {
		if err == nil || !strings.Contains(err.Error(), s) {
			t.Errorf("parseFlags: %v; want it to say %s", err, s)
		}
	}
}

// TestConfigAccounts runs the program from a file that names a domain
// and users: they log in over IMAP and POP3, with the password -user gave
// where it gave one, and the domain has the file's quota, which a later
// start changes.
func TestConfigAccounts(t *testing.T) {
	data, imapAddr, pop3Addr := t.TempDir(), freeAddr(t), freeAddr(t)
	file := filepath.Join(t.TempDir(), "mailsys.toml")
	os.WriteFile(file, fmt.Appendf(nil, `
data_dir = %q
hostname = "mail.example.test"
insecure_auth = true
[listen]
smtp = ""
submission = ""
submissions = ""
imap = %q
imaps = ""
pop3 = %q
pop3s = ""
[[domains]]
name = "example.test"
quota = "1GiB"
[[users]]
address = "ann@example.test"
password = "ann's"
[[users]]
address = "bob@example.test"
password = "replaced"
`, data, imapAddr, pop3Addr), 0o600)

	logs, stop := runReady(t, "-config", file, "-user", "bob@example.test:bob's")
	ic, err := imapclient.DialInsecure(imapAddr, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := ic.Login("bob@example.test", "bob's").Wait(); err != nil {
		t.Errorf("IMAP LOGIN with -user's password: %v", err)
	}
	ic.Logout().Wait()
	ic.Close()
	pc, err := net.Dial("tcp", pop3Addr)
	if err != nil {
		t.Fatal(err)
	}
	if pop := pop3Talk(t, pc, "USER ann@example.test\r\nPASS ann's\r\nSTAT\r\nQUIT\r\n"); !strings.Contains(pop, "+OK 0 0") {
		t.Errorf("POP3 login with the file's password:\n%s", pop)
	}
	if strings.Contains(logs.String(), "demo@") {
		t.Errorf("a demo user was made:\n%s", logs.String())
	}
	stop()

	quota := func() int64 {
		t.Helper()
		sys, err := mailsys.Open(t.Context(), mailsys.Config{DataDir: data, Hostname: "mail.example.test", Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		defer sys.Shutdown(t.Context())
		d, err := sys.UserDB().Domain(t.Context(), "example.test")
		if err != nil {
			t.Fatal(err)
		}
		return d.Quota
	}
	if q := quota(); q != 1<<30 {
		t.Errorf("domain quota %d, want 1 GiB", q)
	}
	// A later start with another quota: it is changed.
	os.WriteFile(file, fmt.Appendf(nil, "data_dir = %q\n[listen]\nsmtp = %q\nsubmission = \"\"\nsubmissions = \"\"\nimap = \"\"\nimaps = \"\"\npop3 = \"\"\npop3s = \"\"\n[[domains]]\nname = \"example.test\"\nquota = \"2GiB\"\n",
		data, freeAddr(t)), 0o600)
	_, stop = runReady(t, "-config", file)
	stop()
	if q := quota(); q != 2<<30 {
		t.Errorf("domain quota %d after a start with 2 GiB", q)
	}
}

// runReady runs the program with args until its ready line, and returns
// its logs and a function that stops it as SIGTERM does.
func runReady(t *testing.T, args ...string) (*syncBuffer, func()) {
	t.Helper()
	logs := &syncBuffer{}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- run(ctx, args, slog.New(slog.NewTextHandler(logs, nil))) }()
	for deadline := time.Now().Add(20 * time.Second); !strings.Contains(logs.String(), "ready"); time.Sleep(20 * time.Millisecond) {
		select {
		case err := <-done:
			t.Fatalf("run: %v before the ready line:\n%s", err, logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no ready line:\n%s", logs.String())
		}
	}
	return logs, func() {
		t.Helper()
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("run: %v\n%s", err, logs.String())
		}
	}
}
