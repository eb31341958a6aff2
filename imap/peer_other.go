//go:build !unix || aix

package imap

// socketClosed cannot tell here: a long command runs to its end.
func socketClosed(fd uintptr, isTLS bool) bool { return false }
