package mailsys_test

import (
	"io"
	"log/slog"
	"net"
	"net/smtp"
	"path/filepath"
	"strings"
	"testing"
	"time"

	goimap "github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/mailsys/mailsys"
	"github.com/mailsys/mailsys/msstore"
	"github.com/mailsys/mailsys/txlog"
	"github.com/mailsys/mailsys/userdata"
)

// TestComposeInMemory composes a System on backends the host program
// made: the in-memory Storage and UserDB and a TxLog of its own, with no
// DataDir. Mail sent over SMTP is read back over IMAP, and Shutdown leaves
// the given backends open for their owner.
func TestComposeInMemory(t *testing.T) {
	ctx := t.Context()
	store := msstore.NewMemory(1)
	users, err := userdata.NewMemory(userdata.MemoryConfig{Bodies: store, Argon2: userdata.Argon2Params{Time: 1, Memory: 64, Threads: 1}})
	if err != nil {
		t.Fatal(err)
	}
	log, err := txlog.Open(ctx, txlog.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	sys, err := mailsys.Open(ctx, mailsys.Config{Storage: store, UserDB: users, TxLog: log, Hostname: "mx.example.test",
		SMTPAddr: "127.0.0.1:0", IMAPAddr: "127.0.0.1:0", InsecureAuth: true, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if sys.Storage() != msstore.Storage(store) || sys.UserDB() != mailsys.UserDB(users) || sys.TxLog() != log || sys.Passwords() != nil {
		t.Fatal("the System does not run on the backends it was given")
	}
	if _, err := sys.EnsureUser(ctx, "ann@example.test", "pw"); err != nil {
		t.Fatal(err)
	}
	if err := sys.Start(ctx); err != nil {
		t.Fatal(err)
	}
	smtpAddr, imapAddr := sys.Addrs()[0].String(), sys.Addrs()[1].String()
	const body = "From: bob@example.net\r\nTo: ann@example.test\r\nSubject: in memory\r\n\r\nNo Pebble here.\r\n"
	if err := smtp.SendMail(smtpAddr, nil, "bob@example.net", []string{"ann@example.test"}, []byte(body)); err != nil {
		t.Fatal(err)
	}

	c, err := imapclient.DialInsecure(imapAddr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login("ann@example.test", "pw").Wait(); err != nil {
		t.Fatal(err)
	}
	var got []byte
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		sel, err := c.Select("INBOX", nil).Wait()
		if err != nil {
			t.Fatal(err)
		}
		if sel.NumMessages == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("INBOX has %d messages 5 s after the 250", sel.NumMessages)
		}
	}
	section := &goimap.FetchItemBodySection{}
	msgs, err := c.Fetch(goimap.SeqSetNum(1), &goimap.FetchOptions{BodySection: []*goimap.FetchItemBodySection{section}}).Collect()
	if err != nil || len(msgs) != 1 {
		t.Fatalf("FETCH: %v, %v", msgs, err)
	}
	got = msgs[0].FindBodySection(section)
	if !strings.HasSuffix(string(got), body) || !strings.HasPrefix(string(got), "Return-Path: <bob@example.net>\r\nReceived: ") {
		t.Errorf("BODY[] is\n%s\nwant the message with its Return-Path and Received fields on top", got)
	}
	c.Logout().Wait()

	if err := sys.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	// The given backends are the host program's: still open.
	u, err := users.LookupAddress(ctx, "ann@example.test")
	if err != nil {
		t.Fatalf("the UserDB after Shutdown: %v", err)
	}
	if usage, err := users.Usage(ctx, u.ID); err != nil || usage.Messages != 1 {
		t.Fatalf("usage after Shutdown: %+v, %v", usage, err)
	}
	if _, err := log.Accept(ctx, txlog.Envelope{From: "a@b.c", To: []string{"ann@example.test"}}, strings.NewReader("x")); err != nil {
		t.Errorf("the TxLog after Shutdown: %v", err)
	}
	for _, c := range []io.Closer{log, users, store} {
		if err := c.Close(); err != nil {
			t.Error(err)
		}
	}
}

// TestStartUndoes: a Start that fails partway (a port taken) closes the
// listeners it had bound already, and the System can start once the port
// is free.
func TestStartUndoes(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	free, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	freeAddr := free.Addr().String()
	free.Close()
	sys, err := mailsys.Open(t.Context(), mailsys.Config{DataDir: filepath.Join(t.TempDir(), "data"),
		SMTPAddr: freeAddr, IMAPAddr: taken.Addr().String(), InsecureAuth: true, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer sys.Shutdown(t.Context())
	if err := sys.Start(t.Context()); err == nil {
		t.Fatal("Start succeeded on a port in use")
	}
	if len(sys.Addrs()) != 0 {
		t.Errorf("after a failed Start the System lists listeners: %v", sys.Addrs())
	}
	// The SMTP listener bound before the failure is closed: its port is
	// free, and nothing answers on it.
	if c, err := net.DialTimeout("tcp", freeAddr, time.Second); err == nil {
		c.Close()
		t.Errorf("something still answers on %s after the failed Start", freeAddr)
	}
	taken.Close()
	if err := sys.Start(t.Context()); err != nil {
		t.Fatalf("Start once the port is free: %v", err)
	}
	if err := sys.Start(t.Context()); err == nil || !strings.Contains(err.Error(), "already started") {
		t.Errorf("a second Start: %v", err)
	}
	conn, err := net.DialTimeout("tcp", freeAddr, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	greeting := make([]byte, 4)
	if _, err := io.ReadFull(conn, greeting); err != nil || string(greeting) != "220 " {
		t.Errorf("SMTP greeting %q, %v", greeting, err)
	}
}
