// Package fsutil holds the durability and privacy primitives the storage
// packages share: syncing a file's data and a directory's entries, and
// keeping their trees readable by their owner only.
package fsutil

import "os"

// SyncDir makes a directory's entries (files created, renamed or removed in
// it) durable.
func SyncDir(path string) error {
	d, err := os.Open(path)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
