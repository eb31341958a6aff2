package mailsys_test

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	goimap "github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-smtp"

	"github.com/mailsys/mailsys"
)

// TestSMTPToIMAP runs two Systems in one process; on each, a message sent
// over SMTP reaches an IMAP session in IDLE within a second, with its
// ENVELOPE from the index.
func TestSMTPToIMAP(t *testing.T) {
	for i := range 2 {
		sys, err := mailsys.Open(t.Context(), mailsys.Config{DataDir: t.TempDir(), Hostname: "mx.example.test",
			SMTPAddr: "127.0.0.1:0", IMAPAddr: "127.0.0.1:0", InsecureAuth: true, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		defer sys.Shutdown(t.Context())
		if _, err := sys.EnsureUser(t.Context(), "ann@example.test", "pw"); err != nil {
			t.Fatal(err)
		}
		if err := sys.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		smtpAddr, imapAddr := sys.Addrs()[0].String(), sys.Addrs()[1].String()

		exists := make(chan uint32, 16)
		c, err := imapclient.DialInsecure(imapAddr, &imapclient.Options{UnilateralDataHandler: &imapclient.UnilateralDataHandler{
			Mailbox: func(d *imapclient.UnilateralDataMailbox) {
				if d.NumMessages != nil {
					exists <- *d.NumMessages
				}
			},
		}})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := c.Login("ann@example.test", "pw").Wait(); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Select("INBOX", nil).Wait(); err != nil {
			t.Fatal(err)
		}
		idle, err := c.Idle()
		if err != nil {
			t.Fatal(err)
		}
		sent := time.Now()
		subject := "to system " + string(rune('A'+i))
		sc, err := smtp.Dial(smtpAddr)
		if err != nil {
			t.Fatal(err)
		}
		if err := sc.SendMail("bob@example.net", []string{"ann@example.test"},
			strings.NewReader("From: Bob <bob@example.net>\r\nSubject: "+subject+"\r\n\r\nhi\r\n")); err != nil {
			t.Fatalf("SMTP: %v", err)
		}
		sc.Quit()
		select {
		case n := <-exists:
			t.Logf("system %d: EXISTS %d reached IDLE %v after the send began", i, n, time.Since(sent))
		case <-time.After(time.Second):
			t.Fatalf("system %d: IDLE heard nothing within a second of the SMTP delivery", i)
		}
		idle.Close()
		if err := idle.Wait(); err != nil {
			t.Fatal(err)
		}
		msgs, err := c.Fetch(goimap.SeqSetNum(1), &goimap.FetchOptions{Envelope: true}).Collect()
		if err != nil || len(msgs) != 1 || msgs[0].Envelope.Subject != subject || msgs[0].Envelope.From[0].Name != "Bob" {
			t.Fatalf("system %d: FETCH ENVELOPE: %+v, %v", i, msgs, err)
		}
	}
}

// TestOpenRefusesUselessListeners: an IMAP or POP3 listener without TLS
// or InsecureAuth would let nobody log in; Open says so, before it touches
// the disk, instead of serving it.
func TestOpenRefusesUselessListeners(t *testing.T) {
	for _, cfg := range []mailsys.Config{{POP3Addr: "127.0.0.1:0"}, {IMAPAddr: "127.0.0.1:0"}} {
		cfg.DataDir, cfg.Logger = filepath.Join(t.TempDir(), "data"), slog.New(slog.DiscardHandler)
		if sys, err := mailsys.Open(t.Context(), cfg); err == nil {
			sys.Shutdown(t.Context())
			t.Errorf("Open took a listener nobody could log in to: %+v", cfg)
		}
		if _, err := os.Stat(cfg.DataDir); !os.IsNotExist(err) {
			t.Errorf("Open refused the config but made %s: %v", cfg.DataDir, err)
		}
	}
}
