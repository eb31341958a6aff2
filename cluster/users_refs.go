package cluster

import (
	"context"
	"errors"
	"fmt"

	"github.com/mailsys/mailsys/msstore"
	"github.com/mailsys/mailsys/userdata"
)

var _ userdata.RefRewriter = (*Users)(nil)

// RewriteRefs implements userdata.RefRewriter over every UD node of the
// registry, one after the other, each with its own walk (a node's client
// must be a userdata.RefRewriter too). A node that fails (down, or
// without the capability) does not stop the others: RewriteRefs returns
// the entries rewritten on all of them and the nodes' errors joined, so
// that a repair walk can be run again once they are back. An error of fn
// ends the whole walk.
func (u *Users) RewriteRefs(ctx context.Context, fn func(refs []msstore.Ref) error) (int, error) {
	if u.isClosed() {
		return 0, userdata.ErrClosed
	}
	var fnErr error
	wrapped := func(refs []msstore.Ref) error {
		if err := fn(refs); err != nil {
			fnErr = err
			return err
		}
		return nil
	}
	total := 0
	var errs []error
	for _, n := range u.udNodes() {
		db, err := u.client(n.ID)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		rw, ok := db.(userdata.RefRewriter)
		if !ok {
			errs = append(errs, fmt.Errorf("cluster: UD node %s cannot rewrite refs", n.ID))
			continue
		}
		k, err := rw.RewriteRefs(ctx, wrapped)
		total += k
		if fnErr != nil {
			return total, fnErr
		}
		if err != nil {
			if ctx.Err() != nil {
				return total, err
			}
			errs = append(errs, fmt.Errorf("cluster: UD node %s: %w", n.ID, err))
		}
	}
	return total, errors.Join(errs...)
}
