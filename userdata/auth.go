package userdata

import (
	"container/list"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/argon2"
)

// Argon2Params is the cost of argon2id password hashing. Hashes record
// their parameters, so changing them affects new passwords only.
type Argon2Params struct {
	Time    uint32 // passes
	Memory  uint32 // KiB
	Threads uint8
}

// DefaultArgon2 returns RFC 9106's second recommended option (64 MiB, 3
// passes), with 2 lanes: the cost a zero Config.Argon2 means.
func DefaultArgon2() Argon2Params { return Argon2Params{Time: 3, Memory: 64 << 10, Threads: 2} }

const (
	saltLen = 16
	hashLen = 32
)

// HashPassword returns the PHC-format argon2id hash of password:
// $argon2id$v=19$m=65536,t=3,p=2$<salt>$<hash>.
func HashPassword(password string, p Argon2Params) (string, error) {
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("userdata: %w", err)
	}
	key := argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, hashLen)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.Memory, p.Time, p.Threads,
		b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// CheckPassword reports whether password matches a hash made by
// HashPassword, in time independent of where they differ. It is not
// bounded by any PasswordLimiter; DB.Authenticate bounds its own checks.
func CheckPassword(password, hash string) (bool, error) {
	h, err := parseHash(hash)
	if err != nil {
		return false, err
	}
	return h.verify(password), nil
}

// phcHash is an argon2id hash parsed from its PHC string.
type phcHash struct {
	p          Argon2Params
	salt, want []byte
}

func parseHash(hash string) (phcHash, error) {
	parts := strings.Split(hash, "$")
	if len(parts) != 6 || parts[1] != "argon2id" || parts[2] != fmt.Sprintf("v=%d", argon2.Version) {
		return phcHash{}, fmt.Errorf("%w: not an argon2id hash", ErrInvalid)
	}
	var p Argon2Params
	// Bounds well above any sane setting (Argon2Params.check), so that a
	// tampered hash cannot make a login take minutes or gigabytes.
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.Memory, &p.Time, &p.Threads); err != nil ||
		fmt.Sprintf("m=%d,t=%d,p=%d", p.Memory, p.Time, p.Threads) != parts[3] || p.check() != nil {
		return phcHash{}, fmt.Errorf("%w: bad argon2id parameters", ErrInvalid)
	}
	b64 := base64.RawStdEncoding
	salt, err1 := b64.DecodeString(parts[4])
	want, err2 := b64.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(want) == 0 || len(want) > 128 {
		return phcHash{}, fmt.Errorf("%w: bad argon2id encoding", ErrInvalid)
	}
	return phcHash{p: p, salt: salt, want: want}, nil
}

// weight is the memory hashing with p takes, for a PasswordLimiter.
func (p Argon2Params) weight() int64 { return int64(p.Memory) << 10 }

func (h phcHash) verify(password string) bool {
	got := argon2.IDKey([]byte(password), h.salt, h.p.Time, h.p.Memory, h.p.Threads, uint32(len(h.want)))
	return subtle.ConstantTimeCompare(got, h.want) == 1
}

// passwords is what DB and Memory share to hash and check passwords: the
// configured cost, the limiter that admits every hash, the dummy hash of
// unknown addresses and the login cache (nil when turned off).
type passwords struct {
	argon2  Argon2Params
	limiter *PasswordLimiter
	dummy   string // see dummyHash
	logins  *loginCache
}

// newPasswords fills in the defaults of a zero cost (DefaultArgon2), a nil
// limiter (one of its own with the default PasswordLimiterConfig), a zero
// cache size (100,000) and TTL (ten minutes); a negative size turns the
// cache off.
func newPasswords(p Argon2Params, l *PasswordLimiter, cache int, ttl time.Duration) passwords {
	if p == (Argon2Params{}) {
		p = DefaultArgon2()
	}
	if l == nil {
		l = NewPasswordLimiter(PasswordLimiterConfig{})
	}
	if cache == 0 {
		cache = defaultLoginCache
	}
	if ttl == 0 {
		ttl = defaultLoginCacheTTL
	}
	pw := passwords{argon2: p, limiter: l, dummy: dummyHash(p)}
	if cache > 0 {
		pw.logins = newLoginCache(cache, ttl)
	}
	return pw
}

// Defaults of the login cache (Config.LoginCache, Config.LoginCacheTTL).
const (
	defaultLoginCache    = 100_000
	defaultLoginCacheTTL = 10 * time.Minute
)

// checkPassword is CheckPassword admitted by the limiter: it fails with
// ErrBusy (wrapped) when the limiter refuses the check.
func (pw *passwords) checkPassword(ctx context.Context, password, hash string) (bool, error) {
	h, err := parseHash(hash)
	if err != nil {
		return false, err
	}
	release, err := pw.limiter.Acquire(ctx, h.p.weight())
	if err != nil {
		return false, err
	}
	defer release()
	return h.verify(password), nil
}

// hashPassword is HashPassword with the configured cost, admitted by the
// limiter. Administrative calls (CreateUser, SetPassword) wait for their
// turn as long as their ctx allows rather than fail with ErrBusy: they are
// few and trusted, and a storm of logins must not make them fail. An empty
// password gives the empty hash (no login) without hashing.
func (pw *passwords) hashPassword(ctx context.Context, password string) (string, error) {
	if password == "" {
		return "", nil
	}
	release, err := pw.limiter.Wait(ctx, pw.argon2.weight())
	if err != nil {
		return "", err
	}
	defer release()
	return HashPassword(password, pw.argon2)
}

// login is Authenticate but for the autoRepair of a DB: it answers from the
// login cache or runs one argon2id check (against the dummy hash for an
// unknown address or an account without a password), admitted by the
// limiter. find reads the user record of a normalized address (ErrNotFound
// if none); resolve gives the user's limits and whether it, a unit above
// it or its domain is disabled. checked reports a successful login that
// paid for a password check.
func (pw *passwords) login(ctx context.Context, address, password string, p Protocol,
	find func(addr string) (userRecord, error), resolve func(*User) (Limits, bool, error)) (u User, checked bool, err error) {
	addr, err := normalizeAddress(address)
	if err != nil {
		return User{}, false, ErrAuthFailed
	}
	var gen uint64
	if pw.logins != nil {
		if u, l, ok := pw.logins.get(addr, password); ok {
			pw.logins.hits.Add(1)
			return u, false, checkLogin(u, l, p)
		}
		pw.logins.misses.Add(1)
		gen = pw.logins.generation()
	}
	rec, err := find(addr)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return User{}, false, err
	}
	known := err == nil && rec.Hash != ""
	hash := rec.Hash
	if !known {
		// Spend the time a real check would, under the same limiter, so
		// that unknown addresses cannot be told from wrong passwords by
		// timing.
		hash = pw.dummy
	}
	ok, err := pw.checkPassword(ctx, password, hash)
	if err != nil && !errors.Is(err, ErrInvalid) {
		return User{}, false, err // ErrBusy, or ctx ended while the check waited
	}
	if err != nil || !ok || !known {
		return User{}, false, ErrAuthFailed
	}
	l, disabled, err := resolve(&rec.User)
	if err != nil {
		return User{}, false, err
	}
	u = rec.User
	if disabled {
		u.Disabled = true
	}
	if pw.logins != nil {
		pw.logins.put(gen, addr, password, u, l)
	}
	if err := checkLogin(u, l, p); err != nil {
		return u, false, err
	}
	return u, true, nil
}

// loginCache remembers recently verified logins: for each address, the user
// record and a salted digest of the password that worked. A hit costs a
// SHA-256 instead of an argon2id hash and no database read. Entries are
// dropped when the account changes (password, disabled, limits), after a
// TTL, and least recently used first when the cache is full.
type loginCache struct {
	mu      sync.Mutex
	gen     uint64 // bumped by every invalidation; see put
	max     int
	ttl     time.Duration
	key     [32]byte // per-process secret mixed into digests
	lru     *list.List
	entries map[string]*list.Element
	byUser  map[UserID][]string // addresses cached per user, for invalidation

	hits, misses atomic.Uint64 // of login, for LoginCacheStats
}

// LoginCacheStats is a snapshot of the login cache's counters, for
// monitoring: see LoginCacheStater.
type LoginCacheStats struct {
	// Enabled is false when the cache is turned off (Config.LoginCache
	// negative); the other fields are then zero.
	Enabled bool
	// Hits counts the logins the cache answered without a password
	// check, Misses those it could not (unknown address, another
	// password, an entry expired or dropped), since the database opened.
	Hits, Misses uint64
	// Entries is the number of logins cached now.
	Entries int
}

// LoginCacheStater is the optional capability of a UserDB that reports
// its login cache; DB and Memory have it. LoginCacheStats is cheap (two
// atomic loads and a short lock) and safe for concurrent use.
type LoginCacheStater interface {
	LoginCacheStats() LoginCacheStats
}

var (
	_ LoginCacheStater = (*DB)(nil)
	_ LoginCacheStater = (*Memory)(nil)
)

// LoginCacheStats returns the login cache's counters (see LoginCacheStater).
func (pw *passwords) LoginCacheStats() LoginCacheStats {
	c := pw.logins
	if c == nil {
		return LoginCacheStats{}
	}
	c.mu.Lock()
	n := len(c.entries)
	c.mu.Unlock()
	return LoginCacheStats{Enabled: true, Hits: c.hits.Load(), Misses: c.misses.Load(), Entries: n}
}

type loginEntry struct {
	address string
	digest  [32]byte
	user    User
	limits  Limits
	expires time.Time
}

func newLoginCache(max int, ttl time.Duration) *loginCache {
	c := &loginCache{max: max, ttl: ttl, lru: list.New(), entries: map[string]*list.Element{}, byUser: map[UserID][]string{}}
	rand.Read(c.key[:])
	return c
}

func (c *loginCache) digest(address, password string) [32]byte {
	h := sha256.New()
	h.Write(c.key[:])
	h.Write([]byte(address))
	h.Write([]byte{0})
	h.Write([]byte(password))
	var d [32]byte
	h.Sum(d[:0])
	return d
}

// get returns the cached user and limits if address and password match an
// entry that has not expired.
func (c *loginCache) get(address, password string) (User, Limits, bool) {
	d := c.digest(address, password)
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.entries[address]
	if !ok {
		return User{}, Limits{}, false
	}
	e := el.Value.(*loginEntry)
	if time.Now().After(e.expires) || subtle.ConstantTimeCompare(d[:], e.digest[:]) != 1 {
		return User{}, Limits{}, false
	}
	c.lru.MoveToFront(el)
	return e.user, e.limits, true
}

// generation returns the invalidation count, to pass to put.
func (c *loginCache) generation() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen
}

// put remembers a login verified against records read after generation()
// returned gen. If anything was invalidated since, the records may be stale
// and nothing is remembered.
func (c *loginCache) put(gen uint64, address, password string, u User, l Limits) {
	e := &loginEntry{address: address, digest: c.digest(address, password), user: u, limits: l, expires: time.Now().Add(c.ttl)}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gen {
		return
	}
	if el, ok := c.entries[address]; ok {
		el.Value = e
		c.lru.MoveToFront(el)
		return
	}
	c.entries[address] = c.lru.PushFront(e)
	c.byUser[u.ID] = append(c.byUser[u.ID], address)
	for c.lru.Len() > c.max {
		c.removeLocked(c.lru.Back())
	}
}

func (c *loginCache) removeLocked(el *list.Element) {
	e := c.lru.Remove(el).(*loginEntry)
	delete(c.entries, e.address)
	addrs := c.byUser[e.user.ID]
	for i, a := range addrs {
		if a == e.address {
			addrs = append(addrs[:i], addrs[i+1:]...)
			break
		}
	}
	if len(addrs) == 0 {
		delete(c.byUser, e.user.ID)
	} else {
		c.byUser[e.user.ID] = addrs
	}
}

// forgetUser drops every entry of a user.
func (c *loginCache) forgetUser(id UserID) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	for _, a := range append([]string(nil), c.byUser[id]...) {
		if el, ok := c.entries[a]; ok {
			c.removeLocked(el)
		}
	}
}

// forgetAll empties the cache, for changes that affect many users at once
// (a domain, a unit or a service class).
func (c *loginCache) forgetAll() {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	c.lru.Init()
	c.entries = map[string]*list.Element{}
	c.byUser = map[UserID][]string{}
}

// Authenticate checks credentials; see [Authenticator]. A login found in
// the login cache is answered at once, without a password check. Every
// other call runs one argon2id check (against a dummy hash of the same cost
// for an unknown address or an account without a password) admitted by
// Config.PasswordLimiter, and fails with an error wrapping ErrBusy if the
// limiter refuses it, or wrapping ctx's error if ctx ends while it waits.
func (d *DB) Authenticate(ctx context.Context, address, password string, p Protocol) (User, error) {
	done, err := d.enter(ctx)
	if err != nil {
		return User{}, err
	}
	defer done()
	u, checked, err := d.login(ctx, address, password, p, d.userRecordByAddress, func(u *User) (Limits, bool, error) {
		return loginState(d, d.log, u)
	})
	if checked {
		// A login that paid for a password check also checks the
		// mailbox, at most once per interval, when AutoRepair is on
		// (repair.go).
		d.autoRepair(ctx, u.ID)
	}
	return u, err
}

func checkLogin(u User, l Limits, p Protocol) error {
	if u.Disabled {
		return ErrDisabled
	}
	if l.Protocols != 0 && l.Protocols&p == 0 {
		return ErrProtocol
	}
	return nil
}

// dummyHash returns a hash with the cost of p that no password matches
// (its key is random), for timing-safe failures. Making it costs no
// argon2id hash.
func dummyHash(p Argon2Params) string {
	var salt [saltLen]byte
	var key [hashLen]byte
	rand.Read(salt[:])
	rand.Read(key[:])
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.Memory, p.Time, p.Threads,
		b64.EncodeToString(salt[:]), b64.EncodeToString(key[:]))
}
