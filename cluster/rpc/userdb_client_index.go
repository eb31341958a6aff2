package rpc

import (
	"context"

	"github.com/mailsys/mailsys/cluster/rpc/pb"
	"github.com/mailsys/mailsys/userdata"
)

// The client's Folders, Index and optional capabilities but Watch.

// ListFolders implements userdata.Folders: the folders come in batches,
// and fn runs on the calling goroutine.
func (c *UserDB) ListFolders(ctx context.Context, user userdata.UserID, fn func(userdata.Folder) error) error {
	return stream(c, ctx, c.rpc.ListFolders, &pb.UDUserRef{Id: uint64(user)}, func(b *pb.UDFolders) error {
		for _, f := range b.GetFolders() {
			if err := fn(folderFromPB(f)); err != nil {
				return err
			}
		}
		return nil
	})
}

// Folder implements userdata.Folders.
func (c *UserDB) Folder(ctx context.Context, user userdata.UserID, name string) (userdata.Folder, error) {
	f, err := call(c, ctx, c.rpc.Folder, &pb.UDFolderName{User: uint64(user), Name: []byte(name)})
	if err != nil {
		return userdata.Folder{}, err
	}
	return folderFromPB(f), nil
}

// FolderByID implements userdata.Folders.
func (c *UserDB) FolderByID(ctx context.Context, user userdata.UserID, id userdata.FolderID) (userdata.Folder, error) {
	f, err := call(c, ctx, c.rpc.FolderByID, &pb.UDFolderRef{User: uint64(user), Folder: uint32(id)})
	if err != nil {
		return userdata.Folder{}, err
	}
	return folderFromPB(f), nil
}

// CreateFolder implements userdata.Folders.
func (c *UserDB) CreateFolder(ctx context.Context, user userdata.UserID, name, specialUse string) (userdata.Folder, error) {
	f, err := call(c, ctx, c.rpc.CreateFolder, &pb.UDCreateFolder{User: uint64(user), Name: []byte(name), SpecialUse: []byte(specialUse)})
	if err != nil {
		return userdata.Folder{}, err
	}
	return folderFromPB(f), nil
}

// RenameFolder implements userdata.Folders.
func (c *UserDB) RenameFolder(ctx context.Context, user userdata.UserID, from, to string) error {
	_, err := change(c, ctx, c.rpc.RenameFolder, &pb.UDRenameFolder{User: uint64(user), From: []byte(from), To: []byte(to)})
	return err
}

// DeleteFolder implements userdata.Folders.
func (c *UserDB) DeleteFolder(ctx context.Context, user userdata.UserID, name string) error {
	_, err := change(c, ctx, c.rpc.DeleteFolder, &pb.UDFolderName{User: uint64(user), Name: []byte(name)})
	return err
}

// Subscribe implements userdata.Folders.
func (c *UserDB) Subscribe(ctx context.Context, user userdata.UserID, name string, subscribed bool) error {
	_, err := call(c, ctx, c.rpc.Subscribe, &pb.UDSubscribe{User: uint64(user), Name: []byte(name), Subscribed: subscribed})
	return err
}

// Subscriptions implements userdata.Folders: the names come in batches,
// and fn runs on the calling goroutine.
func (c *UserDB) Subscriptions(ctx context.Context, user userdata.UserID, fn func(name string) error) error {
	return stream(c, ctx, c.rpc.Subscriptions, &pb.UDUserRef{Id: uint64(user)}, func(b *pb.UDNames) error {
		for _, n := range b.GetNames() {
			if err := fn(string(n)); err != nil {
				return err
			}
		}
		return nil
	})
}

// Append implements userdata.Index.
func (c *UserDB) Append(ctx context.Context, user userdata.UserID, folder userdata.FolderID, m userdata.NewMessage) (userdata.Message, error) {
	r, err := change(c, ctx, c.rpc.Append, &pb.UDAppend{User: uint64(user), Folder: uint32(folder), Message: newMessageToPB(m)})
	if err != nil {
		return userdata.Message{}, err
	}
	var msg userdata.Message
	if err := messageFromPB(r, &msg); err != nil {
		return userdata.Message{}, err
	}
	return msg, nil
}

// Messages implements userdata.Index. The messages come in batches of at
// most a few hundred (or about a megabyte), so neither side holds a large
// folder; fn runs on the calling goroutine, and its *Message is valid only
// during the call.
func (c *UserDB) Messages(ctx context.Context, user userdata.UserID, folder userdata.FolderID, set userdata.UIDSet, fn func(*userdata.Message) error) error {
	req := &pb.UDMessagesRequest{User: uint64(user), Folder: uint32(folder), Set: setToPB(set)}
	var m userdata.Message
	return stream(c, ctx, c.rpc.Messages, req, func(b *pb.UDMessages) error {
		for _, pm := range b.GetMessages() {
			if err := messageFromPB(pm, &m); err != nil {
				return err
			}
			if err := fn(&m); err != nil {
				return err
			}
		}
		return nil
	})
}

// UIDs implements userdata.Index; they come in batches of 65,536, so a
// folder of any size fits.
func (c *UserDB) UIDs(ctx context.Context, user userdata.UserID, folder userdata.FolderID) ([]userdata.UID, error) {
	var uids []userdata.UID
	err := stream(c, ctx, c.rpc.UIDs, &pb.UDFolderRef{User: uint64(user), Folder: uint32(folder)}, func(b *pb.UDUIDList) error {
		if uids == nil {
			uids = make([]userdata.UID, 0, len(b.GetUids()))
		}
		for _, u := range b.GetUids() {
			uids = append(uids, userdata.UID(u))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return uids, nil
}

// StoreFlags implements userdata.Index. StoreResult.Changed is shared with
// this client's watchers' events only in content, not in memory: each side
// decodes its own.
func (c *UserDB) StoreFlags(ctx context.Context, user userdata.UserID, folder userdata.FolderID, set userdata.UIDSet, u userdata.FlagUpdate) (userdata.StoreResult, error) {
	r, err := change(c, ctx, c.rpc.StoreFlags, &pb.UDStoreFlags{User: uint64(user), Folder: uint32(folder), Set: setToPB(set),
		Op: uint32(u.Op), Flags: uint32(u.Flags), Keywords: textsToPB(u.Keywords), UnchangedSince: u.UnchangedSince})
	if err != nil {
		return userdata.StoreResult{}, err
	}
	changed, err := messagesFromPB(r.GetChanged())
	if err != nil {
		return userdata.StoreResult{}, err
	}
	return userdata.StoreResult{Changed: changed, Skipped: uidsFromPB(r.GetSkipped())}, nil
}

// Copy implements userdata.Index.
func (c *UserDB) Copy(ctx context.Context, user userdata.UserID, from userdata.FolderID, set userdata.UIDSet, to userdata.FolderID) (userdata.CopyResult, error) {
	r, err := change(c, ctx, c.rpc.Copy, &pb.UDCopy{User: uint64(user), From: uint32(from), Set: setToPB(set), To: uint32(to)})
	if err != nil {
		return userdata.CopyResult{}, err
	}
	return copyResultFromPB(r), nil
}

// Move implements userdata.Index.
func (c *UserDB) Move(ctx context.Context, user userdata.UserID, from userdata.FolderID, set userdata.UIDSet, to userdata.FolderID) (userdata.CopyResult, error) {
	r, err := change(c, ctx, c.rpc.Move, &pb.UDCopy{User: uint64(user), From: uint32(from), Set: setToPB(set), To: uint32(to)})
	if err != nil {
		return userdata.CopyResult{}, err
	}
	return copyResultFromPB(r), nil
}

func copyResultFromPB(r *pb.UDCopyResult) userdata.CopyResult {
	return userdata.CopyResult{UIDValidity: r.GetUidValidity(), Source: uidsFromPB(r.GetSource()), Dest: uidsFromPB(r.GetDest())}
}

// Expunge implements userdata.Index.
func (c *UserDB) Expunge(ctx context.Context, user userdata.UserID, folder userdata.FolderID, set userdata.UIDSet) ([]userdata.UID, error) {
	r, err := change(c, ctx, c.rpc.Expunge, &pb.UDSetRequest{User: uint64(user), Folder: uint32(folder), Set: setToPB(set)})
	if err != nil {
		return nil, err
	}
	return uidsFromPB(r.GetUids()), nil
}

// Changes implements userdata.Index: the changes come in batches, and fn
// runs on the calling goroutine.
func (c *UserDB) Changes(ctx context.Context, user userdata.UserID, folder userdata.FolderID, since uint64, fn func(userdata.Change) error) error {
	req := &pb.UDChangesRequest{User: uint64(user), Folder: uint32(folder), Since: since}
	return stream(c, ctx, c.rpc.Changes, req, func(b *pb.UDChanges) error {
		for _, ch := range b.GetChanges() {
			if err := fn(userdata.Change{UID: userdata.UID(ch.GetUid()), ModSeq: ch.GetModSeq(), Expunged: ch.GetExpunged()}); err != nil {
				return err
			}
		}
		return nil
	})
}

// Remove implements userdata.Remover.
func (c *UserDB) Remove(ctx context.Context, user userdata.UserID, folder userdata.FolderID, set userdata.UIDSet) ([]userdata.UID, error) {
	r, err := change(c, ctx, c.rpc.Remove, &pb.UDSetRequest{User: uint64(user), Folder: uint32(folder), Set: setToPB(set)})
	if err != nil {
		return nil, err
	}
	return uidsFromPB(r.GetUids()), nil
}

// Keywords implements userdata.KeywordLister.
func (c *UserDB) Keywords(ctx context.Context, user userdata.UserID, folder userdata.FolderID) ([]string, error) {
	r, err := call(c, ctx, c.rpc.Keywords, &pb.UDFolderRef{User: uint64(user), Folder: uint32(folder)})
	if err != nil {
		return nil, err
	}
	return textsFromPB(r.GetNames()), nil
}

// ClaimRecent implements userdata.RecentClaimer.
func (c *UserDB) ClaimRecent(ctx context.Context, user userdata.UserID, folder userdata.FolderID, upto userdata.UID) (from, to userdata.UID, err error) {
	r, err := call(c, ctx, c.rpc.ClaimRecent, &pb.UDClaimRecent{User: uint64(user), Folder: uint32(folder), Upto: uint32(upto)})
	if err != nil {
		return 0, 0, err
	}
	return userdata.UID(r.GetFrom()), userdata.UID(r.GetTo()), nil
}
