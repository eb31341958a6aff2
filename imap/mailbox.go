package imap

import (
	"context"
	"slices"
	"sync"

	goimap "github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"github.com/mailsys/mailsys/userdata"
)

// A folder selected by one or more sessions is open once per server: a
// mailbox holds its UIDs in order (the sequence numbers every session's
// view derives from) and go-imap's tracker, which queues each change for
// every session to report when IMAP allows. Changes come from the
// UserDB's watcher, in commit order, whoever made them: this server's
// sessions, SMTP deliveries, or anything else writing to the database.

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
	// call the database while holding it.
	mu      sync.Mutex
	uids    []userdata.UID // ascending: uids[i] has sequence number i+1
	tracker *imapserver.MailboxTracker
	loading bool
	backlog []userdata.FolderEvent // events that came while loading
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
			ms.release(mb)
			return nil, mb.err
		}
		return mb, nil
	}
	mb = &mailbox{key: k, refs: 1, ready: make(chan struct{}), loading: true}
	ms.open[k] = mb
	ms.mu.Unlock()

	// Watch first, then read: an event committed in between is in both,
	// and apply takes each change once.
	mb.stop = ms.users.Watch(user, folder, mb.event)
	uids, err := ms.users.UIDs(ctx, user, folder)
	mb.mu.Lock()
	if err == nil {
		mb.uids = uids
		for _, ev := range mb.backlog {
			mb.apply(ev)
		}
		mb.tracker = imapserver.NewMailboxTracker(uint32(len(mb.uids)))
	}
	mb.backlog, mb.loading = nil, false
	mb.mu.Unlock()
	mb.err = err
	close(mb.ready)
	if err != nil {
		ms.release(mb)
		return nil, err
	}
	return mb, nil
}

// release undoes an acquire; the last one closes the folder.
func (ms *mailboxes) release(mb *mailbox) {
	ms.mu.Lock()
	mb.refs--
	last := mb.refs == 0
	if last && ms.open[mb.key] == mb {
		delete(ms.open, mb.key)
	}
	ms.mu.Unlock()
	if last {
		mb.stop()
	}
}

// event is the watcher's callback.
func (mb *mailbox) event(ev userdata.FolderEvent) {
	mb.mu.Lock()
	defer mb.mu.Unlock()
	if mb.loading {
		mb.backlog = append(mb.backlog, ev)
		return
	}
	mb.apply(ev)
}

// apply brings the UIDs and the tracker up to date with one change. While
// loading (no tracker yet) it is also given changes the loaded UIDs may
// already hold: UIDs are never reused, so it adds only what is missing and
// removes only what is there. mb.mu is held.
func (mb *mailbox) apply(ev userdata.FolderEvent) {
	for _, uid := range ev.Removed {
		i, ok := slices.BinarySearch(mb.uids, uid)
		if !ok {
			continue
		}
		mb.uids = slices.Delete(mb.uids, i, i+1)
		if mb.tracker != nil {
			mb.tracker.QueueExpunge(uint32(i) + 1)
		}
	}
	for _, uid := range ev.Added {
		i, ok := slices.BinarySearch(mb.uids, uid)
		if ok {
			continue
		}
		if mb.tracker != nil && i != len(mb.uids) {
			// A live UID below the highest would renumber messages under
			// the sessions; UIDs only grow, so this does not happen.
			continue
		}
		mb.uids = slices.Insert(mb.uids, i, uid)
		if mb.tracker != nil {
			// One EXISTS per message: go-imap's sequence mapping expects
			// the count to grow by one at a time.
			mb.tracker.QueueNumMessages(uint32(len(mb.uids)))
		}
	}
	if mb.tracker == nil {
		return
	}
	source, _ := ev.Origin.(*imapserver.SessionTracker)
	for i := range ev.Changed {
		m := &ev.Changed[i]
		if j, ok := slices.BinarySearch(mb.uids, m.UID); ok {
			mb.tracker.QueueMessageFlags(uint32(j)+1, goimap.UID(m.UID), imapFlags(m.Flags, m.Keywords), source)
		}
	}
}
