package userdata

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/cockroachdb/pebble/v2"

	"github.com/mailsys/mailsys/msstore"
)

// ListFolders calls fn for every folder of the user, in name order (byte
// order of the normalized names), from one consistent view of the
// database. It returns ErrNotFound for an unknown user and stops at fn's
// first error, returning it.
func (d *DB) ListFolders(ctx context.Context, user UserID, fn func(Folder) error) error {
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
	prefix := keyID(tagFolderName, uint64(user))
	return scanFrom(snap, prefix, prefixEnd(prefix), func(k, v []byte) error {
		if len(v) != 4 {
			return fmt.Errorf("userdata: folder name %q of user %d: bad value", k[len(prefix):], user)
		}
		f, err := readFolderFrom(snap, user, FolderID(binary.BigEndian.Uint32(v)))
		if err != nil {
			return err
		}
		return fn(f)
	})
}

// Folder returns the user's folder called name ("INBOX" in any case).
func (d *DB) Folder(ctx context.Context, user UserID, name string) (Folder, error) {
	done, err := d.enter(ctx)
	if err != nil {
		return Folder{}, err
	}
	defer done()
	name, err = normalizeFolder(name)
	if err != nil {
		return Folder{}, err
	}
	// A snapshot, so that a concurrent rename cannot pair the name with
	// another folder's record.
	snap, err := d.db.NewSnapshot()
	if err != nil {
		return Folder{}, err
	}
	defer snap.Close()
	id, err := folderIDFrom(snap, user, name)
	if err != nil {
		return Folder{}, err
	}
	return readFolderFrom(snap, user, id)
}

// FolderByID returns the user's folder with the given id.
func (d *DB) FolderByID(ctx context.Context, user UserID, id FolderID) (Folder, error) {
	done, err := d.enter(ctx)
	if err != nil {
		return Folder{}, err
	}
	defer done()
	return readFolderFrom(d.db, user, id)
}

// CreateFolder creates a folder, and every missing superior level of its
// name as a plain folder (RFC 3501 CREATE). specialUse must be "" or one of
// the Special* constants. The subscriptions are left alone: the new folders
// are unsubscribed unless their names were subscribed already. It returns
// ErrNotFound for an unknown user, ErrExists if the name is taken and
// ErrInvalid for a bad name.
func (d *DB) CreateFolder(ctx context.Context, user UserID, name, specialUse string) (Folder, error) {
	done, err := d.enter(ctx)
	if err != nil {
		return Folder{}, err
	}
	defer done()
	name, err = normalizeFolder(name)
	if err != nil {
		return Folder{}, err
	}
	if err := checkSpecialUse(specialUse); err != nil {
		return Folder{}, err
	}
	lk := d.userLock(user)
	lk.Lock()
	defer lk.Unlock()
	mb, err := readMailboxFrom(d.db, user)
	if err != nil {
		return Folder{}, err
	}
	if ok, err := folderExists(d.db, user, name); err != nil {
		return Folder{}, err
	} else if ok {
		return Folder{}, fmt.Errorf("%w: folder %q", ErrExists, name)
	}
	b := d.db.NewBatch()
	defer b.Close()
	if err := d.createParents(b, user, &mb, name); err != nil {
		return Folder{}, err
	}
	f := putNewFolder(b, user, &mb, name, specialUse)
	writeMailboxRec(b, user, &mb)
	if err := d.commit(b); err != nil {
		return Folder{}, err
	}
	return f, nil
}

// RenameFolder renames a folder and every folder below it; their ids,
// UIDVALIDITY and messages stay, and the subscriptions of from and of the
// names below it move to the new names. It returns ErrNotFound if from does
// not exist, ErrExists if to does, and ErrInvalid for a rename into a
// subfolder of the folder itself. Missing superior levels of to are
// created, unsubscribed.
//
// Renaming INBOX instead creates the folder to, moves all of INBOX's
// messages into it (with new UIDs there, the same bodies) and leaves INBOX
// empty; INBOX's subfolders and subscriptions stay where they are (RFC 3501
// RENAME).
func (d *DB) RenameFolder(ctx context.Context, user UserID, from, to string) error {
	done, err := d.enter(ctx)
	if err != nil {
		return err
	}
	defer done()
	if from, err = normalizeFolder(from); err != nil {
		return err
	}
	if to, err = normalizeFolder(to); err != nil {
		return err
	}
	lk := d.userLock(user)
	lk.Lock()
	defer lk.Unlock()
	fromID, err := folderIDFrom(d.db, user, from)
	if err != nil {
		return err
	}
	if ok, err := folderExists(d.db, user, to); err != nil {
		return err
	} else if ok {
		return fmt.Errorf("%w: folder %q", ErrExists, to)
	}
	if err := checkRename(from, to); err != nil {
		return err
	}
	mb, err := readMailboxFrom(d.db, user)
	if err != nil {
		return err
	}
	b := d.db.NewBatch()
	defer b.Close()
	if err := d.createParents(b, user, &mb, to); err != nil {
		return err
	}
	if from == Inbox {
		return d.renameInbox(b, user, &mb, fromID, to)
	}

	// The folder itself, then everything below it.
	type named struct {
		name string
		id   FolderID
	}
	all := []named{{from, fromID}}
	below := keyFolderName(user, from+string(Delimiter))
	err = d.scan(below, prefixEnd(below), func(k, v []byte) error {
		if len(v) != 4 {
			return fmt.Errorf("userdata: folder name %q of user %d: bad value", k[9:], user)
		}
		all = append(all, named{string(k[9:]), FolderID(binary.BigEndian.Uint32(v))})
		return nil
	})
	if err != nil {
		return err
	}
	for _, n := range all {
		newName := to + n.name[len(from):]
		if n.name != from {
			if ok, err := folderExists(d.db, user, newName); err != nil {
				return err
			} else if ok {
				return fmt.Errorf("%w: folder %q", ErrExists, newName)
			}
		}
		f, err := readFolderFrom(d.db, user, n.id)
		if err != nil {
			return err
		}
		f.Name = newName
		writeFolderRec(b, user, &f)
		b.Delete(keyFolderName(user, n.name), nil)
		b.Set(keyFolderName(user, newName), binary.BigEndian.AppendUint32(nil, uint32(n.id)), nil)
	}
	if err := d.moveSubscriptions(b, user, from, to); err != nil {
		return err
	}
	writeMailboxRec(b, user, &mb)
	return d.commit(b)
}

// renameInbox completes a rename of INBOX in b (which may already hold the
// creation of to's superior levels): a new folder to receives all of
// INBOX's messages. The user's lock is held.
func (d *DB) renameInbox(b *pebble.Batch, user UserID, mb *mailboxRecord, inboxID FolderID, to string) error {
	inbox, err := readFolderFrom(d.db, user, inboxID)
	if err != nil {
		return err
	}
	dst := putNewFolder(b, user, mb, to, "")
	fk := &folderKeywords{}
	t, err := d.transfer(b, user, &inbox, &dst, fk, nil, true)
	if err != nil {
		return err
	}
	writeFolderRec(b, user, &dst)
	fk.put(b, user, dst.ID)
	writeFolderRec(b, user, &inbox)
	writeMailboxRec(b, user, mb)
	if err := d.commit(b); err != nil {
		return err
	}
	if len(t.src) > 0 {
		d.notify(FolderEvent{User: user, Folder: inboxID, Removed: t.src, ModSeq: inbox.HighestModSeq})
	}
	return nil
}

// DeleteFolder deletes a folder that has no subfolders (ErrNotEmpty
// otherwise), with its messages and change log (but for tombstones naming
// the bodies dropped, kept for AutoRepair), and takes their size off
// the user's and the domain's usage; its name stays subscribed if it was
// (RFC 3501 6.3.6). INBOX cannot be deleted (ErrInvalid).
// Once the deletion is committed, the messages' bodies are released; a
// failed release is logged and leaks the body rather than losing one.
func (d *DB) DeleteFolder(ctx context.Context, user UserID, name string) error {
	done, err := d.enter(ctx)
	if err != nil {
		return err
	}
	defer done()
	if name, err = checkDeleteFolder(name); err != nil {
		return err
	}
	own, err := d.ownerOf(user, false)
	if err != nil {
		return err
	}
	refs, err := func() ([]msstore.Ref, error) {
		lk := d.userLock(user)
		lk.Lock()
		defer lk.Unlock()
		id, err := folderIDFrom(d.db, user, name)
		if err != nil {
			return nil, err
		}
		below := keyFolderName(user, name+string(Delimiter))
		errChild := errors.New("child")
		if err := d.scan(below, prefixEnd(below), func(k, v []byte) error { return errChild }); err == errChild {
			return nil, fmt.Errorf("%w: folder %q has subfolders", ErrNotEmpty, name)
		} else if err != nil {
			return nil, err
		}
		var uids []UID
		var refs []msstore.Ref
		var gone []Message // UID, ModSeq and Ref only: for dropChangeLog
		var bytes int64
		err = d.eachMessage(user, id, nil, func(m *Message) error {
			uids = append(uids, m.UID)
			bytes += m.Size
			if !m.Ref.IsZero() {
				gone = append(gone, Message{UID: m.UID, ModSeq: m.ModSeq, Ref: m.Ref})
				if d.cfg.Bodies != nil {
					refs = append(refs, m.Ref)
				}
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		b := d.db.NewBatch()
		defer b.Close()
		msgs := messagePrefix(user, id)
		b.DeleteRange(msgs, prefixEnd(msgs), nil)
		// The change log goes too, but for the tombstones that tell
		// AutoRepair which bodies the user dropped.
		if err := d.dropChangeLog(b, user, id, gone); err != nil {
			return nil, err
		}
		b.Delete(keyFolder(user, id), nil)
		b.Delete(keyFolderName(user, name), nil)
		b.Delete(keyKeywords(user, id), nil)
		if _, err := d.charge(b, user, own, -int64(len(uids)), -bytes, false); err != nil {
			return nil, err
		}
		if err := d.commit(b); err != nil {
			return nil, err
		}
		if len(uids) > 0 {
			d.notify(FolderEvent{User: user, Folder: id, Removed: uids})
		}
		return refs, nil
	}()
	if err != nil {
		return err
	}
	d.releaseBodies(ctx, refs)
	return nil
}

// checkSpecialUse checks that s is "" or one of the Special* constants.
func checkSpecialUse(s string) error {
	switch s {
	case "", SpecialSent, SpecialDrafts, SpecialTrash, SpecialJunk, SpecialArchive:
		return nil
	}
	return fmt.Errorf("%w: special-use attribute %q", ErrInvalid, s)
}

// checkDeleteFolder checks the name given to DeleteFolder and returns it
// normalized: INBOX cannot be deleted.
func checkDeleteFolder(name string) (string, error) {
	name, err := normalizeFolder(name)
	if err != nil {
		return "", err
	}
	if name == Inbox {
		return "", fmt.Errorf("%w: INBOX cannot be deleted", ErrInvalid)
	}
	return name, nil
}

// checkRename refuses the rename of a folder into its own subfolder
// (normalized names; INBOX may be, its subfolders stay).
func checkRename(from, to string) error {
	if from != Inbox && strings.HasPrefix(to, from+string(Delimiter)) {
		return fmt.Errorf("%w: cannot rename folder %q into its own subfolder %q", ErrInvalid, from, to)
	}
	return nil
}

// parentNames returns the superior levels of a normalized name, highest
// first: "a/b/c" gives "a" and "a/b".
func parentNames(name string) []string {
	var ps []string
	for i := range len(name) {
		if name[i] == Delimiter {
			ps = append(ps, name[:i])
		}
	}
	return ps
}

// createParents adds to b every missing superior level of name, as plain
// folders. The user's lock is held.
func (d *DB) createParents(b *pebble.Batch, user UserID, mb *mailboxRecord, name string) error {
	for _, parent := range parentNames(name) {
		ok, err := folderExists(d.db, user, parent)
		if err != nil {
			return err
		}
		if !ok {
			putNewFolder(b, user, mb, parent, "")
		}
	}
	return nil
}

// releaseBodies drops one reference to each body in refs (a body listed n
// times loses n). The index entries are already gone, so a failure only
// leaks the body's space: it is logged, not returned. The releases run even
// if ctx is done by then.
func (d *DB) releaseBodies(ctx context.Context, refs []msstore.Ref) {
	releaseBodies(ctx, d.cfg.Bodies, d.log, refs)
}

// releaseBodies is DB.releaseBodies with bodies (nil for none) and log.
func releaseBodies(ctx context.Context, bodies BodyRefs, log *slog.Logger, refs []msstore.Ref) {
	if bodies == nil {
		return
	}
	ctx = context.WithoutCancel(ctx)
	for _, ref := range refs {
		if err := bodies.Release(ctx, ref); err != nil {
			log.Warn("releasing a message body failed; its space leaks", "ref", ref.String(), "err", err)
		}
	}
}

// readKey reads key from r into a new slice; ErrNotFound if absent.
func readKey(r pebble.Reader, key []byte) ([]byte, error) {
	v, closer, err := r.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("userdata: %w", err)
	}
	v = slices.Clone(v)
	closer.Close()
	return v, nil
}

// readMailboxFrom reads a user's mailbox record; ErrNotFound for an unknown
// user.
func readMailboxFrom(r pebble.Reader, user UserID) (mailboxRecord, error) {
	v, err := readKey(r, keyID(tagMailbox, uint64(user)))
	if errors.Is(err, ErrNotFound) {
		return mailboxRecord{}, fmt.Errorf("%w: user %d", ErrNotFound, user)
	}
	if err != nil {
		return mailboxRecord{}, err
	}
	return decodeMailbox(v)
}

// writeMailboxRec writes a user's mailbox record in b.
func writeMailboxRec(b *pebble.Batch, user UserID, mb *mailboxRecord) {
	b.Set(keyID(tagMailbox, uint64(user)), encodeMailbox(mb), nil)
}

// readFolderFrom reads a folder record; ErrNotFound if there is none.
func readFolderFrom(r pebble.Reader, user UserID, id FolderID) (Folder, error) {
	v, err := readKey(r, keyFolder(user, id))
	if errors.Is(err, ErrNotFound) {
		return Folder{}, fmt.Errorf("%w: folder %d of user %d", ErrNotFound, id, user)
	}
	if err != nil {
		return Folder{}, err
	}
	return decodeFolder(v)
}

// writeFolderRec writes a folder record in b.
func writeFolderRec(b *pebble.Batch, user UserID, f *Folder) {
	b.Set(keyFolder(user, f.ID), encodeFolder(f), nil)
}

// folderIDFrom finds a folder by its normalized name; ErrNotFound if there
// is none.
func folderIDFrom(r pebble.Reader, user UserID, name string) (FolderID, error) {
	v, err := readKey(r, keyFolderName(user, name))
	if errors.Is(err, ErrNotFound) {
		return 0, fmt.Errorf("%w: folder %q", ErrNotFound, name)
	}
	if err != nil {
		return 0, err
	}
	if len(v) != 4 {
		return 0, fmt.Errorf("userdata: folder name %q of user %d: bad value", name, user)
	}
	return FolderID(binary.BigEndian.Uint32(v)), nil
}

// folderExists reports whether the user has a folder with the normalized
// name.
func folderExists(r pebble.Reader, user UserID, name string) (bool, error) {
	_, err := folderIDFrom(r, user, name)
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}
