package userdata

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/mailsys/mailsys/internal/pebblelog"
)

// Config configures a DB. The zero value of every field but Dir means its
// default.
type Config struct {
	// Dir is the directory of the Pebble database; created if missing.
	// Everything the DB creates in it (and in Mirror) is private to the
	// process's user whatever the umask: directories 0700, files 0600.
	// Open also takes the group and other permissions off what is there
	// already, logging each change.
	Dir string
	// Node is this UD node's name, recorded in every user created here.
	Node string
	// Bodies, if set, gets a Retain for every body Copy references again and
	// a Release for every body an expunge or folder deletion drops.
	Bodies BodyRefs
	// CacheSize is Pebble's block cache in bytes. Zero means 256 MiB
	// (Pebble's own default of 8 MiB is far too small for an index).
	CacheSize int64
	// MemTableSize is Pebble's memtable size. Zero means 64 MiB.
	MemTableSize uint64
	// LoginCache is how many verified logins are remembered, so that a
	// repeated login costs neither a database read nor a password hash.
	// Zero means 100,000; negative turns the cache off.
	LoginCache int
	// LoginCacheTTL is how long a remembered login stays valid. Zero means
	// ten minutes.
	LoginCacheTTL time.Duration
	// Argon2 sets the password hashing cost. The zero value means
	// DefaultArgon2.
	Argon2 Argon2Params
	// PasswordLimiter bounds the password checks of Authenticate, and the
	// hashing of CreateUser and SetPassword, by count and memory (see
	// PasswordLimiter). Pass one limiter to every DB of a process to bound
	// them together. Nil means a limiter of this DB's own with the default
	// PasswordLimiterConfig.
	PasswordLimiter *PasswordLimiter
	// NoSync commits without waiting for stable storage, for bulk imports:
	// a crash may lose the last changes (never half of one). The default
	// is durable commits.
	NoSync bool
	// Mirror, if set, is the directory of a hot-standby copy of the
	// database, on another disk: every change is written to both, and if
	// the primary fails the mirror serves until RestorePrimary.
	Mirror string
	// DiskReserve is the size of a file kept in Dir as a reserve against a
	// full disk, which Pebble does not survive: when a write of the
	// database meets ENOSPC, the reserve is removed and the write tried
	// again; writes are then refused, with an error wrapping
	// syscall.ENOSPC, until the file system has room for two reserves and
	// the reserve is made again. Reads go on meanwhile. Zero means 1% of
	// the file system's size, at most 64 MiB; negative turns the reserve
	// off, and a full disk then fails the database (ErrFailed). The
	// reserve applies to Dir, not to the Mirror.
	DiskReserve int64
	// Replication, if set, makes the DB the primary of a hot standby on
	// another node: every commit goes to the standby (DB.Follow) before it
	// is acknowledged; see ReplicationConfig.
	Replication *ReplicationConfig
	// Logger receives the database's log records, Pebble's included. Nil
	// means slog.Default().
	Logger *slog.Logger

	primaryFS vfs.FS // tests inject I/O errors here
}

// DB is the default UserDB, on a Pebble database. All methods are safe for
// concurrent use. See the package documentation for the key schema.
type DB struct {
	cfg Config
	log *slog.Logger
	db  *kv

	// locks serialize the read-modify-write of one user's records (folder
	// counters, UIDs, usage) within this process; the batch that follows is
	// atomic and durable.
	locks [256]sync.Mutex
	// appends queue the appends waiting for each of those locks, so that
	// whoever holds it commits them all in one batch (see append.go).
	appends [256]appendQueue
	// meta serializes counters and name claims shared by all users
	// (domains, units, addresses).
	meta sync.Mutex
	// domainLocks serialize the check and update of a domain's usage
	// against its quota; taken after a user lock.
	domainLocks [64]sync.Mutex

	watchSet  // the watchers of each folder (watch.go)
	gate      // Close against the calls in progress
	passwords // hashing, its limiter and the login cache (auth.go)

	repair repairHook
}

type folderKey struct {
	user   UserID
	folder FolderID
}

var _ UserDB = (*DB)(nil)
var _ Watcher = (*DB)(nil)
var _ Remover = (*DB)(nil)

// Open opens (or creates) the database in cfg.Dir, and brings a database
// written by an older version to the current schema first (see
// upgradeSubscriptions and upgradeLister). It fails with an error wrapping ErrInvalid,
// touching nothing, when cfg.Validate does.
func Open(ctx context.Context, cfg Config) (*DB, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	log = log.With("component", "userdata")
	cache := pebble.NewCache(cfg.CacheSize)
	defer cache.Unref()
	opts := func(fs vfs.FS) *pebble.Options { return pebbleOptions(&cfg, cache, fs, log) }
	db, err := openKV(ctx, &cfg, log, opts)
	if err != nil {
		return nil, err
	}
	d := &DB{cfg: cfg, log: log, db: db,
		passwords: newPasswords(cfg.Argon2, cfg.PasswordLimiter, cfg.LoginCache, cfg.LoginCacheTTL)}
	d.gate.init()
	if err := d.upgradeSubscriptions(ctx); err != nil {
		db.Close()
		return nil, err
	}
	if err := d.upgradeLister(ctx); err != nil {
		db.Close()
		return nil, err
	}
	if db.rep != nil {
		db.rep.opened()
	}
	return d, nil
}

// pebbleOptions are the Pebble options of the databases of cfg (a DB's,
// its mirror's, a Replica's): they must agree, the merger above all.
func pebbleOptions(cfg *Config, cache *pebble.Cache, fs vfs.FS, log *slog.Logger) *pebble.Options {
	return &pebble.Options{
		FS:           fs,
		Cache:        cache,
		MemTableSize: cfg.MemTableSize,
		Merger:       sumMerger,
		Logger:       pebblelog.Logger{Log: log},
	}
}

// Close closes the database once the calls in progress have returned.
// Calls after Close, and calls made by callbacks of calls in progress (a
// Messages fn), return ErrClosed.
func (d *DB) Close() error {
	if d.db.rep != nil {
		d.db.rep.close() // a standby's Follow ends, and writes wait for it no more
	}
	if err := d.gate.close(); err != nil {
		return err
	}
	return d.db.Close()
}

// gate lets calls in until Close, which then waits for those in progress.
// DB and Memory embed one; init must be called before use.
type gate struct {
	mu     sync.Mutex
	idle   *sync.Cond // signalled when active drops to zero
	closed bool
	active int // calls in progress
}

func (g *gate) init() { g.idle = sync.NewCond(&g.mu) }

// enter guards a call against a concurrent Close: it fails with ctx's
// error or ErrClosed, or the caller must call the returned function when
// done.
func (g *gate) enter(ctx context.Context) (func(), error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return nil, ErrClosed
	}
	g.active++
	return g.leave, nil
}

func (g *gate) leave() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.active--; g.active == 0 {
		g.idle.Broadcast()
	}
}

// close shuts the gate and waits for the calls in progress to leave. It
// returns ErrClosed if the gate was shut already.
func (g *gate) close() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return ErrClosed
	}
	g.closed = true
	for g.active > 0 {
		g.idle.Wait()
	}
	return nil
}

func (d *DB) userLock(u UserID) *sync.Mutex { return &d.locks[uint64(u)%uint64(len(d.locks))] }

func (d *DB) domainLock(domain string) *sync.Mutex {
	h := fnv.New32a()
	h.Write([]byte(domain))
	return &d.domainLocks[h.Sum32()%uint32(len(d.domainLocks))]
}

// get reads key's value into a new slice; ErrNotFound if absent.
func (d *DB) get(key []byte) ([]byte, error) {
	v, closer, err := d.db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("userdata: %w", err)
	}
	b := append([]byte(nil), v...)
	closer.Close()
	return b, nil
}

// commit applies b atomically and, unless Config.NoSync, durably.
func (d *DB) commit(b *pebble.Batch) error {
	opt := pebble.Sync
	if d.cfg.NoSync {
		opt = pebble.NoSync
	}
	if err := d.db.commit(b, opt); err != nil {
		return fmt.Errorf("userdata: commit: %w", err)
	}
	return nil
}

// scan calls fn for every key in [lo, hi) in order; fn's slices are valid
// only during the call.
func (d *DB) scan(lo, hi []byte, fn func(k, v []byte) error) error {
	return scanFrom(d.db, lo, hi, fn)
}

// scanFrom is scan on r, a snapshot for instance.
func scanFrom(r pebble.Reader, lo, hi []byte, fn func(k, v []byte) error) error {
	it, err := r.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return fmt.Errorf("userdata: %w", err)
	}
	for it.First(); it.Valid(); it.Next() {
		if err := fn(it.Key(), it.Value()); err != nil {
			it.Close()
			return err
		}
	}
	if err := it.Close(); err != nil {
		return fmt.Errorf("userdata: %w", err)
	}
	return nil
}

// takeCounter returns the id a new record gets: want when it is not 0,
// with the counter moved past it so that the ids chosen later stay
// clear of it, else the counter's next value. d.meta must be held; the
// caller checks that want is free.
func (d *DB) takeCounter(b *pebble.Batch, name string, want uint64) (uint64, error) {
	if want == 0 {
		return d.nextCounter(b, name)
	}
	key := append([]byte{tagCounter}, name...)
	v, err := d.get(key)
	switch {
	case err == nil && len(v) == 8:
		if binary.BigEndian.Uint64(v) >= want {
			return want, nil
		}
	case err == nil:
		return 0, fmt.Errorf("userdata: counter %s: bad value", name)
	case !errors.Is(err, ErrNotFound):
		return 0, err
	}
	b.Set(key, binary.BigEndian.AppendUint64(nil, want), nil)
	return want, nil
}

// nextCounter returns the next value of a global counter, to be written in
// b. d.meta must be held.
func (d *DB) nextCounter(b *pebble.Batch, name string) (uint64, error) {
	key := append([]byte{tagCounter}, name...)
	var n uint64
	v, err := d.get(key)
	switch {
	case err == nil && len(v) == 8:
		n = binary.BigEndian.Uint64(v)
	case err == nil:
		return 0, fmt.Errorf("userdata: counter %s: bad value", name)
	case !errors.Is(err, ErrNotFound):
		return 0, err
	}
	n++
	b.Set(key, binary.BigEndian.AppendUint64(nil, n), nil)
	return n, nil
}

// sumMerger is the merge operator of counters that many writers update
// without a lock (a domain's usage): values are int64 deltas, summed.
var sumMerger = &pebble.Merger{
	Name: "mailsys.sum.v1",
	Merge: func(key, value []byte) (pebble.ValueMerger, error) {
		m := &sumValue{}
		return m, m.MergeNewer(value)
	},
}

type sumValue struct{ n int64 }

func (m *sumValue) MergeNewer(v []byte) error {
	if len(v) != 8 {
		return fmt.Errorf("userdata: bad counter operand (%d bytes)", len(v))
	}
	m.n += int64(binary.BigEndian.Uint64(v))
	return nil
}

func (m *sumValue) MergeOlder(v []byte) error { return m.MergeNewer(v) }

func (m *sumValue) Finish(includesBase bool) ([]byte, io.Closer, error) {
	return binary.BigEndian.AppendUint64(nil, uint64(m.n)), nil, nil
}

// addDomainUsage adds delta bytes to a domain's usage in b.
func addDomainUsage(b *pebble.Batch, domain string, delta int64) {
	b.Merge(keyString(tagDomainUsage, domain), binary.BigEndian.AppendUint64(nil, uint64(delta)), nil)
}

// domainUsage reads a domain's usage in bytes.
func (d *DB) domainUsage(domain string) (int64, error) {
	v, err := d.get(keyString(tagDomainUsage, domain))
	if errors.Is(err, ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	if len(v) != 8 {
		return 0, fmt.Errorf("userdata: domain usage of %s: bad value", domain)
	}
	return int64(binary.BigEndian.Uint64(v)), nil
}
