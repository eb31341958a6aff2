//go:build unix

package fsutil_test

import (
	"bytes"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/mailsys/mailsys/internal/fsutil"
)

// TestTighten sets the umask: it must not run in parallel with others.
func TestTighten(t *testing.T) {
	defer syscall.Umask(syscall.Umask(0))
	base := t.TempDir()
	root := filepath.Join(base, "data")
	outside := filepath.Join(base, "outside")
	mk := func(path string, mode fs.FileMode, dir bool) {
		t.Helper()
		var err error
		if dir {
			err = os.Mkdir(path, mode)
		} else {
			err = os.WriteFile(path, []byte("x"), mode)
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
	}
	mk(root, 0o755, true)
	mk(filepath.Join(root, "a"), 0o644, false)
	mk(filepath.Join(root, "ro"), 0o444, false)
	mk(filepath.Join(root, "ok"), 0o600, false)
	mk(filepath.Join(root, "sub"), 0o777, true)
	mk(filepath.Join(root, "sub", "b"), 0o666, false)
	mk(filepath.Join(root, "sub", "x"), 0o751, false)
	mk(filepath.Join(root, "private"), 0o700, true)
	mk(filepath.Join(root, "private", "c"), 0o640, false)
	mk(outside, 0o755, true)
	mk(filepath.Join(outside, "d"), 0o644, false)
	if err := os.Symlink(outside, filepath.Join(root, "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(outside, "d"), filepath.Join(root, "filelink")); err != nil {
		t.Fatal(err)
	}
	// root is reached through a link to it, as a configured path may be.
	alias := filepath.Join(base, "alias")
	if err := os.Symlink(root, alias); err != nil {
		t.Fatal(err)
	}

	changes, err := fsutil.Tighten(alias)
	if err != nil {
		t.Fatalf("Tighten: %v", err)
	}
	want := map[string][2]fs.FileMode{
		"":          {0o755, 0o700},
		"a":         {0o644, 0o600},
		"ro":        {0o444, 0o400},
		"sub":       {0o777, 0o700},
		"sub/b":     {0o666, 0o600},
		"sub/x":     {0o751, 0o700},
		"private/c": {0o640, 0o600},
	}
	got := map[string][2]fs.FileMode{}
	for _, c := range changes {
		rel, err := filepath.Rel(alias, c.Path)
		if err != nil || strings.HasPrefix(rel, "..") {
			t.Errorf("change of %s, not under the root given, %s", c.Path, alias)
		}
		if rel == "." {
			rel = ""
		}
		got[filepath.ToSlash(rel)] = [2]fs.FileMode{c.Old, c.New}
	}
	if len(got) != len(want) {
		t.Errorf("changes = %v, want %v", got, want)
	}
	for rel, m := range want {
		if got[rel] != m {
			t.Errorf("change of %q = %o, want %o", rel, got[rel], m)
		}
		fi, err := os.Stat(filepath.Join(root, rel))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != m[1] {
			t.Errorf("%q is %o after Tighten, want %o", rel, fi.Mode().Perm(), m[1])
		}
	}
	// What the links point to, outside the tree, is left alone.
	for path, mode := range map[string]fs.FileMode{outside: 0o755, filepath.Join(outside, "d"): 0o644} {
		if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != mode {
			t.Errorf("%s, outside the tree behind a link: %v, %v; want it left %o", path, fi.Mode(), err, mode)
		}
	}

	// A second run finds nothing to do.
	if changes, err := fsutil.Tighten(root); err != nil || len(changes) != 0 {
		t.Errorf("Tighten again = %v, %v; want nothing", changes, err)
	}
	// A missing root is no error.
	if changes, err := fsutil.Tighten(filepath.Join(base, "missing")); err != nil || changes != nil {
		t.Errorf("Tighten(missing) = %v, %v", changes, err)
	}
}

func TestTightenLog(t *testing.T) {
	root := t.TempDir()
	for i := range 30 {
		path := filepath.Join(root, "f"+string(rune('a'+i%26))+strings.Repeat("x", i/26))
		if err := os.WriteFile(path, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(root, 0o755); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := fsutil.TightenLog(slog.New(slog.NewTextHandler(&buf, nil)), root); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 21 {
		t.Fatalf("%d log lines, want 20 changes and a summary:\n%s", len(lines), buf.String())
	}
	if !strings.Contains(lines[0], "old=0755 new=0700") || !strings.Contains(lines[1], "old=0644 new=0600") {
		t.Errorf("first lines lack the modes:\n%s\n%s", lines[0], lines[1])
	}
	if !strings.Contains(lines[20], "more=11") {
		t.Errorf("summary = %s, want more=11", lines[20])
	}
	if !slices.ContainsFunc(lines, func(l string) bool { return strings.Contains(l, "path="+root) }) {
		t.Errorf("no line names the root %s:\n%s", root, buf.String())
	}
}
