//go:build unix

package msstore_test

import (
	"bytes"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/mailsys/mailsys/msstore"
)

// checkPrivate fails t unless every directory under root (root included)
// is 0700 and every file 0600; it returns the files' names.
func checkPrivate(t *testing.T, root string) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch mode := info.Mode(); {
		case mode.IsDir() && mode.Perm() != 0o700:
			t.Errorf("directory %s is %04o, want 0700", path, mode.Perm())
		case mode.IsRegular() && mode.Perm() != 0o600:
			t.Errorf("file %s is %04o, want 0600", path, mode.Perm())
		case mode.IsRegular():
			files = append(files, d.Name())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// loosen makes the tree at root what an older version made under umask
// 022: directories 0755, files 0644.
func loosen(t *testing.T, root string) {
	t.Helper()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		mode := fs.FileMode(0o644)
		if d.IsDir() {
			mode = 0o755
		}
		return os.Chmod(path, mode)
	})
	if err != nil {
		t.Fatal(err)
	}
}

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
		all = append(all, checkPrivate(t, d)...)
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
		loosen(t, d)
	}
	var logs bytes.Buffer
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	fill(cfg)
	for _, d := range dirs {
		checkPrivate(t, d)
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
