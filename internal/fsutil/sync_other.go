//go:build !linux

package fsutil

import "os"

// Fdatasync flushes f to stable storage (fsync where fdatasync is missing).
func Fdatasync(f *os.File) error { return f.Sync() }
