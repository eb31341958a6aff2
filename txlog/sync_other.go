//go:build !linux

package txlog

import "os"

func fsync(f *os.File) error { return f.Sync() }
