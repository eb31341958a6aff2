package rpc

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/mailsys/mailsys/cluster/rpc/pb"
	"github.com/mailsys/mailsys/userdata"
)

// RegisterUserDB serves db on s as the UserDB service, for the clients
// NewUserDB makes. db's optional capabilities (userdata.Watcher, Remover,
// KeywordLister, RecentClaimer, RefRewriter, Lister) are found by type assertion
// now; a call of one db lacks answers codes.Unimplemented. db stays its
// owner's: the server neither closes it nor keeps it past s's end.
//
// Every call runs with the client's context (its deadline and its end)
// and, when the client's context had an origin (userdata.WithOrigin),
// with a context carrying a token for it, which the events of the change
// report back to that client's watch streams. Errors cross as toStatus
// makes them.
func RegisterUserDB(s grpc.ServiceRegistrar, db userdata.UserDB) {
	pb.RegisterUserDBServer(s, newUserDBServer(db))
}

// userDBServer is the UserDB service over a userdata.UserDB.
type userDBServer struct {
	pb.UnimplementedUserDBServer
	be atomic.Pointer[udBackend] // the database served (UserDBSlot replaces it)

	ids     atomic.Uint64 // the last watch stream id given
	mu      sync.Mutex
	streams map[streamOwner]map[uint64]*eventQueue
}

// streamOwner is whose the watch streams of a barrier are: one client's,
// for one user.
type streamOwner struct {
	client uint64
	user   userdata.UserID
}

func newUserDBServer(db userdata.UserDB) *userDBServer {
	s := &userDBServer{streams: map[streamOwner]map[uint64]*eventQueue{}}
	s.setDB(db)
	return s
}

// udBackend is a database served and its capabilities.
type udBackend struct {
	db      userdata.UserDB
	watcher userdata.Watcher       // nil if db lacks it
	remover userdata.Remover       // nil if db lacks it
	kws     userdata.KeywordLister // nil if db lacks it
	recent  userdata.RecentClaimer // nil if db lacks it
	refs    userdata.RefRewriter   // nil if db lacks it
	lister  userdata.Lister        // nil if db lacks it
}

// setDB sets the database served: calls from now on go to db, those in
// progress finish with the one before.
func (s *userDBServer) setDB(db userdata.UserDB) {
	b := &udBackend{db: db}
	b.watcher, _ = db.(userdata.Watcher)
	b.remover, _ = db.(userdata.Remover)
	b.kws, _ = db.(userdata.KeywordLister)
	b.recent, _ = db.(userdata.RecentClaimer)
	b.refs, _ = db.(userdata.RefRewriter)
	b.lister, _ = db.(userdata.Lister)
	s.be.Store(b)
}

// cur returns the database served (set before any call reaches a handler).
func (s *userDBServer) cur() *udBackend { return s.be.Load() }

// call is the context to call the database with: ctx with the origin of
// the client's call, if it had one. client is the caller's id.
func (s *userDBServer) call(ctx context.Context) (_ context.Context, client uint64) {
	client, token := incoming(ctx)
	if token != 0 && client != 0 {
		ctx = userdata.WithOrigin(ctx, callOrigin{client: client, token: token})
	}
	return ctx, client
}

// changed puts in the trailer of a change that succeeded how many events
// each of the client's watch streams of user has been given, so that the
// client can wait for its watchers to have this change's. The database
// calls the watchers before the change returns, so those counts include
// its events.
func (s *userDBServer) changed(ctx context.Context, client uint64, user userdata.UserID) {
	if client == 0 {
		return
	}
	s.mu.Lock()
	set := s.streams[streamOwner{client, user}]
	var stack [4]barrier
	bs := stack[:0]
	for id, q := range set {
		bs = append(bs, barrier{stream: id, events: q.pushed.Load()})
	}
	s.mu.Unlock()
	if len(bs) > 0 {
		// An error means the stream is gone: nobody waits then.
		_ = grpc.SetTrailer(ctx, metadata.Pairs(mdBarrier, encodeBarriers(bs)))
	}
}

func unimplemented(what string) error {
	return status.Errorf(codes.Unimplemented, "rpc: the UD node's database does not implement %s", what)
}

// reply returns v, or the status of err.
func reply[T any](v T, err error) (T, error) {
	if err != nil {
		var zero T
		return zero, toStatus(err)
	}
	return v, nil
}

func empty(err error) (*pb.UDEmpty, error) { return reply(&pb.UDEmpty{}, err) }

// Accounts.

func (s *userDBServer) CreateDomain(ctx context.Context, m *pb.UDDomain) (*pb.UDEmpty, error) {
	ctx, _ = s.call(ctx)
	return empty(s.cur().db.CreateDomain(ctx, domainFromPB(m)))
}

func (s *userDBServer) Domain(ctx context.Context, m *pb.UDName) (*pb.UDDomain, error) {
	ctx, _ = s.call(ctx)
	d, err := s.cur().db.Domain(ctx, string(m.GetName()))
	return reply(domainToPB(d), err)
}

func (s *userDBServer) UpdateDomain(ctx context.Context, m *pb.UDDomain) (*pb.UDEmpty, error) {
	ctx, _ = s.call(ctx)
	return empty(s.cur().db.UpdateDomain(ctx, domainFromPB(m)))
}

func (s *userDBServer) AddDomainAlias(ctx context.Context, m *pb.UDDomainAlias) (*pb.UDEmpty, error) {
	ctx, _ = s.call(ctx)
	return empty(s.cur().db.AddDomainAlias(ctx, string(m.GetAlias()), string(m.GetDomain())))
}

func (s *userDBServer) CreateUnit(ctx context.Context, m *pb.UDUnit) (*pb.UDUnit, error) {
	ctx, _ = s.call(ctx)
	u, err := s.cur().db.CreateUnit(ctx, unitFromPB(m))
	return reply(unitToPB(u), err)
}

func (s *userDBServer) Unit(ctx context.Context, m *pb.UDUnitRef) (*pb.UDUnit, error) {
	ctx, _ = s.call(ctx)
	u, err := s.cur().db.Unit(ctx, userdata.UnitID(m.GetId()))
	return reply(unitToPB(u), err)
}

func (s *userDBServer) UpdateUnit(ctx context.Context, m *pb.UDUnit) (*pb.UDEmpty, error) {
	ctx, _ = s.call(ctx)
	return empty(s.cur().db.UpdateUnit(ctx, unitFromPB(m)))
}

func (s *userDBServer) DefineClass(ctx context.Context, m *pb.UDClass) (*pb.UDEmpty, error) {
	ctx, _ = s.call(ctx)
	return empty(s.cur().db.DefineClass(ctx, classFromPB(m)))
}

func (s *userDBServer) CreateUser(ctx context.Context, m *pb.UDNewUser) (*pb.UDUser, error) {
	ctx, _ = s.call(ctx)
	u, err := s.cur().db.CreateUser(ctx, newUserFromPB(m))
	return reply(userToPB(u), err)
}

func (s *userDBServer) User(ctx context.Context, m *pb.UDUserRef) (*pb.UDUser, error) {
	ctx, _ = s.call(ctx)
	u, err := s.cur().db.User(ctx, userdata.UserID(m.GetId()))
	return reply(userToPB(u), err)
}

func (s *userDBServer) LookupAddress(ctx context.Context, m *pb.UDName) (*pb.UDUser, error) {
	ctx, _ = s.call(ctx)
	u, err := s.cur().db.LookupAddress(ctx, string(m.GetName()))
	return reply(userToPB(u), err)
}

func (s *userDBServer) UpdateUser(ctx context.Context, m *pb.UDUserUpdate) (*pb.UDEmpty, error) {
	ctx, _ = s.call(ctx)
	return empty(s.cur().db.UpdateUser(ctx, userdata.UserID(m.GetId()), userUpdateFromPB(m)))
}

func (s *userDBServer) SetPassword(ctx context.Context, m *pb.UDSetPassword) (*pb.UDEmpty, error) {
	ctx, _ = s.call(ctx)
	return empty(s.cur().db.SetPassword(ctx, userdata.UserID(m.GetId()), string(m.GetPassword())))
}

func (s *userDBServer) AddAlias(ctx context.Context, m *pb.UDAlias) (*pb.UDEmpty, error) {
	ctx, _ = s.call(ctx)
	return empty(s.cur().db.AddAlias(ctx, string(m.GetAddress()), userdata.UserID(m.GetUser())))
}

func (s *userDBServer) RemoveAlias(ctx context.Context, m *pb.UDName) (*pb.UDEmpty, error) {
	ctx, _ = s.call(ctx)
	return empty(s.cur().db.RemoveAlias(ctx, string(m.GetName())))
}

func (s *userDBServer) Limits(ctx context.Context, m *pb.UDUserRef) (*pb.UDLimits, error) {
	ctx, _ = s.call(ctx)
	l, err := s.cur().db.Limits(ctx, userdata.UserID(m.GetId()))
	return reply(limitsToPB(l), err)
}

func (s *userDBServer) Usage(ctx context.Context, m *pb.UDUserRef) (*pb.UDUsage, error) {
	ctx, _ = s.call(ctx)
	u, err := s.cur().db.Usage(ctx, userdata.UserID(m.GetId()))
	return reply(&pb.UDUsage{Messages: u.Messages, Bytes: u.Bytes}, err)
}

// Authenticate answers an error that comes with a user (ErrDisabled,
// ErrProtocol) in the reply, beside the user.
func (s *userDBServer) Authenticate(ctx context.Context, m *pb.UDAuthRequest) (*pb.UDAuthReply, error) {
	ctx, _ = s.call(ctx)
	u, err := s.cur().db.Authenticate(ctx, string(m.GetAddress()), string(m.GetPassword()), userdata.Protocol(m.GetProtocol()))
	if err != nil && u.ID != 0 {
		sp := status.Convert(toStatus(err)).Proto()
		sp.Message = strings.ToValidUTF8(sp.Message, "\uFFFD") // a proto3 string
		if b, merr := proto.Marshal(sp); merr == nil {
			return &pb.UDAuthReply{User: userToPB(u), Status: b}, nil
		}
	}
	return reply(&pb.UDAuthReply{User: userToPB(u)}, err)
}

// Folders.

// folderBatch is how many folders, names or changes one stream message
// holds at most.
const folderBatch = 256

func (s *userDBServer) ListFolders(m *pb.UDUserRef, stream grpc.ServerStreamingServer[pb.UDFolders]) error {
	ctx, _ := s.call(stream.Context())
	batch := &pb.UDFolders{}
	err := s.cur().db.ListFolders(ctx, userdata.UserID(m.GetId()), func(f userdata.Folder) error {
		batch.Folders = append(batch.Folders, folderToPB(f))
		if len(batch.Folders) < folderBatch {
			return nil
		}
		err := stream.Send(batch)
		batch = &pb.UDFolders{}
		return err
	})
	if err == nil && len(batch.Folders) > 0 {
		err = stream.Send(batch)
	}
	return toStatus(err)
}

func (s *userDBServer) Folder(ctx context.Context, m *pb.UDFolderName) (*pb.UDFolder, error) {
	ctx, _ = s.call(ctx)
	f, err := s.cur().db.Folder(ctx, userdata.UserID(m.GetUser()), string(m.GetName()))
	return reply(folderToPB(f), err)
}

func (s *userDBServer) FolderByID(ctx context.Context, m *pb.UDFolderRef) (*pb.UDFolder, error) {
	ctx, _ = s.call(ctx)
	f, err := s.cur().db.FolderByID(ctx, userdata.UserID(m.GetUser()), userdata.FolderID(m.GetFolder()))
	return reply(folderToPB(f), err)
}

func (s *userDBServer) CreateFolder(ctx context.Context, m *pb.UDCreateFolder) (*pb.UDFolder, error) {
	ctx, _ = s.call(ctx)
	f, err := s.cur().db.CreateFolder(ctx, userdata.UserID(m.GetUser()), string(m.GetName()), string(m.GetSpecialUse()))
	return reply(folderToPB(f), err)
}

func (s *userDBServer) RenameFolder(ctx context.Context, m *pb.UDRenameFolder) (*pb.UDEmpty, error) {
	ctx, client := s.call(ctx)
	user := userdata.UserID(m.GetUser())
	err := s.cur().db.RenameFolder(ctx, user, string(m.GetFrom()), string(m.GetTo()))
	if err == nil {
		s.changed(ctx, client, user)
	}
	return empty(err)
}

func (s *userDBServer) DeleteFolder(ctx context.Context, m *pb.UDFolderName) (*pb.UDEmpty, error) {
	ctx, client := s.call(ctx)
	user := userdata.UserID(m.GetUser())
	err := s.cur().db.DeleteFolder(ctx, user, string(m.GetName()))
	if err == nil {
		s.changed(ctx, client, user)
	}
	return empty(err)
}

func (s *userDBServer) Subscribe(ctx context.Context, m *pb.UDSubscribe) (*pb.UDEmpty, error) {
	ctx, _ = s.call(ctx)
	return empty(s.cur().db.Subscribe(ctx, userdata.UserID(m.GetUser()), string(m.GetName()), m.GetSubscribed()))
}

func (s *userDBServer) Subscriptions(m *pb.UDUserRef, stream grpc.ServerStreamingServer[pb.UDNames]) error {
	ctx, _ := s.call(stream.Context())
	batch := &pb.UDNames{}
	err := s.cur().db.Subscriptions(ctx, userdata.UserID(m.GetId()), func(name string) error {
		batch.Names = append(batch.Names, []byte(name))
		if len(batch.Names) < folderBatch {
			return nil
		}
		err := stream.Send(batch)
		batch = &pb.UDNames{}
		return err
	})
	if err == nil && len(batch.Names) > 0 {
		err = stream.Send(batch)
	}
	return toStatus(err)
}
