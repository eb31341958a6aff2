package main

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net/smtp"
	"net/textproto"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	goimap "github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/mailsys/mailsys"
	"github.com/mailsys/mailsys/userdata"
)

// startCustom runs the program on free loopback ports with an accounts
// file for ann and bob (cheap hashes, for speed), and returns the
// System's addresses: SMTP, submission, IMAP, POP3.
func startCustom(t *testing.T) []string {
	t.Helper()
	cheap := userdata.Argon2Params{Time: 1, Memory: 64, Threads: 1}
	var file strings.Builder
	file.WriteString("# test accounts\n\n")
	for _, a := range []struct{ addr, pw string }{{"ann@example.org", "ann-pw"}, {"Bob@Example.org", "bob-pw"}} {
		h, err := userdata.HashPassword(a.pw, cheap)
		if err != nil {
			t.Fatal(err)
		}
		file.WriteString(a.addr + " " + h + " Some Name\n")
	}
	accounts := filepath.Join(t.TempDir(), "accounts.txt")
	if err := os.WriteFile(accounts, []byte(file.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan *mailsys.System, 1)
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-accounts", accounts, "-data", t.TempDir(), "-smtp", "127.0.0.1:0", "-submission", "127.0.0.1:0",
			"-imap", "127.0.0.1:0", "-pop3", "127.0.0.1:0"}, nil, nil, slog.New(slog.DiscardHandler), func(s *mailsys.System) { ready <- s })
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	})
	select {
	case sys := <-ready:
		var addrs []string
		for _, a := range sys.Addrs() {
			addrs = append(addrs, a.String())
		}
		return addrs
	case err := <-done:
		t.Fatalf("run ended before it was ready: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("not ready after 30 s")
	}
	return nil
}

// clientTLS trusts the program's certificate, made at start and never
// written anywhere: it is a demo's, on loopback.
var clientTLS = &tls.Config{InsecureSkipVerify: true, ServerName: "localhost"}

// login opens an IMAP session over STARTTLS.
func login(t *testing.T, addr, user, password string) (*imapclient.Client, error) {
	t.Helper()
	c, err := imapclient.DialStartTLS(addr, &imapclient.Options{TLSConfig: clientTLS})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, c.Login(user, password).Wait()
}

// waitMessages selects folder until it holds n messages, and returns
// their BODY[].
func waitMessages(t *testing.T, c *imapclient.Client, folder string, n uint32) []string {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		sel, err := c.Select(folder, nil).Wait()
		if err != nil {
			t.Fatal(err)
		}
		if sel.NumMessages >= n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s holds %d messages, want %d", folder, sel.NumMessages, n)
		}
	}
	section := &goimap.FetchItemBodySection{}
	msgs, err := c.Fetch(goimap.SeqSet{{Start: 1, Stop: 0}}, &goimap.FetchOptions{BodySection: []*goimap.FetchItemBodySection{section}}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	var bodies []string
	for _, m := range msgs {
		bodies = append(bodies, string(m.FindBodySection(section)))
	}
	return bodies
}

// sendMail sends msg over SMTP after STARTTLS (as smtp.SendMail would,
// but trusting the demo's certificate), and returns the first refusal.
func sendMail(addr, from string, to []string, msg []byte) error {
	c, err := smtp.Dial(addr)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.StartTLS(clientTLS); err != nil {
		return err
	}
	if err := c.Mail(from); err != nil {
		return err
	}
	for _, rcpt := range to {
		if err := c.Rcpt(rcpt); err != nil {
			return err
		}
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write(msg); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return c.Quit()
}

// TestSendAndRead: mail to ann over SMTP, and from ann to bob over
// submission (authenticated by the accounts file), is read over IMAP,
// marked by the filter; the filter files spam into Junk and refuses the
// EICAR test file; logins follow the accounts file.
func TestSendAndRead(t *testing.T) {
	addrs := startCustom(t)
	smtpAddr, submissionAddr, imapAddr := addrs[0], addrs[1], addrs[2]

	msg := "From: carol@example.net\r\nTo: ann@example.org\r\nSubject: hello\r\n\r\nHello Ann.\r\n"
	if err := sendMail(smtpAddr, "carol@example.net", []string{"ann@example.org"}, []byte(msg)); err != nil {
		t.Fatal(err)
	}
	spam := "From: carol@example.net\r\nTo: ann@example.org\r\nSubject: [SPAM] cheap\r\n\r\nBuy.\r\n"
	if err := sendMail(smtpAddr, "carol@example.net", []string{"ann@example.org"}, []byte(spam)); err != nil {
		t.Fatal(err)
	}
	virus := "From: carol@example.net\r\nTo: ann@example.org\r\nSubject: test\r\n\r\n" + eicar + "\r\n"
	err := sendMail(smtpAddr, "carol@example.net", []string{"ann@example.org"}, []byte(virus))
	var reply *textproto.Error
	if !errors.As(err, &reply) || reply.Code != 554 {
		t.Errorf("EICAR message: %v, want a 554", err)
	}

	ann, err := login(t, imapAddr, "ann@example.org", "ann-pw")
	if err != nil {
		t.Fatal(err)
	}
	inbox := waitMessages(t, ann, "INBOX", 1)
	if len(inbox) != 1 || !strings.Contains(inbox[0], "X-Custom-Filter: scanned\r\n") || !strings.HasSuffix(inbox[0], msg) {
		t.Errorf("ann's INBOX: %q", inbox)
	}
	junk := waitMessages(t, ann, "Junk", 1)
	if len(junk) != 1 || !strings.Contains(junk[0], "X-Custom-Filter: spam\r\n") || !strings.HasSuffix(junk[0], spam) {
		t.Errorf("ann's Junk: %q", junk)
	}

	// Submission: ann logs in with the accounts file's password, and
	// with no other (net/smtp quits after a refused AUTH).
	bad, err := smtp.Dial(submissionAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer bad.Close()
	if err := bad.StartTLS(clientTLS); err != nil {
		t.Fatal(err)
	}
	if err := bad.Auth(smtp.PlainAuth("", "ann@example.org", "bob-pw", "127.0.0.1")); err == nil {
		t.Error("submission took bob's password for ann")
	}
	c, err := smtp.Dial(submissionAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.StartTLS(clientTLS); err != nil {
		t.Fatal(err)
	}
	if err := c.Auth(smtp.PlainAuth("", "ann@example.org", "ann-pw", "127.0.0.1")); err != nil {
		t.Fatal(err)
	}
	toBob := "From: ann@example.org\r\nTo: bob@example.org\r\nSubject: hi Bob\r\n\r\nFrom Ann.\r\n"
	if err := c.Mail("ann@example.org"); err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt("bob@example.org"); err != nil {
		t.Fatal(err)
	}
	w, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte(toBob))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	c.Quit()

	bob, err := login(t, imapAddr, "BOB@example.org", "bob-pw") // addresses in any case
	if err != nil {
		t.Fatal(err)
	}
	if got := waitMessages(t, bob, "INBOX", 1); len(got) != 1 || !strings.HasSuffix(got[0], toBob) {
		t.Errorf("bob's INBOX: %q", got)
	}

	for _, bad := range []struct{ user, pw string }{{"ann@example.org", "bob-pw"}, {"nobody@example.org", "ann-pw"}, {"ann@example.org", ""}} {
		if _, err := login(t, imapAddr, bad.user, bad.pw); err == nil {
			t.Errorf("IMAP login %s with %q succeeded", bad.user, bad.pw)
		}
	}
}

// TestAccountsFile: the file's problems are all reported, with their lines.
func TestAccountsFile(t *testing.T) {
	h, err := userdata.HashPassword("x", userdata.Argon2Params{Time: 1, Memory: 64, Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	_, err = parseAccounts(strings.NewReader("# comment\nann@example.org " + h + "\nno-at " + h + "\nbob@example.org\nann@EXAMPLE.org " + h + "\ncarol@example.org plaintext\n"))
	for _, want := range []string{"line 3: \"no-at\" is not an address", "line 4: want ADDRESS HASH", "line 5: ann@example.org is on line 2 already", "line 6: carol@example.org"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v lacks %q", err, want)
		}
	}
	sample, err := os.Open("accounts.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer sample.Close()
	if accounts, err := parseAccounts(sample); err != nil || len(accounts) != 1 {
		t.Errorf("the sample accounts file: %v, %v", accounts, err)
	} else if ok, err := userdata.CheckPassword("correct horse battery staple", accounts[0].hash); !ok || err != nil {
		t.Errorf("the sample's password does not match its hash: %v, %v", ok, err)
	}
}
