package mta_test

import (
	"bufio"
	"crypto/tls"
	"encoding/base64"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/mailsys/mailsys/userdata"
)

// smtpScript runs a conversation on r and w: it reads the greeting (or
// nothing if greeted is set), then sends each command and returns the
// last line of each reply.
func smtpScript(t *testing.T, r *bufio.Reader, w net.Conn, greeted bool, cmds ...string) []string {
	t.Helper()
	readReply := func() string {
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				t.Fatalf("reading a reply: %v", err)
			}
			if len(line) < 4 || line[3] != '-' {
				return strings.TrimRight(line, "\r\n")
			}
		}
	}
	if !greeted {
		readReply()
	}
	var replies []string
	for _, c := range cmds {
		if _, err := w.Write([]byte(c + "\r\n")); err != nil {
			t.Fatal(err)
		}
		replies = append(replies, readReply())
	}
	return replies
}

// TestSMTPUTF8 (RFC 6531 §3.5): a non-ASCII address in MAIL FROM or RCPT
// TO is refused with 553 5.6.7 unless MAIL had the SMTPUTF8 parameter;
// with it the message is taken as any other.
func TestSMTPUTF8(t *testing.T) {
	s, addr := startInbound(t)
	if _, err := s.db.CreateUser(t.Context(), userdata.NewUser{Address: "jörg@example.test"}); err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(c)
	got := smtpScript(t, r, c, false,
		"EHLO client.example.net",
		"MAIL FROM:<jörg@bücher.example>",
		"MAIL FROM:<carol@example.net>",
		"RCPT TO:<jörg@example.test>",
		"RSET",
		"MAIL FROM:<jörg@bücher.example> SMTPUTF8",
		"RCPT TO:<jörg@example.test>",
		"RCPT TO:<ünknown@example.test>",
		"DATA",
	)
	want := []string{"250 ", "553 5.6.7 ", "250 ", "553 5.6.7 ", "250 ", "250 ", "250 ", "550 5.1.1 ", "354 "}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("reply %d: %q, want %q...", i, got[i], want[i])
		}
	}
	if !strings.Contains(got[1], "SMTPUTF8") {
		t.Errorf("the refusal does not say what is missing: %q", got[1])
	}
	if got := smtpScript(t, r, c, true, "Subject: grüße\r\n\r\nx\r\n."); !strings.HasPrefix(got[0], "250 ") {
		t.Fatalf("end of DATA: %q", got[0])
	}
	if msgs := inbox(t, s, "jörg@example.test", 1); len(msgs) != 1 || !strings.HasPrefix(string(msgs[0]), "Return-Path: <jörg@bücher.example>\r\n") {
		t.Fatalf("delivered with SMTPUTF8: %q", msgs)
	}
}

// TestSMTPUTF8Submission: the same on a submission listener, after AUTH.
func TestSMTPUTF8Submission(t *testing.T) {
	s, addr := startSubmission(t)
	ctx := t.Context()
	u, err := s.db.LookupAddress(ctx, "u0@example.test")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.db.AddAlias(ctx, "ü0@example.test", u.ID); err != nil {
		t.Fatal(err)
	}
	raw, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	raw.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(raw)
	if got := smtpScript(t, r, raw, false, "EHLO client.example.net", "STARTTLS"); !strings.HasPrefix(got[1], "220 ") {
		t.Fatalf("STARTTLS: %q", got)
	}
	c := tls.Client(raw, &tls.Config{InsecureSkipVerify: true})
	r = bufio.NewReader(c)
	plain := base64.StdEncoding.EncodeToString([]byte("\x00u0@example.test\x00pw0"))
	got := smtpScript(t, r, c, true,
		"EHLO client.example.net",
		"AUTH PLAIN "+plain,
		"MAIL FROM:<ü0@example.test>",
		"MAIL FROM:<u0@example.test>",
		"RCPT TO:<ü0@example.test>",
		"RSET",
		"MAIL FROM:<ü0@example.test> SMTPUTF8",
		"RCPT TO:<ü0@example.test>",
	)
	want := []string{"250 ", "235 ", "553 5.6.7 ", "250 ", "553 5.6.7 ", "250 ", "250 ", "250 "}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("reply %d: %q, want %q...", i, got[i], want[i])
		}
	}
}
