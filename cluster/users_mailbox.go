package cluster

import (
	"context"

	"github.com/mailsys/mailsys/userdata"
)

// The folder and index calls go to the node that holds the user.

// ListFolders lists the user's folders on its node.
func (u *Users) ListFolders(ctx context.Context, user userdata.UserID, fn func(userdata.Folder) error) error {
	db, err := u.user(ctx, user)
	if err != nil {
		return err
	}
	return db.ListFolders(ctx, user, fn)
}

// Folder returns a folder from the user's node.
func (u *Users) Folder(ctx context.Context, user userdata.UserID, name string) (userdata.Folder, error) {
	db, err := u.user(ctx, user)
	if err != nil {
		return userdata.Folder{}, err
	}
	return db.Folder(ctx, user, name)
}

// FolderByID returns a folder from the user's node.
func (u *Users) FolderByID(ctx context.Context, user userdata.UserID, id userdata.FolderID) (userdata.Folder, error) {
	db, err := u.user(ctx, user)
	if err != nil {
		return userdata.Folder{}, err
	}
	return db.FolderByID(ctx, user, id)
}

// CreateFolder creates a folder on the user's node.
func (u *Users) CreateFolder(ctx context.Context, user userdata.UserID, name, specialUse string) (userdata.Folder, error) {
	db, err := u.user(ctx, user)
	if err != nil {
		return userdata.Folder{}, err
	}
	return db.CreateFolder(ctx, user, name, specialUse)
}

// RenameFolder renames a folder on the user's node.
func (u *Users) RenameFolder(ctx context.Context, user userdata.UserID, from, to string) error {
	db, err := u.user(ctx, user)
	if err != nil {
		return err
	}
	return db.RenameFolder(ctx, user, from, to)
}

// DeleteFolder deletes a folder on the user's node.
func (u *Users) DeleteFolder(ctx context.Context, user userdata.UserID, name string) error {
	db, err := u.user(ctx, user)
	if err != nil {
		return err
	}
	return db.DeleteFolder(ctx, user, name)
}

// Subscribe changes a subscription on the user's node.
func (u *Users) Subscribe(ctx context.Context, user userdata.UserID, name string, subscribed bool) error {
	db, err := u.user(ctx, user)
	if err != nil {
		return err
	}
	return db.Subscribe(ctx, user, name, subscribed)
}

// Subscriptions lists the subscriptions on the user's node.
func (u *Users) Subscriptions(ctx context.Context, user userdata.UserID, fn func(name string) error) error {
	db, err := u.user(ctx, user)
	if err != nil {
		return err
	}
	return db.Subscriptions(ctx, user, fn)
}

// Append adds a message on the user's node.
func (u *Users) Append(ctx context.Context, user userdata.UserID, folder userdata.FolderID, m userdata.NewMessage) (userdata.Message, error) {
	db, err := u.user(ctx, user)
	if err != nil {
		return userdata.Message{}, err
	}
	return db.Append(ctx, user, folder, m)
}

// Messages streams messages from the user's node.
func (u *Users) Messages(ctx context.Context, user userdata.UserID, folder userdata.FolderID, set userdata.UIDSet, fn func(*userdata.Message) error) error {
	db, err := u.user(ctx, user)
	if err != nil {
		return err
	}
	return db.Messages(ctx, user, folder, set, fn)
}

// UIDs returns a folder's UIDs from the user's node.
func (u *Users) UIDs(ctx context.Context, user userdata.UserID, folder userdata.FolderID) ([]userdata.UID, error) {
	db, err := u.user(ctx, user)
	if err != nil {
		return nil, err
	}
	return db.UIDs(ctx, user, folder)
}

// StoreFlags changes flags on the user's node.
func (u *Users) StoreFlags(ctx context.Context, user userdata.UserID, folder userdata.FolderID, set userdata.UIDSet, fu userdata.FlagUpdate) (userdata.StoreResult, error) {
	db, err := u.user(ctx, user)
	if err != nil {
		return userdata.StoreResult{}, err
	}
	return db.StoreFlags(ctx, user, folder, set, fu)
}

// Copy copies messages on the user's node.
func (u *Users) Copy(ctx context.Context, user userdata.UserID, from userdata.FolderID, set userdata.UIDSet, to userdata.FolderID) (userdata.CopyResult, error) {
	db, err := u.user(ctx, user)
	if err != nil {
		return userdata.CopyResult{}, err
	}
	return db.Copy(ctx, user, from, set, to)
}

// Move moves messages on the user's node.
func (u *Users) Move(ctx context.Context, user userdata.UserID, from userdata.FolderID, set userdata.UIDSet, to userdata.FolderID) (userdata.CopyResult, error) {
	db, err := u.user(ctx, user)
	if err != nil {
		return userdata.CopyResult{}, err
	}
	return db.Move(ctx, user, from, set, to)
}

// Expunge expunges messages on the user's node.
func (u *Users) Expunge(ctx context.Context, user userdata.UserID, folder userdata.FolderID, set userdata.UIDSet) ([]userdata.UID, error) {
	db, err := u.user(ctx, user)
	if err != nil {
		return nil, err
	}
	return db.Expunge(ctx, user, folder, set)
}

// Changes streams a folder's changes from the user's node.
func (u *Users) Changes(ctx context.Context, user userdata.UserID, folder userdata.FolderID, since uint64, fn func(userdata.Change) error) error {
	db, err := u.user(ctx, user)
	if err != nil {
		return err
	}
	return db.Changes(ctx, user, folder, since, fn)
}

// Remove removes messages on the user's node (userdata.Remover).
func (u *Users) Remove(ctx context.Context, user userdata.UserID, folder userdata.FolderID, set userdata.UIDSet) ([]userdata.UID, error) {
	db, err := u.user(ctx, user)
	if err != nil {
		return nil, err
	}
	return db.Remove(ctx, user, folder, set)
}

// Keywords returns a folder's keywords from the user's node (userdata.KeywordLister).
func (u *Users) Keywords(ctx context.Context, user userdata.UserID, folder userdata.FolderID) ([]string, error) {
	db, err := u.user(ctx, user)
	if err != nil {
		return nil, err
	}
	return db.Keywords(ctx, user, folder)
}

// ClaimRecent claims \Recent on the user's node (userdata.RecentClaimer).
func (u *Users) ClaimRecent(ctx context.Context, user userdata.UserID, folder userdata.FolderID, upto userdata.UID) (from, to userdata.UID, err error) {
	db, err := u.user(ctx, user)
	if err != nil {
		return 0, 0, err
	}
	return db.ClaimRecent(ctx, user, folder, upto)
}
