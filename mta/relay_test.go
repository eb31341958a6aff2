package mta_test

import (
	"crypto/tls"
	"strings"
	"testing"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/mailsys/mailsys/mta"
	"github.com/mailsys/mailsys/txlog"
)

// dialSubmission connects to a submission listener at addr over STARTTLS
// and logs in as u0.
func dialSubmission(t *testing.T, addr string) *smtp.Client {
	t.Helper()
	c, err := smtp.DialStartTLS(addr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Auth(sasl.NewPlainClient("", "u0@example.test", "pw0")); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestSubmissionRelay: with a Relay on the Deliverer, an authenticated
// user's recipients of other domains are taken, marked Relay in the
// log, with their DSN parameters; they count towards MaxRecipients but
// not as unknown recipients; mail for local users only keeps Rcpts nil.
// Without a Relay they are refused with 550 5.7.1.
func TestSubmissionRelay(t *testing.T) {
	s, plain := startSubmission(t) // a Deliverer without a Relay
	cfg := mta.InboundConfig{TLS: selfSigned(t), MaxRecipients: 3, MaxUnknownRecipients: 2}
	addr, envelopes := startLogged(t, s, cfg, s.db, takeAll{})

	c := dialSubmission(t, addr)
	if ok, _ := c.Extension("DSN"); !ok {
		t.Error("DSN not offered on submission")
	}
	if err := c.Mail("u0@example.test", &smtp.MailOptions{Return: smtp.DSNReturnHeaders, EnvelopeID: "sub-1"}); err != nil {
		t.Fatal(err)
	}
	for _, r := range []struct {
		to   string
		opts *smtp.RcptOptions
	}{
		{"u1@example.test", nil},
		{"friend@elsewhere.test", &smtp.RcptOptions{Notify: []smtp.DSNNotify{smtp.DSNNotifyFailure, smtp.DSNNotifyDelayed},
			OriginalRecipientType: smtp.DSNAddressTypeRFC822, OriginalRecipient: "Friend@Elsewhere.test"}},
		{"other@faraway.test", nil}, // a second one: the unknown-recipient limit of 2 does not count them
	} {
		if err := c.Rcpt(r.to, r.opts); err != nil {
			t.Fatalf("RCPT %s: %v", r.to, err)
		}
	}
	if err := c.Rcpt("fourth@faraway.test", nil); smtpCode(err) != 452 {
		t.Errorf("a fourth recipient, over MaxRecipients 3: %v; want 452", err)
	}
	w, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("From: u0@example.test\r\nSubject: out\r\n\r\nhi\r\n"))
	if err := w.Close(); err != nil {
		t.Fatalf("DATA: %v", err)
	}
	if err := c.SendMail("u0@example.test", []string{"u2@example.test"}, strings.NewReader("From: u0@example.test\r\n\r\nlocal\r\n")); err != nil {
		t.Fatalf("local mail: %v", err)
	}
	c.Quit()

	c = dialSubmission(t, plain)
	if err := c.Mail("u0@example.test", nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt("friend@elsewhere.test", nil); smtpCode(err) != 550 || enhanced(err) != "5.7.1" {
		t.Errorf("a recipient of another domain without a Relay: %v; want 550 5.7.1", err)
	}

	checkEnvelopes(t, envelopes(), []txlog.Envelope{
		{From: "u0@example.test", To: []string{"u1@example.test", "friend@elsewhere.test", "other@faraway.test"}, Ret: "HDRS", EnvID: "sub-1",
			Rcpts: []txlog.Rcpt{{}, {Notify: "FAILURE,DELAY", ORcpt: "rfc822;Friend@Elsewhere.test", Relay: true}, {Relay: true}}},
		{From: "u0@example.test", To: []string{"u2@example.test"}},
	})
}

// TestInboundNeverRelays: the MX listener refuses a recipient of another
// domain with 550 5.7.1 even when its Deliverer has a Relay, DSN
// parameters or not, and takes the local ones of the same transaction as
// plain local mail.
func TestInboundNeverRelays(t *testing.T) {
	s, _ := startInbound(t)
	addr, envelopes := startLogged(t, s, mta.InboundConfig{}, nil, takeAll{})
	c, err := smtp.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Mail("carol@example.net", nil); err != nil {
		t.Fatal(err)
	}
	for _, opts := range []*smtp.RcptOptions{nil, {Notify: []smtp.DSNNotify{smtp.DSNNotifyNever}}} {
		if err := c.Rcpt("someone@elsewhere.test", opts); smtpCode(err) != 550 || enhanced(err) != "5.7.1" {
			t.Errorf("RCPT of another domain (%+v): %v; want 550 5.7.1", opts, err)
		}
	}
	if err := c.Rcpt("u0@example.test", nil); err != nil {
		t.Fatal(err)
	}
	w, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("Subject: x\r\n\r\nx\r\n"))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	c.Quit()
	checkEnvelopes(t, envelopes(), []txlog.Envelope{{From: "carol@example.net", To: []string{"u0@example.test"}}})
}
