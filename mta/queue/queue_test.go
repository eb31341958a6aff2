package queue_test

import (
	"bufio"
	"bytes"
	"io/fs"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/mailsys/mailsys/mta/dsn"
	"github.com/mailsys/mailsys/mta/queue"
)

// Five messages to one domain go over one connection, with the DSN
// parameters passed on to a host that offers DSN.
func TestDeliveryReusesConnection(t *testing.T) {
	f := newFixture(t, func(c *queue.Config) { c.PerDestination = 1 })
	r := startRemote(t, "127.0.0.2", f.port, "")
	f.mx("example.net", "mx.example.net")
	f.host("mx.example.net", "127.0.0.2")
	for i := range 5 {
		f.send("m"+string(rune('a'+i)), "SUCCESS,FAILURE", "bob@example.net")
	}
	waitFor(t, "5 messages", func() bool { return len(r.messages()) == 5 })
	waitFor(t, "queue empty", func() bool { return f.gone("ma") && f.gone("me") })
	r.mu.Lock()
	conns, opts := r.conns, r.dsnOpts
	r.mu.Unlock()
	if conns != 1 {
		t.Errorf("%d connections for 5 messages, want 1", conns)
	}
	if len(opts) != 1 || opts[0] == nil || len(opts[0].Notify) != 2 || opts[0].Notify[0] != smtp.DSNNotifySuccess {
		t.Errorf("NOTIFY not passed on: %+v", opts)
	}
	for _, m := range r.messages() {
		if m.From != "ann@example.org" || len(m.To) != 1 || m.To[0] != "bob@example.net" || !bytes.Contains(m.Data, []byte("Hello m")) {
			t.Errorf("remote got %+v", m)
		}
	}
	if b := f.bounces.all(); len(b) != 0 {
		t.Errorf("notifications for a host that offers DSN: %d", len(b))
	}
}

// A 4xx is retried, and the second attempt delivers.
func TestTemporaryFailureThenSuccess(t *testing.T) {
	f := newFixture(t, nil)
	r := startRemote(t, "127.0.0.2", f.port, "")
	f.mx("example.net", "mx.example.net")
	f.host("mx.example.net", "127.0.0.2")
	tries := 0
	r.set(func(r *remote) {
		r.rcpt = func(string) error {
			tries++
			if tries == 1 {
				return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 2, 0}, Message: "greylisted"}
			}
			return nil
		}
	})
	f.send("m1", "", "bob@example.net")
	waitFor(t, "delivery", func() bool { return len(r.messages()) == 1 })
	waitFor(t, "queue empty", func() bool { return f.gone("m1") })
	if tries != 2 {
		t.Errorf("%d RCPTs, want 2", tries)
	}
}

// A 5xx bounces: the sender gets a DSN, checked field by field.
func TestPermanentFailureBounces(t *testing.T) {
	f := newFixture(t, nil)
	r := startRemote(t, "127.0.0.2", f.port, "")
	f.mx("example.net", "mx.example.net")
	f.host("mx.example.net", "127.0.0.2")
	r.set(func(r *remote) {
		r.rcpt = func(to string) error {
			if to == "nobody@example.net" {
				return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "No such user"}
			}
			return nil
		}
	})
	f.send("m1", "", "bob@example.net", "nobody@example.net")
	waitFor(t, "a bounce", func() bool { return len(f.bounces.all()) == 1 })
	waitFor(t, "queue empty", func() bool { return f.gone("m1") })
	if got := r.messages(); len(got) != 1 || len(got[0].To) != 1 || got[0].To[0] != "bob@example.net" {
		t.Fatalf("remote got %+v", got)
	}
	b := f.bounces.all()[0]
	if b.From != "" || len(b.To) != 1 || b.To[0] != "ann@example.org" {
		t.Fatalf("bounce envelope %q -> %q", b.From, b.To)
	}
	p, err := dsn.Parse(bytes.NewReader(b.Data))
	if err != nil {
		t.Fatal(err)
	}
	checkDSN(t, p, "nobody@example.net", dsn.Failed, "5.1.1", "550 5.1.1 No such user")
}

func checkDSN(t *testing.T, p *dsn.Parsed, rcpt string, action dsn.Action, status, diag string) {
	t.Helper()
	if _, mta, _ := p.PerMessage.Typed("Reporting-MTA"); mta != "out.example.org" {
		t.Errorf("Reporting-MTA %q", p.PerMessage.Get("Reporting-MTA"))
	}
	if p.PerMessage.Get("Arrival-Date") == "" {
		t.Error("no Arrival-Date")
	}
	if len(p.Recipients) != 1 {
		t.Fatalf("%d recipients in the DSN, want 1: %+v", len(p.Recipients), p.Recipients)
	}
	pr := p.Recipients[0]
	if _, final, _ := pr.Typed("Final-Recipient"); final != rcpt || pr.Get("Action") != string(action) || pr.Get("Status") != status {
		t.Errorf("DSN recipient %v, want %s %s %s", pr, rcpt, action, status)
	}
	if _, d, _ := pr.Typed("Diagnostic-Code"); diag != "" && !strings.Contains(d, diag) {
		t.Errorf("Diagnostic-Code %q, want it to hold %q", d, diag)
	}
	if action == dsn.Failed && p.OriginalType == "" {
		t.Error("the original is not returned")
	}
	if to := p.Header.Get("To"); !strings.Contains(to, "ann@example.org") {
		t.Errorf("To: %q", to)
	}
}

// A recipient deferred past Lifetime bounces with 4.4.7; before that,
// one delay warning goes out.
func TestExpiryAndDelayWarning(t *testing.T) {
	f := newFixture(t, func(c *queue.Config) {
		c.Lifetime = 600 * time.Millisecond
		c.DelayWarning = 150 * time.Millisecond
	})
	r := startRemote(t, "127.0.0.2", f.port, "")
	f.mx("example.net", "mx.example.net")
	f.host("mx.example.net", "127.0.0.2")
	r.set(func(r *remote) {
		r.rcpt = func(string) error {
			return &smtp.SMTPError{Code: 452, EnhancedCode: smtp.EnhancedCode{4, 2, 2}, Message: "Mailbox full"}
		}
	})
	f.send("m1", "", "bob@example.net")
	waitFor(t, "two notifications", func() bool { return len(f.bounces.all()) == 2 })
	waitFor(t, "queue empty", func() bool { return f.gone("m1") })
	b := f.bounces.all()
	delay, err := dsn.Parse(bytes.NewReader(b[0].Data))
	if err != nil {
		t.Fatal(err)
	}
	checkDSN(t, delay, "bob@example.net", dsn.Delayed, "4.2.2", "452 4.2.2 Mailbox full")
	if delay.Recipients[0].Get("Will-Retry-Until") == "" {
		t.Error("delay warning without Will-Retry-Until")
	}
	expired, err := dsn.Parse(bytes.NewReader(b[1].Data))
	if err != nil {
		t.Fatal(err)
	}
	checkDSN(t, expired, "bob@example.net", dsn.Failed, "4.4.7", "452 4.2.2 Mailbox full")
	if n := len(f.bounces.all()); n != 2 {
		t.Errorf("%d notifications, want 2", n)
	}
}

// A message to two domains is done for one and deferred for the other.
func TestPartialSuccessAcrossDomains(t *testing.T) {
	f := newFixture(t, func(c *queue.Config) { c.RetryFirst, c.RetryMax = time.Hour, time.Hour })
	ok := startRemote(t, "127.0.0.2", f.port, "")
	slow := startRemote(t, "127.0.0.3", f.port, "")
	f.mx("example.net", "mx.example.net")
	f.host("mx.example.net", "127.0.0.2")
	f.mx("example.com", "mx.example.com")
	f.host("mx.example.com", "127.0.0.3")
	slow.set(func(r *remote) {
		r.rcpt = func(string) error {
			return &smtp.SMTPError{Code: 450, EnhancedCode: smtp.EnhancedCode{4, 2, 1}, Message: "try later"}
		}
	})
	f.send("m1", "", "bob@example.net", "carl@example.com")
	waitFor(t, "one delivered, one deferred", func() bool {
		return f.state("m1", "bob@example.net") == queue.Delivered && f.state("m1", "carl@example.com") == queue.Deferred
	})
	e, err := f.q.Get(t.Context(), "m1")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range e.Rcpts {
		if r.Attempts != 1 || r.LastReply == "" {
			t.Errorf("%+v", r)
		}
		if r.State == queue.Deferred && (!strings.Contains(r.LastReply, "450 4.2.1") || r.Next.Before(time.Now().Add(40*time.Minute))) {
			t.Errorf("deferred %+v", r)
		}
	}
	if len(ok.messages()) != 1 || len(slow.messages()) != 0 {
		t.Errorf("remotes got %d and %d", len(ok.messages()), len(slow.messages()))
	}
}

// A null MX is a permanent failure; a domain that does not exist too.
func TestNullMXAndNoDomain(t *testing.T) {
	f := newFixture(t, nil)
	f.zone.SetMX("nomail.example", "0 .")
	f.send("m1", "", "bob@nomail.example")
	f.send("m2", "", "bob@nxdomain.example")
	waitFor(t, "two bounces", func() bool { return len(f.bounces.all()) == 2 })
	for _, b := range f.bounces.all() {
		p, err := dsn.Parse(bytes.NewReader(b.Data))
		if err != nil {
			t.Fatal(err)
		}
		switch _, final, _ := p.Recipients[0].Typed("Final-Recipient"); final {
		case "bob@nomail.example":
			checkDSN(t, p, "bob@nomail.example", dsn.Failed, "5.1.10", "556 5.1.10")
		default:
			checkDSN(t, p, "bob@nxdomain.example", dsn.Failed, "5.1.2", "")
		}
	}
}

// When the first MX host refuses connections, the next one takes the
// message.
func TestMXFallback(t *testing.T) {
	f := newFixture(t, nil)
	backup := startRemote(t, "127.0.0.3", f.port, "")
	f.mx("example.net", "mx1.example.net", "mx2.example.net")
	f.host("mx1.example.net", "127.0.0.2") // nothing listens there
	f.host("mx2.example.net", "127.0.0.3")
	f.send("m1", "", "bob@example.net")
	waitFor(t, "delivery by the backup", func() bool { return len(backup.messages()) == 1 })
	waitFor(t, "queue empty", func() bool { return f.gone("m1") })
}

// Opportunistic STARTTLS is used when offered, whatever the certificate.
func TestOpportunisticTLS(t *testing.T) {
	f := newFixture(t, nil)
	r := startRemote(t, "127.0.0.2", f.port, "wrong.name.example")
	f.mx("example.net", "mx.example.net")
	f.host("mx.example.net", "127.0.0.2")
	f.send("m1", "", "bob@example.net")
	waitFor(t, "delivery", func() bool { return len(r.messages()) == 1 })
	if !r.messages()[0].TLS {
		t.Error("sent in clear though STARTTLS was offered")
	}
}

// Recipient limits: the queue refuses a message it could not send.
func TestEnqueueValidates(t *testing.T) {
	f := newFixture(t, nil)
	for _, m := range []queue.Message{
		{ID: "", Rcpts: []queue.Rcpt{{Addr: "a@b"}}},
		{ID: "a/b", Rcpts: []queue.Rcpt{{Addr: "a@b"}}},
		{ID: "x"},
		{ID: "x", Rcpts: []queue.Rcpt{{Addr: "nodomain"}}},
		{ID: "x", Rcpts: []queue.Rcpt{{Addr: "a@b"}, {Addr: "A@b"}}},
		{ID: "x", Rcpts: []queue.Rcpt{{Addr: "a@b"}}, Ret: "ALL"},
	} {
		if err := f.q.Enqueue(t.Context(), m, strings.NewReader("x")); err == nil {
			t.Errorf("%+v accepted", m)
		}
	}
}

// Enqueue is idempotent: the same ID again, queued or gone, is a no-op.
func TestEnqueueIdempotent(t *testing.T) {
	f := newFixture(t, nil)
	r := startRemote(t, "127.0.0.2", f.port, "")
	f.mx("example.net", "mx.example.net")
	f.host("mx.example.net", "127.0.0.2")
	f.send("m1", "", "bob@example.net")
	f.send("m1", "", "bob@example.net")
	waitFor(t, "queue empty", func() bool { return f.gone("m1") })
	f.send("m1", "", "bob@example.net")
	f.q.Close()
	f.open()
	f.send("m1", "", "bob@example.net")
	time.Sleep(200 * time.Millisecond)
	if n := len(r.messages()); n != 1 {
		t.Errorf("%d deliveries of one message", n)
	}
}

// An MX host reached over IPv6, and one whose IPv4 address refuses
// connections while its IPv6 one answers.
func TestIPv6(t *testing.T) {
	if l, err := net.Listen("tcp", "[::1]:0"); err != nil {
		t.Skip("no IPv6 loopback:", err)
	} else {
		l.Close()
	}
	f := newFixture(t, nil)
	r := startRemote(t, "::1", f.port, "")
	f.mx("example.net", "mx.example.net")
	f.zone.SetIP("mx.example.net", netip.MustParseAddr("127.0.0.9"), netip.MustParseAddr("::1"))
	f.send("m1", "", "bob@example.net")
	waitFor(t, "delivery over IPv6", func() bool { return len(r.messages()) == 1 })
}

// What the next hop cannot take bounces at once: a message over its
// SIZE (5.3.4), one that needs SMTPUTF8 it does not offer (5.6.7), and
// one with 8-bit content for a host without 8BITMIME (5.6.3); a host that
// offers them gets the parameters.
func TestNextHopLimits(t *testing.T) {
	f := newFixture(t, nil)
	small := startRemote(t, "127.0.0.2", f.port, "", func(s *smtp.Server) { s.MaxMessageBytes, s.EnableSMTPUTF8 = 100, false })
	f.mx("small.example", "mx.small.example")
	f.host("mx.small.example", "127.0.0.2")
	rawRemote(t, "127.0.0.3", f.port, func(c net.Conn) {
		r := bufio.NewReader(c)
		c.Write([]byte("220 old.example\r\n"))
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			switch strings.ToUpper(strings.Fields(line + " x")[0]) {
			case "EHLO":
				c.Write([]byte("250-old.example\r\n250 PIPELINING\r\n"))
			case "QUIT":
				c.Write([]byte("221 bye\r\n"))
				return
			default:
				c.Write([]byte("250 ok\r\n"))
			}
		}
	})
	f.mx("old.example", "mx.old.example")
	f.host("mx.old.example", "127.0.0.3")
	big := queue.Message{ID: "big", From: "ann@example.org", Rcpts: []queue.Rcpt{{Addr: "bob@small.example"}}}
	utf := queue.Message{ID: "utf", From: "ann@example.org", Rcpts: []queue.Rcpt{{Addr: "jörg@small.example"}}}
	eight := queue.Message{ID: "eight", From: "ann@example.org", Rcpts: []queue.Rcpt{{Addr: "bob@old.example"}}}
	for _, m := range []struct {
		m    queue.Message
		body string
	}{{big, "Subject: big\r\n\r\n" + strings.Repeat("x", 200) + "\r\n"}, {utf, "Subject: hi\r\n\r\nhi\r\n"}, {eight, "Subject: hi\r\n\r\nGrüße\r\n"}} {
		if err := f.q.Enqueue(t.Context(), m.m, strings.NewReader(m.body)); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "three bounces", func() bool { return len(f.bounces.all()) == 3 })
	status := map[string]string{}
	for _, b := range f.bounces.all() {
		p, err := dsn.Parse(bytes.NewReader(b.Data))
		if err != nil {
			t.Fatal(err)
		}
		_, final, _ := p.Recipients[0].Typed("Final-Recipient")
		status[final] = p.Recipients[0].Get("Status")
	}
	want := map[string]string{"bob@small.example": "5.3.4", "jörg@small.example": "5.6.7", "bob@old.example": "5.6.3"}
	for k, v := range want {
		if status[k] != v {
			t.Errorf("%s: status %q, want %s (all: %v)", k, status[k], v, status)
		}
	}
	if n := len(small.messages()); n != 0 {
		t.Errorf("the small host got %d messages", n)
	}
}

// What the queue writes is private: directories 0700, files 0600,
// whatever the umask.
func TestPrivateFiles(t *testing.T) {
	f := newFixture(t, func(c *queue.Config) { c.RetryFirst, c.RetryMax = time.Hour, time.Hour })
	f.send("m1", "", "bob@nowhere.example")
	f.q.Close()
	err := filepath.WalkDir(f.cfg.Dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		if fi.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s: mode %v", path, fi.Mode().Perm())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// RET and ENVID go on to a host that offers DSN; a host that does not
// makes the queue report the delivery itself as "relayed" to a sender
// whose NOTIFY asked for SUCCESS.
func TestDSNParametersAndRelayed(t *testing.T) {
	f := newFixture(t, nil)
	withDSN := startRemote(t, "127.0.0.2", f.port, "")
	without := startRemote(t, "127.0.0.3", f.port, "", func(s *smtp.Server) { s.EnableDSN = false })
	f.mx("dsn.example", "mx.dsn.example")
	f.host("mx.dsn.example", "127.0.0.2")
	f.mx("plain.example", "mx.plain.example")
	f.host("mx.plain.example", "127.0.0.3")
	m := queue.Message{ID: "m1", From: "ann@example.org", EnvID: "QQ314159", Ret: "HDRS", Rcpts: []queue.Rcpt{
		{Addr: "bob@dsn.example", Notify: "SUCCESS", ORcpt: "rfc822;bob@dsn.example"},
		{Addr: "carl@plain.example", Notify: "SUCCESS,FAILURE"}}}
	if err := f.q.Enqueue(t.Context(), m, strings.NewReader("Subject: hi\r\n\r\nhi\r\n")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "both delivered", func() bool { return len(withDSN.messages()) == 1 && len(without.messages()) == 1 })
	waitFor(t, "queue empty", func() bool { return f.gone("m1") })
	withDSN.mu.Lock()
	mo, ro := withDSN.mailOpts, withDSN.dsnOpts
	withDSN.mu.Unlock()
	if mo == nil || mo.EnvelopeID != "QQ314159" || mo.Return != smtp.DSNReturnHeaders {
		t.Errorf("MAIL options %+v", mo)
	}
	if len(ro) != 1 || ro[0] == nil || ro[0].OriginalRecipient != "bob@dsn.example" || ro[0].OriginalRecipientType != smtp.DSNAddressTypeRFC822 {
		t.Errorf("RCPT options %+v", ro)
	}
	b := f.bounces.all()
	if len(b) != 1 {
		t.Fatalf("%d notifications, want 1 (relayed, for carl)", len(b))
	}
	p, err := dsn.Parse(bytes.NewReader(b[0].Data))
	if err != nil {
		t.Fatal(err)
	}
	checkDSN(t, p, "carl@plain.example", dsn.Relayed, "2.0.0", "")
	if p.PerMessage.Get("Original-Envelope-Id") != "QQ314159" || p.OriginalType != "text/rfc822-headers" {
		t.Errorf("ENVID %q, original %q", p.PerMessage.Get("Original-Envelope-Id"), p.OriginalType)
	}
}
