package txlog

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/mailsys/mailsys/internal/tmpfs"
)

// TestDiskFull fills a small tmpfs: Accept fails (the batch is undone)
// while the disk is full, the log goes on once space returns, and exactly
// the acknowledged transactions are there after a reopen.
func TestDiskFull(t *testing.T) {
	dir := tmpfs.Mount(t, 4<<20)
	ctx := context.Background()
	cfg := Config{Dir: filepath.Join(dir, "log"), SegmentSize: 1 << 20, MaxBodySize: 256 << 10, Logger: slog.New(slog.DiscardHandler)}
	l, err := Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	// Leave about 1 MiB free.
	filler := filepath.Join(dir, "filler")
	if err := os.WriteFile(filler, make([]byte, 2<<20+512<<10), 0o600); err != nil {
		t.Fatal(err)
	}
	body := bytes.Repeat([]byte("x"), 64<<10)
	env := Envelope{From: "a@b", To: []string{"c@d"}}
	acked := map[uint64]bool{}
	full := false
	for range 100 {
		tx, err := l.Accept(ctx, env, bytes.NewReader(body))
		if err != nil {
			if errors.Is(err, ErrClosed) {
				t.Fatal(err)
			}
			full = true
			break
		}
		acked[tx.ID] = true
	}
	if !full {
		t.Fatal("the disk never filled")
	}
	if _, err := l.Accept(ctx, env, bytes.NewReader(body)); err == nil {
		t.Fatal("accepted while the disk is full")
	}
	// Space returns: the log goes on without a restart.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	for range 5 {
		tx, err := l.Accept(ctx, env, bytes.NewReader(body))
		if err != nil {
			t.Fatalf("after space returned: %v", err)
		}
		acked[tx.ID] = true
	}
	l.Close()
	l, err = Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	pending := l.Pending()
	if len(pending) != len(acked) {
		t.Errorf("%d pending after a reopen, %d acknowledged", len(pending), len(acked))
	}
	for _, tx := range pending {
		if !acked[tx.ID] {
			t.Errorf("transaction %d was refused but is pending", tx.ID)
		}
	}
	t.Logf("%d accepted around a full disk", len(acked))
	l.Close()
}
