package resolve

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// errNoServers fails the lookups of a DNS without Servers.
var errNoServers = errors.New("no DNS servers configured")

// lookup asks for the records of type qtype at name, following the CNAME
// chain from it (in the reply, and by asking again for a target the reply
// left out), and returns at most maxRecords of them. The answer is
// authentic only if every reply on the way was. The whole lookup takes at
// most Timeout × Attempts × len(Servers), and ends earlier with ctx.
func (d *DNS) lookup(ctx context.Context, name string, qtype uint16) ([]dns.RR, Result, error) {
	kind := dns.TypeToString[qtype]
	qname, ok := normalise(name)
	if !ok {
		return nil, Result{}, fmt.Errorf("resolve: %s %q: not a domain name: %w", kind, name, ErrNotFound)
	}
	if len(d.Servers) == 0 {
		return nil, Result{}, fmt.Errorf("resolve: %s %s: %w", kind, qname, errNoServers)
	}
	ctx, cancel := context.WithTimeout(ctx, d.timeout()*time.Duration(d.attempts()*len(d.Servers)))
	defer cancel()

	authentic, target, hops := true, qname, 0
	for {
		reply, err := d.exchange(ctx, target, qtype)
		if err != nil {
			return nil, Result{}, fmt.Errorf("resolve: %s %s: %w", kind, qname, err)
		}
		authentic = authentic && reply.AuthenticatedData
		res := Result{Authentic: authentic}
		rrs, end, n := follow(reply.Answer, target, qtype, maxChain-hops)
		if hops += n; hops > maxChain {
			return nil, Result{}, fmt.Errorf("resolve: %s %s: CNAME chain longer than %d", kind, qname, maxChain)
		}
		switch {
		case len(rrs) > 0:
			return rrs[:min(len(rrs), maxRecords)], res, nil
		case reply.Rcode == dns.RcodeNameError:
			return nil, res, fmt.Errorf("resolve: %s %s: %w (NXDOMAIN for %s)", kind, qname, ErrNotFound, end)
		case end == target:
			return nil, res, fmt.Errorf("resolve: %s %s: %w (no %s records at %s)", kind, qname, ErrNotFound, kind, end)
		}
		target = end // a CNAME target that the reply left out: ask for it
	}
}

// follow walks answer from name along CNAME records, at most limit+1 of
// them, to the name that has records of type qtype or has no CNAME. It
// returns those records (of class IN), that name, and how many CNAME
// records it followed.
func follow(answer []dns.RR, name string, qtype uint16, limit int) ([]dns.RR, string, int) {
	for hops := 0; ; hops++ {
		var rrs []dns.RR
		next := ""
		for _, rr := range answer {
			h := rr.Header()
			if h.Class != dns.ClassINET || !strings.EqualFold(h.Name, name) {
				continue
			}
			if h.Rrtype == qtype {
				rrs = append(rrs, rr)
			} else if c, ok := rr.(*dns.CNAME); ok && next == "" {
				next = dns.CanonicalName(c.Target)
			}
		}
		if len(rrs) > 0 || next == "" || hops > limit {
			return rrs, name, hops
		}
		name = next
	}
}

// exchange asks the servers in turn, Attempts times over, for the records
// of type qtype at name, and returns the first reply that is an answer
// (NOERROR or NXDOMAIN). Its error lists what each server asked did.
func (d *DNS) exchange(ctx context.Context, name string, qtype uint16) (*dns.Msg, error) {
	var errs serverErrors
	for range d.attempts() {
		for _, server := range d.Servers {
			if err := ctx.Err(); err != nil {
				return nil, append(errs, err)
			}
			reply, err := d.ask(ctx, server, name, qtype)
			if err == nil {
				return reply, nil
			}
			errs = append(errs, fmt.Errorf("%s: %w", server, err))
		}
	}
	return nil, errs
}

// ask sends one query to server over UDP, and over TCP again if the reply
// was truncated, all within Timeout. The query asks for recursion and for
// DNSSEC (the AD bit, RFC 6840 §5.7, and EDNS0 with DO).
func (d *DNS) ask(ctx context.Context, server, name string, qtype uint16) (*dns.Msg, error) {
	ctx, cancel := context.WithTimeout(ctx, d.timeout())
	defer cancel()
	q := new(dns.Msg)
	q.SetQuestion(name, qtype) // and RD
	q.AuthenticatedData = true
	q.SetEdns0(udpSize, true)

	c := &dns.Client{Net: "udp", Timeout: d.timeout()}
	reply, _, err := c.ExchangeContext(ctx, q, server)
	if err == nil && reply.Truncated {
		c.Net = "tcp"
		if reply, _, err = c.ExchangeContext(ctx, q, server); err != nil {
			err = fmt.Errorf("over TCP after a truncated reply: %w", err)
		}
	}
	if err != nil {
		return nil, err
	}
	return reply, check(q, reply)
}

// check returns an error unless reply answers q with NOERROR or NXDOMAIN,
// untruncated.
func check(q, reply *dns.Msg) error {
	switch {
	case !reply.Response || reply.Opcode != dns.OpcodeQuery:
		return errors.New("not a reply to a query")
	case len(reply.Question) != 1 || reply.Question[0].Qtype != q.Question[0].Qtype ||
		reply.Question[0].Qclass != dns.ClassINET || !strings.EqualFold(reply.Question[0].Name, q.Question[0].Name):
		return errors.New("reply to another question")
	case reply.Truncated:
		return errors.New("truncated reply over TCP")
	case reply.Rcode != dns.RcodeSuccess && reply.Rcode != dns.RcodeNameError:
		if s, ok := dns.RcodeToString[reply.Rcode]; ok {
			return errors.New(s)
		}
		return errors.New("rcode " + strconv.Itoa(reply.Rcode))
	}
	return nil
}

// normalise returns name in lower case and fully qualified, and false if
// it is not a domain name: only printable ASCII without escapes, labels
// of at most 63 and names of at most 255 octets.
func normalise(name string) (string, bool) {
	for i := 0; i < len(name); i++ {
		if c := name[i]; c <= ' ' || c >= 0x7f || c == '\\' {
			return "", false
		}
	}
	if _, ok := dns.IsDomainName(name); !ok {
		return "", false
	}
	return dns.CanonicalName(name), true
}

// timeout and attempts are the fields of d with their defaults.
func (d *DNS) timeout() time.Duration {
	if d.Timeout > 0 {
		return d.Timeout
	}
	return defaultTimeout
}

func (d *DNS) attempts() int {
	if d.Attempts > 0 {
		return d.Attempts
	}
	return defaultAttempts
}

// serverErrors are the failures of the servers asked, in order: a
// temporary error.
type serverErrors []error

func (e serverErrors) Error() string {
	s := make([]string, len(e))
	for i, err := range e {
		s[i] = err.Error()
	}
	return strings.Join(s, "; ")
}

func (e serverErrors) Unwrap() []error { return e }
