package imap

import (
	"context"
	"slices"
	"sync"

	"github.com/mailsys/mailsys/userdata"
)

// A folder selected by one or more sessions is open once per server: a
// mailbox holds its UIDs in order, the server's view, and one view per
// session, the client's, which lags the server's by the changes the
// session has not reported yet. Changes come from the UserDB's watcher,
// in commit order, whoever made them: this server's sessions, SMTP
// deliveries, or anything else writing to the database. Each is queued on
// every view and written by the session when IMAP allows (view.poll).

type mailboxKey struct {
	user   userdata.UserID
	folder userdata.FolderID
}

// mailboxes are the open folders of a server.
type mailboxes struct {
	users UserDB

	mu   sync.Mutex
	open map[mailboxKey]*mailbox
}

func newMailboxes(users UserDB) *mailboxes {
	return &mailboxes{users: users, open: map[mailboxKey]*mailbox{}}
}

// mailbox is one open folder.
type mailbox struct {
	key   mailboxKey
	refs  int           // sessions holding it; under mailboxes.mu
	ready chan struct{} // closed once loaded (or failed: err)
	err   error
	stop  func() // ends the watch

	// mu guards what follows. It is taken by the watcher's callback, on
	// the committing goroutine with the user's lock held, so nobody may
	// call the database, or write to a client, while holding it.
	mu   sync.Mutex
	uids []userdata.UID // ascending: the server's view
	// uidNext is a UIDNEXT consistent with uids: every UID below it the
	// mailbox has had, or was gone before it was opened.
	uidNext  userdata.UID
	keywords []string // the folder's keywords, as the UserDB lists them
	views    map[*view]struct{}
	loading  bool
	backlog  []userdata.FolderEvent // events that came while loading

	// \Recent (RFC 3501 2.3.2): new messages are recent in one session,
	// the claimer, the first read-write session still there; recentTo is
	// the UID below which this server's sessions claimed the messages,
	// saved says whether the UserDB's watermark has reached it.
	claimer  *view
	recentTo userdata.UID
	saved    bool
}

// acquire opens the folder for a session, loading it the first time.
// Every acquire is matched by a release.
func (ms *mailboxes) acquire(ctx context.Context, user userdata.UserID, folder userdata.FolderID) (*mailbox, error) {
	k := mailboxKey{user, folder}
	ms.mu.Lock()
	mb := ms.open[k]
	if mb != nil {
		mb.refs++
		ms.mu.Unlock()
		<-mb.ready
		if mb.err != nil {
			ms.release(ctx, mb)
			return nil, mb.err
		}
		return mb, nil
	}
	mb = &mailbox{key: k, refs: 1, ready: make(chan struct{}), loading: true, views: map[*view]struct{}{}, saved: true}
	ms.open[k] = mb
	ms.mu.Unlock()

	// UIDNEXT first, then watch, then read: an event committed in between
	// is in both, and apply takes each change once; a UID at or above the
	// UIDNEXT read is in the UIDs or comes as an event.
	f, err := ms.users.FolderByID(ctx, user, folder)
	mb.stop = ms.users.Watch(user, folder, mb.event)
	var uids []userdata.UID
	if err == nil {
		uids, err = ms.users.UIDs(ctx, user, folder)
	}
	var kws []string
	if kl, ok := ms.users.(userdata.KeywordLister); ok && err == nil {
		kws, err = kl.Keywords(ctx, user, folder)
	}
	mb.mu.Lock()
	if err == nil {
		mb.uids, mb.keywords, mb.uidNext = uids, kws, f.UIDNext
		if n := len(uids); n > 0 {
			mb.uidNext = max(mb.uidNext, uids[n-1]+1)
		}
		for _, ev := range mb.backlog {
			mb.apply(ev)
		}
	}
	mb.backlog, mb.loading = nil, false
	mb.mu.Unlock()
	mb.err = err
	close(mb.ready)
	if err != nil {
		ms.release(ctx, mb)
		return nil, err
	}
	return mb, nil
}

// recentTo is the UID below which this server's sessions claimed the
// messages of a folder as \Recent, 0 if it is not open here.
func (ms *mailboxes) recentTo(k mailboxKey) userdata.UID {
	ms.mu.Lock()
	mb := ms.open[k]
	ms.mu.Unlock()
	if mb == nil {
		return 0
	}
	mb.mu.Lock()
	defer mb.mu.Unlock()
	return mb.recentTo
}

// release undoes an acquire; the last one closes the folder, saving the
// \Recent claims of its sessions.
func (ms *mailboxes) release(ctx context.Context, mb *mailbox) {
	ms.mu.Lock()
	mb.refs--
	last := mb.refs == 0
	if last && ms.open[mb.key] == mb {
		delete(ms.open, mb.key)
	}
	ms.mu.Unlock()
	if last {
		mb.stop()
		mb.saveRecent(ctx, ms.users)
	}
}

// event is the watcher's callback.
func (mb *mailbox) event(ev userdata.FolderEvent) {
	mb.mu.Lock()
	defer mb.mu.Unlock()
	if mb.loading {
		ev.Hold = nil // no session reads the folder yet; and a hold must be taken now
		mb.backlog = append(mb.backlog, ev)
		return
	}
	mb.apply(ev)
}

// apply brings the server's view up to date with one change and queues it
// on every session's. While loading it is also given changes the loaded
// UIDs may already hold: UIDs are never reused, so it adds only what is
// missing and removes only what is there. mb.mu is held.
func (mb *mailbox) apply(ev userdata.FolderEvent) {
	if len(ev.Keywords) > len(mb.keywords) {
		mb.keywords = ev.Keywords
		for v := range mb.views {
			v.queue = append(v.queue, update{kind: updateKeywords, keywords: ev.Keywords})
		}
	}
	var removed []userdata.UID
	for _, uid := range ev.Removed {
		i, ok := slices.BinarySearch(mb.uids, uid)
		if !ok {
			continue
		}
		mb.uids = slices.Delete(mb.uids, i, i+1)
		removed = append(removed, uid)
	}
	if len(removed) > 0 {
		for v := range mb.views {
			v.removed(removed, ev.Hold)
		}
	}
	for _, uid := range ev.Added {
		if n := len(mb.uids); n > 0 && uid <= mb.uids[n-1] {
			// Present already, or a UID below the highest, which would
			// renumber messages under the sessions; UIDs only grow, so
			// this does not happen.
			continue
		}
		mb.uids = append(mb.uids, uid)
		mb.uidNext = max(mb.uidNext, uid+1)
		for v := range mb.views {
			v.added = append(v.added, uid)
			v.queue = append(v.queue, update{kind: updateExists, uid: uid})
		}
		switch {
		case mb.claimer != nil:
			mb.claimer.recent = append(mb.claimer.recent, uid)
			mb.recentTo, mb.saved = uid+1, false
		default:
			// No read-write session: recent for those examining the
			// folder, and still unclaimed.
			for v := range mb.views {
				v.recent = append(v.recent, uid)
			}
		}
	}
	origin, _ := ev.Origin.(*view)
	for i := range ev.Changed {
		m := &ev.Changed[i]
		if _, ok := slices.BinarySearch(mb.uids, m.UID); !ok {
			continue
		}
		for v := range mb.views {
			if v != origin {
				v.queue = append(v.queue, update{kind: updateFlags, uid: m.UID, flags: m.Flags, keywords: m.Keywords})
			}
		}
	}
	for v := range mb.views {
		if len(v.queue) > maxQueue {
			mb.overflowed(v)
			continue
		}
		if len(v.queue) > 0 {
			select {
			case v.notify <- struct{}{}:
			default:
			}
		}
	}
}

// overflowed drops a view whose client reads no updates: it leaves the
// mailbox, its holds end, and its connection is closed. mb.mu is held.
func (mb *mailbox) overflowed(v *view) {
	delete(mb.views, v)
	mb.passClaim(v)
	done := v.drop()
	go func() {
		for _, d := range done {
			d()
		}
		if v.overflow != nil {
			v.overflow()
		}
	}()
}

// passClaim hands the claim on new messages from v, leaving, to another
// read-write session. mb.mu is held.
func (mb *mailbox) passClaim(v *view) {
	if mb.claimer != v {
		return
	}
	mb.claimer = nil
	for o := range mb.views {
		if !o.readOnly {
			mb.claimer = o
			return
		}
	}
}

// saveRecent moves the UserDB's \Recent watermark up to what this
// server's sessions claimed, if it is behind.
func (mb *mailbox) saveRecent(ctx context.Context, users UserDB) {
	rc, ok := users.(userdata.RecentClaimer)
	if !ok {
		return
	}
	mb.mu.Lock()
	upto, saved := mb.recentTo, mb.saved
	mb.saved = true
	mb.mu.Unlock()
	if saved || upto == 0 {
		return
	}
	if _, _, err := rc.ClaimRecent(context.WithoutCancel(ctx), mb.key.user, mb.key.folder, upto); err != nil {
		mb.mu.Lock()
		mb.saved = false // the next poll or release tries again
		mb.mu.Unlock()
	}
}
