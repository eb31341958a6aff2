package userdata

import (
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// MemoryConfig configures a Memory. Its zero value is ready to use: every
// zero field means its default.
type MemoryConfig struct {
	// Node is the UD node name recorded in the users created without one.
	Node string
	// Bodies, if set, gets a Retain for every body Copy references again
	// and a Release for every body an expunge or folder deletion drops, as
	// with Config.Bodies. Memory calls Retain with its lock held, so
	// Bodies must not call back into the Memory.
	Bodies BodyRefs
	// Argon2 sets the password hashing cost; the zero value means
	// DefaultArgon2. Tests set a cheap one.
	Argon2 Argon2Params
	// PasswordLimiter bounds the password checks and hashes, as
	// Config.PasswordLimiter does; nil means one of this Memory's own with
	// the default PasswordLimiterConfig.
	PasswordLimiter *PasswordLimiter
	// LoginCache and LoginCacheTTL are as in Config: zero means 100,000
	// logins for ten minutes, a negative LoginCache no cache.
	LoginCache    int
	LoginCacheTTL time.Duration
	// Logger receives the warnings (a body release that failed). Nil means
	// slog.Default().
	Logger *slog.Logger
}

// DefaultMemoryConfig returns the configuration a zero MemoryConfig means,
// with every default spelled out (but Logger, left nil for
// slog.Default()).
func DefaultMemoryConfig() MemoryConfig {
	return MemoryConfig{Argon2: DefaultArgon2(), LoginCache: defaultLoginCache, LoginCacheTTL: defaultLoginCacheTTL}
}

// Validate reports every problem with c at once, each naming its field.
func (c MemoryConfig) Validate() error {
	return configError("memory config", passwordConfigErrors(c.Argon2, c.LoginCacheTTL))
}

// Memory is a UserDB that keeps everything in memory: for tests, examples
// and a host program that brings its own persistence or needs none. It
// implements every optional capability of DB (Watcher, Remover,
// KeywordLister, RecentClaimer, FolderEvent.Hold) with the same rules:
// names, quotas, MODSEQ, UIDVALIDITY and UIDNEXT, subscriptions,
// argon2id passwords behind a PasswordLimiter, body reference counting.
// Nothing survives Close or the process.
//
// All methods are safe for concurrent use. One lock orders every change,
// so a watcher's fn, which runs with it held, must not call back into the
// Memory. A folder's messages are kept in UID order, so a lookup is a
// binary search and a change touches only the messages it names (but
// removals, which shift the rest of the folder's list).
type Memory struct {
	cfg MemoryConfig
	log *slog.Logger
	gate
	watchSet
	passwords

	mu sync.RWMutex
	st memState
}

var (
	_ UserDB        = (*Memory)(nil)
	_ Watcher       = (*Memory)(nil)
	_ Remover       = (*Memory)(nil)
	_ KeywordLister = (*Memory)(nil)
	_ RecentClaimer = (*Memory)(nil)
)

// NewMemory returns an empty Memory configured by cfg, which it copies. It
// fails, with an error wrapping ErrInvalid, only if cfg.Validate does.
func NewMemory(cfg MemoryConfig) (*Memory, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	m := &Memory{
		cfg:       cfg,
		log:       log.With("component", "userdata"),
		passwords: newPasswords(cfg.Argon2, cfg.PasswordLimiter, cfg.LoginCache, cfg.LoginCacheTTL),
		st: memState{
			domains:       map[string]Domain{},
			domainAliases: map[string]string{},
			domainUsage:   map[string]int64{},
			domainStats:   map[string]*DomainUsage{},
			units:         map[UnitID]OrgUnit{},
			classes:       map[string]ServiceClass{},
			users:         map[UserID]*memUser{},
			addresses:     map[string]memAddr{},
		},
	}
	m.gate.init()
	return m, nil
}

// Close waits for the calls in progress and ends the Memory: every later
// call returns ErrClosed, as does a second Close. The data is dropped.
func (m *Memory) Close() error {
	if err := m.gate.close(); err != nil {
		return err
	}
	m.mu.Lock()
	m.st = memState{}
	m.mu.Unlock()
	return nil
}

// Watch implements Watcher, as DB.Watch does: fn runs on the committing
// goroutine with the Memory's lock held.
func (m *Memory) Watch(user UserID, folder FolderID, fn func(FolderEvent)) (stop func()) {
	return m.watchSet.watch(user, folder, fn)
}

// memState is what a Memory holds, guarded by Memory.mu.
type memState struct {
	domains       map[string]Domain
	domainAliases map[string]string       // alias → domain
	domainUsage   map[string]int64        // bytes stored by the domain's users
	domainStats   map[string]*DomainUsage // users, disabled users and messages of the domain (Bytes unused)
	units         map[UnitID]OrgUnit
	classes       map[string]ServiceClass
	users         map[UserID]*memUser
	addresses     map[string]memAddr
	lastUser      UserID
	lastUnit      UnitID
}

// memAddr is what an address delivers to.
type memAddr struct {
	user  UserID
	alias bool // an alias, not the user's primary address
}

// memUser is a user and its mailbox.
type memUser struct {
	rec     userRecord
	mb      mailboxRecord // next folder id, last UIDVALIDITY, usage
	folders map[FolderID]*memFolder
	names   map[string]FolderID
	subs    map[string]bool
}

// each calls fn with every item, in order, and stops at its first error,
// which it returns: how the callbacks of a Memory are run, over a copy
// taken under the lock and called after it.
func each[T any](items []T, fn func(T) error) error {
	for _, it := range items {
		if err := fn(it); err != nil {
			return err
		}
	}
	return nil
}

func (s *memState) domainRecord(name string) (Domain, error) {
	d, ok := s.domains[name]
	if !ok {
		return Domain{}, fmt.Errorf("%w: domain %s", ErrNotFound, name)
	}
	return d, nil
}

func (s *memState) domainAliasOf(alias string) (string, error) {
	d, ok := s.domainAliases[alias]
	if !ok {
		return "", fmt.Errorf("%w: domain alias %s", ErrNotFound, alias)
	}
	return d, nil
}

func (s *memState) unitRecord(id UnitID) (OrgUnit, error) {
	u, ok := s.units[id]
	if !ok {
		return OrgUnit{}, fmt.Errorf("%w: unit %d", ErrNotFound, id)
	}
	return u, nil
}

func (s *memState) classRecord(name string) (ServiceClass, error) {
	c, ok := s.classes[name]
	if !ok {
		return ServiceClass{}, fmt.Errorf("%w: class %q", ErrNotFound, name)
	}
	return c, nil
}

func (s *memState) user(id UserID) (*memUser, error) {
	u, ok := s.users[id]
	if !ok {
		return nil, fmt.Errorf("%w: user %d", ErrNotFound, id)
	}
	return u, nil
}

// folder returns a folder of user id.
func (s *memState) folder(id UserID, folder FolderID) (*memUser, *memFolder, error) {
	u, err := s.user(id)
	if err != nil {
		return nil, nil, err
	}
	f, ok := u.folders[folder]
	if !ok {
		return nil, nil, fmt.Errorf("%w: folder %d of user %d", ErrNotFound, folder, id)
	}
	return u, f, nil
}

// userByAddress finds the user a normalized address delivers to: a
// primary address or an alias, in a domain or, through a domain alias, in
// its target.
func (s *memState) userByAddress(addr string) (*memUser, error) {
	a, ok := s.addresses[addr]
	if !ok {
		local, domain, _ := strings.Cut(addr, "@")
		if target, isAlias := s.domainAliases[domain]; isAlias {
			a, ok = s.addresses[local+"@"+target]
		}
	}
	if !ok {
		return nil, fmt.Errorf("%w: address %s", ErrNotFound, addr)
	}
	return s.user(a.user)
}

// domainNameFree checks that name is neither a domain nor a domain alias.
func (s *memState) domainNameFree(name string) error {
	_, dom := s.domains[name]
	_, alias := s.domainAliases[name]
	if dom || alias {
		return fmt.Errorf("%w: domain %s", ErrExists, name)
	}
	return nil
}

// addressFree checks that addr is neither a primary address nor an alias.
func (s *memState) addressFree(addr string) error {
	if _, ok := s.addresses[addr]; ok {
		return fmt.Errorf("%w: address %s", ErrExists, addr)
	}
	return nil
}

// owner is what an index change needs to know about u.
func (s *memState) owner(u *memUser, log *slog.Logger) (indexOwner, error) {
	l, err := limitsOf(s, log, &u.rec.User)
	return indexOwner{domain: addressDomain(u.rec.Address), limits: l}, err
}

// charge adds n messages of bytes (negative to take them off) to u's usage
// and its domain's.
func (s *memState) charge(u *memUser, n, bytes int64) {
	u.mb.Messages += n
	u.mb.Bytes += bytes
	s.domainUsage[addressDomain(u.rec.Address)] += bytes
	s.stats(u.rec.Address).Messages += n
}
