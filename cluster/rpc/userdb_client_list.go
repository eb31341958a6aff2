package rpc

import (
	"context"

	"github.com/mailsys/mailsys/cluster/rpc/pb"
	"github.com/mailsys/mailsys/userdata"
)

var _ userdata.Lister = (*UserDB)(nil)

// The userdata.Lister of the node's database, each a unary call bounded by
// UserDBConfig.CallTimeout (a page is at most userdata.MaxList entries).
// A node whose database lacks it answers with an error of
// codes.Unimplemented.

// ListDomains implements userdata.Lister.
func (c *UserDB) ListDomains(ctx context.Context, after string, limit int) ([]userdata.Domain, error) {
	r, err := call(c, ctx, c.rpc.ListDomains, &pb.UDListDomains{After: []byte(after), Limit: int64(limit)})
	if err != nil {
		return nil, err
	}
	var out []userdata.Domain
	for _, d := range r.GetDomains() {
		out = append(out, domainFromPB(d))
	}
	return out, nil
}

// ListUnits implements userdata.Lister.
func (c *UserDB) ListUnits(ctx context.Context, domain string) ([]userdata.OrgUnit, error) {
	r, err := call(c, ctx, c.rpc.ListUnits, &pb.UDName{Name: []byte(domain)})
	if err != nil {
		return nil, err
	}
	var out []userdata.OrgUnit
	for _, u := range r.GetUnits() {
		out = append(out, unitFromPB(u))
	}
	return out, nil
}

// ListClasses implements userdata.Lister.
func (c *UserDB) ListClasses(ctx context.Context) ([]userdata.ServiceClass, error) {
	r, err := call(c, ctx, c.rpc.ListClasses, &pb.UDEmpty{})
	if err != nil {
		return nil, err
	}
	var out []userdata.ServiceClass
	for _, cl := range r.GetClasses() {
		out = append(out, classFromPB(cl))
	}
	return out, nil
}

// ListUsers implements userdata.Lister. A reply longer than the query's
// limit (a node that does not keep to it) is cut to it.
func (c *UserDB) ListUsers(ctx context.Context, q userdata.UserQuery) ([]userdata.User, error) {
	r, err := call(c, ctx, c.rpc.ListUsers, userQueryToPB(q))
	if err != nil {
		return nil, err
	}
	limit := q.Limit
	if limit <= 0 || limit > userdata.MaxList {
		limit = userdata.MaxList
	}
	var out []userdata.User
	for _, u := range r.GetUsers() {
		if len(out) == limit {
			break
		}
		out = append(out, userFromPB(u))
	}
	return out, nil
}

// DomainUsage implements userdata.Lister.
func (c *UserDB) DomainUsage(ctx context.Context, domain string) (userdata.DomainUsage, error) {
	r, err := call(c, ctx, c.rpc.DomainUsage, &pb.UDName{Name: []byte(domain)})
	if err != nil {
		return userdata.DomainUsage{}, err
	}
	return userdata.DomainUsage{Users: r.GetUsers(), Disabled: r.GetDisabled(),
		Usage: userdata.Usage{Messages: r.GetMessages(), Bytes: r.GetBytes()}}, nil
}

// DeleteUser implements userdata.Lister.
func (c *UserDB) DeleteUser(ctx context.Context, id userdata.UserID) error {
	_, err := call(c, ctx, c.rpc.DeleteUser, &pb.UDUserRef{Id: uint64(id)})
	return err
}
