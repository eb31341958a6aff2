package cluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"regexp"
	"strings"

	"github.com/mailsys/mailsys/msstore"
	"github.com/mailsys/mailsys/userdata"
)

// Sentinel errors. Implementations wrap them with %w; callers test them
// with errors.Is.
var (
	// ErrNotFound reports an unknown node, user or address in a Directory.
	ErrNotFound = errors.New("cluster: not found")
	// ErrExists reports a node id or number, a user id or an address
	// already registered.
	ErrExists = errors.New("cluster: already exists")
	// ErrInvalid reports a node or a value that breaks the registry's
	// rules (see Node.Validate).
	ErrInvalid = errors.New("cluster: invalid value")
	// ErrNoNode reports a placement with no eligible node: none of the
	// role is registered with a weight above 0, unmasked and healthy.
	ErrNoNode = errors.New("cluster: no node available")
	// ErrClosed reports a call on a closed Directory or HeartBeat.
	ErrClosed = errors.New("cluster: closed")
	// ErrConflict reports a compare-and-set (Directory.SwapGroup) whose
	// expected value is not the current one.
	ErrConflict = errors.New("cluster: changed meanwhile")
)

// Unavailable is the error of a call to a peer that is down or cut off:
// its circuit breaker is open, the call timed out, or the connection
// failed. It is temporary: the protocol servers answer it with their "try
// again later" (SMTP 451 4.3.0, IMAP NO [UNAVAILABLE], POP3 -ERR
// [SYS/TEMP]). It matches msstore.ErrUnavailable and
// userdata.ErrUnavailable with errors.Is, so that packages that know only
// their own backend's sentinel recognise it.
type Unavailable struct {
	Peer string // the node id, or its address if the id is not known
	Err  error  // what happened, if known
}

func (e *Unavailable) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("cluster: node %s unavailable", e.Peer)
	}
	return fmt.Sprintf("cluster: node %s unavailable: %v", e.Peer, e.Err)
}

// Unwrap returns the cause.
func (e *Unavailable) Unwrap() error { return e.Err }

// Is matches the backends' unavailable sentinels.
func (e *Unavailable) Is(target error) bool {
	return target == msstore.ErrUnavailable || target == userdata.ErrUnavailable
}

// Temporary reports true: the condition passes when the peer comes back.
func (e *Unavailable) Temporary() bool { return true }

// IsUnavailable reports whether err says a peer could not be reached.
func IsUnavailable(err error) bool {
	return errors.Is(err, msstore.ErrUnavailable) || errors.Is(err, userdata.ErrUnavailable)
}

// Role is a bit set of what a node serves.
type Role uint8

// Roles.
const (
	// RoleFront runs the protocol modules (mta, imap, pop3) and holds no
	// mailbox data.
	RoleFront Role = 1 << iota
	// RoleUD serves a UserDB: accounts, folders, the message index.
	RoleUD
	// RoleMS serves message bodies: an msstore.Storage.
	RoleMS

	allRoles = RoleFront | RoleUD | RoleMS
)

var roleNames = [...]struct {
	r    Role
	name string
}{{RoleFront, "front"}, {RoleUD, "ud"}, {RoleMS, "ms"}}

// String returns the roles as a comma-separated list ("front,ud").
func (r Role) String() string {
	var names []string
	for _, n := range roleNames {
		if r&n.r != 0 {
			names = append(names, n.name)
		}
	}
	if rest := r &^ allRoles; rest != 0 {
		names = append(names, fmt.Sprintf("0x%x", uint8(rest)))
	}
	return strings.Join(names, ",")
}

// ParseRole reads the form String writes: role names separated by commas
// (front, ud, ms), in any order and case.
func ParseRole(s string) (Role, error) {
	var r Role
	for f := range strings.SplitSeq(s, ",") {
		f = strings.ToLower(strings.TrimSpace(f))
		found := false
		for _, n := range roleNames {
			if f == n.name {
				r |= n.r
				found = true
			}
		}
		if !found {
			return 0, fmt.Errorf("%w: unknown role %q (want front, ud or ms)", ErrInvalid, f)
		}
	}
	return r, nil
}

// Node is one entry of the node registry.
type Node struct {
	// ID names the node: 1 to 63 lower-case letters, digits and hyphens,
	// starting with a letter ("ms1", "ud-east-2"). It is what
	// userdata.User.Node records for a UD node.
	ID string
	// Num is the node's number, unique in the registry and above 0. An
	// MS node records it in every msstore.Ref it makes (Ref.Node).
	Num uint32
	// Roles says what the node serves.
	Roles Role
	// Addr is the host:port of the node's gRPC listener.
	Addr string
	// Weight is the node's share of new placements among the nodes of
	// its role: new users for a UD node, new bodies for an MS node. 0
	// takes none; the registry keeps weights from 0 to 10000.
	Weight int
	// Masked keeps new placements away from the node, whatever its
	// weight. A masked node still serves what it holds.
	Masked bool
}

// MaxWeight is the largest weight a node can have.
const MaxWeight = 10000

var nodeID = regexp.MustCompile(`^[a-z][a-z0-9-]{0,62}$`)

// Validate reports what is wrong with n, wrapping ErrInvalid.
func (n Node) Validate() error {
	var errs []error
	if !nodeID.MatchString(n.ID) {
		errs = append(errs, fmt.Errorf("%w: node id %q: want 1 to 63 lower-case letters, digits or hyphens, starting with a letter", ErrInvalid, n.ID))
	}
	if n.Num == 0 {
		errs = append(errs, fmt.Errorf("%w: node %s: number 0", ErrInvalid, n.ID))
	}
	if n.Roles == 0 || n.Roles&^allRoles != 0 {
		errs = append(errs, fmt.Errorf("%w: node %s: roles %s", ErrInvalid, n.ID, n.Roles))
	}
	if n.Addr == "" && n.Roles&(RoleUD|RoleMS) != 0 {
		errs = append(errs, fmt.Errorf("%w: node %s: no address", ErrInvalid, n.ID))
	} else if n.Addr != "" {
		if host, port, err := net.SplitHostPort(n.Addr); err != nil || host == "" || port == "" || len(n.Addr) > MaxAddrLen {
			errs = append(errs, fmt.Errorf("%w: node %s: address %.80q: want host:port, at most %d bytes", ErrInvalid, n.ID, n.Addr, MaxAddrLen))
		}
	}
	if n.Weight < 0 || n.Weight > MaxWeight {
		errs = append(errs, fmt.Errorf("%w: node %s: weight %d, want 0 to %d", ErrInvalid, n.ID, n.Weight, MaxWeight))
	}
	return errors.Join(errs...)
}

// MaxAddrLen bounds a node's address (host:port) in the registry.
const MaxAddrLen = 261

// Registry is the node registry at one moment.
type Registry struct {
	// Version grows with every change to the registry (a node added or
	// removed, a weight, a mask, an address): nodes compare it in their
	// heartbeat metadata to see that they run on the same registry.
	Version uint64
	// Nodes are the registered nodes in ID order.
	Nodes []Node
	// Groups are the UD replication groups in ID order. A change to them
	// grows Version as a change to Nodes does.
	Groups []Group
}

// Group is a UD replication group: the UD node that serves the group's
// users now (Primary) and the node that keeps a synchronous hot standby of
// it (Standby). Failover promotes the standby through
// Directory.SwapGroup with a higher Epoch; a primary that finds the group's
// epoch above its own refuses writes.
type Group struct {
	// ID names the group, with the rule of node ids. Users placed on the
	// group record it (Placement.Node, userdata.User.Node). It may be the
	// id of a node (its first primary), so that users placed on a UD node
	// before it had a standby stay where they are.
	ID string
	// Primary is the node serving the group now: a registered UD node.
	Primary string
	// Standby is the standby's node, "" for none; never the Primary.
	Standby string
	// Epoch is the fencing token, above 0; it grows at every promotion.
	Epoch uint64
	// Synced says the standby holds every write the primary
	// acknowledged, so that it may be promoted.
	Synced bool
}

// Validate reports what is wrong with g on its own (not against a
// registry), wrapping ErrInvalid: an id that breaks the rule of node ids,
// no Primary or one that is not a node id, a Standby that is not a node
// id or is the Primary, an Epoch of 0.
func (g Group) Validate() error {
	var errs []error
	if !nodeID.MatchString(g.ID) {
		errs = append(errs, fmt.Errorf("%w: group id %.80q: want 1 to 63 lower-case letters, digits or hyphens, starting with a letter", ErrInvalid, g.ID))
	}
	if !nodeID.MatchString(g.Primary) {
		errs = append(errs, fmt.Errorf("%w: group %.80s: primary %.80q is not a node id", ErrInvalid, g.ID, g.Primary))
	}
	switch {
	case g.Standby == "":
	case !nodeID.MatchString(g.Standby):
		errs = append(errs, fmt.Errorf("%w: group %.80s: standby %.80q is not a node id", ErrInvalid, g.ID, g.Standby))
	case g.Standby == g.Primary:
		errs = append(errs, fmt.Errorf("%w: group %.80s: node %s both primary and standby", ErrInvalid, g.ID, g.Primary))
	}
	if g.Epoch == 0 {
		errs = append(errs, fmt.Errorf("%w: group %.80s: epoch 0", ErrInvalid, g.ID))
	}
	return errors.Join(errs...)
}

// Group returns the group with the given id.
func (r Registry) Group(id string) (Group, bool) {
	for _, g := range r.Groups {
		if g.ID == id {
			return g, true
		}
	}
	return Group{}, false
}

// GroupOf returns the group whose Primary or Standby is node.
func (r Registry) GroupOf(node string) (Group, bool) {
	if node == "" {
		return Group{}, false
	}
	for _, g := range r.Groups {
		if g.Primary == node || g.Standby == node {
			return g, true
		}
	}
	return Group{}, false
}

// Serving returns the node that serves what a placement records as id: if
// id names a group, its Primary's node; else the UD node with that id. ok
// is false when neither exists (a group whose primary is not registered,
// a node without the UD role, an unknown id).
func (r Registry) Serving(id string) (Node, bool) {
	if g, ok := r.Group(id); ok {
		n, ok := r.Node(g.Primary)
		if !ok || n.Roles&RoleUD == 0 {
			return Node{}, false
		}
		return n, true
	}
	n, ok := r.Node(id)
	if !ok || n.Roles&RoleUD == 0 {
		return Node{}, false
	}
	return n, true
}

// CheckSwap reports whether Directory.SwapGroup(old, new) may be applied
// to r, with the errors SwapGroup returns: ErrExists (a create of a group
// that exists), ErrNotFound (old is gone), ErrConflict (the group is not
// exactly old now), ErrInvalid (anything else the contract refuses). Every
// Directory implementation checks a swap with it, so that all refuse the
// same values.
func (r Registry) CheckSwap(old, new Group) error {
	remove := new.Primary == ""
	switch {
	case old == Group{}:
		if remove {
			return fmt.Errorf("%w: group %.80s: a create with no primary", ErrInvalid, new.ID)
		}
	case old.ID != new.ID:
		return fmt.Errorf("%w: swap of group %.80s for group %.80s: ids differ", ErrInvalid, old.ID, new.ID)
	case !remove && new.Epoch < old.Epoch:
		return fmt.Errorf("%w: group %s: epoch %d back from %d", ErrInvalid, new.ID, new.Epoch, old.Epoch)
	}
	if remove {
		if !nodeID.MatchString(new.ID) {
			return fmt.Errorf("%w: group id %.80q", ErrInvalid, new.ID)
		}
		if new != (Group{ID: new.ID}) {
			return fmt.Errorf("%w: group %s: a removal (no primary) with a standby or epoch", ErrInvalid, new.ID)
		}
	} else if err := new.Validate(); err != nil {
		return err
	}
	cur, exists := r.Group(new.ID)
	switch {
	case old == Group{} && exists:
		return fmt.Errorf("%w: group %s", ErrExists, new.ID)
	case old != Group{} && !exists:
		return fmt.Errorf("%w: group %s", ErrNotFound, new.ID)
	case old != Group{} && cur != old:
		return fmt.Errorf("%w: group %s is %+v, not %+v", ErrConflict, new.ID, cur, old)
	}
	if remove {
		return nil
	}
	if n, ok := r.Node(new.ID); old == (Group{}) && ok && n.ID != new.Primary {
		return fmt.Errorf("%w: group %s: named after node %s, which is not its primary", ErrInvalid, new.ID, n.ID)
	}
	for _, m := range []string{new.Primary, new.Standby} {
		if m == "" {
			continue
		}
		n, ok := r.Node(m)
		if !ok {
			return fmt.Errorf("%w: group %s: node %s is not registered", ErrInvalid, new.ID, m)
		}
		if n.Roles&RoleUD == 0 {
			return fmt.Errorf("%w: group %s: node %s is not a UD node (roles %s)", ErrInvalid, new.ID, m, n.Roles)
		}
		if g, ok := r.GroupOf(m); ok && g.ID != new.ID {
			return fmt.Errorf("%w: group %s: node %s is in group %s", ErrInvalid, new.ID, m, g.ID)
		}
	}
	return nil
}

// CheckNodeChange reports, wrapping ErrInvalid, a change to the registry
// that would leave a group with a member that is not a UD node: the
// removal of node id (n nil) or its replacement by *n without the UD role.
// Every Directory implementation checks PutNode and RemoveNode with it.
func (r Registry) CheckNodeChange(id string, n *Node) error {
	g, ok := r.GroupOf(id)
	if !ok || n != nil && n.Roles&RoleUD != 0 {
		return nil
	}
	what := "removed"
	if n != nil {
		what = "left without the UD role"
	}
	return fmt.Errorf("%w: node %s is a member of group %s (primary %s, standby %q): it cannot be %s; swap it out of the group first", ErrInvalid, id, g.ID, g.Primary, g.Standby, what)
}

// Node returns the node with the given id.
func (r Registry) Node(id string) (Node, bool) {
	for _, n := range r.Nodes {
		if n.ID == id {
			return n, true
		}
	}
	return Node{}, false
}

// ByNum returns the node with the given number.
func (r Registry) ByNum(num uint32) (Node, bool) {
	for _, n := range r.Nodes {
		if n.Num == num {
			return n, true
		}
	}
	return Node{}, false
}

// Placement is where a user's data lives.
type Placement struct {
	User userdata.UserID
	Node string // the UD node's id
}

// Directory is the cluster's shared record of where things are: the node
// registry, and the UD node of every user, with the addresses that lead to
// each user and the domain aliases (so that a front finds a user's node
// from any address the user receives at). The UserDB on each UD node stays
// the authority for everything else about a user.
//
// Every method is safe for concurrent use and may block on the network.
// Addresses and domains are matched in lower case. Errors wrap ErrNotFound,
// ErrExists, ErrInvalid and ErrClosed; others (a lost connection) are the
// implementation's, and temporary.
type Directory interface {
	// Registry returns the node registry now.
	Registry(ctx context.Context) (Registry, error)
	// PutNode registers n, or replaces the node with its ID. Its Num
	// must not be another node's (ErrExists), and n must be valid
	// (ErrInvalid).
	PutNode(ctx context.Context, n Node) error
	// SetWeight sets a node's weight (0 to MaxWeight).
	SetWeight(ctx context.Context, id string, weight int) error
	// SetMasked masks a node, or unmasks it.
	SetMasked(ctx context.Context, id string, masked bool) error
	// RemoveNode takes a node out of the registry. The users placed on it
	// stay placed there. A node that is a group's Primary or Standby is
	// refused (ErrInvalid): it must be swapped out of its group first.
	// PutNode refuses to take the UD role from a group's member likewise.
	RemoveNode(ctx context.Context, id string) error
	// SwapGroup replaces group old with new atomically (compare-and-set),
	// bumping the registry's Version so that WatchRegistry reports it. A
	// zero old (Group{}) creates new.ID, which must not exist
	// (ErrExists); a group named after a registered node must have that
	// node as its Primary (ErrInvalid). Otherwise old.ID == new.ID and
	// the group must be exactly old now (ErrConflict otherwise,
	// ErrNotFound if it is gone); new.Epoch must be >= old.Epoch
	// (ErrInvalid); a new with an empty Primary (Group{ID: old.ID},
	// nothing else set) removes the group. new's Primary and Standby must
	// be registered nodes with the UD role and in no other group
	// (ErrInvalid). Of concurrent swaps from the same old, exactly one
	// succeeds. Registry.CheckSwap states the rules.
	SwapGroup(ctx context.Context, old, new Group) error
	// WatchRegistry calls fn with the registry now and again after each
	// change, promptly (within a second or two of the change, on any
	// node), until ctx is done, and then returns ctx's error. It keeps
	// going across lost connections, calling fn again once it has
	// reconnected. fn is called from one goroutine, one call at a time.
	WatchRegistry(ctx context.Context, fn func(Registry)) error

	// NextID allocates a number of the named sequence ("user", "unit"),
	// above every one it returned before; numbers are never reused, even
	// when the registration that took one fails.
	NextID(ctx context.Context, sequence string) (uint64, error)
	// PlaceUser records that user id, whose primary address is address,
	// lives on UD node node. The id and the address (as a primary
	// address or an alias) must be free (ErrExists).
	PlaceUser(ctx context.Context, id userdata.UserID, address, node string) error
	// RemoveUser forgets a user and its addresses; it undoes a
	// registration that the UD node refused.
	RemoveUser(ctx context.Context, id userdata.UserID) error
	// UserNode returns the UD node of user id.
	UserNode(ctx context.Context, id userdata.UserID) (string, error)
	// LookupAddress returns the user that address (a primary address or
	// an alias, not through a domain alias) belongs to, and its node.
	LookupAddress(ctx context.Context, address string) (Placement, error)
	// AddAddress records an alias of user id; the address must be free
	// (ErrExists) and the user known (ErrNotFound).
	AddAddress(ctx context.Context, address string, id userdata.UserID) error
	// RemoveAddress forgets an alias. A user's primary address is
	// removed only with the user (ErrInvalid).
	RemoveAddress(ctx context.Context, address string) error
	// PutDomainAlias records that alias is another name of domain.
	PutDomainAlias(ctx context.Context, alias, domain string) error
	// DomainAlias returns the domain alias is another name of
	// (ErrNotFound if it is none).
	DomainAlias(ctx context.Context, alias string) (string, error)

	// Close releases the Directory's resources; WatchRegistry calls in
	// progress return.
	Close() error
}
