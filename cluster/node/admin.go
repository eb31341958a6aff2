package node

import (
	"context"
	"errors"
	"fmt"

	"github.com/mailsys/mailsys/admin"
	"github.com/mailsys/mailsys/cluster"
	"github.com/mailsys/mailsys/metrics"
)

// clusterAdmin is the cluster as a front's administration API sees it
// (admin.Cluster): the directory's registry, each node's health by this
// node's heartbeat and breakers.
type clusterAdmin struct{ n *Node }

func (c clusterAdmin) Nodes(ctx context.Context) (admin.ClusterStatus, error) {
	reg, err := c.n.dir.Registry(ctx)
	if err != nil {
		return admin.ClusterStatus{}, adminErr(err)
	}
	st := admin.ClusterStatus{Version: reg.Version, Nodes: make([]admin.NodeStatus, 0, len(reg.Nodes))}
	for _, nd := range reg.Nodes {
		s := admin.NodeStatus{ID: nd.ID, Num: nd.Num, Roles: nd.Roles.String(), Addr: nd.Addr, Weight: nd.Weight, Masked: nd.Masked,
			Healthy: nd.ID == c.n.cfg.ID || c.n.peers.Healthy(nd.ID)}
		if g, ok := reg.GroupOf(nd.ID); ok {
			s.Group, s.Epoch, s.InStep = g.ID, g.Epoch, g.Synced && g.Standby != ""
			s.GroupRole = "standby"
			if g.Primary == nd.ID {
				s.GroupRole = "primary"
			}
		}
		st.Nodes = append(st.Nodes, s)
	}
	return st, nil
}

func (c clusterAdmin) SetWeight(ctx context.Context, id string, weight int) error {
	return adminErr(c.n.dir.SetWeight(ctx, id, weight))
}

func (c clusterAdmin) SetMasked(ctx context.Context, id string, masked bool) error {
	return adminErr(c.n.dir.SetMasked(ctx, id, masked))
}

// adminErr maps the directory's sentinels to the admin API's.
func adminErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, cluster.ErrNotFound):
		return fmt.Errorf("%w: %w", admin.ErrNotFound, err)
	case errors.Is(err, cluster.ErrInvalid):
		return fmt.Errorf("%w: %w", admin.ErrInvalid, err)
	}
	return err
}

// peerStates is the health of the UD and MS nodes the front sends to, for
// the metrics (mailsys_cluster_peer_up and _breaker_state).
func (n *Node) peerStates() []metrics.PeerState {
	var out []metrics.PeerState
	for _, nd := range n.peers.Registry().Nodes {
		if nd.ID == n.cfg.ID || nd.Roles&(cluster.RoleUD|cluster.RoleMS) == 0 {
			continue
		}
		out = append(out, metrics.PeerState{Peer: nd.ID, Healthy: n.peers.Healthy(nd.ID), Breaker: n.peers.breaker(nd.ID).State().String()})
	}
	return out
}

// eventLog is a supervisor's event log file as the admin API serves it
// (admin.Events).
type eventLog string

func (path eventLog) Events(ctx context.Context, limit int) ([]admin.Event, error) {
	evs, err := cluster.ReadEventLog(string(path), limit)
	if err != nil {
		return nil, err
	}
	out := make([]admin.Event, len(evs))
	for i, e := range evs {
		out[i] = admin.Event{Time: e.Time, Module: e.Module, Kind: string(e.Kind), PID: e.PID, ExitCode: e.ExitCode,
			Signal: e.Signal, Delay: e.Delay, Err: e.Err}
	}
	return out, nil
}
