package node

import (
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"

	"github.com/mailsys/mailsys/cluster"
	"github.com/mailsys/mailsys/cluster/rpc"
	"github.com/mailsys/mailsys/msstore"
)

// peers is the node's cluster.Peers: the registry as the directory last
// sent it, the heartbeat's verdicts, and one gRPC connection per peer
// with its circuit breaker, dialled on first use and again when the
// registry moves the peer to another address.
type peers struct {
	creds   cluster.Credentials
	timeout time.Duration
	log     *slog.Logger
	reg     atomic.Pointer[cluster.Registry]
	hb      atomic.Pointer[cluster.Gossip]

	mu       sync.Mutex
	conns    map[string]*peer // by node id
	breakers map[string]*cluster.Breaker
	closed   bool
}

var _ cluster.Peers = (*peers)(nil)

// peer is the connection to one node and the clients over it.
type peer struct {
	addr  string
	conn  *grpc.ClientConn
	store *rpc.Storage
	users *rpc.UserDB
}

func newPeers(creds cluster.Credentials, timeout time.Duration, log *slog.Logger) *peers {
	p := &peers{creds: creds, timeout: timeout, log: log, conns: map[string]*peer{}, breakers: map[string]*cluster.Breaker{}}
	p.reg.Store(&cluster.Registry{})
	return p
}

// Registry implements cluster.Peers.
func (p *peers) Registry() cluster.Registry { return *p.reg.Load() }

func (p *peers) setRegistry(r cluster.Registry) {
	p.reg.Store(&r)
	p.mu.Lock()
	defer p.mu.Unlock()
	for id, c := range p.conns {
		if n, ok := r.Node(id); !ok || n.Addr != c.addr {
			// Gone, or moved: the next call dials the new address.
			c.close()
			delete(p.conns, id)
		}
	}
}

// setHeartBeat makes the heartbeat's verdicts trip and reset the
// breakers: traffic to a peer declared dead stops at once, and resumes
// (through a half-open probe) when it is alive again. A peer alive again
// is also dialled again at once: gRPC's reconnect backoff, grown while the
// peer was down, would otherwise keep the connection failing for seconds.
func (p *peers) setHeartBeat(g *cluster.Gossip) {
	p.hb.Store(g)
	g.Watch(func(m cluster.Member) {
		b := p.breaker(m.ID)
		if !m.Healthy {
			b.Trip()
			return
		}
		b.Reset()
		p.mu.Lock()
		c := p.conns[m.ID]
		p.mu.Unlock()
		if c != nil {
			c.conn.ResetConnectBackoff()
		}
	})
}

// Healthy implements cluster.Peers: the heartbeat says the peer is alive
// (once there is a heartbeat) and its breaker is not open.
func (p *peers) Healthy(id string) bool {
	if g := p.hb.Load(); g != nil && !g.Healthy(id) {
		return false
	}
	return p.breaker(id).State() != cluster.BreakerOpen
}

// breaker returns the breaker of peer id, made on first use.
func (p *peers) breaker(id string) *cluster.Breaker {
	p.mu.Lock()
	defer p.mu.Unlock()
	b, ok := p.breakers[id]
	if !ok {
		b = cluster.NewBreaker(id, cluster.BreakerConfig{CallTimeout: p.timeout, Logger: p.log})
		p.breakers[id] = b
	}
	return b
}

// dialOptions are the call options of connections to peer id: its
// breaker's interceptors.
func (p *peers) dialOptions(id string) []grpc.DialOption {
	b := p.breaker(id)
	return []grpc.DialOption{
		grpc.WithChainUnaryInterceptor(b.UnaryClientInterceptor()),
		grpc.WithChainStreamInterceptor(b.StreamClientInterceptor()),
	}
}

// conn returns the connection to n, dialling it on first use.
func (p *peers) conn(n cluster.Node) (*peer, error) {
	opts := p.dialOptions(n.ID)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, cluster.ErrClosed
	}
	if c, ok := p.conns[n.ID]; ok && c.addr == n.Addr {
		return c, nil
	}
	conn, err := rpc.Dial(n.Addr, n.ID, p.creds, opts...)
	if err != nil {
		return nil, &cluster.Unavailable{Peer: n.ID, Err: err}
	}
	c := &peer{addr: n.Addr, conn: conn, store: rpc.NewStorage(conn, n.ID), users: rpc.NewUserDB(conn, n.ID)}
	p.conns[n.ID] = c
	return c, nil
}

// Storage implements cluster.Peers.
func (p *peers) Storage(n cluster.Node) (msstore.Storage, error) {
	c, err := p.conn(n)
	if err != nil {
		return nil, err
	}
	return c.store, nil
}

// UserDB implements cluster.Peers.
func (p *peers) UserDB(n cluster.Node) (cluster.UserDB, error) {
	c, err := p.conn(n)
	if err != nil {
		return nil, err
	}
	return c.users, nil
}

// close closes every connection.
func (p *peers) close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	for id, c := range p.conns {
		c.close()
		delete(p.conns, id)
	}
	return nil
}

// close ends the clients (their watches and calls) and the connection.
func (c *peer) close() {
	c.users.Close()
	c.store.Close()
	c.conn.Close()
}
