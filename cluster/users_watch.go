package cluster

import (
	"context"
	"sync"
	"time"

	"github.com/mailsys/mailsys/userdata"
)

// watchLookup bounds the Directory lookup of a user Watch has not seen
// yet (a session watches users that logged in, which are known).
const watchLookup = 5 * time.Second

// watchFollow is how often the watches are checked against the registry:
// a watch on a UD group moves to the group's new primary within it.
const watchFollow = 250 * time.Millisecond

// folderWatch is one Watch: on the node serving its user's UD node or
// group now.
type folderWatch struct {
	user   userdata.UserID
	folder userdata.FolderID
	fn     func(userdata.FolderEvent)
	place  string // the user's UD node or group, as the Directory says
	node   string // the node watched now ("" for none)
	stop   func()
}

// watches are the Watch calls in progress, moved to a group's new primary
// after a failover.
type watches struct {
	mu      sync.Mutex
	set     map[*folderWatch]struct{}
	version uint64 // the registry version last checked
	running bool   // the follow loop runs
	done    chan struct{}
}

// Watch watches the folder on the node that serves the user's UD node or
// group, even while the node is unhealthy (the node's client keeps its
// stream going across outages), and moves the watch to a group's new
// primary when the registry names one (a failover): changes committed
// during the move are not reported, as across any broken stream. A user
// whose node the Directory cannot tell now is not watched (logged): a
// session watches users that logged in, whose nodes are known.
func (u *Users) Watch(user userdata.UserID, folder userdata.FolderID, fn func(userdata.FolderEvent)) (stop func()) {
	ctx, cancel := context.WithTimeout(context.Background(), watchLookup)
	defer cancel()
	place, err := u.userNode(ctx, user)
	if err != nil {
		u.log.Warn("folder not watched: its UD node is unknown", "user", user, "folder", folder, "err", err)
		return func() {}
	}
	w := &folderWatch{user: user, folder: folder, fn: fn, place: place, stop: func() {}}
	u.watches.mu.Lock()
	u.home(w, u.peers.Registry())
	if u.watches.set == nil {
		u.watches.set = map[*folderWatch]struct{}{}
		u.watches.done = make(chan struct{})
	}
	u.watches.set[w] = struct{}{}
	if !u.watches.running {
		u.watches.running = true
		go u.followWatches(u.watches.done)
	}
	u.watches.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			u.watches.mu.Lock()
			delete(u.watches.set, w)
			stop := w.stop
			u.watches.mu.Unlock()
			stop()
		})
	}
}

// home watches w on the node serving its place in reg, if that is not the
// node it watches already. u.watches.mu is held.
func (u *Users) home(w *folderWatch, reg Registry) {
	n, ok := reg.Serving(w.place)
	if !ok {
		if w.node == "" {
			u.log.Warn("folder not watched: no UD node serves its user now", "user", w.user, "folder", w.folder, "place", w.place)
		}
		return
	}
	if n.ID == w.node {
		return
	}
	db, err := u.peers.UserDB(n)
	if err != nil {
		u.log.Warn("folder not watched: no client of its UD node", "user", w.user, "node", n.ID, "err", err)
		return
	}
	old := w.node
	w.stop()
	w.stop, w.node = db.Watch(w.user, w.folder, w.fn), n.ID
	if old != "" {
		u.log.Info("folder watch moved to the node serving its user now", "user", w.user, "folder", w.folder, "from", old, "to", n.ID)
	}
}

// followWatches moves the watches after each registry change until Close.
func (u *Users) followWatches(done <-chan struct{}) {
	t := time.NewTicker(watchFollow)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.C:
		}
		reg := u.peers.Registry()
		u.watches.mu.Lock()
		if reg.Version != u.watches.version {
			u.watches.version = reg.Version
			for w := range u.watches.set {
				u.home(w, reg)
			}
		}
		u.watches.mu.Unlock()
	}
}

// stopWatches ends the follow loop (Close); the watches themselves end
// with their callers' stop.
func (u *Users) stopWatches() {
	u.watches.mu.Lock()
	defer u.watches.mu.Unlock()
	if u.watches.running {
		close(u.watches.done)
		u.watches.running = false
	}
}
