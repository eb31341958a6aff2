package txlog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/mailsys/mailsys/internal/fsutil"
	"github.com/mailsys/mailsys/internal/groupcommit"
)

// Config configures a Log. The zero value of every field but Dir means its
// default, which DefaultConfig spells out; Open refuses a Config that
// Validate refuses.
type Config struct {
	// Dir holds the segment files; created if missing. What the log
	// creates is private to the process's user whatever the umask
	// (directories 0700, files 0600), and Open takes the group and other
	// permissions off what is in Dir already, logging each change.
	Dir string
	// SegmentSize is the size at which a segment is sealed and the next
	// begun. Zero means 64 MiB.
	SegmentSize int64
	// MaxBodySize is the largest body Accept takes. Zero means 64 MiB.
	MaxBodySize int64
	// Logger receives the log's records. Nil means slog.Default().
	Logger *slog.Logger
	// Metrics, if set, is told of every group commit. Nil means none.
	Metrics Metrics
}

// Metrics receives the log's group commits, for a metrics system (the
// metrics package implements it with Prometheus). GroupCommit is called by
// the one goroutine committing a batch, after its sync and before any
// caller of the batch is answered: it must be quick and must not block.
type Metrics interface {
	// GroupCommit reports a batch of records written and synced
	// together, and how long the sync (fdatasync) took. A failed batch
	// is not reported.
	GroupCommit(records int, sync time.Duration)
}

// noMetrics is the Metrics of a Config without one.
type noMetrics struct{}

func (noMetrics) GroupCommit(int, time.Duration) {}

// Defaults of Config.
const (
	defaultSegmentSize = 64 << 20
	defaultMaxBodySize = 64 << 20
	// maxMaxBodySize bounds Config.MaxBodySize: a body is held in memory
	// whole while it is accepted, and its record's length is 32 bits.
	maxMaxBodySize = 1 << 30
)

// DefaultConfig returns the configuration of a Log in dir with every
// default spelled out: a starting point to change.
func DefaultConfig(dir string) Config {
	return Config{Dir: dir, SegmentSize: defaultSegmentSize, MaxBodySize: defaultMaxBodySize}
}

// Validate reports every problem of c at once (errors.Join, each naming
// its field), or nil: no Dir, a negative SegmentSize or MaxBodySize, a
// MaxBodySize over 1 GiB. (A SegmentSize below MaxBodySize is not one:
// Open makes segments large enough for the largest body.)
func (c Config) Validate() error {
	var errs []error
	if c.Dir == "" {
		errs = append(errs, errors.New("txlog: Config.Dir: empty"))
	}
	if c.SegmentSize < 0 {
		errs = append(errs, fmt.Errorf("txlog: Config.SegmentSize: negative (%d)", c.SegmentSize))
	}
	if c.MaxBodySize < 0 {
		errs = append(errs, fmt.Errorf("txlog: Config.MaxBodySize: negative (%d)", c.MaxBodySize))
	} else if c.MaxBodySize > maxMaxBodySize {
		errs = append(errs, fmt.Errorf("txlog: Config.MaxBodySize: %d is over %d", c.MaxBodySize, maxMaxBodySize))
	}
	return errors.Join(errs...)
}

// ErrClosed reports a call on a closed Log.
var ErrClosed = errors.New("txlog: closed")

// ErrTooLarge reports a body over Config.MaxBodySize.
var ErrTooLarge = errors.New("txlog: message too large")

// Log is a durable log of delivery transactions. A transaction is accepted
// with its envelope and body (durable when Accept returns: the moment to
// send 250), then its consumer records the steps it completes (Record) and
// finally marks it done (Done). After a crash, Open finds every transaction
// not done, with its steps, in Pending; the consumer finishes each, using
// the recorded steps to skip what was already done.
//
// All methods are safe for concurrent use.
type Log struct {
	cfg Config
	log *slog.Logger

	// commits is the group commit of records: its Commit is
	// commitBatch, which one leader at a time runs.
	commits  groupcommit.Queue[*write]
	batchBuf []byte // the leader's, reused from one batch to the next

	mu      sync.Mutex
	closed  bool
	failed  error // a write or sync failed: nothing more is trusted
	nextID  uint64
	active  *segment
	segs    map[uint32]*segment
	txns    map[uint64]*Txn // not done
	pending []*Txn          // found at Open
}

// Txn is one transaction. Its fields are read-only.
type Txn struct {
	ID       uint64
	Envelope Envelope
	Size     int64 // body bytes

	log   *Log
	seg   *segment
	body  int64 // offset of the body in the segment file
	mu    sync.Mutex
	steps map[string][]byte
}

// Body returns the message body, read from the log.
func (t *Txn) Body() *io.SectionReader { return io.NewSectionReader(t.seg.f, t.body, t.Size) }

// Step returns the value recorded for key, and whether there is one.
func (t *Txn) Step(key string) ([]byte, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	v, ok := t.steps[key]
	return v, ok
}

type segment struct {
	num     uint32
	path    string
	f       *os.File
	size    int64
	synced  int64
	open    int // transactions accepted here and not done
	sealed  bool
	removed bool
}

// write is one record waiting for the group commit.
type write struct {
	rec   []byte
	txn   *Txn // for an accept: gets its segment and body offset
	kind  uint8
	id    uint64
	async bool  // DoneAsync's or RecordAsync's: a failure is logged, nobody may be waiting
	err   error // set by commitBatch
}

// Open opens the log in cfg.Dir and recovers it: a torn record at the end
// of the newest segment is cut off, and the transactions not done are
// returned by Pending. It returns cfg.Validate's error, if any, before
// touching the disk.
func Open(ctx context.Context, cfg Config) (*Log, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Metrics == nil {
		cfg.Metrics = noMetrics{}
	}
	if cfg.SegmentSize == 0 {
		cfg.SegmentSize = defaultSegmentSize
	}
	if cfg.MaxBodySize == 0 {
		cfg.MaxBodySize = defaultMaxBodySize
	}
	if cfg.MaxBodySize > cfg.SegmentSize {
		cfg.SegmentSize = cfg.MaxBodySize + maxEnvelope + headerLen
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if err := os.MkdirAll(cfg.Dir, fsutil.DirMode); err != nil {
		return nil, fmt.Errorf("txlog: %w", err)
	}
	l := &Log{cfg: cfg, log: cfg.Logger.With("component", "txlog"), segs: map[uint32]*segment{}, txns: map[uint64]*Txn{}}
	// Envelopes and bodies are private mail: a tree made by an older
	// version loses its group and other permissions (logged; not fatal).
	fsutil.TightenLog(l.log, cfg.Dir)
	l.commits.Commit = l.commitBatch
	if err := l.recover(ctx); err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}

func segName(n uint32) string { return fmt.Sprintf("seg-%08d.txl", n) }

func (l *Log) recover(ctx context.Context) error {
	names, err := filepath.Glob(filepath.Join(l.cfg.Dir, "seg-*.txl"))
	if err != nil {
		return err
	}
	var nums []uint32
	for _, name := range names {
		n, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimPrefix(filepath.Base(name), "seg-"), ".txl"), 10, 32)
		if err == nil && n > 0 {
			nums = append(nums, uint32(n))
		}
	}
	slices.Sort(nums)
	for i, n := range nums {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := l.scan(n, i == len(nums)-1); err != nil {
			return err
		}
	}
	for _, t := range l.txns {
		l.pending = append(l.pending, t)
	}
	slices.SortFunc(l.pending, func(a, b *Txn) int { return cmpU64(a.ID, b.ID) })
	l.log.Info("log opened", "segments", len(l.segs), "pending", len(l.pending))
	return l.trimLocked()
}

func cmpU64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// scan reads segment n, applying its records. The newest segment becomes
// the active one, with a torn tail cut off.
func (l *Log) scan(n uint32, newest bool) error {
	path := filepath.Join(l.cfg.Dir, segName(n))
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("txlog: %w", err)
	}
	data, err := io.ReadAll(f)
	if err != nil {
		f.Close()
		return fmt.Errorf("txlog: %w", err)
	}
	s := &segment{num: n, path: path, f: f, sealed: !newest}
	l.segs[n] = s
	off := 0
	for off < len(data) {
		h, err := parseHeader(data[off:])
		end := off + headerLen + int(h.length)
		if err == nil && (end > len(data) || end < off || crc(data[off+headerLen:end]) != h.sum) {
			err = fmt.Errorf("%w: payload", ErrCorrupt)
		}
		if err == nil {
			err = l.apply(s, h, data[off+headerLen:end], int64(off+headerLen))
		}
		if err != nil {
			if !newest {
				return fmt.Errorf("txlog: %s at offset %d: %w", path, off, err)
			}
			l.log.Warn("torn record at the end of the log; truncating", "segment", path, "offset", off, "bytes", len(data)-off, "err", err)
			if err := f.Truncate(int64(off)); err != nil {
				return fmt.Errorf("txlog: %w", err)
			}
			if err := fsutil.Fdatasync(f); err != nil {
				return fmt.Errorf("txlog: %w", err)
			}
			break
		}
		off = end
	}
	s.size, s.synced = int64(off), int64(off)
	if newest {
		l.active = s
	}
	return nil
}

// apply updates the state for one record read at recovery.
func (l *Log) apply(s *segment, h header, p []byte, payloadOff int64) error {
	l.nextID = max(l.nextID, h.id)
	switch h.kind {
	case kindAccept:
		env, bodyOff, err := parseAccept(p)
		if err != nil {
			return err
		}
		t := &Txn{ID: h.id, Envelope: env, Size: int64(len(p) - bodyOff), log: l, seg: s, body: payloadOff + int64(bodyOff), steps: map[string][]byte{}}
		l.txns[h.id] = t
		s.open++
	case kindStep:
		key, value, err := parseStep(p)
		if err != nil {
			return err
		}
		if t := l.txns[h.id]; t != nil {
			t.steps[key] = value
		}
	case kindDone:
		if t := l.txns[h.id]; t != nil {
			delete(l.txns, h.id)
			t.seg.open--
		}
	case kindBase: // only the id matters
	}
	return nil
}

// Pending returns the transactions that were not done when the log was
// last closed or crashed, oldest first, as found by Open (it does not
// change as they are finished). The consumer finishes each and calls Done.
func (l *Log) Pending() []*Txn { return slices.Clone(l.pending) }

// Accept writes a new transaction and returns once it is on stable storage.
func (l *Log) Accept(ctx context.Context, env Envelope, body io.Reader) (*Txn, error) {
	room := 4096
	if b, ok := body.(interface{ Len() int }); ok && int64(b.Len()) <= l.cfg.MaxBodySize {
		room = 512 + b.Len() + bytes.MinRead // the envelope, the body, and room to see io.EOF
	}
	rec := make([]byte, headerLen, headerLen+room)
	rec, err := appendEnvelope(rec, &env)
	if err != nil {
		return nil, err
	}
	envEnd := len(rec)
	buf := bytes.NewBuffer(rec)
	n, err := io.Copy(buf, io.LimitReader(body, l.cfg.MaxBodySize+1))
	if err != nil {
		return nil, fmt.Errorf("txlog: reading body: %w", err)
	}
	if n > l.cfg.MaxBodySize {
		return nil, fmt.Errorf("%w: over %d bytes", ErrTooLarge, l.cfg.MaxBodySize)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	rec = buf.Bytes()
	t := &Txn{Envelope: env, Size: n, log: l, steps: map[string][]byte{}}
	t.body = int64(envEnd) // relative to the record; made absolute when written
	if err := l.commit(&write{rec: rec, txn: t}, kindAccept, 0); err != nil {
		return nil, err
	}
	return t, nil
}

// Record durably notes that step key of t is done, with a value (such as
// the Ref of a stored body) that recovery will find in Txn.Step.
func (l *Log) Record(ctx context.Context, t *Txn, key string, value []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if !utf8.ValidString(key) {
		return fmt.Errorf("txlog: step key %q is not UTF-8", key)
	}
	rec := appendStep(make([]byte, headerLen), key, value)
	if err := l.commit(&write{rec: rec}, kindStep, t.ID); err != nil {
		return err
	}
	t.mu.Lock()
	t.steps[key] = slices.Clone(value)
	t.mu.Unlock()
	return nil
}

// RecordAsync notes step key of t like Record, but does not wait for the
// disk when a group commit is under way: the step joins the next one
// (Close writes any left), and Step reports it at once. If the process
// dies first, recovery may find t without the step, so RecordAsync is for
// consumers that can tell from elsewhere that the step was done, as a
// delivery finds the body it stored by the store's Walk. The error is
// that of the write when it was made here, or ErrClosed.
func (l *Log) RecordAsync(ctx context.Context, t *Txn, key string, value []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if !utf8.ValidString(key) {
		return fmt.Errorf("txlog: step key %q is not UTF-8", key)
	}
	w := &write{rec: appendStep(make([]byte, headerLen), key, value), async: true}
	sum := crc(w.rec[headerLen:])
	queued, err := l.commits.Async(w, func() error { return l.prepare(w, kindStep, t.ID, sum) })
	if err == nil && !queued {
		err = w.err
	}
	if err != nil {
		return err
	}
	t.mu.Lock()
	t.steps[key] = slices.Clone(value)
	t.mu.Unlock()
	return nil
}

// Done marks t finished: recovery will not return it again, and its segment
// is removed once every transaction in it is done. It returns once the
// mark is on stable storage, with the others of its batch.
func (l *Log) Done(ctx context.Context, t *Txn) error {
	return l.commit(&write{rec: make([]byte, headerLen)}, kindDone, t.ID)
}

// DoneAsync marks t finished like Done but does not wait for the disk when
// a group commit is under way: the mark joins the next one (Close writes
// any left). If the process dies first, t is pending again at the next
// Open, so DoneAsync is for consumers that can finish a transaction twice
// without harm, as a replay that checks its steps can. The error is that
// of the write when it was made here, or ErrClosed.
func (l *Log) DoneAsync(ctx context.Context, t *Txn) error {
	w := &write{rec: make([]byte, headerLen), async: true}
	sum := crc(nil)
	queued, err := l.commits.Async(w, func() error { return l.prepare(w, kindDone, t.ID, sum) })
	if err != nil || queued {
		return err
	}
	return w.err
}

// commit queues a record and returns once it is durable, with the others
// of its group commit (see internal/groupcommit): one caller at a time
// leads, writing every queued record with one call and syncing once.
func (l *Log) commit(w *write, kind uint8, id uint64) error {
	sum := crc(w.rec[headerLen:]) // before taking any lock
	if err := l.commits.Do(w, func() error { return l.prepare(w, kind, id, sum) }); err != nil {
		return err
	}
	return w.err
}

// prepare numbers a record as it is queued (a new transaction gets the
// next id) and seals its header, whose payload checksum is sum. The
// queue's lock is held, so records are queued, and written, in the order
// of their ids.
func (l *Log) prepare(w *write, kind uint8, id uint64, sum uint32) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return ErrClosed
	}
	if l.failed != nil {
		return l.failed
	}
	if kind == kindAccept {
		l.nextID++
		id = l.nextID
		w.txn.ID = id
	}
	w.kind, w.id = kind, id
	h := header{kind: kind, id: id, length: uint32(len(w.rec) - headerLen), sum: sum}
	h.marshal(w.rec)
	return nil
}

// commitBatch is the group commit's Commit: it writes and syncs the batch
// (unless the log has failed), then, before any caller is told, applies
// each record now durable or logs the failure of a DoneAsync nobody waits
// for.
func (l *Log) commitBatch(batch []*write) {
	l.mu.Lock()
	err := l.failed
	l.mu.Unlock()
	if err == nil {
		err = l.writeBatch(batch)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, w := range batch {
		w.err = err
		if err == nil {
			l.applyWritten(w)
		} else if w.async {
			l.log.Warn("an asynchronous record (a done mark or a step) was not written; its transaction will be finished again after a restart", "txn", w.id, "err", err)
		}
	}
	var fatal fatalError
	if errors.As(err, &fatal) && l.failed == nil {
		l.failed = fmt.Errorf("txlog: %w", err)
		l.log.Error("sync failed; the log accepts nothing more until reopened", "err", err)
	} else if err != nil && err != l.failed {
		l.log.Warn("write failed; the batch is refused and undone", "err", err)
	}
}

// applyWritten updates the state for a record now durable. l.mu is held.
func (l *Log) applyWritten(w *write) {
	id := w.id
	switch w.kind {
	case kindAccept:
		l.txns[id] = w.txn
	case kindDone:
		if t := l.txns[id]; t != nil {
			delete(l.txns, id)
			t.seg.open--
			if t.seg.open == 0 && t.seg.sealed {
				if err := l.trimLocked(); err != nil {
					l.log.Warn("trimming the log", "err", err)
				}
			}
		}
	}
}

// writeBatch appends the batch's records to the active segment (rolling to
// a new one when full) and syncs. Only the leader calls it.
//
// A failed write (a full disk, say) is undone: the segments go back to
// where the batch began, on disk too, and the batch fails alone; the log
// goes on when space returns. A failed sync is not undone: after it,
// nothing written can be trusted, and the error is fatal.
func (l *Log) writeBatch(batch []*write) error {
	buf := l.batchBuf[:0]
	defer func() {
		if cap(buf) <= maxBatchBuf {
			l.batchBuf = buf[:0]
		}
	}()
	seg := l.active
	start := seg // where the batch begins: restored if it fails
	var startSize int64
	if seg != nil {
		startSize = seg.size
	}
	var rolled []*segment
	var counted []*segment
	undo := func(cause error) error {
		l.mu.Lock()
		for _, s := range counted {
			s.open--
		}
		for _, s := range rolled {
			s.f.Close()
			os.Remove(s.path)
			delete(l.segs, s.num)
		}
		if start != nil && start.removed {
			start = nil // trimmed by a roll: the next batch starts a new segment
		}
		l.active = start
		if start != nil {
			start.sealed = false
		}
		l.mu.Unlock()
		if start != nil {
			if err := start.f.Truncate(startSize); err != nil {
				return fatalError{fmt.Errorf("%w (undoing a failed write: %w)", cause, err)}
			}
			if err := fsutil.Fdatasync(start.f); err != nil {
				return fatalError{fmt.Errorf("%w (undoing a failed write: %w)", cause, err)}
			}
			start.size = startSize
		}
		fsutil.SyncDir(l.cfg.Dir)
		return cause
	}
	flush := func() error {
		if len(buf) == 0 {
			return nil
		}
		if _, err := seg.f.WriteAt(buf, seg.size); err != nil {
			return err
		}
		seg.size += int64(len(buf))
		buf = buf[:0]
		return nil
	}
	for _, w := range batch {
		if seg == nil || seg.size+int64(len(buf)+len(w.rec)) > l.cfg.SegmentSize {
			if err := flush(); err != nil {
				return undo(err)
			}
			next, err := l.roll(seg)
			if err != nil {
				return undo(err)
			}
			rolled = append(rolled, next)
			seg = next
		}
		if w.txn != nil {
			w.txn.seg = seg
			w.txn.body += seg.size + int64(len(buf))
			// Counted now, before anything can trim seg.
			l.mu.Lock()
			seg.open++
			l.mu.Unlock()
			counted = append(counted, seg)
		}
		buf = append(buf, w.rec...)
	}
	if err := flush(); err != nil {
		return undo(err)
	}
	began := time.Now()
	if err := fsutil.Fdatasync(seg.f); err != nil {
		return fatalError{err}
	}
	l.cfg.Metrics.GroupCommit(len(batch), time.Since(began))
	seg.synced = seg.size
	return nil
}

// maxBatchBuf bounds the batch buffer a Log keeps for the next batch.
const maxBatchBuf = 4 << 20

// fatalError marks an error after which the log accepts nothing more.
type fatalError struct{ error }

func (e fatalError) Unwrap() error { return e.error }

// roll seals seg (synced) and creates the next segment, durably. Only the
// leader calls it.
func (l *Log) roll(seg *segment) (*segment, error) {
	num := uint32(1)
	if seg != nil {
		if err := fsutil.Fdatasync(seg.f); err != nil {
			return nil, err
		}
		num = seg.num + 1
	}
	path := filepath.Join(l.cfg.Dir, segName(num))
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, fsutil.FileMode)
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	base := header{kind: kindBase, id: max(1, l.nextID), sum: crc(nil)}
	l.mu.Unlock()
	var rec [headerLen]byte
	base.marshal(rec[:])
	if _, err := f.WriteAt(rec[:], 0); err != nil {
		f.Close()
		return nil, err
	}
	if err := fsutil.SyncDir(l.cfg.Dir); err != nil {
		f.Close()
		return nil, err
	}
	next := &segment{num: num, path: path, f: f, size: headerLen}
	l.mu.Lock()
	if seg != nil {
		seg.sealed = true
	}
	l.segs[num] = next
	l.active = next
	if err := l.trimLocked(); err != nil {
		l.log.Warn("trimming the log", "err", err)
	}
	l.mu.Unlock()
	return next, nil
}

// trimLocked removes the sealed segments whose transactions are all done.
// l.mu is held.
//
// Only a run of segments from the oldest is removed: a segment also holds
// the step and done records of transactions accepted in older ones, which
// must outlive those transactions.
func (l *Log) trimLocked() error {
	nums := make([]uint32, 0, len(l.segs))
	for n := range l.segs {
		nums = append(nums, n)
	}
	slices.Sort(nums)
	var errs []error
	for _, n := range nums {
		s := l.segs[n]
		if !s.sealed || s.open > 0 || s == l.active {
			break
		}
		s.removed = true
		delete(l.segs, n)
		s.f.Close()
		if err := os.Remove(s.path); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Close closes the log. Transactions not done stay pending for the next
// Open; done marks queued by DoneAsync are written first.
func (l *Log) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return ErrClosed
	}
	l.closed = true // nothing more is queued
	l.mu.Unlock()
	l.commits.Flush()
	l.mu.Lock()
	defer l.mu.Unlock()
	var errs []error
	for _, s := range l.segs {
		errs = append(errs, s.f.Close())
	}
	return errors.Join(errs...)
}
