package rpc

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"google.golang.org/grpc"

	"github.com/mailsys/mailsys/cluster"
	"github.com/mailsys/mailsys/cluster/rpc/pb"
	"github.com/mailsys/mailsys/userdata"
)

// Directory is a remote cluster.Directory, over a gRPC connection to the
// Directory service of the node that holds it (RegisterDirectory). It
// implements cluster.Directory with its contract, and
// cluster.SequenceAdvancer (a node whose Directory lacks it answers
// AdvanceID with an error), and:
//
//   - A node that cannot be reached, or does not answer in time, gives an
//     error matching cluster.IsUnavailable (a *cluster.Unavailable). A
//     call with a deadline is given a little less time than its deadline,
//     so that its error says so before the deadline passes; a call
//     without one is bounded by DirectoryConfig.CallTimeout.
//   - WatchRegistry holds a server stream open. When it breaks (the node
//     restarts, the connection is cut, keepalives find the node gone), it
//     opens it again, waiting 100 ms after the first failure and doubling
//     up to 2 s between tries, and calls fn with the registry the node
//     sends at once on the new stream, so fn sees every change made while
//     the stream was down once it is back.
//
// Its methods are safe for concurrent use. Close ends it (calls after it,
// and the WatchRegistry calls in progress, return an error wrapping
// cluster.ErrClosed) but not the connection, which is its owner's.
type Directory struct {
	rpc  pb.DirectoryClient
	peer string
	cfg  DirectoryConfig
	log  *slog.Logger

	mu     sync.Mutex
	closed bool
	done   chan struct{} // closed by Close
}

var (
	_ cluster.Directory        = (*Directory)(nil)
	_ cluster.SequenceAdvancer = (*Directory)(nil)
)

// DirectoryConfig configures a Directory client. The zero value (but
// Peer) means the defaults.
type DirectoryConfig struct {
	// Peer is the id of the node that serves the Directory, named in the
	// errors.
	Peer string
	// CallTimeout bounds a call whose context has no deadline (not
	// WatchRegistry, which lasts as long as its context). Past it the call
	// fails with a *cluster.Unavailable. Zero means 5 seconds; negative,
	// no bound.
	CallTimeout time.Duration
	// Logger receives the breaks of WatchRegistry's stream. Nil means
	// slog.Default().
	Logger *slog.Logger
}

// Defaults and bounds of a Directory client.
const (
	defaultDirCallTimeout = 5 * time.Second
	watchMinBackoff       = 100 * time.Millisecond
	watchMaxBackoff       = 2 * time.Second
)

// NewDirectory returns the Directory served by node peer (its id, for
// errors) over conn, with the default DirectoryConfig. conn stays its
// owner's, to close after the Directory.
func NewDirectory(conn *grpc.ClientConn, peer string) *Directory {
	return NewDirectoryWith(conn, DirectoryConfig{Peer: peer})
}

// NewDirectoryWith returns the Directory over conn configured by cfg,
// which it copies. conn stays its owner's, to close after the Directory.
func NewDirectoryWith(conn *grpc.ClientConn, cfg DirectoryConfig) *Directory {
	if cfg.CallTimeout == 0 {
		cfg.CallTimeout = defaultDirCallTimeout
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Directory{rpc: pb.NewDirectoryClient(conn), peer: cfg.Peer, cfg: cfg,
		log: log.With("component", "directory-client", "peer", cfg.Peer), done: make(chan struct{})}
}

// Close ends the Directory: WatchRegistry calls in progress return (once
// their fn, if running, has), and every call after Close returns an error
// wrapping cluster.ErrClosed, as does a second Close. Unary calls in
// progress finish as they would have. The connection stays open.
func (c *Directory) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return c.errClosed()
	}
	c.closed = true
	close(c.done)
	return nil
}

func (c *Directory) errClosed() error {
	return fmt.Errorf("rpc: directory of node %s: %w", c.peer, cluster.ErrClosed)
}

func (c *Directory) isClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

// begin starts a unary call: ctx's error if it is done, ErrClosed after
// Close; else the context to make the gRPC call with (its deadline
// bounded) and the function that ends it.
func (c *Directory) begin(ctx context.Context) (context.Context, context.CancelFunc, error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	if c.isClosed() {
		return nil, nil, c.errClosed()
	}
	if d, ok := ctx.Deadline(); ok {
		// Stop a little before the caller's deadline, so that a node
		// that does not answer is reported as unavailable in time.
		margin := min(time.Until(d)/20, 250*time.Millisecond)
		cctx, cancel := context.WithDeadline(ctx, d.Add(-margin))
		return cctx, cancel, nil
	}
	if c.cfg.CallTimeout > 0 {
		cctx, cancel := context.WithTimeout(ctx, c.cfg.CallTimeout)
		return cctx, cancel, nil
	}
	return ctx, func() {}, nil
}

// dirCall makes a unary call of c's service.
func dirCall[Q, R any](c *Directory, ctx context.Context, rpc func(context.Context, Q, ...grpc.CallOption) (R, error), req Q) (R, error) {
	var zero R
	cctx, cancel, err := c.begin(ctx)
	if err != nil {
		return zero, err
	}
	defer cancel()
	resp, err := rpc(cctx, req)
	if err != nil {
		return zero, fromStatus(ctx, c.peer, err)
	}
	return resp, nil
}

// Registry returns the node registry now.
func (c *Directory) Registry(ctx context.Context) (cluster.Registry, error) {
	m, err := dirCall(c, ctx, c.rpc.Registry, dirEmpty)
	if err != nil {
		return cluster.Registry{}, err
	}
	return registryFromPB(m), nil
}

// PutNode registers n, or replaces the node with its ID.
func (c *Directory) PutNode(ctx context.Context, n cluster.Node) error {
	_, err := dirCall(c, ctx, c.rpc.PutNode, nodeToPB(n))
	return err
}

// SetWeight sets a node's weight.
func (c *Directory) SetWeight(ctx context.Context, id string, weight int) error {
	_, err := dirCall(c, ctx, c.rpc.SetWeight, &pb.DirSetWeightRequest{Id: []byte(id), Weight: int64(weight)})
	return err
}

// SetMasked masks a node, or unmasks it.
func (c *Directory) SetMasked(ctx context.Context, id string, masked bool) error {
	_, err := dirCall(c, ctx, c.rpc.SetMasked, &pb.DirSetMaskedRequest{Id: []byte(id), Masked: masked})
	return err
}

// RemoveNode takes a node out of the registry.
func (c *Directory) RemoveNode(ctx context.Context, id string) error {
	_, err := dirCall(c, ctx, c.rpc.RemoveNode, &pb.DirNodeID{Id: []byte(id)})
	return err
}

// SwapGroup replaces group old with new (compare-and-set), as
// cluster.Directory.SwapGroup says. A swap whose answer does not come
// back (a *cluster.Unavailable) may have been made: read the registry to
// see.
func (c *Directory) SwapGroup(ctx context.Context, old, new cluster.Group) error {
	req := &pb.DirSwapGroupRequest{NewGroup: groupToPB(new)}
	if old != (cluster.Group{}) {
		req.OldGroup = groupToPB(old)
	}
	_, err := dirCall(c, ctx, c.rpc.SwapGroup, req)
	return err
}

// WatchRegistry calls fn, on the calling goroutine, with each registry the
// node sends: at once, after each change, and again each time the stream
// is opened again after a break (see Directory). It returns ctx's error
// when ctx is done, or an error wrapping cluster.ErrClosed once the
// Directory is closed.
func (c *Directory) WatchRegistry(ctx context.Context, fn func(cluster.Registry)) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if c.isClosed() {
		return c.errClosed()
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-c.done:
			cancel()
		case <-wctx.Done():
		}
	}()
	backoff := watchMinBackoff
	for {
		got, err := c.watchOnce(wctx, fn)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if c.isClosed() {
			return c.errClosed()
		}
		if got {
			backoff = watchMinBackoff // it worked for a while: try again soon
		}
		c.log.Warn("registry watch broken; opening it again", "err", fromStatus(ctx, c.peer, err), "retry_in", backoff)
		t := time.NewTimer(backoff)
		select {
		case <-wctx.Done():
			t.Stop()
		case <-t.C:
		}
		backoff = min(2*backoff, watchMaxBackoff)
	}
}

// watchOnce opens one stream and calls fn with each registry on it until
// it breaks; got reports whether it gave fn any.
func (c *Directory) watchOnce(ctx context.Context, fn func(cluster.Registry)) (got bool, err error) {
	st, err := c.rpc.WatchRegistry(ctx, dirEmpty)
	if err != nil {
		return false, err
	}
	for {
		m, err := st.Recv()
		if err != nil {
			return got, err
		}
		if ctx.Err() != nil {
			return got, ctx.Err()
		}
		got = true
		fn(registryFromPB(m))
	}
}

// NextID allocates a number of the named sequence.
func (c *Directory) NextID(ctx context.Context, sequence string) (uint64, error) {
	m, err := dirCall(c, ctx, c.rpc.NextID, &pb.DirSequence{Name: []byte(sequence)})
	if err != nil {
		return 0, err
	}
	return m.GetN(), nil
}

// AdvanceID moves the named sequence past past, so that NextID never
// returns it (cluster.SequenceAdvancer). It fails if the node's Directory
// cannot do that (codes.Unimplemented).
func (c *Directory) AdvanceID(ctx context.Context, sequence string, past uint64) error {
	_, err := dirCall(c, ctx, c.rpc.AdvanceID, &pb.DirAdvanceRequest{Name: []byte(sequence), Past: past})
	return err
}

// PlaceUser records that user id, of primary address address, lives on UD
// node node.
func (c *Directory) PlaceUser(ctx context.Context, id userdata.UserID, address, node string) error {
	_, err := dirCall(c, ctx, c.rpc.PlaceUser, &pb.DirPlaceUserRequest{Id: uint64(id), Address: []byte(address), Node: []byte(node)})
	return err
}

// RemoveUser forgets a user and its addresses.
func (c *Directory) RemoveUser(ctx context.Context, id userdata.UserID) error {
	_, err := dirCall(c, ctx, c.rpc.RemoveUser, &pb.DirUser{Id: uint64(id)})
	return err
}

// UserNode returns the UD node of user id.
func (c *Directory) UserNode(ctx context.Context, id userdata.UserID) (string, error) {
	m, err := dirCall(c, ctx, c.rpc.UserNode, &pb.DirUser{Id: uint64(id)})
	if err != nil {
		return "", err
	}
	return string(m.GetId()), nil
}

// LookupAddress returns the user address belongs to, and its node.
func (c *Directory) LookupAddress(ctx context.Context, address string) (cluster.Placement, error) {
	m, err := dirCall(c, ctx, c.rpc.LookupAddress, &pb.DirAddress{Address: []byte(address)})
	if err != nil {
		return cluster.Placement{}, err
	}
	return cluster.Placement{User: userdata.UserID(m.GetUser()), Node: string(m.GetNode())}, nil
}

// AddAddress records an alias of user id.
func (c *Directory) AddAddress(ctx context.Context, address string, id userdata.UserID) error {
	_, err := dirCall(c, ctx, c.rpc.AddAddress, &pb.DirAddAddressRequest{Address: []byte(address), Id: uint64(id)})
	return err
}

// RemoveAddress forgets an alias.
func (c *Directory) RemoveAddress(ctx context.Context, address string) error {
	_, err := dirCall(c, ctx, c.rpc.RemoveAddress, &pb.DirAddress{Address: []byte(address)})
	return err
}

// PutDomainAlias records that alias is another name of domain.
func (c *Directory) PutDomainAlias(ctx context.Context, alias, domain string) error {
	_, err := dirCall(c, ctx, c.rpc.PutDomainAlias, &pb.DirDomainAliasRequest{Alias: []byte(alias), Domain: []byte(domain)})
	return err
}

// DomainAlias returns the domain alias is another name of.
func (c *Directory) DomainAlias(ctx context.Context, alias string) (string, error) {
	m, err := dirCall(c, ctx, c.rpc.DomainAlias, &pb.DirDomain{Domain: []byte(alias)})
	if err != nil {
		return "", err
	}
	return string(m.GetDomain()), nil
}
