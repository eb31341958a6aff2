package rpc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/mailsys/mailsys/cluster"
	"github.com/mailsys/mailsys/cluster/rpc/pb"
	"github.com/mailsys/mailsys/msstore"
)

// Storage is a remote MS node's msstore.Storage, over a gRPC connection to
// the node's Storage service (RegisterStorage). It implements
// msstore.Storage, msstore.Walker and msstore.Writable with their
// contracts (Walk of a node whose store is no Walker fails), with these
// additions:
//
//   - A node that cannot be reached, or does not answer in time, gives an
//     error matching msstore.ErrUnavailable (a *cluster.Unavailable), as
//     does a node that has too many bodies open to open one more. A call
//     with a deadline is given a little less time than its deadline, so
//     that its error says so before the deadline passes. Without one,
//     StorageConfig.CallTimeout bounds a unary call (Open, Retain,
//     Release, Writable, a Body's Close) as a whole, and each wait for the
//     node in a streaming one (Put, Walk, a Body's ReadAt): the time Put's
//     reader or Walk's fn takes is not counted.
//   - Put streams the body in 256 KiB chunks as it reads it; when it fails
//     (the reader's error, ctx's end, the node's) the node stores nothing,
//     unless the node had the whole body already.
//   - A Body of at most 256 KiB comes whole with Open and reads from
//     memory. A larger one comes with its first 256 KiB (the headers,
//     read first) and reads the rest from the node, one streamed call per
//     ReadAt, except that a ReadAt of less than 256 KiB that goes on from
//     the last one fetches (and keeps) the 256 KiB from its offset, so
//     that small sequential reads make one round trip per 256 KiB. The node closes a body left
//     unused for 2 minutes, after which its ReadAt fails with an error
//     matching msstore.ErrClosed that says so: open it again.
//
// Its methods are safe for concurrent use. Close ends it (every call after
// returns an error matching msstore.ErrClosed; Bodies open stay readable
// until they are closed) but not the connection, which is its owner's.
type Storage struct {
	rpc  pb.StorageClient
	peer string
	cfg  StorageConfig
	log  *slog.Logger

	mu     sync.Mutex
	closed bool
	calls  sync.WaitGroup // the calls in progress
}

var (
	_ msstore.Storage  = (*Storage)(nil)
	_ msstore.Walker   = (*Storage)(nil)
	_ msstore.Writable = (*Storage)(nil)
)

// StorageConfig configures a Storage client. The zero value (but Peer)
// means the defaults.
type StorageConfig struct {
	// Peer is the node's id, named in the errors.
	Peer string
	// CallTimeout bounds a call whose context has no deadline (see
	// Storage). Past it the call fails with a *cluster.Unavailable. Zero
	// means 5 seconds; negative, no bound.
	CallTimeout time.Duration
	// Logger receives what the client cannot return: the failures of
	// closing a Body's handle. Nil means slog.Default().
	Logger *slog.Logger
}

// defaultStorageCallTimeout is StorageConfig.CallTimeout's default.
const defaultStorageCallTimeout = 5 * time.Second

// NewStorage returns the Storage of node peer (its id, for errors) over
// conn, with the default StorageConfig. conn stays its owner's, to close
// after the Storage and its Bodies.
func NewStorage(conn *grpc.ClientConn, peer string) *Storage {
	return NewStorageWith(conn, StorageConfig{Peer: peer})
}

// NewStorageWith returns the Storage over conn configured by cfg, which it
// copies. conn stays its owner's, to close after the Storage and its
// Bodies.
func NewStorageWith(conn *grpc.ClientConn, cfg StorageConfig) *Storage {
	if cfg.CallTimeout == 0 {
		cfg.CallTimeout = defaultStorageCallTimeout
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Storage{rpc: pb.NewStorageClient(conn), peer: cfg.Peer, cfg: cfg, log: log.With("peer", cfg.Peer)}
}

// Close waits for the calls in progress, then ends the Storage: every call
// after it returns an error matching msstore.ErrClosed, a second Close
// included. Bodies open stay readable until they are closed. The
// connection stays open.
func (c *Storage) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return c.errClosed("close")
	}
	c.closed = true
	c.mu.Unlock()
	c.calls.Wait()
	return nil
}

func (c *Storage) errClosed(op string) error {
	return fmt.Errorf("rpc: %s on node %s: %w", op, c.peer, msstore.ErrClosed)
}

// begin starts a call: ctx's error if it is done, ErrClosed after Close;
// else the context to make the gRPC call with (its deadline brought
// forward, or CallTimeout for a unary call) and the function that ends the
// call. A streaming call bounds each wait itself (see watchdog).
func (c *Storage) begin(ctx context.Context, op string, streaming bool) (context.Context, func(), error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, fmt.Errorf("rpc: %s on node %s: %w", op, c.peer, err)
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, nil, c.errClosed(op)
	}
	c.calls.Add(1)
	c.mu.Unlock()
	cctx, cancel := callContext(ctx, c.cfg.CallTimeout, streaming)
	return cctx, func() { cancel(); c.calls.Done() }, nil
}

// callContext is ctx for a call to a node: a little before ctx's deadline
// if it has one, so that a node that does not answer is reported as
// unavailable in time; else bounded by timeout (when positive) if the call
// is unary.
func callContext(ctx context.Context, timeout time.Duration, streaming bool) (context.Context, context.CancelFunc) {
	if d, ok := ctx.Deadline(); ok {
		margin := min(time.Until(d)/20, 250*time.Millisecond)
		return context.WithDeadline(ctx, d.Add(-margin))
	}
	if !streaming && timeout > 0 {
		return context.WithTimeout(ctx, timeout)
	}
	return context.WithCancel(ctx)
}

// err turns a gRPC call's error into the Storage's (see fromStatus); ctx
// is the caller's. A node out of handles (ResourceExhausted without a
// sentinel) is unavailable for now.
func (c *Storage) err(ctx context.Context, err error) error {
	if st, ok := status.FromError(err); ok && st.Code() == codes.ResourceExhausted && len(st.Details()) == 0 && ctx.Err() == nil {
		return &cluster.Unavailable{Peer: c.peer, Err: errors.New(st.Message())}
	}
	return fromStatus(ctx, c.peer, err)
}

// watchdog cancels a streaming call when the node does not answer within
// timeout: arm it before each wait for the node, disarm it after. It
// cancels with a cause matching context.DeadlineExceeded, so that the
// peer's circuit breaker counts the call as failed, as a unary call past
// its deadline is (see cluster.BreakerConfig.Failures).
type watchdog struct {
	timeout  time.Duration
	timer    *time.Timer // nil without a timeout
	timedOut atomic.Bool
}

func newWatchdog(timeout time.Duration, cancel context.CancelCauseFunc) *watchdog {
	w := &watchdog{timeout: timeout}
	if timeout > 0 {
		w.timer = time.AfterFunc(time.Hour, func() {
			w.timedOut.Store(true)
			cancel(fmt.Errorf("rpc: no answer within %v: %w", timeout, context.DeadlineExceeded))
		})
		w.timer.Stop()
	}
	return w
}

func (w *watchdog) arm() {
	if w.timer != nil {
		w.timer.Reset(w.timeout)
	}
}

func (w *watchdog) disarm() {
	if w.timer != nil {
		w.timer.Stop()
	}
}

// err is the error of a streaming call that failed with err: the node's
// silence if the watchdog fired (and ctx, the caller's, is not done), else
// err as c.err makes it.
func (w *watchdog) err(c *Storage, ctx context.Context, err error) error {
	if w.timedOut.Load() && ctx.Err() == nil {
		return &cluster.Unavailable{Peer: c.peer, Err: fmt.Errorf("no answer within %v", w.timeout)}
	}
	return c.err(ctx, err)
}

// unary makes a unary call.
func unary[Q, R any](c *Storage, ctx context.Context, op string, rpc func(context.Context, Q, ...grpc.CallOption) (R, error), req Q) (R, error) {
	var zero R
	cctx, done, err := c.begin(ctx, op, false)
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

// Put implements msstore.Storage: it streams the body to the node as it
// reads r (see Storage).
func (c *Storage) Put(ctx context.Context, r io.Reader, meta msstore.Meta) (msstore.Ref, error) {
	cctx, done, err := c.begin(ctx, "put", true)
	if err != nil {
		return msstore.Ref{}, err
	}
	defer done()
	cctx, cancel := context.WithCancelCause(cctx)
	defer cancel(nil) // before the reply, it tells the node to drop the body
	w := newWatchdog(c.cfg.CallTimeout, cancel)
	defer w.disarm()

	w.arm()
	st, err := c.rpc.Put(cctx)
	w.disarm()
	if err != nil {
		return msstore.Ref{}, w.err(c, ctx, err)
	}
	bp := chunkPool.Get().(*[]byte)
	defer chunkPool.Put(bp)
	msg := &pb.MSPutChunk{Meta: metaToPB(meta)}
	for {
		n, rerr := readChunk(r, *bp)
		if rerr != nil && rerr != io.EOF {
			return msstore.Ref{}, fmt.Errorf("rpc: put on node %s: reading the body: %w", c.peer, rerr)
		}
		if n > 0 || msg.Meta != nil {
			msg.Data = (*bp)[:n]
			w.arm()
			err := st.Send(msg) // Send has encoded msg when it returns
			w.disarm()
			if err != nil {
				// The stream ended: its status says why.
				w.arm()
				err = st.RecvMsg(new(pb.MSRef))
				w.disarm()
				if err == nil {
					err = status.Error(codes.Internal, "rpc: put: the node answered before the end of the body")
				}
				return msstore.Ref{}, w.err(c, ctx, err)
			}
			msg.Meta = nil
		}
		if rerr == io.EOF {
			break
		}
	}
	if err := ctx.Err(); err != nil {
		return msstore.Ref{}, fmt.Errorf("rpc: put on node %s: %w", c.peer, err)
	}
	w.arm()
	resp, err := st.CloseAndRecv()
	w.disarm()
	if err != nil {
		return msstore.Ref{}, w.err(c, ctx, err)
	}
	ref, err := refFromPB(resp.GetRef())
	if err != nil {
		return msstore.Ref{}, fmt.Errorf("rpc: put on node %s: the node's answer: %w", c.peer, err)
	}
	return ref, nil
}

// readChunk reads from r until buf is full, r's error or io.EOF. Unlike
// io.ReadFull, it passes r's own errors through unchanged (an
// io.ErrUnexpectedEOF of r's is an error, not the end of the body).
func readChunk(r io.Reader, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		m, err := r.Read(buf[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// Open implements msstore.Storage (see Storage for how its Body reads).
func (c *Storage) Open(ctx context.Context, ref msstore.Ref) (msstore.Body, error) {
	resp, err := unary(c, ctx, "open", c.rpc.Open, &pb.MSRef{Ref: refToPB(ref)})
	if err != nil {
		return nil, err
	}
	size, data := resp.GetSize(), resp.GetData()
	switch {
	case size < 0, int64(len(data)) > size, resp.GetInline() && int64(len(data)) != size:
		if !resp.GetInline() {
			c.closeHandle(ref, resp.GetHandle())
		}
		return nil, fmt.Errorf("rpc: open %v on node %s: the node answered a body of %d bytes with %d bytes", ref, c.peer, size, len(data))
	case resp.GetInline():
		return &inlineBody{data: data}, nil
	}
	return &remoteBody{c: c, ref: ref, handle: resp.GetHandle(), size: size, win: data}, nil
}

// Retain implements msstore.Storage.
func (c *Storage) Retain(ctx context.Context, ref msstore.Ref, n int) error {
	if n < 1 {
		return fmt.Errorf("rpc: retain %v on node %s: invalid count %d", ref, c.peer, n)
	}
	_, err := unary(c, ctx, "retain", c.rpc.Retain, &pb.MSRetain{Ref: refToPB(ref), N: int64(n)})
	return err
}

// Release implements msstore.Storage.
func (c *Storage) Release(ctx context.Context, ref msstore.Ref) error {
	_, err := unary(c, ctx, "release", c.rpc.Release, &pb.MSRef{Ref: refToPB(ref)})
	return err
}

// Writable implements msstore.Writable: nil when the node answers that a
// Put can be tried, else an error matching msstore.ErrUnavailable (after
// Close, msstore.ErrClosed too). It makes a call bounded by CallTimeout;
// a connection known to be down fails at once.
func (c *Storage) Writable() error {
	_, err := unary(c, context.Background(), "writable", c.rpc.Writable, &pb.MSEmpty{})
	if err != nil && !errors.Is(err, msstore.ErrUnavailable) {
		return &cluster.Unavailable{Peer: c.peer, Err: err}
	}
	return err
}

// Walk implements msstore.Walker over a stream of batches; fn runs on the
// calling goroutine and may call c's other methods.
func (c *Storage) Walk(ctx context.Context, fn func(msstore.Ref, msstore.Meta) error) error {
	cctx, done, err := c.begin(ctx, "walk", true)
	if err != nil {
		return err
	}
	defer done()
	cctx, cancel := context.WithCancelCause(cctx)
	defer cancel(nil)
	w := newWatchdog(c.cfg.CallTimeout, cancel)
	defer w.disarm()
	w.arm()
	st, err := c.rpc.Walk(cctx, &pb.MSEmpty{})
	w.disarm()
	if err != nil {
		return w.err(c, ctx, err)
	}
	for {
		w.arm()
		batch, err := st.Recv()
		w.disarm()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return w.err(c, ctx, err)
		}
		for _, e := range batch.GetEntries() {
			ref, err := refFromPB(e.GetRef())
			if err != nil {
				return fmt.Errorf("rpc: walk on node %s: the node's answer: %w", c.peer, err)
			}
			if err := fn(ref, metaFromPB(e.GetMeta())); err != nil {
				return err
			}
		}
	}
}

// inlineBody is a Body that came whole with Open.
type inlineBody struct {
	data   []byte
	closed atomic.Bool
}

func (b *inlineBody) Size() int64 { return int64(len(b.data)) }

func (b *inlineBody) ReadAt(p []byte, off int64) (int, error) {
	switch {
	case b.closed.Load():
		return 0, fmt.Errorf("rpc: body: read after close: %w", msstore.ErrClosed)
	case off < 0:
		return 0, fmt.Errorf("rpc: body: negative offset %d", off)
	case off >= int64(len(b.data)):
		return 0, io.EOF
	}
	n := copy(p, b.data[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (b *inlineBody) Close() error {
	b.closed.Store(true)
	return nil
}

// remoteBody is a Body open on the node under a handle. It keeps the last
// window it fetched for small reads (see Storage).
type remoteBody struct {
	c      *Storage
	ref    msstore.Ref
	handle uint64
	size   int64
	closed atomic.Bool

	mu     sync.Mutex
	win    []byte // the bytes of the body from winOff
	winOff int64
	next   int64 // where the last ReadAt ended
}

func (b *remoteBody) Size() int64 { return b.size }

func (b *remoteBody) ReadAt(p []byte, off int64) (int, error) {
	switch {
	case b.closed.Load():
		return 0, fmt.Errorf("rpc: body %v: read after close: %w", b.ref, msstore.ErrClosed)
	case off < 0:
		return 0, fmt.Errorf("rpc: body %v: negative offset %d", b.ref, off)
	case off >= b.size:
		return 0, io.EOF
	}
	want := int(min(int64(len(p)), b.size-off))
	var n int
	var err error
	hit, sequential := b.fromWindow(p[:want], off)
	switch {
	case hit:
		n = want
	case want >= chunkSize || !sequential:
		n, err = b.fetch(p[:want], off)
	default:
		// A small read that goes on from the last: fetch the next
		// window, for the reads that follow.
		win := make([]byte, min(chunkSize, b.size-off))
		var m int
		m, err = b.fetch(win, off)
		if m == len(win) {
			b.mu.Lock()
			b.win, b.winOff = win, off
			b.mu.Unlock()
		}
		n = copy(p[:want], win[:m])
		if n == want {
			err = nil // whatever failed lies past what was asked for
		}
	}
	if err == nil && n < len(p) {
		err = io.EOF
	}
	return n, err
}

// fromWindow copies p from the window if all of it is there (hit), and
// says whether the read goes on from the last one or from inside the
// window (sequential), where a window is worth fetching.
func (b *remoteBody) fromWindow(p []byte, off int64) (hit, sequential bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	end := b.winOff + int64(len(b.win))
	sequential = off == b.next || (off >= b.winOff && off < end)
	b.next = off + int64(len(p))
	if off < b.winOff || off+int64(len(p)) > end {
		return false, sequential
	}
	copy(p, b.win[off-b.winOff:])
	return true, sequential
}

// fetch reads len(p) bytes from off, all within the body, with one
// streamed call.
func (b *remoteBody) fetch(p []byte, off int64) (int, error) {
	c := b.c
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	w := newWatchdog(c.cfg.CallTimeout, cancel)
	defer w.disarm()
	w.arm()
	st, err := c.rpc.Read(ctx, &pb.MSRead{Handle: b.handle, Offset: off, Length: int64(len(p))})
	w.disarm()
	if err != nil {
		return 0, b.err(w.err(c, context.Background(), err))
	}
	n := 0
	for n < len(p) {
		w.arm()
		m, err := st.Recv()
		w.disarm()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return n, fmt.Errorf("rpc: read of body %v on node %s: %d bytes at %d of %d: the node sent %d", b.ref, c.peer, len(p), off, b.size, n)
			}
			return n, b.err(w.err(c, context.Background(), err))
		}
		if len(m.GetData()) > len(p)-n {
			return n, fmt.Errorf("rpc: read of body %v on node %s: the node sent more than was asked", b.ref, c.peer)
		}
		n += copy(p[n:], m.GetData())
		if m.GetEof() && n < len(p) {
			return n, fmt.Errorf("rpc: read of body %v on node %s: the body of %d bytes ended at %d", b.ref, c.peer, b.size, off+int64(n))
		}
	}
	return n, nil
}

func (b *remoteBody) err(err error) error {
	return fmt.Errorf("rpc: read of body %v: %w", b.ref, err)
}

// Close closes the body's handle on the node. A second Close does nothing.
func (b *remoteBody) Close() error {
	if b.closed.Swap(true) {
		return nil
	}
	b.mu.Lock()
	b.win = nil
	b.mu.Unlock()
	return b.c.closeHandle(b.ref, b.handle)
}

// closeHandle closes the handle of the body ref on the node. If the node
// cannot be told, it closes the handle after its idle time anyway.
func (c *Storage) closeHandle(ref msstore.Ref, handle uint64) error {
	ctx, cancel := callContext(context.Background(), c.cfg.CallTimeout, false)
	defer cancel()
	if _, err := c.rpc.Close(ctx, &pb.MSHandle{Handle: handle}); err != nil {
		err = c.err(context.Background(), err)
		c.log.Debug("rpc: closing a body", "ref", ref, "err", err)
		return fmt.Errorf("rpc: close of body %v: %w", ref, err)
	}
	return nil
}
