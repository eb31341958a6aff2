package userdata

import (
	"context"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// RecentClaimer is an optional capability of a UserDB: IMAP's \Recent
// flag (RFC 3501 2.3.2), kept as a watermark per folder
// (Folder.RecentUID). A message is recent until a session claims it; the
// first session to select the folder read-write claims the messages that
// came since the last claim, so that no later session sees them as
// recent.
type RecentClaimer interface {
	// ClaimRecent moves the folder's watermark up to upto (0 meaning the
	// folder's UIDNext; an upto past UIDNext is taken as UIDNext) and
	// returns the watermark before and after: the messages with a UID in
	// [from, to) are the caller's to report as recent. A watermark never
	// moves down, so a claim below it claims nothing (from == to). It
	// returns ErrNotFound for an unknown user or folder. Concurrent claims
	// each get their own range, never the same UID twice. \Recent is
	// advisory, so a claim need not wait for stable storage: a crash may
	// forget the last claims, whose messages are then recent again.
	ClaimRecent(ctx context.Context, user UserID, folder FolderID, upto UID) (from, to UID, err error)
}

var _ RecentClaimer = (*DB)(nil)

// claimRecent moves f's watermark up to upto (see ClaimRecent) and
// returns the range claimed, empty (from == to) when the watermark stays.
func claimRecent(f *Folder, upto UID) (from, to UID) {
	from, to = f.RecentUID, f.UIDNext
	if upto != 0 && upto < to {
		to = upto
	}
	if to <= from {
		return from, from
	}
	f.RecentUID = to
	return from, to
}

// ClaimRecent implements RecentClaimer.
func (d *DB) ClaimRecent(ctx context.Context, user UserID, folder FolderID, upto UID) (from, to UID, err error) {
	done, err := d.enter(ctx)
	if err != nil {
		return 0, 0, err
	}
	defer done()
	lk := d.userLock(user)
	lk.Lock()
	defer lk.Unlock()
	f, err := readFolderFrom(d.db, user, folder)
	if err != nil {
		return 0, 0, err
	}
	if from, to = claimRecent(&f, upto); from == to {
		return from, to, nil
	}
	b := d.db.NewBatch()
	defer b.Close()
	writeFolderRec(b, user, &f)
	// Without waiting for the disk: the next synced commit makes it
	// durable too (one write-ahead log), and a SELECT costs no fsync.
	if err := d.db.commit(b, pebble.NoSync); err != nil {
		return 0, 0, fmt.Errorf("userdata: claiming recent messages: %w", err)
	}
	return from, to, nil
}
