package userdata

import (
	"context"
	"fmt"
)

// The Accounts and Authenticator of a Memory. Each follows the DB method
// of the same name: the same checks (rules.go), the same errors.

// CreateDomain implements Accounts.
func (m *Memory) CreateDomain(ctx context.Context, dom Domain) error {
	done, err := m.enter(ctx)
	if err != nil {
		return err
	}
	defer done()
	if err := checkDomain(&dom); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.st.domainNameFree(dom.Name); err != nil {
		return err
	}
	if err := requireClass(&m.st, dom.Class); err != nil {
		return err
	}
	m.st.domains[dom.Name] = dom
	return nil
}

// Domain implements Accounts.
func (m *Memory) Domain(ctx context.Context, name string) (Domain, error) {
	done, err := m.enter(ctx)
	if err != nil {
		return Domain{}, err
	}
	defer done()
	if name, err = normalizeDomain(name); err != nil {
		return Domain{}, err
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.st.domainRecord(name)
}

// UpdateDomain implements Accounts.
func (m *Memory) UpdateDomain(ctx context.Context, dom Domain) error {
	done, err := m.enter(ctx)
	if err != nil {
		return err
	}
	defer done()
	if err := checkDomain(&dom); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, err := m.st.domainRecord(dom.Name); err != nil {
		return err
	}
	if err := requireClass(&m.st, dom.Class); err != nil {
		return err
	}
	m.st.domains[dom.Name] = dom
	m.logins.forgetAll()
	return nil
}

// AddDomainAlias implements Accounts.
func (m *Memory) AddDomainAlias(ctx context.Context, alias, domain string) error {
	done, err := m.enter(ctx)
	if err != nil {
		return err
	}
	defer done()
	if alias, err = normalizeDomain(alias); err != nil {
		return err
	}
	if domain, err = normalizeDomain(domain); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := requireRealDomain(&m.st, domain); err != nil {
		return err
	}
	if err := m.st.domainNameFree(alias); err != nil {
		return err
	}
	m.st.domainAliases[alias] = domain
	return nil
}

// CreateUnit implements Accounts.
func (m *Memory) CreateUnit(ctx context.Context, u OrgUnit) (OrgUnit, error) {
	done, err := m.enter(ctx)
	if err != nil {
		return OrgUnit{}, err
	}
	defer done()
	if err := checkUnit(&u, true); err != nil {
		return OrgUnit{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := requireRealDomain(&m.st, u.Domain); err != nil {
		return OrgUnit{}, err
	}
	if err := requireUnitOf(&m.st, u.Parent, u.Domain); err != nil {
		return OrgUnit{}, err
	}
	if err := requireClass(&m.st, u.Class); err != nil {
		return OrgUnit{}, err
	}
	if u.ID == 0 {
		m.st.lastUnit++
		u.ID = m.st.lastUnit
	} else if _, ok := m.st.units[u.ID]; ok {
		return OrgUnit{}, fmt.Errorf("%w: unit %d", ErrExists, u.ID)
	}
	m.st.lastUnit = max(m.st.lastUnit, u.ID)
	m.st.units[u.ID] = u
	return u, nil
}

// Unit implements Accounts.
func (m *Memory) Unit(ctx context.Context, id UnitID) (OrgUnit, error) {
	done, err := m.enter(ctx)
	if err != nil {
		return OrgUnit{}, err
	}
	defer done()
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.st.unitRecord(id)
}

// UpdateUnit implements Accounts.
func (m *Memory) UpdateUnit(ctx context.Context, u OrgUnit) error {
	done, err := m.enter(ctx)
	if err != nil {
		return err
	}
	defer done()
	if err := checkUnit(&u, false); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	old, err := m.st.unitRecord(u.ID)
	if err != nil {
		return err
	}
	if err := requireClass(&m.st, u.Class); err != nil {
		return err
	}
	old.Name, old.Class, old.Disabled = u.Name, u.Class, u.Disabled
	m.st.units[old.ID] = old
	m.logins.forgetAll()
	return nil
}

// DefineClass implements Accounts.
func (m *Memory) DefineClass(ctx context.Context, c ServiceClass) error {
	done, err := m.enter(ctx)
	if err != nil {
		return err
	}
	defer done()
	if err := checkClass(&c); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.st.classes[c.Name] = c
	m.logins.forgetAll()
	return nil
}

// CreateUser implements Accounts: the user gets the default folders,
// subscribed. The password is hashed before the Memory's lock is taken.
func (m *Memory) CreateUser(ctx context.Context, nu NewUser) (User, error) {
	done, err := m.enter(ctx)
	if err != nil {
		return User{}, err
	}
	defer done()
	addr, err := checkNewUser(&nu)
	if err != nil {
		return User{}, err
	}
	hash, err := m.hashPassword(ctx, nu.Password)
	if err != nil {
		return User{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := checkNewUserRecords(&m.st, addr, &nu); err != nil {
		return User{}, err
	}
	id := nu.ID
	if id == 0 {
		m.st.lastUser++
		id = m.st.lastUser
	} else if _, ok := m.st.users[id]; ok {
		return User{}, fmt.Errorf("%w: user %d", ErrExists, id)
	}
	m.st.lastUser = max(m.st.lastUser, id)
	u := &memUser{
		rec:     newUserRecord(id, addr, hash, m.cfg.Node, &nu),
		folders: map[FolderID]*memFolder{},
		names:   map[string]FolderID{},
		subs:    map[string]bool{},
	}
	for _, f := range defaultFolders {
		u.newFolder(f.name, f.special)
		u.subs[f.name] = true
	}
	m.st.users[u.rec.ID] = u
	m.st.addresses[addr] = memAddr{user: u.rec.ID}
	m.st.stats(addr).Users++
	return u.rec.User, nil
}

// User implements Accounts.
func (m *Memory) User(ctx context.Context, id UserID) (User, error) {
	done, err := m.enter(ctx)
	if err != nil {
		return User{}, err
	}
	defer done()
	m.mu.RLock()
	defer m.mu.RUnlock()
	u, err := m.st.user(id)
	if err != nil {
		return User{}, err
	}
	return u.rec.User, nil
}

// LookupAddress implements Accounts.
func (m *Memory) LookupAddress(ctx context.Context, address string) (User, error) {
	done, err := m.enter(ctx)
	if err != nil {
		return User{}, err
	}
	defer done()
	addr, err := normalizeAddress(address)
	if err != nil {
		return User{}, err
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	u, err := m.st.userByAddress(addr)
	if err != nil {
		return User{}, err
	}
	return u.rec.User, nil
}

// UpdateUser implements Accounts.
func (m *Memory) UpdateUser(ctx context.Context, id UserID, uu UserUpdate) error {
	done, err := m.enter(ctx)
	if err != nil {
		return err
	}
	defer done()
	if err := checkUserUpdate(id, &uu); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	u, err := m.st.user(id)
	if err != nil {
		return err
	}
	rec := u.rec.User
	if err := applyUserUpdate(&m.st, &rec, &uu); err != nil {
		return err
	}
	if rec.Disabled != u.rec.Disabled {
		if rec.Disabled {
			m.st.stats(rec.Address).Disabled++
		} else {
			m.st.stats(rec.Address).Disabled--
		}
	}
	u.rec.User = rec
	m.logins.forgetUser(id)
	return nil
}

// SetPassword implements Accounts. The password is hashed before the
// Memory's lock is taken.
func (m *Memory) SetPassword(ctx context.Context, id UserID, password string) error {
	done, err := m.enter(ctx)
	if err != nil {
		return err
	}
	defer done()
	m.mu.RLock()
	_, err = m.st.user(id)
	m.mu.RUnlock()
	if err != nil {
		return err // before paying for the hash
	}
	hash, err := m.hashPassword(ctx, password)
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	u, err := m.st.user(id)
	if err != nil {
		return err
	}
	u.rec.Hash = hash
	m.logins.forgetUser(id)
	return nil
}

// AddAlias implements Accounts.
func (m *Memory) AddAlias(ctx context.Context, address string, id UserID) error {
	done, err := m.enter(ctx)
	if err != nil {
		return err
	}
	defer done()
	addr, err := normalizeAddress(address)
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, err := m.st.user(id); err != nil {
		return err
	}
	if err := requireRealDomain(&m.st, addressDomain(addr)); err != nil {
		return err
	}
	if err := m.st.addressFree(addr); err != nil {
		return err
	}
	m.st.addresses[addr] = memAddr{user: id, alias: true}
	return nil
}

// RemoveAlias implements Accounts.
func (m *Memory) RemoveAlias(ctx context.Context, address string) error {
	done, err := m.enter(ctx)
	if err != nil {
		return err
	}
	defer done()
	addr, err := normalizeAddress(address)
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	a, ok := m.st.addresses[addr]
	switch {
	case !ok:
		return fmt.Errorf("%w: address %s", ErrNotFound, addr)
	case !a.alias:
		return fmt.Errorf("%w: %s is a primary address, not an alias", ErrInvalid, addr)
	}
	delete(m.st.addresses, addr)
	m.logins.forgetUser(a.user)
	return nil
}

// Limits implements Accounts.
func (m *Memory) Limits(ctx context.Context, id UserID) (Limits, error) {
	done, err := m.enter(ctx)
	if err != nil {
		return Limits{}, err
	}
	defer done()
	m.mu.RLock()
	defer m.mu.RUnlock()
	u, err := m.st.user(id)
	if err != nil {
		return Limits{}, err
	}
	return limitsOf(&m.st, m.log, &u.rec.User)
}

// Usage implements Accounts.
func (m *Memory) Usage(ctx context.Context, id UserID) (Usage, error) {
	done, err := m.enter(ctx)
	if err != nil {
		return Usage{}, err
	}
	defer done()
	m.mu.RLock()
	defer m.mu.RUnlock()
	u, err := m.st.user(id)
	if err != nil {
		return Usage{}, err
	}
	return u.mb.Usage, nil
}

// Authenticate implements Authenticator as DB.Authenticate does: from the
// login cache, or with one argon2id check admitted by the PasswordLimiter
// (ErrBusy when it refuses), run without the Memory's lock.
func (m *Memory) Authenticate(ctx context.Context, address, password string, p Protocol) (User, error) {
	done, err := m.enter(ctx)
	if err != nil {
		return User{}, err
	}
	defer done()
	find := func(addr string) (userRecord, error) {
		m.mu.RLock()
		defer m.mu.RUnlock()
		u, err := m.st.userByAddress(addr)
		if err != nil {
			return userRecord{}, err
		}
		return u.rec, nil
	}
	resolve := func(u *User) (Limits, bool, error) {
		m.mu.RLock()
		defer m.mu.RUnlock()
		return loginState(&m.st, m.log, u)
	}
	u, _, err := m.login(ctx, address, password, p, find, resolve)
	return u, err
}
