package cluster

import (
	"context"
	"errors"
	"strings"

	"github.com/mailsys/mailsys/userdata"
)

// CreateDomain adds the domain on every UD node.
func (u *Users) CreateDomain(ctx context.Context, d userdata.Domain) error {
	return u.everyNode(func(db UserDB) error { return db.CreateDomain(ctx, d) })
}

// Domain reads a domain from any UD node.
func (u *Users) Domain(ctx context.Context, name string) (d userdata.Domain, err error) {
	err = u.anyNode(func(db UserDB) error {
		d, err = db.Domain(ctx, name)
		return err
	})
	return d, err
}

// UpdateDomain changes the domain on every UD node.
func (u *Users) UpdateDomain(ctx context.Context, d userdata.Domain) error {
	return u.everyNode(func(db UserDB) error { return db.UpdateDomain(ctx, d) })
}

// AddDomainAlias adds the alias on every UD node, then records it in the
// Directory, which finds users through it.
func (u *Users) AddDomainAlias(ctx context.Context, alias, domain string) error {
	if err := u.everyNode(func(db UserDB) error { return db.AddDomainAlias(ctx, alias, domain) }); err != nil {
		return err
	}
	return dirErr(u.dir.PutDomainAlias(ctx, strings.ToLower(alias), strings.ToLower(domain)))
}

// CreateUnit adds the unit on every UD node under one id, from the
// Directory's "unit" sequence unless ou.ID gives one.
func (u *Users) CreateUnit(ctx context.Context, ou userdata.OrgUnit) (userdata.OrgUnit, error) {
	if u.isClosed() {
		return userdata.OrgUnit{}, userdata.ErrClosed
	}
	if ou.ID == 0 {
		id, err := u.dir.NextID(ctx, "unit")
		if err != nil {
			return userdata.OrgUnit{}, dirErr(err)
		}
		ou.ID = userdata.UnitID(id)
	} else if err := u.advance(ctx, "unit", uint64(ou.ID)); err != nil {
		return userdata.OrgUnit{}, err
	}
	var made userdata.OrgUnit
	err := u.everyNode(func(db UserDB) error {
		m, err := db.CreateUnit(ctx, ou)
		if err == nil {
			made = m
		}
		return err
	})
	return made, err
}

// Unit reads a unit from any UD node.
func (u *Users) Unit(ctx context.Context, id userdata.UnitID) (ou userdata.OrgUnit, err error) {
	err = u.anyNode(func(db UserDB) error {
		ou, err = db.Unit(ctx, id)
		return err
	})
	return ou, err
}

// UpdateUnit changes the unit on every UD node.
func (u *Users) UpdateUnit(ctx context.Context, ou userdata.OrgUnit) error {
	return u.everyNode(func(db UserDB) error { return db.UpdateUnit(ctx, ou) })
}

// DefineClass defines the class on every UD node.
func (u *Users) DefineClass(ctx context.Context, c userdata.ServiceClass) error {
	return u.everyNode(func(db UserDB) error { return db.DefineClass(ctx, c) })
}

// CreateUser registers a user on a UD node chosen by weight: it takes an
// id from the Directory's "user" sequence (unless nu.ID gives one),
// records the placement (which also claims the address across the
// cluster), and has the node create the account. A node that is
// unavailable is skipped for the next by weight; a node that refuses the
// account has its placement undone.
func (u *Users) CreateUser(ctx context.Context, nu userdata.NewUser) (userdata.User, error) {
	if u.isClosed() {
		return userdata.User{}, userdata.ErrClosed
	}
	addr := strings.ToLower(strings.TrimSpace(nu.Address))
	if !strings.Contains(addr, "@") {
		return userdata.User{}, errors.Join(userdata.ErrInvalid, errors.New("cluster: not an address: "+nu.Address))
	}
	if nu.ID == 0 {
		id, err := u.dir.NextID(ctx, "user")
		if err != nil {
			return userdata.User{}, dirErr(err)
		}
		nu.ID = userdata.UserID(id)
	} else if err := u.advance(ctx, "user", uint64(nu.ID)); err != nil {
		return userdata.User{}, err
	}
	var tried []string
	for {
		reg := u.peers.Registry()
		n, err := u.placer.Pick(reg, u.peers.Healthy, tried...)
		if err != nil {
			return userdata.User{}, &Unavailable{Peer: "ud", Err: err}
		}
		place := reg.placementOf(n.ID) // a group's primary: the group
		if err := u.dir.PlaceUser(ctx, nu.ID, addr, place); err != nil {
			return userdata.User{}, dirErr(err)
		}
		nu.Node = place
		db, err := u.peers.UserDB(n)
		var made userdata.User
		if err == nil {
			made, err = db.CreateUser(ctx, nu)
		}
		if err == nil {
			u.remember(made.ID, place)
			return made, nil
		}
		u.undo("placement of "+addr, func(ctx context.Context) error { return u.dir.RemoveUser(ctx, nu.ID) })
		if !IsUnavailable(err) || ctx.Err() != nil {
			return userdata.User{}, err
		}
		u.log.Warn("registration skips an unavailable UD node", "node", n.ID, "address", addr, "err", err)
		tried = append(tried, n.ID)
	}
}

// User returns the user from its node.
func (u *Users) User(ctx context.Context, id userdata.UserID) (userdata.User, error) {
	db, err := u.user(ctx, id)
	if err != nil {
		return userdata.User{}, err
	}
	return db.User(ctx, id)
}

// LookupAddress finds the user's node in the Directory and the user there.
func (u *Users) LookupAddress(ctx context.Context, address string) (userdata.User, error) {
	p, err := u.address(ctx, address)
	if err != nil {
		return userdata.User{}, err
	}
	db, err := u.client(p.Node)
	if err != nil {
		return userdata.User{}, err
	}
	return db.LookupAddress(ctx, address)
}

// UpdateUser changes the user on its node.
func (u *Users) UpdateUser(ctx context.Context, id userdata.UserID, uu userdata.UserUpdate) error {
	db, err := u.user(ctx, id)
	if err != nil {
		return err
	}
	return db.UpdateUser(ctx, id, uu)
}

// SetPassword sets the password on the user's node.
func (u *Users) SetPassword(ctx context.Context, id userdata.UserID, password string) error {
	db, err := u.user(ctx, id)
	if err != nil {
		return err
	}
	return db.SetPassword(ctx, id, password)
}

// AddAlias claims the address in the Directory, then adds it on the
// user's node; a refusal there gives the address back.
func (u *Users) AddAlias(ctx context.Context, address string, id userdata.UserID) error {
	db, err := u.user(ctx, id)
	if err != nil {
		return err
	}
	addr := strings.ToLower(strings.TrimSpace(address))
	if err := u.dir.AddAddress(ctx, addr, id); err != nil {
		return dirErr(err)
	}
	if err := db.AddAlias(ctx, address, id); err != nil {
		u.undo("alias "+addr, func(ctx context.Context) error { return u.dir.RemoveAddress(ctx, addr) })
		return err
	}
	return nil
}

// RemoveAlias removes the alias on its user's node, then from the
// Directory.
func (u *Users) RemoveAlias(ctx context.Context, address string) error {
	if u.isClosed() {
		return userdata.ErrClosed
	}
	addr := strings.ToLower(strings.TrimSpace(address))
	p, err := u.dir.LookupAddress(ctx, addr)
	if err != nil {
		return dirErr(err)
	}
	db, err := u.client(p.Node)
	if err != nil {
		return err
	}
	if err := db.RemoveAlias(ctx, address); err != nil {
		return err
	}
	return dirErr(u.dir.RemoveAddress(ctx, addr))
}

// Limits resolves the user's limits on its node.
func (u *Users) Limits(ctx context.Context, id userdata.UserID) (userdata.Limits, error) {
	db, err := u.user(ctx, id)
	if err != nil {
		return userdata.Limits{}, err
	}
	return db.Limits(ctx, id)
}

// Usage reads the user's usage on its node.
func (u *Users) Usage(ctx context.Context, id userdata.UserID) (userdata.Usage, error) {
	db, err := u.user(ctx, id)
	if err != nil {
		return userdata.Usage{}, err
	}
	return db.Usage(ctx, id)
}

// Authenticate checks the login on the user's node. An address the
// Directory does not know is checked by any UD node all the same, so that
// an unknown address costs what a wrong password does.
func (u *Users) Authenticate(ctx context.Context, address, password string, p userdata.Protocol) (userdata.User, error) {
	pl, err := u.address(ctx, address)
	if errors.Is(err, userdata.ErrNotFound) || errors.Is(err, userdata.ErrInvalid) {
		var got userdata.User
		aerr := u.anyNode(func(db UserDB) error {
			got, err = db.Authenticate(ctx, address, password, p)
			return err
		})
		if aerr == nil {
			// A node knows a user the Directory does not: a placement
			// lost, or made outside the cluster. Refuse it.
			u.log.Error("login of a user the directory does not know", "user", got.ID, "node", got.Node)
			return userdata.User{}, userdata.ErrAuthFailed
		}
		return userdata.User{}, aerr
	}
	if err != nil {
		return userdata.User{}, err
	}
	db, err := u.client(pl.Node)
	if err != nil {
		return userdata.User{}, err
	}
	return db.Authenticate(ctx, address, password, p)
}
