package resolve

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// Static is a Resolver over a zone held in memory: for tests, and for a
// host program that overrides the DNS for a few names (split horizon). A
// name it holds nothing for is ErrNotFound; a name in Fail gives that
// error (a temporary failure). Its zero value is an empty zone; the
// setters may be called while lookups run.
type Static struct {
	mu   sync.RWMutex
	mx   map[string][]*net.MX
	ip   map[string][]netip.Addr
	txt  map[string][]string
	tlsa map[string][]TLSA
	ptr  map[netip.Addr][]string
	fail map[string]error
	// insecure names answer with Authentic false; every other answer is
	// authentic.
	insecure map[string]bool
}

// canonical is the form Static keys names by: lower case, no trailing dot.
func canonical(name string) string { return strings.ToLower(strings.TrimSuffix(name, ".")) }

func (s *Static) init() {
	if s.mx == nil {
		s.mx, s.ip, s.txt, s.tlsa = map[string][]*net.MX{}, map[string][]netip.Addr{}, map[string][]string{}, map[string][]TLSA{}
		s.ptr, s.fail, s.insecure = map[netip.Addr][]string{}, map[string]error{}, map[string]bool{}
	}
}

// SetMX sets the MX records of domain: "pref host" pairs, such as
// SetMX("example.com", "10 mx1.example.com", "20 mx2.example.com"); "0 ."
// is a null MX.
func (s *Static) SetMX(domain string, records ...string) {
	var mx []*net.MX
	for _, r := range records {
		pref, host, _ := strings.Cut(r, " ")
		p, err := strconv.ParseUint(pref, 10, 16)
		if err != nil {
			panic(fmt.Sprintf("resolve: SetMX %q: bad preference", r))
		}
		if host != "." {
			host = canonical(host) + "."
		}
		mx = append(mx, &net.MX{Host: host, Pref: uint16(p)})
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.init()
	s.mx[canonical(domain)] = mx
}

// SetIP sets the A and AAAA records of host.
func (s *Static) SetIP(host string, addrs ...netip.Addr) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.init()
	s.ip[canonical(host)] = slices.Clone(addrs)
}

// SetTXT sets the TXT records of name.
func (s *Static) SetTXT(name string, records ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.init()
	s.txt[canonical(name)] = slices.Clone(records)
}

// SetTLSA sets the TLSA records of host for a TCP port.
func (s *Static) SetTLSA(port int, host string, records ...TLSA) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.init()
	s.tlsa[tlsaName(port, host)] = slices.Clone(records)
}

// SetPTR sets the names of ip's PTR records.
func (s *Static) SetPTR(ip netip.Addr, names ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.init()
	s.ptr[ip.Unmap()] = slices.Clone(names)
}

// Fail makes every lookup of name fail with err (nil clears it): a
// temporary failure, unless err matches ErrNotFound.
func (s *Static) Fail(name string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.init()
	if err == nil {
		delete(s.fail, canonical(name))
	} else {
		s.fail[canonical(name)] = err
	}
}

// Insecure marks the answers for name as not authenticated by DNSSEC
// (every answer is, by default).
func (s *Static) Insecure(name string, insecure bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.init()
	s.insecure[canonical(name)] = insecure
}

func tlsaName(port int, host string) string {
	return "_" + strconv.Itoa(port) + "._tcp." + canonical(host)
}

// lookup returns m's records for name, or the error Fail set, or
// ErrNotFound.
func lookup[T any](s *Static, m func() map[string][]T, name, kind string) ([]T, Result, error) {
	name = canonical(name)
	s.mu.RLock()
	defer s.mu.RUnlock()
	res := Result{Authentic: !s.insecure[name]}
	if err := s.fail[name]; err != nil {
		return nil, Result{}, fmt.Errorf("resolve: %s %s: %w", kind, name, err)
	}
	var recs []T
	if s.mx != nil {
		recs = m()[name]
	}
	if len(recs) == 0 {
		return nil, res, fmt.Errorf("resolve: %s %s: %w", kind, name, ErrNotFound)
	}
	return slices.Clone(recs), res, nil
}

// LookupMX implements Resolver. The records are copies.
func (s *Static) LookupMX(ctx context.Context, domain string) ([]*net.MX, Result, error) {
	mx, res, err := lookup(s, func() map[string][]*net.MX { return s.mx }, domain, "MX")
	for i, m := range mx {
		c := *m
		mx[i] = &c
	}
	return mx, res, err
}

// LookupIP implements Resolver.
func (s *Static) LookupIP(ctx context.Context, host string) ([]netip.Addr, Result, error) {
	ips, res, err := lookup(s, func() map[string][]netip.Addr { return s.ip }, host, "A/AAAA")
	slices.SortStableFunc(ips, func(a, b netip.Addr) int {
		switch {
		case a.Is4() == b.Is4():
			return 0
		case a.Is4():
			return -1
		}
		return 1
	})
	return ips, res, err
}

// LookupTXT implements Resolver.
func (s *Static) LookupTXT(ctx context.Context, name string) ([]string, Result, error) {
	return lookup(s, func() map[string][]string { return s.txt }, name, "TXT")
}

// LookupTLSA implements Resolver. The records' Data are copies.
func (s *Static) LookupTLSA(ctx context.Context, port int, host string) ([]TLSA, Result, error) {
	recs, res, err := lookup(s, func() map[string][]TLSA { return s.tlsa }, tlsaName(port, host), "TLSA")
	for i := range recs {
		recs[i].Data = slices.Clone(recs[i].Data)
	}
	return recs, res, err
}

// LookupAddr implements Resolver.
func (s *Static) LookupAddr(ctx context.Context, ip netip.Addr) ([]string, Result, error) {
	s.mu.RLock()
	names := slices.Clone(s.ptr[ip.Unmap()])
	s.mu.RUnlock()
	if len(names) == 0 {
		return nil, Result{}, fmt.Errorf("resolve: PTR %v: %w", ip, ErrNotFound)
	}
	return names, Result{Authentic: true}, nil
}

var _ Resolver = (*Static)(nil)
