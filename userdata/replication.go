package userdata

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// Replication to a hot standby on another node (Config.Replication).
//
// Every batch the DB commits gets a sequence number, 1, 2, 3..., recorded in
// the batch itself (replPosKey), and goes first to the standby, then to the
// local database, in sequence order on both sides. While a standby is in
// step, a commit returns only once the standby has acknowledged the batch
// as durable and the local database holds it too, so the primary never
// holds a batch its standby lacks: after a failover, the old primary's
// position is a prefix of the new primary's, and it catches up from there.
//
// A standby that disconnects or does not acknowledge within
// ReplicationConfig.Timeout is out of step: the DB calls ReplicationConfig.Alone
// (which records in the cluster that the standby is out of step, so that it
// is not promoted) and goes on alone, or, with RequireStandby, refuses
// writes until a standby is in step again. A standby that comes back asks
// Follow for the batches after its position; the DB keeps the most recent
// ones (ReplicationConfig.LogSize) so that one briefly away catches up
// without a full copy, and sends a full copy otherwise.
//
// Once fenced (Fence, or Alone reporting ErrFenced) the DB refuses every
// write with ErrFenced: another node is primary now.

var (
	// ErrFenced reports a write refused because another node has become
	// the primary (a newer epoch): the DB serves writes no more. It
	// wraps ErrUnavailable, so the protocol servers answer "try again".
	ErrFenced = fmt.Errorf("userdata: fenced, another node is primary: %w", ErrUnavailable)
	// ErrNoStandby reports a write refused because no standby is in
	// step and ReplicationConfig.RequireStandby is set. It wraps
	// ErrUnavailable.
	ErrNoStandby = fmt.Errorf("userdata: no standby in step: %w", ErrUnavailable)
)

// ReplicationConfig makes a DB the primary of a hot standby on another node.
// The zero value of every field means its default.
type ReplicationConfig struct {
	// LogSize bounds the recent batches kept in memory for a standby
	// that reconnects, in bytes. Zero means 64 MiB.
	LogSize int
	// Timeout bounds the wait for the standby to acknowledge a batch;
	// past it the standby is out of step. Zero means 2 seconds.
	Timeout time.Duration
	// RequireStandby refuses writes (ErrNoStandby) while no standby is in
	// step, instead of going on alone.
	RequireStandby bool
	// Alone is called when the standby falls out of step, before any write it
	// lacks is acknowledged: it records that the standby is out of step
	// and returns nil, or returns an error wrapping ErrFenced if this
	// node is not the primary any more (the DB is then fenced), or
	// another error if it could not tell (the writes waiting fail,
	// temporarily, and the next write calls it again). Nil means go on
	// alone. It is not called with RequireStandby.
	Alone func(ctx context.Context) error
	// InStep, if set, is called (in a goroutine of its own) each time a
	// standby has caught up and writes wait for it again. It may race
	// with a later loss of the standby: a caller that records the
	// standby in step must check DB.Replication().InStep and record it
	// under the same lock as Alone, which the DB calls only after
	// DB.Replication() reports the standby out of step.
	InStep func()

	seed []replEntry // batches a promoted Replica received, to serve from
}

const (
	defaultReplLogSize = 64 << 20
	defaultReplTimeout = 2 * time.Second
	// replPinFactor bounds the log kept for a standby receiving a full
	// copy: past LogSize times it, the standby is dropped.
	replPinFactor = 4
)

// replPosKey holds the sequence number of the last batch applied.
var replPosKey = []byte{tagCounter, 'r', 'e', 'p', 'l'}

// FrameKind says what a Frame carries.
type FrameKind uint8

// Frame kinds, in the order a full copy sends them: Reset, Copy..., Copied,
// then Batch frames.
const (
	// FrameBatch is one committed batch, Seq its number.
	FrameBatch FrameKind = iota + 1
	// FrameReset starts a full copy: the standby discards what it holds.
	FrameReset
	// FrameCopy is part of a full copy: a batch of keys to set.
	FrameCopy
	// FrameCopied ends a full copy, which stands at position Seq.
	FrameCopied
)

// Frame is one message from a primary to its standby (DB.Follow,
// Replica.Apply). Data is the binary form of a Pebble batch.
type Frame struct {
	Kind FrameKind
	Seq  uint64
	Data []byte
}

// FollowStream is the connection to a standby that DB.Follow feeds: Send
// carries frames to it in order, Recv returns its acknowledgements (the
// position it holds durably), one at a time.
type FollowStream interface {
	Send(Frame) error
	Recv() (uint64, error)
}

type replEntry struct {
	seq  uint64
	repr []byte
}

// replLog is the recent batches, in sequence order without gaps.
type replLog struct {
	entries []replEntry
	size    int
}

func (l *replLog) push(e replEntry) {
	l.entries = append(l.entries, e)
	l.size += len(e.repr)
}

// first is the sequence of the oldest batch held, or 0 if none.
func (l *replLog) first() uint64 {
	if len(l.entries) == 0 {
		return 0
	}
	return l.entries[0].seq
}

// get returns batch seq, if held.
func (l *replLog) get(seq uint64) ([]byte, bool) {
	f := l.first()
	if f == 0 || seq < f || seq-f >= uint64(len(l.entries)) {
		return nil, false
	}
	return l.entries[seq-f].repr, true
}

// trim drops the oldest batches while over max bytes, keeping those after
// keep.
func (l *replLog) trim(max int, keep uint64) {
	i := 0
	for l.size > max && i < len(l.entries) && l.entries[i].seq <= keep {
		l.size -= len(l.entries[i].repr)
		l.entries[i] = replEntry{}
		i++
	}
	if i > 0 {
		l.entries = l.entries[i:]
		if cap(l.entries) > 4*len(l.entries)+64 {
			l.entries = append([]replEntry(nil), l.entries...)
		}
	}
}

// replicator is the primary's side of replication.
type replicator struct {
	cfg ReplicationConfig
	log *slog.Logger

	mu      sync.Mutex
	cond    *sync.Cond // broadcast on every change below
	next    uint64     // the next batch's sequence number
	applied uint64     // the last batch applied locally, in order
	batches replLog
	f       *follower // the standby connected, if any
	inStep  bool      // writes wait for f's acknowledgement
	stepAt  uint64    // the last batch numbered when inStep was set
	told    bool      // InStep was called for the standby in step since
	losing  bool      // Alone is running
	fenced  error
	closed  bool // the DB is closing: no more standbys, no more waits
	opening bool // Open is running: RequireStandby does not apply yet

	applyMu sync.Mutex     // held while a batch is applied locally, and to snapshot between batches
	follows sync.WaitGroup // the Follow calls in progress
}

type follower struct {
	acked uint64 // the position the standby holds durably
	sent  uint64 // the last batch sent
	base  uint64 // where it started: its position, or the full copy's
	err   error  // why it ended, once it did
	stop  func() // cancels its Follow
}

func newReplicator(cfg ReplicationConfig, pos uint64, log *slog.Logger) *replicator {
	if cfg.LogSize <= 0 {
		cfg.LogSize = defaultReplLogSize
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = defaultReplTimeout
	}
	// In step until shown otherwise: the cluster may count on the
	// standby (the last run's, say), so the first write without one waits
	// for it and then goes through Alone, never on unrecorded. With
	// RequireStandby, writes are refused until a standby is in step.
	r := &replicator{cfg: cfg, log: log, next: pos + 1, applied: pos, opening: true,
		inStep: !cfg.RequireStandby, stepAt: pos}
	r.cond = sync.NewCond(&r.mu)
	for _, e := range cfg.seed {
		if e.seq <= pos && (len(r.batches.entries) == 0 || e.seq == r.batches.entries[len(r.batches.entries)-1].seq+1) {
			r.batches.push(e)
		}
	}
	return r
}

func posValue(seq uint64) []byte { return binary.BigEndian.AppendUint64(nil, seq) }

func readPos(get func([]byte) ([]byte, func(), error)) (uint64, error) {
	v, done, err := get(replPosKey)
	if errors.Is(err, pebble.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("userdata: read replication position: %w", err)
	}
	defer done()
	if len(v) != 8 {
		return 0, fmt.Errorf("userdata: replication position of %d bytes", len(v))
	}
	return binary.BigEndian.Uint64(v), nil
}

// begin numbers b and hands it to the standby. It returns b's number and
// whether the commit must wait for the standby's acknowledgement.
func (r *replicator) begin(b *pebble.Batch) (uint64, bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case r.fenced != nil:
		return 0, false, r.fenced
	case r.closed:
		return 0, false, ErrClosed
	case r.cfg.RequireStandby && !r.inStep && !r.opening:
		return 0, false, ErrNoStandby
	}
	seq := r.next
	r.next++
	b.Set(replPosKey, posValue(seq), nil)
	r.batches.push(replEntry{seq: seq, repr: append([]byte(nil), b.Repr()...)})
	keep := r.applied
	if r.f != nil {
		keep = min(keep, r.f.sent)
		if r.batches.size > replPinFactor*r.cfg.LogSize {
			r.dropLocked(r.f, errors.New("standby too far behind: the log of recent batches is full"))
		}
	}
	r.batches.trim(r.cfg.LogSize, keep)
	r.cond.Broadcast()
	// Open's own writes (a schema upgrade, which a promoted standby does
	// again at its Open) do not wait for a standby.
	return seq, r.inStep && !r.opening, nil
}

// dropLocked ends follower f with err.
func (r *replicator) dropLocked(f *follower, err error) {
	if f.err == nil {
		f.err = err
	}
	if f.stop != nil {
		f.stop()
	}
	if r.f == f {
		r.f = nil
	}
	r.cond.Broadcast()
}

// waitAck waits until the standby holds batch seq, or it falls out of step. It
// returns nil when the commit may be acknowledged, ErrFenced when the batch
// must not be applied, or another error when it is applied but the commit
// fails.
func (r *replicator) waitAck(seq uint64) error {
	deadline := time.Now().Add(r.cfg.Timeout)
	t := time.AfterFunc(r.cfg.Timeout, func() {
		r.mu.Lock()
		r.cond.Broadcast()
		r.mu.Unlock()
	})
	defer t.Stop()
	r.mu.Lock()
	defer r.mu.Unlock()
	for {
		switch {
		case r.fenced != nil:
			return r.fenced
		case r.closed:
			return ErrClosed
		case r.f != nil && r.f.acked >= seq:
			return nil
		case r.losing:
			r.cond.Wait()
		case !r.inStep:
			// Dropped meanwhile: Alone said the DB may go on, or the
			// standby is required.
			if r.cfg.RequireStandby {
				return ErrNoStandby
			}
			return nil
		case r.f == nil || time.Now().After(deadline):
			if err := r.loseLocked(seq); err != nil {
				return err
			}
		default:
			r.cond.Wait()
		}
	}
}

// loseLocked puts the standby, which did not acknowledge batch seq in
// time, out of step, and decides whether writes go on without it.
func (r *replicator) loseLocked(seq uint64) error {
	// A standby still connected keeps its stream: slow, or receiving a
	// full copy, it catches up and is in step again; one that hangs is
	// dropped once the log it pins is full (begin).
	why := "standby disconnected"
	if r.f != nil {
		why = fmt.Sprintf("standby did not acknowledge within %v", r.cfg.Timeout)
	}
	r.told = false
	if r.cfg.RequireStandby {
		r.inStep = false
		r.log.Error("replication: "+why+"; writes are refused until a standby is in step", "seq", seq)
		r.cond.Broadcast()
		return ErrNoStandby
	}
	if r.cfg.Alone == nil {
		r.inStep = false
		r.log.Error("replication: "+why+"; writes go on without a standby", "seq", seq)
		r.cond.Broadcast()
		return nil
	}
	// Out of step from now on, so that a ReplicationConfig.InStep call
	// racing with Alone sees it (the waiters wait while losing).
	r.losing, r.inStep = true, false
	r.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	err := r.cfg.Alone(ctx)
	cancel()
	r.mu.Lock()
	r.losing = false
	defer r.cond.Broadcast()
	switch {
	case err == nil:
		r.log.Error("replication: "+why+"; writes go on without a standby", "seq", seq)
		return nil
	case errors.Is(err, ErrFenced):
		r.fenceLocked(err)
		return r.fenced
	}
	// Not recorded: the cluster may still count on the standby, so the
	// next writes wait for it (and call Alone again) rather than go on.
	r.inStep = true
	r.log.Error("replication: "+why+", and going on alone could not be recorded; writes fail meanwhile", "seq", seq, "err", err)
	return fmt.Errorf("%w: %w", ErrNoStandby, err)
}

func (r *replicator) fenceLocked(err error) {
	if r.fenced != nil {
		return
	}
	if !errors.Is(err, ErrFenced) {
		err = fmt.Errorf("%w: %w", ErrFenced, err)
	}
	r.fenced = err
	r.log.Error("replication: fenced; this DB refuses writes", "err", err)
	if r.f != nil {
		r.dropLocked(r.f, err)
	}
	r.cond.Broadcast()
}

// inTurn runs apply for batch seq once every batch before it is applied,
// under applyMu. It fails, without running apply, once fenced.
func (r *replicator) inTurn(seq uint64, apply func() error) error {
	r.mu.Lock()
	for r.applied != seq-1 && r.fenced == nil {
		r.cond.Wait()
	}
	if r.fenced != nil {
		r.mu.Unlock()
		return r.fenced
	}
	r.mu.Unlock()
	r.applyMu.Lock()
	err := apply()
	r.applyMu.Unlock()
	r.mu.Lock()
	r.applied = seq
	r.cond.Broadcast()
	r.mu.Unlock()
	return err
}

func (r *replicator) opened() {
	r.mu.Lock()
	r.opening = false
	r.mu.Unlock()
}

// close ends the standby's Follow and every wait for it.
func (r *replicator) close() {
	r.mu.Lock()
	r.closed = true
	if r.f != nil {
		r.dropLocked(r.f, ErrClosed)
	}
	r.cond.Broadcast()
	r.mu.Unlock()
	r.follows.Wait()
}

// replicate commits b through the replicator: standby first, then the
// local database, in sequence order.
func (k *kv) replicate(b *pebble.Batch, opts *pebble.WriteOptions) error {
	r := k.rep
	seq, wait, err := r.begin(b)
	if err != nil {
		return err
	}
	var ackErr error
	if wait {
		ackErr = r.waitAck(seq)
		if errors.Is(ackErr, ErrFenced) {
			return ackErr
		}
	}
	if err := r.inTurn(seq, func() error { return k.apply(b, pebble.NoSync) }); err != nil {
		return err
	}
	if opts.Sync {
		if err := k.sync(); err != nil {
			return err
		}
	}
	return ackErr
}

// sync makes every batch applied so far durable, in one fsync shared by the
// commits that ask at once.
func (k *kv) sync() error {
	k.mu.RLock()
	defer k.mu.RUnlock()
	var errs []error
	if k.primaryUp {
		errs = append(errs, guard(func() error { return k.primary.LogData(nil, pebble.Sync) }))
	}
	if k.mirrorUp {
		errs = append(errs, guard(func() error { return k.mirror.LogData(nil, pebble.Sync) }))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w: sync: %w", ErrFailed, err)
	}
	return nil
}

// Fence makes the DB refuse every write from now on with an error wrapping
// ErrFenced and err: another node has become the primary. Reads go on. It
// does nothing on a DB without Config.Replication.
func (d *DB) Fence(err error) {
	r := d.db.rep
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.fenceLocked(err)
}

// ReplicationStatus is what DB.Replication reports.
type ReplicationStatus struct {
	Position  uint64 // the last batch applied locally
	Standby   bool   // a standby is connected
	InStep    bool   // writes wait for the standby
	Acked     uint64 // the position the standby holds, if connected
	LogFirst  uint64 // the oldest batch kept for a standby, 0 if none
	Fenced    bool
	FenceText string // why, if Fenced
}

// Replication reports the state of replication to the standby; the zero
// value for a DB without Config.Replication.
func (d *DB) Replication() ReplicationStatus {
	r := d.db.rep
	if r == nil {
		return ReplicationStatus{}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	s := ReplicationStatus{Position: r.applied, InStep: r.inStep, LogFirst: r.batches.first(), Fenced: r.fenced != nil}
	if r.fenced != nil {
		s.FenceText = r.fenced.Error()
	}
	if r.f != nil {
		s.Standby, s.Acked = true, r.f.acked
	}
	return s
}

// Follow feeds a standby that holds every batch up to position from (0 for
// nothing): the batches after it from the log of recent batches, or else a
// full copy, then every new batch as it is committed, until ctx is done, the
// stream fails, another standby calls Follow, or the DB closes or is
// fenced. Once the standby has acknowledged every batch numbered, writes
// wait for it (see ReplicationConfig). It fails with ErrInvalid on a DB
// without Config.Replication.
func (d *DB) Follow(ctx context.Context, from uint64, s FollowStream) error {
	r := d.db.rep
	if r == nil {
		return fmt.Errorf("%w: the DB has no Replication configured", ErrInvalid)
	}
	// Follow stays out of the gate: Close ends it (stopping the
	// replicator) before it waits for the calls in progress.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(ctx, func() {
		r.mu.Lock()
		r.cond.Broadcast()
		r.mu.Unlock()
	})
	defer stop()

	f := &follower{acked: from, stop: cancel}
	r.mu.Lock()
	if r.fenced != nil {
		r.mu.Unlock()
		return r.fenced
	}
	if r.closed {
		r.mu.Unlock()
		return ErrClosed
	}
	r.follows.Add(1)
	defer r.follows.Done()
	if r.f != nil {
		// Still in step if it was: the writes waiting wait for the new
		// connection's acknowledgements, or time out and go through
		// Alone, never on without the standby unrecorded.
		r.log.Warn("replication: a new standby connection replaces the current one")
		r.dropLocked(r.f, errors.New("replaced by a newer connection of the standby"))
	}
	_, held := r.batches.get(from + 1)
	incremental := from <= r.applied && (from+1 == r.next || held)
	var snap *pebble.Snapshot
	if incremental {
		f.sent, f.base = from, from
	} else {
		// A full copy as of a moment between two batches.
		r.mu.Unlock()
		r.applyMu.Lock()
		r.mu.Lock()
		pos := r.applied
		var err error
		snap, err = d.db.NewSnapshot()
		r.applyMu.Unlock()
		if err != nil {
			r.mu.Unlock()
			return fmt.Errorf("userdata: snapshot for the standby: %w", err)
		}
		defer func() {
			if snap != nil {
				snap.Close()
			}
		}()
		f.sent, f.acked, f.base = pos, 0, pos
	}
	r.f = f
	r.checkStepLocked(f)
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		r.dropLocked(f, errors.New("follow ended"))
		r.mu.Unlock()
	}()
	go r.readAcks(ctx, f, s, cancel)

	if incremental {
		d.log.Info("replication: standby catching up from the log", "from", from, "to", r.lastNumbered())
	} else {
		d.log.Warn("replication: sending the standby a full copy", "standby_position", from, "copy_position", f.sent)
		if err := sendCopy(ctx, snap, f.sent, d.db.NewBatch, s); err != nil {
			return err
		}
		snap.Close()
		snap = nil
	}
	return r.sendBatches(ctx, f, s)
}

func (r *replicator) lastNumbered() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.next - 1
}

// catchUpSlack is how far behind the last batch numbered a catching-up
// standby may be when writes start waiting for it again.
const catchUpSlack = 64

// checkStepLocked puts f in step once it is close behind: from then on
// every new batch waits for it; and calls InStep once f holds every batch
// numbered before that, so that the cluster may count on it. r.mu is held.
func (r *replicator) checkStepLocked(f *follower) {
	if r.f != f || r.losing || r.fenced != nil {
		return
	}
	if !r.inStep && f.acked >= f.base && f.acked+catchUpSlack >= r.next-1 {
		r.inStep, r.stepAt, r.told = true, r.next-1, false
	}
	if r.inStep && !r.told && f.acked >= r.stepAt {
		r.told = true
		r.log.Info("replication: standby in step", "position", f.acked)
		if r.cfg.InStep != nil {
			go r.cfg.InStep()
		}
	}
}

// readAcks records the standby's acknowledgements until the stream fails.
func (r *replicator) readAcks(ctx context.Context, f *follower, s FollowStream, cancel func()) {
	defer cancel()
	for {
		pos, err := s.Recv()
		r.mu.Lock()
		if err != nil {
			r.dropLocked(f, fmt.Errorf("standby stream: %w", err))
			r.mu.Unlock()
			return
		}
		if pos > f.sent {
			r.dropLocked(f, fmt.Errorf("standby acknowledged %d, beyond the %d sent", pos, f.sent))
			r.mu.Unlock()
			return
		}
		if pos > f.acked {
			f.acked = pos
		}
		r.checkStepLocked(f)
		r.cond.Broadcast()
		r.mu.Unlock()
		if ctx.Err() != nil {
			return
		}
	}
}

// maxFrameBatches bounds the batches sent in one run before checking the
// follower again.
const maxFrameBatches = 256

// sendBatches sends f every batch after the last sent, as they come.
func (r *replicator) sendBatches(ctx context.Context, f *follower, s FollowStream) error {
	var out []Frame
	for {
		r.mu.Lock()
		for f.err == nil && r.fenced == nil && !r.closed && ctx.Err() == nil && f.sent+1 >= r.next {
			r.cond.Wait()
		}
		switch {
		case f.err != nil:
			err := f.err
			r.mu.Unlock()
			return err
		case r.fenced != nil:
			r.mu.Unlock()
			return r.fenced
		case r.closed:
			r.mu.Unlock()
			return ErrClosed
		case ctx.Err() != nil:
			r.mu.Unlock()
			return ctx.Err()
		}
		out = out[:0]
		for seq := f.sent + 1; seq < r.next && len(out) < maxFrameBatches; seq++ {
			repr, ok := r.batches.get(seq)
			if !ok {
				r.dropLocked(f, fmt.Errorf("batch %d no longer in the log", seq))
				err := f.err
				r.mu.Unlock()
				return err
			}
			out = append(out, Frame{Kind: FrameBatch, Seq: seq, Data: repr})
		}
		f.sent = out[len(out)-1].Seq // before sending: the standby may acknowledge at once
		r.mu.Unlock()
		for _, fr := range out {
			if err := s.Send(fr); err != nil {
				return fmt.Errorf("userdata: send to the standby: %w", err)
			}
		}
	}
}

// copyChunk is the size of the batches of a full copy.
const copyChunk = 1 << 20

// sendCopy sends every key of snap, which stands at position pos.
func sendCopy(ctx context.Context, snap *pebble.Snapshot, pos uint64, newBatch func() *pebble.Batch, s FollowStream) error {
	if err := s.Send(Frame{Kind: FrameReset}); err != nil {
		return fmt.Errorf("userdata: send to the standby: %w", err)
	}
	it, err := snap.NewIter(&pebble.IterOptions{LowerBound: []byte{0}, UpperBound: []byte{0xff, 0xff}})
	if err != nil {
		return fmt.Errorf("userdata: %w", err)
	}
	defer it.Close()
	b := newBatch()
	defer b.Close()
	flush := func() error {
		if b.Empty() {
			return nil
		}
		err := s.Send(Frame{Kind: FrameCopy, Data: append([]byte(nil), b.Repr()...)})
		b.Reset()
		if err != nil {
			return fmt.Errorf("userdata: send to the standby: %w", err)
		}
		return nil
	}
	for it.First(); it.Valid(); it.Next() {
		if err := ctx.Err(); err != nil {
			return err
		}
		v, err := it.ValueAndErr()
		if err != nil {
			return fmt.Errorf("userdata: %w", err)
		}
		b.Set(it.Key(), v, nil)
		if b.Len() >= copyChunk {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := it.Error(); err != nil {
		return fmt.Errorf("userdata: %w", err)
	}
	if err := flush(); err != nil {
		return err
	}
	return s.Send(Frame{Kind: FrameCopied, Seq: pos})
}
