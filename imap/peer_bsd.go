//go:build unix && !linux && !aix

package imap

// socketClosed reports whether the peer of socket fd has closed or reset
// it and nothing is left to read. A TLS client's close_notify, left
// unread, hides its close here (Linux's POLLRDHUP does not).
func socketClosed(fd uintptr, isTLS bool) bool { return peekEOF(fd) }
