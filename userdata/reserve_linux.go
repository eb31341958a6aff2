package userdata

import (
	"errors"
	"os"
	"syscall"
)

// fallocate allocates size bytes to f at once, without writing them.
func fallocate(f *os.File, size int64) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	if err := rc.Control(func(fd uintptr) {
		for {
			if ferr = syscall.Fallocate(int(fd), 0, 0, size); ferr != syscall.EINTR {
				return
			}
		}
	}); err != nil {
		return err
	}
	if ferr == syscall.EOPNOTSUPP {
		return errors.ErrUnsupported
	}
	return ferr
}
