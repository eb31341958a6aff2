package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"google.golang.org/grpc"

	"github.com/mailsys/mailsys/cluster"
	"github.com/mailsys/mailsys/cluster/rpc"
	"github.com/mailsys/mailsys/userdata"
)

// A UD node with Config.Group set is one of the two nodes of a replication
// group (cluster.Group): the primary serves the group's users and sends
// every commit to the standby before acknowledging it (userdata's
// replication); the standby applies them to a userdata.Replica. When the
// heartbeat declares the primary dead (or it leaves), the standby promotes
// itself through the directory with the next epoch (compare-and-set: only
// a standby in step may, and only once), opens its replica as the
// database and serves; fronts follow the registry to it. A primary that
// learns of a newer epoch (from the registry, or from a standby that knows
// one) is fenced: it refuses writes, closes its database and follows the
// new primary as its standby, catching up from the new primary's log of
// recent batches.

// group is the node's part in its replication group.
type group struct {
	n    *Node
	id   string
	slot *rpc.UserDBSlot
	log  *slog.Logger

	mu       sync.Mutex
	db       *userdata.DB      // while primary
	epoch    uint64            // the epoch it is primary at
	replica  *userdata.Replica // while standby
	stopSend context.CancelFunc
	follow   sync.WaitGroup // the follow loop
	dead     map[string]time.Time
	alive    map[string]bool
	closed   bool

	conns map[string]replConn // replication connections, by node id
	// syncMu orders alone and inStep: each reads the state and swaps the
	// group under it, so that a standby lost just after it caught up is
	// never left recorded in step.
	syncMu sync.Mutex
	kick   chan struct{} // wakes the promotion check
}

func newGroup(n *Node, slot *rpc.UserDBSlot) *group {
	return &group{n: n, id: n.cfg.Group, slot: slot, log: n.log.With("group", n.cfg.Group),
		dead: map[string]time.Time{}, alive: map[string]bool{}, conns: map[string]replConn{}, kick: make(chan struct{}, 1)}
}

// start finds the node's place in the group (creating the group, or
// joining it as the standby) and serves it.
func (g *group) start(ctx context.Context) error {
	self := g.n.cfg.ID
	deadline := time.Now().Add(readyWait)
	for {
		reg, err := g.n.dir.Registry(ctx)
		if err == nil {
			cur, ok := reg.Group(g.id)
			switch {
			case !ok:
				if other, named := reg.Node(g.id); named && other.ID != self {
					// The group is named after the other node: it
					// creates the group and serves first.
					err = &cluster.Unavailable{Peer: g.id, Err: errors.New("waiting for the node the group is named after to create it")}
					break
				}
				err = g.n.dir.SwapGroup(ctx, cluster.Group{}, cluster.Group{ID: g.id, Primary: self, Epoch: 1})
				if err == nil {
					g.log.Info("group created; serving as its primary", "epoch", 1)
					return g.becomePrimary(ctx, 1)
				}
				if errors.Is(err, cluster.ErrInvalid) {
					// The node the group is named after may have
					// registered between the read and the swap, which
					// then refuses a create naming another primary:
					// wait for it as above.
					if reg, rerr := g.n.dir.Registry(ctx); rerr == nil {
						if other, named := reg.Node(g.id); named && other.ID != self {
							err = &cluster.Unavailable{Peer: g.id, Err: errors.New("waiting for the node the group is named after to create it")}
						}
					}
				}
			case cur.Primary == self:
				g.log.Info("serving as the group's primary", "epoch", cur.Epoch, "standby", cur.Standby)
				return g.becomePrimary(ctx, cur.Epoch)
			case cur.Standby == self:
				g.log.Info("serving as the group's standby", "primary", cur.Primary, "epoch", cur.Epoch)
				return g.becomeStandby()
			case cur.Standby == "":
				next := cur
				next.Standby, next.Synced = self, false
				err = g.n.dir.SwapGroup(ctx, cur, next)
				if err == nil {
					g.log.Info("joined the group as its standby", "primary", cur.Primary, "epoch", cur.Epoch)
					return g.becomeStandby()
				}
			default:
				return fmt.Errorf("node: group %s has primary %s and standby %s already", g.id, cur.Primary, cur.Standby)
			}
		}
		if !errors.Is(err, cluster.ErrConflict) && !errors.Is(err, cluster.ErrExists) && !cluster.IsUnavailable(err) || time.Now().After(deadline) {
			return fmt.Errorf("node: joining group %s: %w", g.id, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// replication is the group's userdata.ReplicationConfig.
func (g *group) replication() *userdata.ReplicationConfig {
	rc := g.n.cfg.Replication
	rc.Alone = g.alone
	rc.InStep = g.inStep
	return &rc
}

func (g *group) becomePrimary(ctx context.Context, epoch uint64) error {
	uc := g.n.udConfig()
	uc.Replication = g.replication()
	g.mu.Lock()
	g.epoch = epoch // before Open, whose writes may call alone
	g.mu.Unlock()
	db, err := userdata.Open(ctx, uc)
	if err != nil {
		return err
	}
	g.mu.Lock()
	g.db = db
	g.mu.Unlock()
	g.slot.Set(db)
	return nil
}

func (g *group) becomeStandby() error {
	uc := g.n.udConfig()
	uc.Replication = g.replication()
	r, err := userdata.OpenReplica(uc)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		cancel()
		return errors.Join(userdata.ErrClosed, r.Close())
	}
	g.replica, g.stopSend = r, cancel
	g.mu.Unlock()
	g.follow.Add(1)
	go g.followLoop(ctx, r)
	return nil
}

// followLoop follows the group's primary, as the registry names it, until
// ctx ends.
func (g *group) followLoop(ctx context.Context, r *userdata.Replica) {
	defer g.follow.Done()
	delay := 50 * time.Millisecond
	quiet := false // said once until a follow lasts
	for ctx.Err() == nil {
		reg := g.n.peers.Registry()
		cur, ok := reg.Group(g.id)
		pn, known := reg.Node(cur.Primary)
		if ok && known && cur.Primary != g.n.cfg.ID {
			conn, err := g.conn(pn)
			if err == nil {
				start := time.Now()
				err = rpc.Follow(ctx, conn, pn.ID, g.id, cur.Epoch, r)
				if ctx.Err() != nil {
					return
				}
				if time.Since(start) > 5*time.Second {
					delay, quiet = 50*time.Millisecond, false
				}
			}
			log := g.log.Warn
			if quiet {
				log = g.log.Debug
			}
			log("standby: following the primary stopped; trying again (said once until it follows)", "primary", pn.ID, "position", r.Position(), "err", err)
			quiet = true
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
		delay = min(2*delay, time.Second)
	}
}

// conn returns the replication connection to n: one of its own, without
// the breaker and the call timeout of the front's connections, since the
// stream lasts.
func (g *group) conn(n cluster.Node) (*grpc.ClientConn, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if c, ok := g.conns[n.ID]; ok && c.addr == n.Addr {
		return c.conn, nil
	} else if ok {
		c.conn.Close()
	}
	c, err := rpc.Dial(n.Addr, n.ID, g.n.peers.creds)
	if err != nil {
		return nil, err
	}
	g.conns[n.ID] = replConn{n.Addr, c}
	return c, nil
}

type replConn struct {
	addr string
	conn *grpc.ClientConn
}

// alone records, before the primary acknowledges writes its standby lacks,
// that the standby is out of step (userdata.ReplicationConfig.Alone).
func (g *group) alone(ctx context.Context) error {
	g.syncMu.Lock()
	defer g.syncMu.Unlock()
	for range 5 {
		reg, err := g.n.dir.Registry(ctx)
		if err != nil {
			return err
		}
		cur, ok := reg.Group(g.id)
		g.mu.Lock()
		epoch := g.epoch
		g.mu.Unlock()
		if !ok || cur.Primary != g.n.cfg.ID || cur.Epoch != epoch {
			return fmt.Errorf("%w: group %s is served by %s at epoch %d (this node was primary at %d)", userdata.ErrFenced, g.id, cur.Primary, cur.Epoch, epoch)
		}
		if !cur.Synced {
			return nil
		}
		next := cur
		next.Synced = false
		err = g.n.dir.SwapGroup(ctx, cur, next)
		if err == nil {
			g.log.Error("standby out of step, recorded in the directory: writes go on without it", "standby", cur.Standby, "epoch", epoch)
			return nil
		}
		if !errors.Is(err, cluster.ErrConflict) {
			return err
		}
	}
	return fmt.Errorf("node: group %s changing too fast to record the standby out of step", g.id)
}

// inStep records that the standby is in step again, so that it may be
// promoted (userdata.ReplicationConfig.InStep).
func (g *group) inStep() {
	ctx, cancel := context.WithTimeout(context.Background(), readyWait)
	defer cancel()
	for ctx.Err() == nil {
		g.syncMu.Lock()
		reg, err := g.n.dir.Registry(ctx)
		if err == nil {
			cur, ok := reg.Group(g.id)
			g.mu.Lock()
			epoch, db := g.epoch, g.db
			g.mu.Unlock()
			if !ok || cur.Primary != g.n.cfg.ID || cur.Epoch != epoch || cur.Synced || db == nil || !db.Replication().InStep {
				g.syncMu.Unlock()
				return
			}
			next := cur
			next.Synced = true
			if err = g.n.dir.SwapGroup(ctx, cur, next); err == nil {
				g.syncMu.Unlock()
				g.log.Info("standby in step, recorded in the directory", "standby", cur.Standby, "epoch", epoch)
				return
			}
		}
		g.syncMu.Unlock()
		if !errors.Is(err, cluster.ErrConflict) {
			g.log.Warn("recording the standby in step failed; trying again", "err", err)
			time.Sleep(250 * time.Millisecond)
		}
	}
}

// Primary implements rpc.ReplicationSource.
func (g *group) Primary(id string, epoch uint64, standby string) (*userdata.DB, error) {
	if id != g.id {
		return nil, fmt.Errorf("%w: this node is in group %s, not %s", userdata.ErrInvalid, g.id, id)
	}
	g.mu.Lock()
	db, mine := g.db, g.epoch
	g.mu.Unlock()
	if db == nil {
		return nil, &cluster.Unavailable{Peer: g.n.cfg.ID, Err: errors.New("not the group's primary (yet)")}
	}
	if epoch > mine {
		err := fmt.Errorf("%w: standby %s knows epoch %d, this node is primary at %d", userdata.ErrFenced, standby, epoch, mine)
		g.fence(err)
		return nil, err
	}
	cur, ok := g.n.peers.Registry().Group(g.id)
	if !ok || cur.Standby != standby {
		return nil, &cluster.Unavailable{Peer: g.n.cfg.ID, Err: fmt.Errorf("node %s is not the group's standby in the registry", standby)}
	}
	return db, nil
}

// fence ends the node's time as primary: the database refuses writes and
// closes, and the node follows the new primary as its standby.
func (g *group) fence(why error) {
	g.mu.Lock()
	db := g.db
	if db == nil || g.closed {
		g.mu.Unlock()
		return
	}
	g.db = nil
	g.mu.Unlock()
	db.Fence(why)
	g.slot.Refuse(fmt.Errorf("%w: %w", userdata.ErrFenced, why))
	g.log.Error("fenced: another node is the group's primary; this node becomes its standby", "err", why)
	go func() {
		if err := db.Close(); err != nil {
			g.log.Warn("closing the fenced database", "err", err)
		}
		if err := g.becomeStandby(); err != nil {
			g.log.Error("cannot become the group's standby; restart the node", "err", err)
		}
	}()
}

// registry reacts to a new registry: a primary at an old epoch is fenced,
// a standby may have to promote itself.
func (g *group) registry(r cluster.Registry) {
	cur, ok := r.Group(g.id)
	g.mu.Lock()
	primary, epoch := g.db != nil, g.epoch
	g.mu.Unlock()
	if primary && ok && (cur.Primary != g.n.cfg.ID || cur.Epoch > epoch) {
		g.fence(fmt.Errorf("the registry names %s primary at epoch %d (this node was at %d)", cur.Primary, cur.Epoch, epoch))
	}
	g.poke()
}

// member records the heartbeat's news of a node.
func (g *group) member(m cluster.Member) {
	g.mu.Lock()
	if m.Healthy && !m.Left {
		g.alive[m.ID] = true
		delete(g.dead, m.ID)
		if c, ok := g.conns[m.ID]; ok {
			c.conn.ResetConnectBackoff() // back: dial it again now
		}
	} else if g.alive[m.ID] {
		if _, ok := g.dead[m.ID]; !ok {
			g.dead[m.ID] = time.Now()
		}
	}
	g.mu.Unlock()
	g.poke()
}

func (g *group) poke() {
	select {
	case g.kick <- struct{}{}:
	default:
	}
}

// watch runs the promotion check on every change, and every 250 ms, until
// ctx ends.
func (g *group) watch(ctx context.Context) {
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-g.kick:
		case <-t.C:
		}
		g.maybePromote(ctx)
	}
}

// maybePromote promotes the node if it is the group's standby, in step,
// and the heartbeat declared the primary dead (a node this one saw alive
// before: a standby that just started does not promote itself over a
// primary it never heard of).
func (g *group) maybePromote(ctx context.Context) {
	reg := g.n.peers.Registry()
	cur, ok := reg.Group(g.id)
	if !ok || cur.Standby != g.n.cfg.ID || !cur.Synced {
		return
	}
	g.mu.Lock()
	since, dead := g.dead[cur.Primary]
	r := g.replica
	g.mu.Unlock()
	if !dead || r == nil {
		return
	}
	start := time.Now()
	g.log.Warn("the primary is dead: promoting this standby", "primary", cur.Primary, "dead_since", since, "epoch", cur.Epoch+1)
	// Stop following first: the replica must not change under Promote.
	g.mu.Lock()
	stop := g.stopSend
	g.mu.Unlock()
	stop()
	g.follow.Wait()
	next := cluster.Group{ID: g.id, Primary: g.n.cfg.ID, Standby: cur.Primary, Epoch: cur.Epoch + 1}
	if err := g.n.dir.SwapGroup(ctx, cur, next); err != nil {
		g.log.Warn("promotion refused by the directory; following again", "err", err)
		g.restartFollow(r)
		return
	}
	uc := g.n.udConfig()
	uc.Replication = g.replication()
	g.mu.Lock()
	g.epoch = next.Epoch
	g.replica = nil
	g.mu.Unlock()
	db, err := r.Promote(ctx, uc)
	if err != nil {
		// The directory names this node primary: it must serve or be
		// restarted; a standby cannot take its place meanwhile.
		g.log.Error("promoted in the directory but the replica does not open; restart the node", "err", err)
		return
	}
	g.mu.Lock()
	g.db = db
	g.mu.Unlock()
	g.slot.Set(db)
	g.log.Warn("promoted: serving as the group's primary", "epoch", next.Epoch, "position", db.Replication().Position,
		"promotion", time.Since(start).Round(time.Millisecond), "since_primary_dead", time.Since(since).Round(time.Millisecond))
}

// restartFollow follows again with r after a refused promotion.
func (g *group) restartFollow(r *userdata.Replica) {
	ctx, cancel := context.WithCancel(context.Background())
	g.mu.Lock()
	g.stopSend = cancel
	g.mu.Unlock()
	g.follow.Add(1)
	go g.followLoop(ctx, r)
}

// close stops following and closes what the group holds.
func (g *group) close() error {
	g.mu.Lock()
	g.closed = true
	stop, db, r := g.stopSend, g.db, g.replica
	conns := g.conns
	g.conns = map[string]replConn{}
	g.mu.Unlock()
	if stop != nil {
		stop()
	}
	g.follow.Wait()
	var errs []error
	if db != nil {
		errs = append(errs, db.Close())
	}
	if r != nil {
		errs = append(errs, r.Close())
	}
	for _, c := range conns {
		c.conn.Close()
	}
	return errors.Join(errs...)
}
