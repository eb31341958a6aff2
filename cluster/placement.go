package cluster

import (
	"fmt"
	"sync"
)

// Placer chooses the node of a role that takes the next new thing (a user
// for RoleUD, a body for RoleMS) by weight, among the nodes that are
// unmasked, have a weight above 0 and are healthy; for RoleUD, among the
// nodes that serve users now (the primaries of groups and the UD nodes in
// no group: never a standby). It uses smooth weighted
// round robin (as nginx balances upstreams): over any run of picks the
// shares follow the weights to within one pick per node, and picks of one
// node are spread out rather than bunched. Weights and masks take effect
// at the next pick; nothing already placed moves.
//
// A Placer is safe for concurrent use. Each front keeps its own; together
// they follow the weights too, since each does.
type Placer struct {
	role Role
	mu   sync.Mutex
	cur  map[string]int // each node's running score, by id
}

// NewPlacer returns a Placer for the nodes of role.
func NewPlacer(role Role) *Placer { return &Placer{role: role, cur: map[string]int{}} }

// Pick returns the node that takes the next placement among reg's nodes of
// the Placer's role, skipping those healthy reports down (healthy may be
// nil: all are) and those in skip (nodes a caller already tried). It
// returns ErrNoNode when none is eligible.
func (p *Placer) Pick(reg Registry, healthy func(id string) bool, skip ...string) (Node, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	total, best := 0, -1
	for i, n := range reg.Nodes {
		if !p.eligible(reg, n, healthy, skip) {
			continue
		}
		total += n.Weight
		p.cur[n.ID] += n.Weight
		if best < 0 || p.cur[n.ID] > p.cur[reg.Nodes[best].ID] {
			best = i
		}
	}
	if best < 0 {
		return Node{}, fmt.Errorf("%w: no %s node is unmasked, weighted and healthy", ErrNoNode, p.role)
	}
	n := reg.Nodes[best]
	p.cur[n.ID] -= total
	if len(p.cur) > 2*len(reg.Nodes) {
		p.forget(reg) // nodes removed from the registry
	}
	return n, nil
}

func (p *Placer) eligible(reg Registry, n Node, healthy func(string) bool, skip []string) bool {
	if n.Roles&p.role == 0 || n.Masked || n.Weight <= 0 {
		return false
	}
	if p.role&RoleUD != 0 && !reg.serves(n) {
		return false
	}
	for _, s := range skip {
		if s == n.ID {
			return false
		}
	}
	return healthy == nil || healthy(n.ID)
}

func (p *Placer) forget(reg Registry) {
	for id := range p.cur {
		if _, ok := reg.Node(id); !ok {
			delete(p.cur, id)
		}
	}
}

// serves reports whether n is a UD node that serves users now: a group's
// primary, or a UD node in no group whose id names no group (a node that
// has left a group named after it serves nobody by that name, since
// Serving resolves the name to the group).
func (r Registry) serves(n Node) bool {
	if n.Roles&RoleUD == 0 {
		return false
	}
	if g, ok := r.GroupOf(n.ID); ok {
		return g.Primary == n.ID
	}
	_, named := r.Group(n.ID)
	return !named
}

// placementOf returns what a placement on UD node id records: the id of
// the group id is the primary of, or id itself.
func (r Registry) placementOf(id string) string {
	if g, ok := r.GroupOf(id); ok && g.Primary == id {
		return g.ID
	}
	return id
}
