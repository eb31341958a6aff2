//go:build !linux

package msstore

import (
	"os"
	"path/filepath"

	"github.com/mailsys/mailsys/internal/fsutil"
)

// lockDir only creates the lock file where flock is not available.
func lockDir(dir string) (*os.File, error) {
	return os.OpenFile(filepath.Join(dir, "LOCK"), os.O_RDWR|os.O_CREATE, fsutil.FileMode)
}
