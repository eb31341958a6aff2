package rpc

import (
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/mailsys/mailsys/cluster/rpc/pb"
	"github.com/mailsys/mailsys/userdata"
)

// ReplicationSource is what the replication server asks of the UD node it
// runs on.
type ReplicationSource interface {
	// Primary returns the DB of group for its standby, the node named
	// standby (the client certificate's), knowing epoch: the node must be
	// the group's primary at that epoch or a later one. Otherwise it
	// returns an error, wrapping userdata.ErrFenced when another node is
	// the primary now.
	Primary(group string, epoch uint64, standby string) (*userdata.DB, error)
}

// RegisterReplication serves the UDReplication service on s: a standby's
// Follow stream is fed by the DB that src names (userdata.DB.Follow) until
// either side ends it.
func RegisterReplication(s grpc.ServiceRegistrar, src ReplicationSource) {
	pb.RegisterUDReplicationServer(s, &replServer{src: src})
}

type replServer struct {
	pb.UnimplementedUDReplicationServer
	src ReplicationSource
}

func (s *replServer) Follow(stream grpc.BidiStreamingServer[pb.UDReplAck, pb.UDReplFrame]) error {
	hello, err := stream.Recv()
	if err != nil {
		return err
	}
	if hello.Group == "" {
		return status.Error(codes.InvalidArgument, "rpc: Follow: no group in the first message")
	}
	db, err := s.src.Primary(hello.Group, hello.Epoch, clientID(stream.Context()))
	if err != nil {
		return toStatus(err)
	}
	return toStatus(db.Follow(stream.Context(), hello.Position, replServerStream{stream}))
}

// replServerStream is the server's stream as a userdata.FollowStream.
type replServerStream struct {
	s grpc.BidiStreamingServer[pb.UDReplAck, pb.UDReplFrame]
}

func (r replServerStream) Send(f userdata.Frame) error {
	return r.s.Send(&pb.UDReplFrame{Kind: uint32(f.Kind), Seq: f.Seq, Data: f.Data})
}

func (r replServerStream) Recv() (uint64, error) {
	m, err := r.s.Recv()
	if err != nil {
		return 0, err
	}
	return m.Position, nil
}
