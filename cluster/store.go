package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"

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
// orphaned body, which leaks space and loses nothing. Open, Retain and
// Release of a body on a node that is down fail with a *Unavailable.
//
// Storage is not an msstore.Walker: walking every MS node is not something
// a front does at recovery. Its methods are safe for concurrent use.
type Storage struct {
	peers  Peers
	placer *Placer
	log    *slog.Logger
	closed atomic.Bool
}

var _ msstore.Writable = (*Storage)(nil)

// NewStorage returns the cluster's Storage over peers. logger may be nil.
func NewStorage(peers Peers, logger *slog.Logger) *Storage {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Storage{peers: peers, placer: NewPlacer(RoleMS), log: logger}
}

// Put stores the body on an MS node chosen by weight; see Storage.
func (s *Storage) Put(ctx context.Context, r io.Reader, meta msstore.Meta) (msstore.Ref, error) {
	if s.closed.Load() {
		return msstore.Ref{}, msstore.ErrClosed
	}
	rewind := rewinder(r)
	var tried []string
	var last error
	for {
		n, err := s.placer.Pick(s.peers.Registry(), s.peers.Healthy, tried...)
		if err != nil {
			if last != nil {
				return msstore.Ref{}, last
			}
			return msstore.Ref{}, &Unavailable{Peer: "ms", Err: err}
		}
		st, err := s.peers.Storage(n)
		if err == nil {
			var ref msstore.Ref
			ref, err = st.Put(ctx, r, meta)
			if err == nil {
				return ref, nil
			}
		}
		if !IsUnavailable(err) || ctx.Err() != nil {
			return msstore.Ref{}, err
		}
		s.log.Warn("body not stored: MS node unavailable, trying the next", "node", n.ID, "err", err)
		tried, last = append(tried, n.ID), err
		if rewind == nil {
			return msstore.Ref{}, err
		}
		if err := rewind(); err != nil {
			return msstore.Ref{}, fmt.Errorf("cluster: rewinding the body for another node: %w (after %w)", err, last)
		}
	}
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
	reg := s.peers.Registry()
	for _, n := range reg.Nodes {
		if n.Roles&RoleMS != 0 && !n.Masked && n.Weight > 0 && s.peers.Healthy(n.ID) {
			return nil
		}
	}
	return &Unavailable{Peer: "ms", Err: ErrNoNode}
}

// node returns the client of the MS node ref was placed on.
func (s *Storage) node(ref msstore.Ref) (msstore.Storage, error) {
	if s.closed.Load() {
		return nil, msstore.ErrClosed
	}
	n, ok := s.peers.Registry().ByNum(ref.Node)
	if !ok || n.Roles&RoleMS == 0 {
		return nil, fmt.Errorf("%w: ref %v: no MS node %d in the registry", msstore.ErrNotFound, ref, ref.Node)
	}
	if !s.peers.Healthy(n.ID) {
		return nil, &Unavailable{Peer: n.ID, Err: errors.New("not answering its heartbeat")}
	}
	return s.peers.Storage(n)
}

// Open opens the body on the node its Ref names.
func (s *Storage) Open(ctx context.Context, ref msstore.Ref) (msstore.Body, error) {
	st, err := s.node(ref)
	if err != nil {
		return nil, err
	}
	return st.Open(ctx, ref)
}

// Retain adds references on the node the Ref names.
func (s *Storage) Retain(ctx context.Context, ref msstore.Ref, n int) error {
	st, err := s.node(ref)
	if err != nil {
		return err
	}
	return st.Retain(ctx, ref, n)
}

// Release drops a reference on the node the Ref names.
func (s *Storage) Release(ctx context.Context, ref msstore.Ref) error {
	st, err := s.node(ref)
	if err != nil {
		return err
	}
	return st.Release(ctx, ref)
}

// Close ends the Storage: later calls return msstore.ErrClosed. The
// clients of the nodes belong to the Peers and stay open.
func (s *Storage) Close() error {
	s.closed.Store(true)
	return nil
}
