package rpc

import (
	"context"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/mailsys/mailsys/cluster"
	"github.com/mailsys/mailsys/cluster/rpc/pb"
	"github.com/mailsys/mailsys/userdata"
)

// RegisterDirectory serves d on s as the Directory service, for the
// clients NewDirectory makes: the node that holds the embedded Directory
// (cluster.LocalDirectory) serves it to the others. d stays its owner's:
// the server neither closes it nor keeps it past s's end.
//
// Every call runs with the client's context (its deadline and its end);
// errors cross as toStatus makes them, so that a client's error wraps the
// sentinel d's did. If d is a cluster.SequenceAdvancer (found by type
// assertion now), the clients' AdvanceID calls reach it; otherwise they
// are answered codes.Unimplemented. A WatchRegistry stream lasts until the client ends it,
// d's WatchRegistry returns (d closed: the client is told ErrClosed and
// tries again), or the server stops: stop the server with Stop (or close
// d first), since GracefulStop waits for the streams to end.
func RegisterDirectory(s grpc.ServiceRegistrar, d cluster.Directory) {
	srv := &directoryServer{d: d}
	srv.adv, _ = d.(cluster.SequenceAdvancer)
	pb.RegisterDirectoryServer(s, srv)
}

// directoryServer is the Directory service over a cluster.Directory.
type directoryServer struct {
	pb.UnimplementedDirectoryServer
	d   cluster.Directory
	adv cluster.SequenceAdvancer // nil if d lacks it
}

var dirEmpty = &pb.DirEmpty{}

func nodeToPB(n cluster.Node) *pb.DirNode {
	return &pb.DirNode{Id: []byte(n.ID), Num: n.Num, Roles: uint32(n.Roles), Addr: []byte(n.Addr), Weight: int64(n.Weight), Masked: n.Masked}
}

// nodeFromPB reads a node. Roles that do not fit a cluster.Role become a
// set with an undefined role (0x80), invalid as the number sent was.
func nodeFromPB(m *pb.DirNode) cluster.Node {
	roles := cluster.Role(m.GetRoles())
	if m.GetRoles() > 0xff {
		roles = 0x80
	}
	return cluster.Node{ID: string(m.GetId()), Num: m.GetNum(), Roles: roles, Addr: string(m.GetAddr()),
		Weight: clampInt(m.GetWeight()), Masked: m.GetMasked()}
}

// clampInt converts a weight; one that does not fit an int stays out of
// the valid range.
func clampInt(w int64) int {
	if int64(int(w)) != w {
		if w < 0 {
			return -1
		}
		return cluster.MaxWeight + 1
	}
	return int(w)
}

func groupToPB(g cluster.Group) *pb.DirGroup {
	return &pb.DirGroup{Id: []byte(g.ID), Primary: []byte(g.Primary), Standby: []byte(g.Standby), Epoch: g.Epoch, Synced: g.Synced}
}

// groupFromPB reads a group; nil is the zero Group.
func groupFromPB(m *pb.DirGroup) cluster.Group {
	return cluster.Group{ID: string(m.GetId()), Primary: string(m.GetPrimary()), Standby: string(m.GetStandby()),
		Epoch: m.GetEpoch(), Synced: m.GetSynced()}
}

func registryToPB(r cluster.Registry) *pb.DirRegistry {
	m := &pb.DirRegistry{Version: r.Version, Nodes: make([]*pb.DirNode, len(r.Nodes))}
	for i, n := range r.Nodes {
		m.Nodes[i] = nodeToPB(n)
	}
	for _, g := range r.Groups {
		m.Groups = append(m.Groups, groupToPB(g))
	}
	return m
}

func registryFromPB(m *pb.DirRegistry) cluster.Registry {
	r := cluster.Registry{Version: m.GetVersion()}
	for _, n := range m.GetNodes() {
		r.Nodes = append(r.Nodes, nodeFromPB(n))
	}
	for _, g := range m.GetGroups() {
		r.Groups = append(r.Groups, groupFromPB(g))
	}
	return r
}

func (s *directoryServer) Registry(ctx context.Context, _ *pb.DirEmpty) (*pb.DirRegistry, error) {
	r, err := s.d.Registry(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	return registryToPB(r), nil
}

func (s *directoryServer) PutNode(ctx context.Context, m *pb.DirNode) (*pb.DirEmpty, error) {
	return dirEmpty, toStatus(s.d.PutNode(ctx, nodeFromPB(m)))
}

func (s *directoryServer) SetWeight(ctx context.Context, m *pb.DirSetWeightRequest) (*pb.DirEmpty, error) {
	return dirEmpty, toStatus(s.d.SetWeight(ctx, string(m.GetId()), clampInt(m.GetWeight())))
}

func (s *directoryServer) SetMasked(ctx context.Context, m *pb.DirSetMaskedRequest) (*pb.DirEmpty, error) {
	return dirEmpty, toStatus(s.d.SetMasked(ctx, string(m.GetId()), m.GetMasked()))
}

func (s *directoryServer) RemoveNode(ctx context.Context, m *pb.DirNodeID) (*pb.DirEmpty, error) {
	return dirEmpty, toStatus(s.d.RemoveNode(ctx, string(m.GetId())))
}

func (s *directoryServer) SwapGroup(ctx context.Context, m *pb.DirSwapGroupRequest) (*pb.DirEmpty, error) {
	return dirEmpty, toStatus(s.d.SwapGroup(ctx, groupFromPB(m.GetOldGroup()), groupFromPB(m.GetNewGroup())))
}

// WatchRegistry sends the registry at once and after each change, as d's
// WatchRegistry gives it: while a send waits for a slow client, d's
// changes are coalesced into the next registry sent.
func (s *directoryServer) WatchRegistry(_ *pb.DirEmpty, st grpc.ServerStreamingServer[pb.DirRegistry]) error {
	ctx, cancel := context.WithCancelCause(st.Context())
	defer cancel(nil)
	err := s.d.WatchRegistry(ctx, func(r cluster.Registry) {
		if err := st.Send(registryToPB(r)); err != nil {
			cancel(err)
		}
	})
	if cause := context.Cause(ctx); cause != nil && st.Context().Err() == nil && err != nil {
		err = cause // a send failed
	}
	return toStatus(err)
}

func (s *directoryServer) NextID(ctx context.Context, m *pb.DirSequence) (*pb.DirNumber, error) {
	n, err := s.d.NextID(ctx, string(m.GetName()))
	if err != nil {
		return nil, toStatus(err)
	}
	return &pb.DirNumber{N: n}, nil
}

func (s *directoryServer) AdvanceID(ctx context.Context, m *pb.DirAdvanceRequest) (*pb.DirEmpty, error) {
	if s.adv == nil {
		return nil, status.Error(codes.Unimplemented, "rpc: the node's Directory cannot advance a sequence")
	}
	return dirEmpty, toStatus(s.adv.AdvanceID(ctx, string(m.GetName()), m.GetPast()))
}

func (s *directoryServer) PlaceUser(ctx context.Context, m *pb.DirPlaceUserRequest) (*pb.DirEmpty, error) {
	return dirEmpty, toStatus(s.d.PlaceUser(ctx, userdata.UserID(m.GetId()), string(m.GetAddress()), string(m.GetNode())))
}

func (s *directoryServer) RemoveUser(ctx context.Context, m *pb.DirUser) (*pb.DirEmpty, error) {
	return dirEmpty, toStatus(s.d.RemoveUser(ctx, userdata.UserID(m.GetId())))
}

func (s *directoryServer) UserNode(ctx context.Context, m *pb.DirUser) (*pb.DirNodeID, error) {
	n, err := s.d.UserNode(ctx, userdata.UserID(m.GetId()))
	if err != nil {
		return nil, toStatus(err)
	}
	return &pb.DirNodeID{Id: []byte(n)}, nil
}

func (s *directoryServer) LookupAddress(ctx context.Context, m *pb.DirAddress) (*pb.DirPlacement, error) {
	p, err := s.d.LookupAddress(ctx, string(m.GetAddress()))
	if err != nil {
		return nil, toStatus(err)
	}
	return &pb.DirPlacement{User: uint64(p.User), Node: []byte(p.Node)}, nil
}

func (s *directoryServer) AddAddress(ctx context.Context, m *pb.DirAddAddressRequest) (*pb.DirEmpty, error) {
	return dirEmpty, toStatus(s.d.AddAddress(ctx, string(m.GetAddress()), userdata.UserID(m.GetId())))
}

func (s *directoryServer) RemoveAddress(ctx context.Context, m *pb.DirAddress) (*pb.DirEmpty, error) {
	return dirEmpty, toStatus(s.d.RemoveAddress(ctx, string(m.GetAddress())))
}

func (s *directoryServer) PutDomainAlias(ctx context.Context, m *pb.DirDomainAliasRequest) (*pb.DirEmpty, error) {
	return dirEmpty, toStatus(s.d.PutDomainAlias(ctx, string(m.GetAlias()), string(m.GetDomain())))
}

func (s *directoryServer) DomainAlias(ctx context.Context, m *pb.DirDomain) (*pb.DirDomain, error) {
	d, err := s.d.DomainAlias(ctx, string(m.GetDomain()))
	if err != nil {
		return nil, toStatus(err)
	}
	return &pb.DirDomain{Domain: []byte(d)}, nil
}
