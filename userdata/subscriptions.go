package userdata

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// Subscriptions are a set of names per user (the tagSubscribed table),
// apart from the folders: IMAP subscribes names, not mailboxes, and a
// server must not drop a subscription because its mailbox was deleted
// (RFC 3501 6.3.6). Until schema version 1 the set was a bit of each
// folder record; Open copies those bits into the table once (see
// upgradeSubscriptions).

// Subscribe adds name to the user's subscriptions or removes it; see
// [Folders]. Adding needs an existing folder of that name (ErrNotFound);
// removing does not. A call that changes nothing writes nothing.
func (d *DB) Subscribe(ctx context.Context, user UserID, name string, subscribed bool) error {
	done, err := d.enter(ctx)
	if err != nil {
		return err
	}
	defer done()
	if name, err = normalizeFolder(name); err != nil {
		return err
	}
	lk := d.userLock(user)
	lk.Lock()
	defer lk.Unlock()
	if _, err := readMailboxFrom(d.db, user); err != nil {
		return err
	}
	if subscribed {
		if ok, err := folderExists(d.db, user, name); err != nil {
			return err
		} else if !ok {
			return fmt.Errorf("%w: folder %q", ErrNotFound, name)
		}
	}
	key := keySubscribed(user, name)
	_, err = readKey(d.db, key)
	switch {
	case err == nil && subscribed, errors.Is(err, ErrNotFound) && !subscribed:
		return nil
	case err != nil && !errors.Is(err, ErrNotFound):
		return err
	}
	b := d.db.NewBatch()
	defer b.Close()
	if subscribed {
		b.Set(key, nil, nil)
	} else {
		b.Delete(key, nil)
	}
	return d.commit(b)
}

// Subscriptions calls fn with every subscribed name of the user, in name
// order; see [Folders]. It returns ErrNotFound for an unknown user.
func (d *DB) Subscriptions(ctx context.Context, user UserID, fn func(name string) error) error {
	done, err := d.enter(ctx)
	if err != nil {
		return err
	}
	defer done()
	snap, err := d.db.NewSnapshot()
	if err != nil {
		return err
	}
	defer snap.Close()
	if _, err := readMailboxFrom(snap, user); err != nil {
		return err
	}
	prefix := keyID(tagSubscribed, uint64(user))
	return scanFrom(snap, prefix, prefixEnd(prefix), func(k, _ []byte) error {
		return fn(string(k[len(prefix):]))
	})
}

// moveSubscriptions adds to b the move of the subscriptions of from, and of
// every name below it, to the same names under to (a rename). The user's
// lock is held.
func (d *DB) moveSubscriptions(b *pebble.Batch, user UserID, from, to string) error {
	prefix := keyID(tagSubscribed, uint64(user))
	move := func(k, _ []byte) error {
		name := string(k[len(prefix):])
		b.Delete(k, nil)
		b.Set(keySubscribed(user, to+name[len(from):]), nil, nil)
		return nil
	}
	key := keySubscribed(user, from)
	if _, err := readKey(d.db, key); err == nil {
		move(key, nil)
	} else if !errors.Is(err, ErrNotFound) {
		return err
	}
	below := keySubscribed(user, from+string(Delimiter))
	return d.scan(below, prefixEnd(below), move)
}

// schemaKey holds the schema version of the database (uint64): 0 (no key)
// for subscriptions kept in the folder records, 1 for the tagSubscribed
// table, 2 for the Lister's tables (see upgradeLister).
var schemaKey = []byte{tagCounter, 's', 'c', 'h', 'e', 'm', 'a'}

// schemaSubscriptions is the schema version from which subscriptions are a
// table of their own.
const schemaSubscriptions = 1

// upgradeSubscriptions brings a database from before schema version 1 to
// it, before anything else reads or writes it: every folder record whose
// subscribed byte is set gets its name into the tagSubscribed table. The
// copy is written in batches of bounded size and the version last, so that
// a crash part way leaves the database at version 0 and the next Open
// copies again; copying again sets the same keys, and nothing else writes
// meanwhile. A database at version 1 is left alone, a newer one refused.
func (d *DB) upgradeSubscriptions(ctx context.Context) error {
	v, err := readKey(d.db, schemaKey)
	var version uint64
	switch {
	case err == nil && len(v) == 8:
		version = binary.BigEndian.Uint64(v)
	case err == nil:
		return fmt.Errorf("userdata: schema version: bad value")
	case !errors.Is(err, ErrNotFound):
		return err
	}
	if version > schemaVersion {
		return fmt.Errorf("userdata: schema version %d is newer than this program's %d", version, schemaVersion)
	}
	if version >= schemaSubscriptions {
		return nil
	}
	b := d.db.NewBatch()
	defer func() { b.Close() }()
	copied := 0
	folders := []byte{tagFolder}
	err = d.scan(folders, prefixEnd(folders), func(k, v []byte) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		if len(k) != 1+8+4 {
			return nil // not a folder record: left to Repair
		}
		name, subscribed, err := oldSubscribed(v)
		if err != nil {
			d.log.Warn("upgrade: unreadable folder record; its subscription is lost", "key", fmt.Sprintf("%x", k), "err", err)
			return nil
		}
		if !subscribed {
			return nil
		}
		b.Set(keySubscribed(UserID(binary.BigEndian.Uint64(k[1:9])), name), nil, nil)
		copied++
		if b.Len() > 4<<20 {
			if err := d.commit(b); err != nil {
				return err
			}
			b.Close()
			b = d.db.NewBatch()
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("userdata: upgrading subscriptions: %w", err)
	}
	b.Set(schemaKey, binary.BigEndian.AppendUint64(nil, schemaSubscriptions), nil)
	if err := d.commit(b); err != nil {
		return fmt.Errorf("userdata: upgrading subscriptions: %w", err)
	}
	if copied > 0 {
		d.log.Info("subscriptions moved out of the folder records", "subscriptions", copied)
	}
	return nil
}

// oldSubscribed reads the name and the subscribed byte of a folder record
// written before schema version 1. The byte follows the id, the name and
// the special use in every folder record version.
func oldSubscribed(v []byte) (name string, subscribed bool, err error) {
	if len(v) == 0 || v[0] < recordVersion || v[0] > folderVersion {
		return "", false, fmt.Errorf("userdata: folder record: unknown version")
	}
	d := newDec(append([]byte{recordVersion}, v[1:]...), "folder")
	d.u()
	name = d.s()
	d.s()
	subscribed = d.bool()
	return name, subscribed, d.err
}
