// Package tlsconf holds the TLS defaults the protocol servers share:
// TLS 1.2 at least, and with TLS 1.2 only AEAD cipher suites with forward
// secrecy (ECDHE with AES-GCM or ChaCha20-Poly1305). Go's own defaults
// still offer two CBC-SHA1 suites for TLS 1.2; TLS 1.3 suites are not
// configurable and are all AEAD.
package tlsconf

import "crypto/tls"

// Suites are the TLS 1.2 cipher suites offered by default.
var Suites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

// Harden returns c with the defaults filled in where c leaves them to Go:
// a copy if anything changes, c itself otherwise; nil stays nil. Choices
// the host program made (its own CipherSuites or MinVersion) are kept.
func Harden(c *tls.Config) *tls.Config {
	if c == nil || (c.CipherSuites != nil && c.MinVersion != 0) {
		return c
	}
	c = c.Clone()
	if c.CipherSuites == nil {
		c.CipherSuites = append([]uint16(nil), Suites...)
	}
	if c.MinVersion == 0 {
		c.MinVersion = tls.VersionTLS12
	}
	return c
}
