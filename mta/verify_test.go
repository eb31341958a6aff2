package mta_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/mailsys/mailsys/mta"
	"github.com/mailsys/mailsys/txlog"
)

// verifier is a Verifier that gives the verdict the message's Subject
// asks for, and keeps what it was called with: what the listener does
// with each verdict is under test, not how origins are checked.
type verifier struct {
	mu    sync.Mutex
	calls []verifyCall
}

type verifyCall struct {
	o   mta.Origin
	msg string
}

// authResults is the field the verifier adds to a message it passes.
const authResults = "Authentication-Results: mx.example.test; spf=pass smtp.mailfrom=example.net"

func (v *verifier) Verify(ctx context.Context, o mta.Origin, msg []byte) (mta.Verdict, error) {
	v.mu.Lock()
	v.calls = append(v.calls, verifyCall{o, string(msg)})
	v.mu.Unlock()
	switch {
	case bytes.Contains(msg, []byte("Subject: dmarc reject")):
		return mta.Verdict{Action: mta.Reject, Reply: mta.Reply{Code: 550, Enhanced: [3]int{5, 7, 26}, Message: "DMARC policy says no"}}, nil
	case bytes.Contains(msg, []byte("Subject: reject")):
		return mta.Verdict{Action: mta.Reject}, nil
	case bytes.Contains(msg, []byte("Subject: junk")):
		return mta.Verdict{Action: mta.Junk, Headers: []string{"Authentication-Results: mx.example.test; dmarc=fail"}}, nil
	case bytes.Contains(msg, []byte("Subject: error")):
		return mta.Verdict{}, errors.New("DNS is down")
	}
	return mta.Verdict{Headers: []string{authResults, "Broken\r\nInjected: x", "no colon"}}, nil
}

// called returns the calls so far.
func (v *verifier) called() []verifyCall {
	v.mu.Lock()
	defer v.mu.Unlock()
	return append([]verifyCall(nil), v.calls...)
}

// folderCount waits up to 5 s for addr's folder to hold n messages, and
// returns how many it holds.
func folderCount(t *testing.T, s *system, addr, folder string, n uint32) uint32 {
	t.Helper()
	u, err := s.db.LookupAddress(t.Context(), addr)
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		f, err := s.db.Folder(t.Context(), u.ID, folder)
		if err != nil {
			t.Fatal(err)
		}
		if f.Messages >= n || time.Now().After(deadline) {
			return f.Messages
		}
	}
}

// TestInboundVerifier: the MX listener calls the Verifier at the end of
// DATA with the client's address, greeting name, reverse path and TLS
// state and the message as sent, then refuses it (with the verdict's
// reply, 550 5.7.1 by default), files it into Junk, or stores it with the
// verdict's one-line fields on top and the Authentication-Results fields
// forged with its own name taken out of the header; an error is a 451.
func TestInboundVerifier(t *testing.T) {
	v := &verifier{}
	s, addr := startInboundWith(t, func(c *mta.InboundConfig) { c.Verifier = v; c.TLS = selfSigned(t) })
	loopback := netip.MustParseAddr("127.0.0.1")

	const head = "From: a@example.net\r\nSubject: hello\r\n"
	msg := "Authentication-Results: MX.Example.Test; dkim=pass header.d=bank.example\r\n" +
		"Authentication-Results: relay.example.net; spf=pass\r\n" +
		head +
		"Authentication-Results:\r\n (folded, forged) mx.example.test;\r\n dmarc=pass\r\n" +
		"\r\nAuthentication-Results: mx.example.test; in the body, kept\r\n"
	if err := sendAs(addr, "client.example", "a@example.net", nil, []string{"u0@example.test"}, msg); err != nil {
		t.Fatalf("send: %v", err)
	}
	calls := v.called()
	if len(calls) != 1 {
		t.Fatalf("%d calls of Verify, want 1", len(calls))
	}
	if want := (mta.Origin{IP: loopback, Hello: "client.example", MailFrom: "a@example.net"}); calls[0].o != want {
		t.Errorf("Origin %+v, want %+v", calls[0].o, want)
	}
	if calls[0].msg != msg {
		t.Errorf("Verify was given\n%q\nnot the message as sent\n%q", calls[0].msg, msg)
	}
	got := inbox(t, s, "u0@example.test", 1)
	if len(got) != 1 {
		t.Fatalf("%d messages in INBOX, want 1", len(got))
	}
	want := "Return-Path: <a@example.net>\r\n" + received(t, got[0]) + authResults + "\r\n" +
		"Authentication-Results: relay.example.net; spf=pass\r\n" + head +
		"\r\nAuthentication-Results: mx.example.test; in the body, kept\r\n"
	if string(got[0]) != want {
		t.Errorf("stored\n%q\nwant\n%q", got[0], want)
	}

	// Over TLS, with the null sender.
	c, err := smtp.DialStartTLS(addr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.SendMail("", []string{"u1@example.test"}, strings.NewReader("Subject: bounce\r\n\r\nx\r\n")); err != nil {
		t.Fatalf("send over TLS: %v", err)
	}
	c.Quit()
	calls = v.called()
	if want := (mta.Origin{IP: loopback, Hello: "localhost", TLS: true}); len(calls) != 2 || calls[1].o != want {
		t.Errorf("calls %+v; want a second with Origin %+v", calls, want)
	}

	for _, tc := range []struct {
		subject  string
		code     int
		enhanced string
	}{
		{"dmarc reject", 550, "5.7.26"},
		{"reject", 550, "5.7.1"},
		{"error", 451, "4.3.0"},
	} {
		err := send(addr, "a@example.net", []string{"u2@example.test"}, strings.NewReader("Subject: "+tc.subject+"\r\n\r\nx\r\n"))
		if smtpCode(err) != tc.code || enhanced(err) != tc.enhanced {
			t.Errorf("%s: %v; want %d %s", tc.subject, err, tc.code, tc.enhanced)
		}
	}
	if err := send(addr, "a@example.net", []string{"u2@example.test"}, strings.NewReader("Subject: junk\r\n\r\nx\r\n")); err != nil {
		t.Fatalf("junk: %v", err)
	}
	if n := folderCount(t, s, "u2@example.test", "Junk", 1); n != 1 {
		t.Errorf("u2's Junk has %d messages, want the junk one", n)
	}
	if got := inbox(t, s, "u2@example.test", 0); len(got) != 0 {
		t.Errorf("u2's INBOX has %d messages: the refused ones or the junk", len(got))
	}
}

// TestVerifierThenFilter: the Filter runs after the Verifier, on the
// message as stored: the Verifier's field on top, the forged one gone,
// Mailbox "Junk" if the Verifier said so (which a Filter's Accept does
// not undo); the Filter's fields go above the Verifier's.
func TestVerifierThenFilter(t *testing.T) {
	var (
		mu   sync.Mutex
		seen []string
		envs []txlog.Envelope
	)
	filter := mta.FilterFunc(func(ctx context.Context, env txlog.Envelope, body io.ReaderAt, size int64) (mta.Verdict, error) {
		b, err := io.ReadAll(io.NewSectionReader(body, 0, size))
		if err != nil {
			return mta.Verdict{}, err
		}
		mu.Lock()
		seen, envs = append(seen, string(b)), append(envs, env)
		mu.Unlock()
		return mta.Verdict{Headers: []string{"X-Spam-Flag: NO"}}, nil
	})
	s, addr := startInboundWith(t, func(c *mta.InboundConfig) { c.Verifier = &verifier{}; c.Filter = filter })
	const msg = "Authentication-Results: mx.example.test; dkim=pass\r\nSubject: hello\r\n\r\nx\r\n"
	if err := send(addr, "a@example.net", []string{"u0@example.test"}, strings.NewReader(msg)); err != nil {
		t.Fatal(err)
	}
	if err := send(addr, "a@example.net", []string{"u1@example.test"}, strings.NewReader("Subject: junk\r\n\r\nx\r\n")); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if want := authResults + "\r\nSubject: hello\r\n\r\nx\r\n"; len(seen) != 2 || seen[0] != want {
		t.Fatalf("the Filter saw %q; want first %q", seen, want)
	}
	if envs[0].Mailbox != "" || envs[1].Mailbox != "Junk" {
		t.Errorf("the Filter's envelopes had Mailbox %q and %q; want \"\" and Junk", envs[0].Mailbox, envs[1].Mailbox)
	}
	got := inbox(t, s, "u0@example.test", 1)
	if len(got) != 1 || !bytes.HasSuffix(got[0], []byte("X-Spam-Flag: NO\r\n"+authResults+"\r\nSubject: hello\r\n\r\nx\r\n")) {
		t.Errorf("stored %q; want the Filter's field, the Verifier's, then the message without the forged field", got)
	}
	if n := folderCount(t, s, "u1@example.test", "Junk", 1); n != 1 {
		t.Errorf("u1's Junk has %d messages, want 1: the Verifier's Junk stands", n)
	}
}

// TestSubmissionNoVerifier: a submission listener does not call the
// Verifier it is configured with.
func TestSubmissionNoVerifier(t *testing.T) {
	v := &verifier{}
	s, addr := startSubmissionWith(t, func(c *mta.InboundConfig) { c.Verifier = v }, nil)
	if err := submit(addr, "From: u0@example.test\r\nSubject: reject\r\n\r\nx\r\n"); err != nil {
		t.Fatalf("submission: %v", err)
	}
	got := inbox(t, s, "u1@example.test", 1)
	if len(got) != 1 || bytes.Contains(got[0], []byte("Authentication-Results")) {
		t.Errorf("u1 got %q; want the message, without the Verifier's field", got)
	}
	if calls := v.called(); len(calls) != 0 {
		t.Errorf("the submission listener called Verify %d times", len(calls))
	}
}

// TestSubmissionStripsForgedResults: an authenticated user cannot pass
// an Authentication-Results field off as this host's to a local user;
// another host's stays.
func TestSubmissionStripsForgedResults(t *testing.T) {
	s, addr := startSubmissionWith(t, nil, nil)
	msg := "From: u0@example.test\r\nAuthentication-Results: MX.example.test; dmarc=pass\r\n" +
		"Authentication-Results: other.example; spf=pass\r\nSubject: hi\r\n\r\nx\r\n"
	if err := submit(addr, msg); err != nil {
		t.Fatalf("submission: %v", err)
	}
	got := inbox(t, s, "u1@example.test", 1)
	if len(got) != 1 || bytes.Contains(got[0], []byte("dmarc=pass")) || !bytes.Contains(got[0], []byte("other.example; spf=pass")) {
		t.Errorf("u1 got %q", got)
	}
}
