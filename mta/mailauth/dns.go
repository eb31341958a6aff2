package mailauth

import (
	"context"
	"errors"
	"net"
	"net/netip"

	"github.com/mailsys/mailsys/mta/resolve"
)

// The libraries tell a name that does not exist from a failure by the
// type of the error: a *net.DNSError (not wrapped: they use type
// assertions) with IsNotFound, or with IsTemporary. These adapters give
// them that from a resolve.Resolver.

// dnsError converts an error of a resolve.Resolver into the *net.DNSError
// the libraries understand: IsNotFound for resolve.ErrNotFound, temporary
// for anything else (a timeout for an expired context). The original error
// stays reachable with errors.Is and errors.As.
func dnsError(err error, name string) error {
	if err == nil {
		return nil
	}
	de := &net.DNSError{Err: err.Error(), Name: name, UnwrapErr: err}
	switch {
	case errors.Is(err, resolve.ErrNotFound):
		de.IsNotFound = true
	case errors.Is(err, context.DeadlineExceeded):
		de.IsTimeout, de.IsTemporary = true, true
	default:
		de.IsTemporary = true
	}
	return de
}

// txtFunc is the LookupTXT of go-msgauth's options over r, within ctx.
func txtFunc(ctx context.Context, r resolve.Resolver) func(string) ([]string, error) {
	return func(name string) ([]string, error) {
		txt, _, err := r.LookupTXT(ctx, name)
		return txt, dnsError(err, name)
	}
}

// spfResolver is the DNSResolver blitiri.com.ar/go/spf asks (the methods
// of a *net.Resolver it calls) over a resolve.Resolver.
type spfResolver struct{ r resolve.Resolver }

func (s spfResolver) LookupTXT(ctx context.Context, name string) ([]string, error) {
	txt, _, err := s.r.LookupTXT(ctx, name)
	return txt, dnsError(err, name)
}

// LookupMX leaves out a null MX (RFC 7505, host "."), which names no host
// whose addresses could match: a domain with only that has no MX records.
func (s spfResolver) LookupMX(ctx context.Context, name string) ([]*net.MX, error) {
	mxs, _, err := s.r.LookupMX(ctx, name)
	if err != nil {
		return nil, dnsError(err, name)
	}
	var hosts []*net.MX
	for _, mx := range mxs {
		if mx.Host != "." {
			hosts = append(hosts, mx)
		}
	}
	if len(hosts) == 0 {
		return nil, &net.DNSError{Err: "null MX", Name: name, IsNotFound: true}
	}
	return hosts, nil
}

func (s spfResolver) LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error) {
	ips, _, err := s.r.LookupIP(ctx, host)
	if err != nil {
		return nil, dnsError(err, host)
	}
	addrs := make([]net.IPAddr, len(ips))
	for i, ip := range ips {
		addrs[i] = net.IPAddr{IP: ip.AsSlice(), Zone: ip.Zone()}
	}
	return addrs, nil
}

func (s spfResolver) LookupAddr(ctx context.Context, addr string) ([]string, error) {
	ip, err := netip.ParseAddr(addr)
	if err != nil {
		return nil, &net.DNSError{Err: err.Error(), Name: addr, IsNotFound: true}
	}
	names, _, err := s.r.LookupAddr(ctx, ip)
	return names, dnsError(err, addr)
}
