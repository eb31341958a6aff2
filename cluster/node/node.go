// Package node runs one node of a mailsys cluster: the roles its Config
// names (front, ud, ms) in one process, joined to the others through the
// Directory (the node registry and users' placement), the heartbeat
// (memberlist) and gRPC with mutual TLS.
//
// A UD node serves a userdata.DB whose body references are counted on the
// MS nodes; an MS node serves an msstore.Volumes whose Refs carry its
// number; a front node runs a mailsys.System over the cluster's routers
// (cluster.Storage, cluster.Users), with its own transaction log and
// outbound queue. Each peer is reached through one gRPC connection with a
// circuit breaker, tripped by the heartbeat when the peer is declared
// dead and reset when it is alive again.
//
// A UD node with Config.Group is one of the two nodes of a replication
// group: the primary sends every commit to the standby before it is
// acknowledged, and the standby takes over, with the next epoch in the
// Directory, when the heartbeat declares the primary dead (see ha.go). A
// front with Config.Replicas 2 writes each body to two MS nodes and, when
// an MS node leaves the registry, makes its copies again.
//
// examples/cluster starts a whole cluster on one machine with it;
// examples/node is the program a deployment runs once per machine.
package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"google.golang.org/grpc"

	"github.com/mailsys/mailsys"
	"github.com/mailsys/mailsys/cluster"
	"github.com/mailsys/mailsys/cluster/pgdir"
	"github.com/mailsys/mailsys/cluster/rpc"
	"github.com/mailsys/mailsys/metrics"
	"github.com/mailsys/mailsys/msstore"
	"github.com/mailsys/mailsys/userdata"
)

// Node is a running node. Make one with Start; stop it with Shutdown.
type Node struct {
	cfg    Config
	log    *slog.Logger
	dir    cluster.Directory
	peers  *peers
	gossip *cluster.Gossip
	srv    *grpc.Server
	lis    net.Listener
	sys    *mailsys.System
	store  *cluster.Storage
	users  *cluster.Users
	group  *group // the UD replication group, if Config.Group

	msSeen  map[uint32]string // MS nodes seen in the registry, by number (watchLost)
	repairs sync.WaitGroup
	frontUp chan struct{} // closed once store and users are set

	cancel  context.CancelFunc
	bg      sync.WaitGroup
	closers []func() error // what Start opened; Shutdown closes them last first
}

// readyWait bounds how long Start waits for the directory and for the
// registered UD and MS nodes to answer their heartbeats before it opens
// the front (whose recovery needs them); past it, the front opens anyway
// and what cannot be reached is retried later.
const readyWait = 20 * time.Second

// Start starts the node: it opens the directory, registers the node (or
// updates its address and roles, keeping the weight and mask the
// directory has), serves its gRPC services, joins the heartbeat, and runs
// the front when it has that role. It returns once every part serves. If
// it fails, it has stopped what it started.
func Start(ctx context.Context, cfg Config) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Weight == 0 {
		cfg.Weight = defaultWeight
	}
	n := &Node{cfg: cfg, log: cfg.logger(), frontUp: make(chan struct{})}
	if err := n.start(ctx); err != nil {
		return nil, errors.Join(err, n.Shutdown(context.Background()))
	}
	return n, nil
}

func (n *Node) start(ctx context.Context) error {
	cfg := &n.cfg
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("node: %w", err)
	}
	creds, err := cluster.LoadCredentials(cfg.Cert, cfg.Key, cfg.CA)
	if err != nil {
		return err
	}
	bgCtx, cancel := context.WithCancel(context.Background())
	n.cancel = cancel
	n.peers = newPeers(creds, cfg.callTimeout(), n.log)
	n.closers = append(n.closers, n.peers.close)

	if err := n.openDirectory(ctx, creds); err != nil {
		return err
	}
	if cfg.Roles&cluster.RoleUD != 0 && cfg.Group != "" {
		// Before serving and the registry watch, which use it.
		n.group = newGroup(n, rpc.NewUserDBSlot())
		n.closers = append(n.closers, n.group.close)
	}
	if cfg.HoldDirectory {
		// The others reach the directory through this node's listener:
		// serve it before registering, and before anything waits on
		// the others.
		if err := n.serve(ctx, creds); err != nil {
			return err
		}
	}
	if err := n.register(ctx); err != nil {
		return err
	}
	first := make(chan struct{})
	var once sync.Once
	n.bg.Add(1)
	go func() {
		defer n.bg.Done()
		err := n.dir.WatchRegistry(bgCtx, func(r cluster.Registry) {
			n.peers.setRegistry(r)
			if g := n.peers.hb.Load(); g != nil {
				g.SetVersion(r.Version)
			}
			if n.group != nil {
				n.group.registry(r)
			}
			n.watchLost(bgCtx, r)
			once.Do(func() { close(first) })
		})
		if err != nil && bgCtx.Err() == nil {
			n.log.Error("registry watch ended", "err", err)
		}
	}()
	select {
	case <-first:
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(readyWait):
		return errors.New("node: the directory sent no registry")
	}

	if !cfg.HoldDirectory && cfg.Listen != "" {
		if err := n.serve(ctx, creds); err != nil {
			return err
		}
	}
	if err := n.joinGossip(bgCtx); err != nil {
		return err
	}
	if n.group != nil {
		stop := n.gossip.Watch(n.group.member)
		n.closers = append(n.closers, func() error { stop(); return nil })
		if err := n.group.start(ctx); err != nil {
			return err
		}
		n.bg.Add(1)
		go func() {
			defer n.bg.Done()
			n.group.watch(bgCtx)
		}()
	}
	if cfg.Roles&cluster.RoleFront != 0 {
		return n.startFront(ctx)
	}
	return nil
}

// openDirectory opens the directory Config names.
func (n *Node) openDirectory(ctx context.Context, creds cluster.Credentials) error {
	cfg := &n.cfg
	switch {
	case cfg.Postgres != "":
		d, err := pgdir.Open(ctx, cfg.Postgres, pgdir.Config{Logger: n.log})
		if err != nil {
			return err
		}
		n.dir = d
	case cfg.HoldDirectory:
		d, err := cluster.OpenLocalDirectory(filepath.Join(cfg.DataDir, "directory"), n.log)
		if err != nil {
			return err
		}
		n.dir = d
	default:
		conn, err := rpc.Dial(cfg.DirectoryAddr, cfg.DirectoryNode, creds, n.peers.dialOptions(cfg.DirectoryNode)...)
		if err != nil {
			return err
		}
		n.closers = append(n.closers, conn.Close)
		n.dir = rpc.NewDirectory(conn, cfg.DirectoryNode)
	}
	n.closers = append(n.closers, n.dir.Close)
	return nil
}

// register puts the node in the registry, keeping the weight and the mask
// the directory has for it. The directory may not answer yet (its node
// starting too): it is retried until readyWait.
func (n *Node) register(ctx context.Context) error {
	cfg := &n.cfg
	deadline := time.Now().Add(readyWait)
	for {
		err := n.registerOnce(ctx)
		if err == nil || !cluster.IsUnavailable(err) || time.Now().After(deadline) {
			return err
		}
		n.log.Info("directory not answering yet", "addr", cfg.DirectoryAddr, "err", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func (n *Node) registerOnce(ctx context.Context) error {
	cfg := &n.cfg
	reg, err := n.dir.Registry(ctx)
	if err != nil {
		return err
	}
	me := cluster.Node{ID: cfg.ID, Num: cfg.Num, Roles: cfg.Roles, Addr: cfg.advertise(), Weight: cfg.Weight}
	if old, ok := reg.Node(cfg.ID); ok {
		me.Weight, me.Masked = old.Weight, old.Masked
	}
	return n.dir.PutNode(ctx, me)
}

// serve opens the node's stores and serves them, and the directory when
// the node holds it, on the gRPC listener.
func (n *Node) serve(ctx context.Context, creds cluster.Credentials) error {
	cfg := &n.cfg
	var opts []grpc.ServerOption
	if n.group != nil {
		opts = n.group.slot.ServerOptions()
	}
	n.srv = rpc.NewServer(creds, opts...)
	if cfg.HoldDirectory {
		rpc.RegisterDirectory(n.srv, n.dir)
	}
	if cfg.Roles&cluster.RoleMS != 0 {
		sc := cfg.Store
		if len(sc.Dirs) == 0 {
			sc.Dirs = []msstore.Dir{{Path: filepath.Join(cfg.DataDir, "ms")}}
		}
		sc.Node = cfg.Num
		if sc.Logger == nil {
			sc.Logger = n.log
		}
		v, err := msstore.OpenVolumes(ctx, sc)
		if err != nil {
			return err
		}
		n.closers = append(n.closers, v.Close)
		rpc.RegisterStorage(n.srv, v)
	}
	if cfg.Roles&cluster.RoleUD != 0 {
		// One of each for every database the node opens (a standby
		// promoted opens another).
		if cfg.UserDB.Bodies == nil {
			cfg.UserDB.Bodies = cluster.NewStorage(n.peers, n.log)
		}
		if cfg.UserDB.PasswordLimiter == nil {
			cfg.UserDB.PasswordLimiter = userdata.NewPasswordLimiter(cfg.Passwords)
		}
	}
	switch {
	case n.group != nil:
		// The database opens once the node knows its place in the
		// group (primary or standby), after it joined the heartbeat.
		n.group.slot.Register(n.srv)
		rpc.RegisterReplication(n.srv, n.group)
	case cfg.Roles&cluster.RoleUD != 0:
		db, err := userdata.Open(ctx, n.udConfig())
		if err != nil {
			return err
		}
		n.closers = append(n.closers, db.Close)
		rpc.RegisterUserDB(n.srv, db)
	}
	l, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("node: listen on %s: %w", cfg.Listen, err)
	}
	n.lis = l
	n.bg.Add(1)
	go func() {
		defer n.bg.Done()
		if err := n.srv.Serve(l); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			n.log.Error("gRPC listener stopped", "addr", l.Addr(), "err", err)
		}
	}()
	return nil
}

// watchLost starts the repair walk (cluster.Storage.Repair) when an MS
// node leaves the registry: the operator removes a node lost for good, and
// every body with a copy there gets a new one. With Replicas 2 only, and on
// one front, the one with the lowest id, so that two walks do not copy the
// same bodies. It is called from the registry watch, one call at a time.
func (n *Node) watchLost(ctx context.Context, r cluster.Registry) {
	if n.msSeen == nil {
		n.msSeen = map[uint32]string{}
	}
	var gone []uint32
	now := map[uint32]bool{}
	for _, p := range r.Nodes {
		if p.Roles&cluster.RoleMS != 0 {
			now[p.Num] = true
			n.msSeen[p.Num] = p.ID
		}
	}
	for num := range n.msSeen {
		if !now[num] {
			gone = append(gone, num)
		}
	}
	if n.cfg.Replicas < 2 || n.cfg.Roles&cluster.RoleFront == 0 {
		return
	}
	for _, p := range r.Nodes {
		if p.Roles&cluster.RoleFront != 0 && p.ID < n.cfg.ID {
			return // that front repairs
		}
	}
	for _, num := range gone {
		id := n.msSeen[num]
		delete(n.msSeen, num)
		n.repairs.Add(1)
		go func() {
			defer n.repairs.Done()
			n.repair(ctx, id, num)
		}()
	}
}

// repair runs the repair walk for MS node num, lost for good, once the
// front is up.
func (n *Node) repair(ctx context.Context, id string, num uint32) {
	select {
	case <-ctx.Done():
		return
	case <-n.frontUp:
	}
	n.log.Warn("MS node removed from the registry: re-creating the copies it held", "ms", id, "num", num)
	if _, err := n.store.Repair(ctx, n.users, num); err != nil {
		n.log.Error("repair walk failed; it runs again when the node restarts or with Storage.Repair", "ms", id, "err", err)
	}
}

// udConfig is the UD role's userdata.Config.
func (n *Node) udConfig() userdata.Config {
	cfg := &n.cfg
	uc := cfg.UserDB
	if uc.Dir == "" {
		uc.Dir = filepath.Join(cfg.DataDir, "ud")
	}
	uc.Node = cfg.ID
	if cfg.Group != "" {
		uc.Node = cfg.Group // users live on the group, whichever node serves it
	}
	if uc.Logger == nil {
		uc.Logger = n.log
	}
	return uc
}

// joinGossip starts the heartbeat and joins the seeds, retrying in the
// background until one answers (the others may start later).
func (n *Node) joinGossip(ctx context.Context) error {
	cfg := &n.cfg
	host, port, err := net.SplitHostPort(cfg.Gossip)
	if err != nil {
		return fmt.Errorf("node: Gossip: %w", err)
	}
	gc := cluster.DefaultGossipConfig()
	gc.ID, gc.Num, gc.Roles, gc.RPCAddr = cfg.ID, cfg.Num, cfg.Roles, cfg.advertise()
	gc.BindAddr = host
	if gc.BindPort, err = strconv.Atoi(port); err != nil {
		return fmt.Errorf("node: Gossip port: %w", err)
	}
	gc.Key = cfg.GossipKey
	gc.Logger = n.log
	g, err := cluster.NewGossip(gc)
	if err != nil {
		return err
	}
	n.gossip = g
	n.closers = append(n.closers, g.Close)
	n.peers.setHeartBeat(g)
	g.SetVersion(n.peers.Registry().Version)
	if len(cfg.Seeds) == 0 {
		return nil
	}
	n.bg.Add(1)
	go func() {
		defer n.bg.Done()
		delay := 100 * time.Millisecond
		for {
			jctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			err := g.Join(jctx, cfg.Seeds)
			cancel()
			if err == nil {
				return
			}
			n.log.Debug("no gossip seed answered yet", "seeds", cfg.Seeds, "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(delay):
			}
			delay = min(2*delay, 5*time.Second)
		}
	}()
	return nil
}

// startFront waits (bounded) for the registered UD and MS nodes to answer,
// then opens and starts the front's System over the routers.
func (n *Node) startFront(ctx context.Context) error {
	cfg := &n.cfg
	n.waitPeers(ctx)
	store, err := cluster.NewStorageWith(n.peers, cluster.StorageConfig{Replicas: cfg.Replicas, Logger: n.log})
	if err != nil {
		return err
	}
	n.store = store
	n.users = cluster.NewUsers(n.dir, n.peers, n.log)
	close(n.frontUp)
	fc := cfg.Front
	fc.DataDir = filepath.Join(cfg.DataDir, "front")
	fc.Storage, fc.UserDB = n.store, n.users
	if fc.Logger == nil {
		fc.Logger = n.log
	}
	if fc.Metrics == nil && fc.AdminAddr != "" {
		fc.Metrics = metrics.New()
	}
	if fc.Metrics != nil {
		fc.Metrics.WatchPeers(n.peerStates)
	}
	if fc.AdminAddr != "" {
		if fc.Admin.Cluster == nil {
			fc.Admin.Cluster = clusterAdmin{n}
		}
		if fc.Admin.Events == nil && cfg.EventLog != "" {
			fc.Admin.Events = eventLog(cfg.EventLog)
		}
	}
	sys, err := mailsys.Open(ctx, fc)
	if err != nil {
		return err
	}
	n.sys = sys
	return sys.Start(ctx)
}

// waitPeers waits until at least one UD and one MS node are registered,
// and every node of Config.Peers, and every registered, unmasked UD and
// MS node answers its heartbeat,
// for at most readyWait: the nodes of a cluster start together, and the
// front's recovery needs them.
func (n *Node) waitPeers(ctx context.Context) {
	deadline := time.Now().Add(readyWait)
	for {
		var missing []string
		var roles cluster.Role
		for _, p := range n.peers.Registry().Nodes {
			if p.Roles&(cluster.RoleUD|cluster.RoleMS) == 0 || p.Masked {
				continue
			}
			if n.peers.Healthy(p.ID) {
				roles |= p.Roles
			} else {
				missing = append(missing, p.ID)
			}
		}
		reg := n.peers.Registry()
		for _, id := range n.cfg.Peers {
			if _, ok := reg.Node(id); !ok {
				missing = append(missing, id)
			}
		}
		if len(missing) == 0 && roles&cluster.RoleUD != 0 && roles&cluster.RoleMS != 0 {
			return
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			n.log.Warn("starting the front with nodes not answering", "nodes", missing, "serving", roles.String())
			return
		}
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// System returns the front's System, or nil on a node without the front
// role.
func (n *Node) System() *mailsys.System { return n.sys }

// Directory returns the directory the node runs on.
func (n *Node) Directory() cluster.Directory { return n.dir }

// Users returns the cluster's UserDB as this node routes it (nil without
// the front role).
func (n *Node) Users() *cluster.Users { return n.users }

// GRPCAddr returns the address the gRPC listener accepts on, or nil.
func (n *Node) GRPCAddr() net.Addr {
	if n.lis == nil {
		return nil
	}
	return n.lis.Addr()
}

// Shutdown stops the node: the front's System first (its sessions and
// deliveries finish until ctx ends), then the gRPC listener, the
// heartbeat (leaving the cluster, so that peers stop at once rather
// than after a timeout), the stores and the directory.
func (n *Node) Shutdown(ctx context.Context) error {
	var errs []error
	if n.sys != nil {
		errs = append(errs, n.sys.Shutdown(ctx))
	}
	if n.gossip != nil {
		errs = append(errs, n.gossip.Leave(ctx))
	}
	if n.srv != nil {
		stopped := make(chan struct{})
		go func() {
			n.srv.GracefulStop()
			close(stopped)
		}()
		select {
		case <-stopped:
		case <-ctx.Done():
			n.srv.Stop()
		}
	}
	if n.cancel != nil {
		n.cancel()
	}
	n.repairs.Wait()
	for i := len(n.closers) - 1; i >= 0; i-- {
		if err := n.closers[i](); err != nil && !errors.Is(err, cluster.ErrClosed) && !errors.Is(err, userdata.ErrClosed) && !errors.Is(err, msstore.ErrClosed) {
			errs = append(errs, err)
		}
	}
	n.closers = nil
	n.bg.Wait()
	return errors.Join(errs...)
}
