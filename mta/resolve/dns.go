package resolve

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// DNS is a Resolver that asks recursive name servers over the network
// (RFC 1035), with EDNS0 (RFC 6891) and the DO bit set (RFC 3225) so that
// a validating resolver reports, by the AD bit of its reply, whether it
// authenticated the answer (RFC 4035 §3.2.3, RFC 6840 §5.7). That bit is
// the Result's Authentic, believed as it comes: Servers must be resolvers
// the host trusts to validate and reaches over a path nobody can tamper
// with (one on the same host, as DANE needs).
//
// Its fields are read by every lookup and must not change once lookups
// have started; a DNS is then safe for concurrent use. The zero value has
// no servers and fails every lookup; System makes one from
// /etc/resolv.conf.
type DNS struct {
	// Servers are the resolvers asked, "host:port" each ("127.0.0.1:53",
	// "[::1]:53"), in order: the next is asked when one fails (no reply
	// within Timeout, SERVFAIL, REFUSED, a network error). A reply that
	// the name does not exist, or has no records of the type, is final.
	Servers []string
	// Timeout bounds one query to one server, a retry over TCP of a
	// truncated reply included; zero means 5 s, the default of
	// resolv.conf(5).
	Timeout time.Duration
	// Attempts is how many times the list of Servers is gone through
	// before a lookup fails; zero means 2, as in resolv.conf(5).
	Attempts int
}

// Limits of a lookup.
const (
	// udpSize is the EDNS0 payload size advertised (the DNS flag day
	// 2020 value, safe from fragmentation).
	udpSize = 1232
	// maxChain is the most CNAME records followed from the name asked.
	maxChain = 8
	// maxRecords is the most records a lookup returns; more are dropped.
	maxRecords = 100
	// defaultTimeout and defaultAttempts are those of resolv.conf(5).
	defaultTimeout  = 5 * time.Second
	defaultAttempts = 2
)

// System returns a DNS over the name servers of /etc/resolv.conf, with its
// timeout and attempts options: the default resolver of the outbound
// queue. With no nameserver line it uses the local host (127.0.0.1 and
// ::1, port 53), as the C library does. For DANE, /etc/resolv.conf should
// name a validating resolver on the local host. The file is read once;
// an error means it could not be read.
func System() (*DNS, error) {
	return fromResolvConf("/etc/resolv.conf")
}

// fromResolvConf is System reading the resolv.conf(5) file at path.
func fromResolvConf(path string) (*DNS, error) {
	conf, err := dns.ClientConfigFromFile(path)
	if err != nil {
		return nil, fmt.Errorf("resolve: reading %s: %w", path, err)
	}
	servers := conf.Servers
	if len(servers) == 0 {
		servers = []string{"127.0.0.1", "::1"}
	}
	d := &DNS{
		Timeout:  time.Duration(conf.Timeout) * time.Second,
		Attempts: conf.Attempts,
	}
	for _, s := range servers {
		d.Servers = append(d.Servers, net.JoinHostPort(s, conf.Port))
	}
	return d, nil
}

// LookupMX implements Resolver. Hosts are in lower case and fully
// qualified; a null MX has Host ".".
func (d *DNS) LookupMX(ctx context.Context, domain string) ([]*net.MX, Result, error) {
	rrs, res, err := d.lookup(ctx, domain, dns.TypeMX)
	var mx []*net.MX
	for _, rr := range rrs {
		r := rr.(*dns.MX)
		mx = append(mx, &net.MX{Host: dns.CanonicalName(r.Mx), Pref: r.Preference})
	}
	return mx, res, err
}

// LookupIP implements Resolver. It asks for the A and the AAAA records at
// once; a temporary failure of either fails the lookup, so that a missing
// answer is never taken for a missing family.
func (d *DNS) LookupIP(ctx context.Context, host string) ([]netip.Addr, Result, error) {
	type answer struct {
		rrs []dns.RR
		res Result
		err error
	}
	var a, aaaa answer
	done := make(chan struct{})
	go func() {
		defer close(done)
		aaaa.rrs, aaaa.res, aaaa.err = d.lookup(ctx, host, dns.TypeAAAA)
	}()
	a.rrs, a.res, a.err = d.lookup(ctx, host, dns.TypeA)
	<-done

	res := Result{Authentic: a.res.Authentic && aaaa.res.Authentic}
	for _, err := range []error{a.err, aaaa.err} {
		if err != nil && !errors.Is(err, ErrNotFound) {
			return nil, Result{}, err
		}
	}
	if a.err != nil && aaaa.err != nil {
		return nil, res, fmt.Errorf("resolve: A/AAAA %s: %w", dns.CanonicalName(host), ErrNotFound)
	}
	var ips []netip.Addr
	for _, rr := range append(a.rrs, aaaa.rrs...) {
		var ip netip.Addr
		switch r := rr.(type) {
		case *dns.A:
			ip, _ = netip.AddrFromSlice(r.A.To4())
		case *dns.AAAA:
			ip, _ = netip.AddrFromSlice(r.AAAA.To16())
		}
		if ip.IsValid() && len(ips) < maxRecords {
			ips = append(ips, ip)
		}
	}
	return ips, res, nil
}

// LookupTXT implements Resolver.
func (d *DNS) LookupTXT(ctx context.Context, name string) ([]string, Result, error) {
	rrs, res, err := d.lookup(ctx, name, dns.TypeTXT)
	var txt []string
	for _, rr := range rrs {
		txt = append(txt, strings.Join(rr.(*dns.TXT).Txt, ""))
	}
	return txt, res, err
}

// LookupTLSA implements Resolver. A port outside 1-65535 has no records.
func (d *DNS) LookupTLSA(ctx context.Context, port int, host string) ([]TLSA, Result, error) {
	if port < 1 || port > 65535 {
		return nil, Result{}, fmt.Errorf("resolve: TLSA port %d of %s: %w", port, host, ErrNotFound)
	}
	rrs, res, err := d.lookup(ctx, "_"+strconv.Itoa(port)+"._tcp."+host, dns.TypeTLSA)
	var recs []TLSA
	for _, rr := range rrs {
		r := rr.(*dns.TLSA)
		data, herr := hex.DecodeString(r.Certificate)
		if herr != nil {
			continue // cannot come from the wire, which is binary
		}
		recs = append(recs, TLSA{Usage: r.Usage, Selector: r.Selector, MatchingType: r.MatchingType, Data: data})
	}
	return recs, res, err
}

// LookupAddr implements Resolver. Names are in lower case and fully
// qualified.
func (d *DNS) LookupAddr(ctx context.Context, ip netip.Addr) ([]string, Result, error) {
	if !ip.IsValid() {
		return nil, Result{}, fmt.Errorf("resolve: PTR of an invalid address: %w", ErrNotFound)
	}
	arpa, err := dns.ReverseAddr(ip.Unmap().String())
	if err != nil {
		return nil, Result{}, fmt.Errorf("resolve: PTR %v: %w", ip, err)
	}
	rrs, res, err := d.lookup(ctx, arpa, dns.TypePTR)
	var names []string
	for _, rr := range rrs {
		names = append(names, dns.CanonicalName(rr.(*dns.PTR).Ptr))
	}
	return names, res, err
}

var _ Resolver = (*DNS)(nil)
