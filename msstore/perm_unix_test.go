//go:build unix

package msstore_test

import (
	"bytes"
	"log/slog"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/mailsys/mailsys/internal/fsutil/fsutiltest"
	"github.com/mailsys/mailsys/msstore"
)

// TestPrivateFiles: whatever the umask, every data directory is made 0700
// with 0600 files (volumes, checkpoint, manifest, lock, spool), and a tree
// made readable by others is tightened on open, with a log line for each
// change. It sets the process's umask, so it must not run in parallel.
func TestPrivateFiles(t *testing.T) {
	defer syscall.Umask(syscall.Umask(0))
	base := t.TempDir()
	dirs := []string{filepath.Join(base, "a", "store"), filepath.Join(base, "b", "store")}
	cfg := smallConfig(dirs[0])
	cfg.Dirs = []msstore.Dir{{Path: dirs[0]}, {Path: dirs[1]}}
	cfg.VolumeSize = 1 << 20 // a few volumes, in both directories
	cfg.MaxBodySize = 512 << 10
	cfg.SpoolMemory = 4 << 10 // bodies spill to the spool
	fill := func(cfg msstore.Config) {
		t.Helper()
		s := openStore(t, cfg)
		for i := range 8 {
			if _, err := s.Put(t.Context(), bytes.NewReader(bytes.Repeat([]byte{byte(i)}, 300<<10)), msstore.Meta{MessageID: "<m@test>"}); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.Checkpoint(t.Context()); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	fill(cfg)
	var all []string
	for _, d := range []string{filepath.Join(base, "a"), filepath.Join(base, "b")} {
		all = append(all, fsutiltest.CheckPrivate(t, d)...)
	}
	names := strings.Join(all, " ")
	for _, want := range []string{"vol-", "LOCK", "msstore.dirs", "msstore.ckpt"} {
		if !strings.Contains(names, want) {
			t.Errorf("no %s* file to check among %s", want, names)
		}
	}
	if len(all) < 6 {
		t.Errorf("too few files to check: %s", names)
	}

	for _, d := range dirs {
		fsutiltest.Loosen(t, d)
	}
	var logs bytes.Buffer
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	fill(cfg)
	for _, d := range dirs {
		fsutiltest.CheckPrivate(t, d)
		for _, want := range []string{
			"path=" + d + " old=0755 new=0700",
			"path=" + filepath.Join(d, "tmp") + " old=0755 new=0700",
			"path=" + filepath.Join(d, "msstore.dirs") + " old=0644 new=0600",
		} {
			if !strings.Contains(logs.String(), want) {
				t.Errorf("the log does not say %q:\n%s", want, logs.String())
			}
		}
	}
}
