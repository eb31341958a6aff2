package userdata

import (
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// The account rules DB and Memory share: the checks of what callers pass
// in, the checks against the records (a class exists, a unit belongs to a
// domain), and the resolution of limits through the organisation tree.

// accountRecords is how the account rules that DB and Memory share read
// the records they check. Each method returns an error wrapping
// ErrNotFound for a record that is not there.
type accountRecords interface {
	domainRecord(name string) (Domain, error)
	// domainAliasOf returns the domain that alias is another name of.
	domainAliasOf(alias string) (string, error)
	unitRecord(id UnitID) (OrgUnit, error)
	classRecord(name string) (ServiceClass, error)
	// addressFree returns ErrExists if addr (normalized) is a primary
	// address or an alias.
	addressFree(addr string) error
}

// limitsOf resolves u's effective limits: the class is u's own, else that
// of the nearest unit upward that has one, else the domain's. A class
// record that is missing counts as no class (logged).
func limitsOf(r accountRecords, log *slog.Logger, u *User) (Limits, error) {
	dom, err := r.domainRecord(addressDomain(u.Address))
	if err != nil {
		return Limits{}, err
	}
	name := u.Class
	if name == "" {
		chain, err := unitChain(r, log, u)
		if err != nil {
			return Limits{}, err
		}
		for _, unit := range chain {
			if unit.Class != "" {
				name = unit.Class
				break
			}
		}
	}
	if name == "" {
		name = dom.Class
	}
	var class ServiceClass
	if name != "" {
		class, err = r.classRecord(name)
		switch {
		case errors.Is(err, ErrNotFound):
			log.Warn("service class missing; no class applies", "class", name, "user", u.ID)
			class = ServiceClass{}
		case err != nil:
			return Limits{}, err
		}
	}
	l := Limits{
		Class:          class.Name,
		Quota:          class.Quota,
		DomainQuota:    dom.Quota,
		MaxMessageSize: class.MaxMessageSize,
		Protocols:      class.Protocols,
	}
	if u.Quota != 0 {
		l.Quota = u.Quota
	}
	if l.Protocols == 0 {
		l.Protocols = AllProtocols
	}
	return l, nil
}

// disabledOf reports whether u is disabled: itself, any unit above it or
// its domain.
func disabledOf(r accountRecords, log *slog.Logger, u *User) (bool, error) {
	if u.Disabled {
		return true, nil
	}
	chain, err := unitChain(r, log, u)
	if err != nil {
		return false, err
	}
	for _, unit := range chain {
		if unit.Disabled {
			return true, nil
		}
	}
	dom, err := r.domainRecord(addressDomain(u.Address))
	if err != nil {
		return false, err
	}
	return dom.Disabled, nil
}

// unitChain returns u's unit and those above it, nearest first. A missing
// unit ends the chain (logged); a chain deeper than maxUnitDepth, which
// only a cycle in damaged data can make, is an error.
func unitChain(r accountRecords, log *slog.Logger, u *User) ([]OrgUnit, error) {
	var chain []OrgUnit
	for id := u.Unit; id != 0; {
		if len(chain) == maxUnitDepth {
			return nil, fmt.Errorf("userdata: units above user %d: deeper than %d levels or cyclic", u.ID, maxUnitDepth)
		}
		unit, err := r.unitRecord(id)
		if errors.Is(err, ErrNotFound) {
			log.Warn("organisation unit missing", "unit", id, "user", u.ID)
			break
		}
		if err != nil {
			return nil, err
		}
		chain = append(chain, unit)
		id = unit.Parent
	}
	return chain, nil
}

// loginState is what a login needs beside the password: u's limits and
// whether u, a unit above it or its domain is disabled.
func loginState(r accountRecords, log *slog.Logger, u *User) (Limits, bool, error) {
	l, err := limitsOf(r, log, u)
	if err != nil {
		return Limits{}, false, err
	}
	disabled, err := disabledOf(r, log, u)
	return l, disabled, err
}

// requireClass checks that a class name, if not empty, names a class.
func requireClass(r accountRecords, name string) error {
	if name == "" {
		return nil
	}
	_, err := r.classRecord(name)
	return err
}

// requireRealDomain checks that name is a domain: ErrInvalid for a domain
// alias, ErrNotFound for an unknown name.
func requireRealDomain(r accountRecords, name string) error {
	_, err := r.domainRecord(name)
	if !errors.Is(err, ErrNotFound) {
		return err
	}
	if target, aerr := r.domainAliasOf(name); aerr == nil {
		return fmt.Errorf("%w: %s is an alias of domain %s", ErrInvalid, name, target)
	}
	return err
}

// requireUnitOf checks that id is 0 or a unit of domain.
func requireUnitOf(r accountRecords, id UnitID, domain string) error {
	if id == 0 {
		return nil
	}
	u, err := r.unitRecord(id)
	if err != nil {
		return err
	}
	if u.Domain != domain {
		return fmt.Errorf("%w: unit %d belongs to %s, not %s", ErrInvalid, id, u.Domain, domain)
	}
	return nil
}

// checkDomain checks a Domain given to CreateDomain or UpdateDomain and
// normalizes its name.
func checkDomain(dom *Domain) error {
	var err error
	if dom.Name, err = normalizeDomain(dom.Name); err != nil {
		return err
	}
	if dom.Quota < 0 {
		return fmt.Errorf("%w: negative quota for domain %s", ErrInvalid, dom.Name)
	}
	return nil
}

// checkUnit checks a unit given to CreateUnit (normalizing its domain) or
// UpdateUnit.
func checkUnit(u *OrgUnit, create bool) error {
	if create {
		var err error
		if u.Domain, err = normalizeDomain(u.Domain); err != nil {
			return err
		}
	}
	return checkName("unit name", u.Name, false)
}

// checkClass checks a ServiceClass given to DefineClass.
func checkClass(c *ServiceClass) error {
	if err := checkName("class name", c.Name, false); err != nil {
		return err
	}
	if c.Quota < 0 || c.MaxMessageSize < 0 || c.Protocols&^AllProtocols != 0 {
		return fmt.Errorf("%w: limits of class %q", ErrInvalid, c.Name)
	}
	return nil
}

// checkNewUser checks what CreateUser is given and returns the normalized
// address.
func checkNewUser(nu *NewUser) (string, error) {
	addr, err := normalizeAddress(nu.Address)
	if err != nil {
		return "", err
	}
	if err := checkName("user name", nu.Name, true); err != nil {
		return "", err
	}
	if nu.Quota < 0 {
		return "", fmt.Errorf("%w: negative quota for %s", ErrInvalid, addr)
	}
	return addr, nil
}

// checkNewUserRecords checks nu, for the address addr, against r: the
// domain is a domain, the address free, the unit one of the domain and the
// class defined.
func checkNewUserRecords(r accountRecords, addr string, nu *NewUser) error {
	domain := addressDomain(addr)
	if err := requireRealDomain(r, domain); err != nil {
		return err
	}
	if err := r.addressFree(addr); err != nil {
		return err
	}
	if err := requireUnitOf(r, nu.Unit, domain); err != nil {
		return err
	}
	return requireClass(r, nu.Class)
}

// checkUserUpdate checks the fields of an update that need no record.
func checkUserUpdate(id UserID, u *UserUpdate) error {
	if u.Name != nil {
		if err := checkName("user name", *u.Name, true); err != nil {
			return err
		}
	}
	if u.Quota != nil && *u.Quota < 0 {
		return fmt.Errorf("%w: negative quota for user %d", ErrInvalid, id)
	}
	return nil
}

// applyUserUpdate checks u's unit and class against r and applies u to
// the user's record.
func applyUserUpdate(r accountRecords, rec *User, u *UserUpdate) error {
	// Units and classes are never deleted, so checking them here, without
	// the lock on names, cannot be invalidated before the change is
	// written.
	if u.Unit != nil {
		if err := requireUnitOf(r, *u.Unit, addressDomain(rec.Address)); err != nil {
			return err
		}
		rec.Unit = *u.Unit
	}
	if u.Class != nil {
		if err := requireClass(r, *u.Class); err != nil {
			return err
		}
		rec.Class = *u.Class
	}
	if u.Name != nil {
		rec.Name = *u.Name
	}
	if u.Quota != nil {
		rec.Quota = *u.Quota
	}
	if u.Disabled != nil {
		rec.Disabled = *u.Disabled
	}
	return nil
}

// newUserRecord is the record CreateUser makes from nu for the checked
// address addr, with id and hash; node is used when nu names none.
func newUserRecord(id UserID, addr, hash, node string, nu *NewUser) userRecord {
	if nu.Node != "" {
		node = nu.Node
	}
	return userRecord{
		User: User{
			ID:      id,
			Address: addr,
			Name:    nu.Name,
			Unit:    nu.Unit,
			Class:   nu.Class,
			Quota:   nu.Quota,
			Node:    node,
			// Rounded through the stored form, so that what is returned
			// equals what User reads back.
			Created: time.Unix(0, time.Now().UnixNano()).UTC(),
		},
		Hash: hash,
	}
}
