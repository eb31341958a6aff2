package rpc

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/mailsys/mailsys/cluster"
	"github.com/mailsys/mailsys/cluster/rpc/pb"
	"github.com/mailsys/mailsys/userdata"
)

// UserDB is a remote UD node's userdata.UserDB, over a gRPC connection to
// the node's UserDB service (RegisterUserDB). It implements
// userdata.UserDB and the capabilities userdata.Watcher, Remover,
// KeywordLister, RecentClaimer and RefRewriter with their contracts (a
// node whose database lacks a capability answers its calls with an
// error), with these additions:
//
//   - A node that cannot be reached, or does not answer in time, gives an
//     error matching userdata.ErrUnavailable (a *cluster.Unavailable).
//     A call with a deadline is given a little less time than its
//     deadline, so that its error says so before the deadline passes; a
//     call without one is bounded by UserDBConfig.CallTimeout (for the
//     streaming calls, the wait for each batch).
//   - Origins (userdata.WithOrigin) cross as tokens; see Watch.
//   - A change made through this UserDB (Append, StoreFlags, Copy, Move,
//     Expunge, Remove, RenameFolder, DeleteFolder) returns once this
//     UserDB's watchers of the user have been given its events, as a local
//     database's are, or after UserDBConfig.WatchTimeout at the most.
//     Another client's watchers get them soon after, not before it
//     returns.
//   - FolderEvent.Hold is always nil: a hold cannot cross the wire.
//
// Its methods are safe for concurrent use. Close ends it (every call
// after returns userdata.ErrClosed) but not the connection, which is its
// owner's.
type UserDB struct {
	rpc     pb.UserDBClient
	peer    string
	cfg     UserDBConfig
	log     *slog.Logger
	id      string // the client's id, for the metadata
	origins originTable

	mu     sync.Mutex
	closed bool
	calls  sync.WaitGroup // the calls in progress

	watch watchState
}

var (
	_ cluster.UserDB         = (*UserDB)(nil)
	_ userdata.UserDB        = (*UserDB)(nil)
	_ userdata.Watcher       = (*UserDB)(nil)
	_ userdata.Remover       = (*UserDB)(nil)
	_ userdata.KeywordLister = (*UserDB)(nil)
	_ userdata.RecentClaimer = (*UserDB)(nil)
)

// UserDBConfig configures a UserDB client. The zero value (but Peer)
// means the defaults.
type UserDBConfig struct {
	// Peer is the node's id, named in the errors.
	Peer string
	// CallTimeout bounds a call whose context has no deadline: a unary
	// call as a whole, a streaming one (ListFolders, Messages...) each
	// wait for the next batch (the time its callback takes is not
	// counted). Past it the call fails with a *cluster.Unavailable. Zero
	// means 30 seconds; negative, no bound.
	CallTimeout time.Duration
	// WatchTimeout bounds how long Watch waits for the node to confirm
	// that the watch is registered, and how long a change waits for its
	// events to reach this client's watchers. Zero means 5 seconds.
	WatchTimeout time.Duration
	// Logger receives the watch streams' breaks and returns. Nil means
	// slog.Default().
	Logger *slog.Logger
}

// Defaults of UserDBConfig.
const (
	defaultCallTimeout  = 30 * time.Second
	defaultWatchTimeout = 5 * time.Second
)

// NewUserDB returns the UserDB of node peer (its id, for errors) over conn,
// with the default UserDBConfig. conn stays its owner's, to close after
// the UserDB.
func NewUserDB(conn *grpc.ClientConn, peer string) *UserDB {
	return NewUserDBWith(conn, UserDBConfig{Peer: peer})
}

// NewUserDBWith returns the UserDB over conn configured by cfg, which it
// copies. conn stays its owner's, to close after the UserDB.
func NewUserDBWith(conn *grpc.ClientConn, cfg UserDBConfig) *UserDB {
	if cfg.CallTimeout == 0 {
		cfg.CallTimeout = defaultCallTimeout
	}
	if cfg.WatchTimeout <= 0 {
		cfg.WatchTimeout = defaultWatchTimeout
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	var b [8]byte
	rand.Read(b[:]) // never fails
	id := binary.BigEndian.Uint64(b[:]) | 1
	c := &UserDB{rpc: pb.NewUserDBClient(conn), peer: cfg.Peer, cfg: cfg, log: log.With("peer", cfg.Peer),
		id: strconv.FormatUint(id, 10)}
	c.watch.init()
	return c
}

// Close waits for the calls in progress, then ends the UserDB and its
// watches: every call after it (and every call a callback makes once Close
// has begun) returns userdata.ErrClosed, and no watcher is called after
// it returns. A second Close returns ErrClosed. The connection stays open.
func (c *UserDB) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return userdata.ErrClosed
	}
	c.closed = true
	c.mu.Unlock()
	c.calls.Wait()
	c.watch.close()
	return nil
}

// begin starts a call: ctx's error if it is done, ErrClosed after Close;
// else the context to make the gRPC call with (the client's metadata and
// the bounded deadline) and the function that ends the call. A streaming
// call gets no CallTimeout here: it bounds each batch itself.
func (c *UserDB) begin(ctx context.Context, streaming bool) (context.Context, func(), error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, nil, userdata.ErrClosed
	}
	c.calls.Add(1)
	c.mu.Unlock()
	cctx, cancel := ctx, context.CancelFunc(func() {})
	if d, ok := ctx.Deadline(); ok {
		// Stop a little before the caller's deadline, so that a node
		// that does not answer is reported as unavailable in time.
		margin := min(time.Until(d)/20, 250*time.Millisecond)
		cctx, cancel = context.WithDeadline(ctx, d.Add(-margin))
	} else if !streaming && c.cfg.CallTimeout > 0 {
		cctx, cancel = context.WithTimeout(ctx, c.cfg.CallTimeout)
	}
	cctx = c.origins.outgoing(cctx, c.id)
	return cctx, func() { cancel(); c.calls.Done() }, nil
}

// err turns a gRPC call's error into the UserDB's (see fromStatus); ctx is
// the caller's.
func (c *UserDB) err(ctx context.Context, err error) error {
	return fromStatus(ctx, c.peer, err)
}

// call makes a unary call.
func call[Q, R any](c *UserDB, ctx context.Context, rpc func(context.Context, Q, ...grpc.CallOption) (R, error), req Q) (R, error) {
	var zero R
	cctx, done, err := c.begin(ctx, false)
	if err != nil {
		return zero, err
	}
	defer done()
	resp, err := rpc(cctx, req)
	if err != nil {
		return zero, c.err(ctx, err)
	}
	return resp, nil
}

// change makes a unary call that changes folders, and waits for its
// events to reach this client's watchers (see UserDB).
func change[Q, R any](c *UserDB, ctx context.Context, rpc func(context.Context, Q, ...grpc.CallOption) (R, error), req Q) (R, error) {
	var zero R
	cctx, done, err := c.begin(ctx, false)
	if err != nil {
		return zero, err
	}
	defer done()
	var md metadata.MD
	resp, err := rpc(cctx, req, grpc.Trailer(&md))
	if err != nil {
		return zero, c.err(ctx, err)
	}
	c.watch.await(ctx, decodeBarriers(md), c.cfg.WatchTimeout, c.log)
	return resp, nil
}

// stream makes a server-streaming call and calls each with every message,
// on the calling goroutine; each's error ends the call (the stream is
// cancelled) and is returned as it is.
func stream[Q, R any](c *UserDB, ctx context.Context, rpc func(context.Context, Q, ...grpc.CallOption) (grpc.ServerStreamingClient[R], error),
	req Q, each func(*R) error,
) error {
	cctx, done, err := c.begin(ctx, true)
	if err != nil {
		return err
	}
	defer done()
	cctx, cancel := context.WithCancelCause(cctx)
	defer cancel(nil)
	// idle bounds each wait for the node's next message.
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
	st, err := rpc(cctx, req)
	if err != nil {
		return fail(err)
	}
	for {
		if idle != nil {
			idle.Reset(c.cfg.CallTimeout)
		}
		m, err := st.Recv()
		if idle != nil {
			idle.Stop()
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fail(err)
		}
		if err := each(m); err != nil {
			return err
		}
	}
}

// Accounts.

// CreateDomain implements userdata.Accounts.
func (c *UserDB) CreateDomain(ctx context.Context, d userdata.Domain) error {
	_, err := call(c, ctx, c.rpc.CreateDomain, domainToPB(d))
	return err
}

// Domain implements userdata.Accounts.
func (c *UserDB) Domain(ctx context.Context, name string) (userdata.Domain, error) {
	d, err := call(c, ctx, c.rpc.Domain, &pb.UDName{Name: []byte(name)})
	if err != nil {
		return userdata.Domain{}, err
	}
	return domainFromPB(d), nil
}

// UpdateDomain implements userdata.Accounts.
func (c *UserDB) UpdateDomain(ctx context.Context, d userdata.Domain) error {
	_, err := call(c, ctx, c.rpc.UpdateDomain, domainToPB(d))
	return err
}

// AddDomainAlias implements userdata.Accounts.
func (c *UserDB) AddDomainAlias(ctx context.Context, alias, domain string) error {
	_, err := call(c, ctx, c.rpc.AddDomainAlias, &pb.UDDomainAlias{Alias: []byte(alias), Domain: []byte(domain)})
	return err
}

// CreateUnit implements userdata.Accounts; u.ID, when not 0, is sent.
func (c *UserDB) CreateUnit(ctx context.Context, u userdata.OrgUnit) (userdata.OrgUnit, error) {
	r, err := call(c, ctx, c.rpc.CreateUnit, unitToPB(u))
	if err != nil {
		return userdata.OrgUnit{}, err
	}
	return unitFromPB(r), nil
}

// Unit implements userdata.Accounts.
func (c *UserDB) Unit(ctx context.Context, id userdata.UnitID) (userdata.OrgUnit, error) {
	r, err := call(c, ctx, c.rpc.Unit, &pb.UDUnitRef{Id: uint64(id)})
	if err != nil {
		return userdata.OrgUnit{}, err
	}
	return unitFromPB(r), nil
}

// UpdateUnit implements userdata.Accounts.
func (c *UserDB) UpdateUnit(ctx context.Context, u userdata.OrgUnit) error {
	_, err := call(c, ctx, c.rpc.UpdateUnit, unitToPB(u))
	return err
}

// DefineClass implements userdata.Accounts.
func (c *UserDB) DefineClass(ctx context.Context, cl userdata.ServiceClass) error {
	_, err := call(c, ctx, c.rpc.DefineClass, classToPB(cl))
	return err
}

// CreateUser implements userdata.Accounts; u.ID, when not 0, is sent. The
// password crosses the (mutual TLS) connection and is hashed on the node.
func (c *UserDB) CreateUser(ctx context.Context, u userdata.NewUser) (userdata.User, error) {
	r, err := call(c, ctx, c.rpc.CreateUser, newUserToPB(u))
	if err != nil {
		return userdata.User{}, err
	}
	return userFromPB(r), nil
}

// User implements userdata.Accounts.
func (c *UserDB) User(ctx context.Context, id userdata.UserID) (userdata.User, error) {
	r, err := call(c, ctx, c.rpc.User, &pb.UDUserRef{Id: uint64(id)})
	if err != nil {
		return userdata.User{}, err
	}
	return userFromPB(r), nil
}

// LookupAddress implements userdata.Accounts.
func (c *UserDB) LookupAddress(ctx context.Context, address string) (userdata.User, error) {
	r, err := call(c, ctx, c.rpc.LookupAddress, &pb.UDName{Name: []byte(address)})
	if err != nil {
		return userdata.User{}, err
	}
	return userFromPB(r), nil
}

// UpdateUser implements userdata.Accounts.
func (c *UserDB) UpdateUser(ctx context.Context, id userdata.UserID, u userdata.UserUpdate) error {
	_, err := call(c, ctx, c.rpc.UpdateUser, userUpdateToPB(id, u))
	return err
}

// SetPassword implements userdata.Accounts.
func (c *UserDB) SetPassword(ctx context.Context, id userdata.UserID, password string) error {
	_, err := call(c, ctx, c.rpc.SetPassword, &pb.UDSetPassword{Id: uint64(id), Password: []byte(password)})
	return err
}

// AddAlias implements userdata.Accounts.
func (c *UserDB) AddAlias(ctx context.Context, address string, id userdata.UserID) error {
	_, err := call(c, ctx, c.rpc.AddAlias, &pb.UDAlias{Address: []byte(address), User: uint64(id)})
	return err
}

// RemoveAlias implements userdata.Accounts.
func (c *UserDB) RemoveAlias(ctx context.Context, address string) error {
	_, err := call(c, ctx, c.rpc.RemoveAlias, &pb.UDName{Name: []byte(address)})
	return err
}

// Limits implements userdata.Accounts.
func (c *UserDB) Limits(ctx context.Context, id userdata.UserID) (userdata.Limits, error) {
	r, err := call(c, ctx, c.rpc.Limits, &pb.UDUserRef{Id: uint64(id)})
	if err != nil {
		return userdata.Limits{}, err
	}
	return limitsFromPB(r), nil
}

// Usage implements userdata.Accounts.
func (c *UserDB) Usage(ctx context.Context, id userdata.UserID) (userdata.Usage, error) {
	r, err := call(c, ctx, c.rpc.Usage, &pb.UDUserRef{Id: uint64(id)})
	if err != nil {
		return userdata.Usage{}, err
	}
	return userdata.Usage{Messages: r.GetMessages(), Bytes: r.GetBytes()}, nil
}

// Authenticate implements userdata.Authenticator; the password crosses
// the (mutual TLS) connection and is checked on the node, under its
// limiter and its cache of verified logins. On ErrDisabled and
// ErrProtocol the user is returned beside the error, as locally.
func (c *UserDB) Authenticate(ctx context.Context, address, password string, p userdata.Protocol) (userdata.User, error) {
	r, err := call(c, ctx, c.rpc.Authenticate, &pb.UDAuthRequest{Address: []byte(address), Password: []byte(password), Protocol: uint32(p)})
	if err != nil {
		return userdata.User{}, err
	}
	u := userFromPB(r.GetUser())
	if len(r.GetStatus()) > 0 {
		var sp spb.Status
		if err := proto.Unmarshal(r.GetStatus(), &sp); err != nil {
			return userdata.User{}, fmt.Errorf("rpc: node %s: Authenticate's error: %w", c.peer, err)
		}
		return u, c.err(ctx, status.FromProto(&sp).Err())
	}
	return u, nil
}
