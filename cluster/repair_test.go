package cluster_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/mailsys/mailsys/cluster"
	"github.com/mailsys/mailsys/cluster/rpc"
	"github.com/mailsys/mailsys/msstore"
	"github.com/mailsys/mailsys/msstore/storetest"
	"github.com/mailsys/mailsys/userdata"
)

// netCluster is a cluster of in-process nodes reached over real gRPC on
// loopback with mutual TLS: MS nodes serving an msstore.Memory each, UD
// nodes serving a userdata.DB each. A node can be stopped (its server
// ends; its clients' calls fail as a dead node's do) and removed from the
// registry.
type netCluster struct {
	t       testing.TB
	ca      *cluster.CA
	front   cluster.Credentials
	mu      sync.Mutex
	reg     cluster.Registry
	servers map[string]*grpc.Server
	stores  map[uint32]msstore.Storage // the clients
	locals  map[uint32]msstore.Storage // the MS nodes' own stores
	dbs     map[string]cluster.UserDB
}

func newNetCluster(t testing.TB) *netCluster {
	t.Helper()
	ca, err := cluster.NewCA("test", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	c := &netCluster{t: t, ca: ca, servers: map[string]*grpc.Server{}, stores: map[uint32]msstore.Storage{},
		locals: map[uint32]msstore.Storage{}, dbs: map[string]cluster.UserDB{}}
	c.front = c.creds("front")
	return c
}

func (c *netCluster) creds(id string) cluster.Credentials {
	c.t.Helper()
	certPEM, keyPEM, err := c.ca.Issue(id, []string{"127.0.0.1"}, time.Hour)
	if err != nil {
		c.t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		c.t.Fatal(err)
	}
	cr, err := cluster.NewCredentials(cert, c.ca.CertPEM())
	if err != nil {
		c.t.Fatal(err)
	}
	return cr
}

// start serves register's services as node id and returns a client
// connection to it.
func (c *netCluster) start(id string, register func(*grpc.Server)) (*grpc.ClientConn, string) {
	c.t.Helper()
	srv := rpc.NewServer(c.creds(id))
	register(srv)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		c.t.Fatal(err)
	}
	go srv.Serve(l)
	c.t.Cleanup(srv.Stop)
	conn, err := rpc.Dial(l.Addr().String(), id, c.front)
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { conn.Close() })
	c.mu.Lock()
	c.servers[id] = srv
	c.mu.Unlock()
	return conn, l.Addr().String()
}

func (c *netCluster) addMS(id string, num uint32, weight int) {
	local := msstore.NewMemory(num)
	conn, addr := c.start(id, func(s *grpc.Server) { rpc.RegisterStorage(s, local) })
	client := rpc.NewStorage(conn, id)
	c.t.Cleanup(func() { client.Close() })
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stores[num], c.locals[num] = client, local
	c.reg.Nodes = append(c.reg.Nodes, cluster.Node{ID: id, Num: num, Roles: cluster.RoleMS, Addr: addr, Weight: weight})
	c.reg.Version++
}

func (c *netCluster) addUD(id string, num uint32, bodies userdata.BodyRefs) {
	db, err := userdata.Open(context.Background(), userdata.Config{Dir: c.t.(*testing.T).TempDir(), Bodies: bodies, NoSync: true})
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { db.Close() })
	conn, addr := c.start(id, func(s *grpc.Server) { rpc.RegisterUserDB(s, db) })
	client := rpc.NewUserDB(conn, id)
	c.t.Cleanup(func() { client.Close() })
	c.mu.Lock()
	defer c.mu.Unlock()
	c.dbs[id] = client
	c.reg.Nodes = append(c.reg.Nodes, cluster.Node{ID: id, Num: num, Roles: cluster.RoleUD, Addr: addr, Weight: 10})
	c.reg.Version++
}

// kill stops node id's server for good: its clients' calls fail.
func (c *netCluster) kill(id string) {
	c.mu.Lock()
	srv := c.servers[id]
	c.mu.Unlock()
	srv.Stop()
}

// remove takes node id out of the registry.
func (c *netCluster) remove(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var kept []cluster.Node
	for _, n := range c.reg.Nodes {
		if n.ID != id {
			kept = append(kept, n)
		}
	}
	c.reg.Nodes = kept
	c.reg.Version++
}

func (c *netCluster) Registry() cluster.Registry {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reg
}

func (c *netCluster) Healthy(string) bool { return true } // no heartbeat here: the calls find out

func (c *netCluster) Storage(n cluster.Node) (msstore.Storage, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stores[n.Num], nil
}

func (c *netCluster) UserDB(n cluster.Node) (cluster.UserDB, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.dbs[n.ID], nil
}

func replicated(t testing.TB, p cluster.Peers) *cluster.Storage {
	t.Helper()
	s, err := cluster.NewStorageWith(p, cluster.StorageConfig{Replicas: 2})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestReplicatedConformance runs storetest over a Storage with two
// replicas across three MS nodes over gRPC. storetest expects the Refs of
// one store to name one node (first), with distinct ids: the weights put
// every first copy on ms1 (for the few hundred Puts of a subtest), while
// the second copies spread over ms2 and ms3.
func TestReplicatedConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) msstore.Storage {
		c := newNetCluster(t)
		c.addMS("ms1", 1, 1_000_000)
		c.addMS("ms2", 2, 1)
		c.addMS("ms3", 3, 1)
		return replicated(t, c)
	})
}

func TestStorageConfigValidate(t *testing.T) {
	for _, cfg := range []cluster.StorageConfig{{Replicas: -1}, {Replicas: 3}, {Lost: []uint32{0}}} {
		if err := cfg.Validate(); !errors.Is(err, cluster.ErrInvalid) {
			t.Errorf("Validate(%+v) = %v, want ErrInvalid", cfg, err)
		}
		if _, err := cluster.NewStorageWith(newLocalPeers(), cfg); err == nil {
			t.Errorf("NewStorageWith(%+v) succeeded", cfg)
		}
	}
	for _, cfg := range []cluster.StorageConfig{{}, cluster.DefaultStorageConfig(), {Replicas: 2, Lost: []uint32{4}}} {
		if err := cfg.Validate(); err != nil {
			t.Errorf("Validate(%+v) = %v", cfg, err)
		}
	}
}

func body(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 7))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func readBody(t *testing.T, s msstore.Storage, ref msstore.Ref) ([]byte, error) {
	t.Helper()
	b, err := s.Open(t.Context(), ref)
	if err != nil {
		return nil, err
	}
	defer b.Close()
	return io.ReadAll(io.NewSectionReader(b, 0, b.Size()))
}

func wantBody(t *testing.T, s msstore.Storage, ref msstore.Ref, want []byte, what string) {
	t.Helper()
	got, err := readBody(t, s, ref)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("%s: body of %v: %d bytes, %v; want %d bytes", what, ref, len(got), err, len(want))
	}
}

// TestReplicatedRepair: with two replicas every body is on two MS nodes;
// an MS node killed for good leaves every body readable (also one opened
// before); the repair walk over UD nodes on userdata.DB, reached over
// gRPC through Users, gives every body two live copies again; releasing
// every reference deletes both copies.
func TestReplicatedRepair(t *testing.T) {
	ctx := t.Context()
	c := newNetCluster(t)
	for i := uint32(1); i <= 3; i++ {
		c.addMS(fmt.Sprintf("ms%d", i), i, 10)
	}
	s := replicated(t, c)
	c.addUD("ud1", 11, s)
	c.addUD("ud2", 12, s)
	users := cluster.NewUsers(openDir(t), c, nil)
	must := func(err error, what string) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	must(users.CreateDomain(ctx, userdata.Domain{Name: "example.org"}), "CreateDomain")
	var us []userdata.User
	for i := range 4 {
		u, err := users.CreateUser(ctx, userdata.NewUser{Address: fmt.Sprintf("u%d@example.org", i)})
		must(err, "CreateUser")
		us = append(us, u)
	}

	// Each body is delivered to two users (two references).
	const bodies = 40
	type content struct {
		size int64
		sum  uint32
	}
	byContent := map[content][]byte{} // every body differs
	for i := range bodies {
		n := 100 + i*997
		if i%10 == 0 {
			n = 600 << 10 // past the remote Open's first window
		}
		data := body(uint64(i), n)
		a, b := us[i%4], us[(i+1)%4]
		ref, err := s.Put(ctx, bytes.NewReader(data), msstore.Meta{MessageID: fmt.Sprint(i),
			Owners: []msstore.Owner{{User: a.Address, Mailbox: "INBOX"}, {User: b.Address, Mailbox: "INBOX"}}})
		must(err, "Put")
		if !ref.HasCopy() || ref.Copy == ref.Node || ref.Node == 0 {
			t.Fatalf("Put %d: ref %v does not name two nodes", i, ref)
		}
		for _, u := range []userdata.User{a, b} {
			inbox, err := users.Folder(ctx, u.ID, "INBOX")
			must(err, "Folder")
			_, err = users.Append(ctx, u.ID, inbox.ID, userdata.NewMessage{Ref: ref, Size: int64(n), InternalDate: time.Now()})
			must(err, "Append")
		}
		byContent[content{ref.Size, ref.Sum}] = data
	}
	refsOf := func() map[msstore.Ref]int {
		t.Helper()
		out := map[msstore.Ref]int{}
		for _, u := range us {
			inbox, err := users.Folder(ctx, u.ID, "INBOX")
			must(err, "Folder")
			must(users.Messages(ctx, u.ID, inbox.ID, nil, func(m *userdata.Message) error {
				out[m.Ref]++
				return nil
			}), "Messages")
		}
		return out
	}
	dataOf := func(ref msstore.Ref) []byte {
		t.Helper()
		d, ok := byContent[content{ref.Size, ref.Sum}]
		if !ok {
			t.Fatalf("no body for %v", ref)
		}
		return d
	}

	// A large body open on its first copy before that node dies.
	var big msstore.Ref
	for r := range refsOf() {
		if r.Size == 600<<10 {
			big = r
			break
		}
	}
	open, err := s.Open(ctx, big)
	must(err, "Open")
	defer open.Close()
	head := make([]byte, 1000)
	if _, err := open.ReadAt(head, 0); err != nil {
		t.Fatal(err)
	}

	// Kill the first copy's node of that body for good.
	lostNum := big.Node
	lostID := fmt.Sprintf("ms%d", lostNum)
	c.kill(lostID)
	tail := make([]byte, 4096)
	if _, err := open.ReadAt(tail, big.Size-int64(len(tail))); err != nil {
		t.Fatalf("ReadAt after the first copy's node died: %v", err)
	}
	if d := dataOf(big); !bytes.Equal(tail, d[len(d)-len(tail):]) || !bytes.Equal(head, d[:len(head)]) {
		t.Fatal("the body read across the failover is not the body")
	}
	affected := 0
	for r := range refsOf() {
		wantBody(t, s, r, dataOf(r), "with "+lostID+" dead")
		if r.Node == lostNum || r.Copy == lostNum {
			affected++
		}
	}
	if affected == 0 {
		t.Fatal("no body had a copy on the killed node")
	}
	// Written now: two copies on the two nodes left.
	ref, err := s.Put(ctx, bytes.NewReader([]byte("after")), msstore.Meta{})
	if err != nil || !ref.HasCopy() || ref.Node == lostNum || ref.Copy == lostNum {
		t.Fatalf("Put with %s dead: %v, %v", lostID, ref, err)
	}
	must(s.Release(ctx, ref), "Release")

	// Lost for good: out of the registry, and repaired.
	c.remove(lostID)
	st, err := s.Repair(ctx, users, lostNum)
	must(err, "Repair")
	t.Logf("repair: %+v", st)
	if st.Entries != 2*bodies || st.Copied != affected || st.Affected != 2*affected || st.Rewritten != 2*affected ||
		st.Failed != 0 || st.Lost != 0 {
		t.Fatalf("repair stats %+v; want %d entries, %d bodies copied and %d entries rewritten", st, 2*bodies, affected, 2*affected)
	}
	final := refsOf()
	for r, n := range final {
		if !r.HasCopy() || r.Node == lostNum || r.Copy == lostNum {
			t.Fatalf("after the repair, ref %v (of %d entries) still names node %d or one node", r, n, lostNum)
		}
		if n != 2 {
			t.Fatalf("ref %v names %d entries, want 2 (one per recipient)", r, n)
		}
		d := dataOf(r)
		wantBody(t, s, r, d, "repaired")
		// Both copies, each from its own node.
		second, _ := r.Second()
		wantBody(t, c.stores[r.Node], r.First(), d, "the first copy")
		wantBody(t, c.stores[second.Node], second, d, "the second copy")
	}
	again, err := s.Repair(ctx, users, lostNum)
	if err != nil || again.Copied != 0 || again.Rewritten != 0 || again.Affected != 0 {
		t.Fatalf("second repair: %+v, %v; want nothing to do", again, err)
	}

	// Releasing every reference deletes both copies.
	for _, u := range us {
		inbox, err := users.Folder(ctx, u.ID, "INBOX")
		must(err, "Folder")
		_, err = users.StoreFlags(ctx, u.ID, inbox.ID, nil, userdata.FlagUpdate{Op: userdata.FlagsAdd, Flags: userdata.FlagDeleted})
		must(err, "StoreFlags")
		_, err = users.Expunge(ctx, u.ID, inbox.ID, nil)
		must(err, "Expunge")
	}
	for r := range final {
		second, _ := r.Second()
		for _, one := range []msstore.Ref{r.First(), second} {
			if _, err := c.locals[one.Node].Open(ctx, one); !errors.Is(err, msstore.ErrNotFound) {
				t.Errorf("copy %v after every reference was released: %v, want ErrNotFound", one, err)
			}
		}
	}
}
