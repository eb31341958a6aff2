//go:build unix && !aix

package imap

import "syscall"

// peekEOF reports whether socket fd is at its end, or reset, with nothing
// left to read: recv(2) with MSG_PEEK and MSG_DONTWAIT.
func peekEOF(fd uintptr) bool {
	var b [1]byte
	n, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	switch {
	case err == nil:
		return n == 0
	case err == syscall.ECONNRESET || err == syscall.EPIPE || err == syscall.ENOTCONN:
		return true
	}
	return false // EAGAIN: open, nothing to read
}
