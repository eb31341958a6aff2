package mta_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mailsys/mailsys/msstore"
	"github.com/mailsys/mailsys/mta"
)

// fullStore is a BodyStore whose Puts fail with ENOSPC while fail is above
// zero, counting down.
type fullStore struct {
	mta.BodyStore
	fail atomic.Int32
	puts atomic.Int32
}

func (f *fullStore) Put(ctx context.Context, r io.Reader, m msstore.Meta) (msstore.Ref, error) {
	f.puts.Add(1)
	if f.fail.Add(-1) >= 0 {
		return msstore.Ref{}, fmt.Errorf("fullStore: %w", syscall.ENOSPC)
	}
	return f.BodyStore.Put(ctx, r, m)
}

// startFull runs an inbound listener whose deliveries store bodies through
// a fullStore failing its first fails Puts.
func startFull(t *testing.T, dir string, fails int32) (*system, *fullStore, *mta.Inbound, string) {
	t.Helper()
	s := newSystem(t, dir)
	fs := &fullStore{BodyStore: s.store}
	fs.fail.Store(fails)
	d := *s.d
	d.Store = fs
	in, err := mta.NewInbound(mta.InboundConfig{Logger: slog.New(slog.NewTextHandler(t.Output(), nil))}, s.db, &d)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go in.Serve(l)
	return s, fs, in, l.Addr().String()
}

// TestInboundRetry: a delivery that fails after the 250 (the store's disk
// is full) is tried again in the background and lands once, without a
// restart and without a second body.
func TestInboundRetry(t *testing.T) {
	s, fs, in, addr := startFull(t, t.TempDir(), 2)
	defer func() {
		in.Shutdown(context.Background())
		s.close()
	}()
	if err := send(addr, "carol@example.net", []string{users[0]}, strings.NewReader("Subject: retried\r\n\r\nbody\r\n")); err != nil {
		t.Fatal(err)
	}
	if got := inbox(t, s, users[0], 1); len(got) != 1 {
		t.Fatalf("%d messages in the INBOX, want 1", len(got))
	}
	if n := fs.puts.Load(); n != 3 {
		t.Errorf("%d Puts, want 2 failed and 1 that worked", n)
	}
	bodies := 0
	s.store.Walk(t.Context(), func(msstore.Ref, msstore.Meta) error { bodies++; return nil })
	if bodies != 1 {
		t.Errorf("%d bodies in the store, want 1", bodies)
	}
}

// TestInboundRetryShutdown: Shutdown does not wait for a delivery's next
// try; the transaction stays pending and the next start's Recover delivers
// it.
func TestInboundRetryShutdown(t *testing.T) {
	dir := t.TempDir()
	s, _, in, addr := startFull(t, dir, 1000)
	const msg = "Return-Path: <client@example.org>\r\nSubject: later\r\n\r\nbody\r\n"
	if err := send(addr, "carol@example.net", []string{users[0]}, strings.NewReader(msg)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // the first attempt fails
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := in.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("Shutdown took %v: it waited for a retry", took)
	}
	s.close()

	s, err := open(t.Context(), dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	if n := len(s.log.Pending()); n != 1 {
		t.Fatalf("%d transactions pending after the restart, want 1", n)
	}
	if err := s.d.Recover(t.Context()); err != nil {
		t.Fatal(err)
	}
	got := inbox(t, s, users[0], 1)
	if len(got) != 1 {
		t.Fatalf("%d messages in the INBOX after Recover, want 1", len(got))
	}
	// Made from the log alone: the Return-Path on top, the client's gone.
	if !bytes.HasPrefix(got[0], []byte("Return-Path: <carol@example.net>\r\nReceived: from ")) ||
		!bytes.HasSuffix(got[0], []byte("\r\nSubject: later\r\n\r\nbody\r\n")) || bytes.Contains(got[0], []byte("client@")) {
		t.Errorf("delivered by Recover:\n%q", got[0])
	}
}
