package userdata

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/mailsys/mailsys/internal/tmpfs"
	"github.com/mailsys/mailsys/msstore"
)

// diskFullDB opens a DB on a small tmpfs, with a user, and fills the file
// system to the last byte. It returns the DB's config, the user and the
// filler to remove when space should return.
func diskFullDB(t *testing.T, reserve int64, memTable uint64) (*DB, Config, UserID, string) {
	t.Helper()
	dir := tmpfs.Mount(t, 32<<20)
	cfg := Config{
		Dir:          filepath.Join(dir, "db"),
		DiskReserve:  reserve,
		CacheSize:    8 << 20,
		MemTableSize: memTable,
		Logger:       slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelInfo})),
	}
	d, err := Open(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.CreateDomain(t.Context(), Domain{Name: "example.test"}); err != nil {
		t.Fatal(err)
	}
	u, err := d.CreateUser(t.Context(), NewUser{Address: "ann@example.test"})
	if err != nil {
		t.Fatal(err)
	}
	return d, cfg, u.ID, tmpfs.Fill(t, dir, 0)
}

// appendOne appends a message to user's INBOX, failing the test if the
// call does not return within ten seconds (Pebble can block for ever after
// a failed commit).
func appendOne(t *testing.T, d *DB, user UserID, n int) error {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		inbox, err := d.Folder(t.Context(), user, Inbox)
		if err == nil {
			ref := msstore.Ref{Node: 1, Volume: 1, Offset: int64(n) * 1000, Size: 500, ID: uint64(n) + 1}
			_, err = d.Append(t.Context(), user, inbox.ID, NewMessage{Ref: ref, Size: 500, InternalDate: time.Now()})
		}
		done <- err
	}()
	select {
	case err := <-done:
		return err
	case <-time.After(10 * time.Second):
		t.Fatalf("append %d hangs", n)
		return nil
	}
}

// countInbox returns the messages user's INBOX says it has, and the number
// it lists.
func countInbox(t *testing.T, d *DB, user UserID) (int, int) {
	t.Helper()
	inbox, err := d.Folder(t.Context(), user, Inbox)
	if err != nil {
		t.Fatal(err)
	}
	listed := 0
	err = d.Messages(t.Context(), user, inbox.ID, nil, func(*Message) error { listed++; return nil })
	if err != nil {
		t.Fatal(err)
	}
	return int(inbox.Messages), listed
}

// TestDiskFull appends to a mailbox on a file system filled to the last
// byte. The write that meets ENOSPC spends the disk reserve and succeeds;
// the appends after it fail with ENOSPC (never a panic, never ErrFailed)
// while reads go on; once space returns the reserve is made again and
// appends succeed, without a reopen. After a reopen the INBOX holds exactly
// the acknowledged appends. With a large memtable the WAL grows page by
// page (its preallocation fails on a small disk) and meets ENOSPC first;
// with a small one, memtable flushes and WAL rotations run on the full
// disk too.
func TestDiskFull(t *testing.T) {
	for _, tc := range []struct {
		name     string
		memTable uint64
	}{{"wal", 64 << 20}, {"flush", 256 << 10}} {
		t.Run(tc.name, func(t *testing.T) {
			d, cfg, user, filler := diskFullDB(t, 1<<20, tc.memTable)
			acked, refused := 0, 0
			for n := 0; refused < 3 && n < 5000; n++ {
				err := appendOne(t, d, user, n)
				switch {
				case err == nil:
					acked++
				case errors.Is(err, syscall.ENOSPC) && !errors.Is(err, ErrFailed):
					refused++
				default:
					t.Fatalf("append %d on a full disk: %v", n, err)
				}
			}
			if refused == 0 {
				t.Fatal("the disk never filled")
			}
			if _, err := os.Stat(filepath.Join(cfg.Dir, reserveName)); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("the reserve was not spent: %v", err)
			}
			if m, l := countInbox(t, d, user); m != acked || l != acked {
				t.Errorf("while full: INBOX says %d messages and lists %d; %d acknowledged", m, l, acked)
			}

			// Space returns: appends go on without a reopen.
			if err := os.Remove(filler); err != nil {
				t.Fatal(err)
			}
			for n := 10000; n < 10005; n++ {
				if err := appendOne(t, d, user, n); err != nil {
					t.Fatalf("append after space returned: %v", err)
				}
				acked++
			}
			if fi, err := os.Stat(filepath.Join(cfg.Dir, reserveName)); err != nil || fi.Size() != 1<<20 {
				t.Errorf("the reserve was not made again: %v", err)
			}
			if err := d.Close(); err != nil {
				t.Fatal(err)
			}
			d, err := Open(t.Context(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			if m, l := countInbox(t, d, user); m != acked || l != acked {
				t.Errorf("after a reopen: INBOX says %d messages and lists %d; %d acknowledged", m, l, acked)
			}
			t.Logf("%d appends acknowledged, %d refused", acked, refused)
		})
	}
}

// TestDiskFullNoReserve shows what the reserve prevents: without it, the
// first commit that meets ENOSPC fails the database. The call returns
// ErrFailed instead of panicking, later calls fail at once instead of
// blocking, and Close returns. Reopened once space is back, the database
// holds every acknowledged append (and perhaps the one that failed: its
// outcome is unknown).
func TestDiskFullNoReserve(t *testing.T) {
	d, cfg, user, filler := diskFullDB(t, -1, 64<<20)
	acked := 0
	var err error
	for n := 0; n < 5000; n++ {
		if err = appendOne(t, d, user, n); err != nil {
			break
		}
		acked++
	}
	if !errors.Is(err, ErrFailed) {
		t.Fatalf("append on a full disk: %v, want ErrFailed", err)
	}
	if err := appendOne(t, d, user, 9999); !errors.Is(err, ErrFailed) {
		t.Errorf("append after the failure: %v, want ErrFailed", err)
	}
	if _, err := d.Folder(t.Context(), user, Inbox); !errors.Is(err, ErrFailed) {
		t.Errorf("read after the failure: %v, want ErrFailed", err)
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if err := appendOne(t, d, user, 9998); !errors.Is(err, ErrFailed) {
		t.Errorf("append after space returned, before a reopen: %v, want ErrFailed", err)
	}
	d.Close()
	d, err = Open(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if m, l := countInbox(t, d, user); m != l || m < acked || m > acked+1 {
		t.Errorf("after a reopen: INBOX says %d messages and lists %d; %d acknowledged", m, l, acked)
	}
	t.Logf("%d appends acknowledged before the database failed", acked)
}
