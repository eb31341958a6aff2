package cluster_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/mailsys/mailsys/cluster"
	"github.com/mailsys/mailsys/msstore"
	"github.com/mailsys/mailsys/msstore/storetest"
	"github.com/mailsys/mailsys/userdata"
	"github.com/mailsys/mailsys/userdata/udtest"
)

// localPeers is a cluster of in-process nodes: the routers' logic apart
// from the network, which the rpc package and the multi-process tests
// cover. Nodes can be marked down, as a HeartBeat or a breaker would.
type localPeers struct {
	mu     sync.Mutex
	reg    cluster.Registry
	down   map[string]bool
	stores map[uint32]msstore.Storage
	dbs    map[string]cluster.UserDB
}

func (p *localPeers) Registry() cluster.Registry {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.reg
}

func (p *localPeers) Healthy(id string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return !p.down[id]
}

func (p *localPeers) setDown(id string, down bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down[id] = down
}

func (p *localPeers) Storage(n cluster.Node) (msstore.Storage, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.down[n.ID] {
		return nil, &cluster.Unavailable{Peer: n.ID}
	}
	return p.stores[n.Num], nil
}

func (p *localPeers) UserDB(n cluster.Node) (cluster.UserDB, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.down[n.ID] {
		return nil, &cluster.Unavailable{Peer: n.ID}
	}
	return p.dbs[n.ID], nil
}

func newLocalPeers() *localPeers {
	return &localPeers{down: map[string]bool{}, stores: map[uint32]msstore.Storage{}, dbs: map[string]cluster.UserDB{}}
}

func (p *localPeers) addMS(id string, num uint32, weight int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stores[num] = msstore.NewMemory(num)
	p.reg.Nodes = append(p.reg.Nodes, cluster.Node{ID: id, Num: num, Roles: cluster.RoleMS, Addr: "127.0.0.1:1", Weight: weight})
	p.reg.Version++
}

func (p *localPeers) addUD(t *testing.T, id string, num uint32, weight int, bodies userdata.BodyRefs) {
	db, err := userdata.NewMemory(userdata.MemoryConfig{Node: id, Bodies: bodies})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	p.mu.Lock()
	defer p.mu.Unlock()
	p.dbs[id] = db
	p.reg.Nodes = append(p.reg.Nodes, cluster.Node{ID: id, Num: num, Roles: cluster.RoleUD, Addr: "127.0.0.1:1", Weight: weight})
	p.reg.Version++
}

func openDir(t *testing.T) cluster.Directory {
	d, err := cluster.OpenLocalDirectory(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// TestUsersConformance runs udtest against the router over a UD node
// with a Directory: every promise of the UserDB holds through the router
// (ids from the Directory's sequences, addresses claimed in it). It runs
// over one node because a domain's quota is enforced by each UD node on
// the users it holds (see Users); the tests below cover several nodes.
func TestUsersConformance(t *testing.T) {
	udtest.Run(t, func(t *testing.T, bodies userdata.BodyRefs) userdata.UserDB {
		p := newLocalPeers()
		p.addUD(t, "ud1", 1, 10, bodies)
		return cluster.NewUsers(openDir(t), p, nil)
	})
}

// TestStorageConformance runs storetest against the router over an MS
// node (storetest expects every Ref of one store to name one node; the
// tests below cover several).
func TestStorageConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) msstore.Storage {
		p := newLocalPeers()
		p.addMS("ms1", 1, 10)
		return cluster.NewStorage(p, nil)
	})
}

// TestStorageFailover: a body goes to the next node by weight when its
// node is down, and to none when all are.
func TestStorageFailover(t *testing.T) {
	ctx := t.Context()
	p := newLocalPeers()
	p.addMS("ms1", 1, 10)
	p.addMS("ms2", 2, 10)
	s := cluster.NewStorage(p, nil)
	p.setDown("ms1", true)
	for i := range 20 {
		ref, err := s.Put(ctx, strings.NewReader("body"), msstore.Meta{})
		if err != nil || ref.Node != 2 {
			t.Fatalf("Put %d with ms1 down: %v on node %d, want node 2", i, err, ref.Node)
		}
	}
	p.setDown("ms2", true)
	if _, err := s.Put(ctx, strings.NewReader("body"), msstore.Meta{}); !errors.Is(err, msstore.ErrUnavailable) {
		t.Fatalf("Put with every node down: %v, want ErrUnavailable", err)
	}
	p.setDown("ms1", false)
	ref, err := s.Put(ctx, strings.NewReader("body"), msstore.Meta{})
	if err != nil || ref.Node != 1 {
		t.Fatalf("Put with ms1 back: %v on node %d, want node 1", err, ref.Node)
	}
	// The down node's bodies are unavailable, not gone.
	if _, err := s.Open(ctx, msstore.Ref{Node: 2, ID: 1}); !errors.Is(err, msstore.ErrUnavailable) {
		t.Fatalf("Open on a down node: %v, want ErrUnavailable", err)
	}
}

// flaky fails every Put with Unavailable after reading part of the body,
// as a node that dies mid-transfer does.
type flaky struct{ msstore.Storage }

func (f flaky) Put(ctx context.Context, r io.Reader, meta msstore.Meta) (msstore.Ref, error) {
	io.CopyN(io.Discard, r, 2)
	return msstore.Ref{}, &cluster.Unavailable{Peer: "ms1"}
}

// TestStorageRewind: a Put cut off by a failing node goes whole to the
// next one.
func TestStorageRewind(t *testing.T) {
	p := newLocalPeers()
	p.addMS("ms1", 1, 1000)
	p.addMS("ms2", 2, 1)
	p.stores[1] = flaky{p.stores[1]}
	s := cluster.NewStorage(p, nil)
	ref, err := s.Put(t.Context(), bytes.NewReader([]byte("the whole body")), msstore.Meta{})
	if err != nil || ref.Node != 2 {
		t.Fatalf("Put: %v on node %d, want node 2", err, ref.Node)
	}
	b, err := s.Open(t.Context(), ref)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	got, _ := io.ReadAll(io.NewSectionReader(b, 0, b.Size()))
	if string(got) != "the whole body" {
		t.Fatalf("body = %q", got)
	}
}

// TestUsersPlacement: users go to the UD nodes by weight, a masked or
// down node is skipped, and each user's calls go to its node.
func TestUsersPlacement(t *testing.T) {
	ctx := t.Context()
	p := newLocalPeers()
	mem := msstore.NewMemory(1)
	p.addUD(t, "ud1", 1, 10, mem)
	p.addUD(t, "ud2", 2, 30, mem)
	u := cluster.NewUsers(openDir(t), p, nil)
	if err := u.CreateDomain(ctx, userdata.Domain{Name: "example.test"}); err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	for i := range 400 {
		nu, err := u.CreateUser(ctx, userdata.NewUser{Address: "user" + itoa(i) + "@example.test"})
		if err != nil {
			t.Fatal(err)
		}
		count[nu.Node]++
	}
	if count["ud1"] != 100 || count["ud2"] != 300 {
		t.Fatalf("placements %v, want ud1 100 and ud2 300", count)
	}
	p.mu.Lock()
	p.reg.Nodes[1].Masked = true
	p.mu.Unlock()
	nu, err := u.CreateUser(ctx, userdata.NewUser{Address: "masked@example.test"})
	if err != nil || nu.Node != "ud1" {
		t.Fatalf("CreateUser with ud2 masked: %v on %q, want ud1", err, nu.Node)
	}
	p.setDown("ud1", true)
	if _, err := u.CreateUser(ctx, userdata.NewUser{Address: "nobody@example.test"}); !errors.Is(err, userdata.ErrUnavailable) {
		t.Fatalf("CreateUser with ud1 down and ud2 masked: %v, want ErrUnavailable", err)
	}
	// ud1's users get temporary errors; ud2's are served.
	if _, err := u.LookupAddress(ctx, "masked@example.test"); !errors.Is(err, userdata.ErrUnavailable) {
		t.Fatalf("LookupAddress of a user on a down node: %v, want ErrUnavailable", err)
	}
	var onUD2 string
	for i := range 400 {
		a := "user" + itoa(i) + "@example.test"
		if got, err := u.LookupAddress(ctx, a); err == nil && got.Node == "ud2" {
			onUD2 = a
			break
		}
	}
	if onUD2 == "" {
		t.Fatal("no user of ud2 could be looked up with ud1 down")
	}
	// An address taken on one node cannot be taken on another.
	p.setDown("ud1", false)
	if _, err := u.CreateUser(ctx, userdata.NewUser{Address: onUD2}); !errors.Is(err, userdata.ErrExists) {
		t.Fatalf("CreateUser of a taken address: %v, want ErrExists", err)
	}
}

func itoa(i int) string {
	var b [20]byte
	n := len(b)
	for {
		n--
		b[n] = byte('0' + i%10)
		if i /= 10; i == 0 {
			return string(b[n:])
		}
	}
}
