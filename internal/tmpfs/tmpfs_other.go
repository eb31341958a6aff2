//go:build !linux

package tmpfs

import "testing"

// Mount skips the test: tmpfs is Linux only.
func Mount(t testing.TB, size int64) string {
	t.Skip("tmpfs needs Linux")
	return ""
}

// Free is not reached: Mount skips.
func Free(t testing.TB, path string) int64 { t.Skip("tmpfs needs Linux"); return 0 }

// Fill is not reached: Mount skips.
func Fill(t testing.TB, dir string, free int64) string { t.Skip("tmpfs needs Linux"); return "" }
