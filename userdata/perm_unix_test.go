//go:build unix

package userdata_test

import (
	"bytes"
	"log/slog"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/mailsys/mailsys/internal/fsutil/fsutiltest"
	"github.com/mailsys/mailsys/userdata"
)

// fill opens a DB on cfg, writes to it and closes it.
func fill(t *testing.T, cfg userdata.Config, user string) {
	t.Helper()
	ctx := t.Context()
	db, err := userdata.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Domain(ctx, "example.test"); err != nil {
		if err := db.CreateDomain(ctx, userdata.Domain{Name: "example.test"}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.CreateUser(ctx, userdata.NewUser{Address: user + "@example.test", Password: "pw"}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Authenticate(ctx, user+"@example.test", "pw", userdata.ProtoIMAP); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestPrivateFiles: whatever the umask, the database and its mirror are
// 0700 directories of 0600 files, Pebble's files included; a tree made
// readable by others is tightened on Open, with a log line for each change.
// It sets the process's umask, so it must not run in parallel.
func TestPrivateFiles(t *testing.T) {
	defer syscall.Umask(syscall.Umask(0))
	base := t.TempDir()
	cfg := testConfig(t, filepath.Join(base, "data", "userdb"), nil)
	cfg.Mirror = filepath.Join(base, "mirror", "userdb")
	cfg.DiskReserve = 1 << 20
	fill(t, cfg, "alice")
	fill(t, cfg, "bob") // reopened: Pebble flushes the log it replays
	for _, root := range []string{filepath.Join(base, "data"), filepath.Join(base, "mirror")} {
		files := strings.Join(fsutiltest.CheckPrivate(t, root), " ")
		for _, want := range []string{"LOCK", "MANIFEST-", "OPTIONS-", ".log", ".sst", "marker."} {
			if !strings.Contains(files, want) {
				t.Errorf("%s has no %s* file to check: %s", root, want, files)
			}
		}
	}
	if files := fsutiltest.CheckPrivate(t, cfg.Dir); !strings.Contains(strings.Join(files, " "), "mailsys-reserve") {
		t.Errorf("no disk reserve to check among %v", files)
	}

	// A tree left readable by others, by an older version or by hand.
	fsutiltest.Loosen(t, cfg.Dir)
	fsutiltest.Loosen(t, cfg.Mirror)
	var logs bytes.Buffer
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	fill(t, cfg, "carol")
	fsutiltest.CheckPrivate(t, cfg.Dir)
	fsutiltest.CheckPrivate(t, cfg.Mirror)
	for _, want := range []string{
		"path=" + cfg.Dir + " old=0755 new=0700",
		"path=" + filepath.Join(cfg.Dir, "LOCK") + " old=0644 new=0600",
		"path=" + cfg.Mirror + " old=0755 new=0700",
	} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("the log does not say %q:\n%s", want, logs.String())
		}
	}
}
