package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/mailsys/mailsys/userdata"
)

// Users is the UserDB of a cluster, as a front node sees it: every call
// about a user goes to the UD node that holds the user, found in the
// Directory (by id, or by any address the user receives at); a new user
// goes to a UD node chosen by weight among the unmasked, healthy ones, and
// the choice is recorded in the Directory before the node creates the
// account.
//
// Domains, domain aliases, units and service classes are known to every UD
// node (users' limits are resolved on their node): Users writes them to
// every UD node of the registry, and reads them from any that answers. A
// write of them needs every UD node up; one that fails partway can be
// repeated (the nodes that have it answer ErrExists, which then counts as
// done). Unit and user ids come from the Directory's sequences, so that
// they are the same on every node and unique across the cluster.
//
// A user's placement may name a UD replication group (Group) rather than
// a node: its calls go to the group's primary as the registry was last
// reported, so they follow a promotion at once. Only serving nodes (the
// primaries of groups and the UD nodes in no group) take new users and
// the writes of domains, units and classes; a standby gets them by
// replication. A new user placed on a group's primary is recorded on the
// group.
//
// Calls for users of a UD node that is down fail fast with a *Unavailable
// (userdata.ErrUnavailable); users of the other nodes are not affected.
// Users implements the UserDB capabilities the protocol servers use
// (userdata.Watcher, Remover, KeywordLister, RecentClaimer) by handing
// them to the user's node. Its methods are safe for concurrent use.
type Users struct {
	dir    Directory
	peers  Peers
	placer *Placer
	log    *slog.Logger

	mu     sync.RWMutex
	nodeOf map[userdata.UserID]string // users' UD nodes, as the Directory said (placement never changes)
	closed bool

	watches watches // the Watch calls in progress (users_watch.go)
}

var _ UserDB = (*Users)(nil)

// maxCachedUsers bounds the cache of users' nodes; past it the cache
// starts over.
const maxCachedUsers = 1 << 20

// NewUsers returns the cluster's UserDB over dir and peers. logger may be
// nil.
func NewUsers(dir Directory, peers Peers, logger *slog.Logger) *Users {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Users{dir: dir, peers: peers, placer: NewPlacer(RoleUD), log: logger, nodeOf: map[userdata.UserID]string{}}
}

// Close ends the router: later calls return userdata.ErrClosed. The
// Directory and the nodes' clients belong to their owner and stay open.
func (u *Users) Close() error {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.closed {
		return userdata.ErrClosed
	}
	u.closed = true
	u.stopWatches()
	return nil
}

func (u *Users) isClosed() bool {
	u.mu.RLock()
	defer u.mu.RUnlock()
	return u.closed
}

// dirErr turns a Directory error into the userdata sentinel a UserDB
// caller tests.
func dirErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrNotFound):
		return fmt.Errorf("%w: %w", userdata.ErrNotFound, err)
	case errors.Is(err, ErrExists):
		return fmt.Errorf("%w: %w", userdata.ErrExists, err)
	case errors.Is(err, ErrInvalid):
		return fmt.Errorf("%w: %w", userdata.ErrInvalid, err)
	case errors.Is(err, ErrClosed):
		return fmt.Errorf("%w: %w", userdata.ErrClosed, err)
	case IsUnavailable(err), errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	}
	return &Unavailable{Peer: "directory", Err: err}
}

// udNodes returns the UD nodes of the registry that serve users now, the
// healthy ones first: the primaries of groups and the UD nodes in no
// group (Registry.serves), never a standby, which receives what its
// primary holds by replication.
func (u *Users) udNodes() []Node {
	var up, down []Node
	reg := u.peers.Registry()
	for _, n := range reg.Nodes {
		if !reg.serves(n) {
			continue
		}
		if u.peers.Healthy(n.ID) {
			up = append(up, n)
		} else {
			down = append(down, n)
		}
	}
	return append(up, down...)
}

// client returns the client of the node that serves placement id: a
// group's primary (Registry.Serving), as the registry was last reported,
// or the UD node with that id.
func (u *Users) client(id string) (UserDB, error) {
	if u.isClosed() {
		return nil, userdata.ErrClosed
	}
	n, ok := u.peers.Registry().Serving(id)
	if !ok {
		return nil, &Unavailable{Peer: id, Err: errors.New("no such UD node or group in the registry")}
	}
	if !u.peers.Healthy(n.ID) {
		return nil, &Unavailable{Peer: n.ID, Err: errors.New("not answering its heartbeat")}
	}
	return u.peers.UserDB(n)
}

// user returns the client of the node that holds user id.
func (u *Users) user(ctx context.Context, id userdata.UserID) (UserDB, error) {
	node, err := u.userNode(ctx, id)
	if err != nil {
		return nil, err
	}
	return u.client(node)
}

// userNode returns the id of the node that holds user id.
func (u *Users) userNode(ctx context.Context, id userdata.UserID) (string, error) {
	if u.isClosed() {
		return "", userdata.ErrClosed
	}
	u.mu.RLock()
	node, ok := u.nodeOf[id]
	u.mu.RUnlock()
	if ok {
		return node, nil
	}
	node, err := u.dir.UserNode(ctx, id)
	if err != nil {
		return "", dirErr(err)
	}
	u.remember(id, node)
	return node, nil
}

func (u *Users) remember(id userdata.UserID, node string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.nodeOf) >= maxCachedUsers {
		clear(u.nodeOf)
	}
	u.nodeOf[id] = node
}

// address finds the user an address leads to: a primary address or an
// alias, in a domain or one of its aliases.
func (u *Users) address(ctx context.Context, address string) (Placement, error) {
	if u.isClosed() {
		return Placement{}, userdata.ErrClosed
	}
	addr := strings.ToLower(strings.TrimSpace(address))
	p, err := u.dir.LookupAddress(ctx, addr)
	if errors.Is(err, ErrNotFound) {
		if local, domain, ok := strings.Cut(addr, "@"); ok {
			if real, derr := u.dir.DomainAlias(ctx, domain); derr == nil {
				p, err = u.dir.LookupAddress(ctx, local+"@"+real)
			}
		}
	}
	if err != nil {
		return Placement{}, dirErr(err)
	}
	u.remember(p.User, p.Node)
	return p, nil
}

// SequenceAdvancer is a Directory that can move a sequence past a number
// taken without it (a user or unit created with an id of its own), so
// that NextID never returns that number. A Directory without it has
// NextID called until it passes the number.
type SequenceAdvancer interface {
	AdvanceID(ctx context.Context, sequence string, past uint64) error
}

// maxAdvance bounds the NextID calls that move a sequence of a Directory
// without AdvanceID past an id given in a registration.
const maxAdvance = 100_000

// advance makes sure the Directory's sequence never hands out id, which a
// registration chose itself.
func (u *Users) advance(ctx context.Context, sequence string, id uint64) error {
	if a, ok := u.dir.(SequenceAdvancer); ok {
		return dirErr(a.AdvanceID(ctx, sequence, id))
	}
	for range maxAdvance {
		n, err := u.dir.NextID(ctx, sequence)
		if err != nil {
			return dirErr(err)
		}
		if n >= id {
			return nil
		}
	}
	return fmt.Errorf("%w: cluster: %s id %d is too far past the directory's sequence", userdata.ErrInvalid, sequence, id)
}

// everyNode applies fn to every UD node in turn. ErrExists from some
// nodes while others succeed means an earlier try got that far: done. It
// returns ErrExists only when every node said so, else the first other
// error, having tried every node so as to leave as few behind as it can.
func (u *Users) everyNode(fn func(UserDB) error) error {
	if u.isClosed() {
		return userdata.ErrClosed
	}
	nodes := u.udNodes()
	if len(nodes) == 0 {
		return &Unavailable{Peer: "ud", Err: ErrNoNode}
	}
	var first, exists error
	done := 0
	for _, n := range nodes {
		db, err := u.peers.UserDB(n)
		if err == nil {
			err = fn(db)
		}
		switch {
		case err == nil:
			done++
		case errors.Is(err, userdata.ErrExists):
			exists = err
		case first == nil:
			first = fmt.Errorf("UD node %s: %w", n.ID, err)
		}
	}
	if first != nil {
		return first
	}
	if done == 0 {
		return exists
	}
	return nil
}

// anyNode asks the UD nodes in turn, the healthy first, until one answers
// (with a result or an error that is not Unavailable).
func (u *Users) anyNode(fn func(UserDB) error) error {
	if u.isClosed() {
		return userdata.ErrClosed
	}
	err := error(&Unavailable{Peer: "ud", Err: ErrNoNode})
	for _, n := range u.udNodes() {
		db, cerr := u.peers.UserDB(n)
		if cerr != nil {
			err = cerr
			continue
		}
		if err = fn(db); !IsUnavailable(err) {
			return err
		}
	}
	return err
}

// undo runs a Directory clean-up after a failed registration, with a
// context of its own, since the caller's may be what ended it.
func (u *Users) undo(what string, fn func(ctx context.Context) error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := fn(ctx); err != nil {
		u.log.Error("directory clean-up failed: the entry stays", "what", what, "err", err)
	}
}
