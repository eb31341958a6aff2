package rpc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"github.com/mailsys/mailsys/cluster"
	"github.com/mailsys/mailsys/cluster/rpc/pb"
	"github.com/mailsys/mailsys/msstore"
	"github.com/mailsys/mailsys/userdata"
)

var _ userdata.RefRewriter = (*UserDB)(nil)

// RewriteRefs implements userdata.RefRewriter over the node's database
// (Unimplemented if it lacks it): fn runs here, on each batch the node
// sends, and its replacements go back for the node to write. Each wait
// for the node's next batch is bounded by UserDBConfig.CallTimeout (the
// time fn takes is not counted). After an error of fn, or of the
// connection, the count of the entries the node rewrote is not known and
// RewriteRefs returns 0 with the error; the batches fn had finished stay
// written.
func (c *UserDB) RewriteRefs(ctx context.Context, fn func(refs []msstore.Ref) error) (int, error) {
	cctx, done, err := c.begin(ctx, true)
	if err != nil {
		return 0, err
	}
	defer done()
	cctx, cancel := context.WithCancelCause(cctx)
	defer cancel(nil)
	var idle *time.Timer
	var timedOut atomic.Bool
	if c.cfg.CallTimeout > 0 {
		idle = time.AfterFunc(c.cfg.CallTimeout, func() {
			timedOut.Store(true)
			// A cause matching DeadlineExceeded: the breaker counts the
			// peer's silence as a failure (see the Storage client's watchdog).
			cancel(fmt.Errorf("rpc: no answer within %v: %w", c.cfg.CallTimeout, context.DeadlineExceeded))
		})
		defer idle.Stop()
	}
	fail := func(err error) error {
		if timedOut.Load() && ctx.Err() == nil {
			return &cluster.Unavailable{Peer: c.peer, Err: fmt.Errorf("no answer within %v", c.cfg.CallTimeout)}
		}
		return c.err(ctx, err)
	}
	st, err := c.rpc.RewriteRefs(cctx)
	if err != nil {
		return 0, fail(err)
	}
	var refs, orig []msstore.Ref
	n, ended := 0, false
	for {
		if idle != nil {
			idle.Reset(c.cfg.CallTimeout)
		}
		m, err := st.Recv()
		if idle != nil {
			idle.Stop()
		}
		if errors.Is(err, io.EOF) {
			if !ended {
				return 0, fail(io.ErrUnexpectedEOF)
			}
			return n, nil
		}
		if err != nil {
			return n, fail(err)
		}
		if m.GetDone() {
			n, ended = int(m.GetRewritten()), true
			continue
		}
		refs, orig = refs[:0], orig[:0]
		for _, b := range m.GetRefs() {
			r, err := refFrom(b)
			if err != nil {
				return 0, err
			}
			refs = append(refs, r)
		}
		orig = append(orig, refs...)
		if err := fn(refs); err != nil {
			return 0, err
		}
		ans := &pb.UDRefAnswer{}
		for i := range refs {
			if refs[i] != orig[i] {
				ans.Changes = append(ans.Changes, &pb.UDRefChange{Index: uint32(i), Ref: refBytes(refs[i])})
			}
		}
		if err := st.Send(ans); err != nil && !errors.Is(err, io.EOF) {
			return 0, fail(err)
		}
	}
}
