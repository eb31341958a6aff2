package msstore

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"sync/atomic"
)

var _ Walker = (*Memory)(nil)

// Memory is a [Storage] that keeps bodies in memory, for tests of the packages
// that consume a Storage. It has no size limit and nothing survives Close.
// It also implements [Walker].
//
// All methods are safe for concurrent use. A Memory copies what it is given:
// it keeps neither the reader passed to Put nor the caller's Meta, and the
// Bodies and Metas it hands out never alias memory the caller can change.
type Memory struct {
	node uint32

	mu     sync.Mutex
	closed bool
	nextID uint64
	bodies map[uint64]*memEntry // live bodies by id
}

// memEntry is one stored body of a Memory. data and meta never change after
// Put; refs is guarded by Memory.mu.
type memEntry struct {
	ref  Ref
	data []byte
	meta Meta
	refs int
}

// NewMemory returns an empty Memory whose Refs carry node as their Node.
func NewMemory(node uint32) *Memory {
	return &Memory{node: node, bodies: make(map[uint64]*memEntry)}
}

// Put reads r to io.EOF and stores the body with a copy of meta. A read error
// is returned wrapped and nothing is stored. Put checks ctx before and after
// reading, not during the read.
func (m *Memory) Put(ctx context.Context, r io.Reader, meta Meta) (Ref, error) {
	if err := m.check(ctx, "put"); err != nil {
		return Ref{}, err
	}
	data, err := io.ReadAll(r)
	if err != nil {
		return Ref{}, fmt.Errorf("msstore: memory put: reading body: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return Ref{}, fmt.Errorf("msstore: memory put: %w", err)
	}
	meta.Owners = slices.Clone(meta.Owners)
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return Ref{}, fmt.Errorf("msstore: memory put: %w", ErrClosed)
	}
	m.nextID++
	ref := Ref{Node: m.node, Size: int64(len(data)), ID: m.nextID, Sum: crc(data)}
	m.bodies[ref.ID] = &memEntry{ref: ref, data: data, meta: meta, refs: int(meta.refs())}
	return ref, nil
}

// Open returns the body ref points to. The Body stays readable until it is
// closed, even if the body is released or the Memory closed meanwhile.
func (m *Memory) Open(ctx context.Context, ref Ref) (Body, error) {
	e, unlock, err := m.lookup(ctx, "open", ref)
	if err != nil {
		return nil, err
	}
	defer unlock()
	return &memBody{data: e.data}, nil
}

// Retain adds n references to the body ref points to; n must be at least 1.
func (m *Memory) Retain(ctx context.Context, ref Ref, n int) error {
	if n < 1 {
		return fmt.Errorf("msstore: memory retain %v: invalid count %d", ref, n)
	}
	e, unlock, err := m.lookup(ctx, "retain", ref)
	if err != nil {
		return err
	}
	defer unlock()
	e.refs += n
	return nil
}

// Release drops one reference to the body ref points to and forgets the body
// when none is left.
func (m *Memory) Release(ctx context.Context, ref Ref) error {
	e, unlock, err := m.lookup(ctx, "release", ref)
	if err != nil {
		return err
	}
	defer unlock()
	if e.refs--; e.refs == 0 {
		delete(m.bodies, ref.ID)
	}
	return nil
}

// Walk calls fn with the Ref and a copy of the Meta of every live body, in
// increasing id order, until fn returns an error, which Walk returns. It
// works on a snapshot taken at the start, so fn may call the Memory's other
// methods.
func (m *Memory) Walk(ctx context.Context, fn func(Ref, Meta) error) error {
	if err := m.check(ctx, "walk"); err != nil {
		return err
	}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return fmt.Errorf("msstore: memory walk: %w", ErrClosed)
	}
	live := make([]*memEntry, 0, len(m.bodies))
	for _, e := range m.bodies {
		live = append(live, e)
	}
	m.mu.Unlock()
	slices.SortFunc(live, func(a, b *memEntry) int { return cmp.Compare(a.ref.ID, b.ref.ID) })
	for _, e := range live {
		if err := ctx.Err(); err != nil {
			return err
		}
		meta := e.meta
		meta.Owners = slices.Clone(meta.Owners)
		if err := fn(e.ref, meta); err != nil {
			return err
		}
	}
	return nil
}

// Close forgets every body; Bodies still open stay readable. Every later call,
// Close included, returns an error wrapping [ErrClosed].
func (m *Memory) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return fmt.Errorf("msstore: memory close: %w", ErrClosed)
	}
	m.closed, m.bodies = true, nil
	return nil
}

// check reports a done ctx or a closed store.
func (m *Memory) check(ctx context.Context, op string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("msstore: memory %s: %w", op, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return fmt.Errorf("msstore: memory %s: %w", op, ErrClosed)
	}
	return nil
}

// lookup finds the live body ref points to and returns it with m.mu held;
// the caller must call unlock. On error the lock is not held.
func (m *Memory) lookup(ctx context.Context, op string, ref Ref) (*memEntry, func(), error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, fmt.Errorf("msstore: memory %s: %w", op, err)
	}
	m.mu.Lock()
	var err error
	e := m.bodies[ref.ID]
	switch {
	case m.closed:
		err = ErrClosed
	case ref.Node != m.node:
		err = fmt.Errorf("%w: node %d is not this store's node %d", ErrNotFound, ref.Node, m.node)
	case e == nil:
		err = fmt.Errorf("%w: no live body with id %d", ErrNotFound, ref.ID)
	case e.ref.Size != ref.Size || e.ref.Sum != ref.Sum:
		err = fmt.Errorf("%w: body %d has size %d and checksum %08x", ErrNotFound, ref.ID, e.ref.Size, e.ref.Sum)
	}
	if err != nil {
		m.mu.Unlock()
		return nil, nil, fmt.Errorf("msstore: memory %s %v: %w", op, ref, err)
	}
	return e, m.mu.Unlock, nil
}

// memBody is a Body of a Memory. data is shared with the store's entry but
// never written, so ReadAt needs no lock.
type memBody struct {
	data   []byte
	closed atomic.Bool
}

// ReadAt implements io.ReaderAt; it returns an error wrapping [ErrClosed]
// after Close.
func (b *memBody) ReadAt(p []byte, off int64) (int, error) {
	switch {
	case b.closed.Load():
		return 0, fmt.Errorf("msstore: memory body: read after close: %w", ErrClosed)
	case off < 0:
		return 0, errors.New("msstore: memory body: negative offset")
	case off >= int64(len(b.data)):
		return 0, io.EOF
	}
	n := copy(p, b.data[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// Size returns the body's length.
func (b *memBody) Size() int64 { return int64(len(b.data)) }

// Close marks the body closed; it may be called more than once.
func (b *memBody) Close() error {
	b.closed.Store(true)
	return nil
}
