package userdata

import (
	"context"
	"errors"
	"time"

	"github.com/mailsys/mailsys/msstore"
)

// Sentinel errors. Implementations wrap them with %w; callers test them with
// errors.Is.
var (
	ErrNotFound   = errors.New("userdata: not found")
	ErrExists     = errors.New("userdata: already exists")
	ErrInvalid    = errors.New("userdata: invalid name or value")
	ErrAuthFailed = errors.New("userdata: authentication failed")
	ErrDisabled   = errors.New("userdata: account disabled")
	ErrProtocol   = errors.New("userdata: protocol not allowed for this account")
	ErrQuota      = errors.New("userdata: quota exceeded")
	ErrNotEmpty   = errors.New("userdata: not empty")
	ErrReadOnly   = errors.New("userdata: folder is read-only")
	ErrClosed     = errors.New("userdata: database closed")
	// ErrBusy reports a password check refused because too many run or
	// wait already (see PasswordLimiter): a temporary condition, to be
	// answered with the protocol's "try again later", not counted as a
	// failed login.
	ErrBusy = errors.New("userdata: too many password checks at once, try again later")
	// ErrFailed reports a call on a DB whose database failed a commit
	// (an I/O error, or a full disk with no reserve left) with no mirror
	// to take over. Pebble cannot go on after that: close the DB and open
	// it again, in a new process if the directory stays locked.
	ErrFailed = errors.New("userdata: database failed; reopen it")
	// ErrUnavailable reports a database that cannot be reached for now:
	// a remote node that is down or cut off. It is temporary; the
	// protocol servers answer it with their "try again later" (SMTP
	// 451 4.3.0, IMAP NO [UNAVAILABLE], POP3 -ERR [SYS/TEMP]).
	ErrUnavailable = errors.New("userdata: database unavailable")
)

// UserID identifies a user for the life of the account. IDs are never
// reused.
type UserID uint64

// UnitID identifies an organisation unit.
type UnitID uint64

// FolderID identifies a folder within its user's mailbox. It survives
// renames and is never reused in that mailbox.
type FolderID uint32

// UID is an IMAP unique identifier: within a folder, strictly increasing in
// the order messages were added.
type UID uint32

// Protocol is a bit set of the protocols an account may use.
type Protocol uint8

// Protocols, for service classes and Authenticate.
const (
	ProtoSMTP       Protocol = 1 << iota // receiving mail
	ProtoSubmission                      // sending mail (authenticated SMTP)
	ProtoIMAP
	ProtoPOP3

	AllProtocols = ProtoSMTP | ProtoSubmission | ProtoIMAP | ProtoPOP3
)

// LoginObserver is told of every successful login to a protocol server
// (imap, pop3 and mta's submission take one in their configs), for
// statistics of active users. LoggedIn is called on the session's
// goroutine before the session goes on, so it must be quick and safe for
// concurrent use.
type LoginObserver interface {
	LoggedIn(u User, p Protocol)
}

// Domain is a mail domain served by the system.
type Domain struct {
	Name     string // lower case, e.g. "example.com"
	Class    string // service class for its units and users, "" for none
	Quota    int64  // total bytes for all its users, 0 for no limit
	Disabled bool   // a disabled domain receives nothing and nobody in it logs in
}

// OrgUnit is a node of a domain's organisation tree: the enterprise at the
// top (Parent 0), its departments below, nested to any depth.
type OrgUnit struct {
	ID       UnitID
	Domain   string
	Parent   UnitID // 0 for a top-level unit
	Name     string
	Class    string // service class for the users below, "" to inherit
	Disabled bool   // disables every user below
}

// ServiceClass is a named set of limits, assigned to domains, units or users
// and inherited down the tree (user, then its units upward, then domain).
type ServiceClass struct {
	Name           string
	Quota          int64    // storage bytes per user, 0 for no limit
	MaxMessageSize int64    // bytes, 0 for no limit
	Protocols      Protocol // allowed protocols; 0 means all
}

// Limits are the effective limits of a user, resolved through inheritance.
type Limits struct {
	Class          string // the class that applied, "" if none
	Quota          int64  // per-user storage bytes, 0 for no limit
	DomainQuota    int64  // the domain's total, 0 for no limit
	MaxMessageSize int64
	Protocols      Protocol
}

// User is an account.
type User struct {
	ID       UserID
	Address  string // primary address, lower case
	Name     string // display name
	Unit     UnitID // 0 if not placed in a unit
	Class    string // "" to inherit from the unit or domain
	Quota    int64  // overrides the class quota when not 0
	Disabled bool
	Node     string // the UD node holding this user's data (placement is recorded)
	Created  time.Time
}

// NewUser is what CreateUser needs.
type NewUser struct {
	// ID is the new user's id, or 0 to let the database choose the next
	// one. A cluster allocates ids itself, so that they are unique
	// across its UD nodes.
	ID       UserID
	Address  string
	Password string // hashed with argon2id; empty for an account that cannot log in
	Name     string
	Unit     UnitID
	Class    string
	Quota    int64
	Node     string
}

// UserUpdate changes the fields that are not nil.
type UserUpdate struct {
	Name     *string
	Unit     *UnitID
	Class    *string
	Quota    *int64
	Disabled *bool
}

// Usage is what a user's mailbox holds.
type Usage struct {
	Messages int64
	Bytes    int64
}

// Accounts manages domains, organisation units, service classes, users and
// aliases. Changes take effect at once, including for logins in progress
// elsewhere (a cache of verified logins is invalidated).
//
// The general rules of [UserDB] apply (concurrency, ErrClosed, context,
// ownership). Addresses and domain names are matched without regard to
// case and returned in lower case; a name that is not a valid address,
// domain, unit, class or display name gives ErrInvalid, as does a
// negative quota. An unknown domain, unit, class or user gives
// ErrNotFound. Units and classes are never deleted.
type Accounts interface {
	// CreateDomain adds a domain. Its name must be free as a domain and
	// as a domain alias (ErrExists); its class, if not "", must exist.
	CreateDomain(ctx context.Context, d Domain) error
	// Domain returns a domain. The name of a domain alias is not a
	// domain: ErrNotFound.
	Domain(ctx context.Context, name string) (Domain, error)
	// UpdateDomain replaces an existing domain's class, quota and
	// disabled state.
	UpdateDomain(ctx context.Context, d Domain) error
	// AddDomainAlias makes alias another name of domain: mail to
	// user@alias goes to user@domain. domain must be a domain, not an
	// alias itself (ErrInvalid); alias must be neither (ErrExists).
	AddDomainAlias(ctx context.Context, alias, domain string) error

	// CreateUnit adds a unit and returns it with its ID: u.ID when it
	// is not 0 (ErrExists if a unit has it; the ids chosen later stay
	// clear of it), else a new one. Its domain must be a domain (an alias: ErrInvalid), its
	// parent 0 or a unit of the same domain (another's: ErrInvalid), its
	// class "" or an existing class.
	CreateUnit(ctx context.Context, u OrgUnit) (OrgUnit, error)
	Unit(ctx context.Context, id UnitID) (OrgUnit, error)
	// UpdateUnit sets the name, class and disabled state of the unit
	// u.ID; its domain and parent stay.
	UpdateUnit(ctx context.Context, u OrgUnit) error

	// DefineClass creates or replaces a service class. Its limits must
	// not be negative and Protocols must hold only known bits
	// (ErrInvalid).
	DefineClass(ctx context.Context, c ServiceClass) error

	// CreateUser adds a user with INBOX and the special-use folders
	// (Sent, Drafts, Trash, Junk, Archive), all subscribed, and returns
	// it with its new ID. The address's domain must be a domain (an
	// alias: ErrInvalid), the address free as a primary address and as
	// an alias (ErrExists), the unit 0 or one of that domain (another's:
	// ErrInvalid), the class "" or an existing one. The password is
	// hashed, which may wait, as long as ctx allows, for a bound on the
	// hashes running at once (never ErrBusy); an empty password makes an
	// account that cannot log in. An empty Node means the
	// implementation's own. A u.ID that is not 0 is the id to give the
	// user (ErrExists if a user has it; the ids chosen later stay clear
	// of it).
	CreateUser(ctx context.Context, u NewUser) (User, error)
	// User returns a user. Disabled is the user's own flag: a disabled
	// unit or domain is not reflected in it.
	User(ctx context.Context, id UserID) (User, error)
	// LookupAddress finds the user an address delivers to: a primary
	// address or an alias, in a domain or one of its aliases
	// (ErrNotFound if none). Disabled is as with User.
	LookupAddress(ctx context.Context, address string) (User, error)
	// UpdateUser changes the fields of u that are not nil. A unit must
	// be 0 or one of the user's domain (ErrInvalid), a class "" or an
	// existing one.
	UpdateUser(ctx context.Context, id UserID, u UserUpdate) error
	// SetPassword replaces a user's password, hashing it as CreateUser
	// does; an empty one means the account can no longer log in.
	SetPassword(ctx context.Context, id UserID, password string) error
	// AddAlias makes address deliver to user id. The address must be in
	// a domain, not in a domain alias (ErrInvalid), and be free as a
	// primary address and as an alias (ErrExists).
	AddAlias(ctx context.Context, address string, id UserID) error
	// RemoveAlias removes an alias: the address itself, not its form in
	// a domain alias (ErrNotFound). A primary address gives ErrInvalid.
	RemoveAlias(ctx context.Context, address string) error
	// Limits resolves a user's effective limits: the user's class, else
	// that of the nearest unit upward with one, else the domain's; the
	// user's own Quota, when not 0, overrides the class's. Protocols is
	// never 0: a class that allows all (0) gives AllProtocols.
	Limits(ctx context.Context, id UserID) (Limits, error)
	// Usage returns what the user's mailbox holds, kept as messages come
	// and go (no scan).
	Usage(ctx context.Context, id UserID) (Usage, error)
}

// Authenticator checks credentials. The general rules of [UserDB] apply.
type Authenticator interface {
	// Authenticate returns the user whose address (or alias) and password
	// match and who may use protocol p. It returns ErrAuthFailed for an
	// unknown address or a wrong password (indistinguishably),
	// ErrDisabled for a disabled user, unit or domain, and ErrProtocol.
	//
	// Password checks are expensive by design, so an implementation may
	// bound how many run at once: a call that would exceed the bound
	// fails with an error wrapping ErrBusy, without having checked the
	// password. ErrBusy is temporary; it says nothing about the
	// credentials, and a protocol server answers it with its "try again
	// later" reply rather than as a failed login. A login the
	// implementation can answer without a password check (from a cache
	// of verified logins) never waits for the checks in progress and
	// never fails with ErrBusy. The address is matched without regard to
	// case; one that is not an address is ErrAuthFailed too. On
	// ErrDisabled and ErrProtocol the user is returned beside the error
	// (with Disabled set when a unit or the domain is disabled).
	Authenticate(ctx context.Context, address, password string, p Protocol) (User, error)
}

// Special-use attributes (RFC 6154) of the folders made with every user.
const (
	SpecialSent    = `\Sent`
	SpecialDrafts  = `\Drafts`
	SpecialTrash   = `\Trash`
	SpecialJunk    = `\Junk`
	SpecialArchive = `\Archive`
)

// Inbox is the name of the folder every user has.
const Inbox = "INBOX"

// Delimiter separates the levels of folder names.
const Delimiter = '/'

// Folder is a folder's state. The counts are kept as messages come and go,
// so reading them never scans the folder.
type Folder struct {
	ID            FolderID
	Name          string
	SpecialUse    string // one of the Special* constants, or ""
	UIDValidity   uint32
	UIDNext       UID
	HighestModSeq uint64
	Messages      uint32
	Unseen        uint32
	Size          int64
	// RecentUID is IMAP's \Recent watermark (RFC 3501 2.3.2): the
	// messages with this UID or a higher one have not yet been claimed by
	// a session (see RecentClaimer). A new folder starts at 1.
	RecentUID UID
}

// Folders manages a user's folders and the names they subscribe to. Names
// are UTF-8, levels separated by Delimiter; "INBOX" is matched in any case.
//
// Subscriptions (IMAP's SUBSCRIBE, LSUB and LIST (SUBSCRIBED), RFC 3501
// 6.3.6) are a set of names of their own beside the folders, not a
// property of a folder: deleting a folder leaves its name subscribed, and
// a folder created later under that name is subscribed at once. A new
// user's INBOX and special-use folders start subscribed; every other
// folder, including the superior levels CreateFolder adds, starts
// unsubscribed.
//
// The general rules of [UserDB] apply. Calls for an unknown user return
// ErrNotFound, names that are not valid folder names ErrInvalid. Names
// are returned normalized (INBOX in upper case).
type Folders interface {
	// ListFolders calls fn for every folder of the user, in name order
	// (byte order of the normalized names), from one consistent view, and
	// stops at fn's first error, returning it.
	ListFolders(ctx context.Context, user UserID, fn func(Folder) error) error
	// Folder returns the folder called name; ErrNotFound if none.
	Folder(ctx context.Context, user UserID, name string) (Folder, error)
	// FolderByID returns the folder with the given id; ErrNotFound if
	// none (a deleted folder's id is never reused).
	FolderByID(ctx context.Context, user UserID, id FolderID) (Folder, error)
	// CreateFolder creates a folder, and every missing superior level of
	// its name as a plain folder, with a new ID, a UIDVALIDITY above any
	// the user's folders had, UIDNEXT 1 and RecentUID 1. specialUse is
	// "" or one of the Special* constants (ErrInvalid otherwise). A name
	// taken gives ErrExists.
	CreateFolder(ctx context.Context, user UserID, name, specialUse string) (Folder, error)
	// RenameFolder renames a folder and everything below it, and moves
	// the subscriptions of those names (subscribed names below from that
	// are no folder included) to the new names. Renaming INBOX moves its
	// messages to a new, unsubscribed folder and leaves INBOX empty
	// (RFC 3501), its subscription untouched. Ids, UIDVALIDITY and
	// messages stay. It returns ErrNotFound if from does not exist,
	// ErrExists if to (or a name below it that the rename would take)
	// does, and ErrInvalid for a rename into the folder's own subfolder.
	// Missing superior levels of to are created, unsubscribed.
	RenameFolder(ctx context.Context, user UserID, from, to string) error
	// DeleteFolder deletes a folder without subfolders, releasing its
	// messages' bodies and their size from the user's usage. A folder
	// with subfolders gives ErrNotEmpty; INBOX cannot be deleted
	// (ErrInvalid). The folder's name stays subscribed if it was (RFC 3501
	// 6.3.6). Watchers of the folder are told of the removal of its
	// messages (without a ModSeq).
	DeleteFolder(ctx context.Context, user UserID, name string) error
	// Subscribe adds name to the user's subscriptions (subscribed true)
	// or removes it; either is done when it already holds. Only the name
	// of an existing folder can be added (ErrNotFound otherwise, as
	// Dovecot refuses it; RFC 3501 lets a server choose), but any valid
	// name can be removed, so that a client can drop the subscription of
	// a deleted folder. The name is stored normalized (INBOX in upper
	// case), as folder names are.
	Subscribe(ctx context.Context, user UserID, name string, subscribed bool) error
	// Subscriptions calls fn with every subscribed name of the user, in
	// name order (byte order, as ListFolders), whether or not a folder has
	// that name now, from one consistent view. It stops at fn's first
	// error and returns it.
	Subscriptions(ctx context.Context, user UserID, fn func(name string) error) error
}

// Flags are the IMAP system flags, as a bit set.
type Flags uint8

// System flags.
const (
	FlagSeen Flags = 1 << iota
	FlagAnswered
	FlagFlagged
	FlagDeleted
	FlagDraft
)

// NewMessage is what Append needs. Envelope and Structure are the IMAP
// server's cached ENVELOPE and BODYSTRUCTURE, opaque here.
type NewMessage struct {
	Ref          msstore.Ref
	InternalDate time.Time
	Size         int64
	Flags        Flags
	Keywords     []string
	Envelope     []byte
	Structure    []byte
}

// Message is an index entry.
type Message struct {
	UID          UID
	ModSeq       uint64
	Ref          msstore.Ref
	InternalDate time.Time
	Size         int64
	Flags        Flags
	Keywords     []string
	Envelope     []byte
	Structure    []byte
}

// UIDRange is the UIDs from Start to Stop inclusive; Stop 0 means no upper
// end ("*").
type UIDRange struct{ Start, Stop UID }

// UIDSet is a union of ranges.
type UIDSet []UIDRange

// Contains reports whether uid is in s.
func (s UIDSet) Contains(uid UID) bool {
	for _, r := range s {
		if uid >= r.Start && (r.Stop == 0 || uid <= r.Stop) {
			return true
		}
	}
	return false
}

// FlagOp says what StoreFlags does.
type FlagOp uint8

// Flag operations.
const (
	FlagsSet    FlagOp = iota // replace
	FlagsAdd                  // +FLAGS
	FlagsRemove               // -FLAGS
)

// FlagUpdate is one StoreFlags request.
type FlagUpdate struct {
	Op       FlagOp
	Flags    Flags
	Keywords []string
	// UnchangedSince, when not 0, skips messages whose ModSeq is higher
	// (CONDSTORE); they are reported in the result's Skipped.
	UnchangedSince uint64
}

// StoreResult reports a StoreFlags.
type StoreResult struct {
	// Changed are the messages after the change, with their new ModSeq.
	// The slice is shared with the watchers' FolderEvent.Changed: it and
	// the messages' slices are read-only.
	Changed []Message
	Skipped []UID // messages left alone because of UnchangedSince
}

// CopyResult maps source UIDs to the UIDs of the copies (UIDPLUS).
type CopyResult struct {
	UIDValidity uint32
	Source      []UID
	Dest        []UID
}

// Change is one entry of a folder's change log since a MODSEQ.
type Change struct {
	UID      UID
	ModSeq   uint64
	Expunged bool // the message is gone; otherwise its flags changed or it was added
}

// Index is the message index of a user's folders. Every mutation is one
// atomic step: all of it happens or none (a call that fails changed
// nothing), and it is durable when it returns if the implementation is.
// Bodies are never touched but through the BodyRefs the implementation was
// given: Copy retains the bodies it references again before the copies
// can be seen, Expunge, Remove and DeleteFolder release them after the
// entries are gone. Append takes over the reference its caller holds.
//
// The general rules of [UserDB] apply. An unknown user or folder gives
// ErrNotFound. A UIDSet of nil means every message; UIDs in a set that
// name no message are skipped; a range given backwards (5:3) means 3:5.
//
// Counters and sequence numbers: a folder's Messages, Unseen, Size,
// UIDNext and HighestModSeq, and the user's Usage, always equal what its
// messages hold. UIDs are assigned in increasing order and never reused
// in a folder; UIDNext only grows. Every mutation that changes a folder
// takes one new MODSEQ (HighestModSeq+1), shared by all the messages it
// touches; a call that changes nothing takes none.
type Index interface {
	// Append adds a message, assigning it the folder's next UID and a
	// new MODSEQ, and returns its entry. It fails with ErrQuota when the
	// user's or the domain's quota would be passed, and with ErrInvalid
	// for a negative size, unknown flags, bad keywords (not IMAP atoms,
	// longer than 100 bytes, more than 64, or more than MaxFolderKeywords
	// in the folder) or a folder out of UIDs.
	Append(ctx context.Context, user UserID, folder FolderID, m NewMessage) (Message, error)
	// Messages calls fn for each message of the folder in set, in UID
	// order, from one view of the folder as of the call, and stops at
	// fn's first error, returning it. fn's *Message, its Keywords,
	// Envelope and Structure are valid only during the call and
	// read-only: fn copies what it keeps. fn may call the UserDB.
	Messages(ctx context.Context, user UserID, folder FolderID, set UIDSet, fn func(*Message) error) error
	// UIDs returns all the folder's UIDs in increasing order: the
	// sequence numbers' map for a session. SeqToUIDs turns sequence
	// ranges into a UIDSet with it, for Messages, StoreFlags, Copy, Move
	// and Expunge.
	UIDs(ctx context.Context, user UserID, folder FolderID) ([]UID, error)
	// StoreFlags changes the flags and keywords of the messages in set.
	// Only messages whose flags or keywords actually change are
	// rewritten: they share one new MODSEQ and are returned, as they are
	// now, in Changed, in UID order. With UnchangedSince, messages with a
	// higher ModSeq are left alone and listed in Skipped (CONDSTORE).
	// Keywords are matched without regard to case. An unknown Op or flag,
	// a bad keyword or a message left with more than 64 keywords gives
	// ErrInvalid.
	StoreFlags(ctx context.Context, user UserID, folder FolderID, set UIDSet, u FlagUpdate) (StoreResult, error)
	// Copy copies the messages in set to another folder of the user (or
	// the same one, after its messages), giving each copy the next UID
	// and one new MODSEQ of to, and returns the UIDs on both sides. It
	// fails with ErrQuota when the copies would pass the user's or the
	// domain's quota, and with the BodyRefs' error when a body cannot be
	// retained. A set that names no message gives an empty result (with
	// to's UIDValidity).
	Copy(ctx context.Context, user UserID, from FolderID, set UIDSet, to FolderID) (CopyResult, error)
	// Move moves the messages in set as Copy copies them, and removes
	// the originals in the same step, as an expunge does (a tombstone in
	// from's change log, one new MODSEQ of from), whatever their flags.
	// Bodies and usage are unchanged. from may be to (RFC 6851).
	// Watchers of from are told of the removal before those of to of the
	// addition.
	Move(ctx context.Context, user UserID, from FolderID, set UIDSet, to FolderID) (CopyResult, error)
	// Expunge removes the messages that have \Deleted, those in set only
	// when set is not nil (UID EXPUNGE), and returns their UIDs in
	// order; none removed gives a nil slice and takes no MODSEQ. Their
	// size leaves the user's and the domain's usage.
	Expunge(ctx context.Context, user UserID, folder FolderID, set UIDSet) ([]UID, error)
	// Changes calls fn for every change with a ModSeq above since, in
	// ModSeq order (UID order within one ModSeq): each live message
	// added or changed since, once, at its current ModSeq, and each
	// message expunged or moved out since (Expunged). It stops at fn's
	// first error and returns it.
	Changes(ctx context.Context, user UserID, folder FolderID, since uint64, fn func(Change) error) error
}

// Remover is an optional capability of an Index: removing given messages
// whatever their flags, in one atomic step. POP3's UPDATE state uses it to
// delete exactly what its session marked, leaving alone the messages that
// an IMAP session flagged \Deleted, with no moment at which the messages
// are flagged but still there.
type Remover interface {
	// Remove removes the folder's messages in set (which must not be nil:
	// ErrInvalid), whatever their flags, and returns the UIDs of those it
	// found, in order. UIDs in set that are gone already are skipped. The
	// removal is one atomic, durable step, and otherwise like Expunge's.
	Remove(ctx context.Context, user UserID, folder FolderID, set UIDSet) ([]UID, error)
}

// UserDB is the whole user database. Its parts state their own contracts;
// these rules apply to every method of every part, and of the optional
// capabilities (Watcher, Remover, KeywordLister, RecentClaimer):
//
//   - Every method is safe for concurrent use, and may block on I/O (a DB
//     waits for its commits to reach the disk, and for the hashes of
//     Accounts and Authenticate to be admitted).
//   - A call whose ctx is done before it begins returns ctx's error; one
//     in progress may stop at ctx's end with ctx's error.
//   - Errors wrap the sentinels (ErrNotFound, ErrExists, ErrInvalid,
//     ErrQuota, ...) with %w, to be tested with errors.Is; any other
//     error (an I/O failure) is the implementation's.
//   - Close waits for the calls in progress, then ends the database:
//     every call after it, and every call made by a callback of a call in
//     progress once Close has begun, returns ErrClosed. A second Close
//     returns ErrClosed or nil.
//   - What a call is given (NewMessage's slices, FlagUpdate.Keywords, a
//     UIDSet) is neither kept nor modified after it returns: the caller
//     may reuse it. What a call returns (a User, a Folder, []UID, a
//     Message, CopyResult, StoreResult) is the caller's, but for
//     StoreResult.Changed, shared read-only with the watchers' events.
//   - Callbacks (ListFolders, Subscriptions, Messages, Changes) run on the
//     calling goroutine, one at a time, and may call the UserDB; a
//     callback's error stops the call and is returned as it is.
type UserDB interface {
	Accounts
	Authenticator
	Folders
	Index
	// Close ends the database; see above.
	Close() error
}

// BodyRefs keeps the reference counts of message bodies in step with the
// index: msstore.Storage satisfies it. A UserDB calls it from any
// goroutine, concurrently, possibly with its own locks held, so it must not
// call back into the UserDB.
type BodyRefs interface {
	// Retain adds n references to the body ref points to. A UserDB calls
	// it before the index entries that need it can be seen, and fails the
	// change with its error.
	Retain(ctx context.Context, ref msstore.Ref, n int) error
	// Release drops one reference. A UserDB calls it after the entry is
	// gone, even if the call's ctx has ended meanwhile, and logs an error
	// rather than returning it: the body's space leaks, no body is lost.
	Release(ctx context.Context, ref msstore.Ref) error
}

// FolderEvent tells a watcher what changed in a folder.
type FolderEvent struct {
	User    UserID
	Folder  FolderID
	Added   []UID // appended, copied or moved in
	Removed []UID // expunged or moved out
	Flags   []UID // flags changed
	// Changed has the messages of Flags as they are now (read-only).
	Changed []Message
	ModSeq  uint64
	// Origin is the value WithOrigin put in the context of the call that
	// made the change, so that a session can tell its own changes from
	// others'. It is nil for appends, which are committed in groups.
	Origin any
	// Keywords, when not nil, is the folder's whole keyword list (see
	// KeywordLister) after a change that added to it; it is nil when the folder's keywords did
	// not change. An IMAP server announces them (FLAGS) before the
	// messages that carry them.
	Keywords []string
	// Hold, when not nil, lets a watcher keep the bodies of the Removed
	// messages readable after the change: a reader that saw the messages
	// in the index just before may still be about to open them (an IMAP
	// session that has not yet been told of the expunge). Each call, made
	// during the watcher's fn and not after, returns a done function to
	// call once, from any goroutine; the bodies are released after the
	// last done. A hold that is never done leaks the bodies' space, as a
	// crash in between would. Hold is nil for changes that release no
	// body, and on UserDBs that do not support it.
	Hold func() (done func())
}

type originKey struct{}

// WithOrigin returns a context whose changes are reported to watchers with
// FolderEvent.Origin set to origin.
func WithOrigin(ctx context.Context, origin any) context.Context {
	return context.WithValue(ctx, originKey{}, origin)
}

// originOf is the origin WithOrigin put in ctx, or nil.
func originOf(ctx context.Context) any { return ctx.Value(originKey{}) }

// Watcher is an optional capability: a UserDB that tells sessions about
// changes to a folder as they are committed (IMAP IDLE, concurrent
// sessions).
type Watcher interface {
	// Watch calls fn after every committed change to the folder, in commit
	// order, until the returned stop function is called; several watchers
	// of one folder may be registered (the same fn twice counts twice). fn
	// runs on the committing goroutine, possibly with the database's
	// locks held, and must not block or call back into the database (but
	// for a stop function): it hands the event on, to a buffered channel
	// or a queue. Every watcher gets every field of the event; its slices
	// are the watcher's own, except Changed, which watchers (and the
	// StoreFlags caller) share and must not modify. stop is idempotent
	// and may be called from any goroutine, fn included; an event being
	// delivered when stop is called may still reach fn. Watch neither
	// blocks nor fails: an unknown user or folder simply never changes.
	Watch(user UserID, folder FolderID, fn func(FolderEvent)) (stop func())
}
