package userdata

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// schemaLister is the schema version from which the Lister's tables
// (tagDomainUser, tagUserAlias, tagDomainStat) are kept.
const schemaLister = 2

// schemaVersion is the schema version this program writes.
const schemaVersion = schemaLister

// upgradeLister brings a database at schema version 1 to version 2,
// before anything else reads or writes it: every user gets its
// tagDomainUser entry, every alias its tagUserAlias entry, and each
// domain's counters of users, disabled users and messages are set to what
// the user and mailbox records hold (the bytes, tagDomainUsage, were kept
// already). Entries are written in batches of bounded size; the counters,
// set rather than merged, and the version go in the last batch, so that a
// crash part way leaves version 1 and the next Open does it all again,
// harmlessly. A database at version 2 is left alone.
func (d *DB) upgradeLister(ctx context.Context) error {
	v, err := readKey(d.db, schemaKey)
	switch {
	case err == nil && len(v) == 8:
		if binary.BigEndian.Uint64(v) >= schemaLister {
			return nil
		}
	case err == nil:
		return fmt.Errorf("userdata: schema version: bad value")
	case !errors.Is(err, ErrNotFound):
		return err
	}
	b := d.db.NewBatch()
	defer func() { b.Close() }()
	flush := func() error {
		if b.Len() < 4<<20 {
			return nil
		}
		if err := d.commit(b); err != nil {
			return err
		}
		b.Close()
		b = d.db.NewBatch()
		return nil
	}
	type counts struct{ users, disabled, messages int64 }
	domains := map[string]*counts{}
	users := 0
	err = d.scan([]byte{tagUser}, []byte{tagUser + 1}, func(k, v []byte) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		rec, err := decodeUser(v)
		if err != nil {
			d.log.Warn("upgrade: unreadable user record; it is not listed", "key", fmt.Sprintf("%x", k), "err", err)
			return nil
		}
		dom := addressDomain(rec.Address)
		c := domains[dom]
		if c == nil {
			c = &counts{}
			domains[dom] = c
		}
		c.users++
		if rec.Disabled {
			c.disabled++
		}
		if mb, err := readMailboxFrom(d.db, rec.ID); err == nil {
			c.messages += mb.Messages
		}
		putDomainUser(b, &rec.User)
		users++
		return flush()
	})
	if err == nil {
		err = d.scan([]byte{tagAddress}, []byte{tagAddress + 1}, func(k, v []byte) error {
			id, kind, err := decodeAddrEntry(v, string(k[1:]))
			if err != nil || kind != addrAlias {
				return nil
			}
			b.Set(keyUserAlias(id, string(k[1:])), nil, nil)
			return flush()
		})
	}
	if err != nil {
		return fmt.Errorf("userdata: upgrading to schema %d: %w", schemaLister, err)
	}
	for dom, c := range domains {
		setCounter(b, keyDomainStat(dom, statUsers), c.users)
		setCounter(b, keyDomainStat(dom, statDisabled), c.disabled)
		setCounter(b, keyDomainStat(dom, statMessages), c.messages)
	}
	b.Set(schemaKey, binary.BigEndian.AppendUint64(nil, schemaLister), nil)
	if err := d.commit(b); err != nil {
		return fmt.Errorf("userdata: upgrading to schema %d: %w", schemaLister, err)
	}
	if users > 0 {
		d.log.Info("users indexed by domain for listing", "users", users, "domains", len(domains))
	}
	return nil
}

// setCounter sets a merged counter to n in b.
func setCounter(b *pebble.Batch, key []byte, n int64) {
	b.Set(key, binary.BigEndian.AppendUint64(nil, uint64(n)), nil)
}
