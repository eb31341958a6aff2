package mtasts

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/mailsys/mailsys/mta/resolve"
)

const (
	enforcePolicy = "version: STSv1\nmode: enforce\nmx: mx.example.com\nmx: *.example.net\nmax_age: 86400\n"
	testingPolicy = "version: STSv1\nmode: testing\nmx: mx2.example.com\nmax_age: 3600\n"
	nonePolicy    = "version: STSv1\nmode: none\nmax_age: 86400\n"
)

// clock is a time tests move.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// fetcher serves policies by domain and counts its fetches; a domain
// set to an error fails with it.
type fetcher struct {
	mu       sync.Mutex
	policies map[string]string
	errs     map[string]error
	n        map[string]int
	gate     func(ctx context.Context) error // if set, run before each fetch
}

func newFetcher() *fetcher {
	return &fetcher{policies: map[string]string{}, errs: map[string]error{}, n: map[string]int{}}
}

func (f *fetcher) Fetch(ctx context.Context, domain string) ([]byte, error) {
	f.mu.Lock()
	f.n[domain]++
	gate := f.gate
	f.mu.Unlock()
	if gate != nil {
		if err := gate(ctx); err != nil {
			return nil, err
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.errs[domain]; err != nil {
		return nil, err
	}
	p, ok := f.policies[domain]
	if !ok {
		return nil, fmt.Errorf("%w: 404", ErrFetch)
	}
	return []byte(p), nil
}

func (f *fetcher) set(domain, policy string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.policies[domain], f.errs[domain] = policy, err
}

func (f *fetcher) count(domain string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.n[domain]
}

// fixture is a Cache on a static zone, a counting fetcher and a clock.
type fixture struct {
	t     *testing.T
	zone  *resolve.Static
	fetch *fetcher
	clock *clock
	file  string
	c     *Cache
}

func newFixture(t *testing.T, file string) *fixture {
	fx := &fixture{t: t, zone: &resolve.Static{}, fetch: newFetcher(),
		clock: &clock{t: time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)}, file: file}
	fx.reopen()
	return fx
}

// reopen makes a new Cache on fx's file, as after a restart.
func (fx *fixture) reopen() {
	c, err := newCache(fx.zone, fx.fetch, fx.file, nil, fx.clock.now)
	if err != nil {
		fx.t.Fatalf("newCache: %v", err)
	}
	fx.c = c
}

// waiters returns how many callers wait for the discovery running for
// domain, -1 if none is.
func (fx *fixture) waiters(domain string) int {
	fx.c.mu.Lock()
	defer fx.c.mu.Unlock()
	if cl := fx.c.calls[domain]; cl != nil {
		return cl.waiters
	}
	return -1
}

// eventually reports whether cond became true within 10 seconds.
func eventually(cond func() bool) bool {
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if cond() {
			return true
		}
	}
	return false
}

// policy calls Policy, checks its error, and returns the policy.
func (fx *fixture) policy(domain string) *Policy {
	fx.t.Helper()
	p, err := fx.c.Policy(context.Background(), domain)
	if err != nil {
		fx.t.Fatalf("Policy(%s): %v", domain, err)
	}
	return p
}

// check checks a policy's mode and id, and the fetches made of domain.
func (fx *fixture) check(what string, p *Policy, mode Mode, id string, fetches int) {
	fx.t.Helper()
	switch {
	case mode == "" && p != nil:
		fx.t.Errorf("%s: policy %+v, want none", what, *p)
	case mode != "" && p == nil:
		fx.t.Errorf("%s: no policy, want %s id %s", what, mode, id)
	case p != nil && (p.Mode != mode || p.ID != id):
		fx.t.Errorf("%s: policy %s id %s, want %s id %s", what, p.Mode, p.ID, mode, id)
	}
	if n := fx.fetch.count("example.com"); n != fetches {
		fx.t.Errorf("%s: %d fetches, want %d", what, n, fetches)
	}
}

func TestCacheByID(t *testing.T) {
	fx := newFixture(t, "")
	fx.zone.SetTXT("_mta-sts.example.com", "v=spf1 -all", "v=STSv1; id=1")
	fx.fetch.set("example.com", enforcePolicy, nil)

	p := fx.policy("example.com")
	fx.check("first", p, Enforce, "1", 1)
	if !p.Enforced() || !slices.Equal(p.MX, []string{"mx.example.com", "*.example.net"}) || p.MaxAge != 24*time.Hour || !p.Fetched.Equal(fx.clock.now()) {
		t.Errorf("policy %+v", *p)
	}
	p.MX[0] = "evil.example" // the caller's copy
	fx.clock.add(time.Hour)
	p = fx.policy("Example.COM.")
	fx.check("same id", p, Enforce, "1", 1)
	if !p.Match("mx.example.com") || p.Match("evil.example") {
		t.Errorf("the cached policy changed with the caller's copy: %v", p.MX)
	}

	// A new id is fetched.
	fx.zone.SetTXT("_mta-sts.example.com", "v=STSv1; id=2")
	fx.fetch.set("example.com", testingPolicy, nil)
	fx.check("new id", fx.policy("example.com"), Testing, "2", 2)
	fx.check("new id again", fx.policy("example.com"), Testing, "2", 2)
}

func TestCacheNoRecord(t *testing.T) {
	fx := newFixture(t, "")
	fx.fetch.set("example.com", enforcePolicy, nil)
	fx.check("no record", fx.policy("example.com"), "", "", 0)
	fx.zone.SetTXT("_mta-sts.example.com", "v=STSv1; id=1", "v=STSv1; id=2")
	fx.check("two records", fx.policy("example.com"), "", "", 0)
	fx.zone.SetTXT("_mta-sts.example.com", "v=STSv1; id=")
	fx.check("bad record", fx.policy("example.com"), "", "", 0)
	fx.zone.Fail("_mta-sts.example.com", errors.New("SERVFAIL"))
	fx.check("lookup failed", fx.policy("example.com"), "", "", 0)
	if _, err := fx.c.Policy(context.Background(), "not a domain"); !errors.Is(err, ErrInvalid) {
		t.Errorf("Policy of a bad domain: %v", err)
	}
}

func TestCacheKeepsThroughFailures(t *testing.T) {
	fx := newFixture(t, "")
	fx.zone.SetTXT("_mta-sts.example.com", "v=STSv1; id=1")
	fx.fetch.set("example.com", enforcePolicy, nil)
	fx.check("first", fx.policy("example.com"), Enforce, "1", 1)

	// The TXT lookup fails for a while: the policy held stays.
	fx.zone.Fail("_mta-sts.example.com", errors.New("SERVFAIL"))
	fx.check("lookup failed", fx.policy("example.com"), Enforce, "1", 1)
	fx.zone.Fail("_mta-sts.example.com", nil)

	// A new id whose policy cannot be fetched: the policy held stays,
	// and it is not fetched again for FetchBackoff.
	fx.zone.SetTXT("_mta-sts.example.com", "v=STSv1; id=2")
	fx.fetch.set("example.com", "", errors.New("connection refused"))
	fx.check("fetch failed", fx.policy("example.com"), Enforce, "1", 2)
	fx.clock.add(FetchBackoff - time.Second)
	fx.check("backing off", fx.policy("example.com"), Enforce, "1", 2)
	fx.clock.add(time.Second)
	fx.fetch.set("example.com", "version: STSv2\n", nil)
	fx.check("invalid policy", fx.policy("example.com"), Enforce, "1", 3)
	fx.clock.add(FetchBackoff)
	fx.fetch.set("example.com", testingPolicy, nil)
	fx.check("fetched at last", fx.policy("example.com"), Testing, "2", 4)

	// The record goes away: the policy holds until it expires.
	fx.zone.SetTXT("_mta-sts.example.com")
	fx.clock.add(time.Hour - time.Second)
	fx.check("record gone", fx.policy("example.com"), Testing, "2", 4)
	fx.clock.add(time.Second)
	fx.check("record gone, policy expired", fx.policy("example.com"), "", "", 4)
}

func TestCacheNoneHeld(t *testing.T) {
	// With nothing held, a failed fetch is no policy.
	fx := newFixture(t, "")
	fx.zone.SetTXT("_mta-sts.example.com", "v=STSv1; id=1")
	fx.check("fetch failed", fx.policy("example.com"), "", "", 1)
	fx.clock.add(FetchBackoff)
	fx.fetch.set("example.com", nonePolicy, nil)
	p := fx.policy("example.com")
	fx.check("mode none", p, None, "1", 2)
	if p.Enforced() {
		t.Error("a policy in mode none is enforced")
	}
	fx.check("mode none held", fx.policy("example.com"), None, "1", 2)
}

func TestCacheExpiry(t *testing.T) {
	fx := newFixture(t, "")
	fx.zone.SetTXT("_mta-sts.example.com", "v=STSv1; id=1")
	fx.fetch.set("example.com", testingPolicy, nil) // an hour
	fx.check("first", fx.policy("example.com"), Testing, "1", 1)
	fx.clock.add(time.Hour - time.Nanosecond)
	fx.check("not yet expired", fx.policy("example.com"), Testing, "1", 1)
	fx.clock.add(time.Nanosecond)
	fx.fetch.set("example.com", "", errors.New("timeout"))
	fx.check("expired: fetched again, and failed", fx.policy("example.com"), "", "", 2)
	fx.clock.add(FetchBackoff)
	fx.fetch.set("example.com", enforcePolicy, nil)
	fx.check("fetched again", fx.policy("example.com"), Enforce, "1", 3)
}

func TestCachePersists(t *testing.T) {
	file := filepath.Join(t.TempDir(), "mta-sts.json")
	fx := newFixture(t, file)
	fx.zone.SetTXT("_mta-sts.example.com", "v=STSv1; id=1")
	fx.zone.SetTXT("_mta-sts.example.net", "v=STSv1; id=7")
	fx.fetch.set("example.com", enforcePolicy, nil)
	fx.fetch.set("example.net", testingPolicy, nil)
	fx.check("first", fx.policy("example.com"), Enforce, "1", 1)
	fx.policy("example.net")

	st, err := os.Stat(file)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("cache file: %v, %v", st, err)
	}
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(file), ".*tmp*")); len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
	var f cacheFile
	b, _ := os.ReadFile(file)
	if err := json.Unmarshal(b, &f); err != nil || f.Version != 1 || len(f.Policies) != 2 || f.Policies[0].Domain != "example.net" {
		t.Errorf("cache file %s: %v", b, err)
	}

	// After a restart the policies are there, with nothing fetched,
	// even while the policy server is down.
	fx.fetch.set("example.com", "", errors.New("down"))
	fx.reopen()
	p := fx.policy("example.com")
	fx.check("after a restart", p, Enforce, "1", 1)
	if !p.Match("a.example.net") || p.MaxAge != 24*time.Hour || !p.Fetched.Equal(fx.clock.now()) {
		t.Errorf("policy read back: %+v", *p)
	}

	// A policy that expired while the cache was down is gone.
	fx.clock.add(2 * time.Hour)
	fx.reopen()
	if n := fx.c.lru.Len(); n != 1 {
		t.Errorf("%d policies read, want the one not expired", n)
	}
	fx.zone.SetTXT("_mta-sts.example.net")
	if p := fx.policy("example.net"); p != nil {
		t.Errorf("an expired policy read back: %+v", *p)
	}
}

func TestCacheBadFile(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "mta-sts.json")
	os.WriteFile(file, []byte(`{"version": 1, "policies": [{"domain": "example.com", "id": "1", "mode": "enforce", "mx": ["bad pattern"]`), 0o600)
	fx := newFixture(t, file)
	fx.zone.SetTXT("_mta-sts.example.com", "v=STSv1; id=1")
	fx.fetch.set("example.com", enforcePolicy, nil)
	fx.check("a broken file", fx.policy("example.com"), Enforce, "1", 1)
	fx.reopen()
	fx.check("replaced", fx.policy("example.com"), Enforce, "1", 1)

	// A policy that does not verify is dropped; the others are kept.
	now := fx.clock.now()
	f := cacheFile{Version: 1, Policies: []filePolicy{
		{Domain: "example.com", ID: "1", Mode: Enforce, MX: []string{"mx.example.com"}, MaxAge: 60, Fetched: now},
		{Domain: "bad.example", ID: "1", Mode: Enforce, MX: []string{"*.*.x"}, MaxAge: 60, Fetched: now},
		{Domain: "Upper.example", ID: "1", Mode: Enforce, MX: []string{"mx"}, MaxAge: 60, Fetched: now},
		{Domain: "long.example", ID: "1", Mode: Enforce, MX: []string{"mx"}, MaxAge: 31557601, Fetched: now},
		{Domain: "mx.example", ID: "1", Mode: Testing, Fetched: now, MaxAge: 60},
		{Domain: "id.example", ID: "a-b", Mode: None, Fetched: now, MaxAge: 60},
	}}
	b, _ := json.Marshal(f)
	os.WriteFile(file, b, 0o600)
	fx.reopen()
	if n := fx.c.lru.Len(); n != 1 {
		t.Errorf("%d policies read, want 1", n)
	}

	// A file that cannot be read at all is an error.
	if _, err := NewCache(fx.zone, fx.fetch, dir, nil); err == nil {
		t.Error("NewCache on a directory: no error")
	}
	if _, err := NewCache(nil, fx.fetch, "", nil); !errors.Is(err, ErrInvalid) {
		t.Errorf("NewCache without a Resolver: %v", err)
	}
}

func TestCacheBound(t *testing.T) {
	fx := newFixture(t, "")
	fx.c.max = 2
	for _, d := range []string{"a.example", "b.example", "c.example"} {
		fx.zone.SetTXT("_mta-sts."+d, "v=STSv1; id=1")
		fx.fetch.set(d, enforcePolicy, nil)
	}
	fx.policy("a.example")
	fx.policy("b.example")
	fx.policy("a.example") // a is now the most recently used
	fx.policy("c.example") // and b goes
	if n := fx.c.lru.Len(); n != 2 {
		t.Errorf("%d domains held, want 2", n)
	}
	fx.policy("a.example")
	fx.policy("b.example")
	if a, b := fx.fetch.count("a.example"), fx.fetch.count("b.example"); a != 1 || b != 2 {
		t.Errorf("fetches: a %d, b %d; want 1 and 2", a, b)
	}
}

func TestCacheConcurrent(t *testing.T) {
	fx := newFixture(t, filepath.Join(t.TempDir(), "mta-sts.json"))
	fx.zone.SetTXT("_mta-sts.example.com", "v=STSv1; id=1")
	fx.fetch.set("example.com", enforcePolicy, nil)
	// The fetch waits until the 19 other callers wait for it.
	fx.fetch.gate = func(ctx context.Context) error {
		if !eventually(func() bool { return fx.waiters("example.com") == 19 }) {
			return errors.New("the other callers did not wait")
		}
		return nil
	}
	const callers = 20
	var wg sync.WaitGroup
	policies := make([]*Policy, callers)
	for i := range callers {
		wg.Go(func() {
			p, err := fx.c.Policy(context.Background(), "example.com")
			if err != nil {
				t.Error(err)
			}
			policies[i] = p
		})
	}
	wg.Wait()
	if n := fx.fetch.count("example.com"); n != 1 {
		t.Errorf("%d fetches for %d callers, want 1", n, callers)
	}
	for i, p := range policies {
		if p == nil || p.ID != "1" || p.Mode != Enforce {
			t.Fatalf("caller %d: %+v", i, p)
		}
		if i > 0 && &p.MX[0] == &policies[0].MX[0] {
			t.Errorf("callers 0 and %d share a policy", i)
		}
	}
}

func TestCacheLeaderGivesUp(t *testing.T) {
	fx := newFixture(t, "")
	fx.zone.SetTXT("_mta-sts.example.com", "v=STSv1; id=1")
	fx.fetch.set("example.com", enforcePolicy, nil)
	first := make(chan struct{}, 1)
	first <- struct{}{}
	fx.fetch.gate = func(ctx context.Context) error {
		select {
		case <-first: // the first fetch waits for its caller to give up
			<-ctx.Done()
			return ctx.Err()
		default:
			return nil
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	leader := make(chan error, 1)
	go func() {
		_, err := fx.c.Policy(ctx, "example.com")
		leader <- err
	}()
	if !eventually(func() bool { return fx.waiters("example.com") == 0 }) {
		t.Fatal("the first call did not start")
	}
	follower := make(chan *Policy, 1)
	go func() {
		p, err := fx.c.Policy(context.Background(), "example.com")
		if err != nil {
			t.Error(err)
		}
		follower <- p
	}()
	if !eventually(func() bool { return fx.waiters("example.com") == 1 }) {
		t.Fatal("the second call did not wait for the first")
	}
	cancel()
	if err := <-leader; !errors.Is(err, context.Canceled) {
		t.Errorf("the caller that gave up: %v", err)
	}
	if p := <-follower; p == nil || p.ID != "1" {
		t.Errorf("the caller that waited: %+v", p)
	}
	if n := fx.fetch.count("example.com"); n != 2 {
		t.Errorf("%d fetches, want 2 (the one given up, and the follower's)", n)
	}
}
