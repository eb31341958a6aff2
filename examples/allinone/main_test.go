package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	goimap "github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/mailsys/mailsys"
	"github.com/mailsys/mailsys/userdata"
)

// syncBuffer is a log sink the test can read while the server writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestAllInOne runs the program, sends a message over STARTTLS, stops it
// the way SIGTERM does and finds the message in the mailbox.
func TestAllInOne(t *testing.T) {
	addr, subAddr, subsAddr, imapAddr, imapsAddr := freeAddr(t), freeAddr(t), freeAddr(t), freeAddr(t), freeAddr(t)
	pop3Addr, pop3sAddr := freeAddr(t), freeAddr(t)
	data := t.TempDir()
	var logs syncBuffer
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-data", data, "-smtp", addr, "-submission", subAddr, "-submissions", subsAddr, "-imap", imapAddr, "-imaps", imapsAddr, "-pop3", pop3Addr, "-pop3s", pop3sAddr, "-hostname", "mail.example.test", "-user", "alice@example.test:secret"},
			slog.New(slog.NewTextHandler(&logs, nil)))
	}()
	for deadline := time.Now().Add(20 * time.Second); !strings.Contains(logs.String(), "ready"); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no ready line:\n%s", logs.String())
		}
	}

	c, err := smtp.DialStartTLS(addr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatalf("STARTTLS with the generated certificate: %v", err)
	}
	msg := "From: bob@example.net\r\nSubject: all in one\r\n\r\nIt works.\r\n"
	if err := c.SendMail("bob@example.net", []string{"alice@example.test"}, strings.NewReader(msg)); err != nil {
		t.Fatalf("send: %v", err)
	}
	c.Quit()
	if err := smtpSendTo(addr, "someone@elsewhere.example"); err == nil {
		t.Error("relay accepted")
	}
	// Alice submits a message to herself.
	sc, err := smtp.DialStartTLS(subAddr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := sc.Auth(sasl.NewPlainClient("", "alice@example.test", "secret")); err != nil {
		t.Fatalf("AUTH: %v", err)
	}
	if err := sc.SendMail("alice@example.test", []string{"alice@example.test"}, strings.NewReader("Subject: note to self\r\n\r\nx\r\n")); err != nil {
		t.Fatalf("submission: %v", err)
	}
	sc.Quit()
	// And once more on the implicit-TLS port.
	tc, err := smtp.DialTLS(subsAddr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := tc.Auth(sasl.NewPlainClient("", "alice@example.test", "secret")); err != nil {
		t.Fatalf("AUTH over implicit TLS: %v", err)
	}
	if err := tc.SendMail("alice@example.test", []string{"alice@example.test"}, strings.NewReader("Subject: over TLS\r\n\r\nx\r\n")); err != nil {
		t.Fatalf("submission over implicit TLS: %v", err)
	}
	tc.Quit()

	// Alice reads her mail over IMAP, implicit TLS and STARTTLS.
	ic, err := imapclient.DialTLS(imapsAddr, &imapclient.Options{TLSConfig: &tls.Config{InsecureSkipVerify: true}})
	if err != nil {
		t.Fatal(err)
	}
	if err := ic.Login("alice@example.test", "secret").Wait(); err != nil {
		t.Fatalf("IMAP LOGIN: %v", err)
	}
	var subjects []string
	for deadline := time.Now().Add(5 * time.Second); len(subjects) < 3 && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if _, err := ic.Select("INBOX", nil).Wait(); err != nil {
			t.Fatal(err)
		}
		msgs, err := ic.Fetch(goimap.SeqSetNum(1, 2, 3), &goimap.FetchOptions{Envelope: true}).Collect()
		if err != nil {
			t.Fatal(err)
		}
		subjects = nil
		for _, m := range msgs {
			subjects = append(subjects, m.Envelope.Subject)
		}
	}
	if want := []string{"all in one", "note to self", "over TLS"}; !slices.Equal(subjects, want) {
		t.Errorf("IMAP subjects %q, want %q", subjects, want)
	}
	ic.Logout().Wait()
	sc2, err := imapclient.DialStartTLS(imapAddr, &imapclient.Options{TLSConfig: &tls.Config{InsecureSkipVerify: true}})
	if err != nil {
		t.Fatal(err)
	}
	if err := sc2.Login("alice@example.test", "secret").Wait(); err != nil {
		t.Fatalf("IMAP LOGIN after STARTTLS: %v", err)
	}
	sc2.Logout().Wait()

	// And over POP3, implicit TLS, and STLS on the plain port.
	pc, err := tls.Dial("tcp", pop3sAddr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	pop := pop3Talk(t, pc, "USER alice@example.test\r\nPASS secret\r\nSTAT\r\nRETR 1\r\nQUIT\r\n")
	if !strings.Contains(pop, "+OK 3 ") || !strings.Contains(pop, "Subject: all in one") {
		t.Errorf("POP3 over implicit TLS:\n%s", pop)
	}
	plain, err := net.Dial("tcp", pop3Addr)
	if err != nil {
		t.Fatal(err)
	}
	if pop := pop3Talk(t, plain, "CAPA\r\nUSER alice@example.test\r\nQUIT\r\n"); !strings.Contains(pop, "STLS") || !strings.Contains(pop, "-ERR") {
		t.Errorf("POP3 before STLS should offer STLS and refuse USER:\n%s", pop)
	}

	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run: %v\n%s", err, logs.String())
	}

	sys, err := mailsys.Open(t.Context(), mailsys.Config{DataDir: data, Hostname: "mail.example.test", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer sys.Shutdown(t.Context())
	u, err := sys.UserDB().Authenticate(t.Context(), "alice@example.test", "secret", userdata.ProtoIMAP)
	if err != nil {
		t.Fatalf("login: %v", err)
	}
	inbox, err := sys.UserDB().Folder(t.Context(), u.ID, userdata.Inbox)
	if err != nil || inbox.Messages != 3 {
		t.Fatalf("INBOX: %+v, %v; want 3 messages", inbox, err)
	}
}

// pop3Talk sends a POP3 script on c and returns all the server said.
func pop3Talk(t *testing.T, c net.Conn, script string) string {
	t.Helper()
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, script); err != nil {
		t.Fatal(err)
	}
	out, _ := io.ReadAll(c)
	return string(out)
}

func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func smtpSendTo(addr, rcpt string) error {
	c, err := smtp.Dial(addr)
	if err != nil {
		return err
	}
	defer c.Close()
	return c.SendMail("bob@example.net", []string{rcpt}, strings.NewReader("Subject: x\r\n\r\nx\r\n"))
}
