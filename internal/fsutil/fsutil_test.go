package fsutil_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/mailsys/mailsys/internal/fsutil"
)

func TestSync(t *testing.T) {
	dir := t.TempDir()
	f, err := os.Create(filepath.Join(dir, "f"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString("data"); err != nil {
		t.Fatal(err)
	}
	if err := fsutil.Fdatasync(f); err != nil {
		t.Errorf("Fdatasync: %v", err)
	}
	if err := fsutil.SyncDir(dir); err != nil {
		t.Errorf("SyncDir: %v", err)
	}
	if err := fsutil.SyncDir(filepath.Join(dir, "missing")); err == nil {
		t.Error("SyncDir of a missing directory succeeded")
	}
	f.Close()
	if err := fsutil.Fdatasync(f); err == nil {
		t.Error("Fdatasync of a closed file succeeded")
	}
}
