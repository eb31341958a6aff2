package rpc

import (
	"context"
	"strings"
	"sync/atomic"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/mailsys/mailsys/cluster/rpc/pb"
	"github.com/mailsys/mailsys/userdata"
)

// UserDBSlot is a UserDB service whose database comes later: a UD standby
// serves its listener from the start (replication, the heartbeat's
// checks) and sets the database when it is promoted. Until Set, every call
// of the UserDB service fails with codes.Unavailable, which clients read as
// a *cluster.Unavailable. Make one with NewUserDBSlot, give its
// ServerOptions to NewServer, Register it, then Set it (again when the
// node takes over another time).
type UserDBSlot struct {
	srv     *userDBServer
	ready   atomic.Bool
	refusal atomic.Pointer[error] // why calls are refused (Refuse), if set
}

// NewUserDBSlot returns an empty slot.
func NewUserDBSlot() *UserDBSlot {
	return &UserDBSlot{srv: &userDBServer{streams: map[streamOwner]map[uint64]*eventQueue{}}}
}

// ServerOptions are the interceptors that hold the UserDB service's calls
// back until Set; pass them to NewServer.
func (l *UserDBSlot) ServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{grpc.ChainUnaryInterceptor(l.unary), grpc.ChainStreamInterceptor(l.stream)}
}

// Register registers the UserDB service on s.
func (l *UserDBSlot) Register(s grpc.ServiceRegistrar) { pb.RegisterUserDBServer(s, l.srv) }

// Set makes the service serve db (its capabilities found as
// RegisterUserDB finds them), from the next call on; calls in progress
// finish with the database before.
func (l *UserDBSlot) Set(db userdata.UserDB) {
	l.srv.setDB(db)
	l.refusal.Store(nil)
	l.ready.Store(true)
}

// Refuse makes every call of the UserDB service fail with err (as
// toStatus sends it: userdata.ErrFenced by name, say) until the next Set:
// a primary fenced refuses its clients this way while it closes its
// database and becomes a standby.
func (l *UserDBSlot) Refuse(err error) {
	l.refusal.Store(&err)
	l.ready.Store(false)
}

var userDBPrefix = "/" + pb.UserDB_ServiceDesc.ServiceName + "/"

func (l *UserDBSlot) check(method string) error {
	if !strings.HasPrefix(method, userDBPrefix) || l.ready.Load() {
		return nil
	}
	if err := l.refusal.Load(); err != nil {
		return toStatus(*err)
	}
	return status.Error(codes.Unavailable, "rpc: this UD node is a standby: it serves no UserDB calls")
}

func (l *UserDBSlot) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	if err := l.check(info.FullMethod); err != nil {
		return nil, err
	}
	return h(ctx, req)
}

func (l *UserDBSlot) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	if err := l.check(info.FullMethod); err != nil {
		return err
	}
	return h(srv, ss)
}
