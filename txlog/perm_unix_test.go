//go:build unix

package txlog

import (
	"bytes"
	"context"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
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

// TestPrivateFiles: whatever the umask, the log's directory is 0700 and
// its segments 0600, and a tree made readable by others is tightened on
// Open, with a log line for each change. It sets the process's umask, so it
// must not run in parallel.
func TestPrivateFiles(t *testing.T) {
	defer syscall.Umask(syscall.Umask(0))
	base := t.TempDir()
	dir := filepath.Join(base, "data", "txlog")
	fill := func(logger *slog.Logger) {
		t.Helper()
		l := openLog(t, dir, func(c *Config) {
			smallSegments(c)
			if logger != nil {
				c.Logger = logger
			}
		})
		for i := range 8 {
			env := Envelope{From: "a@example.test", To: []string{"b@example.test"}, Received: time.Now()}
			if _, err := l.Accept(context.Background(), env, bytes.NewReader(testBody(uint64(i), 12<<10))); err != nil {
				t.Fatal(err)
			}
		}
		closeLog(t, l)
	}
	fill(nil)
	files := checkPrivate(t, filepath.Join(base, "data"))
	if len(files) < 2 || !strings.HasPrefix(files[0], "seg-") {
		t.Errorf("want several segments to check, have %v", files)
	}

	loosen(t, dir)
	var logs bytes.Buffer
	fill(slog.New(slog.NewTextHandler(&logs, nil)))
	checkPrivate(t, dir)
	for _, want := range []string{
		"path=" + dir + " old=0755 new=0700",
		"path=" + filepath.Join(dir, segName(1)) + " old=0644 new=0600",
	} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("the log does not say %q:\n%s", want, logs.String())
		}
	}
}
