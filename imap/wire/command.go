package wire

import (
	"fmt"

	goimap "github.com/emersion/go-imap/v2"
)

// Command is one client command as ReadCommand parsed it. It and its Args
// belong to the caller: the Reader keeps no reference to them and shares
// no memory with them.
type Command struct {
	// Tag is the command's tag, as the client sent it.
	Tag string
	// Name is the command's name in upper case ("FETCH"), without the
	// UID prefix, which sets UID (for COPY, MOVE, FETCH, STORE, SEARCH,
	// SORT, THREAD and EXPUNGE).
	Name string
	// UID is set for a command given with the UID prefix.
	UID bool
	// Args holds the arguments, by Name: *LoginArgs (LOGIN),
	// *AuthenticateArgs (AUTHENTICATE), *EnableArgs (ENABLE), *IDArgs
	// (ID), *SelectArgs (SELECT, EXAMINE), *CreateArgs (CREATE),
	// *MailboxArgs (DELETE, SUBSCRIBE, UNSUBSCRIBE, GETQUOTAROOT, and
	// APPEND's mailbox), *RenameArgs (RENAME), *ListArgs (LIST, LSUB),
	// *StatusArgs (STATUS), *ExpungeArgs (UID EXPUNGE), *SearchArgs
	// (SEARCH), *FetchArgs (FETCH), *StoreArgs (STORE), *CopyArgs (COPY,
	// MOVE), *SortArgs (SORT), *ThreadArgs (THREAD), *QuotaArgs
	// (GETQUOTA), *SetQuotaArgs (SETQUOTA), *CompressArgs (COMPRESS);
	// nil for the commands without arguments (CAPABILITY, NOOP, LOGOUT,
	// STARTTLS, NAMESPACE, CHECK, CLOSE, UNSELECT, EXPUNGE, IDLE).
	Args any
}

// LoginArgs are LOGIN's.
type LoginArgs struct{ User, Password string }

// AuthenticateArgs are AUTHENTICATE's: the mechanism in upper case and
// the initial response (SASL-IR, RFC 4959), decoded; HasInitial tells an
// empty one ("=") from none.
type AuthenticateArgs struct {
	Mechanism       string
	InitialResponse []byte
	HasInitial      bool
}

// EnableArgs are ENABLE's capabilities (RFC 5161), in upper case.
type EnableArgs struct{ Caps []goimap.Cap }

// IDArgs are ID's field-value pairs (RFC 2971), nil for ID NIL; a NIL
// value is "".
type IDArgs struct{ Fields map[string]string }

// SelectArgs are SELECT's and EXAMINE's (Options.ReadOnly), with the
// CONDSTORE and QRESYNC parameters of RFC 7162.
type SelectArgs struct {
	Mailbox string
	Options goimap.SelectOptions // CondStore for (CONDSTORE)
	QResync *QResync             // (QRESYNC (...)), RFC 7162 section 3.2.5; nil if not given
}

// QResync is the QRESYNC parameter of SELECT and EXAMINE: what the client
// knew of the mailbox.
type QResync struct {
	UIDValidity uint32
	ModSeq      uint64
	KnownUIDs   goimap.UIDSet // nil if not given
	// SeqMatch and UIDMatch pair sequence numbers with the UIDs the
	// client had for them; nil if not given.
	SeqMatch goimap.SeqSet
	UIDMatch goimap.UIDSet
}

// MailboxArgs name one mailbox.
type MailboxArgs struct{ Mailbox string }

// CreateArgs are CREATE's, with the special uses of CREATE-SPECIAL-USE
// (RFC 6154).
type CreateArgs struct {
	Mailbox    string
	SpecialUse []goimap.MailboxAttr
}

// RenameArgs are RENAME's.
type RenameArgs struct{ From, To string }

// ListArgs are LIST's (with LIST-EXTENDED, RFC 5258) and LSUB's.
type ListArgs struct {
	LSUB      bool
	Reference string
	Patterns  []string
	Options   goimap.ListOptions
	// Extended is set when the command used LIST-EXTENDED syntax
	// (selection options, several patterns, RETURN), whose responses
	// carry extended data (CHILDINFO).
	Extended bool
}

// StatusArgs are STATUS's.
type StatusArgs struct {
	Mailbox string
	Options goimap.StatusOptions
}

// ExpungeArgs are UID EXPUNGE's (RFC 4315): UIDs may be
// goimap.SearchRes() for "$" (RFC 5182).
type ExpungeArgs struct{ UIDs goimap.UIDSet }

// SearchArgs are SEARCH's. Return is nil without RETURN (the SEARCH
// response of RFC 3501), else the ESEARCH options (RFC 4731; RETURN ()
// is ALL).
type SearchArgs struct {
	Charset  string
	Criteria *goimap.SearchCriteria
	Return   *goimap.SearchOptions
}

// FetchArgs are FETCH's.
type FetchArgs struct {
	Set     goimap.NumSet
	Options *goimap.FetchOptions // ChangedSince from (CHANGEDSINCE n)
	// Vanished is the VANISHED modifier of UID FETCH (RFC 7162 section
	// 3.2.6).
	Vanished bool
	// Macro is the macro the items were given as (ALL, FAST, FULL), or
	// "".
	Macro string
	// RFC822 is nil unless an item was RFC822, RFC822.HEADER or
	// RFC822.TEXT (RFC 3501 section 6.4.5), which are answered under
	// those names: then it runs parallel to Options.BodySection, the
	// name of each section's item, or "" for a BODY[...] one.
	RFC822 []string
}

// StoreArgs are STORE's. Options is nil without (UNCHANGEDSINCE n)
// (RFC 7162 section 3.1.3), whose n may be 0.
type StoreArgs struct {
	Set     goimap.NumSet
	Flags   goimap.StoreFlags
	Options *goimap.StoreOptions
}

// CopyArgs are COPY's and MOVE's.
type CopyArgs struct {
	Set     goimap.NumSet
	Mailbox string
}

// SortKey is a SORT criterion (RFC 5256, RFC 5957): ARRIVAL, CC, DATE,
// FROM, SIZE, SUBJECT, TO, DISPLAYFROM or DISPLAYTO, in upper case.
type SortKey struct {
	Key     string
	Reverse bool
}

// SortArgs are SORT's, with ESORT's RETURN (RFC 5267).
type SortArgs struct {
	Keys     []SortKey
	Charset  string
	Criteria *goimap.SearchCriteria
	Return   *goimap.SearchOptions
}

// ThreadArgs are THREAD's (RFC 5256): the algorithm in upper case (any
// atom; the server refuses those it lacks), the charset as given.
type ThreadArgs struct {
	Algorithm goimap.ThreadAlgorithm
	Charset   string
	Criteria  *goimap.SearchCriteria
}

// QuotaArgs are GETQUOTA's.
type QuotaArgs struct{ Root string }

// SetQuotaArgs are SETQUOTA's (RFC 9208): resource names in upper case.
type SetQuotaArgs struct {
	Root   string
	Limits map[goimap.QuotaResourceType]int64
}

// CompressArgs are COMPRESS's: the mechanism in upper case.
type CompressArgs struct{ Mechanism string }

// String returns the command as a short description for logs.
func (c *Command) String() string {
	if c.UID {
		return fmt.Sprintf("%s UID %s", c.Tag, c.Name)
	}
	return c.Tag + " " + c.Name
}
