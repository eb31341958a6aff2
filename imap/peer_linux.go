package imap

import (
	"syscall"
	"unsafe"
)

// Linux's poll(2) events (asm-generic/poll.h).
const (
	pollIn    = 0x1
	pollErr   = 0x8
	pollHup   = 0x10
	pollRDHup = 0x2000
)

// pollFd is struct pollfd.
type pollFd struct {
	fd      int32
	events  int16
	revents int16
}

// socketClosed reports whether the peer of socket fd has closed or reset
// it: ppoll(2) with no timeout tells POLLRDHUP (the peer's FIN) even with
// data left unread, which recv(MSG_PEEK) alone cannot.
func socketClosed(fd uintptr, isTLS bool) bool {
	p := pollFd{fd: int32(fd), events: pollIn | pollRDHup}
	var ts syscall.Timespec
	n, _, errno := syscall.Syscall6(syscall.SYS_PPOLL, uintptr(unsafe.Pointer(&p)), 1, uintptr(unsafe.Pointer(&ts)), 0, 0, 0)
	if errno != 0 || n == 0 {
		return false
	}
	switch {
	case p.revents&(pollErr|pollHup) != 0:
		return true
	case p.revents&pollRDHup == 0:
		return false
	case isTLS:
		return true
	}
	return peekEOF(fd)
}
