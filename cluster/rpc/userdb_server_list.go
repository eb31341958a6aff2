package rpc

import (
	"context"

	"github.com/mailsys/mailsys/cluster/rpc/pb"
	"github.com/mailsys/mailsys/userdata"
)

// The userdata.Lister of the served database: Unimplemented when it lacks
// it.

// lister returns the served database's Lister, or the Unimplemented error.
func (s *userDBServer) lister() (userdata.Lister, error) {
	if l := s.cur().lister; l != nil {
		return l, nil
	}
	return nil, unimplemented("userdata.Lister")
}

// pbLimit is a limit from the wire: one beyond int is MaxList, as a
// local call's above MaxList is.
func pbLimit(n int64) int {
	if n > userdata.MaxList {
		return userdata.MaxList
	}
	if n < 0 {
		return -1
	}
	return int(n)
}

func (s *userDBServer) ListDomains(ctx context.Context, m *pb.UDListDomains) (*pb.UDDomains, error) {
	l, err := s.lister()
	if err != nil {
		return nil, err
	}
	ctx, _ = s.call(ctx)
	ds, err := l.ListDomains(ctx, string(m.GetAfter()), pbLimit(m.GetLimit()))
	out := &pb.UDDomains{Domains: make([]*pb.UDDomain, len(ds))}
	for i, d := range ds {
		out.Domains[i] = domainToPB(d)
	}
	return reply(out, err)
}

func (s *userDBServer) ListUnits(ctx context.Context, m *pb.UDName) (*pb.UDUnits, error) {
	l, err := s.lister()
	if err != nil {
		return nil, err
	}
	ctx, _ = s.call(ctx)
	us, err := l.ListUnits(ctx, string(m.GetName()))
	out := &pb.UDUnits{Units: make([]*pb.UDUnit, len(us))}
	for i, u := range us {
		out.Units[i] = unitToPB(u)
	}
	return reply(out, err)
}

func (s *userDBServer) ListClasses(ctx context.Context, _ *pb.UDEmpty) (*pb.UDClasses, error) {
	l, err := s.lister()
	if err != nil {
		return nil, err
	}
	ctx, _ = s.call(ctx)
	cs, err := l.ListClasses(ctx)
	out := &pb.UDClasses{Classes: make([]*pb.UDClass, len(cs))}
	for i, c := range cs {
		out.Classes[i] = classToPB(c)
	}
	return reply(out, err)
}

func (s *userDBServer) ListUsers(ctx context.Context, m *pb.UDUserQuery) (*pb.UDUsers, error) {
	l, err := s.lister()
	if err != nil {
		return nil, err
	}
	ctx, _ = s.call(ctx)
	us, err := l.ListUsers(ctx, userQueryFromPB(m))
	out := &pb.UDUsers{Users: make([]*pb.UDUser, len(us))}
	for i, u := range us {
		out.Users[i] = userToPB(u)
	}
	return reply(out, err)
}

func (s *userDBServer) DomainUsage(ctx context.Context, m *pb.UDName) (*pb.UDDomainUsage, error) {
	l, err := s.lister()
	if err != nil {
		return nil, err
	}
	ctx, _ = s.call(ctx)
	du, err := l.DomainUsage(ctx, string(m.GetName()))
	return reply(&pb.UDDomainUsage{Users: du.Users, Disabled: du.Disabled, Messages: du.Messages, Bytes: du.Bytes}, err)
}

func (s *userDBServer) DeleteUser(ctx context.Context, m *pb.UDUserRef) (*pb.UDEmpty, error) {
	l, err := s.lister()
	if err != nil {
		return nil, err
	}
	ctx, _ = s.call(ctx)
	return empty(l.DeleteUser(ctx, userdata.UserID(m.GetId())))
}

func userQueryToPB(q userdata.UserQuery) *pb.UDUserQuery {
	return &pb.UDUserQuery{Domain: []byte(q.Domain), Unit: uint64(q.Unit), Search: []byte(q.Search),
		After: []byte(q.After), Limit: int64(q.Limit)}
}

func userQueryFromPB(m *pb.UDUserQuery) userdata.UserQuery {
	return userdata.UserQuery{Domain: string(m.GetDomain()), Unit: userdata.UnitID(m.GetUnit()),
		Search: string(m.GetSearch()), After: string(m.GetAfter()), Limit: pbLimit(m.GetLimit())}
}
