// Package tmpfs mounts small tmpfs file systems for the disk-full tests of
// the storage packages. It is for tests only: Mount skips the test unless it
// runs as root on Linux.
package tmpfs
