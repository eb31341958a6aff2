// Package resolve is the DNS of mailsys's mail transfer: the MX, address,
// TXT and TLSA lookups that outbound delivery (mta/queue), DANE, MTA-STS
// and the inbound checks (SPF, DKIM, DMARC in mta/mailauth) make, behind
// one interface so that a host program can plug in its own resolver and
// tests a static zone.
//
// Every answer comes with a Result saying whether it was authenticated by
// DNSSEC (the AD bit of a validating resolver the system trusts), which
// DANE needs. ErrNotFound reports a name that does not exist or has no
// records of the type asked (NXDOMAIN or NODATA); any other error is
// temporary (SERVFAIL, a timeout, a network error) and the caller should
// try again later rather than act on it.
package resolve

import (
	"context"
	"errors"
	"net"
	"net/netip"
)

// ErrNotFound reports a name that does not exist, or that has no records
// of the type asked. Errors that do not match it (errors.Is) are
// temporary.
var ErrNotFound = errors.New("resolve: no such record")

// Result says how far an answer can be trusted.
type Result struct {
	// Authentic is true when the answer was validated by DNSSEC: the
	// resolver set the AD bit, and the system trusts that resolver (it
	// runs on the same host, or over a channel the operator vouches for).
	Authentic bool
}

// TLSA is a DANE TLSA record (RFC 6698).
type TLSA struct {
	Usage        uint8  // 0 PKIX-TA, 1 PKIX-EE, 2 DANE-TA, 3 DANE-EE
	Selector     uint8  // 0 full certificate, 1 SubjectPublicKeyInfo
	MatchingType uint8  // 0 exact, 1 SHA-256, 2 SHA-512
	Data         []byte // the certificate association data
}

// Resolver answers the DNS questions of mail transfer. Names are fully
// qualified or not (a trailing dot is optional) and compared without
// regard to case. Each method returns ErrNotFound (wrapped) when the name
// has no records of the type asked, another error when the answer could
// not be had, and the records otherwise, in the order the DNS gave them.
// Implementations are safe for concurrent use; returned slices are the
// caller's.
type Resolver interface {
	// LookupMX returns the MX records of domain; a null MX (RFC 7505)
	// is one record with Host ".".
	LookupMX(ctx context.Context, domain string) ([]*net.MX, Result, error)
	// LookupIP returns the A and AAAA records of host (IPv4 first): the
	// answer is ErrNotFound only when neither exists, and authentic only
	// when every part of it is.
	LookupIP(ctx context.Context, host string) ([]netip.Addr, Result, error)
	// LookupTXT returns the TXT records of name, each one string (the
	// character strings of a record joined, as RFC 7208 §3.3 says).
	LookupTXT(ctx context.Context, name string) ([]string, Result, error)
	// LookupTLSA returns the TLSA records of host for a TCP port:
	// those of _port._tcp.host.
	LookupTLSA(ctx context.Context, port int, host string) ([]TLSA, Result, error)
	// LookupAddr returns the names of a PTR lookup of ip (for SPF's ptr
	// mechanism and the Received field).
	LookupAddr(ctx context.Context, ip netip.Addr) ([]string, Result, error)
}
