// Package privatefs is a Pebble file system that keeps what Pebble
// creates private to the process's user, for the packages that keep a
// Pebble database (userdata, mta/queue).
package privatefs

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/mailsys/mailsys/internal/fsutil"
)

// privateFS makes the files and directories Pebble creates private to the
// process's user (fsutil.FileMode, fsutil.DirMode) whatever the umask:
// Pebble's own file system creates them 0666 and 0755, which a usual umask
// leaves world-readable, and the databases hold password hashes and mail.
//
// Directories are made with DirMode directly. Files are made by the wrapped
// file system and then changed with chmod. They are readable by others
// only in between, inside a directory that is already private (openKV
// tightens it before Pebble opens: the caller's job), so nobody else can
// reach them then.
//
// The chmod goes to the path on disk, so it is only done when the wrapped
// file system is the operating system's (vfs.Default, possibly wrapped):
// an in-memory one has no modes to protect.
type privateFS struct {
	vfs.FS
	disk bool
}

// New returns inner, making what it creates private (see privateFS).
func New(inner vfs.FS) vfs.FS {
	return &privateFS{FS: inner, disk: vfs.Root(inner) == vfs.Default && runtime.GOOS != "windows"}
}

// private removes the group and other permissions of the file at name.
func (p *privateFS) private(name string) error {
	if !p.disk {
		return nil
	}
	fi, err := os.Lstat(name)
	if err != nil {
		return fmt.Errorf("privatefs: %w", err)
	}
	if !fi.Mode().IsRegular() || fi.Mode().Perm()&0o077 == 0 {
		return nil
	}
	if err := os.Chmod(name, fi.Mode().Perm()&fsutil.FileMode); err != nil {
		return fmt.Errorf("privatefs: %w", err)
	}
	return nil
}

// opened makes the file just opened at name private, closing it if that
// fails.
func (p *privateFS) opened(name string, f vfs.File, err error) (vfs.File, error) {
	if err != nil {
		return f, err
	}
	if err := p.private(name); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// Create creates name as the wrapped file system does, private.
func (p *privateFS) Create(name string, category vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := p.FS.Create(name, category)
	return p.opened(name, f, err)
}

// OpenReadWrite opens (or creates) name as the wrapped file system does,
// private.
func (p *privateFS) OpenReadWrite(name string, category vfs.DiskWriteCategory, opts ...vfs.OpenOption) (vfs.File, error) {
	f, err := p.FS.OpenReadWrite(name, category, opts...)
	return p.opened(name, f, err)
}

// ReuseForWrite renames and reopens oldname as the wrapped file system
// does, private.
func (p *privateFS) ReuseForWrite(oldname, newname string, category vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := p.FS.ReuseForWrite(oldname, newname, category)
	return p.opened(newname, f, err)
}

// MkdirAll creates dir and its parents with DirMode, whatever perm says.
func (p *privateFS) MkdirAll(dir string, perm os.FileMode) error {
	return p.FS.MkdirAll(dir, fsutil.DirMode)
}

// Lock locks name as the wrapped file system does and makes the lock file
// private. The mode is changed by path: opening and closing the file again
// would drop the lock, an fcntl(2) lock on Unix.
func (p *privateFS) Lock(name string) (io.Closer, error) {
	c, err := p.FS.Lock(name)
	if err != nil {
		return c, err
	}
	if err := p.private(name); err != nil {
		return nil, errors.Join(err, c.Close())
	}
	return c, nil
}

// Unwrap returns the wrapped file system.
func (p *privateFS) Unwrap() vfs.FS { return p.FS }
