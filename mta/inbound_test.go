package mta_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/mailsys/mailsys/msstore"
	"github.com/mailsys/mailsys/mta"
	"github.com/mailsys/mailsys/txlog"
	"github.com/mailsys/mailsys/userdata"
)

// startInbound runs an inbound listener on loopback over a fresh system
// with the users u0..u3@example.test, the last one with a tiny quota that
// is already used up.
func startInbound(t *testing.T) (*system, string) {
	t.Helper()
	return startInboundWith(t, nil)
}

// startInboundWith is startInbound with configure applied to the
// listener's config first (if not nil).
func startInboundWith(t *testing.T, configure func(*mta.InboundConfig)) (*system, string) {
	t.Helper()
	ctx := t.Context()
	s, err := open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.db.CreateDomain(ctx, userdata.Domain{Name: "example.test"}); err != nil {
		t.Fatal(err)
	}
	for _, u := range users[:3] {
		if _, err := s.db.CreateUser(ctx, userdata.NewUser{Address: u}); err != nil {
			t.Fatal(err)
		}
	}
	full, err := s.db.CreateUser(ctx, userdata.NewUser{Address: users[3], Quota: 10})
	if err != nil {
		t.Fatal(err)
	}
	inbox, _ := s.db.Folder(ctx, full.ID, userdata.Inbox)
	if _, err := s.db.Append(ctx, full.ID, inbox.ID, userdata.NewMessage{Ref: msstore.Ref{Node: 9, ID: 9, Size: 10}, Size: 10}); err != nil {
		t.Fatal(err)
	}
	cfg := mta.InboundConfig{Hostname: "mx.example.test", MaxMessageSize: 64 << 10, Logger: slog.New(slog.NewTextHandler(t.Output(), nil))}
	if configure != nil {
		configure(&cfg)
	}
	in, err := mta.NewInbound(cfg, s.db, s.d)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go in.Serve(l)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		in.Shutdown(ctx)
		s.close()
	})
	return s, l.Addr().String()
}

// inbox returns the bodies in addr's INBOX, waiting up to 5 s for n.
func inbox(t *testing.T, s *system, addr string, n int) [][]byte {
	t.Helper()
	ctx := t.Context()
	u, err := s.db.LookupAddress(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	f, _ := s.db.Folder(ctx, u.ID, userdata.Inbox)
	var bodies [][]byte
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		bodies = nil
		err := s.db.Messages(ctx, u.ID, f.ID, nil, func(m *userdata.Message) error {
			b, err := s.store.Open(ctx, m.Ref)
			if err != nil {
				return err
			}
			defer b.Close()
			data, err := io.ReadAll(io.NewSectionReader(b, 0, b.Size()))
			bodies = append(bodies, data)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(bodies) >= n || time.Now().After(deadline) {
			return bodies
		}
	}
}

// send delivers a message over plain SMTP (go-smtp's SendMail insists on
// STARTTLS, which this listener offers only when configured with TLS).
func send(addr, from string, to []string, r io.Reader) error {
	c, err := smtp.Dial(addr)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.SendMail(from, to, r); err != nil {
		return err
	}
	return c.Quit()
}

func smtpCode(err error) int {
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		return se.Code
	}
	return 0
}

func TestInboundDelivers(t *testing.T) {
	s, addr := startInbound(t)
	msg := "From: carol@example.net\r\nSubject: hello\r\n\r\nline one\r\n.leading dot\r\n\xc3\xa9t\xc3\xa9 8-bit\r\n"
	if err := send(addr, "carol@example.net", []string{"u0@example.test", "U1@Example.Test"}, strings.NewReader(msg)); err != nil {
		t.Fatalf("SendMail: %v", err)
	}
	for _, u := range []string{"u0@example.test", "u1@example.test"} {
		got := inbox(t, s, u, 1)
		if len(got) != 1 {
			t.Fatalf("%s: %d messages, want 1", u, len(got))
		}
		if !bytes.HasPrefix(got[0], []byte("Return-Path: <carol@example.net>\r\nReceived: from ")) || !bytes.HasSuffix(got[0], []byte(msg)) {
			t.Errorf("%s: stored message is not Return-Path and Received followed by the message as sent:\n%q", u, got[0])
		}
	}
}

func TestInboundRefuses(t *testing.T) {
	_, addr := startInbound(t)
	for _, tc := range []struct {
		rcpt string
		code int
	}{
		{"nobody@example.test", 550},    // unknown local user
		{"someone@elsewhere.test", 550}, // relay
		{"u3@example.test", 452},        // over quota
		{"not-an-address", 501},         // go-smtp's syntax check
	} {
		err := send(addr, "carol@example.net", []string{tc.rcpt}, strings.NewReader("Subject: x\r\n\r\nx\r\n"))
		if smtpCode(err) != tc.code {
			t.Errorf("RCPT %s: %v; want %d", tc.rcpt, err, tc.code)
		}
	}
	big := strings.Repeat(strings.Repeat("0123456789abcdef", 4)+"\r\n", 1300) // 88 KB > 64 KiB
	err := send(addr, "carol@example.net", []string{"u0@example.test"}, strings.NewReader("Subject: big\r\n\r\n"+big))
	if smtpCode(err) != 552 {
		t.Errorf("oversized message: %v; want 552", err)
	}
	long := strings.Repeat("x", 5000) // one line over the limit
	err = send(addr, "carol@example.net", []string{"u0@example.test"}, strings.NewReader("Subject: long\r\n\r\n"+long+"\r\n"))
	if smtpCode(err) != 500 {
		t.Errorf("overlong line: %v; want 500", err)
	}
}

// TestInboundBadInput sends garbage, NUL bytes, a 200 KB line and a client
// that vanishes mid-DATA: each gets an error reply or a closed connection,
// and the server keeps serving.
func TestInboundBadInput(t *testing.T) {
	s, addr := startInbound(t)
	for _, junk := range []string{
		"\x00\x01\x02 garbage \xff\xfe\r\n",
		"EHLO x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<u0@example.test>\r\nDATA\r\nSubject: cut\r\n\r\nhalf a message", // then hangs up
		"EHLO x\r\n" + strings.Repeat("A", 200_000) + "\r\n",
		"HELO\x00x\r\nMAIL FROM:<\x00>\r\n",
	} {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		r := bufio.NewReader(c)
		if line, _ := r.ReadString('\n'); !strings.HasPrefix(line, "220") {
			t.Fatalf("greeting %q", line)
		}
		c.Write([]byte(junk))
		c.(*net.TCPConn).CloseWrite()
		io.Copy(io.Discard, r) // replies until the server closes
		c.Close()
	}
	// Still serving, and nothing half-delivered is visible.
	if err := send(addr, "a@example.net", []string{"u0@example.test"}, strings.NewReader("Subject: after\r\n\r\nok\r\n")); err != nil {
		t.Fatalf("server not serving after bad input: %v", err)
	}
	inbox(t, s, "u0@example.test", 1)
	time.Sleep(200 * time.Millisecond) // anything half-delivered would be there by now
	got := inbox(t, s, "u0@example.test", 1)
	if len(got) != 1 || !bytes.HasSuffix(got[0], []byte("Subject: after\r\n\r\nok\r\n")) {
		t.Fatalf("u0 has %d messages after the junk; want only the good one", len(got))
	}
}

// TestInboundPythonSmtplib uses a real client: Python's smtplib.
func TestInboundPythonSmtplib(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not installed")
	}
	s, addr := startInbound(t)
	host, port, _ := net.SplitHostPort(addr)
	script := `
import smtplib, sys
from email.message import EmailMessage
m = EmailMessage()
m["From"] = "carol@example.net"
m["To"] = "u2@example.test"
m["Subject"] = "from smtplib"
m.set_content("Hello from Python.\n")
with smtplib.SMTP(sys.argv[1], int(sys.argv[2]), timeout=10) as c:
    c.ehlo("client.example.net")
    assert c.has_extn("size") and c.has_extn("pipelining") and c.has_extn("8bitmime"), c.esmtp_features
    refused = c.send_message(m, to_addrs=["u2@example.test"])
    assert not refused, refused
    try:
        c.sendmail("carol@example.net", ["nobody@example.test"], "Subject: x\r\n\r\nx\r\n")
        sys.exit("unknown user accepted")
    except smtplib.SMTPRecipientsRefused as e:
        code = e.recipients["nobody@example.test"][0]
        assert code == 550, code
print("ok")
`
	out, err := exec.Command(py, "-c", script, host, port).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "ok") {
		t.Fatalf("smtplib: %v\n%s", err, out)
	}
	got := inbox(t, s, "u2@example.test", 1)
	if len(got) != 1 || !bytes.Contains(got[0], []byte("Subject: from smtplib")) {
		t.Fatalf("u2: %d messages: %q", len(got), got)
	}
}

// TestInboundFilter: a content filter rejects, files into Junk, and adds
// headers, before the 250.
func TestInboundFilter(t *testing.T) {
	s, _ := startInbound(t)
	filter := mta.FilterFunc(func(ctx context.Context, env txlog.Envelope, body io.ReaderAt, size int64) (mta.Verdict, error) {
		b := make([]byte, size)
		body.ReadAt(b, 0)
		switch {
		case bytes.Contains(b, []byte("VIRUS")):
			return mta.Verdict{Action: mta.Reject, Reply: mta.Reply{Code: 554, Enhanced: [3]int{5, 7, 1}, Message: "Virus found"}}, nil
		case bytes.Contains(b, []byte("cheap pills")):
			return mta.Verdict{Action: mta.Junk, Headers: []string{"X-Spam-Flag: YES"}}, nil
		}
		return mta.Verdict{Headers: []string{"X-Spam-Flag: NO"}}, nil
	})
	in, err := mta.NewInbound(mta.InboundConfig{Hostname: "mx.example.test", Filter: filter, Logger: slog.New(slog.DiscardHandler)}, s.db, s.d)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go in.Serve(l)
	defer in.Shutdown(context.Background())
	addr := l.Addr().String()

	if err := send(addr, "a@example.net", []string{"u0@example.test"}, strings.NewReader("Subject: x\r\n\r\nVIRUS\r\n")); smtpCode(err) != 554 {
		t.Errorf("virus: %v; want 554", err)
	}
	if err := send(addr, "a@example.net", []string{"u0@example.test"}, strings.NewReader("Subject: offer\r\n\r\ncheap pills\r\n")); err != nil {
		t.Fatal(err)
	}
	if err := send(addr, "a@example.net", []string{"u0@example.test"}, strings.NewReader("Subject: hi\r\n\r\nhello\r\n")); err != nil {
		t.Fatal(err)
	}
	got := inbox(t, s, "u0@example.test", 1)
	if len(got) != 1 || !bytes.Contains(got[0], []byte("X-Spam-Flag: NO\r\nSubject: hi")) {
		t.Errorf("INBOX: %q", got)
	}
	ctx := t.Context()
	u, _ := s.db.LookupAddress(ctx, "u0@example.test")
	junk, err := s.db.Folder(ctx, u.ID, "Junk")
	for deadline := time.Now().Add(5 * time.Second); err == nil && junk.Messages == 0 && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		junk, err = s.db.Folder(ctx, u.ID, "Junk")
	}
	if err != nil || junk.Messages != 1 {
		t.Errorf("Junk: %+v, %v; want the spam there", junk, err)
	}
}

// TestInboundChunking sends with BDAT (RFC 3030): chunks that together are
// the message, stored byte for byte; a BDAT past the size limit is
// refused; a client that vanishes between chunks delivers nothing.
func TestInboundChunking(t *testing.T) {
	s, addr := startInbound(t)
	talk := func(script string) string {
		t.Helper()
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write([]byte(script)); err != nil {
			t.Fatal(err)
		}
		c.(*net.TCPConn).CloseWrite()
		out, _ := io.ReadAll(c)
		return string(out)
	}
	msg := "Subject: chunks\r\n\r\nno dot-stuffing here:\r\n.\r\n..\r\nend\r\n"
	first, last := msg[:20], msg[20:]
	out := talk("EHLO client.example\r\nMAIL FROM:<a@example.net>\r\nRCPT TO:<u0@example.test>\r\n" +
		fmt.Sprintf("BDAT %d\r\n%s", len(first), first) +
		fmt.Sprintf("BDAT %d LAST\r\n%s", len(last), last) + "QUIT\r\n")
	if !strings.Contains(out, "250-CHUNKING") {
		t.Errorf("CHUNKING not advertised:\n%s", out)
	}
	if strings.Count(out, "\r\n250 ") < 5 { // EHLO's last line, MAIL, RCPT, two BDATs
		t.Fatalf("BDAT conversation:\n%s", out)
	}
	got := inbox(t, s, "u0@example.test", 1)
	if len(got) != 1 || !bytes.HasPrefix(got[0], []byte("Return-Path: <a@example.net>\r\nReceived: ")) || !bytes.HasSuffix(got[0], []byte(msg)) {
		t.Fatalf("stored after BDAT: %q", got)
	}

	big := strings.Repeat(strings.Repeat("x", 78)+"\r\n", 1000)
	out = talk("EHLO client.example\r\nMAIL FROM:<a@example.net>\r\nRCPT TO:<u1@example.test>\r\n" +
		fmt.Sprintf("BDAT %d LAST\r\n%s", len(big), big) + "QUIT\r\n")
	if !strings.Contains(out, "\r\n552 ") {
		t.Errorf("a %d-byte BDAT under a 64 KiB limit was not refused with 552:\n%s", len(big), out)
	}
	talk("EHLO client.example\r\nMAIL FROM:<a@example.net>\r\nRCPT TO:<u1@example.test>\r\nBDAT 10\r\n0123456789BDAT 100 LAST\r\nhalf")
	time.Sleep(200 * time.Millisecond)
	if got := inbox(t, s, "u1@example.test", 0); len(got) != 0 {
		t.Fatalf("u1 got %d messages from a refused and a cut BDAT", len(got))
	}
}
