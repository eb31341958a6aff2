package imap

import (
	"context"
	"io"

	"github.com/mailsys/mailsys/msstore"
	"github.com/mailsys/mailsys/userdata"
)

// UserDB is what the server needs of the user database: logins, folders,
// subscriptions, the message index, and the watch that tells each session
// of the others' changes. *userdata.DB satisfies it; another
// implementation passes userdata/udtest and keeps the contract below.
//
// The methods are called concurrently, by every session, and may block on
// I/O. Each is called with the server's context, which Shutdown (past its
// deadline) and Close cancel: a call should return soon after, with the
// context's error. Errors are wrapped userdata sentinels (ErrNotFound,
// ErrExists, ErrQuota, ErrInvalid...), which the server turns into IMAP's
// response codes; any other is logged and answered NO [SERVERBUG].
//
// More is found by type assertion on the value given to NewServer, and
// used when it is there:
//   - userdata.KeywordLister: SELECT's FLAGS and PERMANENTFLAGS name the
//     keywords the folder had before it was opened here; without it, only
//     those that FolderEvent.Keywords announces since.
//   - userdata.RecentClaimer: \Recent is claimed in the UserDB
//     (Folder.RecentUID), so that one session of the whole system, across
//     restarts, sees a message as recent; without it, the claims are this
//     Server's, kept while the folder is open here.
type UserDB interface {
	// Authenticate checks a login (LOGIN, AUTHENTICATE PLAIN); the
	// server asks for userdata.ProtoIMAP. userdata.ErrAuthFailed and
	// ErrInvalid are a failed login, ErrDisabled and ErrProtocol a login
	// not allowed, ErrBusy a "try again later" that the Guard does not
	// count (see userdata.Authenticator).
	Authenticate(ctx context.Context, address, password string, p userdata.Protocol) (userdata.User, error)
	// Limits gives the user's MaxMessageSize, the APPENDLIMIT when it is
	// below Config.MaxAppendSize. An error leaves Config.MaxAppendSize.
	Limits(ctx context.Context, user userdata.UserID) (userdata.Limits, error)

	// ListFolders calls fn for every folder, in name order (LIST, and
	// the CHILDREN attributes worked out from it).
	ListFolders(ctx context.Context, user userdata.UserID, fn func(userdata.Folder) error) error
	// Folder finds a folder by name, INBOX in any case, for its id and
	// counts (SELECT, STATUS, APPEND, COPY...).
	Folder(ctx context.Context, user userdata.UserID, name string) (userdata.Folder, error)
	// FolderByID returns a folder's state now: SELECT reads its UIDNEXT
	// before it starts watching.
	FolderByID(ctx context.Context, user userdata.UserID, id userdata.FolderID) (userdata.Folder, error)
	// CreateFolder, RenameFolder and DeleteFolder are CREATE, RENAME and
	// DELETE, with the semantics userdata.Folders states (RENAME of
	// INBOX moves its messages; DELETE refuses a folder with children).
	CreateFolder(ctx context.Context, user userdata.UserID, name, specialUse string) (userdata.Folder, error)
	RenameFolder(ctx context.Context, user userdata.UserID, from, to string) error
	DeleteFolder(ctx context.Context, user userdata.UserID, name string) error
	// Subscribe and Subscriptions keep the subscribed names, a set apart
	// from the folders (SUBSCRIBE, UNSUBSCRIBE, LSUB, LIST (SUBSCRIBED)).
	// Subscriptions calls fn in name order.
	Subscribe(ctx context.Context, user userdata.UserID, name string, subscribed bool) error
	Subscriptions(ctx context.Context, user userdata.UserID, fn func(name string) error) error

	// Append adds a message whose body the server has Put (APPEND); on
	// an error the server releases the body again.
	Append(ctx context.Context, user userdata.UserID, folder userdata.FolderID, m userdata.NewMessage) (userdata.Message, error)
	// Messages streams the messages of set in UID order (FETCH, SEARCH,
	// STATUS DELETED); fn's *Message is valid only during the call. fn
	// may wait on a slow client, so Messages should not hold, while it
	// calls fn, a lock that commits wait for.
	Messages(ctx context.Context, user userdata.UserID, folder userdata.FolderID, set userdata.UIDSet, fn func(*userdata.Message) error) error
	// UIDs returns every UID of the folder in order, when a session
	// first selects it.
	UIDs(ctx context.Context, user userdata.UserID, folder userdata.FolderID) ([]userdata.UID, error)
	// StoreFlags, Copy, Move and Expunge are STORE, COPY, MOVE and
	// EXPUNGE (UID EXPUNGE with a set), each one atomic step. A session
	// learns of its own changes, as of everyone's, through Watch: a call
	// made with a context from userdata.WithOrigin must report that
	// origin in the FolderEvent.
	StoreFlags(ctx context.Context, user userdata.UserID, folder userdata.FolderID, set userdata.UIDSet, u userdata.FlagUpdate) (userdata.StoreResult, error)
	Copy(ctx context.Context, user userdata.UserID, from userdata.FolderID, set userdata.UIDSet, to userdata.FolderID) (userdata.CopyResult, error)
	Move(ctx context.Context, user userdata.UserID, from userdata.FolderID, set userdata.UIDSet, to userdata.FolderID) (userdata.CopyResult, error)
	Expunge(ctx context.Context, user userdata.UserID, folder userdata.FolderID, set userdata.UIDSet) ([]userdata.UID, error)

	// Watch is userdata.Watcher's, and not optional: the server's view
	// of an open folder is the UIDs read at SELECT plus every change
	// Watch reports, in commit order, whoever made it (this server's
	// sessions, deliveries, other servers). fn is called on the
	// committing goroutine and does not block or call back; a
	// FolderEvent.Hold, when the UserDB offers it, keeps expunged bodies
	// readable until every session has been told.
	Watch(user userdata.UserID, folder userdata.FolderID, fn func(userdata.FolderEvent)) (stop func())
}

// Bodies is what the server needs of the message store: storing an
// APPENDed message, reading bodies for FETCH and SEARCH, and dropping the
// reference of a body whose APPEND failed. msstore.Storage (so
// *msstore.Volumes) satisfies it. The methods are called concurrently,
// with the server's context, and may block on I/O. The server retains no
// body itself: the UserDB retains and releases bodies as its index entries
// come and go (userdata.BodyRefs).
type Bodies interface {
	// Put stores an APPENDed message with one reference, its owner's.
	Put(ctx context.Context, r io.Reader, meta msstore.Meta) (msstore.Ref, error)
	// Open returns a body for reading; the server closes it. A body
	// whose message another session expunged may be gone
	// (msstore.ErrNotFound): the server answers NO [EXPUNGEISSUED].
	Open(ctx context.Context, ref msstore.Ref) (msstore.Body, error)
	// Release drops the reference Put made when the UserDB refused the
	// message.
	Release(ctx context.Context, ref msstore.Ref) error
}

// The defaults satisfy the interfaces.
var (
	_ UserDB = (*userdata.DB)(nil)
	_ Bodies = msstore.Storage(nil)
)
