package userdata

import (
	"encoding/binary"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// defaultFolders are made with every user.
var defaultFolders = []struct{ name, special string }{
	{Inbox, ""},
	{"Sent", SpecialSent},
	{"Drafts", SpecialDrafts},
	{"Trash", SpecialTrash},
	{"Junk", SpecialJunk},
	{"Archive", SpecialArchive},
}

// putNewFolder adds to b a new, empty, subscribed folder of user named name
// (already normalized and known to be free), taking its id and UIDVALIDITY
// from mb, which the caller writes back. The user's lock must be held (or
// the user be new).
func putNewFolder(b *pebble.Batch, user UserID, mb *mailboxRecord, name, special string) Folder {
	mb.NextFolder++
	validity := max(uint32(time.Now().Unix()), mb.LastValidity+1)
	mb.LastValidity = validity
	f := Folder{
		ID:          mb.NextFolder,
		Name:        name,
		SpecialUse:  special,
		Subscribed:  true,
		UIDValidity: validity,
		UIDNext:     1,
		RecentUID:   1,
	}
	b.Set(keyFolder(user, f.ID), encodeFolder(&f), nil)
	b.Set(keyFolderName(user, name), binary.BigEndian.AppendUint32(nil, uint32(f.ID)), nil)
	b.Set(keyKeywords(user, f.ID), encodeKeywords(nil), nil)
	return f
}
