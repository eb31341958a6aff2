package cluster

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/mailsys/mailsys/userdata"
)

// The userdata.Lister of Users, for administration. Domains, units and
// classes are on every UD node, so one that answers lists them; a
// domain's users are spread over the UD nodes, so ListUsers merges the
// pages of every serving node and DomainUsage sums them: both need every
// serving UD node to answer (a *Unavailable otherwise, never a list or a
// total silently short of a node's users).

var _ userdata.Lister = (*Users)(nil)

// errNoLister is wrapped by the error of a UD node whose database does
// not list.
var errNoLister = errors.New("cluster: the UD node's database is not a userdata.Lister")

// listerOf returns db's Lister.
func listerOf(db UserDB) (userdata.Lister, error) {
	l, ok := db.(userdata.Lister)
	if !ok {
		return nil, fmt.Errorf("%w: %w", errors.ErrUnsupported, errNoLister)
	}
	return l, nil
}

// anyLister is anyNode for the Lister of a node.
func (u *Users) anyLister(fn func(userdata.Lister) error) error {
	return u.anyNode(func(db UserDB) error {
		l, err := listerOf(db)
		if err != nil {
			return err
		}
		return fn(l)
	})
}

// ListDomains lists the domains from any UD node.
func (u *Users) ListDomains(ctx context.Context, after string, limit int) (ds []userdata.Domain, err error) {
	err = u.anyLister(func(l userdata.Lister) error {
		ds, err = l.ListDomains(ctx, after, limit)
		return err
	})
	return ds, err
}

// ListUnits lists the domain's units from any UD node.
func (u *Users) ListUnits(ctx context.Context, domain string) (us []userdata.OrgUnit, err error) {
	err = u.anyLister(func(l userdata.Lister) error {
		us, err = l.ListUnits(ctx, domain)
		return err
	})
	return us, err
}

// ListClasses lists the service classes from any UD node.
func (u *Users) ListClasses(ctx context.Context) (cs []userdata.ServiceClass, err error) {
	err = u.anyLister(func(l userdata.Lister) error {
		cs, err = l.ListClasses(ctx)
		return err
	})
	return cs, err
}

// ListUsers asks every serving UD node for its page of q, all at once,
// and merges them by address, keeping the first q.Limit: each node's page
// is in address order and holds every user of that node before the
// merged page's last, so the merge misses none. Every serving node must
// answer.
func (u *Users) ListUsers(ctx context.Context, q userdata.UserQuery) ([]userdata.User, error) {
	switch {
	case q.Limit < 0:
		return nil, fmt.Errorf("%w: cluster: negative limit %d", userdata.ErrInvalid, q.Limit)
	case q.Limit == 0 || q.Limit > userdata.MaxList:
		q.Limit = userdata.MaxList
	}
	pages, err := eachServing(u, func(l userdata.Lister) ([]userdata.User, error) { return l.ListUsers(ctx, q) })
	if err != nil {
		return nil, err
	}
	var all []userdata.User
	for _, p := range pages {
		all = append(all, p...)
	}
	slices.SortFunc(all, func(a, b userdata.User) int { return strings.Compare(a.Address, b.Address) })
	all = slices.CompactFunc(all, func(a, b userdata.User) bool { return a.ID == b.ID })
	return all[:min(len(all), q.Limit)], nil
}

// DomainUsage sums the domain's totals over every serving UD node.
func (u *Users) DomainUsage(ctx context.Context, domain string) (userdata.DomainUsage, error) {
	parts, err := eachServing(u, func(l userdata.Lister) (userdata.DomainUsage, error) { return l.DomainUsage(ctx, domain) })
	if err != nil {
		return userdata.DomainUsage{}, err
	}
	var sum userdata.DomainUsage
	for _, p := range parts {
		sum.Users += p.Users
		sum.Disabled += p.Disabled
		sum.Messages += p.Messages
		sum.Bytes += p.Bytes
	}
	return sum, nil
}

// eachServing calls fn with the Lister of every serving UD node at once
// and returns their results, or the first error in node order (a node
// that is down: a *Unavailable).
func eachServing[T any](u *Users, fn func(userdata.Lister) (T, error)) ([]T, error) {
	if u.isClosed() {
		return nil, userdata.ErrClosed
	}
	nodes := u.udNodes()
	if len(nodes) == 0 {
		return nil, &Unavailable{Peer: "ud", Err: ErrNoNode}
	}
	out := make([]T, len(nodes))
	errs := make([]error, len(nodes))
	var wg sync.WaitGroup
	for i, n := range nodes {
		if !u.peers.Healthy(n.ID) {
			errs[i] = &Unavailable{Peer: n.ID, Err: errors.New("not answering its heartbeat")}
			continue
		}
		wg.Go(func() {
			db, err := u.peers.UserDB(n)
			var l userdata.Lister
			if err == nil {
				l, err = listerOf(db)
			}
			if err == nil {
				out[i], err = fn(l)
			}
			if err != nil {
				errs[i] = fmt.Errorf("UD node %s: %w", n.ID, err)
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// DeleteUser deletes the user on its node, then removes it and its
// addresses from the Directory and forgets its placement, so that its
// addresses are free for new users. A user its node no longer has (a
// deletion that failed before the Directory's turn) is removed from the
// Directory too, and gives ErrNotFound.
func (u *Users) DeleteUser(ctx context.Context, id userdata.UserID) error {
	db, err := u.user(ctx, id)
	if err != nil {
		return err
	}
	l, err := listerOf(db)
	if err != nil {
		return err
	}
	err = l.DeleteUser(ctx, id)
	if err != nil && !errors.Is(err, userdata.ErrNotFound) {
		return err
	}
	if derr := u.dir.RemoveUser(ctx, id); derr != nil && !errors.Is(derr, ErrNotFound) {
		return dirErr(derr)
	}
	u.mu.Lock()
	delete(u.nodeOf, id)
	u.mu.Unlock()
	return err
}
