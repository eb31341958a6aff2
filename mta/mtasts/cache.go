package mtasts

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/mailsys/mailsys/mta/resolve"
)

// Resolver is the DNS a Cache asks: the TXT lookup of resolve.Resolver,
// which every resolve.Resolver satisfies. An error matching
// resolve.ErrNotFound means there is no record; any other is a
// temporary failure.
type Resolver interface {
	LookupTXT(ctx context.Context, name string) ([]string, resolve.Result, error)
}

var _ Resolver = resolve.Resolver(nil)

// MaxDomains bounds the domains a Cache holds: past it, the one used
// least recently is dropped.
const MaxDomains = 100_000

// FetchBackoff is how long a Cache waits, after a domain's policy could
// not be fetched, before fetching it again under the same TXT id;
// meanwhile it acts as if the fetch had failed again.
const FetchBackoff = 5 * time.Minute

// Cache finds domains' policies and keeps them, for the outbound queue.
// It is safe for concurrent use; calls for one domain at the same time
// share one discovery (one TXT lookup, at most one fetch).
type Cache struct {
	res   Resolver
	fetch Fetcher
	file  string
	log   *slog.Logger
	now   func() time.Time // the clock (tests set it)
	max   int              // the most domains held (tests lower it)

	mu      sync.Mutex
	entries map[string]*list.Element // of *entry, by domain
	lru     list.List                // the entries, most recently used first
	calls   map[string]*call         // the discoveries running, by domain
	version uint64                   // counted up at each policy kept

	saveMu sync.Mutex // held while the file is written
	saved  uint64     // the version the file holds (under saveMu)
}

// entry is what a Cache holds for a domain.
type entry struct {
	domain string
	policy *Policy   // nil when none; never changed once held (replaced)
	failed string    // the TXT id whose policy could not be fetched
	retry  time.Time // when the policy of failed may be fetched again
}

// call is a discovery running for a domain.
type call struct {
	done    chan struct{} // closed when p and err are set
	p       *Policy
	err     error
	waiters int // the callers waiting for it, besides the one running it (under mu)
}

// NewCache returns a Cache that looks records up with r and fetches
// policies with f. file is where the policies are kept across restarts
// (see the package documentation for its format); "" keeps them in
// memory only. The policies file holds are read at once; a file that
// does not exist is an empty cache. log may be nil.
func NewCache(r Resolver, f Fetcher, file string, log *slog.Logger) (*Cache, error) {
	return newCache(r, f, file, log, time.Now)
}

// newCache is NewCache on the clock now.
func newCache(r Resolver, f Fetcher, file string, log *slog.Logger, now func() time.Time) (*Cache, error) {
	if r == nil || f == nil {
		return nil, fmt.Errorf("%w: NewCache needs a Resolver and a Fetcher", ErrInvalid)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Cache{res: r, fetch: f, file: file, log: log, now: now, max: MaxDomains,
		entries: map[string]*list.Element{}, calls: map[string]*call{}}
	if file != "" {
		if err := c.load(); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// Policy returns the policy of domain for a delivery now (RFC 8461 §3,
// §5.1), or nil when it has none:
//
//   - it looks up the TXT record at _mta-sts.<domain>: exactly one
//     "v=STSv1; id=…" record, or none is on offer;
//   - a policy held, not expired, of the same id is used as it is;
//   - a new id (or nothing held) is fetched, parsed and held with the
//     id, until its max_age passes;
//   - when the lookup fails, when no record is on offer, and when the
//     fetch or the parse fails, the policy held (not expired) is still
//     used, and with none held there is no policy. A failed fetch is not
//     tried again for FetchBackoff.
//
// A policy in mode none is returned too: it asks for nothing. The
// Policy is the caller's. The only errors are a domain that is not a
// host name (ErrInvalid) and the end of ctx with no policy held.
func (c *Cache) Policy(ctx context.Context, domain string) (*Policy, error) {
	d, err := canonical(domain)
	if err != nil {
		return nil, err
	}
	for {
		c.mu.Lock()
		cl := c.calls[d]
		if cl == nil {
			cl = &call{done: make(chan struct{})}
			c.calls[d] = cl
			c.mu.Unlock()
			cl.p, cl.err = c.discover(ctx, d)
			c.mu.Lock()
			delete(c.calls, d)
			c.mu.Unlock()
			close(cl.done)
			return cl.p.clone(), cl.err
		}
		cl.waiters++
		c.mu.Unlock()
		select {
		case <-cl.done:
		case <-ctx.Done():
			return nil, fmt.Errorf("mtasts: policy of %s: %w", d, ctx.Err())
		}
		if cl.err != nil && ctx.Err() == nil {
			continue // the caller that ran it gave up; run it again
		}
		return cl.p.clone(), cl.err
	}
}

// discover finds d's policy, as Policy says.
func (c *Cache) discover(ctx context.Context, d string) (*Policy, error) {
	c.mu.Lock()
	held := c.held(d, c.now())
	c.mu.Unlock()
	gaveUp := func() (*Policy, error) {
		if held == nil && ctx.Err() != nil {
			return nil, fmt.Errorf("mtasts: policy of %s: %w", d, ctx.Err())
		}
		return held, nil
	}

	txts, _, err := c.res.LookupTXT(ctx, "_mta-sts."+d)
	if err != nil && !errors.Is(err, resolve.ErrNotFound) {
		c.log.Warn("MTA-STS record not looked up", "domain", d, "err", err, "held", held != nil)
		return gaveUp()
	}
	id, err := recordID(txts)
	if err != nil {
		// No policy on offer: one held still applies until it expires.
		c.log.Debug("no MTA-STS policy on offer", "domain", d, "why", err, "held", held != nil)
		return held, nil
	}
	if held != nil && held.ID == id {
		return held, nil
	}
	c.mu.Lock()
	backoff := c.backingOff(d, id, c.now())
	c.mu.Unlock()
	if backoff {
		return held, nil
	}

	p, err := c.get(ctx, d)
	if err != nil {
		c.log.Warn("MTA-STS policy not fetched", "domain", d, "id", id, "err", err, "held", held != nil)
		if ctx.Err() == nil {
			c.mu.Lock()
			c.fetchFailed(d, id, c.now().Add(FetchBackoff))
			c.mu.Unlock()
		}
		return gaveUp()
	}
	p.ID, p.Fetched = id, c.now()
	c.log.Info("MTA-STS policy fetched", "domain", d, "id", id, "mode", p.Mode, "mx", p.MX, "max_age", p.MaxAge)
	c.mu.Lock()
	c.keep(d, p)
	c.mu.Unlock()
	c.save()
	return p, nil
}

// get fetches and parses d's policy.
func (c *Cache) get(ctx context.Context, d string) (*Policy, error) {
	b, err := c.fetch.Fetch(ctx, d)
	if err != nil {
		return nil, err
	}
	return Parse(b)
}

// held returns the policy held for d if it has not expired at now,
// marking d used; an expired one is dropped. Called with c.mu held.
func (c *Cache) held(d string, now time.Time) *Policy {
	el := c.entries[d]
	if el == nil {
		return nil
	}
	e := el.Value.(*entry)
	if e.policy != nil && !now.Before(e.policy.Expires()) {
		e.policy = nil
	}
	if e.policy == nil && !now.Before(e.retry) {
		c.lru.Remove(el)
		delete(c.entries, d)
		return nil
	}
	c.lru.MoveToFront(el)
	return e.policy
}

// backingOff reports whether the policy of d under id failed to be
// fetched less than FetchBackoff ago. Called with c.mu held.
func (c *Cache) backingOff(d, id string, now time.Time) bool {
	el := c.entries[d]
	if el == nil {
		return false
	}
	e := el.Value.(*entry)
	return e.failed == id && now.Before(e.retry)
}

// fetchFailed notes that the policy of d under id could not be fetched,
// not to be tried again before retry. Called with c.mu held.
func (c *Cache) fetchFailed(d, id string, retry time.Time) {
	e := c.entry(d)
	e.failed, e.retry = id, retry
}

// keep holds p as d's policy. Called with c.mu held.
func (c *Cache) keep(d string, p *Policy) {
	e := c.entry(d)
	e.policy, e.failed, e.retry = p, "", time.Time{}
	c.version++
}

// entry returns d's entry, made if need be, marked used, and drops the
// entries used least recently past c.max. Called with c.mu held.
func (c *Cache) entry(d string) *entry {
	if el := c.entries[d]; el != nil {
		c.lru.MoveToFront(el)
		return el.Value.(*entry)
	}
	e := &entry{domain: d}
	c.entries[d] = c.lru.PushFront(e)
	for c.lru.Len() > c.max {
		last := c.lru.Back()
		c.lru.Remove(last)
		delete(c.entries, last.Value.(*entry).domain)
	}
	return e
}
