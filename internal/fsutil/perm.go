package fsutil

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
)

// The modes the storage packages give what they create: only the owner may
// read the data (password hashes, mail), whatever the umask says.
const (
	DirMode  fs.FileMode = 0o700
	FileMode fs.FileMode = 0o600
)

// ModeChange is a permission change made by Tighten.
type ModeChange struct {
	Path     string
	Old, New fs.FileMode // permission bits
}

// Tighten makes the tree at root private to its owner: every directory
// with group or other permission bits becomes 0700, and every regular file
// loses its group and other bits (0644 becomes 0600, 0400 stays). Symbolic
// links are neither followed nor changed, except root itself, which may be
// a link to the directory. It returns the changes it made, in walk order,
// with paths under root as given;
// an entry it cannot read or change is skipped, and the errors are joined
// in the error returned with the changes made nonetheless. A missing root
// is no error. On Windows, where modes do not carry these bits, it does
// nothing.
func Tighten(root string) ([]ModeChange, error) {
	if runtime.GOOS == "windows" {
		return nil, nil
	}
	real, err := filepath.EvalSymlinks(root)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("fsutil: tighten: %w", err)
	}
	var changes []ModeChange
	var errs []error
	filepath.WalkDir(real, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			errs = append(errs, err)
			return nil // go on with what can be read
		}
		if !d.IsDir() && !d.Type().IsRegular() {
			return nil // symbolic links, sockets, devices
		}
		info, err := d.Info()
		if err != nil {
			errs = append(errs, err)
			return nil
		}
		old := info.Mode().Perm()
		mode := old &^ 0o077
		if d.IsDir() {
			if old&0o077 == 0 {
				return nil
			}
			mode = DirMode
		}
		if mode == old {
			return nil
		}
		// Keep the setuid, setgid and sticky bits as they are.
		if err := os.Chmod(path, mode|info.Mode()&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky)); err != nil {
			errs = append(errs, err)
			return nil
		}
		rel, _ := filepath.Rel(real, path)
		changes = append(changes, ModeChange{Path: filepath.Join(root, rel), Old: old, New: mode})
		return nil
	})
	return changes, errors.Join(errs...)
}

// maxLoggedChanges bounds the changes TightenLog logs one by one.
const maxLoggedChanges = 20

// TightenLog runs Tighten on root and logs what it did to log: each change
// at Warn with its path and old and new modes (the first few, then a
// summary of how many more), and a failure at Error. It returns Tighten's
// error, for callers that want it; a caller that goes on regardless need
// not look at it, it has been logged.
func TightenLog(log *slog.Logger, root string) error {
	changes, err := Tighten(root)
	for i, c := range changes {
		if i == maxLoggedChanges {
			log.Warn("tightened permissions of more files and directories", "root", root, "more", len(changes)-i)
			break
		}
		log.Warn("tightened permissions: the data directory was readable by others", "path", c.Path,
			"old", fmt.Sprintf("%04o", uint32(c.Old)), "new", fmt.Sprintf("%04o", uint32(c.New)))
	}
	if err != nil {
		log.Error("cannot make the data directory private", "root", root, "err", err)
	}
	return err
}
