package rpc

import (
	"context"
	"fmt"

	"google.golang.org/grpc"

	"github.com/mailsys/mailsys/cluster/rpc/pb"
	"github.com/mailsys/mailsys/userdata"
)

// maxPendingFrames bounds the frames received and not yet applied by a
// standby.
const maxPendingFrames = 256

// Follow makes replica follow group's primary, the node peer reached over
// conn, as its standby at epoch: it sends the replica's position, applies
// every frame the primary sends, and acknowledges after each run of frames
// made durable, so that one fsync covers many of the primary's commits. It
// returns when ctx ends (ctx's error), or with the error that ended the
// stream: one wrapping userdata.ErrFenced when peer is not the primary at
// epoch or later, userdata.ErrGap when the frames did not follow the
// replica's position (follow again), a *cluster.Unavailable when peer could
// not be reached.
func Follow(ctx context.Context, conn grpc.ClientConnInterface, peer, group string, epoch uint64, replica *userdata.Replica) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := pb.NewUDReplicationClient(conn).Follow(ctx)
	if err != nil {
		return fromStatus(ctx, peer, err)
	}
	if err := stream.Send(&pb.UDReplAck{Group: group, Epoch: epoch, Position: replica.Position()}); err != nil {
		_, err := stream.Recv() // the status the stream ended with
		return fromStatus(ctx, peer, err)
	}
	frames := make(chan *pb.UDReplFrame, maxPendingFrames)
	recvDone := make(chan error, 1)
	go func() {
		defer close(frames)
		for {
			f, err := stream.Recv()
			if err != nil {
				recvDone <- fromStatus(ctx, peer, err)
				return
			}
			select {
			case frames <- f:
			case <-ctx.Done():
				recvDone <- ctx.Err()
				return
			}
		}
	}()
	for {
		f, ok := <-frames
		if !ok {
			return <-recvDone
		}
		for {
			if err := replica.Apply(userdata.Frame{Kind: userdata.FrameKind(f.Kind), Seq: f.Seq, Data: f.Data}); err != nil {
				return fmt.Errorf("rpc: follow %s of %s: %w", group, peer, err)
			}
			var more bool
			select {
			case f, more = <-frames:
			default:
			}
			if !more {
				break
			}
		}
		pos, err := replica.Sync()
		if err != nil {
			return err
		}
		if err := stream.Send(&pb.UDReplAck{Position: pos}); err != nil {
			// The stream ended: the receiver has its status.
			for range frames {
			}
			return <-recvDone
		}
	}
}
