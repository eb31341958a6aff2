package cluster

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
)

// HeartBeat tells a node which of its peers are alive, and when that
// changes. Gossip is the implementation over hashicorp/memberlist.
//
// Healthy and Members return what is known now and never block on the
// network: they may be called for every routed call. Every method is safe
// for concurrent use.
type HeartBeat interface {
	// Healthy reports whether peer id is alive now. It is true for the
	// node itself and false for an id it has never heard of.
	Healthy(id string) bool
	// Members returns the peers known now (the node itself included),
	// in no particular order. A peer that failed stays listed, not
	// healthy, until it comes back; one that left is dropped.
	Members() []Member
	// Watch calls fn with every member known now, then again with the
	// member each time one joins, fails, leaves, comes back, restarts or
	// changes its metadata, until stop is called or the HeartBeat is
	// closed. The calls of every watcher come from one goroutine, one at
	// a time, in the order of the changes, and never while the
	// HeartBeat holds a lock: fn may call the HeartBeat's methods (not
	// Close), but a slow fn delays the other watchers. After stop returns
	// fn is not called again, except for a call already in progress.
	Watch(fn func(Member)) (stop func())
	// Close stops the heartbeat: the peers see this node fail. Watch
	// calls in progress finish before it returns; none starts after.
	// Then Members is empty and Healthy false but for the node itself.
	Close() error
}

var _ HeartBeat = (*Gossip)(nil)

// Member is what a HeartBeat knows of one node.
type Member struct {
	ID      string // the node id (Node.ID), its name in the gossip
	Num     uint32 // the node number (Node.Num)
	Roles   Role   // what it serves
	RPCAddr string // host:port of its gRPC server
	Version uint64 // the registry version it runs on (Gossip.SetVersion)
	Healthy bool   // alive now
	// Left is true when the node left the cluster on purpose (Leave);
	// it is no longer in Members.
	Left bool
	// Addr is the host:port of its gossip listener.
	Addr string
	// Started is when the node's heartbeat started: it changes when the
	// node restarts.
	Started time.Time
}

// GossipConfig configures a Gossip. The zero value of each field but ID
// and Num means its default (the values of DefaultGossipConfig); BindPort
// 0 asks for a free port. The failure detection defaults suit a LAN (or
// one machine): a peer that stops answering is declared dead in about one
// to two seconds in a cluster of up to ten nodes, a little more in larger
// ones (the suspicion time grows with log10 of the size). Loosen
// ProbeInterval, ProbeTimeout and SuspicionMult over a slow network.
type GossipConfig struct {
	// ID is the node's id (see Node.ID), its unique name in the gossip.
	ID string
	// Num is the node's number (Node.Num), above 0.
	Num uint32
	// Roles are what the node serves.
	Roles Role
	// RPCAddr is the host:port the peers reach the node's gRPC server at.
	RPCAddr string

	// BindAddr and BindPort are where the gossip listens, on TCP and UDP
	// both. The defaults are 0.0.0.0 and 7946; port 0 picks a free one
	// (Gossip.Addr tells which).
	BindAddr string
	BindPort int
	// AdvertiseAddr and AdvertisePort are the address the peers reach the
	// gossip at, when it is not the bound one (behind NAT). Empty and 0
	// mean the bound address (for 0.0.0.0, the first private one).
	AdvertiseAddr string
	AdvertisePort int
	// Label names the cluster: a node refuses the gossip of nodes with
	// another label (at most 255 bytes), so that two clusters on one
	// network cannot merge by mistake. Empty is a label too.
	Label string
	// Key encrypts and authenticates the gossip (AES-GCM): 16, 24 or 32
	// bytes, the same on every node. Nil leaves it in the clear; a node
	// with another key, or none, cannot join.
	Key []byte

	// ProbeInterval is how often the node probes a random peer (default
	// 200ms); ProbeTimeout how long it waits for the direct answer before
	// asking other peers to probe it (default 100ms, below ProbeInterval).
	ProbeInterval time.Duration
	ProbeTimeout  time.Duration
	// SuspicionMult scales how long a peer that missed a probe stays
	// suspect before it is declared dead: SuspicionMult × ProbeInterval
	// × max(1, log10(cluster size)), once other peers confirm it (default
	// 3). SuspicionMaxTimeoutMult bounds the time without confirmations,
	// as a multiple of that (default 4).
	SuspicionMult           int
	SuspicionMaxTimeoutMult int
	// GossipInterval is how often the node sends news to GossipNodes
	// random peers (defaults 100ms and 3).
	GossipInterval time.Duration
	GossipNodes    int
	// PushPullInterval is how often the node syncs its whole state with
	// a random peer (default 10s).
	PushPullInterval time.Duration
	// TCPTimeout bounds a state sync with a peer, as in Join (default 2s).
	TCPTimeout time.Duration
	// DeadNodeReclaimTime is how long after a peer was declared dead a
	// node with its id may take its place from another address (default
	// 100ms: a restarted node is taken back at once; on the same address
	// it always is).
	DeadNodeReclaimTime time.Duration
	// UpdateTimeout bounds the wait of SetVersion's broadcast and of
	// Leave without a deadline (default 1s).
	UpdateTimeout time.Duration

	// Logger receives membership changes and memberlist's own log, at
	// its levels. Nil means slog.Default().
	Logger *slog.Logger
}

// Defaults of GossipConfig.
const (
	DefaultGossipPort = 7946

	defaultProbeInterval      = 200 * time.Millisecond
	defaultProbeTimeout       = 100 * time.Millisecond
	defaultSuspicionMult      = 3
	defaultSuspicionMaxMult   = 4
	defaultGossipInterval     = 100 * time.Millisecond
	defaultGossipNodes        = 3
	defaultPushPullInterval   = 10 * time.Second
	defaultTCPTimeout         = 2 * time.Second
	defaultDeadReclaim        = 100 * time.Millisecond
	defaultUpdateTimeout      = time.Second
	forgetFailedAfter         = time.Hour // a failed member is dropped from Members after it
	gossipToTheDeadMultiplier = 75        // × ProbeInterval: 15s by default
)

// DefaultGossipConfig returns the defaults, for the node to fill in ID,
// Num, Roles, RPCAddr and its addresses.
func DefaultGossipConfig() GossipConfig {
	return GossipConfig{
		BindAddr:                "0.0.0.0",
		BindPort:                DefaultGossipPort,
		ProbeInterval:           defaultProbeInterval,
		ProbeTimeout:            defaultProbeTimeout,
		SuspicionMult:           defaultSuspicionMult,
		SuspicionMaxTimeoutMult: defaultSuspicionMaxMult,
		GossipInterval:          defaultGossipInterval,
		GossipNodes:             defaultGossipNodes,
		PushPullInterval:        defaultPushPullInterval,
		TCPTimeout:              defaultTCPTimeout,
		DeadNodeReclaimTime:     defaultDeadReclaim,
		UpdateTimeout:           defaultUpdateTimeout,
	}
}

// withDefaults fills in the zero fields.
func (c GossipConfig) withDefaults() GossipConfig {
	def := DefaultGossipConfig()
	if c.BindAddr == "" {
		c.BindAddr = def.BindAddr
	}
	setDur := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	setInt := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	setDur(&c.ProbeInterval, def.ProbeInterval)
	setDur(&c.ProbeTimeout, def.ProbeTimeout)
	setInt(&c.SuspicionMult, def.SuspicionMult)
	setInt(&c.SuspicionMaxTimeoutMult, def.SuspicionMaxTimeoutMult)
	setDur(&c.GossipInterval, def.GossipInterval)
	setInt(&c.GossipNodes, def.GossipNodes)
	setDur(&c.PushPullInterval, def.PushPullInterval)
	setDur(&c.TCPTimeout, def.TCPTimeout)
	setDur(&c.DeadNodeReclaimTime, def.DeadNodeReclaimTime)
	setDur(&c.UpdateTimeout, def.UpdateTimeout)
	return c
}

// Validate reports every problem of c at once, each wrapping ErrInvalid.
// Zero fields are taken as their defaults.
func (c GossipConfig) Validate() error {
	c = c.withDefaults()
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: gossip: "+format, append([]any{ErrInvalid}, args...)...))
	}
	if !nodeID.MatchString(c.ID) {
		bad("node id %q: want 1 to 63 lower-case letters, digits or hyphens, starting with a letter", c.ID)
	}
	if c.Num == 0 {
		bad("node %s: number 0", c.ID)
	}
	if c.Roles&^allRoles != 0 {
		bad("node %s: roles %s", c.ID, c.Roles)
	}
	if c.BindPort < 0 || c.BindPort > 65535 || c.AdvertisePort < 0 || c.AdvertisePort > 65535 {
		bad("port %d or %d out of range", c.BindPort, c.AdvertisePort)
	}
	if len(c.Label) > memberlist.LabelMaxSize {
		bad("label of %d bytes: %d at most", len(c.Label), memberlist.LabelMaxSize)
	}
	switch len(c.Key) {
	case 0, 16, 24, 32:
	default:
		bad("key of %d bytes: want 16, 24 or 32", len(c.Key))
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"ProbeInterval", c.ProbeInterval}, {"ProbeTimeout", c.ProbeTimeout}, {"GossipInterval", c.GossipInterval},
		{"PushPullInterval", c.PushPullInterval}, {"TCPTimeout", c.TCPTimeout},
		{"DeadNodeReclaimTime", c.DeadNodeReclaimTime}, {"UpdateTimeout", c.UpdateTimeout}} {
		if d.v < 0 {
			bad("%s %v is negative", d.name, d.v)
		}
	}
	if c.ProbeTimeout >= c.ProbeInterval {
		bad("ProbeTimeout %v is not below ProbeInterval %v", c.ProbeTimeout, c.ProbeInterval)
	}
	if c.SuspicionMult < 1 || c.SuspicionMaxTimeoutMult < 1 || c.GossipNodes < 1 {
		bad("SuspicionMult %d, SuspicionMaxTimeoutMult %d and GossipNodes %d must be at least 1",
			c.SuspicionMult, c.SuspicionMaxTimeoutMult, c.GossipNodes)
	}
	// The largest metadata the node can have: the version at its widest.
	if n := len(encodeMeta(c.metaFor(^uint64(0), time.Now()), metaLeaving)); n > memberlist.MetaMaxSize {
		bad("node %s: metadata of %d bytes (RPCAddr %d bytes): memberlist takes %d at most",
			c.ID, n, len(c.RPCAddr), memberlist.MetaMaxSize)
	}
	return errors.Join(errs...)
}

func (c GossipConfig) metaFor(version uint64, started time.Time) Member {
	return Member{ID: c.ID, Num: c.Num, Roles: c.Roles, RPCAddr: c.RPCAddr, Version: version, Started: started}
}

// Gossip is the HeartBeat over hashicorp/memberlist (SWIM: random probes,
// indirect probes through other peers, suspicion, and gossip of the
// verdicts). Each node's Member fields travel in its memberlist metadata.
//
// Its methods are safe for concurrent use. Healthy and Members read a
// table kept up to date by memberlist's events, under a read lock.
type Gossip struct {
	cfg     GossipConfig
	log     *slog.Logger
	ml      *memberlist.Memberlist
	started time.Time
	version atomic.Uint64
	leaving atomic.Bool // in the metadata: a NotifyLeave that follows is a Leave

	// life is held for reading by the calls into memberlist that must
	// not run after its Shutdown (UpdateNode, Leave), and for writing by
	// Close.
	life   sync.RWMutex
	closed bool // under life

	mu       sync.RWMutex
	members  map[string]*memberState
	watchers map[*watcher]struct{}
	queue    []watchEvent
	stopping bool // under mu: the dispatcher is to exit

	wake      chan struct{} // cap 1: the queue or stopping changed
	done      chan struct{} // closed when the dispatcher has exited
	updates   chan struct{} // cap 1: SetVersion asks for a broadcast
	quit      chan struct{} // closed by Close: the updater exits
	updaterWG sync.WaitGroup
}

type memberState struct {
	m        Member
	failedAt time.Time // when it was declared dead, if it is
}

type watcher struct {
	fn      func(Member)
	stopped atomic.Bool
}

type watchEvent struct {
	m  Member
	to []*watcher // the watchers at the time of the change
}

// NewGossip starts the heartbeat of node c.ID, listening on
// c.BindAddr:c.BindPort. The node is alone until Join. c is copied; it
// must pass Validate.
func NewGossip(c GossipConfig) (*Gossip, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	c = c.withDefaults()
	c.Key = append([]byte(nil), c.Key...)
	logger := c.Logger
	if logger == nil {
		logger = slog.Default()
	}
	g := &Gossip{
		cfg:      c,
		log:      logger.With("component", "gossip", "node", c.ID),
		started:  time.Now(),
		members:  map[string]*memberState{},
		watchers: map[*watcher]struct{}{},
		wake:     make(chan struct{}, 1),
		done:     make(chan struct{}),
		updates:  make(chan struct{}, 1),
		quit:     make(chan struct{}),
	}

	mc := memberlist.DefaultLANConfig()
	mc.Name = c.ID
	mc.BindAddr, mc.BindPort = c.BindAddr, c.BindPort
	mc.AdvertiseAddr, mc.AdvertisePort = c.AdvertiseAddr, c.AdvertisePort
	if mc.AdvertisePort == 0 {
		mc.AdvertisePort = c.BindPort
	}
	if len(c.Key) > 0 {
		mc.SecretKey = c.Key
	}
	mc.Label = c.Label
	mc.ProbeInterval, mc.ProbeTimeout = c.ProbeInterval, c.ProbeTimeout
	mc.SuspicionMult, mc.SuspicionMaxTimeoutMult = c.SuspicionMult, c.SuspicionMaxTimeoutMult
	mc.GossipInterval, mc.GossipNodes = c.GossipInterval, c.GossipNodes
	mc.GossipToTheDeadTime = gossipToTheDeadMultiplier * c.ProbeInterval
	mc.PushPullInterval, mc.TCPTimeout = c.PushPullInterval, c.TCPTimeout
	mc.DeadNodeReclaimTime = c.DeadNodeReclaimTime
	mc.Delegate = gossipMeta{g}
	mc.Events = gossipEvents{g}
	mc.Logger = log.New(&slogWriter{log: g.log.With("component", "memberlist")}, "", 0)

	go g.dispatch()
	ml, err := memberlist.Create(mc)
	if err != nil {
		g.stopDispatch()
		return nil, fmt.Errorf("cluster: gossip on %s: %w", net.JoinHostPort(c.BindAddr, strconv.Itoa(c.BindPort)), err)
	}
	g.ml = ml
	g.updaterWG.Add(1)
	go g.updater()
	return g, nil
}

// Addr returns the host:port the gossip is advertised at, which tells
// the port picked when BindPort was 0.
func (g *Gossip) Addr() string {
	n := g.ml.LocalNode()
	return net.JoinHostPort(n.Addr.String(), strconv.Itoa(int(n.Port)))
}

// Join contacts the seeds (host:port of other nodes' gossip; a seed that
// is this node is harmless) in parallel and syncs state with each that
// answers, until ctx is done. It returns nil if at least one answered,
// and otherwise an error naming why each failed. The node keeps in touch
// with the cluster by itself afterwards; Join is needed only to find it.
func (g *Gossip) Join(ctx context.Context, seeds []string) error {
	if len(seeds) == 0 {
		return fmt.Errorf("%w: gossip join: no seeds", ErrInvalid)
	}
	g.life.RLock()
	closed := g.closed
	g.life.RUnlock()
	if closed {
		return ErrClosed
	}
	results := make(chan error, len(seeds)) // buffered: late answers do not block
	for _, s := range seeds {
		go func() {
			g.life.RLock()
			defer g.life.RUnlock()
			if g.closed {
				results <- ErrClosed
				return
			}
			_, err := g.ml.Join([]string{s})
			if err != nil {
				err = fmt.Errorf("%s: %w", s, err)
			}
			results <- err
		}()
	}
	var errs []error
	ok := false
	for range seeds {
		select {
		case err := <-results:
			if err == nil {
				ok = true
			} else {
				errs = append(errs, err)
			}
		case <-ctx.Done():
			if ok {
				return nil
			}
			return fmt.Errorf("cluster: gossip join: %w (%w)", ctx.Err(), errors.Join(errs...))
		}
	}
	if ok {
		return nil
	}
	return fmt.Errorf("cluster: gossip join: no seed answered: %w", errors.Join(errs...))
}

// SetVersion sets the registry version in the node's metadata and has
// it broadcast in the background: the peers see it within a gossip
// interval or two. It does not block. After Close it does nothing.
func (g *Gossip) SetVersion(v uint64) {
	if g.version.Swap(v) == v {
		return
	}
	select {
	case g.updates <- struct{}{}:
	default: // an update is pending already; it will read the new version
	}
}

// updater re-advertises the node's metadata after SetVersion, one
// broadcast at a time, until Close.
func (g *Gossip) updater() {
	defer g.updaterWG.Done()
	for {
		select {
		case <-g.quit:
			return
		case <-g.updates:
		}
		g.life.RLock()
		if !g.closed {
			if err := g.ml.UpdateNode(g.cfg.UpdateTimeout); err != nil {
				g.log.Debug("metadata update not confirmed", "err", err)
			}
		}
		g.life.RUnlock()
	}
}

// Healthy implements HeartBeat.
func (g *Gossip) Healthy(id string) bool {
	if id == g.cfg.ID {
		return true
	}
	g.mu.RLock()
	s, ok := g.members[id]
	healthy := ok && s.m.Healthy
	g.mu.RUnlock()
	return healthy
}

// Members implements HeartBeat.
func (g *Gossip) Members() []Member {
	g.mu.RLock()
	defer g.mu.RUnlock()
	out := make([]Member, 0, len(g.members))
	for _, s := range g.members {
		out = append(out, s.m)
	}
	return out
}

// Watch implements HeartBeat.
func (g *Gossip) Watch(fn func(Member)) (stop func()) {
	w := &watcher{fn: fn}
	g.mu.Lock()
	if !g.stopping {
		g.watchers[w] = struct{}{}
		for _, s := range g.members {
			g.queue = append(g.queue, watchEvent{m: s.m, to: []*watcher{w}})
		}
	}
	g.mu.Unlock()
	g.signal()
	return func() {
		w.stopped.Store(true)
		g.mu.Lock()
		delete(g.watchers, w)
		g.mu.Unlock()
	}
}

// Leave tells the cluster that the node is leaving, and waits until that
// is sent, or ctx is done (or GossipConfig.UpdateTimeout without a
// deadline). The peers drop it from their members at once instead of
// declaring it failed. Close it after.
func (g *Gossip) Leave(ctx context.Context) error {
	timeout := g.cfg.UpdateTimeout
	if d, ok := ctx.Deadline(); ok {
		timeout = time.Until(d)
	}
	if timeout <= 0 {
		return ctx.Err()
	}
	done := make(chan error, 1)
	go func() {
		g.life.RLock()
		defer g.life.RUnlock()
		if g.closed {
			done <- ErrClosed
			return
		}
		// First the flag that tells the peers this is no failure, then
		// memberlist's leave.
		start := time.Now()
		if !g.leaving.Swap(true) {
			if err := g.ml.UpdateNode(timeout); err != nil {
				done <- err
				return
			}
		}
		left := timeout - time.Since(start)
		if left <= 0 {
			done <- context.DeadlineExceeded
			return
		}
		done <- g.ml.Leave(left)
	}()
	select {
	case err := <-done:
		if err != nil && !errors.Is(err, ErrClosed) {
			err = fmt.Errorf("cluster: gossip leave: %w", err)
		}
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close implements HeartBeat: it stops the gossip without leaving (use
// Leave first for a planned stop), so the peers see a crash. A second
// Close returns ErrClosed. It must not be called from a Watch callback.
func (g *Gossip) Close() error {
	g.life.Lock()
	if g.closed {
		g.life.Unlock()
		return ErrClosed
	}
	g.closed = true
	err := g.ml.Shutdown()
	close(g.quit)
	g.life.Unlock()
	g.updaterWG.Wait()
	g.stopDispatch()
	if err != nil {
		return fmt.Errorf("cluster: gossip close: %w", err)
	}
	return nil
}

// stopDispatch ends the dispatcher and waits for it.
func (g *Gossip) stopDispatch() {
	g.mu.Lock()
	g.stopping = true
	g.queue = nil
	clear(g.members) // nothing fresh is known any more
	g.mu.Unlock()
	g.signal()
	<-g.done
}

func (g *Gossip) signal() {
	select {
	case g.wake <- struct{}{}:
	default:
	}
}

// dispatch calls the watchers with the queued changes, in order, until
// stopDispatch.
func (g *Gossip) dispatch() {
	defer close(g.done)
	for range g.wake {
		for {
			g.mu.Lock()
			if g.stopping {
				g.mu.Unlock()
				return
			}
			if len(g.queue) == 0 {
				g.queue = nil // let a burst's backing array go
				g.mu.Unlock()
				break
			}
			ev := g.queue[0]
			g.queue[0] = watchEvent{}
			g.queue = g.queue[1:]
			g.mu.Unlock()
			for _, w := range ev.to {
				if !w.stopped.Load() {
					w.fn(ev.m)
				}
			}
		}
	}
}

// change records what memberlist said of node n, and queues it for the
// watchers. It is called from memberlist's event delegate, under
// memberlist's lock: it must not block or call memberlist.
func (g *Gossip) change(n *memberlist.Node, healthy bool) {
	m, flags, err := decodeMeta(n.Meta)
	if err != nil {
		g.log.Warn("peer metadata unreadable", "peer", n.Name, "err", err)
	} else if m.ID != n.Name {
		g.log.Warn("peer metadata names another node", "peer", n.Name, "meta_id", m.ID)
	}
	m.ID = n.Name
	m.Addr = net.JoinHostPort(n.Addr.String(), strconv.Itoa(int(n.Port)))
	m.Healthy = healthy
	m.Left = !healthy && flags&metaLeaving != 0
	now := time.Now()

	g.mu.Lock()
	if g.stopping {
		g.mu.Unlock()
		return
	}
	prev, known := g.members[n.Name]
	switch {
	case m.Left:
		delete(g.members, n.Name)
	case healthy:
		if !known {
			g.forgetFailed(now)
		}
		g.members[n.Name] = &memberState{m: m}
	default:
		g.members[n.Name] = &memberState{m: m, failedAt: now}
	}
	to := make([]*watcher, 0, len(g.watchers))
	for w := range g.watchers {
		to = append(to, w)
	}
	if len(to) > 0 {
		g.queue = append(g.queue, watchEvent{m: m, to: to})
	}
	g.mu.Unlock()
	g.signal()

	if n.Name == g.cfg.ID {
		return
	}
	switch {
	case m.Left:
		g.log.Info("peer left", "peer", m.ID, "addr", m.Addr)
	case !healthy:
		g.log.Warn("peer failed", "peer", m.ID, "addr", m.Addr)
	case known && !prev.m.Started.IsZero() && !m.Started.Equal(prev.m.Started):
		g.log.Info("peer restarted", "peer", m.ID, "addr", m.Addr, "started", m.Started)
	case !known || !prev.m.Healthy:
		g.log.Info("peer alive", "peer", m.ID, "addr", m.Addr, "roles", m.Roles, "version", m.Version)
	default:
		g.log.Debug("peer metadata changed", "peer", m.ID, "version", m.Version)
	}
}

// forgetFailed drops the members that failed long ago, so that the table
// does not grow with every name ever heard. Called under g.mu.
func (g *Gossip) forgetFailed(now time.Time) {
	for id, s := range g.members {
		if !s.m.Healthy && now.Sub(s.failedAt) > forgetFailedAfter {
			delete(g.members, id)
		}
	}
}

// gossipEvents is memberlist's EventDelegate.
type gossipEvents struct{ g *Gossip }

func (e gossipEvents) NotifyJoin(n *memberlist.Node)   { e.g.change(n, true) }
func (e gossipEvents) NotifyLeave(n *memberlist.Node)  { e.g.change(n, false) }
func (e gossipEvents) NotifyUpdate(n *memberlist.Node) { e.g.change(n, true) }

// gossipMeta is memberlist's Delegate: only the metadata; the node sends
// no messages or state of its own.
type gossipMeta struct{ g *Gossip }

func (d gossipMeta) NodeMeta(limit int) []byte {
	var flags byte
	if d.g.leaving.Load() {
		flags |= metaLeaving
	}
	b := encodeMeta(d.g.cfg.metaFor(d.g.version.Load(), d.g.started), flags)
	if len(b) > limit { // cannot happen: Validate checked the widest
		return nil
	}
	return b
}
func (gossipMeta) NotifyMsg([]byte)                           {}
func (gossipMeta) GetBroadcasts(overhead, limit int) [][]byte { return nil }
func (gossipMeta) LocalState(join bool) []byte                { return nil }
func (gossipMeta) MergeRemoteState(buf []byte, join bool)     {}

// metaFormat is the first byte of the metadata: its layout's version.
const metaFormat = 1

// Flags of the metadata.
const (
	// metaLeaving says the node is leaving (Leave): the NotifyLeave that
	// follows is not a failure. memberlist does not tell its events
	// apart.
	metaLeaving byte = 1 << iota
)

// encodeMeta writes the metadata of m: the format byte, then the id
// (uvarint length and bytes), the number (uvarint), the roles (one
// byte), the RPC address (uvarint length and bytes), the registry version
// (uvarint), the start time (Unix nanoseconds, varint) and the flags (one
// byte).
func encodeMeta(m Member, flags byte) []byte {
	b := make([]byte, 0, 1+len(m.ID)+len(m.RPCAddr)+2*binary.MaxVarintLen16+binary.MaxVarintLen32+1+2*binary.MaxVarintLen64)
	b = append(b, metaFormat)
	b = binary.AppendUvarint(b, uint64(len(m.ID)))
	b = append(b, m.ID...)
	b = binary.AppendUvarint(b, uint64(m.Num))
	b = append(b, byte(m.Roles))
	b = binary.AppendUvarint(b, uint64(len(m.RPCAddr)))
	b = append(b, m.RPCAddr...)
	b = binary.AppendUvarint(b, m.Version)
	b = binary.AppendVarint(b, m.Started.UnixNano())
	b = append(b, flags)
	return b
}

var errMeta = errors.New("cluster: gossip metadata")

// decodeMeta reads what encodeMeta wrote. Fields after the known ones (a
// later format's additions) are ignored.
func decodeMeta(b []byte) (m Member, flags byte, err error) {
	if len(b) == 0 {
		return m, 0, fmt.Errorf("%w: empty", errMeta)
	}
	if b[0] != metaFormat {
		return m, 0, fmt.Errorf("%w: format %d, want %d", errMeta, b[0], metaFormat)
	}
	r := metaReader{b: b[1:]}
	m.ID = r.str()
	m.Num = uint32(r.uvarint(1<<32 - 1))
	m.Roles = Role(r.byte())
	m.RPCAddr = r.str()
	m.Version = r.uvarint(^uint64(0))
	ns := r.varint()
	flags = r.byte()
	if r.err != nil {
		return Member{}, 0, r.err
	}
	m.Started = time.Unix(0, ns)
	return m, flags, nil
}

type metaReader struct {
	b   []byte
	err error
}

func (r *metaReader) fail(what string) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: bad %s", errMeta, what)
	}
	r.b = nil
}

func (r *metaReader) uvarint(max uint64) uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 || v > max {
		r.fail("number")
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *metaReader) varint() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail("number")
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *metaReader) byte() byte {
	if len(r.b) == 0 {
		r.fail("byte")
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return v
}

func (r *metaReader) str() string {
	n := r.uvarint(memberlist.MetaMaxSize)
	if r.err != nil || uint64(len(r.b)) < n {
		r.fail("string")
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}

// slogWriter turns memberlist's log lines ("[WARN] memberlist: text")
// into records of its logger at their level. log.Logger writes each line
// in one Write.
type slogWriter struct{ log *slog.Logger }

func (w *slogWriter) Write(p []byte) (int, error) {
	line := strings.TrimRight(string(p), "\r\n")
	level := slog.LevelInfo
	if strings.HasPrefix(line, "[") {
		if end := strings.IndexByte(line, ']'); end > 0 {
			switch line[1:end] {
			case "TRACE":
				level = slog.LevelDebug - 4
			case "DEBUG":
				level = slog.LevelDebug
			case "INFO":
				level = slog.LevelInfo
			case "WARN", "WARNING":
				level = slog.LevelWarn
			case "ERR", "ERROR":
				level = slog.LevelError
			}
			line = strings.TrimSpace(line[end+1:])
		}
	}
	line = strings.TrimPrefix(line, "memberlist: ")
	w.log.Log(context.Background(), level, line)
	return len(p), nil
}
