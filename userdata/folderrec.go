package userdata

import (
	"encoding/binary"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// defaultFolders are made with every user, subscribed.
var defaultFolders = []struct{ name, special string }{
	{Inbox, ""},
	{"Sent", SpecialSent},
	{"Drafts", SpecialDrafts},
	{"Trash", SpecialTrash},
	{"Junk", SpecialJunk},
	{"Archive", SpecialArchive},
}

// putDefaultFolders adds to b the folders of a new user, from its new
// (zero) mailbox record mb, which the caller writes, and subscribes them.
func putDefaultFolders(b *pebble.Batch, user UserID, mb *mailboxRecord) {
	for _, f := range defaultFolders {
		putNewFolder(b, user, mb, f.name, f.special)
		b.Set(keySubscribed(user, f.name), nil, nil)
	}
}

// newFolderRecord returns a new, empty folder named name, taking its id
// and UIDVALIDITY from mb (which it updates): the UIDVALIDITY is the
// time, and above every one given before.
func newFolderRecord(mb *mailboxRecord, name, special string) Folder {
	mb.NextFolder++
	validity := max(uint32(time.Now().Unix()), mb.LastValidity+1)
	mb.LastValidity = validity
	return Folder{
		ID:          mb.NextFolder,
		Name:        name,
		SpecialUse:  special,
		UIDValidity: validity,
		UIDNext:     1,
		RecentUID:   1,
	}
}

// putNewFolder adds to b a new, empty folder of user named name (already
// normalized and known to be free), taking its id and UIDVALIDITY from mb,
// which the caller writes back. It leaves the subscriptions alone: the name
// is subscribed if it was already. The user's lock must be held (or the
// user be new).
func putNewFolder(b *pebble.Batch, user UserID, mb *mailboxRecord, name, special string) Folder {
	f := newFolderRecord(mb, name, special)
	b.Set(keyFolder(user, f.ID), encodeFolder(&f), nil)
	b.Set(keyFolderName(user, name), binary.BigEndian.AppendUint32(nil, uint32(f.ID)), nil)
	b.Set(keyKeywords(user, f.ID), encodeKeywords(nil), nil)
	return f
}
