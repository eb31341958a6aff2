package rpc

import (
	"context"

	"google.golang.org/grpc"

	"github.com/mailsys/mailsys/cluster/rpc/pb"
	"github.com/mailsys/mailsys/userdata"
)

// The server's Index calls and the optional capabilities but Watch.

// Batches of Messages and UIDs: a stream message is sent when it holds
// messageBatch messages or messageBatchBytes of them, or uidBatch UIDs.
const (
	messageBatch      = 256
	messageBatchBytes = 1 << 20
	uidBatch          = 1 << 16
)

func (s *userDBServer) Append(ctx context.Context, m *pb.UDAppend) (*pb.UDMessage, error) {
	ctx, client := s.call(ctx)
	nm, err := newMessageFromPB(m.GetMessage())
	if err != nil {
		return nil, toStatus(err)
	}
	user := userdata.UserID(m.GetUser())
	msg, err := s.cur().db.Append(ctx, user, userdata.FolderID(m.GetFolder()), nm)
	if err != nil {
		return nil, toStatus(err)
	}
	s.changed(ctx, client, user)
	return messageToPB(&msg), nil
}

// Messages sends the messages in batches as the database gives them, so
// that a large folder is never held whole; a batch waits for the client
// (gRPC's flow control) while the database's Messages waits in fn.
func (s *userDBServer) Messages(m *pb.UDMessagesRequest, stream grpc.ServerStreamingServer[pb.UDMessages]) error {
	ctx, _ := s.call(stream.Context())
	batch := &pb.UDMessages{}
	size := 0
	err := s.cur().db.Messages(ctx, userdata.UserID(m.GetUser()), userdata.FolderID(m.GetFolder()), setFromPB(m.GetSet()),
		func(msg *userdata.Message) error {
			// fn's Message is valid only during the call: copy its slices
			// (messageToPB has copied the keywords).
			pm := messageToPB(msg)
			pm.Envelope = append([]byte(nil), msg.Envelope...)
			pm.Structure = append([]byte(nil), msg.Structure...)
			batch.Messages = append(batch.Messages, pm)
			size += len(pm.Envelope) + len(pm.Structure) + 64
			if len(batch.Messages) < messageBatch && size < messageBatchBytes {
				return nil
			}
			err := stream.Send(batch)
			batch, size = &pb.UDMessages{}, 0
			return err
		})
	if err == nil && len(batch.Messages) > 0 {
		err = stream.Send(batch)
	}
	return toStatus(err)
}

// UIDs sends the folder's UIDs in batches of uidBatch, so that any folder
// fits in MaxMessageSize.
func (s *userDBServer) UIDs(m *pb.UDFolderRef, stream grpc.ServerStreamingServer[pb.UDUIDList]) error {
	ctx, _ := s.call(stream.Context())
	uids, err := s.cur().db.UIDs(ctx, userdata.UserID(m.GetUser()), userdata.FolderID(m.GetFolder()))
	if err != nil {
		return toStatus(err)
	}
	for len(uids) > 0 {
		n := min(len(uids), uidBatch)
		if err := stream.Send(&pb.UDUIDList{Uids: uidsToPB(uids[:n])}); err != nil {
			return err
		}
		uids = uids[n:]
	}
	return nil
}

func (s *userDBServer) StoreFlags(ctx context.Context, m *pb.UDStoreFlags) (*pb.UDStoreResult, error) {
	ctx, client := s.call(ctx)
	user := userdata.UserID(m.GetUser())
	res, err := s.cur().db.StoreFlags(ctx, user, userdata.FolderID(m.GetFolder()), setFromPB(m.GetSet()), userdata.FlagUpdate{
		Op: userdata.FlagOp(m.GetOp()), Flags: userdata.Flags(m.GetFlags()), Keywords: textsFromPB(m.GetKeywords()),
		UnchangedSince: m.GetUnchangedSince(),
	})
	if err != nil {
		return nil, toStatus(err)
	}
	s.changed(ctx, client, user)
	return &pb.UDStoreResult{Changed: messagesToPB(res.Changed), Skipped: uidsToPB(res.Skipped)}, nil
}

func (s *userDBServer) Copy(ctx context.Context, m *pb.UDCopy) (*pb.UDCopyResult, error) {
	return s.copyMove(ctx, m, s.cur().db.Copy)
}

func (s *userDBServer) Move(ctx context.Context, m *pb.UDCopy) (*pb.UDCopyResult, error) {
	return s.copyMove(ctx, m, s.cur().db.Move)
}

func (s *userDBServer) copyMove(ctx context.Context, m *pb.UDCopy,
	op func(context.Context, userdata.UserID, userdata.FolderID, userdata.UIDSet, userdata.FolderID) (userdata.CopyResult, error),
) (*pb.UDCopyResult, error) {
	ctx, client := s.call(ctx)
	user := userdata.UserID(m.GetUser())
	res, err := op(ctx, user, userdata.FolderID(m.GetFrom()), setFromPB(m.GetSet()), userdata.FolderID(m.GetTo()))
	if err != nil {
		return nil, toStatus(err)
	}
	s.changed(ctx, client, user)
	return &pb.UDCopyResult{UidValidity: res.UIDValidity, Source: uidsToPB(res.Source), Dest: uidsToPB(res.Dest)}, nil
}

func (s *userDBServer) Expunge(ctx context.Context, m *pb.UDSetRequest) (*pb.UDUIDList, error) {
	return s.expunge(ctx, m, s.cur().db.Expunge)
}

func (s *userDBServer) Remove(ctx context.Context, m *pb.UDSetRequest) (*pb.UDUIDList, error) {
	if s.cur().remover == nil {
		return nil, unimplemented("userdata.Remover")
	}
	return s.expunge(ctx, m, s.cur().remover.Remove)
}

func (s *userDBServer) expunge(ctx context.Context, m *pb.UDSetRequest,
	op func(context.Context, userdata.UserID, userdata.FolderID, userdata.UIDSet) ([]userdata.UID, error),
) (*pb.UDUIDList, error) {
	ctx, client := s.call(ctx)
	user := userdata.UserID(m.GetUser())
	uids, err := op(ctx, user, userdata.FolderID(m.GetFolder()), setFromPB(m.GetSet()))
	if err != nil {
		return nil, toStatus(err)
	}
	s.changed(ctx, client, user)
	return &pb.UDUIDList{Uids: uidsToPB(uids)}, nil
}

func (s *userDBServer) Changes(m *pb.UDChangesRequest, stream grpc.ServerStreamingServer[pb.UDChanges]) error {
	ctx, _ := s.call(stream.Context())
	batch := &pb.UDChanges{}
	err := s.cur().db.Changes(ctx, userdata.UserID(m.GetUser()), userdata.FolderID(m.GetFolder()), m.GetSince(),
		func(c userdata.Change) error {
			batch.Changes = append(batch.Changes, &pb.UDChange{Uid: uint32(c.UID), ModSeq: c.ModSeq, Expunged: c.Expunged})
			if len(batch.Changes) < messageBatch*4 {
				return nil
			}
			err := stream.Send(batch)
			batch = &pb.UDChanges{}
			return err
		})
	if err == nil && len(batch.Changes) > 0 {
		err = stream.Send(batch)
	}
	return toStatus(err)
}

func (s *userDBServer) Keywords(ctx context.Context, m *pb.UDFolderRef) (*pb.UDNames, error) {
	if s.cur().kws == nil {
		return nil, unimplemented("userdata.KeywordLister")
	}
	ctx, _ = s.call(ctx)
	kws, err := s.cur().kws.Keywords(ctx, userdata.UserID(m.GetUser()), userdata.FolderID(m.GetFolder()))
	return reply(&pb.UDNames{Names: textsToPB(kws)}, err)
}

func (s *userDBServer) ClaimRecent(ctx context.Context, m *pb.UDClaimRecent) (*pb.UDClaimed, error) {
	if s.cur().recent == nil {
		return nil, unimplemented("userdata.RecentClaimer")
	}
	ctx, _ = s.call(ctx)
	from, to, err := s.cur().recent.ClaimRecent(ctx, userdata.UserID(m.GetUser()), userdata.FolderID(m.GetFolder()), userdata.UID(m.GetUpto()))
	return reply(&pb.UDClaimed{From: uint32(from), To: uint32(to)}, err)
}
