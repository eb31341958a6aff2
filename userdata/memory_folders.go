package userdata

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/mailsys/mailsys/msstore"
)

// The Folders of a Memory, and its RecentClaimer and KeywordLister. Each
// follows the DB method of the same name.

// memFolder is a folder and its messages.
type memFolder struct {
	rec      Folder
	keywords []string // in order of first use; see KeywordLister
	// msgs are the messages in UID order. A stored *Message never
	// changes: a change stores a new one in its place, so a reader may
	// use the pointers it copied under the lock after releasing it.
	msgs []*Message
	// gone are the tombstones of the messages expunged or moved out, in
	// ModSeq order (UID order within one ModSeq).
	gone []Change
}

// newFolder adds an empty folder (name normalized and free) to u.
func (u *memUser) newFolder(name, special string) *memFolder {
	f := &memFolder{rec: newFolderRecord(&u.mb, name, special)}
	u.folders[f.rec.ID] = f
	u.names[name] = f.rec.ID
	return f
}

// createParents adds every missing superior level of name as a plain
// folder.
func (u *memUser) createParents(name string) {
	for _, p := range parentNames(name) {
		if _, ok := u.names[p]; !ok {
			u.newFolder(p, "")
		}
	}
}

// folderNamed returns u's folder of a normalized name.
func (u *memUser) folderNamed(name string) (*memFolder, error) {
	id, ok := u.names[name]
	if !ok {
		return nil, fmt.Errorf("%w: folder %q", ErrNotFound, name)
	}
	return u.folders[id], nil
}

// namesBelow returns the names of u's folders below name, in order.
func (u *memUser) namesBelow(name string) []string {
	prefix := name + string(Delimiter)
	var below []string
	for n := range u.names {
		if strings.HasPrefix(n, prefix) {
			below = append(below, n)
		}
	}
	slices.Sort(below)
	return below
}

// ListFolders implements Folders. fn is called after the Memory's lock is
// released, with the folders as they were when the call began.
func (m *Memory) ListFolders(ctx context.Context, user UserID, fn func(Folder) error) error {
	done, err := m.enter(ctx)
	if err != nil {
		return err
	}
	defer done()
	m.mu.RLock()
	u, err := m.st.user(user)
	var fs []Folder
	if err == nil {
		for _, name := range slices.Sorted(maps.Keys(u.names)) {
			fs = append(fs, u.folders[u.names[name]].rec)
		}
	}
	m.mu.RUnlock()
	if err != nil {
		return err
	}
	return each(fs, fn)
}

// Folder implements Folders.
func (m *Memory) Folder(ctx context.Context, user UserID, name string) (Folder, error) {
	done, err := m.enter(ctx)
	if err != nil {
		return Folder{}, err
	}
	defer done()
	if name, err = normalizeFolder(name); err != nil {
		return Folder{}, err
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	u, err := m.st.user(user)
	if err != nil {
		return Folder{}, err
	}
	f, err := u.folderNamed(name)
	if err != nil {
		return Folder{}, err
	}
	return f.rec, nil
}

// FolderByID implements Folders.
func (m *Memory) FolderByID(ctx context.Context, user UserID, id FolderID) (Folder, error) {
	done, err := m.enter(ctx)
	if err != nil {
		return Folder{}, err
	}
	defer done()
	m.mu.RLock()
	defer m.mu.RUnlock()
	_, f, err := m.st.folder(user, id)
	if err != nil {
		return Folder{}, err
	}
	return f.rec, nil
}

// CreateFolder implements Folders.
func (m *Memory) CreateFolder(ctx context.Context, user UserID, name, specialUse string) (Folder, error) {
	done, err := m.enter(ctx)
	if err != nil {
		return Folder{}, err
	}
	defer done()
	if name, err = normalizeFolder(name); err != nil {
		return Folder{}, err
	}
	if err := checkSpecialUse(specialUse); err != nil {
		return Folder{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	u, err := m.st.user(user)
	if err != nil {
		return Folder{}, err
	}
	if _, ok := u.names[name]; ok {
		return Folder{}, fmt.Errorf("%w: folder %q", ErrExists, name)
	}
	u.createParents(name)
	return u.newFolder(name, specialUse).rec, nil
}

// RenameFolder implements Folders.
func (m *Memory) RenameFolder(ctx context.Context, user UserID, from, to string) error {
	done, err := m.enter(ctx)
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
	m.mu.Lock()
	defer m.mu.Unlock()
	u, err := m.st.user(user)
	if err != nil {
		return err
	}
	src, err := u.folderNamed(from)
	if err != nil {
		return err
	}
	if _, ok := u.names[to]; ok {
		return fmt.Errorf("%w: folder %q", ErrExists, to)
	}
	if err := checkRename(from, to); err != nil {
		return err
	}
	if from == Inbox {
		return m.renameInbox(u, src, to)
	}
	all := append([]string{from}, u.namesBelow(from)...)
	for _, name := range all[1:] {
		if _, ok := u.names[to+name[len(from):]]; ok {
			return fmt.Errorf("%w: folder %q", ErrExists, to+name[len(from):])
		}
	}
	u.createParents(to)
	for _, name := range all {
		id := u.names[name]
		delete(u.names, name)
		newName := to + name[len(from):]
		u.names[newName] = id
		u.folders[id].rec.Name = newName
	}
	for name := range u.subs {
		if name == from || strings.HasPrefix(name, from+string(Delimiter)) {
			delete(u.subs, name)
			u.subs[to+name[len(from):]] = true
		}
	}
	return nil
}

// renameInbox moves every message of INBOX into a new folder to; m.mu is
// held and to is free.
func (m *Memory) renameInbox(u *memUser, inbox *memFolder, to string) error {
	u.createParents(to)
	dst := u.newFolder(to, "")
	t, err := planTransfer(inbox, dst, nil)
	if err != nil {
		return err
	}
	t.apply(true)
	if len(t.src) > 0 {
		m.notify(FolderEvent{User: u.rec.ID, Folder: inbox.rec.ID, Removed: t.src, ModSeq: inbox.rec.HighestModSeq})
	}
	return nil
}

// DeleteFolder implements Folders. The bodies are released after the
// Memory's lock.
func (m *Memory) DeleteFolder(ctx context.Context, user UserID, name string) error {
	done, err := m.enter(ctx)
	if err != nil {
		return err
	}
	defer done()
	if name, err = checkDeleteFolder(name); err != nil {
		return err
	}
	refs, err := func() ([]msstore.Ref, error) {
		m.mu.Lock()
		defer m.mu.Unlock()
		u, err := m.st.user(user)
		if err != nil {
			return nil, err
		}
		f, err := u.folderNamed(name)
		if err != nil {
			return nil, err
		}
		if len(u.namesBelow(name)) > 0 {
			return nil, fmt.Errorf("%w: folder %q has subfolders", ErrNotEmpty, name)
		}
		uids := make([]UID, 0, len(f.msgs))
		var refs []msstore.Ref
		for _, msg := range f.msgs {
			uids = append(uids, msg.UID)
			if m.cfg.Bodies != nil && !msg.Ref.IsZero() {
				refs = append(refs, msg.Ref)
			}
		}
		m.st.charge(u, -int64(f.rec.Messages), -f.rec.Size)
		delete(u.folders, f.rec.ID)
		delete(u.names, name)
		if len(uids) > 0 {
			m.notify(FolderEvent{User: user, Folder: f.rec.ID, Removed: uids})
		}
		return refs, nil
	}()
	if err != nil {
		return err
	}
	releaseBodies(ctx, m.cfg.Bodies, m.log, refs)
	return nil
}

// Subscribe implements Folders.
func (m *Memory) Subscribe(ctx context.Context, user UserID, name string, subscribed bool) error {
	done, err := m.enter(ctx)
	if err != nil {
		return err
	}
	defer done()
	if name, err = normalizeFolder(name); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	u, err := m.st.user(user)
	if err != nil {
		return err
	}
	if !subscribed {
		delete(u.subs, name)
		return nil
	}
	if _, err := u.folderNamed(name); err != nil {
		return err
	}
	u.subs[name] = true
	return nil
}

// Subscriptions implements Folders. fn is called after the Memory's lock
// is released, with the names subscribed when the call began.
func (m *Memory) Subscriptions(ctx context.Context, user UserID, fn func(name string) error) error {
	done, err := m.enter(ctx)
	if err != nil {
		return err
	}
	defer done()
	m.mu.RLock()
	u, err := m.st.user(user)
	var names []string
	if err == nil {
		names = slices.Sorted(maps.Keys(u.subs))
	}
	m.mu.RUnlock()
	if err != nil {
		return err
	}
	return each(names, fn)
}

// ClaimRecent implements RecentClaimer.
func (m *Memory) ClaimRecent(ctx context.Context, user UserID, folder FolderID, upto UID) (from, to UID, err error) {
	done, err := m.enter(ctx)
	if err != nil {
		return 0, 0, err
	}
	defer done()
	m.mu.Lock()
	defer m.mu.Unlock()
	_, f, err := m.st.folder(user, folder)
	if err != nil {
		return 0, 0, err
	}
	from, to = claimRecent(&f.rec, upto)
	return from, to, nil
}

// Keywords implements KeywordLister.
func (m *Memory) Keywords(ctx context.Context, user UserID, folder FolderID) ([]string, error) {
	done, err := m.enter(ctx)
	if err != nil {
		return nil, err
	}
	defer done()
	m.mu.RLock()
	defer m.mu.RUnlock()
	_, f, err := m.st.folder(user, folder)
	if err != nil {
		return nil, err
	}
	return slices.Clone(f.keywords), nil
}
