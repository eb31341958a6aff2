package mta_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/mailsys/mailsys/mta"

	"github.com/mailsys/mailsys/userdata"
)

// TestInboundReturnPath: the stored message starts with a Return-Path
// naming the envelope sender, above the Received field; the Return-Path
// fields the client put in the header (any case, folded, with white space
// before the colon) are gone, and a line of the body that looks like one
// is kept. Two recipients share one stored body.
func TestInboundReturnPath(t *testing.T) {
	s, addr := startInbound(t)
	msg := "Return-Path: <forged@example.org>\r\n" +
		"From: carol@example.net\r\n" +
		"return-path :\r\n\t<folded@example.org>\r\n" +
		"Subject: return path\r\n" +
		"RETURN-PATH:<upper@example.org>\r\n" +
		"Return-Paths: not this one\r\n" +
		"\r\n" +
		"Return-Path: <in the body, kept>\r\n"
	want := "From: carol@example.net\r\n" +
		"Subject: return path\r\n" +
		"Return-Paths: not this one\r\n" +
		"\r\n" +
		"Return-Path: <in the body, kept>\r\n"
	if err := send(addr, "carol@example.net", []string{"u0@example.test", "u1@example.test"}, strings.NewReader(msg)); err != nil {
		t.Fatal(err)
	}
	var refs []uint64
	for _, u := range []string{"u0@example.test", "u1@example.test"} {
		got := inbox(t, s, u, 1)
		if len(got) != 1 {
			t.Fatalf("%s: %d messages", u, len(got))
		}
		if !bytes.HasPrefix(got[0], []byte("Return-Path: <carol@example.net>\r\nReceived: from ")) {
			t.Errorf("%s: the message does not start with Return-Path then Received:\n%q", u, got[0])
		}
		if !bytes.HasSuffix(got[0], []byte(want)) || bytes.Count(got[0], []byte("example.org")) != 0 {
			t.Errorf("%s: the client's Return-Path fields were not all taken out of the header, or more was:\n%q", u, got[0])
		}
		refs = append(refs, messageRefs(t, s, u)...)
	}
	if len(refs) != 2 || refs[0] != refs[1] {
		t.Errorf("the two recipients' messages are bodies %v, want one body", refs)
	}

	// The null sender.
	if err := send(addr, "", []string{"u2@example.test"}, strings.NewReader("Subject: bounce\r\n\r\nx\r\n")); err != nil {
		t.Fatal(err)
	}
	if got := inbox(t, s, "u2@example.test", 1); len(got) != 1 || !bytes.HasPrefix(got[0], []byte("Return-Path: <>\r\nReceived: ")) {
		t.Errorf("null sender: %q", got)
	}
}

// messageRefs returns the body IDs of the messages in addr's INBOX.
func messageRefs(t *testing.T, s *system, addr string) []uint64 {
	t.Helper()
	ctx := t.Context()
	u, err := s.db.LookupAddress(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	f, err := s.db.Folder(ctx, u.ID, userdata.Inbox)
	if err != nil {
		t.Fatal(err)
	}
	var ids []uint64
	err = s.db.Messages(ctx, u.ID, f.ID, nil, func(m *userdata.Message) error {
		ids = append(ids, m.Ref.ID)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

// received returns the Received field at the top of a stored message,
// below its Return-Path.
func received(t *testing.T, msg []byte) string {
	t.Helper()
	_, rest, ok := bytes.Cut(msg, []byte("\r\n"))
	if !ok || !bytes.HasPrefix(rest, []byte("Received: ")) {
		t.Fatalf("no Received field below the Return-Path:\n%q", msg)
	}
	end := 0
	for {
		i := bytes.Index(rest[end:], []byte("\r\n"))
		if i < 0 {
			t.Fatalf("unterminated header: %q", msg)
		}
		end += i + 2
		if end == len(rest) || rest[end] != '\t' && rest[end] != ' ' {
			return string(rest[:end])
		}
	}
}

// checkReceived checks field against want, in which {id} stands for a
// message id and {date} for the date and time, which must be now.
func checkReceived(t *testing.T, field, want string) (id string) {
	t.Helper()
	re := regexp.QuoteMeta(want)
	re = strings.Replace(re, regexp.QuoteMeta("{id}"), `([A-Z2-7]{16})`, 1)
	re = strings.Replace(re, regexp.QuoteMeta("{date}"), `([^\r\n]+)`, 1)
	m := regexp.MustCompile("^" + re + "$").FindStringSubmatch(field)
	if m == nil {
		t.Errorf("Received field\n%q\nwant the shape\n%q", field, want)
		return ""
	}
	date, err := time.Parse(time.RFC1123Z, m[2])
	if err != nil || time.Since(date).Abs() > time.Minute {
		t.Errorf("Received date %q: %v, not now", m[2], err)
	}
	return m[1]
}

// converse sends script on a new connection to addr, reads until the
// server closes, and returns what it said.
func converse(t *testing.T, addr, script string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, script); err != nil {
		t.Fatal(err)
	}
	out, _ := io.ReadAll(c)
	return string(out)
}

// sendAs is send with a greeting name and MAIL options.
func sendAs(addr, helo, from string, opts *smtp.MailOptions, to []string, msg string) error {
	c, err := smtp.Dial(addr)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Hello(helo); err != nil {
		return err
	}
	if err := c.Mail(from, opts); err != nil {
		return err
	}
	for _, rcpt := range to {
		if err := c.Rcpt(rcpt, nil); err != nil {
			return err
		}
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := io.WriteString(w, msg); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return c.Quit()
}

// TestReceivedField checks the shape of the Received field (RFC 5321
// §4.4, RFC 3848, RFC 6531 §3.7.3) for each way of sending: EHLO or
// HELO, one recipient or two, SMTPUTF8, STARTTLS, IPv6, and submission
// after AUTH; and that a greeting name cannot break the field.
func TestReceivedField(t *testing.T) {
	s, addr := startInboundWith(t, func(c *mta.InboundConfig) { c.TLS = selfSigned(t) })
	const msg = "Subject: trace\r\n\r\nx\r\n"
	ids := map[string]bool{}
	check := func(rcpt, want string) {
		t.Helper()
		got := inbox(t, s, rcpt, len(messageRefs(t, s, rcpt)))
		if len(got) == 0 {
			t.Fatalf("%s: nothing delivered", rcpt)
		}
		id := checkReceived(t, received(t, got[len(got)-1]), want)
		if id != "" && ids[id] {
			t.Errorf("message id %s given twice", id)
		}
		ids[id] = true
	}
	wait := func(rcpt string, n int) {
		t.Helper()
		if got := inbox(t, s, rcpt, n); len(got) != n {
			t.Fatalf("%s: %d messages, want %d", rcpt, len(got), n)
		}
	}

	// EHLO, one recipient: "for" names it.
	if err := sendAs(addr, "client.example.net", "carol@example.net", nil, []string{"u0@example.test"}, msg); err != nil {
		t.Fatal(err)
	}
	wait("u0@example.test", 1)
	check("u0@example.test", "Received: from client.example.net ([127.0.0.1])\r\n"+
		"\tby mx.example.test (mailsys) with ESMTP id {id}\r\n"+
		"\tfor <u0@example.test>; {date}\r\n")

	// Two recipients: no "for".
	if err := sendAs(addr, "client.example.net", "carol@example.net", nil, []string{"u1@example.test", "u2@example.test"}, msg); err != nil {
		t.Fatal(err)
	}
	wait("u1@example.test", 1)
	check("u1@example.test", "Received: from client.example.net ([127.0.0.1])\r\n"+
		"\tby mx.example.test (mailsys) with ESMTP id {id};\r\n"+
		"\t{date}\r\n")

	// HELO: plain SMTP; a name with what would end the field or a comment
	// is defused.
	out := converse(t, addr, "HELO we(ird);na\x01me\r\nMAIL FROM:<carol@example.net>\r\nRCPT TO:<u0@example.test>\r\nDATA\r\n"+msg+".\r\nQUIT\r\n")
	if strings.Count(out, "\r\n250 ") != 4 {
		t.Fatalf("HELO conversation:\n%s", out)
	}
	wait("u0@example.test", 2)
	check("u0@example.test", "Received: from we?ird??na?me ([127.0.0.1])\r\n"+
		"\tby mx.example.test (mailsys) with SMTP id {id}\r\n"+
		"\tfor <u0@example.test>; {date}\r\n")

	// SMTPUTF8.
	if err := sendAs(addr, "client.example.net", "jörg@bücher.example", &smtp.MailOptions{UTF8: true}, []string{"u0@example.test"}, msg); err != nil {
		t.Fatal(err)
	}
	wait("u0@example.test", 3)
	check("u0@example.test", "Received: from client.example.net ([127.0.0.1])\r\n"+
		"\tby mx.example.test (mailsys) with UTF8SMTP id {id}\r\n"+
		"\tfor <u0@example.test>; {date}\r\n")

	// STARTTLS.
	c, err := smtp.DialStartTLS(addr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.SendMail("carol@example.net", []string{"u2@example.test"}, strings.NewReader(msg)); err != nil {
		t.Fatal(err)
	}
	c.Quit()
	wait("u2@example.test", 2)
	check("u2@example.test", "Received: from localhost ([127.0.0.1])\r\n"+
		"\tby mx.example.test (mailsys) with ESMTPS id {id}\r\n"+
		"\tfor <u2@example.test>; {date}\r\n")

	// IPv6.
	l6, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		t.Logf("no IPv6 loopback (%v): IPv6 not tried", err)
	} else {
		in6, err := mta.NewInbound(mta.InboundConfig{Hostname: "mx6.example.test", Logger: slog.New(slog.DiscardHandler)}, s.db, s.d)
		if err != nil {
			t.Fatal(err)
		}
		go in6.Serve(l6)
		defer in6.Shutdown(context.Background())
		if err := sendAs(l6.Addr().String(), "v6.example.net", "carol@example.net", nil, []string{"u1@example.test"}, msg); err != nil {
			t.Fatal(err)
		}
		wait("u1@example.test", 2)
		check("u1@example.test", "Received: from v6.example.net ([IPv6:::1])\r\n"+
			"\tby mx6.example.test (mailsys) with ESMTP id {id}\r\n"+
			"\tfor <u1@example.test>; {date}\r\n")
	}
}

// TestReceivedFieldSubmission: after AUTH over STARTTLS the field names
// the user in a comment and says ESMTPSA.
func TestReceivedFieldSubmission(t *testing.T) {
	s, addr := startSubmission(t)
	c, err := smtp.DialStartTLS(addr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Auth(sasl.NewPlainClient("", "u0@example.test", "pw0")); err != nil {
		t.Fatal(err)
	}
	if err := c.SendMail("u0@example.test", []string{"u1@example.test"}, strings.NewReader("From: u0@example.test\r\n\r\nx\r\n")); err != nil {
		t.Fatal(err)
	}
	c.Quit()
	got := inbox(t, s, "u1@example.test", 1)
	if len(got) != 1 {
		t.Fatalf("%d messages", len(got))
	}
	checkReceived(t, received(t, got[0]), "Received: from localhost ([127.0.0.1])\r\n"+
		"\t(authenticated as u0@example.test)\r\n"+
		"\tby mx.example.test (mailsys) with ESMTPSA id {id}\r\n"+
		"\tfor <u1@example.test>; {date}\r\n")
}
