package rpc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/mailsys/mailsys/cluster"
	"github.com/mailsys/mailsys/cluster/rpc/pb"
	"github.com/mailsys/mailsys/msstore"
	"github.com/mailsys/mailsys/msstore/storetest"
)

// newTestVolumes is a Volumes store in a temporary directory, closed at the
// test's end. Bodies up to maxBody bytes.
func newTestVolumes(t testing.TB, maxBody int64) *msstore.Volumes {
	t.Helper()
	cfg := msstore.DefaultConfig(t.TempDir())
	cfg.Node = 7
	cfg.VolumeSize = max(8<<20, 2*maxBody)
	cfg.MaxBodySize = maxBody
	cfg.Logger = testLogger(t)
	s, err := msstore.OpenVolumes(context.Background(), cfg)
	if err != nil {
		t.Fatalf("OpenVolumes: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// newTestMemStore is a msstore.Memory closed at the test's end.
func newTestMemStore(t testing.TB) *msstore.Memory {
	m := msstore.NewMemory(7)
	t.Cleanup(func() { m.Close() })
	return m
}

// remoteStorage serves st over loopback mutual TLS and returns the server
// and a client of it, configured by cfg (Peer set here).
func remoteStorage(t testing.TB, st msstore.Storage, scfg storageServerConfig, cfg StorageConfig) (*storageServer, *Storage) {
	t.Helper()
	if scfg.Logger == nil {
		scfg.Logger = testLogger(t)
	}
	srv := newStorageServer(st, scfg)
	conn := serve(t, func(s *grpc.Server) { pb.RegisterStorageServer(s, srv) })
	return srv, newTestStorageClient(t, conn, cfg)
}

func newTestStorageClient(t testing.TB, conn *grpc.ClientConn, cfg StorageConfig) *Storage {
	cfg.Peer = "peer"
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	c := NewStorageWith(conn, cfg)
	t.Cleanup(func() { c.Close() }) // a second Close is harmless
	return c
}

func TestStorageConformanceMemory(t *testing.T) {
	storetest.Run(t, func(t *testing.T) msstore.Storage {
		_, c := remoteStorage(t, newTestMemStore(t), storageServerConfig{}, StorageConfig{})
		return c
	})
}

func TestStorageConformanceVolumes(t *testing.T) {
	storetest.Run(t, func(t *testing.T) msstore.Storage {
		_, c := remoteStorage(t, newTestVolumes(t, 4<<20), storageServerConfig{}, StorageConfig{})
		return c
	})
}

// testBody is n pseudo-random bytes.
func testBody(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, uint64(n)))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func putBody(t testing.TB, s msstore.Storage, data []byte) msstore.Ref {
	t.Helper()
	ref, err := s.Put(context.Background(), bytes.NewReader(data), msstore.Meta{MessageID: "<t@example.test>"})
	if err != nil {
		t.Fatalf("Put of %d bytes: %v", len(data), err)
	}
	return ref
}

func countBodies(t *testing.T, w msstore.Walker) int {
	t.Helper()
	n := 0
	if err := w.Walk(t.Context(), func(msstore.Ref, msstore.Meta) error { n++; return nil }); err != nil {
		t.Fatalf("Walk: %v", err)
	}
	return n
}

// recordingStore reports the end of each Put it is given, and how much of
// its body the Put had read.
type recordingStore struct {
	msstore.Walker
	read atomic.Int64
	puts chan error
}

func (s *recordingStore) Put(ctx context.Context, r io.Reader, meta msstore.Meta) (msstore.Ref, error) {
	ref, err := s.Walker.Put(ctx, countingReader{r, &s.read}, meta)
	s.puts <- err
	return ref, err
}

type countingReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// stallingReader gives n bytes, then blocks until release is closed, then
// gives more.
type stallingReader struct {
	r       io.Reader
	n       int
	release chan struct{}
}

func (s *stallingReader) Read(p []byte) (int, error) {
	if s.n <= 0 {
		<-s.release
		return s.r.Read(p)
	}
	p = p[:min(len(p), s.n)]
	n, err := s.r.Read(p)
	s.n -= n
	return n, err
}

// TestStoragePutAborted: a Put cut short after the node has had part of
// the body (the caller's context canceled, the connection broken) makes
// the node's Put fail and stores nothing.
func TestStoragePutAborted(t *testing.T) {
	for _, how := range []string{"canceled", "cut"} {
		t.Run(how, func(t *testing.T) {
			for _, backend := range []string{"Memory", "Volumes"} {
				t.Run(backend, func(t *testing.T) {
					var inner msstore.Walker = newTestMemStore(t)
					if backend == "Volumes" {
						inner = newTestVolumes(t, 8<<20)
					}
					rec := &recordingStore{Walker: inner, puts: make(chan error, 10)}
					proxy, c := serveStorageViaProxy(t, rec, StorageConfig{})
					putBody(t, c, testBody(1, 1000))
					if err := <-rec.puts; err != nil {
						t.Fatalf("the node's Put: %v", err)
					}
					rec.read.Store(0)

					const sent = 3*chunkSize + 1000
					r := &stallingReader{r: bytes.NewReader(testBody(2, 4<<20)), n: sent, release: make(chan struct{})}
					ctx, cancel := context.WithCancel(t.Context())
					defer cancel()
					errc := make(chan error, 1)
					go func() {
						_, err := c.Put(ctx, r, msstore.Meta{MessageID: "<cut@example.test>"})
						errc <- err
					}()
					waitFor(t, "the node to read the first chunks", func() bool { return rec.read.Load() >= 3*chunkSize })
					if how == "canceled" {
						cancel()
					} else {
						proxy.cut()
					}
					select {
					case err := <-rec.puts:
						if err == nil {
							t.Fatal("the node's Put of a body cut short succeeded")
						}
						t.Logf("the node's Put: %v", err)
					case <-time.After(10 * time.Second):
						t.Fatal("the node's Put did not end after the client's went away")
					}
					close(r.release)
					err := <-errc
					switch how {
					case "canceled":
						if !errors.Is(err, context.Canceled) {
							t.Errorf("Put canceled midway: error %v, want context.Canceled", err)
						}
					case "cut":
						if !errors.Is(err, msstore.ErrUnavailable) {
							t.Errorf("Put over a broken connection: error %v, want ErrUnavailable", err)
						}
					}
					if n := countBodies(t, inner); n != 1 {
						t.Errorf("the store holds %d bodies after a Put cut short, want 1", n)
					}
				})
			}
		})
	}
}

// serveStorageViaProxy serves st over mutual TLS behind a tcpProxy and
// returns the proxy and a client configured by cfg.
func serveStorageViaProxy(t testing.TB, st msstore.Storage, cfg StorageConfig) (*tcpProxy, *Storage) {
	t.Helper()
	srvCreds, cliCreds := testCreds(t, "peer")
	srv := NewServer(srvCreds)
	pb.RegisterStorageServer(srv, newStorageServer(st, storageServerConfig{Logger: testLogger(t)}))
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	t.Cleanup(srv.Stop)
	p := newTCPProxy(t, l.Addr().String())
	conn, err := Dial(p.addr(), "peer", cliCreds)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return p, newTestStorageClient(t, conn, cfg)
}

// TestStorageHandleExpiry: a body left unused past the idle time is closed
// on the node, its ReadAt then fails with a clear error matching
// ErrClosed; one in use stays open.
func TestStorageHandleExpiry(t *testing.T) {
	const idle = 300 * time.Millisecond
	srv, c := remoteStorage(t, newTestMemStore(t), storageServerConfig{HandleIdle: idle}, StorageConfig{})
	data := testBody(3, 1<<20)
	ref := putBody(t, c, data)
	b, err := c.Open(t.Context(), ref)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	p := make([]byte, 1000)
	// Used every idle/3 for 3 idle times: it stays.
	for i := range 9 {
		off := int64(i) * 100_000
		if _, err := b.ReadAt(p, off); err != nil {
			t.Fatalf("ReadAt at %d of a body in use: %v", off, err)
		}
		if !bytes.Equal(p, data[off:off+1000]) {
			t.Fatalf("ReadAt at %d: wrong bytes", off)
		}
		b.(*remoteBody).mu.Lock()
		b.(*remoteBody).win = nil // make every read go to the node
		b.(*remoteBody).mu.Unlock()
		time.Sleep(idle / 3)
	}
	if n := srv.handles.count(); n != 1 {
		t.Fatalf("%d handles open, want 1", n)
	}
	waitFor(t, "the handle to expire", func() bool { return srv.handles.count() == 0 })
	_, err = b.ReadAt(p, 0)
	if !errors.Is(err, msstore.ErrClosed) || !strings.Contains(err.Error(), "expired") {
		t.Errorf("ReadAt of an expired body: error %v, want ErrClosed saying it expired", err)
	}
	t.Logf("ReadAt of an expired body: %v", err)
	if err := b.Close(); err != nil {
		t.Errorf("Close of an expired body: %v", err)
	}
}

// TestStorageHandleLimit: Open beyond the node's handles fails with a
// temporary error; small bodies need none; Close frees one.
func TestStorageHandleLimit(t *testing.T) {
	srv, c := remoteStorage(t, newTestMemStore(t), storageServerConfig{MaxHandles: 3}, StorageConfig{})
	large := putBody(t, c, testBody(4, chunkSize+1))
	small := putBody(t, c, testBody(5, chunkSize))
	var open []msstore.Body
	for range 3 {
		b, err := c.Open(t.Context(), large)
		if err != nil {
			t.Fatal(err)
		}
		open = append(open, b)
	}
	_, err := c.Open(t.Context(), large)
	if !errors.Is(err, msstore.ErrUnavailable) {
		t.Fatalf("Open beyond the handle limit: error %v, want ErrUnavailable", err)
	}
	for range 10 {
		b, err := c.Open(t.Context(), small)
		if err != nil {
			t.Fatalf("Open of a small body at the handle limit: %v", err)
		}
		if _, ok := b.(*inlineBody); !ok {
			t.Errorf("a body of %d bytes is a %T, want it inline", b.Size(), b)
		}
		b.Close()
	}
	if err := open[0].Close(); err != nil {
		t.Fatal(err)
	}
	if n := srv.handles.count(); n != 2 {
		t.Errorf("%d handles open after a Close, want 2", n)
	}
	b, err := c.Open(t.Context(), large)
	if err != nil {
		t.Fatalf("Open after a Close freed a handle: %v", err)
	}
	open = append(open[1:], b)
	for _, b := range open {
		b.Close()
	}
	if n := srv.handles.count(); n != 0 {
		t.Errorf("%d handles open after closing every body, want 0", n)
	}
}

// TestStorageHandleScope: a handle is good only for the client
// certificate that opened it, even if another client knows its id.
func TestStorageHandleScope(t *testing.T) {
	ca := testCA(t)
	issue := func(id string) cluster.Credentials { return issueCreds(t, ca, id) }
	srv := NewServer(issue("peer"))
	ss := newStorageServer(newTestMemStore(t), storageServerConfig{Logger: testLogger(t)})
	pb.RegisterStorageServer(srv, ss)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	t.Cleanup(srv.Stop)
	dial := func(id string) *grpc.ClientConn {
		conn, err := Dial(l.Addr().String(), "peer", issue(id))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		return conn
	}
	connA, connB := dial("fe1"), dial("fe2")
	a := newTestStorageClient(t, connA, StorageConfig{})
	data := testBody(6, 2*chunkSize)
	b, err := a.Open(t.Context(), putBody(t, a, data))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	handle := b.(*remoteBody).handle

	other := pb.NewStorageClient(connB)
	st, err := other.Read(t.Context(), &pb.MSRead{Handle: handle, Offset: 0, Length: 100})
	if err == nil {
		_, err = st.Recv()
	}
	if status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "unknown") {
		t.Errorf("another client's Read of the handle: error %v, want the handle unknown", err)
	}
	if _, err := other.Close(t.Context(), &pb.MSHandle{Handle: handle}); err != nil {
		t.Errorf("another client's Close of the handle: %v", err)
	}
	// Still there for its own client.
	p := make([]byte, 100)
	if _, err := b.ReadAt(p, chunkSize); err != nil || !bytes.Equal(p, data[chunkSize:chunkSize+100]) {
		t.Errorf("ReadAt after another client tried to close the handle: %v", err)
	}
	if n := ss.handles.count(); n != 1 {
		t.Errorf("%d handles open, want 1", n)
	}
}

// TestStorageUnavailable: a node that does not answer (a listener that
// takes connections and says nothing; a node whose connection stops
// carrying anything) gives ErrUnavailable from every call, within
// CallTimeout or before the caller's deadline.
func TestStorageUnavailable(t *testing.T) {
	const timeout = 400 * time.Millisecond
	calls := func(c *Storage, ref msstore.Ref, body msstore.Body) []struct {
		name string
		fn   func(ctx context.Context) error
	} {
		cs := []struct {
			name string
			fn   func(ctx context.Context) error
		}{
			{"Put", func(ctx context.Context) error {
				_, err := c.Put(ctx, bytes.NewReader(testBody(7, 3*chunkSize)), msstore.Meta{})
				return err
			}},
			{"Open", func(ctx context.Context) error {
				b, err := c.Open(ctx, ref)
				if err == nil {
					b.Close()
				}
				return err
			}},
			{"Retain", func(ctx context.Context) error { return c.Retain(ctx, ref, 1) }},
			{"Release", func(ctx context.Context) error { return c.Release(ctx, ref) }},
			{"Walk", func(ctx context.Context) error {
				return c.Walk(ctx, func(msstore.Ref, msstore.Meta) error { return nil })
			}},
			{"Writable", func(context.Context) error { return c.Writable() }},
		}
		if body != nil {
			cs = append(cs, struct {
				name string
				fn   func(ctx context.Context) error
			}{"ReadAt", func(context.Context) error {
				_, err := body.ReadAt(make([]byte, 100), 2*chunkSize)
				return err
			}})
		}
		return cs
	}
	check := func(t *testing.T, c *Storage, ref msstore.Ref, body msstore.Body) {
		for _, tc := range calls(c, ref, body) {
			if tc.name != "ReadAt" && tc.name != "Writable" {
				ctx, cancel := context.WithTimeout(t.Context(), timeout/2)
				start := time.Now()
				err := tc.fn(ctx)
				took, ctxErr := time.Since(start), ctx.Err()
				cancel()
				if !errors.Is(err, msstore.ErrUnavailable) {
					t.Errorf("%s with a deadline: error %v, want ErrUnavailable", tc.name, err)
				}
				if ctxErr != nil {
					t.Errorf("%s with a deadline: returned after it (%v)", tc.name, took)
				}
			}
			start := time.Now()
			err := tc.fn(t.Context())
			took := time.Since(start)
			if !errors.Is(err, msstore.ErrUnavailable) || took > timeout+time.Second {
				t.Errorf("%s without a deadline: error %v after %v, want ErrUnavailable after CallTimeout %v", tc.name, err, took, timeout)
			}
		}
	}

	t.Run("silent listener", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		var conns []net.Conn
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				mu.Lock()
				conns = append(conns, c)
				mu.Unlock()
			}
		}()
		t.Cleanup(func() {
			l.Close()
			mu.Lock()
			defer mu.Unlock()
			for _, c := range conns {
				c.Close()
			}
		})
		_, cliCreds := testCreds(t, "peer")
		conn, err := Dial(l.Addr().String(), "peer", cliCreds)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		c := newTestStorageClient(t, conn, StorageConfig{CallTimeout: timeout})
		check(t, c, msstore.Ref{Node: 7, ID: 1, Size: 10}, nil)
	})

	t.Run("node stops answering", func(t *testing.T) {
		proxy, c := serveStorageViaProxy(t, newTestMemStore(t), StorageConfig{CallTimeout: timeout})
		ref := putBody(t, c, testBody(8, 4*chunkSize))
		b, err := c.Open(t.Context(), ref)
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		proxy.pause(true)
		check(t, c, ref, b)
		proxy.pause(false)
		waitFor(t, "the node to answer again", func() bool {
			_, err := b.ReadAt(make([]byte, 10), 3*chunkSize)
			return err == nil
		})
	})

	t.Run("connection cut", func(t *testing.T) {
		proxy, c := serveStorageViaProxy(t, newTestMemStore(t), StorageConfig{CallTimeout: timeout})
		ref := putBody(t, c, testBody(9, 4*chunkSize))
		b, err := c.Open(t.Context(), ref)
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		proxy.close() // no new connection either
		start := time.Now()
		for _, tc := range calls(c, ref, b) {
			if err := tc.fn(t.Context()); !errors.Is(err, msstore.ErrUnavailable) {
				t.Errorf("%s to a node cut off: error %v, want ErrUnavailable", tc.name, err)
			}
		}
		if took := time.Since(start); took > 7*timeout {
			t.Errorf("the calls to a node cut off took %v", took)
		}
	})
}

// TestStorageGarbage: refs and requests that make no sense get errors, not
// panics: a client's refs of bodies that are not there give ErrNotFound,
// undecodable ones on the wire InvalidArgument.
func TestStorageGarbage(t *testing.T) {
	st := newTestMemStore(t)
	srv := newStorageServer(st, storageServerConfig{Logger: testLogger(t)})
	conn := serve(t, func(s *grpc.Server) { pb.RegisterStorageServer(s, srv) })
	c := newTestStorageClient(t, conn, StorageConfig{})
	ref := putBody(t, c, testBody(10, 5000))
	r := rand.New(rand.NewPCG(10, 11))
	for i := range 200 {
		g := msstore.Ref{Node: r.Uint32(), Volume: r.Uint32(), Offset: r.Int64(), Size: r.Int64(), ID: r.Uint64(), Sum: r.Uint32()}
		if i%2 == 0 {
			g.Node = ref.Node
		}
		if i%4 == 0 {
			g.ID = ref.ID
		}
		if b, err := c.Open(t.Context(), g); !errors.Is(err, msstore.ErrNotFound) {
			if err == nil {
				b.Close()
			}
			t.Fatalf("Open(%v): error %v, want ErrNotFound", g, err)
		}
		if err := c.Retain(t.Context(), g, 1); !errors.Is(err, msstore.ErrNotFound) {
			t.Fatalf("Retain(%v): error %v, want ErrNotFound", g, err)
		}
		if err := c.Release(t.Context(), g); !errors.Is(err, msstore.ErrNotFound) {
			t.Fatalf("Release(%v): error %v, want ErrNotFound", g, err)
		}
	}

	raw := pb.NewStorageClient(conn)
	good := refToPB(ref)
	for _, b := range [][]byte{nil, {}, {1}, good[:len(good)-1], append(good, 0), append([]byte{9}, good[1:]...), bytes.Repeat([]byte{0xff}, len(good))} {
		if _, err := raw.Open(t.Context(), &pb.MSRef{Ref: b}); status.Code(err) != codes.InvalidArgument {
			t.Errorf("Open of ref bytes %x: %v, want InvalidArgument", b, err)
		}
		if _, err := raw.Release(t.Context(), &pb.MSRef{Ref: b}); status.Code(err) != codes.InvalidArgument {
			t.Errorf("Release of ref bytes %x: %v, want InvalidArgument", b, err)
		}
		if _, err := raw.Retain(t.Context(), &pb.MSRetain{Ref: b, N: 1}); status.Code(err) != codes.InvalidArgument {
			t.Errorf("Retain of ref bytes %x: %v, want InvalidArgument", b, err)
		}
	}
	for _, n := range []int64{0, -1, 1 << 40} {
		if _, err := raw.Retain(t.Context(), &pb.MSRetain{Ref: good, N: n}); status.Code(err) != codes.InvalidArgument {
			t.Errorf("Retain n=%d: %v, want InvalidArgument", n, err)
		}
	}
	readErr := func(m *pb.MSRead) error {
		s, err := raw.Read(t.Context(), m)
		if err != nil {
			return err
		}
		_, err = s.Recv()
		return err
	}
	for _, m := range []*pb.MSRead{{Handle: 0}, {Handle: 12345, Length: 10}, {Handle: 1, Offset: -1, Length: 1}, {Handle: 1, Length: -5}} {
		if err := readErr(m); err == nil {
			t.Errorf("Read %v succeeded", m)
		}
	}
	// Put without meta, without any message, with meta twice.
	putErr := func(msgs ...*pb.MSPutChunk) error {
		s, err := raw.Put(t.Context())
		if err != nil {
			return err
		}
		for _, m := range msgs {
			if err := s.Send(m); err != nil {
				break
			}
		}
		_, err = s.CloseAndRecv()
		return err
	}
	meta := &pb.MSMeta{MessageId: []byte("<x@example.test>")}
	if err := putErr(); status.Code(err) != codes.InvalidArgument {
		t.Errorf("Put of no message: %v, want InvalidArgument", err)
	}
	if err := putErr(&pb.MSPutChunk{Data: []byte("body")}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("Put without meta: %v, want InvalidArgument", err)
	}
	if err := putErr(&pb.MSPutChunk{Meta: meta}, &pb.MSPutChunk{Meta: meta, Data: []byte("x")}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("Put with meta twice: %v, want InvalidArgument", err)
	}
	if n := countBodies(t, st); n != 1 {
		t.Errorf("the store holds %d bodies after bad Puts, want 1", n)
	}
	// Reads past the end and at its edge, through a handle.
	large := putBody(t, c, testBody(11, chunkSize+10))
	b, err := c.Open(t.Context(), large)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	h := b.(*remoteBody).handle
	for _, m := range []*pb.MSRead{{Handle: h, Offset: chunkSize + 10, Length: 10}, {Handle: h, Offset: 1 << 50, Length: 1 << 50}} {
		s, err := raw.Read(t.Context(), m)
		if err != nil {
			t.Fatal(err)
		}
		chunk, err := s.Recv()
		if err != nil || len(chunk.GetData()) != 0 || !chunk.GetEof() {
			t.Errorf("Read %v: %v, %v; want an empty chunk at the end", m, chunk, err)
		}
	}
}

// TestStorageLargeBody: a 10 MiB body (on Volumes) round-trips, and
// ReadAt at arbitrary offsets and lengths, small and large, concurrent,
// gives its bytes.
func TestStorageLargeBody(t *testing.T) {
	const n = 10 << 20
	_, c := remoteStorage(t, newTestVolumes(t, 16<<20), storageServerConfig{}, StorageConfig{})
	data := testBody(12, n)
	ref, err := c.Put(t.Context(), readOnly{bytes.NewReader(data)}, msstore.Meta{MessageID: "<big@example.test>"})
	if err != nil {
		t.Fatal(err)
	}
	if ref.Size != n {
		t.Fatalf("Ref %v of a %d-byte body", ref, n)
	}
	b, err := c.Open(t.Context(), ref)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	whole := make([]byte, n)
	if got, err := b.ReadAt(whole, 0); got != n || (err != nil && err != io.EOF) || !bytes.Equal(whole, data) {
		t.Fatalf("ReadAt of the whole body: %d, %v (equal: %v)", got, err, bytes.Equal(whole, data))
	}
	got, err := io.ReadAll(io.NewSectionReader(b, 0, b.Size()))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("sequential read: %d bytes, %v", len(got), err)
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(12, uint64(g)))
			for range 50 {
				off := r.Int64N(n + 100)
				size := r.IntN(3 * chunkSize)
				if r.IntN(2) == 0 {
					size = r.IntN(5000) + 1
				}
				p := make([]byte, size)
				got, err := b.ReadAt(p, off)
				want := data[min(off, n):min(off+int64(size), n)]
				if got != len(want) || (got < size && err != io.EOF) || (got == size && err != nil && err != io.EOF) || !bytes.Equal(p[:got], want) {
					t.Errorf("ReadAt(%d bytes, off %d) = %d, %v; want %d bytes", size, off, got, err, len(want))
					return
				}
			}
		})
	}
	wg.Wait()
}

// readOnly hides a reader's other methods.
type readOnly struct{ r io.Reader }

func (r readOnly) Read(p []byte) (int, error) { return r.r.Read(p) }

// damagedStore's bodies fail to read from a given offset on, as a
// corrupt record would.
type damagedStore struct {
	msstore.Storage
	from int64
}

func (s damagedStore) Open(ctx context.Context, ref msstore.Ref) (msstore.Body, error) {
	b, err := s.Storage.Open(ctx, ref)
	if err != nil {
		return nil, err
	}
	return damagedBody{b, s.from}, nil
}

type damagedBody struct {
	msstore.Body
	from int64
}

func (b damagedBody) ReadAt(p []byte, off int64) (int, error) {
	if off+int64(len(p)) <= b.from {
		return b.Body.ReadAt(p, off)
	}
	n := 0
	if off < b.from {
		n, _ = b.Body.ReadAt(p[:b.from-off], off)
	}
	return n, fmt.Errorf("volume 1 offset %d: %w", b.from, msstore.ErrCorrupt)
}

// TestStorageCorrupt: a body that fails its checksums on the node fails
// ReadAt on the client with ErrCorrupt, after the good bytes before the
// damage; Open succeeds, as it does locally, small body or large.
func TestStorageCorrupt(t *testing.T) {
	mem := newTestMemStore(t)
	_, c := remoteStorage(t, damagedStore{mem, 1000}, storageServerConfig{}, StorageConfig{})
	for _, size := range []int{5000, 3 * chunkSize} {
		data := testBody(13, size)
		b, err := c.Open(t.Context(), putBody(t, mem, data))
		if err != nil {
			t.Fatalf("Open of a damaged body of %d bytes: %v", size, err)
		}
		p := make([]byte, 500)
		if _, err := b.ReadAt(p, 100); err != nil || !bytes.Equal(p, data[100:600]) {
			t.Errorf("ReadAt before the damage: %v", err)
		}
		p = make([]byte, 2000)
		n, err := b.ReadAt(p, 0)
		if !errors.Is(err, msstore.ErrCorrupt) {
			t.Errorf("ReadAt across the damage of a %d-byte body: %d, %v; want ErrCorrupt", size, n, err)
		}
		if n > 1000 || !bytes.Equal(p[:n], data[:n]) {
			t.Errorf("ReadAt across the damage gave %d bytes", n)
		}
		b.Close()
	}
}

// writableStore is a store whose Writable says what err holds.
type writableStore struct {
	msstore.Storage
	err error
}

func (s *writableStore) Writable() error { return s.err }

// TestStorageCapabilities: Writable follows the node's store (and is nil
// for a store without the capability); Walk of a store without it fails.
func TestStorageCapabilities(t *testing.T) {
	ws := &writableStore{Storage: newTestMemStore(t)}
	_, c := remoteStorage(t, ws, storageServerConfig{}, StorageConfig{})
	if err := c.Writable(); err != nil {
		t.Errorf("Writable of a writable node: %v", err)
	}
	ws.err = fmt.Errorf("no disk: %w", msstore.ErrReadOnly)
	if err := c.Writable(); !errors.Is(err, msstore.ErrUnavailable) {
		t.Errorf("Writable of a node that says no: %v, want ErrUnavailable", err)
	}
	if err := c.Walk(t.Context(), func(msstore.Ref, msstore.Meta) error { return nil }); err == nil {
		t.Error("Walk of a node whose store is no Walker succeeded")
	}

	_, mc := remoteStorage(t, newTestMemStore(t), storageServerConfig{}, StorageConfig{})
	if err := mc.Writable(); err != nil {
		t.Errorf("Writable of a Memory: %v", err)
	}
	mc.Close()
	if err := mc.Writable(); !errors.Is(err, msstore.ErrUnavailable) || !errors.Is(err, msstore.ErrClosed) {
		t.Errorf("Writable after Close: %v, want ErrUnavailable and ErrClosed", err)
	}
}
