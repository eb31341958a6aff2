package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mailsys/mailsys/msstore"
)

// Storage is the msstore.Storage of a cluster: it puts each new body on an
// MS node chosen by weight (a Placer over the unmasked, healthy MS nodes)
// and finds every body by the node its Ref records, so that weights and
// masks changed online take effect at once for new mail and move nothing.
//
// A Put that fails because its node is unavailable goes to the next node by
// weight, as long as its reader can be rewound (an io.Seeker, as the
// delivery path's readers are); the failed node may keep a partial or
// orphaned body, which leaks space and loses nothing. With one replica,
// Open, Retain and Release of a body on a node that is down fail with a
// *Unavailable (temporary), and a body on a node removed from the registry
// is not found.
//
// # Replicated bodies
//
// With StorageConfig.Replicas = 2, Put writes each new body to two distinct
// MS nodes chosen by weight, at once (the body is read once and streamed
// to both), and returns a Ref naming both (msstore.Ref.Copy). When only one
// node can take it, the body is stored once and logged as under-replicated
// rather than refused; Repair adds the second copy later.
//
// A copy is "gone" when its node is lost for good: named in
// StorageConfig.Lost or to Repair, or removed from the registry after this
// Storage saw it there. Open reads the first copy and turns to the second
// when the first is gone, unavailable (at once, without a call, if its
// node is not healthy) or corrupt (msstore.ErrCorrupt), also in the middle
// of reading an open body. A node that answers that it has no such body is
// believed: the body was released, or the Ref is wrong.
//
// Reference counts. Each copy keeps its own count, and the invariant is
// that a copy's count is never below the number of index entries naming
// it (leaked references waste space; missing ones would lose a body).
// Hence Retain must reach every copy that is not gone: if one is
// unavailable, the other's new references are released again and Retain
// fails with the *Unavailable (an IMAP COPY answers "try again later").
// Release drops a reference on every copy it can reach and succeeds if it
// reached one; a copy it could not reach keeps a leaked reference, which
// is logged, and no retry releases the reachable one twice.
//
// Storage is not an msstore.Walker: walking every MS node is not something
// a front does at recovery. Its methods are safe for concurrent use.
type Storage struct {
	peers    Peers
	placer   *Placer
	log      *slog.Logger
	replicas int
	closed   atomic.Bool

	mu      sync.Mutex
	known   map[uint32]bool // MS node numbers seen in a registry
	lost    map[uint32]bool // MS node numbers lost for good
	version uint64          // the registry version known was last updated from

	bufs sync.Pool // of *[]byte: the buffers that tee a body to two nodes
}

var _ msstore.Writable = (*Storage)(nil)

// StorageConfig configures a Storage. The zero value is the default: one
// copy of each body.
type StorageConfig struct {
	// Replicas is how many copies of each new body are written, on
	// distinct MS nodes: 1 or 2. Zero means 1.
	Replicas int
	// Lost are the numbers of MS nodes lost for good: no new body goes
	// there and reads of bodies with a copy elsewhere go to that copy
	// without asking them. A node removed from the registry is lost too,
	// once this Storage has seen it in the registry before.
	Lost []uint32
	// Logger receives the under-replicated bodies, the leaked references
	// and the failovers. Nil means no logging.
	Logger *slog.Logger
}

// MaxReplicas is the most copies of a body a Storage writes.
const MaxReplicas = 2

// DefaultStorageConfig returns the default StorageConfig: one replica.
func DefaultStorageConfig() StorageConfig { return StorageConfig{Replicas: 1} }

// Validate reports every problem of c at once.
func (c StorageConfig) Validate() error {
	var errs []error
	if c.Replicas < 0 || c.Replicas > MaxReplicas {
		errs = append(errs, fmt.Errorf("%w: Replicas %d: must be 1 to %d (0 for 1)", ErrInvalid, c.Replicas, MaxReplicas))
	}
	for _, n := range c.Lost {
		if n == 0 {
			errs = append(errs, fmt.Errorf("%w: Lost: node number 0", ErrInvalid))
		}
	}
	return errors.Join(errs...)
}

// NewStorage returns the cluster's Storage over peers with one replica of
// each body. logger may be nil.
func NewStorage(peers Peers, logger *slog.Logger) *Storage {
	s, _ := NewStorageWith(peers, StorageConfig{Logger: logger}) // valid
	return s
}

// NewStorageWith returns the cluster's Storage over peers configured by
// cfg, which it copies; an invalid cfg is an error (ErrInvalid).
func NewStorageWith(peers Peers, cfg StorageConfig) (*Storage, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Storage{peers: peers, placer: NewPlacer(RoleMS), log: logger, replicas: max(cfg.Replicas, 1),
		known: map[uint32]bool{}, lost: map[uint32]bool{}}
	s.bufs.New = func() any { b := make([]byte, 64<<10); return &b }
	for _, n := range cfg.Lost {
		s.lost[n] = true
	}
	return s, nil
}

// Replicas returns how many copies of each new body s writes.
func (s *Storage) Replicas() int { return s.replicas }

// markLost records that MS node num is lost for good.
func (s *Storage) markLost(num uint32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lost[num] = true
}

// registry returns the registry, noting the MS nodes it names.
func (s *Storage) registry() Registry {
	reg := s.peers.Registry()
	s.mu.Lock()
	defer s.mu.Unlock()
	if reg.Version != s.version || len(s.known) == 0 {
		for _, n := range reg.Nodes {
			if n.Roles&RoleMS != 0 {
				s.known[n.Num] = true
			}
		}
		s.version = reg.Version
	}
	return reg
}

// skipLost returns the ids of reg's lost nodes, for Pick, after skip.
func (s *Storage) skipLost(reg Registry, skip []string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := append([]string(nil), skip...)
	for _, n := range reg.Nodes {
		if s.lost[n.Num] {
			out = append(out, n.ID)
		}
	}
	return out
}

// goneError reports a copy on an MS node lost for good. It matches
// msstore.ErrNotFound: a body with no other copy is not found.
type goneError struct{ num uint32 }

func (e *goneError) Error() string {
	return fmt.Sprintf("cluster: MS node %d is lost for good", e.num)
}

func (e *goneError) Is(target error) bool { return target == msstore.ErrNotFound }

func isGone(err error) bool {
	var g *goneError
	return errors.As(err, &g)
}

// failover reports whether an error of one copy sends a read to the other.
func failover(err error) bool {
	return IsUnavailable(err) || isGone(err) || errors.Is(err, msstore.ErrCorrupt)
}

// Put stores the body on one MS node chosen by weight, or two distinct ones
// with two replicas; see Storage.
func (s *Storage) Put(ctx context.Context, r io.Reader, meta msstore.Meta) (msstore.Ref, error) {
	if s.closed.Load() {
		return msstore.Ref{}, msstore.ErrClosed
	}
	if s.replicas < 2 {
		ref, _, err := s.putOne(ctx, r, meta, nil)
		return ref, err
	}
	return s.putTwo(ctx, r, meta)
}

// putOne stores the body on one node chosen by weight, not one of skip,
// trying the next on an unavailable one while r can be rewound. It returns
// the Ref and the node's id.
func (s *Storage) putOne(ctx context.Context, r io.Reader, meta msstore.Meta, skip []string) (msstore.Ref, string, error) {
	rewind := rewinder(r)
	tried := skip
	var last error
	for {
		reg := s.registry()
		n, err := s.placer.Pick(reg, s.peers.Healthy, s.skipLost(reg, tried)...)
		if err != nil {
			if last != nil {
				return msstore.Ref{}, "", last
			}
			return msstore.Ref{}, "", &Unavailable{Peer: "ms", Err: err}
		}
		ref, err := s.putOn(ctx, n, r, meta)
		if err == nil {
			return ref, n.ID, nil
		}
		if !IsUnavailable(err) || ctx.Err() != nil {
			return msstore.Ref{}, "", err
		}
		s.log.Warn("body not stored: MS node unavailable, trying the next", "node", n.ID, "err", err)
		tried, last = append(tried, n.ID), err
		if rewind == nil {
			return msstore.Ref{}, "", err
		}
		if err := rewind(); err != nil {
			return msstore.Ref{}, "", fmt.Errorf("cluster: rewinding the body for another node: %w (after %w)", err, last)
		}
	}
}

// putOn stores the body on node n.
func (s *Storage) putOn(ctx context.Context, n Node, r io.Reader, meta msstore.Meta) (msstore.Ref, error) {
	st, err := s.peers.Storage(n)
	if err != nil {
		return msstore.Ref{}, err
	}
	ref, err := st.Put(ctx, r, meta)
	if err == nil && ref.Node != n.Num {
		return msstore.Ref{}, fmt.Errorf("cluster: MS node %s (number %d) stored a body as node %d", n.ID, n.Num, ref.Node)
	}
	return ref, err
}

// putTwo stores the body on two nodes chosen by weight; see Storage.
func (s *Storage) putTwo(ctx context.Context, r io.Reader, meta msstore.Meta) (msstore.Ref, error) {
	rewind := rewinder(r)
	var tried []string
	var last error
	for {
		reg := s.registry()
		skip := s.skipLost(reg, tried)
		n1, err := s.placer.Pick(reg, s.peers.Healthy, skip...)
		if err != nil {
			if last != nil {
				return msstore.Ref{}, last
			}
			return msstore.Ref{}, &Unavailable{Peer: "ms", Err: err}
		}
		n2, err := s.placer.Pick(reg, s.peers.Healthy, append(skip, n1.ID)...)
		if err != nil {
			// Only one node can take it: one copy now, the second
			// from Repair.
			ref, _, err := s.putOne(ctx, r, meta, tried)
			if err == nil {
				s.log.Warn("body stored under-replicated: one MS node can take it", "ref", ref)
			}
			return ref, err
		}
		refs, errs, readErr := s.putBoth(ctx, r, meta, n1, n2)
		switch {
		case readErr != nil:
			return msstore.Ref{}, readErr
		case errs[0] == nil && errs[1] == nil:
			return refs[0].WithCopy(refs[1])
		case errs[0] == nil || errs[1] == nil:
			good, bad := 0, 1
			if errs[0] != nil {
				good, bad = 1, 0
			}
			failed := []string{n1.ID, n2.ID}[bad]
			s.log.Warn("one copy of a body not stored", "node", failed, "err", errs[bad])
			return s.secondCopy(ctx, r, meta, rewind, refs[good], append(tried, n1.ID, n2.ID)), nil
		}
		if !IsUnavailable(errs[0]) || !IsUnavailable(errs[1]) || ctx.Err() != nil {
			if !IsUnavailable(errs[0]) {
				return msstore.Ref{}, errs[0]
			}
			return msstore.Ref{}, errs[1]
		}
		s.log.Warn("body not stored: both MS nodes unavailable, trying others", "nodes", []string{n1.ID, n2.ID}, "err", errs[0])
		tried, last = append(tried, n1.ID, n2.ID), errs[0]
		if rewind == nil {
			return msstore.Ref{}, last
		}
		if err := rewind(); err != nil {
			return msstore.Ref{}, fmt.Errorf("cluster: rewinding the body for other nodes: %w (after %w)", err, last)
		}
	}
}

// secondCopy returns first with a second copy stored on a node not in
// skip, if r can be rewound and one takes it; else first alone, logged as
// under-replicated.
func (s *Storage) secondCopy(ctx context.Context, r io.Reader, meta msstore.Meta, rewind func() error, first msstore.Ref, skip []string) msstore.Ref {
	if rewind != nil && rewind() == nil {
		c, _, err := s.putOne(ctx, r, meta, skip)
		if err == nil {
			if ref, err := first.WithCopy(c); err == nil {
				return ref
			}
		}
	}
	s.log.Warn("body stored under-replicated: no second MS node took it", "ref", first)
	return first
}

// putBoth streams the body read from r to n1 and n2 at once. A node whose
// Put fails stops taking the stream; the other goes on. readErr is r's
// error, which fails both.
func (s *Storage) putBoth(ctx context.Context, r io.Reader, meta msstore.Meta, n1, n2 Node) (refs [2]msstore.Ref, errs [2]error, readErr error) {
	var prs [2]*io.PipeReader
	var pws [2]*io.PipeWriter
	var wg sync.WaitGroup
	for i, n := range []Node{n1, n2} {
		prs[i], pws[i] = io.Pipe()
		wg.Add(1)
		go func() {
			defer wg.Done()
			refs[i], errs[i] = s.putOn(ctx, n, prs[i], meta)
			if errs[i] == nil {
				errs[i] = drained(prs[i])
			}
			// Whatever the Put did not read fails the writer at once.
			prs[i].CloseWithError(errPutEnded)
		}()
	}
	bp := s.bufs.Get().(*[]byte)
	readErr = tee(r, pws[:], *bp)
	s.bufs.Put(bp)
	wg.Wait()
	if readErr != nil {
		for i := range refs {
			if errs[i] == nil {
				s.log.Warn("body stored although its reader failed: reference leaked", "ref", refs[i])
			}
		}
	}
	return refs, errs, readErr
}

var errPutEnded = errors.New("cluster: the copy's Put ended")

// drained reports an error if a Put returned before reading its pipe to
// the end, which Storage.Put's contract forbids.
func drained(pr *io.PipeReader) error {
	var b [1]byte
	if n, _ := pr.Read(b[:]); n > 0 {
		return errors.New("cluster: an MS node's Put returned before the body's end")
	}
	return nil
}

// tee copies r into every writer until io.EOF, then closes them. A writer
// that fails is dropped and the others go on. It returns r's error, if
// any, with which it closes the writers still open.
func tee(r io.Reader, ws []*io.PipeWriter, buf []byte) error {
	live := append([]*io.PipeWriter(nil), ws...)
	for len(live) > 0 {
		n, err := r.Read(buf)
		if n > 0 {
			kept := live[:0]
			for _, w := range live {
				if _, werr := w.Write(buf[:n]); werr == nil {
					kept = append(kept, w)
				}
			}
			live = kept
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			err = fmt.Errorf("cluster: reading the body: %w", err)
			for _, w := range ws {
				w.CloseWithError(err)
			}
			return err
		}
	}
	for _, w := range ws {
		w.Close()
	}
	return nil
}

// rewinder returns a function that puts r back where it is now, or nil if
// r cannot seek.
func rewinder(r io.Reader) func() error {
	sk, ok := r.(io.Seeker)
	if !ok {
		return nil
	}
	start, err := sk.Seek(0, io.SeekCurrent)
	if err != nil {
		return nil
	}
	return func() error {
		_, err := sk.Seek(start, io.SeekStart)
		return err
	}
}

// Writable reports whether some MS node can take a new body now: one is
// unmasked, weighted and healthy (msstore.Writable).
func (s *Storage) Writable() error {
	reg := s.registry()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, n := range reg.Nodes {
		if n.Roles&RoleMS != 0 && !n.Masked && n.Weight > 0 && !s.lost[n.Num] && s.peers.Healthy(n.ID) {
			return nil
		}
	}
	return &Unavailable{Peer: "ms", Err: ErrNoNode}
}

// node returns the client of MS node num, for a copy of ref: a *goneError
// if the node is lost for good, ErrNotFound if no MS node of that number
// was ever known, a *Unavailable if it is not healthy.
func (s *Storage) node(num uint32, ref msstore.Ref) (msstore.Storage, error) {
	if s.closed.Load() {
		return nil, msstore.ErrClosed
	}
	reg := s.registry()
	s.mu.Lock()
	lost, known := s.lost[num], s.known[num]
	s.mu.Unlock()
	n, ok := reg.ByNum(num)
	switch {
	case lost || (!ok && known):
		return nil, fmt.Errorf("ref %v: %w", ref, &goneError{num})
	case !ok || n.Roles&RoleMS == 0:
		return nil, fmt.Errorf("%w: ref %v: no MS node %d in the registry", msstore.ErrNotFound, ref, num)
	case !s.peers.Healthy(n.ID):
		return nil, &Unavailable{Peer: n.ID, Err: errors.New("not answering its heartbeat")}
	}
	return s.peers.Storage(n)
}

// copies returns the Refs of ref's copies alone, the first first, or
// ErrNotFound for a Ref whose copy fields are inconsistent (a copy on its
// first copy's node, an id without a node), which locates nothing.
func copies(ref msstore.Ref) ([]msstore.Ref, error) {
	if (ref.Copy == 0 && ref.CopyID != 0) || (ref.Copy != 0 && ref.Copy == ref.Node) {
		return nil, fmt.Errorf("%w: ref %v: invalid second copy", msstore.ErrNotFound, ref)
	}
	if c, ok := ref.Second(); ok {
		return []msstore.Ref{ref.First(), c}, nil
	}
	return []msstore.Ref{ref}, nil
}

// openCopy opens one copy.
func (s *Storage) openCopy(ctx context.Context, c msstore.Ref) (msstore.Body, error) {
	st, err := s.node(c.Node, c)
	if err != nil {
		return nil, err
	}
	return st.Open(ctx, c)
}

// Open opens the body on the node its Ref names first, or on the second
// copy's; see Storage.
func (s *Storage) Open(ctx context.Context, ref msstore.Ref) (msstore.Body, error) {
	cs, err := copies(ref)
	if err != nil {
		return nil, err
	}
	b, err := s.openCopy(ctx, cs[0])
	if len(cs) == 1 {
		return b, err
	}
	at := 0
	if err != nil {
		if !failover(err) || ctx.Err() != nil {
			return nil, err
		}
		var err2 error
		if b, err2 = s.openCopy(ctx, cs[1]); err2 != nil {
			return nil, pickErr(err, err2)
		}
		s.log.Info("body read from its second copy", "ref", ref, "err", err)
		at = 1
	}
	return &replicaBody{s: s, cs: cs, at: at, cur: b}, nil
}

// pickErr returns the error of a read that failed on both copies: a
// temporary one if either was, so that a body is never reported gone while
// a copy may come back.
func pickErr(first, second error) error {
	switch {
	case IsUnavailable(first):
		return first
	case IsUnavailable(second):
		return second
	case isGone(first) && !isGone(second):
		return second
	}
	return first
}

// replicaBody is an open body with a second copy to turn to when reading
// the first fails (failover); it turns once.
type replicaBody struct {
	s  *Storage
	cs []msstore.Ref

	mu     sync.Mutex
	at     int // the copy open
	turned bool
	cur    msstore.Body
	closed bool
}

// fallbackOpenTimeout bounds the Open of the other copy in the middle of
// a read, which has no context of its own.
const fallbackOpenTimeout = 30 * time.Second

func (b *replicaBody) Size() int64 { return b.cs[0].Size }

func (b *replicaBody) ReadAt(p []byte, off int64) (int, error) {
	b.mu.Lock()
	cur, at := b.cur, b.at
	b.mu.Unlock()
	n, err := cur.ReadAt(p, off)
	if err == nil || err == io.EOF || !failover(err) {
		return n, err
	}
	alt, aerr := b.turn(at)
	if aerr != nil {
		return n, err
	}
	return alt.ReadAt(p, off)
}

// turn moves the body to the copy other than at, unless it moved already,
// and returns the body open now.
func (b *replicaBody) turn(at int) (msstore.Body, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, msstore.ErrClosed
	}
	if b.at != at {
		return b.cur, nil // another reader turned it
	}
	if b.turned {
		return nil, errors.New("cluster: both copies failed")
	}
	ctx, cancel := context.WithTimeout(context.Background(), fallbackOpenTimeout)
	defer cancel()
	alt, err := b.s.openCopy(ctx, b.cs[1-at])
	if err != nil {
		return nil, err
	}
	b.s.log.Info("body read from its other copy", "ref", b.cs[1-at])
	b.cur.Close()
	b.cur, b.at, b.turned = alt, 1-at, true
	return alt, nil
}

func (b *replicaBody) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil
	}
	b.closed = true
	return b.cur.Close()
}

// Retain adds n references to every copy of the body that is not gone;
// see Storage for what a copy that cannot be reached means.
func (s *Storage) Retain(ctx context.Context, ref msstore.Ref, n int) error {
	if n < 1 {
		return fmt.Errorf("%w: Retain of %d references", ErrInvalid, n)
	}
	cs, err := copies(ref)
	if err != nil {
		return err
	}
	var done []msstore.Ref
	reached := false
	var goneErr error
	for _, c := range cs {
		st, err := s.node(c.Node, c)
		if err == nil {
			err = st.Retain(ctx, c, n)
		}
		switch {
		case err == nil:
			done, reached = append(done, c), true
			continue
		case isGone(err):
			goneErr = err
			continue
		}
		// Unavailable, or not found: undo what was retained.
		for _, d := range done {
			if uerr := s.releaseCopy(ctx, d, n); uerr != nil {
				s.log.Warn("references leaked: a failed Retain could not be undone", "ref", d, "n", n, "err", uerr)
			}
		}
		return err
	}
	if !reached {
		return goneErr
	}
	return nil
}

// releaseCopy drops n references of one copy.
func (s *Storage) releaseCopy(ctx context.Context, c msstore.Ref, n int) error {
	st, err := s.node(c.Node, c)
	if err != nil {
		return err
	}
	for range n {
		if err := st.Release(ctx, c); err != nil {
			return err
		}
	}
	return nil
}

// Release drops a reference on every copy of the body it can reach; see
// Storage.
func (s *Storage) Release(ctx context.Context, ref msstore.Ref) error {
	cs, err := copies(ref)
	if err != nil {
		return err
	}
	var first error
	released := false
	for i, c := range cs {
		err := s.releaseCopy(ctx, c, 1)
		switch {
		case err == nil:
			released = true
			continue
		case i == 0 && !failover(err):
			// The first copy's node says no such body: so would the
			// second's, whose count is never below it.
			return err
		}
		if len(cs) > 1 && !isGone(err) {
			s.log.Warn("reference leaked: a copy of a released body could not be reached", "ref", c, "err", err)
		}
		if first == nil || (isGone(first) && !isGone(err)) {
			first = err
		}
	}
	if released {
		return nil
	}
	return first
}

// Close ends the Storage: later calls return msstore.ErrClosed. The
// clients of the nodes belong to the Peers and stay open.
func (s *Storage) Close() error {
	s.closed.Store(true)
	return nil
}
