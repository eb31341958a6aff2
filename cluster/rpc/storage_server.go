package rpc

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/mailsys/mailsys/cluster/rpc/pb"
	"github.com/mailsys/mailsys/msstore"
)

// RegisterStorage serves st on s as the Storage service, for the clients
// NewStorage makes. st's optional capabilities are found by type assertion
// now: Walk of a store that is not an msstore.Walker answers
// codes.Unimplemented; Writable asks st's msstore.Writable if it has one
// and answers OK otherwise (a local store can always be tried). st stays
// its owner's: the server neither closes it nor uses it past s's end,
// except to close the bodies its clients left open.
//
// A Put reads the body from the stream as st.Put asks for it, so that no
// body is held whole; a stream that ends without the client's half-close
// (the client gave up, the connection broke) makes st.Put's reader fail,
// and nothing is stored.
//
// An Open of a body of at most 256 KiB answers the body whole. A larger
// one (or one whose first read fails, so that the error comes from ReadAt
// as it would locally) is answered with its first 256 KiB and kept open
// on the server under a handle: a random
// 64-bit id, good only for the client certificate that opened it. A handle
// lives until the client closes it or leaves it unused for 2 minutes; at
// most 10,000 are open at once, beyond which Open answers
// codes.ResourceExhausted (a temporary error for the client).
//
// Every call runs with the client's context (its deadline and its end).
// Errors cross as toStatus makes them.
func RegisterStorage(s grpc.ServiceRegistrar, st msstore.Storage) {
	pb.RegisterStorageServer(s, newStorageServer(st, storageServerConfig{}))
}

// Defaults of storageServerConfig.
const (
	defaultHandleIdle = 2 * time.Minute
	defaultMaxHandles = 10_000
	// inlineMax is the largest body Open answers whole.
	inlineMax = chunkSize
	// walkBatch bounds the entries of one Walk message.
	walkBatch = 256
)

// storageServerConfig tunes a storage server; the zero value means the
// defaults. Only tests change it.
type storageServerConfig struct {
	HandleIdle time.Duration // how long an unused handle lives
	MaxHandles int           // how many handles may be open at once
	Logger     *slog.Logger  // nil: slog.Default()
}

// storageServer is the Storage service over an msstore.Storage.
type storageServer struct {
	pb.UnimplementedStorageServer
	st       msstore.Storage
	walker   msstore.Walker   // nil if st lacks it
	writable msstore.Writable // nil if st lacks it
	handles  *handleTable
}

func newStorageServer(st msstore.Storage, cfg storageServerConfig) *storageServer {
	if cfg.HandleIdle <= 0 {
		cfg.HandleIdle = defaultHandleIdle
	}
	if cfg.MaxHandles <= 0 {
		cfg.MaxHandles = defaultMaxHandles
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &storageServer{st: st, handles: &handleTable{
		idle: cfg.HandleIdle, max: cfg.MaxHandles, log: cfg.Logger, m: map[uint64]*handle{},
	}}
	s.walker, _ = st.(msstore.Walker)
	s.writable, _ = st.(msstore.Writable)
	return s
}

// Put stores the body the stream carries; see RegisterStorage.
func (s *storageServer) Put(stream grpc.ClientStreamingServer[pb.MSPutChunk, pb.MSRef]) error {
	first, err := stream.Recv()
	if errors.Is(err, io.EOF) {
		return status.Error(codes.InvalidArgument, "rpc: put: no message")
	}
	if err != nil {
		return err
	}
	if first.GetMeta() == nil {
		return status.Error(codes.InvalidArgument, "rpc: put: the first message has no meta")
	}
	r := &putReader{stream: stream, data: first.GetData()}
	ref, err := s.st.Put(stream.Context(), r, metaFromPB(first.GetMeta()))
	if err != nil {
		if r.err != nil {
			// The stream's own status (the client's end) says more than
			// the store's wrapping of it.
			return r.err
		}
		return toStatus(err)
	}
	return stream.SendAndClose(&pb.MSRef{Ref: refToPB(ref)})
}

// putReader reads a Put's body from its stream. It returns io.EOF only at
// the client's half-close; any other end of the stream is an error, so
// that the store does not keep a body cut short.
type putReader struct {
	stream grpc.ClientStreamingServer[pb.MSPutChunk, pb.MSRef]
	data   []byte // what is left of the last message
	eof    bool
	err    error // the status the stream failed with
}

func (r *putReader) Read(p []byte) (int, error) {
	for len(r.data) == 0 {
		switch {
		case r.eof:
			return 0, io.EOF
		case r.err != nil:
			return 0, fmt.Errorf("rpc: put: body cut short: %w", r.err)
		}
		m, err := r.stream.Recv()
		switch {
		case errors.Is(err, io.EOF):
			r.eof = true
		case err != nil:
			if _, ok := status.FromError(err); !ok {
				err = status.Error(codes.Canceled, err.Error())
			}
			r.err = err
		case m.GetMeta() != nil:
			r.err = status.Error(codes.InvalidArgument, "rpc: put: meta after the first message")
		default:
			r.data = m.GetData()
		}
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

// Open opens a body: whole in the reply if it is small, else under a
// handle.
func (s *storageServer) Open(ctx context.Context, m *pb.MSRef) (*pb.MSOpened, error) {
	ref, err := refFromPB(m.GetRef())
	if err != nil {
		return nil, err
	}
	b, err := s.st.Open(ctx, ref)
	if err != nil {
		return nil, toStatus(err)
	}
	// The first chunk comes with the reply: all of a small body, the
	// start of a large one (its headers, which is what is read first). A
	// read error is the client's to see from ReadAt, as it would locally:
	// the body is then served through a handle, without a first chunk.
	size := b.Size()
	first := make([]byte, min(size, chunkSize))
	if n, err := b.ReadAt(first, 0); n < len(first) || (err != nil && err != io.EOF) {
		first = nil
	} else if size <= inlineMax {
		if err := b.Close(); err != nil {
			return nil, toStatus(err)
		}
		return &pb.MSOpened{Size: size, Inline: true, Data: first}, nil
	}
	id, err := s.handles.add(clientID(ctx), b)
	if err != nil {
		b.Close()
		return nil, err
	}
	return &pb.MSOpened{Size: size, Handle: id, Data: first}, nil
}

// Read streams a range of an open body in chunks.
func (s *storageServer) Read(m *pb.MSRead, stream grpc.ServerStreamingServer[pb.MSChunk]) error {
	off, left := m.GetOffset(), m.GetLength()
	if off < 0 || left < 0 {
		return status.Errorf(codes.InvalidArgument, "rpc: read: offset %d, length %d", off, left)
	}
	h, err := s.handles.acquire(m.GetHandle(), clientID(stream.Context()))
	if err != nil {
		return err
	}
	defer s.handles.release(h)
	bp := chunkPool.Get().(*[]byte)
	defer chunkPool.Put(bp)
	for left > 0 {
		p := (*bp)[:min(left, chunkSize)]
		n, err := h.body.ReadAt(p, off)
		eof := err == io.EOF
		if n > 0 || eof {
			if serr := stream.Send(&pb.MSChunk{Data: p[:n], Eof: eof}); serr != nil {
				return serr
			}
		}
		switch {
		case eof:
			return nil
		case err != nil:
			return toStatus(err)
		case n < len(p):
			return status.Errorf(codes.Internal, "rpc: read: the body gave %d bytes of %d and no error", n, len(p))
		}
		off, left = off+int64(n), left-int64(n)
	}
	return nil
}

// Close closes a handle.
func (s *storageServer) Close(ctx context.Context, m *pb.MSHandle) (*pb.MSEmpty, error) {
	if err := s.handles.remove(m.GetHandle(), clientID(ctx)); err != nil {
		return nil, toStatus(err)
	}
	return &pb.MSEmpty{}, nil
}

func (s *storageServer) Retain(ctx context.Context, m *pb.MSRetain) (*pb.MSEmpty, error) {
	ref, err := refFromPB(m.GetRef())
	if err != nil {
		return nil, err
	}
	n := m.GetN()
	if n < 1 || n > 1<<31 {
		return nil, status.Errorf(codes.InvalidArgument, "rpc: retain %v: invalid count %d", ref, n)
	}
	if err := s.st.Retain(ctx, ref, int(n)); err != nil {
		return nil, toStatus(err)
	}
	return &pb.MSEmpty{}, nil
}

func (s *storageServer) Release(ctx context.Context, m *pb.MSRef) (*pb.MSEmpty, error) {
	ref, err := refFromPB(m.GetRef())
	if err != nil {
		return nil, err
	}
	if err := s.st.Release(ctx, ref); err != nil {
		return nil, toStatus(err)
	}
	return &pb.MSEmpty{}, nil
}

// Walk streams the store's live bodies in batches.
func (s *storageServer) Walk(_ *pb.MSEmpty, stream grpc.ServerStreamingServer[pb.MSWalkBatch]) error {
	if s.walker == nil {
		return status.Error(codes.Unimplemented, "rpc: the MS node's store does not implement msstore.Walker")
	}
	batch := &pb.MSWalkBatch{}
	size := 0
	flush := func() error {
		if len(batch.Entries) == 0 {
			return nil
		}
		err := stream.Send(batch)
		batch, size = &pb.MSWalkBatch{}, 0
		return err
	}
	err := s.walker.Walk(stream.Context(), func(ref msstore.Ref, meta msstore.Meta) error {
		e := &pb.MSWalkEntry{Ref: refToPB(ref), Meta: metaToPB(meta)}
		batch.Entries = append(batch.Entries, e)
		size += len(e.Ref) + len(meta.MessageID) + 16
		for _, o := range meta.Owners {
			size += len(o.User) + len(o.Mailbox) + 8
		}
		if len(batch.Entries) >= walkBatch || size >= chunkSize {
			return flush()
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	return toStatus(err)
}

// Writable answers whether a Put can be tried now.
func (s *storageServer) Writable(context.Context, *pb.MSEmpty) (*pb.MSEmpty, error) {
	if s.writable != nil {
		if err := s.writable.Writable(); err != nil {
			return nil, toStatus(err)
		}
	}
	return &pb.MSEmpty{}, nil
}

// clientID is the identity of the client of a call: the common name (the
// node id) of its certificate, or "" without one.
func clientID(ctx context.Context) string {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return ""
	}
	if ti, ok := p.AuthInfo.(credentials.TLSInfo); ok && len(ti.State.PeerCertificates) > 0 {
		return ti.State.PeerCertificates[0].Subject.CommonName
	}
	return ""
}

// chunkPool holds chunkSize buffers for the server's reads.
var chunkPool = sync.Pool{New: func() any { b := make([]byte, chunkSize); return &b }}

// handleTable holds the bodies open on a server for its clients.
//
// A handle is in the table from add until remove or its expiry; each Read
// holds it active meanwhile, and its body is closed when it has left the
// table and no Read is using it. The expiry timer does not move with each
// use: when it fires, it looks at when the handle was last used and sets
// itself again if that is less than idle ago.
type handleTable struct {
	idle time.Duration
	max  int
	log  *slog.Logger

	mu sync.Mutex
	m  map[uint64]*handle
}

// handle is one open body. Its fields but body and the ones set at add are
// guarded by handleTable.mu.
type handle struct {
	id     uint64
	owner  string
	body   msstore.Body
	timer  *time.Timer
	active int       // Reads in progress
	used   time.Time // when the last Read ended
	gone   bool      // out of the table: close body when active is 0
}

// errNoHandle is the status of a Read of a handle that is not (or no
// longer) there for this client. It matches msstore.ErrClosed on the
// client, as a read of a closed body does.
func (t *handleTable) errNoHandle(id uint64) error {
	return toStatus(fmt.Errorf("rpc: body handle %016x is unknown: expired (unused for %v) or closed; open the body again: %w",
		id, t.idle, msstore.ErrClosed))
}

// add puts body in the table for owner and returns its handle.
func (t *handleTable) add(owner string, body msstore.Body) (uint64, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.m) >= t.max {
		return 0, status.Errorf(codes.ResourceExhausted, "rpc: open: %d bodies open on this node already, the most it keeps", len(t.m))
	}
	var id uint64
	for id == 0 || t.m[id] != nil {
		var b [8]byte
		rand.Read(b[:]) // never fails
		id = binary.BigEndian.Uint64(b[:])
	}
	h := &handle{id: id, owner: owner, body: body, used: time.Now()}
	h.timer = time.AfterFunc(t.idle, func() { t.expire(h) })
	t.m[id] = h
	return id, nil
}

// acquire returns owner's handle id, marked active until release.
func (t *handleTable) acquire(id uint64, owner string) (*handle, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	h := t.m[id]
	if h == nil || h.owner != owner {
		return nil, t.errNoHandle(id)
	}
	h.active++
	return h, nil
}

// release ends a Read of h.
func (t *handleTable) release(h *handle) {
	t.mu.Lock()
	h.active--
	h.used = time.Now()
	last := h.gone && h.active == 0
	t.mu.Unlock()
	if last {
		t.closeBody(h)
	}
}

// remove takes owner's handle id out of the table and closes its body once
// no Read uses it. An unknown handle is no error: it expired.
func (t *handleTable) remove(id uint64, owner string) error {
	t.mu.Lock()
	h := t.m[id]
	if h == nil || h.owner != owner {
		t.mu.Unlock()
		return nil
	}
	delete(t.m, id)
	h.timer.Stop()
	h.gone = true
	last := h.active == 0
	t.mu.Unlock()
	if last {
		return h.body.Close()
	}
	return nil
}

// expire closes h if it has been unused for idle, else sets its timer for
// when it will have been.
func (t *handleTable) expire(h *handle) {
	t.mu.Lock()
	if t.m[h.id] != h {
		t.mu.Unlock()
		return
	}
	if unused := time.Since(h.used); h.active > 0 || unused < t.idle {
		wait := t.idle - unused
		if h.active > 0 {
			wait = t.idle
		}
		h.timer.Reset(wait)
		t.mu.Unlock()
		return
	}
	delete(t.m, h.id)
	h.gone = true
	t.mu.Unlock()
	t.log.Debug("rpc: closing a body left open", "handle", fmt.Sprintf("%016x", h.id), "client", h.owner, "idle", t.idle)
	t.closeBody(h)
}

func (t *handleTable) closeBody(h *handle) {
	if err := h.body.Close(); err != nil {
		t.log.Warn("rpc: closing a body", "handle", fmt.Sprintf("%016x", h.id), "client", h.owner, "err", err)
	}
}

// count is how many handles are open.
func (t *handleTable) count() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.m)
}

// Conversions.

func refToPB(r msstore.Ref) []byte {
	b, _ := r.AppendBinary(make([]byte, 0, msstore.RefLen)) // never fails
	return b
}

// refFromPB decodes a ref, or answers InvalidArgument.
func refFromPB(b []byte) (msstore.Ref, error) {
	var r msstore.Ref
	if err := r.UnmarshalBinary(b); err != nil {
		return msstore.Ref{}, status.Error(codes.InvalidArgument, "rpc: "+err.Error())
	}
	return r, nil
}

func metaToPB(m msstore.Meta) *pb.MSMeta {
	p := &pb.MSMeta{MessageId: []byte(m.MessageID)}
	if !m.Received.IsZero() {
		p.Received = m.Received.UnixNano()
	}
	if len(m.Owners) > 0 {
		p.Owners = make([]*pb.MSOwner, len(m.Owners))
		for i, o := range m.Owners {
			p.Owners[i] = &pb.MSOwner{User: []byte(o.User), Mailbox: []byte(o.Mailbox)}
		}
	}
	return p
}

func metaFromPB(p *pb.MSMeta) msstore.Meta {
	m := msstore.Meta{MessageID: string(p.GetMessageId())}
	if ns := p.GetReceived(); ns != 0 {
		m.Received = time.Unix(0, ns).UTC()
	}
	if os := p.GetOwners(); len(os) > 0 {
		m.Owners = make([]msstore.Owner, len(os))
		for i, o := range os {
			m.Owners[i] = msstore.Owner{User: string(o.GetUser()), Mailbox: string(o.GetMailbox())}
		}
	}
	return m
}
