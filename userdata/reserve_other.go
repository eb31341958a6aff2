//go:build !linux

package userdata

import (
	"errors"
	"os"
)

// fallocate is not available: the reserve is written instead.
func fallocate(f *os.File, size int64) error { return errors.ErrUnsupported }
