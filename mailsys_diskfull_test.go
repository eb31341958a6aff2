package mailsys_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"net/textproto"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/mailsys/mailsys"
	"github.com/mailsys/mailsys/internal/tmpfs"
	"github.com/mailsys/mailsys/userdata"
)

const rcpt = "ann@example.test"

// TestDiskFull runs a whole System with its data directory on a small
// tmpfs and sends mail over SMTP from four clients until the disk is full,
// with bodies from 64 bytes to 64 KiB, then small ones on a disk full to
// the last byte: every message gets 250 or a 4xx (452 4.3.1 when there is
// no room for it), never a 5xx, a hang or a crash, while background
// deliveries fail on msstore and userdata. When space returns, sending works again and the
// deliveries that failed are retried without a restart. After Shutdown and
// a reopen, every message that got 250 is in the INBOX exactly once and no
// message that got a 4xx is.
func TestDiskFull(t *testing.T) {
	dir := tmpfs.Mount(t, 48<<20)
	ctx := t.Context()
	cfg := mailsys.Config{
		DataDir:  filepath.Join(dir, "data"),
		SMTPAddr: "127.0.0.1:0",
		Logger:   slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
	sys, err := mailsys.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sys.EnsureUser(ctx, rcpt, "secret"); err != nil {
		t.Fatal(err)
	}
	if err := sys.Start(ctx); err != nil {
		t.Fatal(err)
	}
	addr := sys.Addrs()[0].String()
	filler := tmpfs.Fill(t, dir, 4<<20)

	var (
		mu        sync.Mutex
		acked     = map[string]bool{}
		refused   = map[string]bool{}
		noStorage int // refusals with 452 4.3.1
		next      int
	)
	// send sends one new message of n lines and records its outcome.
	send := func(lines int) error {
		mu.Lock()
		next++
		id := fmt.Sprintf("m%d", next)
		mu.Unlock()
		if lines == 0 {
			lines = 1 << (crc32.ChecksumIEEE([]byte(id)) % 11) // 1 to 1024
		}
		code, enh, err := sendMail(addr, id, lines)
		mu.Lock()
		defer mu.Unlock()
		switch {
		case err == nil:
			acked[id] = true
		case code >= 400 && code < 500:
			refused[id] = true
			if code == 452 && enh == (smtp.EnhancedCode{4, 3, 1}) {
				noStorage++
			}
		default:
			return fmt.Errorf("message %s: %v (want 250 or a 4xx)", id, err)
		}
		return nil
	}
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Go(func() {
			for {
				mu.Lock()
				done := len(refused) >= 50 || next >= 2000
				mu.Unlock()
				if done {
					return
				}
				if err := send(0); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		t.FailNow()
	}
	if len(refused) == 0 || noStorage == 0 {
		t.Fatalf("the disk never filled: %d refused, %d with 452 4.3.1", len(refused), noStorage)
	}
	// Undoing the failed writes gave a little space back: take it, and send
	// the smallest messages, which may still fit in the last pages of the
	// transaction log and the store and reach the UserDB's reserve.
	filler2 := tmpfs.Fill(t, dir, 0)
	for range 20 {
		if err := send(1); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("while full: %d accepted, %d refused (%d with 452 4.3.1)", len(acked), len(refused), noStorage)

	// Space returns: sending works again, and the deliveries that failed
	// are retried.
	for _, f := range []string{filler, filler2} {
		if err := os.Remove(f); err != nil {
			t.Fatal(err)
		}
	}
	for range 5 {
		id := fmt.Sprintf("after%d", len(acked))
		if _, _, err := sendMail(addr, id, 16); err != nil {
			t.Fatalf("after space returned: %v", err)
		}
		acked[id] = true
	}
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		got := inbox(t, sys)
		if len(got) == len(acked) {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("only %d of %d acknowledged messages delivered without a restart", len(got), len(acked))
			break
		}
	}
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := sys.Shutdown(sctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}

	sys, err = mailsys.Open(ctx, cfg)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer sys.Shutdown(context.Background())
	got := inbox(t, sys)
	for id := range acked {
		if got[id] != 1 {
			t.Errorf("acknowledged message %s is in the INBOX %d times", id, got[id])
		}
	}
	for id, n := range got {
		if !acked[id] {
			t.Errorf("message %s is in the INBOX %d times but was refused (%v) or never sent", id, n, refused[id])
		}
	}
}

// sendMail sends message id, with a body of n lines of 64 bytes, to rcpt
// and returns the reply code and enhanced code of a refusal. Every exchange
// has a deadline: a server that hangs fails the test.
func sendMail(addr, id string, lines int) (int, smtp.EnhancedCode, error) {
	c, err := smtp.Dial(addr)
	if err != nil {
		return 0, smtp.EnhancedCode{}, err
	}
	defer c.Close()
	c.CommandTimeout, c.SubmissionTimeout = 20*time.Second, 20*time.Second
	body := fmt.Sprintf("Message-Id: <%s@test>\r\nSubject: %s\r\n\r\n", id, id) +
		strings.Repeat(strings.Repeat("x", 62)+"\r\n", lines)
	err = c.SendMail("sender@example.net", []string{rcpt}, strings.NewReader(body))
	if err == nil {
		err = c.Quit()
	}
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		return se.Code, se.EnhancedCode, err
	}
	return 0, smtp.EnhancedCode{}, err
}

// inbox returns how many times each message (by the id in its Message-Id)
// is in rcpt's INBOX, reading every body back from the store.
func inbox(t *testing.T, sys *mailsys.System) map[string]int {
	t.Helper()
	ctx := t.Context()
	u, err := sys.UserDB().LookupAddress(ctx, rcpt)
	if err != nil {
		t.Fatal(err)
	}
	f, err := sys.UserDB().Folder(ctx, u.ID, userdata.Inbox)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	err = sys.UserDB().Messages(ctx, u.ID, f.ID, nil, func(m *userdata.Message) error {
		b, err := sys.Storage().Open(ctx, m.Ref)
		if err != nil {
			return fmt.Errorf("UID %d: %w", m.UID, err)
		}
		defer b.Close()
		h, err := textproto.NewReader(bufio.NewReader(io.NewSectionReader(b, 0, b.Size()))).ReadMIMEHeader()
		if err != nil {
			return fmt.Errorf("UID %d: %w", m.UID, err)
		}
		id := strings.TrimSuffix(strings.TrimPrefix(h.Get("Message-Id"), "<"), "@test>")
		got[id]++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}
