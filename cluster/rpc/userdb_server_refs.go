package rpc

import (
	"fmt"

	"google.golang.org/grpc"

	"github.com/mailsys/mailsys/cluster/rpc/pb"
	"github.com/mailsys/mailsys/msstore"
	"github.com/mailsys/mailsys/userdata"
)

// RewriteRefs serves userdata.RefRewriter: each batch of the database's
// walk goes to the client, whose answer (the refs its fn replaced) is
// applied to the batch before the database writes it. A malformed answer
// (an index out of the batch, a ref that does not decode) ends the walk
// with ErrInvalid; so does a client that goes away, with its error.
func (s *userDBServer) RewriteRefs(stream grpc.BidiStreamingServer[pb.UDRefAnswer, pb.UDRefBatch]) error {
	rw := s.cur().refs // one database for the whole walk, even if the slot changes
	if rw == nil {
		return unimplemented("userdata.RefRewriter")
	}
	ctx, _ := s.call(stream.Context())
	n, err := rw.RewriteRefs(ctx, func(refs []msstore.Ref) error {
		batch := &pb.UDRefBatch{Refs: make([][]byte, len(refs))}
		for i, r := range refs {
			batch.Refs[i] = refBytes(r)
		}
		if err := stream.Send(batch); err != nil {
			return err
		}
		ans, err := stream.Recv()
		if err != nil {
			return err
		}
		for _, c := range ans.GetChanges() {
			if int(c.GetIndex()) >= len(refs) {
				return fmt.Errorf("%w: rpc: a ref change at %d of a batch of %d", userdata.ErrInvalid, c.GetIndex(), len(refs))
			}
			r, err := refFrom(c.GetRef())
			if err != nil {
				return err
			}
			refs[c.GetIndex()] = r
		}
		return nil
	})
	if serr := stream.Send(&pb.UDRefBatch{Done: true, Rewritten: uint64(n)}); serr != nil && err == nil {
		err = serr
	}
	return toStatus(err)
}
