package userdata

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

	"github.com/cockroachdb/pebble/v2"

	"github.com/mailsys/mailsys/msstore"
)

// The Lister of a DB (see doc.go for the keys): the tagDomainUser index
// lists a domain's users by address, the tagUserAlias table a user's
// aliases, and the tagDomainStat counters (merged, as tagDomainUsage)
// count a domain's users, disabled users and messages.
const (
	tagDomainUser = 'A' // A domain 0x00 address         -> user record summary: id, unit, name
	tagUserAlias  = 'l' // l user(8) address              -> empty: an alias of the user
	tagDomainStat = 'S' // S domain 0x00 kind(1)          -> int64 (merge operator: sum)
)

// Kinds of tagDomainStat counters.
const (
	statUsers    = 'u'
	statDisabled = 'x'
	statMessages = 'm'
)

var _ Lister = (*DB)(nil)

func domainUserPrefix(domain string) []byte {
	return append(keyString(tagDomainUser, domain), 0)
}

func keyDomainUser(addr string) []byte {
	return append(domainUserPrefix(addressDomain(addr)), addr...)
}

func keyUserAlias(u UserID, addr string) []byte {
	return append(keyID(tagUserAlias, uint64(u)), addr...)
}

func keyDomainStat(domain string, kind byte) []byte {
	return append(keyString(tagDomainStat, domain), 0, kind)
}

// encodeDomainUser is the value of a user's tagDomainUser entry: what
// ListUsers filters on without reading the user record.
func encodeDomainUser(u *User) []byte {
	return enc{recordVersion}.u(uint64(u.ID)).u(uint64(u.Unit)).s(u.Name)
}

func decodeDomainUser(b []byte) (id UserID, unit UnitID, name string, err error) {
	d := newDec(b, "domain user")
	id, unit, name = UserID(d.u()), UnitID(d.u()), d.s()
	return id, unit, name, d.done()
}

// putDomainUser writes u's tagDomainUser entry in b.
func putDomainUser(b *pebble.Batch, u *User) {
	b.Set(keyDomainUser(u.Address), encodeDomainUser(u), nil)
}

// addDomainStat adds delta to a counter of domain in b.
func addDomainStat(b *pebble.Batch, domain string, kind byte, delta int64) {
	if delta != 0 {
		b.Merge(keyDomainStat(domain, kind), binary.BigEndian.AppendUint64(nil, uint64(delta)), nil)
	}
}

// userCreated records a new user in b: its index entry and its domain's
// counts. d.meta is held.
func userCreated(b *pebble.Batch, u *User) {
	putDomainUser(b, u)
	dom := addressDomain(u.Address)
	addDomainStat(b, dom, statUsers, 1)
	if u.Disabled {
		addDomainStat(b, dom, statDisabled, 1)
	}
}

// userUpdated records in b what changed from old to u: the index entry
// (name, unit) and the domain's disabled count.
func userUpdated(b *pebble.Batch, old, u *User) {
	if old.Name != u.Name || old.Unit != u.Unit {
		putDomainUser(b, u)
	}
	if old.Disabled != u.Disabled {
		delta := int64(1)
		if !u.Disabled {
			delta = -1
		}
		addDomainStat(b, addressDomain(u.Address), statDisabled, delta)
	}
}

// snapshotRead runs fn on a snapshot of the database.
func (d *DB) snapshotRead(fn func(r pebble.Reader) error) error {
	snap, err := d.db.NewSnapshot()
	if err != nil {
		return fmt.Errorf("userdata: %w", err)
	}
	defer snap.Close()
	return fn(snap)
}

// ListDomains implements Lister.
func (d *DB) ListDomains(ctx context.Context, after string, limit int) ([]Domain, error) {
	done, err := d.enter(ctx)
	if err != nil {
		return nil, err
	}
	defer done()
	if limit, err = listLimit(limit); err != nil {
		return nil, err
	}
	lo := append(keyString(tagDomain, strings.ToLower(after)), 0)
	if after == "" {
		lo = []byte{tagDomain}
	}
	var out []Domain
	err = d.scan(lo, []byte{tagDomain + 1}, func(k, v []byte) error {
		dom, err := decodeDomain(v)
		if err != nil {
			return fmt.Errorf("%w: domain %q", err, k[1:])
		}
		out = append(out, dom)
		if len(out) == limit {
			return errStop
		}
		return nil
	})
	if err != nil && err != errStop {
		return nil, err
	}
	return out, nil
}

// errStop ends a scan early; it is never returned.
var errStop = errors.New("stop")

// ListUnits implements Lister.
func (d *DB) ListUnits(ctx context.Context, domain string) ([]OrgUnit, error) {
	done, err := d.enter(ctx)
	if err != nil {
		return nil, err
	}
	defer done()
	if domain, err = normalizeDomain(domain); err != nil {
		return nil, err
	}
	var out []OrgUnit
	err = d.snapshotRead(func(r pebble.Reader) error {
		if _, err := readKey(r, keyString(tagDomain, domain)); err != nil {
			return fmt.Errorf("%w: domain %s", err, domain)
		}
		return scanFrom(r, []byte{tagUnit}, []byte{tagUnit + 1}, func(k, v []byte) error {
			u, err := decodeUnit(v)
			if err != nil {
				return fmt.Errorf("%w: unit %x", err, k[1:])
			}
			if u.Domain == domain {
				out = append(out, u)
			}
			return ctx.Err()
		})
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// ListClasses implements Lister.
func (d *DB) ListClasses(ctx context.Context) ([]ServiceClass, error) {
	done, err := d.enter(ctx)
	if err != nil {
		return nil, err
	}
	defer done()
	var out []ServiceClass
	err = d.scan([]byte{tagClass}, []byte{tagClass + 1}, func(k, v []byte) error {
		c, err := decodeClass(v)
		if err != nil {
			return fmt.Errorf("%w: class %q", err, k[1:])
		}
		out = append(out, c)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// ListUsers implements Lister: one ordered scan of the domain's
// tagDomainUser entries from q.After, filtered on their unit and name,
// and one user record read per user returned.
func (d *DB) ListUsers(ctx context.Context, q UserQuery) ([]User, error) {
	done, err := d.enter(ctx)
	if err != nil {
		return nil, err
	}
	defer done()
	f, err := checkUserQuery(q)
	if err != nil {
		return nil, err
	}
	prefix := domainUserPrefix(f.q.Domain)
	lo := prefix
	if f.q.After != "" {
		lo = append(append(append([]byte(nil), prefix...), f.q.After...), 0)
	}
	var out []User
	err = d.snapshotRead(func(r pebble.Reader) error {
		if _, err := readKey(r, keyString(tagDomain, f.q.Domain)); err != nil {
			return fmt.Errorf("%w: domain %s", err, f.q.Domain)
		}
		n := 0
		return scanFrom(r, lo, prefixEnd(prefix), func(k, v []byte) error {
			if n++; n%1024 == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			addr := string(k[len(prefix):])
			id, unit, name, err := decodeDomainUser(v)
			if err != nil {
				return fmt.Errorf("%w: user %s", err, addr)
			}
			if !f.match(addr, unit, name) {
				return nil
			}
			rec, err := getRecordFrom(r, keyID(tagUser, uint64(id)), decodeUser, fmt.Sprintf("user %d", id))
			if err != nil {
				return err
			}
			out = append(out, rec.User)
			if len(out) == f.q.Limit {
				return errStop
			}
			return nil
		})
	})
	if err != nil && err != errStop {
		return nil, err
	}
	return out, nil
}

// getRecordFrom is getRecord on r.
func getRecordFrom[T any](r pebble.Reader, key []byte, decode func([]byte) (T, error), what string) (T, error) {
	var rec T
	v, err := readKey(r, key)
	if err == nil {
		rec, err = decode(v)
	}
	if err != nil {
		return rec, fmt.Errorf("%w: %s", err, what)
	}
	return rec, nil
}

// DomainUsage implements Lister: it reads the domain's counters.
func (d *DB) DomainUsage(ctx context.Context, domain string) (DomainUsage, error) {
	done, err := d.enter(ctx)
	if err != nil {
		return DomainUsage{}, err
	}
	defer done()
	if domain, err = normalizeDomain(domain); err != nil {
		return DomainUsage{}, err
	}
	var du DomainUsage
	err = d.snapshotRead(func(r pebble.Reader) error {
		if _, err := readKey(r, keyString(tagDomain, domain)); err != nil {
			return fmt.Errorf("%w: domain %s", err, domain)
		}
		for _, c := range []struct {
			key []byte
			to  *int64
		}{
			{keyDomainStat(domain, statUsers), &du.Users},
			{keyDomainStat(domain, statDisabled), &du.Disabled},
			{keyDomainStat(domain, statMessages), &du.Messages},
			{keyString(tagDomainUsage, domain), &du.Bytes},
		} {
			n, err := readCounter(r, c.key)
			if err != nil {
				return fmt.Errorf("%w: usage of domain %s", err, domain)
			}
			*c.to = n
		}
		return nil
	})
	return du, err
}

// readCounter reads a merged int64 counter; 0 if absent.
func readCounter(r pebble.Reader, key []byte) (int64, error) {
	v, err := readKey(r, key)
	switch {
	case errors.Is(err, ErrNotFound):
		return 0, nil
	case err != nil:
		return 0, err
	case len(v) != 8:
		return 0, errors.New("userdata: bad counter value")
	}
	return int64(binary.BigEndian.Uint64(v)), nil
}

// DeleteUser implements Lister: one batch deletes the user's records,
// addresses, aliases, folders, messages, change log and subscriptions and
// takes its counts off its domain's; the bodies its messages referenced
// are released once it is committed (a crash in between leaks them, never
// loses one or releases one twice). Watchers of the user's folders are not
// told: the user is gone.
func (d *DB) DeleteUser(ctx context.Context, id UserID) error {
	done, err := d.enter(ctx)
	if err != nil {
		return err
	}
	defer done()
	refs, err := d.deleteUser(id)
	if err != nil {
		return err
	}
	d.releaseBodies(ctx, refs)
	return nil
}

// deleteUser commits the deletion of user id and returns the bodies to
// release.
func (d *DB) deleteUser(id UserID) ([]msstore.Ref, error) {
	d.meta.Lock()
	defer d.meta.Unlock()
	mu := d.userLock(id)
	mu.Lock()
	defer mu.Unlock()
	rec, err := d.userRecord(id)
	if err != nil {
		return nil, err
	}
	mb, err := readMailboxFrom(d.db, id)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return nil, err
	}
	b := d.db.NewBatch()
	defer b.Close()
	b.Delete(keyID(tagUser, uint64(id)), nil)
	b.Delete(keyString(tagAddress, rec.Address), nil)
	b.Delete(keyDomainUser(rec.Address), nil)
	aliases := keyID(tagUserAlias, uint64(id))
	err = d.scan(aliases, prefixEnd(aliases), func(k, v []byte) error {
		b.Delete(keyString(tagAddress, string(k[len(aliases):])), nil)
		return nil
	})
	if err != nil {
		return nil, err
	}
	var refs []msstore.Ref
	if d.cfg.Bodies != nil {
		msgs := keyID(tagMessage, uint64(id))
		err = d.scan(msgs, prefixEnd(msgs), func(k, v []byte) error {
			var m Message
			if len(k) != len(msgs)+8 {
				return nil
			}
			if err := decodeMessage(v, UID(binary.BigEndian.Uint32(k[len(msgs)+4:])), &m); err != nil {
				d.log.Warn("delete user: an unreadable message entry; its body leaks", "user", id, "key", fmt.Sprintf("%x", k), "err", err)
				return nil
			}
			if !m.Ref.IsZero() {
				refs = append(refs, m.Ref)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	b.Delete(keyID(tagMailbox, uint64(id)), nil)
	for _, tag := range []byte{tagUserAlias, tagFolder, tagFolderName, tagMessage, tagChange, tagKeywords, tagSubscribed} {
		p := keyID(tag, uint64(id))
		b.DeleteRange(p, prefixEnd(p), nil)
	}
	dom := addressDomain(rec.Address)
	addDomainStat(b, dom, statUsers, -1)
	if rec.Disabled {
		addDomainStat(b, dom, statDisabled, -1)
	}
	addDomainStat(b, dom, statMessages, -mb.Messages)
	if mb.Bytes != 0 {
		addDomainUsage(b, dom, -mb.Bytes)
	}
	if err := d.commit(b); err != nil {
		return nil, err
	}
	d.logins.forgetUser(id)
	return refs, nil
}
