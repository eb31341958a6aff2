package userdata

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/mailsys/mailsys/internal/fsutil"
	"github.com/mailsys/mailsys/internal/privatefs"
)

// ErrGap reports a frame that does not follow the replica's position: a
// batch past the next one, or a batch during a full copy. The standby
// reconnects and asks again from its position.
var ErrGap = errors.New("userdata: replication frame out of order")

// Replica is a hot standby's copy of a primary DB on another node: the
// frames the primary's DB.Follow sends, applied in order to a Pebble
// database of its own. It holds exactly the primary's keys, so Promote opens
// it as a DB when the standby takes over. It keeps the recent batches it
// received, so that once promoted it can bring the old primary back in step
// without a full copy. Its methods are safe for concurrent use.
type Replica struct {
	log *slog.Logger
	cfg Config

	mu      sync.Mutex
	db      *pebble.DB
	pos     uint64 // the last batch applied; 0 during a full copy
	copying bool
	batches replLog
	maxLog  int
}

// OpenReplica opens (or creates) the replica in cfg.Dir, which Promote will
// open as a DB with cfg. cfg.Replication.LogSize bounds the batches kept.
func OpenReplica(cfg Config) (*Replica, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	log = log.With("component", "userdata-replica")
	if err := os.MkdirAll(cfg.Dir, fsutil.DirMode); err != nil {
		return nil, fmt.Errorf("userdata: %w", err)
	}
	cache := pebble.NewCache(cfg.CacheSize)
	defer cache.Unref()
	db, err := pebble.Open(cfg.Dir, pebbleOptions(&cfg, cache, privatefs.New(vfs.Default), log))
	if err != nil {
		return nil, fmt.Errorf("userdata: open replica %s: %w", cfg.Dir, err)
	}
	pos, err := readPos(func(key []byte) ([]byte, func(), error) {
		v, c, err := db.Get(key)
		if err != nil {
			return nil, nil, err
		}
		return v, func() { c.Close() }, nil
	})
	if err != nil {
		db.Close()
		return nil, err
	}
	r := &Replica{log: log, cfg: cfg, db: db, pos: pos, maxLog: defaultReplLogSize}
	if cfg.Replication != nil && cfg.Replication.LogSize > 0 {
		r.maxLog = cfg.Replication.LogSize
	}
	return r, nil
}

// Position returns the last batch applied: where the primary's Follow is
// to start. It is 0 for an empty replica and during a full copy.
func (r *Replica) Position() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.pos
}

// Apply applies one frame, without waiting for stable storage (Sync does).
// A batch at or before the position is ignored (sent again after a
// reconnection); one past the next fails with ErrGap, as does a batch
// during a full copy.
func (r *Replica) Apply(f Frame) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.db == nil {
		return ErrClosed
	}
	switch f.Kind {
	case FrameBatch:
		if r.copying {
			return fmt.Errorf("%w: batch %d during a full copy", ErrGap, f.Seq)
		}
		if f.Seq <= r.pos {
			return nil
		}
		if f.Seq != r.pos+1 {
			return fmt.Errorf("%w: batch %d after %d", ErrGap, f.Seq, r.pos)
		}
		if err := r.applyRepr(f.Data); err != nil {
			return err
		}
		r.pos = f.Seq
		r.batches.push(replEntry{seq: f.Seq, repr: append([]byte(nil), f.Data...)})
		r.batches.trim(r.maxLog, r.pos)
		return nil
	case FrameReset:
		// Everything goes, the position too: a copy cut short starts
		// over at the next connection.
		if err := r.db.DeleteRange([]byte{0}, []byte{0xff, 0xff}, pebble.Sync); err != nil {
			return fmt.Errorf("userdata: replica reset: %w", err)
		}
		r.pos, r.copying = 0, true
		r.batches = replLog{}
		return nil
	case FrameCopy:
		if !r.copying {
			return fmt.Errorf("%w: copy data outside a full copy", ErrGap)
		}
		return r.applyRepr(f.Data)
	case FrameCopied:
		if !r.copying {
			return fmt.Errorf("%w: end of a copy outside a full copy", ErrGap)
		}
		if err := r.db.Set(replPosKey, posValue(f.Seq), pebble.Sync); err != nil {
			return fmt.Errorf("userdata: replica: %w", err)
		}
		r.pos, r.copying = f.Seq, false
		r.log.Info("replication: full copy received", "position", f.Seq)
		return nil
	}
	return fmt.Errorf("%w: frame kind %d", ErrInvalid, f.Kind)
}

func (r *Replica) applyRepr(data []byte) error {
	b := r.db.NewBatch()
	defer b.Close()
	if err := b.SetRepr(append([]byte(nil), data...)); err != nil {
		return fmt.Errorf("%w: replication frame: %w", ErrInvalid, err)
	}
	if err := b.Commit(pebble.NoSync); err != nil {
		return fmt.Errorf("userdata: replica: %w", err)
	}
	return nil
}

// Sync makes every frame applied so far durable and returns the position
// to acknowledge to the primary.
func (r *Replica) Sync() (uint64, error) {
	r.mu.Lock()
	db, pos := r.db, r.pos
	r.mu.Unlock()
	if db == nil {
		return 0, ErrClosed
	}
	if err := db.LogData(nil, pebble.Sync); err != nil {
		return 0, fmt.Errorf("userdata: replica sync: %w", err)
	}
	return pos, nil
}

// Promote makes the replica the primary: it closes the replica and opens
// its directory as a DB with cfg (cfg.Dir must be the replica's), whose
// Follow can then serve the batches the replica received to a standby that
// was in step with the old primary. A replica in the middle of a full copy
// is refused (ErrInvalid): it holds half a database. The Replica is closed
// after Promote, whatever it returns.
func (r *Replica) Promote(ctx context.Context, cfg Config) (*DB, error) {
	r.mu.Lock()
	copying, seed := r.copying, r.batches.entries
	r.mu.Unlock()
	if err := r.Close(); err != nil {
		return nil, err
	}
	if copying {
		return nil, fmt.Errorf("%w: the replica is in the middle of a full copy", ErrInvalid)
	}
	if cfg.Replication == nil {
		cfg.Replication = &ReplicationConfig{}
	}
	rc := *cfg.Replication
	rc.seed = seed
	cfg.Replication = &rc
	return Open(ctx, cfg)
}

// Close closes the replica's database.
func (r *Replica) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.db == nil {
		return nil
	}
	err := r.db.Close()
	r.db = nil
	if err != nil {
		return fmt.Errorf("userdata: close replica: %w", err)
	}
	return nil
}
