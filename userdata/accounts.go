package userdata

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
)

// maxUnitDepth bounds the walk up the organisation tree, against a cycle in
// damaged data.
const maxUnitDepth = 64

// CreateDomain adds a domain; see [Accounts]. The name must be free as a
// domain and as a domain alias (ErrExists); a class, if set, must exist.
func (d *DB) CreateDomain(ctx context.Context, dom Domain) error {
	done, err := d.enter(ctx)
	if err != nil {
		return err
	}
	defer done()
	if err := checkDomain(&dom); err != nil {
		return err
	}
	d.meta.Lock()
	defer d.meta.Unlock()
	if err := d.domainNameFree(dom.Name); err != nil {
		return err
	}
	if err := requireClass(d, dom.Class); err != nil {
		return err
	}
	return d.setOne(keyString(tagDomain, dom.Name), encodeDomain(&dom))
}

// Domain returns a domain; see [Accounts]. A domain alias is not a domain:
// its name gives ErrNotFound.
func (d *DB) Domain(ctx context.Context, name string) (Domain, error) {
	done, err := d.enter(ctx)
	if err != nil {
		return Domain{}, err
	}
	defer done()
	if name, err = normalizeDomain(name); err != nil {
		return Domain{}, err
	}
	return d.domainRecord(name)
}

// UpdateDomain replaces the class, quota and disabled state of an existing
// domain; see [Accounts]. Cached logins are dropped.
func (d *DB) UpdateDomain(ctx context.Context, dom Domain) error {
	done, err := d.enter(ctx)
	if err != nil {
		return err
	}
	defer done()
	if err := checkDomain(&dom); err != nil {
		return err
	}
	d.meta.Lock()
	defer d.meta.Unlock()
	if _, err := d.domainRecord(dom.Name); err != nil {
		return err
	}
	if err := requireClass(d, dom.Class); err != nil {
		return err
	}
	if err := d.setOne(keyString(tagDomain, dom.Name), encodeDomain(&dom)); err != nil {
		return err
	}
	d.logins.forgetAll()
	return nil
}

// AddDomainAlias makes alias another name of domain; see [Accounts]. The
// domain must be a domain, not itself an alias (ErrInvalid), and alias must
// be neither a domain nor an alias yet (ErrExists).
func (d *DB) AddDomainAlias(ctx context.Context, alias, domain string) error {
	done, err := d.enter(ctx)
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
	d.meta.Lock()
	defer d.meta.Unlock()
	if err := requireRealDomain(d, domain); err != nil {
		return err
	}
	if err := d.domainNameFree(alias); err != nil {
		return err
	}
	return d.setOne(keyString(tagDomainAlias, alias), []byte(domain))
}

// CreateUnit adds an organisation unit and returns it with its new ID; see
// [Accounts]. The domain must exist, the parent (if not 0) must be a unit
// of the same domain, and a class, if set, must exist. A u.ID that is not
// 0 is the id to give it (ErrExists if a unit has it).
func (d *DB) CreateUnit(ctx context.Context, u OrgUnit) (OrgUnit, error) {
	done, err := d.enter(ctx)
	if err != nil {
		return OrgUnit{}, err
	}
	defer done()
	if err := checkUnit(&u, true); err != nil {
		return OrgUnit{}, err
	}
	d.meta.Lock()
	defer d.meta.Unlock()
	if err := requireRealDomain(d, u.Domain); err != nil {
		return OrgUnit{}, err
	}
	if err := requireUnitOf(d, u.Parent, u.Domain); err != nil {
		return OrgUnit{}, err
	}
	if err := requireClass(d, u.Class); err != nil {
		return OrgUnit{}, err
	}
	if u.ID != 0 {
		if err := d.keyFree(keyID(tagUnit, uint64(u.ID)), "unit"); err != nil {
			return OrgUnit{}, err
		}
	}
	b := d.db.NewBatch()
	defer b.Close()
	id, err := d.takeCounter(b, "unit", uint64(u.ID))
	if err != nil {
		return OrgUnit{}, err
	}
	u.ID = UnitID(id)
	b.Set(keyID(tagUnit, id), encodeUnit(&u), nil)
	if err := d.commit(b); err != nil {
		return OrgUnit{}, err
	}
	return u, nil
}

// Unit returns an organisation unit; see [Accounts].
func (d *DB) Unit(ctx context.Context, id UnitID) (OrgUnit, error) {
	done, err := d.enter(ctx)
	if err != nil {
		return OrgUnit{}, err
	}
	defer done()
	return d.unitRecord(id)
}

// UpdateUnit sets a unit's name, class and disabled state; see [Accounts].
// Its domain and parent are kept. Cached logins are dropped.
func (d *DB) UpdateUnit(ctx context.Context, u OrgUnit) error {
	done, err := d.enter(ctx)
	if err != nil {
		return err
	}
	defer done()
	if err := checkUnit(&u, false); err != nil {
		return err
	}
	d.meta.Lock()
	defer d.meta.Unlock()
	old, err := d.unitRecord(u.ID)
	if err != nil {
		return err
	}
	if err := requireClass(d, u.Class); err != nil {
		return err
	}
	old.Name, old.Class, old.Disabled = u.Name, u.Class, u.Disabled
	if err := d.setOne(keyID(tagUnit, uint64(old.ID)), encodeUnit(&old)); err != nil {
		return err
	}
	d.logins.forgetAll()
	return nil
}

// DefineClass creates or replaces a service class; see [Accounts]. Quotas
// must not be negative and Protocols must hold only known bits (0 means
// all). Cached logins are dropped.
func (d *DB) DefineClass(ctx context.Context, c ServiceClass) error {
	done, err := d.enter(ctx)
	if err != nil {
		return err
	}
	defer done()
	if err := checkClass(&c); err != nil {
		return err
	}
	if err := d.setOne(keyString(tagClass, c.Name), encodeClass(&c)); err != nil {
		return err
	}
	d.logins.forgetAll()
	return nil
}

// CreateUser adds a user with the default folders and returns it; see
// [Accounts]. The address's domain must be a domain (not an alias) and the
// address free as a primary address and as an alias; the unit, if not 0,
// must belong to that domain; a class, if set, must exist. The password is
// hashed with argon2id, waiting for Config.PasswordLimiter to admit the
// hash for as long as ctx allows (never ErrBusy); an empty one makes an
// account that cannot log in.
func (d *DB) CreateUser(ctx context.Context, nu NewUser) (User, error) {
	done, err := d.enter(ctx)
	if err != nil {
		return User{}, err
	}
	defer done()
	addr, err := checkNewUser(&nu)
	if err != nil {
		return User{}, err
	}
	hash, err := d.hashPassword(ctx, nu.Password)
	if err != nil {
		return User{}, err
	}
	d.meta.Lock()
	defer d.meta.Unlock()
	if err := checkNewUserRecords(d, addr, &nu); err != nil {
		return User{}, err
	}
	if nu.ID != 0 {
		if err := d.keyFree(keyID(tagUser, uint64(nu.ID)), "user"); err != nil {
			return User{}, err
		}
	}
	b := d.db.NewBatch()
	defer b.Close()
	id, err := d.takeCounter(b, "user", uint64(nu.ID))
	if err != nil {
		return User{}, err
	}
	rec := newUserRecord(UserID(id), addr, hash, d.cfg.Node, &nu)
	b.Set(keyID(tagUser, id), encodeUser(&rec), nil)
	b.Set(keyString(tagAddress, addr), encodeAddrEntry(rec.ID, addrPrimary), nil)
	userCreated(b, &rec.User)
	var mb mailboxRecord
	putDefaultFolders(b, rec.ID, &mb)
	b.Set(keyID(tagMailbox, id), encodeMailbox(&mb), nil)
	if err := d.commit(b); err != nil {
		return User{}, err
	}
	return rec.User, nil
}

// User returns a user; see [Accounts]. Disabled is the user's own flag:
// a disabled unit or domain is not reflected in it.
func (d *DB) User(ctx context.Context, id UserID) (User, error) {
	done, err := d.enter(ctx)
	if err != nil {
		return User{}, err
	}
	defer done()
	rec, err := d.userRecord(id)
	return rec.User, err
}

// LookupAddress finds the user an address delivers to; see [Accounts].
// Disabled is the user's own flag, as with User.
func (d *DB) LookupAddress(ctx context.Context, address string) (User, error) {
	done, err := d.enter(ctx)
	if err != nil {
		return User{}, err
	}
	defer done()
	addr, err := normalizeAddress(address)
	if err != nil {
		return User{}, err
	}
	rec, err := d.userRecordByAddress(addr)
	return rec.User, err
}

// UpdateUser changes the fields of u that are not nil; see [Accounts]. A
// unit must belong to the user's domain (0 takes the user out of any unit)
// and a class, if set, must exist. The user's cached logins are dropped.
func (d *DB) UpdateUser(ctx context.Context, id UserID, u UserUpdate) error {
	done, err := d.enter(ctx)
	if err != nil {
		return err
	}
	defer done()
	if err := checkUserUpdate(id, &u); err != nil {
		return err
	}
	mu := d.userLock(id)
	mu.Lock()
	defer mu.Unlock()
	rec, err := d.userRecord(id)
	if err != nil {
		return err
	}
	old := rec.User
	if err := applyUserUpdate(d, &rec.User, &u); err != nil {
		return err
	}
	b := d.db.NewBatch()
	defer b.Close()
	b.Set(keyID(tagUser, uint64(id)), encodeUser(&rec), nil)
	userUpdated(b, &old, &rec.User)
	if err := d.commit(b); err != nil {
		return err
	}
	d.logins.forgetUser(id)
	return nil
}

// SetPassword replaces a user's password; see [Accounts]. An empty password
// means the account can no longer log in. The user's cached logins are
// dropped. Like CreateUser, it waits for Config.PasswordLimiter to admit the
// hash as long as ctx allows.
func (d *DB) SetPassword(ctx context.Context, id UserID, password string) error {
	done, err := d.enter(ctx)
	if err != nil {
		return err
	}
	defer done()
	// Fail fast for an unknown user before paying for the hash.
	if _, err := d.userRecord(id); err != nil {
		return err
	}
	hash, err := d.hashPassword(ctx, password)
	if err != nil {
		return err
	}
	mu := d.userLock(id)
	mu.Lock()
	defer mu.Unlock()
	rec, err := d.userRecord(id)
	if err != nil {
		return err
	}
	rec.Hash = hash
	return d.putUser(&rec)
}

// putUser writes a user record and drops the user's cached logins. The
// user's lock must be held.
func (d *DB) putUser(rec *userRecord) error {
	if err := d.setOne(keyID(tagUser, uint64(rec.ID)), encodeUser(rec)); err != nil {
		return err
	}
	d.logins.forgetUser(rec.ID)
	return nil
}

// AddAlias makes address deliver to user id; see [Accounts]. The address
// must be in a domain, not in a domain alias (ErrInvalid), and be free as a
// primary address and as an alias (ErrExists).
func (d *DB) AddAlias(ctx context.Context, address string, id UserID) error {
	done, err := d.enter(ctx)
	if err != nil {
		return err
	}
	defer done()
	addr, err := normalizeAddress(address)
	if err != nil {
		return err
	}
	d.meta.Lock()
	defer d.meta.Unlock()
	if _, err := d.userRecord(id); err != nil {
		return err
	}
	if err := requireRealDomain(d, addressDomain(addr)); err != nil {
		return err
	}
	if err := d.addressFree(addr); err != nil {
		return err
	}
	b := d.db.NewBatch()
	defer b.Close()
	b.Set(keyString(tagAddress, addr), encodeAddrEntry(id, addrAlias), nil)
	b.Set(keyUserAlias(id, addr), nil, nil)
	return d.commit(b)
}

// RemoveAlias removes an alias; see [Accounts]. The address must be the
// alias itself, not its form in a domain alias; a primary address gives
// ErrInvalid. The user's cached logins are dropped.
func (d *DB) RemoveAlias(ctx context.Context, address string) error {
	done, err := d.enter(ctx)
	if err != nil {
		return err
	}
	defer done()
	addr, err := normalizeAddress(address)
	if err != nil {
		return err
	}
	d.meta.Lock()
	defer d.meta.Unlock()
	key := keyString(tagAddress, addr)
	v, err := d.get(key)
	if err != nil {
		return fmt.Errorf("%w: address %s", err, addr)
	}
	id, kind, err := decodeAddrEntry(v, addr)
	if err != nil {
		return err
	}
	if kind != addrAlias {
		return fmt.Errorf("%w: %s is a primary address, not an alias", ErrInvalid, addr)
	}
	b := d.db.NewBatch()
	defer b.Close()
	b.Delete(key, nil)
	b.Delete(keyUserAlias(id, addr), nil)
	if err := d.commit(b); err != nil {
		return err
	}
	d.logins.forgetUser(id)
	return nil
}

// Limits resolves a user's effective limits; see [Accounts] and
// [ServiceClass] for the inheritance.
func (d *DB) Limits(ctx context.Context, id UserID) (Limits, error) {
	done, err := d.enter(ctx)
	if err != nil {
		return Limits{}, err
	}
	defer done()
	rec, err := d.userRecord(id)
	if err != nil {
		return Limits{}, err
	}
	return limitsOf(d, d.log, &rec.User)
}

// Usage returns what a user's mailbox holds; see [Accounts]. It reads one
// record, kept up to date by every change to the index.
func (d *DB) Usage(ctx context.Context, id UserID) (Usage, error) {
	done, err := d.enter(ctx)
	if err != nil {
		return Usage{}, err
	}
	defer done()
	mb, err := getRecord(d, keyID(tagMailbox, uint64(id)), decodeMailbox, fmt.Sprintf("mailbox of user %d", id))
	return mb.Usage, err
}

// userRecord reads a user record; ErrNotFound if there is none.
func (d *DB) userRecord(id UserID) (userRecord, error) {
	return getRecord(d, keyID(tagUser, uint64(id)), decodeUser, fmt.Sprintf("user %d", id))
}

// userRecordByAddress reads the record of the user a normalized address
// delivers to: a primary address or an alias, in a domain or, through a
// domain alias, in its target.
func (d *DB) userRecordByAddress(addr string) (userRecord, error) {
	id, err := d.userIDByAddress(addr)
	if err != nil {
		return userRecord{}, err
	}
	return d.userRecord(id)
}

// userIDByAddress finds the id of the user a normalized address delivers
// to, as userRecordByAddress does, without reading the user record.
func (d *DB) userIDByAddress(addr string) (UserID, error) {
	v, err := d.get(keyString(tagAddress, addr))
	if errors.Is(err, ErrNotFound) {
		local, domain, _ := strings.Cut(addr, "@")
		var target []byte
		target, err = d.get(keyString(tagDomainAlias, domain))
		if err == nil {
			v, err = d.get(keyString(tagAddress, local+"@"+string(target)))
		}
	}
	if err != nil {
		return 0, fmt.Errorf("%w: address %s", err, addr)
	}
	id, _, err := decodeAddrEntry(v, addr)
	return id, err
}

// domainRecord reads a domain; ErrNotFound if there is none.
func (d *DB) domainRecord(name string) (Domain, error) {
	return getRecord(d, keyString(tagDomain, name), decodeDomain, "domain "+name)
}

// unitRecord reads a unit; ErrNotFound if there is none.
func (d *DB) unitRecord(id UnitID) (OrgUnit, error) {
	return getRecord(d, keyID(tagUnit, uint64(id)), decodeUnit, fmt.Sprintf("unit %d", id))
}

// classRecord reads a service class; ErrNotFound if there is none.
func (d *DB) classRecord(name string) (ServiceClass, error) {
	return getRecord(d, keyString(tagClass, name), decodeClass, fmt.Sprintf("class %q", name))
}

// getRecord reads and decodes the record at key; errors name it as what.
func getRecord[T any](d *DB, key []byte, decode func([]byte) (T, error), what string) (T, error) {
	var r T
	v, err := d.get(key)
	if err == nil {
		r, err = decode(v)
	}
	if err != nil {
		return r, fmt.Errorf("%w: %s", err, what)
	}
	return r, nil
}

// setOne writes one key in a batch of its own.
func (d *DB) setOne(key, value []byte) error {
	b := d.db.NewBatch()
	defer b.Close()
	b.Set(key, value, nil)
	return d.commit(b)
}

// domainAliasOf returns the domain alias is another name of; see
// accountRecords.
func (d *DB) domainAliasOf(alias string) (string, error) {
	target, err := d.get(keyString(tagDomainAlias, alias))
	if err != nil {
		return "", fmt.Errorf("%w: domain alias %s", err, alias)
	}
	return string(target), nil
}

// domainNameFree checks that name is neither a domain nor a domain alias.
// d.meta must be held.
func (d *DB) domainNameFree(name string) error {
	if err := d.keyFree(keyString(tagDomain, name), "domain "+name); err != nil {
		return err
	}
	return d.keyFree(keyString(tagDomainAlias, name), "domain "+name)
}

// addressFree checks that addr is neither a primary address nor an alias.
// d.meta must be held.
func (d *DB) addressFree(addr string) error {
	return d.keyFree(keyString(tagAddress, addr), "address "+addr)
}

// keyFree returns ErrExists, naming what, if key is present.
func (d *DB) keyFree(key []byte, what string) error {
	_, err := d.get(key)
	switch {
	case err == nil:
		return fmt.Errorf("%w: %s", ErrExists, what)
	case errors.Is(err, ErrNotFound):
		return nil
	}
	return err
}

// addressDomain returns the domain part of a normalized address.
func addressDomain(addr string) string {
	_, domain, _ := strings.Cut(addr, "@")
	return domain
}

// encodeAddrEntry is the value of an address key: the user id and the kind
// of address (addrPrimary or addrAlias).
func encodeAddrEntry(id UserID, kind byte) []byte {
	return append(binary.BigEndian.AppendUint64(nil, uint64(id)), kind)
}

// errCorruptAddr is wrapped by the error of an address entry that cannot be
// decoded.
var errCorruptAddr = errors.New("corrupt entry")

func decodeAddrEntry(v []byte, addr string) (UserID, byte, error) {
	if len(v) != 9 || (v[8] != addrPrimary && v[8] != addrAlias) {
		return 0, 0, fmt.Errorf("userdata: address %s: %w", addr, errCorruptAddr)
	}
	return UserID(binary.BigEndian.Uint64(v)), v[8], nil
}
