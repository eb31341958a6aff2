package mta

import (
	"container/list"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/mailsys/mailsys/internal/logname"
)

// GuardConfig configures a Guard. Zero values mean the defaults; the
// defaults are what an operator of a public mail service would choose.
type GuardConfig struct {
	// Allow, if not empty, admits only clients in these networks.
	Allow []netip.Prefix
	// Deny refuses clients in these networks (checked after Allow).
	Deny []netip.Prefix

	// MaxConns bounds the connections open at once on all the listeners
	// that share the Guard. Zero means a bound below the process's limit
	// on open files (RLIMIT_NOFILE): the limit less an eighth, and less at
	// least 256, kept for the store's, the UserDB's and the log's own
	// files, at most 100,000. Negative means no bound.
	MaxConns int
	// MaxConnsPerListener bounds the connections open at once on one
	// listener. Zero means no bound of its own (MaxConns still applies);
	// negative means no bound.
	MaxConnsPerListener int
	// MaxConnsPerIP bounds the connections open at once from one address
	// on one listener (so that a user's twenty SMTP sessions do not keep
	// them from reading mail). Zero means 20; negative means no bound.
	MaxConnsPerIP int

	// AuthFailures is how many failed logins from one address for one
	// account, within AuthWindow, lock that address out of that account
	// for Lockout. A lockout never covers the account as a whole: the
	// right password from an address that has not failed still logs in
	// while others attack the account. Zero means 5.
	AuthFailures int
	// AddrAuthFailures is how many failed logins from one address, for
	// any accounts, within AuthWindow lock the address out of every
	// account for Lockout (one address trying many accounts). Zero means
	// 20; negative means no such lockout.
	AddrAuthFailures int
	// AccountFailures is how many failed logins for one account, from any
	// addresses, within AuthWindow are answered at once; each one past it
	// is answered after a delay that doubles from 250 ms up to
	// AccountDelay, which slows down an attack spread over many addresses
	// without refusing anyone (a correct password is never delayed). Zero
	// means 10; negative means no slow-down.
	AccountFailures int
	// AccountDelay is the longest delay of a failed login's answer.
	// Zero means 5 seconds.
	AccountDelay time.Duration
	// AuthWindow is the window failures are counted in. Zero means 10 min.
	AuthWindow time.Duration
	// Lockout is how long a locked-out address is refused. Zero means 15
	// min.
	Lockout time.Duration
	// MaxTracked bounds the entries of the failure table (one for each
	// address, account and pair of them that failed recently); past it the
	// least recently failed entry is forgotten. Zero means 65,536.
	MaxTracked int
}

// Defaults of GuardConfig.
const (
	defaultMaxConnsPerIP    = 20
	defaultAuthFailures     = 5
	defaultAddrAuthFailures = 20
	defaultAccountFailures  = 10
	defaultAccountDelay     = 5 * time.Second
	defaultAuthWindow       = 10 * time.Minute
	defaultLockout          = 15 * time.Minute
	defaultMaxTracked       = 1 << 16
	firstAccountDelay       = 250 * time.Millisecond
)

// MaxAccountLen is how much of an account name, as a client typed it, the
// Guard keeps and the servers write to their logs: names longer than an
// address can be are cut there.
const MaxAccountLen = logname.Max

// ErrRefused is the error Admit returns, wrapped with the reason, when a
// connection is not to be served.
var ErrRefused = errors.New("mta: connection refused")

// Guard holds the access rules one or more listeners share: allow and deny
// lists; bounds on connections open at once, over all its listeners, per
// listener and per address on a listener; and throttles on failed logins,
// a lockout per address and account, a lockout per address and a
// slow-down per account. It is safe for concurrent use; every protocol
// server of a System shares one. Its memory is bounded
// (GuardConfig.MaxTracked) whatever clients send.
type Guard struct {
	cfg     GuardConfig
	invalid error // GuardConfig.Validate's, of the configuration it was made with
	now     func() time.Time

	mu         sync.Mutex
	conns      int                      // open on every listener
	byListener map[string]int           // open per listener
	byAddr     map[connKey]int          // open per listener and address
	failures   map[string]*list.Element // of *failures, by key (see failureKeys)
	lru        *list.List               // most recently failed first
}

type connKey struct {
	listener string
	ip       netip.Addr
}

// failures counts the failed logins of one key in the current window.
type failures struct {
	key    string
	count  int
	since  time.Time // start of the window
	locked time.Time // locked out until
}

// Validate reports every problem of c at once (errors.Join, each naming
// its field), or nil: an Allow or Deny entry that is not a valid prefix,
// and a negative count or duration where the field gives a negative value
// no meaning.
func (c GuardConfig) Validate() error {
	var errs []error
	for _, l := range []struct {
		name string
		nets []netip.Prefix
	}{{"Allow", c.Allow}, {"Deny", c.Deny}} {
		for i, p := range l.nets {
			if !p.IsValid() {
				errs = append(errs, fmt.Errorf("mta: GuardConfig.%s[%d]: not a valid network prefix", l.name, i))
			}
		}
	}
	for _, n := range []struct {
		name string
		v    int
	}{{"AuthFailures", c.AuthFailures}, {"MaxTracked", c.MaxTracked}} {
		if n.v < 0 {
			errs = append(errs, fmt.Errorf("mta: GuardConfig.%s: negative (%d)", n.name, n.v))
		}
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"AccountDelay", c.AccountDelay}, {"AuthWindow", c.AuthWindow}, {"Lockout", c.Lockout}} {
		if d.v < 0 {
			errs = append(errs, fmt.Errorf("mta: GuardConfig.%s: negative (%v)", d.name, d.v))
		}
	}
	return errors.Join(errs...)
}

// NewGuard returns a Guard with cfg's rules. It calls cfg.Validate: a
// field it refuses is replaced by its default (an invalid prefix matches
// no address), and NewInbound and NewSubmission refuse a Guard so made
// (InboundConfig.Validate reports why). Check cfg.Validate before, where
// the Guard also goes to other servers.
func NewGuard(cfg GuardConfig) *Guard {
	invalid := cfg.Validate()
	if cfg.MaxConns == 0 {
		cfg.MaxConns = defaultMaxConns()
	}
	if cfg.MaxConnsPerIP == 0 {
		cfg.MaxConnsPerIP = defaultMaxConnsPerIP
	}
	if cfg.AuthFailures <= 0 {
		cfg.AuthFailures = defaultAuthFailures
	}
	if cfg.AddrAuthFailures == 0 {
		cfg.AddrAuthFailures = defaultAddrAuthFailures
	}
	if cfg.AccountFailures == 0 {
		cfg.AccountFailures = defaultAccountFailures
	}
	if cfg.AccountDelay <= 0 {
		cfg.AccountDelay = defaultAccountDelay
	}
	if cfg.AuthWindow <= 0 {
		cfg.AuthWindow = defaultAuthWindow
	}
	if cfg.Lockout <= 0 {
		cfg.Lockout = defaultLockout
	}
	if cfg.MaxTracked <= 0 {
		cfg.MaxTracked = defaultMaxTracked
	}
	return &Guard{cfg: cfg, invalid: invalid, now: time.Now, byListener: map[string]int{}, byAddr: map[connKey]int{},
		failures: map[string]*list.Element{}, lru: list.New()}
}

// Config returns the rules in force, defaults filled in.
func (g *Guard) Config() GuardConfig { return g.cfg }

// Admit decides on a new connection from ip to the listener named
// listener (any name that tells the listeners of the Guard apart, such as
// "smtp" or "imaps"). Servers call it when they accept a connection,
// before the greeting and before TLS. If it returns nil, the caller must
// call release once the connection is closed; calling it again does
// nothing. Otherwise the error wraps ErrRefused and says why.
func (g *Guard) Admit(listener string, ip netip.Addr) (release func(), err error) {
	ip = ip.Unmap()
	if len(g.cfg.Allow) > 0 && !contains(g.cfg.Allow, ip) {
		return nil, fmt.Errorf("%w: %s is not in the allow list", ErrRefused, ip)
	}
	if contains(g.cfg.Deny, ip) {
		return nil, fmt.Errorf("%w: %s is in the deny list", ErrRefused, ip)
	}
	key := connKey{listener, ip}
	g.mu.Lock()
	defer g.mu.Unlock()
	switch {
	case g.cfg.MaxConns > 0 && g.conns >= g.cfg.MaxConns:
		return nil, fmt.Errorf("%w: %d connections open, the most allowed", ErrRefused, g.conns)
	case g.cfg.MaxConnsPerListener > 0 && g.byListener[listener] >= g.cfg.MaxConnsPerListener:
		return nil, fmt.Errorf("%w: %d connections open on %s, the most allowed", ErrRefused, g.byListener[listener], listener)
	case g.cfg.MaxConnsPerIP > 0 && g.byAddr[key] >= g.cfg.MaxConnsPerIP:
		return nil, fmt.Errorf("%w: too many connections from %s to %s", ErrRefused, ip, listener)
	}
	g.conns++
	g.byListener[listener]++
	g.byAddr[key]++
	var once sync.Once
	return func() {
		once.Do(func() {
			g.mu.Lock()
			defer g.mu.Unlock()
			g.conns--
			if g.byListener[listener]--; g.byListener[listener] <= 0 {
				delete(g.byListener, listener)
			}
			if g.byAddr[key]--; g.byAddr[key] <= 0 {
				delete(g.byAddr, key)
			}
		})
	}, nil
}

// Conns returns the number of connections open on every listener.
func (g *Guard) Conns() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.conns
}

func contains(nets []netip.Prefix, ip netip.Addr) bool {
	for _, n := range nets {
		if n.Contains(ip) {
			return true
		}
	}
	return false
}

// NormalizeAccount returns the form of an account name, as a client typed
// it, that the Guard counts failures by: cut to MaxAccountLen bytes, valid
// UTF-8, in lower case, without surrounding spaces or a trailing dot, so
// that "BOB@localhost", "bOb@localhost" and "bob@LOCALHOST." are one
// account. Servers also log account names in this form.
func NormalizeAccount(account string) string {
	account = logname.Cut(account)
	if !utf8.ValidString(account) {
		account = strings.ToValidUTF8(account, "\uFFFD")
	}
	return strings.TrimSuffix(strings.TrimSpace(strings.ToLower(account)), ".")
}

// failureKeys returns the keys of the failure table a login touches: the
// pair, the address and the account.
func failureKeys(ip netip.Addr, account string) (pair, addr, acct string) {
	a := ip.Unmap().String()
	account = NormalizeAccount(account)
	return "p\x00" + a + "\x00" + account, "a\x00" + a, "u\x00" + account
}

// AuthAllowed reports whether a login from ip for account may be tried
// now: false while the address is locked out of the account, or of every
// account. It never blocks.
func (g *Guard) AuthAllowed(ip netip.Addr, account string) bool {
	pair, addr, _ := failureKeys(ip, account)
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.now()
	for _, k := range []string{pair, addr} {
		if el := g.failures[k]; el != nil && now.Before(el.Value.(*failures).locked) {
			return false
		}
	}
	return true
}

// AuthFailed counts a failed login from ip for account. Enough of them
// lock the address out of the account, or out of every account (see
// GuardConfig). It returns how long the server should wait before it
// answers the failure: zero unless the account is under attack. It never
// blocks.
func (g *Guard) AuthFailed(ip netip.Addr, account string) (delay time.Duration) {
	pair, addr, acct := failureKeys(ip, account)
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.now()
	if f := g.count(pair, now); f.count >= g.cfg.AuthFailures {
		f.locked, f.count, f.since = now.Add(g.cfg.Lockout), 0, now
	}
	if g.cfg.AddrAuthFailures > 0 {
		if f := g.count(addr, now); f.count >= g.cfg.AddrAuthFailures {
			f.locked, f.count, f.since = now.Add(g.cfg.Lockout), 0, now
		}
	}
	if g.cfg.AccountFailures > 0 {
		if over := g.count(acct, now).count - g.cfg.AccountFailures; over > 0 {
			delay = g.cfg.AccountDelay
			if over <= 16 {
				delay = min(firstAccountDelay<<(over-1), g.cfg.AccountDelay)
			}
		}
	}
	return delay
}

// count adds a failure to key's entry, made or moved to the front of the
// table, and returns it. g.mu is held.
func (g *Guard) count(key string, now time.Time) *failures {
	el := g.failures[key]
	if el == nil {
		el = g.lru.PushFront(&failures{key: key, since: now})
		g.failures[key] = el
		for g.lru.Len() > g.cfg.MaxTracked {
			old := g.lru.Remove(g.lru.Back()).(*failures)
			delete(g.failures, old.key)
		}
	} else {
		g.lru.MoveToFront(el)
	}
	f := el.Value.(*failures)
	if now.Sub(f.since) >= g.cfg.AuthWindow {
		f.count, f.since = 0, now
	}
	f.count++
	return f
}

// AuthSucceeded clears the failures of ip for account (not those of the
// address, since one good login must not reset a scan of other accounts,
// nor those of the account, which others may be attacking).
func (g *Guard) AuthSucceeded(ip netip.Addr, account string) {
	pair, _, _ := failureKeys(ip, account)
	g.mu.Lock()
	defer g.mu.Unlock()
	if el := g.failures[pair]; el != nil {
		g.lru.Remove(el)
		delete(g.failures, pair)
	}
}

// Tracked returns the number of entries in the failure table.
func (g *Guard) Tracked() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.lru.Len()
}

// fallbackMaxConns is GuardConfig.MaxConns's default where the limit on
// open files cannot be read.
const fallbackMaxConns = 10_000

// connsFor returns the connections a process allowed nofile open files
// may serve: an eighth of the limit, and at least 256 files, stay for
// everything else, and at most 100,000 (at least 16).
func connsFor(nofile int) int {
	n := nofile - max(nofile/8, 256)
	return max(16, min(n, 100_000))
}
