package resolve

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// testZone is a recursive resolver in miniature, served over UDP and TCP
// on loopback: it chases CNAME records within its zone, sets AD when the
// query asked for DNSSEC and every name on the way is secure, truncates
// UDP replies to the size the query advertised, and records each query.
type testZone struct {
	rrs      map[string][]dns.RR // by owner, lower case and fully qualified
	insecure map[string]bool     // "owner" or "owner/TYPE": answered without AD
	servfail map[string]bool     // owners answered with SERVFAIL
	partial  map[string]bool     // owners whose CNAME is not chased
	refuse   bool                // answer every query with REFUSED
	queries  []query             // what was asked

	// mu guards the fields above: hold it (with change) to change them
	// while the server runs.
	mu sync.Mutex
}

// change calls f with z locked.
func (z *testZone) change(f func()) {
	z.mu.Lock()
	defer z.mu.Unlock()
	f()
}

// query is what the test server saw of one query.
type query struct {
	name       string
	qtype      uint16
	tcp        bool
	rd, ad, do bool
	size       uint16
}

func newZone(t *testing.T, records ...string) *testZone {
	t.Helper()
	z := &testZone{rrs: map[string][]dns.RR{}, insecure: map[string]bool{}, servfail: map[string]bool{}, partial: map[string]bool{}}
	for _, s := range records {
		rr, err := dns.NewRR(s)
		if err != nil {
			t.Fatalf("record %q: %v", s, err)
		}
		owner := dns.CanonicalName(rr.Header().Name)
		z.rrs[owner] = append(z.rrs[owner], rr)
	}
	return z
}

func (z *testZone) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	q := r.Question[0]
	_, tcp := w.RemoteAddr().(*net.TCPAddr)
	seen := query{name: q.Name, qtype: q.Qtype, tcp: tcp, rd: r.RecursionDesired, ad: r.AuthenticatedData}
	size := uint16(dns.MinMsgSize)
	if opt := r.IsEdns0(); opt != nil {
		seen.do, seen.size, size = opt.Do(), opt.UDPSize(), opt.UDPSize()
	}
	z.mu.Lock()
	defer z.mu.Unlock()
	z.queries = append(z.queries, seen)

	m := new(dns.Msg)
	m.SetReply(r)
	m.RecursionAvailable = true
	name := dns.CanonicalName(q.Name)
	secure := seen.do || seen.ad
	switch {
	case z.refuse:
		m.Rcode = dns.RcodeRefused
	case z.servfail[name]:
		m.Rcode = dns.RcodeServerFailure
	default:
		for range 20 {
			secure = secure && !z.insecure[name] && !z.insecure[name+"/"+dns.TypeToString[q.Qtype]]
			found := false
			var cname *dns.CNAME
			for _, rr := range z.rrs[name] {
				if rr.Header().Rrtype == q.Qtype {
					m.Answer, found = append(m.Answer, rr), true
				} else if c, ok := rr.(*dns.CNAME); ok {
					cname = c
				}
			}
			if len(z.rrs[name]) == 0 {
				m.Rcode = dns.RcodeNameError
			}
			if found || cname == nil {
				break // the records, NXDOMAIN or NODATA
			}
			m.Answer = append(m.Answer, cname)
			if z.partial[name] {
				break
			}
			name = dns.CanonicalName(cname.Target)
		}
	}
	m.AuthenticatedData = secure && m.Rcode != dns.RcodeServerFailure
	if r.IsEdns0() != nil {
		m.SetEdns0(4096, seen.do)
	}
	if !tcp {
		m.Truncate(int(size))
	}
	w.WriteMsg(m)
}

// asked returns the queries seen so far and forgets them.
func (z *testZone) asked() []query {
	z.mu.Lock()
	defer z.mu.Unlock()
	q := z.queries
	z.queries = nil
	return q
}

// serve serves z on a free port of 127.0.0.1, over UDP and TCP, until the
// test ends, and returns its address.
func serve(t *testing.T, z *testZone) string {
	t.Helper()
	for range 20 {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := pc.LocalAddr().String()
		l, err := net.Listen("tcp", addr)
		if err != nil {
			pc.Close() // the port is taken over TCP: try another
			continue
		}
		var started sync.WaitGroup
		started.Add(2)
		servers := []*dns.Server{
			{PacketConn: pc, Handler: z, NotifyStartedFunc: started.Done},
			{Listener: l, Handler: z, NotifyStartedFunc: started.Done},
		}
		for _, s := range servers {
			go s.ActivateAndServe()
		}
		started.Wait()
		t.Cleanup(func() {
			for _, s := range servers {
				s.Shutdown()
			}
		})
		return addr
	}
	t.Fatal("no free port for UDP and TCP")
	return ""
}

// silent returns the address of a UDP socket that never answers.
func silent(t *testing.T) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	return pc.LocalAddr().String()
}

const tlsaHash = "8cb0fc6c527506a053f4f14c8464bebbd6dede2738d11468dd953d7d6a3021f1"

func fixture(t *testing.T) (*testZone, *DNS) {
	t.Helper()
	z := newZone(t,
		"example.test. 300 IN MX 10 MX1.example.test.",
		"example.test. 300 IN MX 20 mx2.example.test.",
		"null.test. 300 IN MX 0 .",
		"mx1.example.test. 300 IN A 192.0.2.1",
		"mx1.example.test. 300 IN AAAA 2001:db8::1",
		"mx1.example.test. 300 IN A 192.0.2.2",
		"v6.test. 300 IN AAAA 2001:db8::6",
		"half.test. 300 IN A 192.0.2.3",
		"half.test. 300 IN AAAA 2001:db8::3",
		`txt.test. 300 IN TXT "v=spf1 " "ip4:192.0.2.0/24 " "-all"`,
		`txt.test. 300 IN TXT "other"`,
		"_25._tcp.mx1.example.test. 300 IN TLSA 3 1 1 "+tlsaHash,
		"1.2.0.192.in-addr.arpa. 300 IN PTR mx1.Example.test.",
		"1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa. 300 IN PTR mx1.example.test.",
		"alias.test. 300 IN CNAME alias2.test.",
		"alias2.test. 300 IN CNAME mx1.example.test.",
		"part.test. 300 IN CNAME target.test.",
		`target.test. 300 IN TXT "hello"`,
		"dangling.test. 300 IN CNAME gone.test.",
		"loop1.test. 300 IN CNAME loop2.test.",
		"loop2.test. 300 IN CNAME loop1.test.",
		"ploop1.test. 300 IN CNAME ploop2.test.",
		"ploop2.test. 300 IN CNAME ploop1.test.",
		"insecure.test. 300 IN MX 10 mx1.example.test.",
		"servfail.test. 300 IN MX 10 mx1.example.test.",
	)
	var big []string
	for i := range 8 {
		big = append(big, fmt.Sprintf("%c%s", 'a'+i, strings.Repeat("x", 199)))
	}
	rr, err := dns.NewRR(`big.test. 300 IN TXT "` + strings.Join(big, `" "`) + `"`)
	if err != nil {
		t.Fatal(err)
	}
	z.rrs["big.test."] = []dns.RR{rr}
	for i := range 150 {
		rr, err := dns.NewRR(fmt.Sprintf("many.test. 300 IN A 10.0.%d.%d", i/256, i%256))
		if err != nil {
			t.Fatal(err)
		}
		z.rrs["many.test."] = append(z.rrs["many.test."], rr)
	}
	z.insecure["insecure.test."] = true
	z.insecure["half.test./AAAA"] = true
	z.insecure["target.test."] = true
	z.servfail["servfail.test."] = true
	z.partial["part.test."] = true
	z.partial["ploop1.test."] = true
	z.partial["ploop2.test."] = true
	return z, &DNS{Servers: []string{serve(t, z)}, Timeout: 2 * time.Second, Attempts: 1}
}

func TestDNSMX(t *testing.T) {
	z, d := fixture(t)
	ctx := t.Context()
	mx, res, err := d.LookupMX(ctx, "EXAMPLE.test")
	if err != nil || !res.Authentic {
		t.Fatalf("LookupMX: %v %+v", err, res)
	}
	if len(mx) != 2 || *mx[0] != (net.MX{Host: "mx1.example.test.", Pref: 10}) || *mx[1] != (net.MX{Host: "mx2.example.test.", Pref: 20}) {
		t.Errorf("MX = %v %v", mx[0], mx[1])
	}
	q := z.asked()
	if len(q) != 1 {
		t.Fatalf("queries %+v, want one", q)
	}
	want := query{name: "example.test.", qtype: dns.TypeMX, rd: true, ad: true, do: true, size: 1232}
	if q[0] != want {
		t.Errorf("query %+v, want %+v", q[0], want)
	}

	mx, res, err = d.LookupMX(ctx, "null.test.")
	if err != nil || len(mx) != 1 || *mx[0] != (net.MX{Host: ".", Pref: 0}) || !res.Authentic {
		t.Errorf("null MX: %v %v %+v", mx, err, res)
	}
	_, res, err = d.LookupMX(ctx, "insecure.test")
	if err != nil || res.Authentic {
		t.Errorf("insecure MX: %v %+v, want an answer without Authentic", err, res)
	}
}

func TestDNSNotFound(t *testing.T) {
	z, d := fixture(t)
	ctx := t.Context()
	for _, c := range []struct {
		name, kind string
		lookup     func() (Result, error)
		queries    int
	}{
		{"NXDOMAIN", "NXDOMAIN", func() (Result, error) { _, r, err := d.LookupMX(ctx, "nx.test"); return r, err }, 1},
		{"NODATA", "no TXT records", func() (Result, error) { _, r, err := d.LookupTXT(ctx, "example.test"); return r, err }, 1},
		{"CNAME to NXDOMAIN", "NXDOMAIN for gone.test.", func() (Result, error) { _, r, err := d.LookupTXT(ctx, "dangling.test"); return r, err }, 1},
		{"no address", "A/AAAA", func() (Result, error) { _, r, err := d.LookupIP(ctx, "example.test"); return r, err }, 2},
		{"no PTR", "NXDOMAIN", func() (Result, error) {
			_, r, err := d.LookupAddr(ctx, netip.MustParseAddr("192.0.2.99"))
			return r, err
		}, 1},
		{"bad name", "not a domain name", func() (Result, error) { _, r, err := d.LookupMX(ctx, "exa mple.test"); return r, err }, 0},
		{"bad label", "not a domain name", func() (Result, error) { _, r, err := d.LookupMX(ctx, "a..test"); return r, err }, 0},
		{"bad port", "port 0", func() (Result, error) { _, r, err := d.LookupTLSA(ctx, 0, "mx1.example.test"); return r, err }, 0},
	} {
		res, err := c.lookup()
		if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), c.kind) {
			t.Errorf("%s: %v, want ErrNotFound (%s)", c.name, err, c.kind)
		}
		if c.queries > 0 && !res.Authentic {
			t.Errorf("%s: an authentic denial came back as %+v", c.name, res)
		}
		if q := z.asked(); len(q) != c.queries {
			t.Errorf("%s: %d queries, want %d: %+v", c.name, len(q), c.queries, q)
		}
	}
}

func TestDNSIP(t *testing.T) {
	z, d := fixture(t)
	ctx := t.Context()
	ips, res, err := d.LookupIP(ctx, "mx1.example.test")
	want := []netip.Addr{netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2"), netip.MustParseAddr("2001:db8::1")}
	if err != nil || !slices.Equal(ips, want) || !res.Authentic {
		t.Errorf("LookupIP = %v %+v %v, want %v", ips, res, err, want)
	}
	var types []uint16
	for _, q := range z.asked() {
		types = append(types, q.qtype)
	}
	if slices.Sort(types); !slices.Equal(types, []uint16{dns.TypeA, dns.TypeAAAA}) {
		t.Errorf("query types %v, want A and AAAA", types)
	}

	ips, res, err = d.LookupIP(ctx, "v6.test")
	if err != nil || !slices.Equal(ips, []netip.Addr{netip.MustParseAddr("2001:db8::6")}) || !res.Authentic {
		t.Errorf("v6 only (NODATA for A): %v %+v %v", ips, res, err)
	}
	ips, res, err = d.LookupIP(ctx, "half.test")
	if err != nil || len(ips) != 2 || res.Authentic {
		t.Errorf("AAAA insecure: %v %+v %v, want two addresses, not authentic", ips, res, err)
	}
	ips, _, err = d.LookupIP(ctx, "many.test")
	if err != nil || len(ips) != maxRecords {
		t.Errorf("150 A records: %d addresses (%v), want %d", len(ips), err, maxRecords)
	}
	z.change(func() { z.servfail["v6.test."] = true })
	if _, _, err = d.LookupIP(ctx, "v6.test"); err == nil || errors.Is(err, ErrNotFound) {
		t.Errorf("SERVFAIL for both families: %v, want a temporary error", err)
	}
}

func TestDNSTXTTLSAPTR(t *testing.T) {
	_, d := fixture(t)
	ctx := t.Context()
	txt, res, err := d.LookupTXT(ctx, "txt.test")
	if err != nil || !slices.Equal(txt, []string{"v=spf1 ip4:192.0.2.0/24 -all", "other"}) || !res.Authentic {
		t.Errorf("TXT = %q %+v %v", txt, res, err)
	}
	recs, res, err := d.LookupTLSA(ctx, 25, "MX1.example.test.")
	if err != nil || len(recs) != 1 || !res.Authentic {
		t.Fatalf("TLSA = %v %+v %v", recs, res, err)
	}
	if r := recs[0]; r.Usage != 3 || r.Selector != 1 || r.MatchingType != 1 || fmt.Sprintf("%x", r.Data) != tlsaHash {
		t.Errorf("TLSA = %d %d %d %x", r.Usage, r.Selector, r.MatchingType, r.Data)
	}
	for _, ip := range []string{"192.0.2.1", "::ffff:192.0.2.1", "2001:db8::1"} {
		names, res, err := d.LookupAddr(ctx, netip.MustParseAddr(ip))
		if err != nil || !slices.Equal(names, []string{"mx1.example.test."}) || !res.Authentic {
			t.Errorf("PTR %s = %v %+v %v", ip, names, res, err)
		}
	}
}

func TestDNSCNAME(t *testing.T) {
	z, d := fixture(t)
	ctx := t.Context()
	ips, res, err := d.LookupIP(ctx, "alias.test")
	if err != nil || len(ips) != 3 || !res.Authentic {
		t.Errorf("chain in the answer: %v %+v %v", ips, res, err)
	}
	if q := z.asked(); len(q) != 2 {
		t.Errorf("chain in the answer: %d queries, want 2 (A, AAAA)", len(q))
	}

	txt, res, err := d.LookupTXT(ctx, "part.test")
	if err != nil || !slices.Equal(txt, []string{"hello"}) {
		t.Errorf("chain left out of the answer: %q %v", txt, err)
	}
	if res.Authentic {
		t.Error("an insecure CNAME target made an authentic answer")
	}
	if q := z.asked(); len(q) != 2 || q[1].name != "target.test." {
		t.Errorf("queries %+v, want part.test then target.test", q)
	}

	for _, name := range []string{"loop1.test", "ploop1.test"} {
		_, _, err = d.LookupTXT(ctx, name)
		if err == nil || errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "CNAME chain") {
			t.Errorf("%s: %v, want a CNAME chain error", name, err)
		}
	}
	if q := z.asked(); len(q) != 1+maxChain+1 {
		t.Errorf("a loop asked %d times, want %d", len(q), 1+maxChain+1)
	}
}

func TestDNSTruncated(t *testing.T) {
	z, d := fixture(t)
	txt, res, err := d.LookupTXT(t.Context(), "big.test")
	if err != nil || len(txt) != 1 || len(txt[0]) != 1600 || !strings.HasPrefix(txt[0], "axx") || !res.Authentic {
		t.Fatalf("big TXT: %d records %+v %v", len(txt), res, err)
	}
	q := z.asked()
	if len(q) != 2 || q[0].tcp || !q[1].tcp {
		t.Errorf("queries %+v, want UDP then TCP", q)
	}
}

func TestDNSServerFailure(t *testing.T) {
	z, d := fixture(t)
	_, _, err := d.LookupMX(t.Context(), "servfail.test")
	if err == nil || errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "SERVFAIL") || !strings.Contains(err.Error(), d.Servers[0]) {
		t.Errorf("SERVFAIL: %v, want a temporary error naming %s", err, d.Servers[0])
	}
	z.asked()

	refusing := newZone(t)
	refusing.refuse = true
	r := &DNS{Servers: []string{serve(t, refusing), d.Servers[0]}, Attempts: 1}
	mx, _, err := r.LookupMX(t.Context(), "example.test")
	if err != nil || len(mx) != 2 {
		t.Errorf("REFUSED then an answer: %v %v", mx, err)
	}
	if len(refusing.asked()) != 1 || len(z.asked()) != 1 {
		t.Error("each server was not asked once")
	}
	r.Servers = r.Servers[:1]
	if _, _, err = r.LookupMX(t.Context(), "example.test"); err == nil || errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "REFUSED") {
		t.Errorf("REFUSED: %v, want a temporary error", err)
	}
	if _, _, err = (&DNS{}).LookupMX(t.Context(), "example.test"); err == nil || errors.Is(err, ErrNotFound) {
		t.Errorf("no servers: %v, want a temporary error", err)
	}
}

func TestDNSTimeout(t *testing.T) {
	z, live := fixture(t)
	dead := silent(t)
	d := &DNS{Servers: []string{dead, live.Servers[0]}, Timeout: 200 * time.Millisecond, Attempts: 1}
	start := time.Now()
	mx, _, err := d.LookupMX(t.Context(), "example.test")
	if err != nil || len(mx) != 2 {
		t.Fatalf("after a silent server: %v %v", mx, err)
	}
	if e := time.Since(start); e < 200*time.Millisecond {
		t.Errorf("answered in %v: the silent server was not asked first", e)
	}
	if len(z.asked()) != 1 {
		t.Error("the second server was not asked")
	}

	d.Servers, d.Attempts = []string{dead}, 2
	start = time.Now()
	_, _, err = d.LookupMX(t.Context(), "example.test")
	var tried serverErrors
	if errors.Is(err, ErrNotFound) || !errors.As(err, &tried) || len(tried) != 2 || !strings.HasPrefix(tried[0].Error(), dead+": ") {
		t.Errorf("silent server: %v, want a temporary error naming %s for each attempt", err, dead)
	}
	if e := time.Since(start); e > 2*time.Second {
		t.Errorf("two attempts of 200 ms took %v", e)
	}

	d.Timeout = 10 * time.Second
	ctx, cancel := context.WithTimeout(t.Context(), 150*time.Millisecond)
	defer cancel()
	start = time.Now()
	_, _, err = d.LookupIP(ctx, "mx1.example.test")
	if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrNotFound) {
		t.Errorf("lookup past its context's deadline: %v", err)
	}
	if e := time.Since(start); e > 2*time.Second {
		t.Errorf("a 150 ms context took %v", e)
	}
}

func TestResolvConf(t *testing.T) {
	dir := t.TempDir()
	write := func(text string) string {
		p := filepath.Join(dir, "resolv.conf")
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	d, err := fromResolvConf(write("search example.test\nnameserver 192.0.2.53\nnameserver 2001:db8::53\noptions timeout:1 attempts:3 edns0\n"))
	if err != nil || !slices.Equal(d.Servers, []string{"192.0.2.53:53", "[2001:db8::53]:53"}) || d.Timeout != time.Second || d.Attempts != 3 {
		t.Errorf("fromResolvConf = %+v %v", d, err)
	}
	d, err = fromResolvConf(write("# nothing\n"))
	if err != nil || !slices.Equal(d.Servers, []string{"127.0.0.1:53", "[::1]:53"}) || d.Timeout != 5*time.Second || d.Attempts != 2 {
		t.Errorf("empty resolv.conf = %+v %v", d, err)
	}
	if _, err = fromResolvConf(filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	if _, err := os.Stat("/etc/resolv.conf"); err == nil {
		if d, err := System(); err != nil || len(d.Servers) == 0 {
			t.Errorf("System = %+v %v", d, err)
		}
	}
}
