package mailsys_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-msgauth/dkim"
	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/mailsys/mailsys"
	"github.com/mailsys/mailsys/internal/selfsigned"
	"github.com/mailsys/mailsys/mta/dsn"
	"github.com/mailsys/mailsys/mta/resolve"
	"github.com/mailsys/mailsys/userdata"
)

// sink is a remote MX host: a go-smtp server that keeps what it takes
// and refuses the recipients a test names.
type sink struct {
	mu      sync.Mutex
	got     [][]byte
	to      [][]string
	refused map[string]bool
}

func (s *sink) NewSession(*smtp.Conn) (smtp.Session, error) { return &sinkSession{s: s}, nil }

type sinkSession struct {
	s  *sink
	to []string
}

func (x *sinkSession) Mail(string, *smtp.MailOptions) error { return nil }
func (x *sinkSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	if x.s.refused[to] {
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "No such user here"}
	}
	x.to = append(x.to, to)
	return nil
}
func (x *sinkSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	x.s.mu.Lock()
	x.s.got, x.s.to = append(x.s.got, b), append(x.s.to, x.to)
	x.s.mu.Unlock()
	return nil
}
func (x *sinkSession) Reset()        { x.to = nil }
func (x *sinkSession) Logout() error { return nil }

func (s *sink) messages() [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([][]byte(nil), s.got...)
}

// Mail submitted for another domain leaves through the outbound queue,
// signed with DKIM (both signatures verify at the receiving end), while
// a local recipient of the same message gets it at once; a recipient the
// remote refuses comes back to the sender's INBOX as a DSN.
func TestSubmitToTheWorld(t *testing.T) {
	ctx := t.Context()
	cert, err := selfsigned.New("mx.example.org", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	// The remote's port: every MX host listens on one.
	pl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := pl.Addr().(*net.TCPAddr).Port
	pl.Close()
	remote := &sink{refused: map[string]bool{"nobody@example.net": true}}
	srv := smtp.NewServer(remote)
	srv.Domain, srv.EnableSMTPUTF8 = "mx.example.net", true
	l, err := net.Listen("tcp", "127.0.0.2:"+strconv.Itoa(port))
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })

	zone := &resolve.Static{}
	zone.SetMX("example.net", "10 mx.example.net")
	zone.SetIP("mx.example.net", netip.MustParseAddr("127.0.0.2"))
	cfg := mailsys.DefaultConfig(t.TempDir())
	cfg.Hostname = "mx.example.org"
	cfg.SubmissionAddr = "127.0.0.1:0"
	cfg.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	cfg.Resolver = zone
	cfg.Outbound.Port = port
	cfg.Outbound.DisableSTS = true
	cfg.Logger = slog.New(slog.NewTextHandler(t.Output(), nil))
	sys, err := mailsys.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"ann@example.org", "carol@example.org"} {
		if _, err := sys.EnsureUser(ctx, u, "secret"); err != nil {
			t.Fatal(err)
		}
	}
	if err := sys.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sys.Shutdown(context.Background()) })

	c, err := smtp.DialStartTLS(sys.Addrs()[0].String(), &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Auth(sasl.NewPlainClient("", "ann@example.org", "secret")); err != nil {
		t.Fatal(err)
	}
	msg := "From: Ann <ann@example.org>\r\nTo: bob@example.net, carol@example.org\r\nSubject: out\r\nMessage-ID: <out-1@example.org>\r\nDate: Wed, 02 Dec 2026 10:00:00 +0000\r\n\r\nHello world.\r\n"
	if err := c.SendMail("ann@example.org", []string{"bob@example.net", "carol@example.org", "nobody@example.net"}, strings.NewReader(msg)); err != nil {
		t.Fatal(err)
	}

	// Carol has it now; Bob's MX gets it, signed.
	waitUntil(t, "carol's copy", func() bool { return inboxCount(t, sys, "carol@example.org") == 1 })
	waitUntil(t, "the remote's copy", func() bool { return len(remote.messages()) == 1 })
	got := remote.messages()[0]
	if !bytes.Contains(got, []byte("Hello world.")) || bytes.Contains(got, []byte("Return-Path:")) {
		t.Errorf("the remote got:\n%s", got)
	}
	records, err := sys.DKIM().Records(ctx, "example.org")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range records {
		zone.SetTXT(r.Name, r.Value)
	}
	verifs, err := dkim.VerifyWithOptions(bytes.NewReader(got), &dkim.VerifyOptions{LookupTXT: func(name string) ([]string, error) {
		txt, _, err := zone.LookupTXT(ctx, name)
		return txt, err
	}})
	if err != nil {
		t.Fatal(err)
	}
	if len(verifs) != 2 {
		t.Fatalf("%d DKIM signatures, want 2 (ed25519 and RSA)", len(verifs))
	}
	for _, v := range verifs {
		if v.Err != nil || v.Domain != "example.org" {
			t.Errorf("DKIM signature of %s: %v", v.Domain, v.Err)
		}
	}

	// The refused recipient: a DSN in Ann's INBOX, from the null sender.
	waitUntil(t, "the bounce", func() bool { return inboxCount(t, sys, "ann@example.org") == 1 })
	bounce := inboxBodies(t, sys, "ann@example.org")[0]
	if !bytes.HasPrefix(bounce, []byte("Return-Path: <>\r\n")) {
		t.Errorf("bounce not from the null sender:\n%.200s", bounce)
	}
	p, err := dsn.Parse(bytes.NewReader(bounce))
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Recipients) != 1 {
		t.Fatalf("%d recipients in the DSN", len(p.Recipients))
	}
	r := p.Recipients[0]
	if _, final, _ := r.Typed("Final-Recipient"); final != "nobody@example.net" || r.Get("Action") != "failed" || r.Get("Status") != "5.1.1" {
		t.Errorf("DSN fields %v", r)
	}
	if _, diag, _ := r.Typed("Diagnostic-Code"); !strings.Contains(diag, "550 5.1.1 No such user here") {
		t.Errorf("Diagnostic-Code %q", diag)
	}
	if _, mta, _ := p.PerMessage.Typed("Reporting-MTA"); mta != "mx.example.org" {
		t.Errorf("Reporting-MTA %q", mta)
	}
	if p.OriginalType != "message/rfc822" || !bytes.Contains(p.Original, []byte("Subject: out")) {
		t.Errorf("original returned as %q:\n%.300s", p.OriginalType, p.Original)
	}
	waitUntil(t, "the queue empty", func() bool {
		l, err := sys.Queue().List(ctx)
		return err == nil && len(l) == 0
	})
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func inboxCount(t *testing.T, sys *mailsys.System, addr string) int {
	return len(inboxBodies(t, sys, addr))
}

func inboxBodies(t *testing.T, sys *mailsys.System, addr string) [][]byte {
	t.Helper()
	ctx := t.Context()
	db := sys.UserDB()
	u, err := db.LookupAddress(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	f, err := db.Folder(ctx, u.ID, userdata.Inbox)
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	err = db.Messages(ctx, u.ID, f.ID, nil, func(m *userdata.Message) error {
		rc, err := sys.Storage().Open(ctx, m.Ref)
		if err != nil {
			return err
		}
		defer rc.Close()
		b, err := io.ReadAll(io.NewSectionReader(rc, 0, rc.Size()))
		out = append(out, b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// The MX listener checks where mail comes from: a message failing DMARC
// under p=reject is refused with 550 5.7.1; one passing is delivered with
// an Authentication-Results field naming this host.
func TestInboundDMARC(t *testing.T) {
	ctx := t.Context()
	zone := &resolve.Static{}
	zone.SetTXT("spoofed.example", "v=spf1 -all")
	zone.SetTXT("_dmarc.spoofed.example", "v=DMARC1; p=reject")
	zone.SetTXT("honest.example", "v=spf1 ip4:127.0.0.1 -all")
	zone.SetTXT("_dmarc.honest.example", "v=DMARC1; p=reject")
	cfg := mailsys.DefaultConfig(t.TempDir())
	cfg.Hostname, cfg.SMTPAddr, cfg.Resolver = "mx.example.org", "127.0.0.1:0", zone
	cfg.Logger = slog.New(slog.NewTextHandler(t.Output(), nil))
	sys, err := mailsys.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sys.EnsureUser(ctx, "ann@example.org", "secret"); err != nil {
		t.Fatal(err)
	}
	if err := sys.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sys.Shutdown(context.Background()) })
	send := func(from string) error {
		c, err := smtp.Dial(sys.Addrs()[0].String())
		if err != nil {
			return err
		}
		defer c.Close()
		if err := c.Hello("client.example"); err != nil {
			return err
		}
		msg := "From: " + from + "\r\nTo: ann@example.org\r\nSubject: hi\r\n" +
			"Authentication-Results: mx.example.org; dmarc=pass header.from=" + from + "\r\n\r\nhello\r\n"
		return c.SendMail(from, []string{"ann@example.org"}, strings.NewReader(msg))
	}
	err = send("boss@spoofed.example")
	if se, ok := err.(*smtp.SMTPError); !ok || se.Code != 550 || se.EnhancedCode != (smtp.EnhancedCode{5, 7, 1}) {
		t.Fatalf("spoofed sender: %v, want 550 5.7.1", err)
	}
	if err := send("friend@honest.example"); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the honest message", func() bool { return inboxCount(t, sys, "ann@example.org") == 1 })
	got := string(inboxBodies(t, sys, "ann@example.org")[0])
	var results []string
	for _, line := range strings.Split(got, "\r\n") {
		if strings.HasPrefix(line, "Authentication-Results:") {
			results = append(results, line)
		}
	}
	if len(results) != 1 || !strings.Contains(results[0], "mx.example.org") || !strings.Contains(results[0], "spf=pass") ||
		!strings.Contains(results[0], "dmarc=pass") || !strings.Contains(results[0], "dkim=none") {
		t.Errorf("Authentication-Results fields (the client's forged one must be gone): %q", results)
	}
}
