package mta

import (
	"fmt"
	"net/netip"
	"sync"
	"time"
)

// GuardConfig configures a Guard. Zero values mean the defaults.
type GuardConfig struct {
	// Allow, if not empty, admits only clients in these networks.
	Allow []netip.Prefix
	// Deny refuses clients in these networks (checked after Allow).
	Deny []netip.Prefix
	// MaxConnsPerIP bounds the connections open from one address at once.
	// Zero means 20; negative means no bound.
	MaxConnsPerIP int
	// AuthFailures is how many failed logins from one address, or for one
	// account, within AuthWindow lock it out for Lockout. Zero means 5.
	AuthFailures int
	// AuthWindow is the window failures are counted in. Zero means 10 min.
	AuthWindow time.Duration
	// Lockout is how long a locked-out address or account is refused. Zero
	// means 15 min.
	Lockout time.Duration
}

// Guard holds the access rules one or more listeners share: allow and deny
// lists, a bound on connections per address, and temporary lockouts after
// repeated authentication failures, per address and per account (so that
// neither one address trying many accounts nor many addresses trying one
// account get far). It is safe for concurrent use; every protocol server
// of a System shares one.
type Guard struct {
	cfg GuardConfig
	now func() time.Time

	mu       sync.Mutex
	conns    map[netip.Addr]int
	failures map[string]*failures // "ip:" + address or "acct:" + account
}

type failures struct {
	times  []time.Time // within the window
	locked time.Time   // locked out until
}

// NewGuard returns a Guard with cfg's rules.
func NewGuard(cfg GuardConfig) *Guard {
	if cfg.MaxConnsPerIP == 0 {
		cfg.MaxConnsPerIP = 20
	}
	if cfg.AuthFailures == 0 {
		cfg.AuthFailures = 5
	}
	if cfg.AuthWindow == 0 {
		cfg.AuthWindow = 10 * time.Minute
	}
	if cfg.Lockout == 0 {
		cfg.Lockout = 15 * time.Minute
	}
	return &Guard{cfg: cfg, now: time.Now, conns: map[netip.Addr]int{}, failures: map[string]*failures{}}
}

// Admit decides on a new connection from ip. If it returns nil, the caller
// must call release when the connection ends.
func (g *Guard) Admit(ip netip.Addr) (release func(), err error) {
	ip = ip.Unmap()
	if len(g.cfg.Allow) > 0 && !contains(g.cfg.Allow, ip) {
		return nil, fmt.Errorf("%s is not in the allow list", ip)
	}
	if contains(g.cfg.Deny, ip) {
		return nil, fmt.Errorf("%s is in the deny list", ip)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.cfg.MaxConnsPerIP > 0 && g.conns[ip] >= g.cfg.MaxConnsPerIP {
		return nil, fmt.Errorf("too many connections from %s", ip)
	}
	g.conns[ip]++
	var once sync.Once
	return func() {
		once.Do(func() {
			g.mu.Lock()
			defer g.mu.Unlock()
			if g.conns[ip]--; g.conns[ip] <= 0 {
				delete(g.conns, ip)
			}
		})
	}, nil
}

func contains(nets []netip.Prefix, ip netip.Addr) bool {
	for _, n := range nets {
		if n.Contains(ip) {
			return true
		}
	}
	return false
}

// AuthAllowed reports whether a login from ip for account may be tried now.
func (g *Guard) AuthAllowed(ip netip.Addr, account string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.now()
	for _, k := range []string{"ip:" + ip.Unmap().String(), "acct:" + account} {
		if f := g.failures[k]; f != nil && now.Before(f.locked) {
			return false
		}
	}
	return true
}

// AuthFailed counts a failed login; enough of them lock the address and
// the account out.
func (g *Guard) AuthFailed(ip netip.Addr, account string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.now()
	for _, k := range []string{"ip:" + ip.Unmap().String(), "acct:" + account} {
		f := g.failures[k]
		if f == nil {
			f = &failures{}
			g.failures[k] = f
		}
		keep := f.times[:0]
		for _, t := range f.times {
			if now.Sub(t) < g.cfg.AuthWindow {
				keep = append(keep, t)
			}
		}
		f.times = append(keep, now)
		if len(f.times) >= g.cfg.AuthFailures {
			f.locked = now.Add(g.cfg.Lockout)
			f.times = f.times[:0]
		}
	}
	if len(g.failures) > 100_000 { // forget the old ones rather than grow without bound
		for k, f := range g.failures {
			if now.After(f.locked) && (len(f.times) == 0 || now.Sub(f.times[len(f.times)-1]) > g.cfg.AuthWindow) {
				delete(g.failures, k)
			}
		}
	}
}

// AuthSucceeded clears the failures of the account (not of the address:
// one good login must not reset a scan of other accounts).
func (g *Guard) AuthSucceeded(ip netip.Addr, account string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.failures, "acct:"+account)
}
