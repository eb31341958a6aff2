package userdata

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/cockroachdb/pebble/v2"
)

// MaxFolderKeywords bounds the keywords a folder may know (see
// KeywordLister): a change that would add one more fails with ErrInvalid.
const MaxFolderKeywords = 256

// KeywordLister is an optional capability of a UserDB: the keywords (IMAP
// user flags) used in each folder, which an IMAP server lists in SELECT's
// FLAGS and announces, when one is new, before the messages that carry it
// (FolderEvent.Keywords).
type KeywordLister interface {
	// Keywords returns every keyword ever set on a message of the folder
	// (by Append, StoreFlags, Copy or Move), in the order of first use,
	// compared without regard to case. The list only grows, to at most
	// MaxFolderKeywords. It returns ErrNotFound for an unknown user or
	// folder. The slice is the caller's.
	Keywords(ctx context.Context, user UserID, folder FolderID) ([]string, error)
}

var _ KeywordLister = (*DB)(nil)

// Keywords implements KeywordLister.
func (d *DB) Keywords(ctx context.Context, user UserID, folder FolderID) ([]string, error) {
	done, err := d.enter(ctx)
	if err != nil {
		return nil, err
	}
	defer done()
	snap, err := d.db.NewSnapshot()
	if err != nil {
		return nil, err
	}
	defer snap.Close()
	if _, err := readFolderFrom(snap, user, folder); err != nil {
		return nil, err
	}
	kws, _, err := keywordsFrom(snap, user, folder)
	return kws, err
}

// folderKeywords is the keyword list of one folder within a mutation that
// may add to it; the user's lock is held.
type folderKeywords struct {
	list  []string
	write bool // list must be written: it grew, or was gathered
	grew  bool
}

// readKeywords reads a folder's keyword list for a mutation.
func (d *DB) readKeywords(user UserID, folder FolderID) (*folderKeywords, error) {
	kws, gathered, err := keywordsFrom(d.db, user, folder)
	if err != nil {
		return nil, err
	}
	return &folderKeywords{list: kws, write: gathered}, nil
}

// add adds those of kws the list does not have yet, without regard to
// case, in order. It fails with ErrInvalid, leaving the list alone, when
// it would pass MaxFolderKeywords.
func (fk *folderKeywords) add(kws []string) error {
	var add []string
	for _, k := range kws {
		if !hasKeyword(fk.list, k) && !hasKeyword(add, k) {
			add = append(add, k)
		}
	}
	if len(add) == 0 {
		return nil
	}
	if len(fk.list)+len(add) > MaxFolderKeywords {
		return fmt.Errorf("%w: a folder may use at most %d keywords", ErrInvalid, MaxFolderKeywords)
	}
	fk.list = append(fk.list, add...)
	fk.write, fk.grew = true, true
	return nil
}

// put writes the list in b if it changed.
func (fk *folderKeywords) put(b *pebble.Batch, user UserID, folder FolderID) {
	if fk.write {
		b.Set(keyKeywords(user, folder), encodeKeywords(fk.list), nil)
	}
}

// event is the FolderEvent.Keywords of the mutation: the list if it grew.
func (fk *folderKeywords) event() []string {
	if !fk.grew {
		return nil
	}
	return slices.Clone(fk.list)
}

func encodeKeywords(kws []string) []byte { return enc{recordVersion}.strs(kws) }

func decodeKeywords(b []byte) ([]string, error) {
	d := newDec(b, "keywords")
	n := d.u()
	if n > uint64(len(d.b)) {
		d.fail()
	}
	kws := make([]string, 0, min(n, uint64(len(d.b))))
	for range min(n, uint64(len(d.b))) {
		kws = append(kws, d.s())
	}
	return kws, d.done()
}

// keywordsFrom reads a folder's keyword list. A folder made before folders
// kept one has none written: its list is gathered from its messages (in
// UID order of first use), and gathered is true, so that the next
// mutation writes it.
func keywordsFrom(r pebble.Reader, user UserID, folder FolderID) (kws []string, gathered bool, err error) {
	v, err := readKey(r, keyKeywords(user, folder))
	if err == nil {
		kws, err = decodeKeywords(v)
		return kws, false, err
	}
	if !errors.Is(err, ErrNotFound) {
		return nil, false, err
	}
	prefix := messagePrefix(user, folder)
	var m Message
	err = scanFrom(r, prefix, prefixEnd(prefix), func(k, v []byte) error {
		if len(k) != len(prefix)+4 {
			return fmt.Errorf("userdata: folder %d of user %d: bad message key", folder, user)
		}
		if err := decodeMessage(v, UID(binary.BigEndian.Uint32(k[len(prefix):])), &m); err != nil {
			return err
		}
		for _, kw := range m.Keywords {
			if !hasKeyword(kws, kw) && len(kws) < MaxFolderKeywords {
				kws = append(kws, kw)
			}
		}
		return nil
	})
	return kws, true, err
}
