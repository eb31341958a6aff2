package tmpfs

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
)

// Mount mounts a tmpfs of size bytes on a new directory under t.TempDir and
// returns its path; the test's cleanup unmounts it. It skips the test when
// not root or when the mount fails (in a container without the
// capability, say).
func Mount(t testing.TB, size int64) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a tmpfs")
	}
	dir := filepath.Join(t.TempDir(), "mnt")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	opt := fmt.Sprintf("size=%d", size)
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", opt, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs here: %v %s", err, out)
	}
	// Lazily, so that a file a failed test left open does not keep it.
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
	return dir
}

// Free returns the bytes free on the file system holding path.
func Free(t testing.TB, path string) int64 {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		t.Fatal(err)
	}
	return int64(st.Bavail) * int64(st.Bsize)
}

// Fill creates a new file in dir that leaves about free bytes free on its file
// system (nothing, if fewer are free) and returns its path: removing it
// gives the space back.
func Fill(t testing.TB, dir string, free int64) string {
	t.Helper()
	f, err := os.CreateTemp(dir, "filler-")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if n := Free(t, dir) - free; n > 0 {
		// Written, not truncated to size: a sparse file would take nothing.
		buf := make([]byte, 1<<20)
		for n > 0 {
			m, err := f.Write(buf[:min(n, int64(len(buf)))])
			if err != nil {
				break // the file system is full: so much the better
			}
			n -= int64(m)
		}
	}
	return f.Name()
}
