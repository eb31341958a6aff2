//go:build !linux

package msstore

import "os"

func fdatasync(f *os.File) error { return f.Sync() }
