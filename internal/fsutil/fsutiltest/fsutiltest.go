// Package fsutiltest holds the checks the components' permission tests
// share.
package fsutiltest

import (
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// CheckPrivate fails t unless every directory under root (root included)
// is 0700 and every file 0600; it returns the files' names.
func CheckPrivate(t testing.TB, root string) []string {
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

// Loosen makes the tree at root what an older version made under umask
// 022: directories 0755, files 0644.
func Loosen(t testing.TB, root string) {
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
