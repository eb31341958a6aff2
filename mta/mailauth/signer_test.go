package mailauth

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-msgauth/dkim"
	"github.com/mailsys/mailsys/internal/fsutil/fsutiltest"
	"github.com/mailsys/mailsys/mta/resolve"
)

// verifyDKIM checks msg's signatures with go-msgauth against z and
// returns the verifications.
func verifyDKIM(t *testing.T, z *resolve.Static, msg string) []*dkim.Verification {
	t.Helper()
	vs, err := dkim.VerifyWithOptions(strings.NewReader(msg), &dkim.VerifyOptions{LookupTXT: txtFunc(context.Background(), z)})
	if err != nil {
		t.Fatal(err)
	}
	return vs
}

func TestSignVerify(t *testing.T) {
	s := newSigner(t, t.TempDir(), "example.org")
	z := &resolve.Static{}
	publish(t, z, s, "example.org")
	msg := signed(t, s, message("Alice <Alice@Example.ORG>", "Hi Bob,\n\nsee you.\n"))

	vs := verifyDKIM(t, z, msg)
	if len(vs) != 2 {
		t.Fatalf("%d signatures, want 2", len(vs))
	}
	for i, v := range vs {
		if v.Err != nil || v.Domain != "example.org" {
			t.Errorf("signature %d: domain %q, %v; want example.org, valid", i, v.Domain, v.Err)
		}
	}
	sigs := signatures(msg)
	for i, want := range []string{"ed25519-sha256", "rsa-sha256"} {
		tags := sigs[i]
		if tags["a"] != want || tags["c"] != "relaxed/relaxed" || tags["d"] != "example.org" || tags["t"] == "" {
			t.Errorf("signature %d: a=%s c=%s d=%s t=%s; want %s relaxed/relaxed example.org, a time",
				i, tags["a"], tags["c"], tags["d"], tags["t"], want)
		}
		h := strings.Split(strings.ToLower(tags["h"]), ":")
		for _, f := range []string{"to", "subject", "date", "message-id", "mime-version", "content-type"} {
			if !slices.Contains(h, f) {
				t.Errorf("signature %d: h=%s lacks %s", i, tags["h"], f)
			}
		}
		if n := strings.Count(tags["h"], "From"); n != 2 {
			t.Errorf("signature %d: h=%s has From %d times, want 2 (oversigned)", i, tags["h"], n)
		}
		if slices.Contains(h, "cc") || slices.Contains(h, "list-id") {
			t.Errorf("signature %d: h=%s names fields the message lacks", i, tags["h"])
		}
	}
	if !strings.HasSuffix(sigs[0]["s"], "e") || !strings.HasSuffix(sigs[1]["s"], "r") {
		t.Errorf("selectors %s, %s: want the e and the r one", sigs[0]["s"], sigs[1]["s"])
	}
	sigLines := strings.Split(strings.TrimSuffix(msg[:strings.Index(msg, "\r\nFrom: ")+2], "\r\n"), "\r\n")
	for _, line := range sigLines {
		if len(line) > 100 {
			t.Errorf("signature line of %d octets: not folded", len(line))
		}
	}
	if len(sigLines) < 10 {
		t.Errorf("signatures on %d lines: not folded", len(sigLines))
	}

	for name, tamper := range map[string]func(string) string{
		"body":        func(m string) string { return strings.Replace(m, "see you.", "send money.", 1) },
		"subject":     func(m string) string { return strings.Replace(m, "Subject: Hello", "Subject: Urgent", 1) },
		"second From": func(m string) string { return strings.Replace(m, "\r\n\r\n", "\r\nFrom: eve@example.net\r\n\r\n", 1) },
	} {
		for i, v := range verifyDKIM(t, z, tamper(msg)) {
			if v.Err == nil {
				t.Errorf("%s changed: signature %d still verifies", name, i)
			}
		}
	}
}

func TestSignLF(t *testing.T) {
	// A message with LF line ends (as a program may hand it over) is
	// signed as the CRLF one it is on the wire.
	s := newSigner(t, t.TempDir(), "example.org")
	z := &resolve.Static{}
	publish(t, z, s, "example.org")
	lf := strings.ReplaceAll(message("a@example.org", "line 1\nline 2\n"), "\r\n", "\n")
	sig, err := s.Sign(context.Background(), strings.NewReader(lf))
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range verifyDKIM(t, z, sig+strings.ReplaceAll(lf, "\n", "\r\n")) {
		if v.Err != nil {
			t.Errorf("signature %d: %v", i, v.Err)
		}
	}
}

func TestSignNotOurs(t *testing.T) {
	dir := t.TempDir()
	s := newSigner(t, dir, "example.org")
	for name, msg := range map[string]string{
		"foreign domain":  message("eve@example.net", "x"),
		"no From":         strings.Replace(message("a@example.org", "x"), "From: a@example.org\r\n", "", 1),
		"bad From":        message("not an address", "x"),
		"address literal": message("a@[192.0.2.1]", "x"),
	} {
		sig, err := s.Sign(context.Background(), strings.NewReader(msg))
		if sig != "" || err != nil {
			t.Errorf("%s: Sign = %q, %v; want no signature", name, sig, err)
		}
	}
	if _, err := s.Records(context.Background(), "example.net"); !errors.Is(err, ErrUnknownDomain) {
		t.Errorf("Records of a foreign domain: %v, want ErrUnknownDomain", err)
	}
	if err := s.Rotate(context.Background(), "example.net"); !errors.Is(err, ErrUnknownDomain) {
		t.Errorf("Rotate of a foreign domain: %v, want ErrUnknownDomain", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("keys made for no domain of ours: %v", entries)
	}
}

func TestSignDomainsError(t *testing.T) {
	boom := errors.New("directory down")
	s, err := NewSigner(SignerConfig{Dir: t.TempDir(), Logger: quiet,
		Domains: func(context.Context, string) (bool, error) { return false, boom }})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Sign(context.Background(), strings.NewReader(message("a@example.org", "x"))); !errors.Is(err, boom) {
		t.Errorf("Sign: %v, want the Domains error", err)
	}
}

func TestSignFirstAddress(t *testing.T) {
	s := newSigner(t, t.TempDir(), "example.org", "example.com")
	msg := signed(t, s, message("a@Example.com, b@example.org", "x", "Sender: b@example.org"))
	if d := signatures(msg)[0]["d"]; d != "example.com" {
		t.Errorf("d=%s, want the first address's domain, example.com", d)
	}
}

func TestSignerReopen(t *testing.T) {
	dir := t.TempDir()
	s := newSigner(t, dir, "example.org")
	z := &resolve.Static{}
	before := publish(t, z, s, "example.org")

	s2 := newSigner(t, dir, "example.org")
	after, err := s2.Records(context.Background(), "example.org")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(before, after) {
		t.Errorf("records after reopening:\n%v\nwant\n%v", after, before)
	}
	for i, v := range verifyDKIM(t, z, signed(t, s2, message("a@example.org", "x"))) {
		if v.Err != nil {
			t.Errorf("signature %d by the reopened Signer: %v", i, v.Err)
		}
	}
}

func TestKeyFiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "dkim")
	s := newSigner(t, dir, "example.org")
	s.now = func() time.Time { return time.Date(2026, 12, 2, 23, 0, 0, 0, time.FixedZone("", -5*3600)) }
	recs, err := s.Records(context.Background(), "example.org")
	if err != nil {
		t.Fatal(err)
	}
	files := fsutiltest.CheckPrivate(t, dir)
	slices.Sort(files)
	if want := []string{"ms20261203e.pem", "ms20261203r.pem"}; !slices.Equal(files, want) {
		t.Errorf("files %v, want %v (named after the UTC day)", files, want)
	}
	if len(recs) != 2 || recs[0].Name != "ms20261203e._domainkey.example.org" || !strings.HasPrefix(recs[0].Value, "v=DKIM1; k=ed25519; p=") ||
		recs[1].Name != "ms20261203r._domainkey.example.org" || !strings.HasPrefix(recs[1].Value, "v=DKIM1; k=rsa; p=") {
		t.Errorf("records %v", recs)
	}

	// A tree others could read is made private when the Signer starts.
	fsutiltest.Loosen(t, dir)
	newSigner(t, dir, "example.org")
	fsutiltest.CheckPrivate(t, dir)
}

func TestRotateRetire(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := newSigner(t, dir, "example.org")
	day := time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC)
	s.now = func() time.Time { return day }
	z := &resolve.Static{}
	publish(t, z, s, "example.org")
	if err := s.Rotate(ctx, "example.org"); err != nil {
		t.Fatal(err)
	}
	if err := s.Rotate(ctx, "Example.ORG"); err != nil {
		t.Fatal(err)
	}
	recs := publish(t, z, s, "example.org")
	var names []string
	for _, r := range recs {
		names = append(names, strings.TrimSuffix(r.Name, "._domainkey.example.org"))
	}
	want := []string{"ms20261202n3e", "ms20261202n3r", "ms20261202n2e", "ms20261202n2r", "ms20261202e", "ms20261202r"}
	if !slices.Equal(names, want) {
		t.Errorf("selectors published %v, want %v", names, want)
	}
	msg := signed(t, s, message("a@example.org", "x"))
	if sigs := signatures(msg); sigs[0]["s"] != "ms20261202n3e" || sigs[1]["s"] != "ms20261202n3r" {
		t.Errorf("signed with %s and %s, want the newest pair", sigs[0]["s"], sigs[1]["s"])
	}
	for i, v := range verifyDKIM(t, z, msg) {
		if v.Err != nil {
			t.Errorf("signature %d: %v", i, v.Err)
		}
	}

	if err := s.Retire(ctx, "example.org", "ms20261202n3e"); !errors.Is(err, ErrSigningSelector) {
		t.Errorf("Retire of the signing pair: %v, want ErrSigningSelector", err)
	}
	for _, sel := range []string{"ms20261202x", "default", "ms20261202n9e"} {
		if err := s.Retire(ctx, "example.org", sel); !errors.Is(err, ErrUnknownSelector) {
			t.Errorf("Retire(%s): %v, want ErrUnknownSelector", sel, err)
		}
	}
	if err := s.Retire(ctx, "example.org", "ms20261202r"); err != nil { // either selector names the pair
		t.Fatal(err)
	}
	if err := s.Retire(ctx, "example.org", "ms20261202e"); !errors.Is(err, ErrUnknownSelector) {
		t.Errorf("second Retire of the pair: %v, want ErrUnknownSelector", err)
	}

	// What is retired stays so after a restart; a clock set back still
	// gives the next pair a name that sorts last.
	s = newSigner(t, dir, "example.org")
	s.now = func() time.Time { return day.AddDate(0, 0, -3) }
	recs, _ = s.Records(ctx, "example.org")
	if len(recs) != 4 || !strings.HasPrefix(recs[0].Name, "ms20261202n3e.") || !strings.HasPrefix(recs[2].Name, "ms20261202n2e.") {
		t.Errorf("records after Retire and a restart: %v", recs)
	}
	if err := s.Rotate(ctx, "example.org"); err != nil {
		t.Fatal(err)
	}
	if sigs := signatures(signed(t, s, message("a@example.org", "x"))); sigs[0]["s"] != "ms20261202n4e" {
		t.Errorf("after a rotation with the clock set back, signed with %s, want ms20261202n4e", sigs[0]["s"])
	}
	if files, _ := os.ReadDir(filepath.Join(dir, "example.org")); len(files) != 6 {
		t.Errorf("%d key files, want 6 (3 pairs)", len(files))
	}
}

func TestConcurrentFirstUse(t *testing.T) {
	dir := t.TempDir()
	s := newSigner(t, dir, "example.org")
	msg := message("a@example.org", "x")
	sels := make([]string, 20)
	var wg sync.WaitGroup
	for i := range sels {
		wg.Go(func() {
			sig, err := s.Sign(context.Background(), strings.NewReader(msg))
			if err != nil {
				t.Error(err)
				return
			}
			sels[i] = signatures(sig + msg)[1]["s"]
		})
	}
	wg.Wait()
	for i, sel := range sels {
		if sel != sels[0] || sel == "" {
			t.Fatalf("goroutine %d signed with %q, goroutine 0 with %q", i, sel, sels[0])
		}
	}
	if files, _ := os.ReadDir(filepath.Join(dir, "example.org")); len(files) != 2 {
		t.Errorf("%d key files, want one pair", len(files))
	}
}

func TestNilDomains(t *testing.T) {
	ctx := context.Background()
	s, err := NewSigner(SignerConfig{Dir: t.TempDir(), Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	msg := message("a@example.org", "x")
	if sig, err := s.Sign(ctx, strings.NewReader(msg)); sig != "" || err != nil {
		t.Errorf("Sign for a domain without keys: %q, %v; want no signature", sig, err)
	}
	if _, err := s.Records(ctx, "example.org"); !errors.Is(err, ErrUnknownDomain) {
		t.Errorf("Records for a domain without keys: %v, want ErrUnknownDomain", err)
	}
	if err := s.Rotate(ctx, "example.org"); err != nil {
		t.Fatal(err)
	}
	signed(t, s, msg)
}

func TestCrashLeftovers(t *testing.T) {
	dir := t.TempDir()
	s := newSigner(t, dir, "example.org")
	s.now = func() time.Time { return time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC) }
	if _, err := s.Records(context.Background(), "example.org"); err != nil {
		t.Fatal(err)
	}
	// A crash between the renames of a later pair leaves its ed25519 key
	// alone, and one while a file was written a temporary file.
	d := filepath.Join(dir, "example.org")
	key, err := os.ReadFile(filepath.Join(d, "ms20261202e.pem"))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"ms20270101e.pem", tmpPrefix + "123"} {
		if err := os.WriteFile(filepath.Join(d, name), key, 0o600); err != nil {
			t.Fatal(err)
		}
	}

	s = newSigner(t, dir, "example.org")
	s.now = func() time.Time { return time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC) }
	if _, err := os.Stat(filepath.Join(d, tmpPrefix+"123")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("temporary file left: %v", err)
	}
	recs, _ := s.Records(context.Background(), "example.org")
	if len(recs) != 2 || !strings.HasPrefix(recs[0].Name, "ms20261202e.") {
		t.Errorf("records %v: want the complete pair only", recs)
	}
	if err := s.Rotate(context.Background(), "example.org"); err != nil {
		t.Fatal(err)
	}
	if sigs := signatures(signed(t, s, message("a@example.org", "x"))); sigs[0]["s"] != "ms20270101n2e" {
		t.Errorf("signed with %s: want a name after the half pair's, ms20270101n2e", sigs[0]["s"])
	}
	if err := s.Retire(context.Background(), "example.org", "ms20270101e"); err != nil {
		t.Errorf("Retire of the half pair: %v", err)
	}
	if _, err := os.Stat(filepath.Join(d, "ms20270101e.pem")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("half pair still there: %v", err)
	}
}

func TestBadKeyFile(t *testing.T) {
	dir := t.TempDir()
	d := filepath.Join(dir, "example.org")
	if err := os.MkdirAll(d, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(d, "ms20261202e.pem"), []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := NewSigner(SignerConfig{Dir: dir, Logger: quiet}); !errors.Is(err, ErrBadKey) {
		t.Errorf("NewSigner over a damaged key: %v, want ErrBadKey", err)
	}
	if err := (SignerConfig{}).Validate(); err == nil || !strings.Contains(err.Error(), "SignerConfig.Dir") {
		t.Errorf("Validate of the zero config: %v, want Dir named", err)
	}
}

func TestRecordZone(t *testing.T) {
	r := Record{Name: "s._domainkey.example.org", Value: strings.Repeat("a", 255) + "bc"}
	want := `s._domainkey.example.org. IN TXT "` + strings.Repeat("a", 255) + `" "bc"`
	if got := r.Zone(); got != want {
		t.Errorf("Zone = %s", got)
	}
}

func TestReadHeader(t *testing.T) {
	for _, c := range []struct {
		in, hdr  string
		complete bool
	}{
		{"A: 1\r\nB: 2\r\n\r\nbody", "A: 1\r\nB: 2\r\n\r\n", true},
		{"A: 1\n\nbody\n", "A: 1\n\n", true},
		{"A: 1\r\n B\r\n\r\n", "A: 1\r\n B\r\n\r\n", true},
		{"A: 1\r\n", "A: 1\r\n\r\n", false},
		{"A: 1", "A: 1\r\n\r\n", false},
		{"", "\r\n", false},
		{"A: " + strings.Repeat("x", 10000) + "\r\n\r\nb", "A: " + strings.Repeat("x", 10000) + "\r\n\r\n", true},
	} {
		hdr, complete, err := readHeader(newBufReader(c.in))
		if err != nil || string(hdr) != c.hdr || complete != c.complete {
			t.Errorf("readHeader(%.20q) = %.30q, %v, %v; want %.30q, %v", c.in, hdr, complete, err, c.hdr, c.complete)
		}
	}
}
