package rpc

import (
	"net"
	"sync"
	"testing"

	"github.com/mailsys/mailsys/cluster"
	"github.com/mailsys/mailsys/cluster/rpc/pb"
	"github.com/mailsys/mailsys/userdata"
)

// tcpProxy forwards loopback connections to a server, and can cut them
// all (a broken connection) or stop forwarding (a node that stops
// answering, its connections left open).
type tcpProxy struct {
	l      net.Listener
	target string
	creds  cluster.Credentials // a client's, for anotherClient

	mu     sync.Mutex
	cond   *sync.Cond
	paused bool
	closed bool
	conns  map[net.Conn]struct{}
}

func newTCPProxy(t testing.TB, target string) *tcpProxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &tcpProxy{l: l, target: target, conns: map[net.Conn]struct{}{}}
	p.cond = sync.NewCond(&p.mu)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

func (p *tcpProxy) addr() string { return p.l.Addr().String() }

func (p *tcpProxy) accept() {
	for {
		c, err := p.l.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns[c], p.conns[s] = struct{}{}, struct{}{}
		p.mu.Unlock()
		go p.pipe(c, s)
		go p.pipe(s, c)
	}
}

// pipe copies from src to dst, holding what it read while paused.
func (p *tcpProxy) pipe(dst, src net.Conn) {
	defer dst.Close()
	defer src.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.mu.Lock()
			for p.paused && !p.closed {
				p.cond.Wait()
			}
			p.mu.Unlock()
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// cut closes every connection made so far.
func (p *tcpProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
}

// pause stops (true) or resumes (false) forwarding.
func (p *tcpProxy) pause(paused bool) {
	p.mu.Lock()
	p.paused = paused
	p.mu.Unlock()
	p.cond.Broadcast()
}

func (p *tcpProxy) close() {
	p.l.Close()
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.cond.Broadcast()
	p.cut()
}

// serveUserDBViaProxy serves db over mutual TLS behind a tcpProxy and
// returns the server (to look at its watch streams), the proxy and a
// client configured by cfg (Peer set here).
func serveUserDBViaProxy(t testing.TB, db userdata.UserDB, cfg UserDBConfig) (*userDBServer, *tcpProxy, *UserDB) {
	t.Helper()
	srvCreds, cliCreds := testCreds(t, "peer")
	srv := NewServer(srvCreds)
	uds := newUserDBServer(db)
	pb.RegisterUserDBServer(srv, uds)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	t.Cleanup(srv.Stop)
	p := newTCPProxy(t, l.Addr().String())
	p.creds = cliCreds
	return uds, p, p.client(t, cfg)
}

// client returns a new client of the proxy's server, on a connection of
// its own.
func (p *tcpProxy) client(t testing.TB, cfg UserDBConfig) *UserDB {
	t.Helper()
	conn, err := Dial(p.addr(), "peer", p.creds)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	cfg.Peer = "peer"
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	c := NewUserDBWith(conn, cfg)
	t.Cleanup(func() { c.Close() })
	return c
}

// watchStreams counts the server's watch streams.
func (s *userDBServer) watchStreams() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, set := range s.streams {
		n += len(set)
	}
	return n
}
