package userdata

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/mailsys/mailsys/internal/fsutil"
	"github.com/mailsys/mailsys/internal/privatefs"
)

// The hot standby (Config.Mirror). Every committed batch is applied to the
// primary Pebble database and, synchronously, to the mirror, a second
// database on another disk; both hold the same keys. When the primary fails
// (an I/O error, a closed or lost database) it is masked at once: reads,
// logins and writes go on against the mirror and callers see nothing but a
// log line. RestorePrimary brings the primary back: it copies the mirror
// into it, with writes held, before the primary serves again.
//
// Batches of different users may reach the two databases in different
// orders; that is harmless because they touch different keys, and the
// shared keys are either written under a global lock (counters, names) or
// merged commutatively (domain usage). Each database also counts the
// batches it applied; at Open, differing counts (a crash between the two
// applies, one of them used alone) make the one that applied more be copied
// to the other.

// kv is what the DB reads and writes: the primary, and the mirror if any.
// It has the methods of *pebble.DB that the DB uses, failing over from the
// primary to the mirror on errors. When a commit fails on every database
// that serves (the primary alone, without a mirror), none serves any more:
// Pebble cannot be trusted after a failed commit (see reserve.go), and every
// call returns ErrFailed until the DB is reopened.
type kv struct {
	log *slog.Logger
	res *reserve // the primary's disk reserve; nil if turned off

	mu        sync.RWMutex // writers hold it for reading; RestorePrimary for writing
	primary   *pebble.DB
	mirror    *pebble.DB // nil without a standby
	primaryUp bool
	mirrorUp  bool
	failure   error // why nothing serves, once neither is up

	dir  string // the primary's directory, to reopen it
	opts func() *pebble.Options

	rep *replicator // replication to a standby on another node, if configured
}

// mirrorCommitsKey counts the batches a database applied (merge: sum).
var mirrorCommitsKey = []byte{tagCounter, 'm', 'i', 'r', 'r', 'o', 'r'}

var one = []byte{0, 0, 0, 0, 0, 0, 0, 1}

func openKV(ctx context.Context, cfg *Config, log *slog.Logger, opts func(fs vfs.FS) *pebble.Options) (*kv, error) {
	pfs := cfg.primaryFS
	if pfs == nil {
		pfs = vfs.Default
	}
	pfs = privatefs.New(pfs)
	if err := os.MkdirAll(cfg.Dir, fsutil.DirMode); err != nil {
		return nil, fmt.Errorf("userdata: %w", err)
	}
	// The database holds password hashes: a tree made by an older version
	// loses its group and other permissions (logged; not fatal).
	fsutil.TightenLog(log, cfg.Dir)
	if cfg.Mirror != "" {
		fsutil.TightenLog(log, cfg.Mirror)
	}
	k := &kv{log: log, dir: cfg.Dir, res: newReserve(cfg, log)}
	if k.res != nil {
		pfs = vfs.OnDiskFull(pfs, k.res.spend)
	}
	k.opts = func() *pebble.Options { return opts(pfs) }
	var p *pebble.DB
	err := guard(func() (err error) { p, err = pebble.Open(cfg.Dir, k.opts()); return err })
	if err != nil {
		return nil, fmt.Errorf("userdata: open %s: %w", cfg.Dir, err)
	}
	k.primary, k.primaryUp = p, true
	if cfg.Replication != nil {
		pos, err := readPos(func(key []byte) ([]byte, func(), error) {
			v, c, err := p.Get(key)
			if err != nil {
				return nil, nil, err
			}
			return v, func() { c.Close() }, nil
		})
		if err != nil {
			p.Close()
			return nil, err
		}
		k.rep = newReplicator(*cfg.Replication, pos, log)
	}
	if cfg.Mirror == "" {
		return k, nil
	}
	m, err := pebble.Open(cfg.Mirror, opts(privatefs.New(vfs.Default)))
	if err != nil {
		p.Close()
		return nil, fmt.Errorf("userdata: open mirror %s: %w", cfg.Mirror, err)
	}
	k.mirror, k.mirrorUp = m, true
	pc, err1 := countOf(p)
	mc, err2 := countOf(m)
	if err := errors.Join(err1, err2); err != nil {
		k.Close()
		return nil, err
	}
	// The side that applied more batches is the newer one: the primary
	// used alone, or the mirror that served after the primary failed.
	src, dst, what := p, m, "copying the primary to the mirror"
	if mc > pc {
		src, dst, what = m, p, "copying the mirror to the primary"
	}
	if pc != mc {
		log.Warn("mirror out of step with the primary; "+what, "primary_batches", pc, "mirror_batches", mc)
		if err := copyAll(ctx, src, dst); err != nil {
			k.Close()
			return nil, fmt.Errorf("userdata: resync mirror: %w", err)
		}
	}
	return k, nil
}

func countOf(db *pebble.DB) (int64, error) {
	v, closer, err := db.Get(mirrorCommitsKey)
	if errors.Is(err, pebble.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("userdata: %w", err)
	}
	defer closer.Close()
	var s sumValue
	if err := s.MergeNewer(v); err != nil {
		return 0, err
	}
	return s.n, nil
}

// copyAll makes dst hold exactly the keys of src.
func copyAll(ctx context.Context, src, dst *pebble.DB) error {
	all := []byte{0}
	end := []byte{0xff, 0xff}
	if err := dst.DeleteRange(all, end, pebble.Sync); err != nil {
		return err
	}
	it, err := src.NewIter(&pebble.IterOptions{LowerBound: all, UpperBound: end})
	if err != nil {
		return err
	}
	defer it.Close()
	b := dst.NewBatch()
	for it.First(); it.Valid(); it.Next() {
		if err := ctx.Err(); err != nil {
			b.Close()
			return err
		}
		b.Set(it.Key(), it.Value(), nil)
		if b.Len() > 4<<20 {
			if err := b.Commit(pebble.NoSync); err != nil {
				return err
			}
			b = dst.NewBatch()
		}
	}
	if err := it.Error(); err != nil {
		b.Close()
		return err
	}
	return b.Commit(pebble.Sync)
}

// guard runs f on db, turning a panic into an error: Pebble panics when
// used after Close, and pebblelog.Logger turns Pebble's fatal errors (a failed
// commit) into panics.
func guard(f func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	return f()
}

// reader returns the database reads go to, and whether it is the primary.
func (k *kv) reader() (*pebble.DB, bool, error) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	switch {
	case k.primaryUp:
		return k.primary, true, nil
	case k.mirrorUp:
		return k.mirror, false, nil
	}
	return nil, false, fmt.Errorf("%w: %w", ErrFailed, k.failure)
}

// failPrimary masks the primary after err, if a mirror can take over.
func (k *kv) failPrimary(err error) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.mirror == nil || !k.mirrorUp {
		return false
	}
	if k.primaryUp {
		k.primaryUp = false
		k.log.Error("primary database failed; serving from the mirror until RestorePrimary", "err", err)
	}
	return true
}

// Get reads key, as pebble.DB.Get.
func (k *kv) Get(key []byte) (v []byte, closer io.Closer, err error) {
	db, primary, err := k.reader()
	if err != nil {
		return nil, nil, err
	}
	err = guard(func() error { v, closer, err = db.Get(key); return err })
	if err != nil && !errors.Is(err, pebble.ErrNotFound) && primary && k.failPrimary(err) {
		return k.mirror.Get(key)
	}
	return v, closer, err
}

// NewIter opens an iterator, as pebble.DB.NewIter.
func (k *kv) NewIter(o *pebble.IterOptions) (it *pebble.Iterator, err error) {
	db, primary, err := k.reader()
	if err != nil {
		return nil, err
	}
	err = guard(func() error { it, err = db.NewIter(o); return err })
	if err != nil && primary && k.failPrimary(err) {
		return k.mirror.NewIter(o)
	}
	return it, err
}

// NewIterWithContext is NewIter with a context, for pebble.Reader.
func (k *kv) NewIterWithContext(ctx context.Context, o *pebble.IterOptions) (*pebble.Iterator, error) {
	return k.NewIter(o)
}

// NewSnapshot returns a snapshot of the database reads go to.
func (k *kv) NewSnapshot() (*pebble.Snapshot, error) {
	db, primary, err := k.reader()
	if err != nil {
		return nil, err
	}
	var s *pebble.Snapshot
	err = guard(func() error { s = db.NewSnapshot(); return nil })
	if err != nil && primary && k.failPrimary(err) {
		return k.mirror.NewSnapshot(), nil
	}
	return s, err
}

// NewBatch returns a batch to fill and pass to commit.
func (k *kv) NewBatch() *pebble.Batch {
	db, _, err := k.reader()
	if err != nil {
		db = k.primary // a batch is only a buffer; commit refuses it
	}
	var b *pebble.Batch
	if guard(func() error { b = db.NewBatch(); return nil }) != nil {
		b = k.mirror.NewBatch()
	}
	return b
}

// commit applies b to the primary and the mirror. It refuses b, with an
// error wrapping syscall.ENOSPC, while the disk reserve is spent.
func (k *kv) commit(b *pebble.Batch, opts *pebble.WriteOptions) error {
	if err := k.res.check(); err != nil {
		return err
	}
	b.Merge(mirrorCommitsKey, one, nil) // counted with or without a mirror: see openKV
	if k.rep != nil {
		return k.replicate(b, opts)
	}
	return k.apply(b, opts)
}

// apply applies b to the primary and the mirror.
func (k *kv) apply(b *pebble.Batch, opts *pebble.WriteOptions) error {
	// The read lock is held through both applies, so that RestorePrimary
	// (which holds the write lock) never misses a batch in flight.
	k.mu.RLock()
	primaryUp, mirrorUp := k.primaryUp, k.mirrorUp
	if !primaryUp && !mirrorUp {
		k.mu.RUnlock()
		return fmt.Errorf("%w: %w", ErrFailed, k.failure)
	}
	var perr, merr error
	if k.mirror == nil {
		perr = guard(func() error { return b.Commit(opts) })
	} else {
		repr := append([]byte(nil), b.Repr()...)
		if primaryUp {
			perr = apply(k.primary, repr, opts)
		}
		if mirrorUp {
			merr = apply(k.mirror, repr, opts)
		}
	}
	k.mu.RUnlock()
	switch {
	case primaryUp && perr == nil && (!mirrorUp || merr == nil):
		return nil
	case primaryUp && perr == nil:
		k.mu.Lock()
		if k.mirrorUp {
			k.mirrorUp = false
			k.log.Error("mirror database failed; no standby until the process restarts", "err", merr)
		}
		k.mu.Unlock()
		return nil
	case mirrorUp && merr == nil:
		if primaryUp {
			k.failPrimary(perr)
		}
		return nil
	}
	// No database took the batch. Pebble's state after a failed commit is
	// not to be trusted (the batch may be readable though not durable, and
	// the next commit may block for ever): nothing serves from now on.
	err := errors.Join(perr, merr)
	k.mu.Lock()
	if k.primaryUp || k.mirrorUp {
		k.primaryUp, k.mirrorUp, k.failure = false, false, err
		k.log.Error("database failed; every call fails until it is reopened", "err", err)
	}
	k.mu.Unlock()
	return fmt.Errorf("%w: %w", ErrFailed, err)
}

func apply(db *pebble.DB, repr []byte, opts *pebble.WriteOptions) error {
	return guard(func() error {
		b := db.NewBatch()
		if err := b.SetRepr(append([]byte(nil), repr...)); err != nil {
			return err
		}
		return b.Commit(opts)
	})
}

// Close closes both databases.
func (k *kv) Close() error {
	if k.rep != nil {
		k.rep.close()
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	var errs []error
	for _, db := range []*pebble.DB{k.primary, k.mirror} {
		if db != nil {
			errs = append(errs, guard(db.Close))
		}
	}
	err := errors.Join(errs...)
	if err != nil && !k.primaryUp {
		return nil // the failed primary's close error was reported when it failed
	}
	return err
}

// PrimaryUp reports whether the primary database serves (true without a
// mirror, unless it failed).
func (d *DB) PrimaryUp() bool {
	d.db.mu.RLock()
	defer d.db.mu.RUnlock()
	return d.db.primaryUp
}

// RestorePrimary brings a failed primary back: it reopens the primary's
// directory, copies the mirror into it while writes wait, and serves from it
// again. It does nothing if the primary is up.
func (d *DB) RestorePrimary(ctx context.Context) error {
	done, err := d.enter(ctx)
	if err != nil {
		return err
	}
	defer done()
	k := d.db
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.primaryUp || k.mirror == nil {
		return nil
	}
	guard(k.primary.Close) // it may be half broken; its error was logged
	p, err := pebble.Open(k.dir, k.opts())
	if err != nil {
		return fmt.Errorf("userdata: reopen primary: %w", err)
	}
	if err := copyAll(ctx, k.mirror, p); err != nil {
		p.Close()
		return fmt.Errorf("userdata: copy mirror to primary: %w", err)
	}
	k.primary, k.primaryUp = p, true
	d.log.Info("primary database restored from the mirror", "dir", k.dir)
	return nil
}
