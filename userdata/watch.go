package userdata

import "slices"

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
	w := &watch{fn: fn}
	k := folderKey{user, folder}
	d.watchMu.Lock()
	set := d.watchers[k]
	if set == nil {
		set = map[*watch]struct{}{}
		d.watchers[k] = set
	}
	set[w] = struct{}{}
	d.watchMu.Unlock()
	return func() {
		d.watchMu.Lock()
		defer d.watchMu.Unlock()
		set := d.watchers[k]
		if _, ok := set[w]; !ok {
			return
		}
		delete(set, w)
		if len(set) == 0 {
			delete(d.watchers, k)
		}
	}
}

// notify delivers ev to the watchers of its folder. Callers hold the
// user's lock and call it right after the commit, so events reach watchers
// in commit order. The watchers are called outside watchMu, so one may stop
// itself (or another) from fn without deadlock; each fn must not block.
func (d *DB) notify(ev FolderEvent) {
	d.watchMu.RLock()
	set := d.watchers[folderKey{ev.User, ev.Folder}]
	if len(set) == 0 {
		d.watchMu.RUnlock()
		return
	}
	var stack [4]func(FolderEvent)
	fns := stack[:0]
	for w := range set {
		fns = append(fns, w.fn)
	}
	d.watchMu.RUnlock()
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
