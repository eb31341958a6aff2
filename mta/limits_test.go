package mta_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/mailsys/mailsys/msstore"
	"github.com/mailsys/mailsys/mta"
	"github.com/mailsys/mailsys/userdata"
)

// rawConn is a line-level SMTP client for what go-smtp's client will not
// do: trickle, stop half way, or never send EHLO.
type rawConn struct {
	t *testing.T
	c net.Conn
	r *bufio.Reader
}

func dialRaw(t *testing.T, addr string) *rawConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(30 * time.Second))
	return &rawConn{t: t, c: c, r: bufio.NewReader(c)}
}

// reply reads one reply, all its lines, and returns the last.
func (rc *rawConn) reply() string {
	rc.t.Helper()
	for {
		line, err := rc.r.ReadString('\n')
		if err != nil {
			rc.t.Fatalf("reading a reply: %q, %v", line, err)
		}
		if len(line) < 4 || line[3] != '-' {
			return strings.TrimRight(line, "\r\n")
		}
	}
}

func (rc *rawConn) send(line string) {
	rc.t.Helper()
	if _, err := io.WriteString(rc.c, line+"\r\n"); err != nil {
		rc.t.Fatal(err)
	}
}

// closed checks that the server closed the connection, within 2 s.
func (rc *rawConn) closed() {
	rc.t.Helper()
	rc.c.SetReadDeadline(time.Now().Add(2 * time.Second))
	if line, err := rc.r.ReadString('\n'); err == nil || !errors.Is(err, io.EOF) {
		rc.t.Fatalf("connection still open: read %q, %v", line, err)
	}
}

// trickle writes s a byte at a time, every, until the server closes the
// connection or s is written; it returns when it stopped.
func (rc *rawConn) trickle(s string, every time.Duration) time.Duration {
	start := time.Now()
	for i := range len(s) {
		if _, err := rc.c.Write([]byte{s[i]}); err != nil {
			break
		}
		time.Sleep(every)
	}
	return time.Since(start)
}

// TestInboundConnCapAtAccept: the cap per address counts a connection as
// soon as it is accepted, before EHLO; a refused client reads 421 and is
// closed, and a place freed is given again.
func TestInboundConnCapAtAccept(t *testing.T) {
	guard := mta.NewGuard(mta.GuardConfig{MaxConnsPerIP: 2})
	_, addr := startInboundWith(t, func(c *mta.InboundConfig) { c.Guard = guard })
	a, b := dialRaw(t, addr), dialRaw(t, addr)
	for _, rc := range []*rawConn{a, b} {
		if r := rc.reply(); !strings.HasPrefix(r, "220 ") {
			t.Fatalf("greeting %q", r)
		}
	}
	c := dialRaw(t, addr)
	if r := c.reply(); !strings.HasPrefix(r, "421 4.7.0 ") {
		t.Fatalf("third connection, before any EHLO: %q; want 421 4.7.0", r)
	}
	c.closed()
	a.c.Close()
	for deadline := time.Now().Add(2 * time.Second); guard.Conns() > 1; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d connections still counted after one closed", guard.Conns())
		}
	}
	if r := dialRaw(t, addr).reply(); !strings.HasPrefix(r, "220 ") {
		t.Fatalf("after a connection closed: %q", r)
	}
}

// TestInboundCommandDeadline: a command line trickled a byte at a time
// does not outlive ReadTimeout, counted from when the server began to
// wait for it.
func TestInboundCommandDeadline(t *testing.T) {
	_, addr := startInboundWith(t, func(c *mta.InboundConfig) { c.ReadTimeout = 500 * time.Millisecond })
	rc := dialRaw(t, addr)
	rc.reply()
	took := rc.trickle(strings.Repeat("NOOP", 50), 50*time.Millisecond)
	if took > 2*time.Second {
		t.Fatalf("a trickled command line kept the session %v past a 500 ms deadline", took)
	}
	// What came of the line is answered as a command first (501), then
	// the session ends.
	r := rc.reply()
	if strings.HasPrefix(r, "501 ") {
		r = rc.reply()
	}
	if !strings.HasPrefix(r, "421 ") {
		t.Fatalf("at the deadline: %q; want 421", r)
	}
	rc.closed()
}

// TestInboundMaxSession: a client busy with NOOPs is closed at MaxSession.
func TestInboundMaxSession(t *testing.T) {
	_, addr := startInboundWith(t, func(c *mta.InboundConfig) { c.MaxSession = time.Second })
	rc := dialRaw(t, addr)
	rc.reply()
	start := time.Now()
	for {
		rc.send("NOOP")
		r := rc.reply()
		if strings.HasPrefix(r, "421 ") {
			break
		}
		if time.Since(start) > 5*time.Second {
			t.Fatal("session alive 5 s past a 1 s MaxSession")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if d := time.Since(start); d < 800*time.Millisecond {
		t.Fatalf("closed after %v, before MaxSession", d)
	}
	rc.closed()
}

// TestInboundDataDeadline: a message trickled in is answered 451 at
// DataTimeout, and the connection closed.
func TestInboundDataDeadline(t *testing.T) {
	s, addr := startInboundWith(t, func(c *mta.InboundConfig) { c.DataTimeout = 700 * time.Millisecond })
	rc := dialRaw(t, addr)
	rc.reply()
	for _, cmd := range []string{"EHLO client.test", "MAIL FROM:<a@remote.test>", "RCPT TO:<u0@example.test>", "DATA"} {
		rc.send(cmd)
		rc.reply()
	}
	took := rc.trickle("Subject: slow\r\n\r\n"+strings.Repeat("x", 200), 50*time.Millisecond)
	if took > 3*time.Second {
		t.Fatalf("a trickled message kept the session %v past a 700 ms DataTimeout", took)
	}
	if r := rc.reply(); !strings.HasPrefix(r, "451 4.4.2") {
		t.Fatalf("at the deadline: %q; want 451 4.4.2", r)
	}
	rc.closed()
	if got := inbox(t, s, "u0@example.test", 0); len(got) != 0 {
		t.Fatalf("a message cut off by its deadline was delivered: %q", got)
	}
}

// TestInboundHarvesting: the 20th unknown recipient of a session is
// answered 421 and the connection closed.
func TestInboundHarvesting(t *testing.T) {
	_, addr := startInbound(t)
	rc := dialRaw(t, addr)
	rc.reply()
	rc.send("EHLO client.test")
	rc.reply()
	rc.send("MAIL FROM:<a@remote.test>")
	rc.reply()
	rc.send("RCPT TO:<u0@example.test>")
	if r := rc.reply(); !strings.HasPrefix(r, "250 ") {
		t.Fatalf("a known recipient: %q", r)
	}
	for i := 1; i < 20; i++ {
		rc.send("RCPT TO:<nobody" + string(rune('a'+i)) + "@example.test>")
		if r := rc.reply(); !strings.HasPrefix(r, "550 ") {
			t.Fatalf("unknown recipient %d: %q; want 550", i, r)
		}
	}
	rc.send("RCPT TO:<nobodyz@example.test>")
	if r := rc.reply(); !strings.HasPrefix(r, "421 4.7.0") {
		t.Fatalf("20th unknown recipient: %q; want 421 4.7.0", r)
	}
	rc.closed()
}

// TestSubmissionLoginDeadline: a submission client that does not log in
// within LoginTimeout is closed, however busy it keeps itself; one that
// logs in is not held to it.
func TestSubmissionLoginDeadline(t *testing.T) {
	_, addr := startSubmissionWith(t, func(c *mta.InboundConfig) { c.LoginTimeout = 800 * time.Millisecond }, nil)
	rc := dialRaw(t, addr)
	rc.reply()
	start := time.Now()
	for {
		rc.send("NOOP")
		if r := rc.reply(); strings.HasPrefix(r, "421 ") {
			break
		}
		if time.Since(start) > 5*time.Second {
			t.Fatal("not logged in, alive 5 s past an 800 ms LoginTimeout")
		}
		time.Sleep(100 * time.Millisecond)
	}
	rc.closed()

	c, err := smtp.DialStartTLS(addr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Auth(sasl.NewPlainClient("", "u0@example.test", "pw0")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1200 * time.Millisecond)
	if err := c.Noop(); err != nil {
		t.Fatalf("logged in, past LoginTimeout: %v", err)
	}
}

// submit logs in as u0 over STARTTLS and sends msg from u0's address.
func submit(addr, msg string) error {
	c, err := smtp.DialStartTLS(addr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Auth(sasl.NewPlainClient("", "u0@example.test", "pw0")); err != nil {
		return err
	}
	return c.SendMail("u0@example.test", []string{"u1@example.test"}, strings.NewReader(msg))
}

// TestSubmissionHeaderSenders: From: and Sender: must be the user's own
// addresses; AnyFrom lifts it for the users it names; the Received: field
// names the user and says ESMTPSA.
func TestSubmissionHeaderSenders(t *testing.T) {
	s, addr := startSubmission(t)
	for _, tc := range []struct{ msg, why string }{
		{"From: Bob <u1@example.test>\r\nSender: u1@example.test\r\n\r\nI am bob\r\n", "From: and Sender: of another user"},
		{"From: u0@example.test\r\nSender: u1@example.test\r\n\r\nhi\r\n", "Sender: of another user"},
		{"From: u0@example.test, u2@example.test\r\n\r\nhi\r\n", "a second From: address of another user"},
		{"From: ceo@elsewhere.test\r\n\r\nhi\r\n", "From: of another domain"},
		{"From: <<<\r\n\r\nhi\r\n", "an unreadable From:"},
	} {
		if err := submit(addr, tc.msg); smtpCode(err) != 550 {
			t.Errorf("%s: %v; want 550", tc.why, err)
		}
	}
	if err := submit(addr, "From: Me <alias0@example.test>\r\nSubject: mine\r\n\r\nhi\r\n"); err != nil {
		t.Fatalf("From: one's own alias: %v", err)
	}
	got := inbox(t, s, "u1@example.test", 1)
	if len(got) != 1 {
		t.Fatalf("u1 got %d messages, want only the one with an own From:", len(got))
	}
	head, _, _ := strings.Cut(string(got[0]), "\r\n\r\n")
	if !strings.Contains(head, "with ESMTPSA") || !strings.Contains(head, "authenticated as u0@example.test") {
		t.Fatalf("Received: does not name the user with ESMTPSA:\n%s", head)
	}

	_, free := startSubmissionWith(t, func(c *mta.InboundConfig) { c.AnyFrom = []string{"@example.test"} }, nil)
	if err := submit(free, "From: ceo@elsewhere.test\r\n\r\nhi\r\n"); err != nil {
		t.Fatalf("AnyFrom names the user's domain: %v", err)
	}
}

// busyAuth answers ErrBusy to the first n logins, then checks for real.
type busyAuth struct {
	mta.Authenticator
	n atomic.Int32
}

func (b *busyAuth) Authenticate(ctx context.Context, a, pw string, p userdata.Protocol) (userdata.User, error) {
	if b.n.Add(-1) >= 0 {
		return userdata.User{}, userdata.ErrBusy
	}
	return b.Authenticator.Authenticate(ctx, a, pw, p)
}

// TestSubmissionBusy: a login refused because too many password checks
// run is answered 454 4.7.0 and is not counted as a failure.
func TestSubmissionBusy(t *testing.T) {
	_, addr := startSubmissionWith(t, nil, func(a mta.Authenticator) mta.Authenticator {
		b := &busyAuth{Authenticator: a}
		b.n.Store(8)
		return b
	})
	try := func(pw string) error {
		c, err := smtp.DialStartTLS(addr, &tls.Config{InsecureSkipVerify: true})
		if err != nil {
			return err
		}
		defer c.Close()
		return c.Auth(sasl.NewPlainClient("", "u0@example.test", pw))
	}
	for i := range 8 {
		err := try("pw0")
		var se *smtp.SMTPError
		if !errors.As(err, &se) || se.Code != 454 || se.EnhancedCode != (smtp.EnhancedCode{4, 7, 0}) {
			t.Fatalf("busy login %d: %v; want 454 4.7.0", i, err)
		}
	}
	if err := try("pw0"); err != nil {
		t.Fatalf("after 8 busy answers (more than the lockout's 5): %v", err)
	}
}

// TestInboundNoStore: with no store able to take a body, MAIL is answered
// 451 4.3.0 instead of accepting a message that would wait; once one can,
// mail flows again.
func TestInboundNoStore(t *testing.T) {
	var down atomic.Bool
	down.Store(true)
	ctx := t.Context()
	s, err := open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	s.d.Store = &switchable{BodyStore: s.d.Store, down: &down}
	in, err := mta.NewInbound(mta.InboundConfig{Hostname: "mx.example.test", Logger: slog.New(slog.NewTextHandler(t.Output(), nil))}, s.db, s.d)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go in.Serve(l)
	defer in.Close()
	rc := dialRaw(t, l.Addr().String())
	rc.reply()
	rc.send("EHLO client.test")
	rc.reply()
	rc.send("MAIL FROM:<a@remote.test>")
	if r := rc.reply(); !strings.HasPrefix(r, "451 4.3.0") {
		t.Fatalf("MAIL with no store available: %q, want 451 4.3.0", r)
	}
	down.Store(false)
	rc.send("MAIL FROM:<a@remote.test>")
	if r := rc.reply(); !strings.HasPrefix(r, "250") {
		t.Fatalf("MAIL with the store back: %q, want 250", r)
	}
}

// switchable is a store whose Writable fails while down is set.
type switchable struct {
	mta.BodyStore
	down *atomic.Bool
}

func (s *switchable) Writable() error {
	if s.down.Load() {
		return msstore.ErrUnavailable
	}
	return nil
}
