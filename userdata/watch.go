package userdata

import (
	"slices"
	"sync"
)

// watch is one registration of Watch. Its address identifies it, so the
// same fn may be registered twice and stopped separately.
type watch struct{ fn func(FolderEvent) }

// Watch calls fn after every committed change to the user's folder, in
// commit order, until the returned stop function is called. stop is
// idempotent and may be called from any goroutine, fn included.
//
// fn runs synchronously on the committing goroutine while that user's lock
// is held, so it must not block and must not call back into the database
// (other than stop): hand the event to a buffered channel or a queue and
// return. The event's slices belong to fn and are not used again by the
// database. An event already being delivered when stop is called may still
// reach fn.
func (d *DB) Watch(user UserID, folder FolderID, fn func(FolderEvent)) (stop func()) {
	return d.watchSet.watch(user, folder, fn)
}

// watchSet is the registry of watchers DB and Memory share. Its zero value
// is empty and ready.
type watchSet struct {
	watchMu  sync.RWMutex
	watchers map[folderKey]map[*watch]struct{}
}

// watch registers fn for the folder; see Watcher.Watch.
func (s *watchSet) watch(user UserID, folder FolderID, fn func(FolderEvent)) (stop func()) {
	w := &watch{fn: fn}
	k := folderKey{user, folder}
	s.watchMu.Lock()
	if s.watchers == nil {
		s.watchers = map[folderKey]map[*watch]struct{}{}
	}
	set := s.watchers[k]
	if set == nil {
		set = map[*watch]struct{}{}
		s.watchers[k] = set
	}
	set[w] = struct{}{}
	s.watchMu.Unlock()
	return func() {
		s.watchMu.Lock()
		defer s.watchMu.Unlock()
		set := s.watchers[k]
		if _, ok := set[w]; !ok {
			return
		}
		delete(set, w)
		if len(set) == 0 {
			delete(s.watchers, k)
		}
	}
}

// notify delivers ev to the watchers of its folder. Callers hold the lock
// that orders the folder's changes and call it right after the commit, so
// events reach watchers in commit order. The watchers are called outside
// watchMu, so one may stop itself (or another) from fn without deadlock;
// each fn must not block.
func (s *watchSet) notify(ev FolderEvent) {
	s.watchMu.RLock()
	set := s.watchers[folderKey{ev.User, ev.Folder}]
	if len(set) == 0 {
		s.watchMu.RUnlock()
		return
	}
	var stack [4]func(FolderEvent)
	fns := stack[:0]
	for w := range set {
		fns = append(fns, w.fn)
	}
	s.watchMu.RUnlock()
	for i, fn := range fns {
		if i == len(fns)-1 {
			fn(ev)
			break
		}
		// Every watcher gets its own slices, the event is theirs to keep,
		// but for Changed, which is read-only.
		fn(FolderEvent{User: ev.User, Folder: ev.Folder, ModSeq: ev.ModSeq, Origin: ev.Origin, Hold: ev.Hold,
			Added: slices.Clone(ev.Added), Removed: slices.Clone(ev.Removed), Flags: slices.Clone(ev.Flags),
			Changed: ev.Changed, Keywords: slices.Clone(ev.Keywords)})
	}
}
