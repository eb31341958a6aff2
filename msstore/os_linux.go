package msstore

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"github.com/mailsys/mailsys/internal/fsutil"
)

// lockDir takes an exclusive lock on a data directory, so that two
// processes never open one store. The lock lasts until the file is closed
// (or the process dies).
func lockDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, "LOCK"), os.O_RDWR|os.O_CREATE, fsutil.FileMode)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if err == syscall.EWOULDBLOCK {
			return nil, fmt.Errorf("%s is in use by another process", dir)
		}
		return nil, err
	}
	return f, nil
}
