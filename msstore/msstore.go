package msstore

import (
	"context"
	"errors"
	"io"
	"time"
)

// Sentinel errors. Implementations wrap them with %w so callers test them with
// errors.Is.
var (
	// ErrNotFound reports a Ref that points nowhere: never stored here, from
	// another node, or released to zero references.
	ErrNotFound = errors.New("msstore: body not found")
	// ErrCorrupt reports a record whose checksum does not match: the bytes
	// on disk are damaged. The error names the volume and offset.
	ErrCorrupt = errors.New("msstore: corrupt record")
	// ErrTooLarge reports a body larger than the store's limit.
	ErrTooLarge = errors.New("msstore: body too large")
	// ErrClosed reports a call on a closed store.
	ErrClosed = errors.New("msstore: store closed")
	// ErrReadOnly reports a write to a store that cannot take one: every
	// data directory is masked, or an earlier write failed to reach stable
	// storage and the store stopped accepting writes until it is reopened.
	ErrReadOnly = errors.New("msstore: store is read-only")
	// ErrUnavailable reports a store that cannot be reached for now: a
	// remote node that is down or cut off. It is temporary; the
	// protocol servers answer it with their "try again later".
	ErrUnavailable = errors.New("msstore: store unavailable")
)

// Storage holds message bodies. It is the interface the protocol servers and
// the delivery path consume; [Volumes] is the default implementation and
// [Memory] the in-memory one.
//
// A body is stored once and referenced by many index entries (single
// instance): Put creates it with one reference per owner, Retain adds
// references, Release drops them, and the space of a body with no reference
// left is reclaimed later (by compaction, for [Volumes]).
//
// All methods are safe for concurrent use. Methods that take a context may
// block on I/O; they return early with ctx.Err() when it is done, but a Put or
// Release cut short that way may still have taken effect.
type Storage interface {
	// Put stores the body read from r until io.EOF, together with meta, and
	// returns the Ref that locates it. The body's reference count starts at
	// len(meta.Owners), or 1 if there are no owners. Put returns only once the
	// body is on stable storage (unless the implementation was configured
	// otherwise). Put does not retain r or meta.
	Put(ctx context.Context, r io.Reader, meta Meta) (Ref, error)

	// Open returns the body ref points to, for reading. The caller must Close
	// it. A body stays readable while it is open, even if its last reference
	// is released meanwhile.
	Open(ctx context.Context, ref Ref) (Body, error)

	// Retain adds n references to the body (n >= 1), for example when an IMAP
	// COPY makes another index entry point at it. Retain before writing the
	// index entry, so that a crash in between leaks space instead of losing a
	// body.
	Retain(ctx context.Context, ref Ref, n int) error

	// Release drops one reference. When none is left the body can no longer
	// be opened and its space is reclaimed later. Release after removing the
	// index entry.
	Release(ctx context.Context, ref Ref) error

	// Close releases the store's resources. Bodies still open stay readable
	// until they are closed. Close must not be called concurrently with
	// other methods that are still running.
	Close() error
}

// Body is a stored message body open for reading. ReadAt may be called
// concurrently, as io.ReaderAt allows; every byte returned has been checked
// against the record's checksums. Wrap it in io.NewSectionReader(b, 0,
// b.Size()) for a sequential reader.
type Body interface {
	io.ReaderAt
	io.Closer
	// Size is the body's length in bytes.
	Size() int64
}

// Meta describes a body at Put time. It is written into the record itself so
// that the store is self-describing: a lost mail index can be rebuilt by
// walking the store (see [Walker]). Meta is not updated when references move
// later, so it says where a body was delivered, not where it is now.
type Meta struct {
	// MessageID is the message's Message-ID header or another unique
	// identifier chosen by the caller, such as a delivery transaction id.
	MessageID string
	// Received is the delivery time.
	Received time.Time
	// Owners are the recipients the body was delivered to, one per
	// reference.
	Owners []Owner
}

// Owner is one delivery of a body: a user and the mailbox it went to.
type Owner struct {
	// User is the account the body was delivered to (an address or a
	// user id, as the UserDB names users).
	User string
	// Mailbox is the folder, such as "INBOX".
	Mailbox string
}

// refs returns the number of references a Put of m starts with.
func (m *Meta) refs() uint32 {
	if len(m.Owners) == 0 {
		return 1
	}
	return uint32(len(m.Owners))
}

// Walker is an optional capability of a Storage: it visits the Ref and Meta
// of every body that still has references. AutoRepair in userdata uses it to
// rebuild a lost index.
type Walker interface {
	Storage
	// Walk calls fn once for every live body, in no particular order, until
	// fn returns an error (which Walk returns). Bodies stored or released
	// during the walk may or may not be visited.
	Walk(ctx context.Context, fn func(Ref, Meta) error) error
}

// Writable is an optional capability of a Storage whose bodies live
// elsewhere (a cluster's, on MS nodes that may be down): whether a Put
// could succeed now. The SMTP listener asks it before it takes a message,
// so that mail that cannot be stored anywhere is answered 451 rather than
// accepted and left waiting.
type Writable interface {
	Storage
	// Writable returns nil when a Put can be tried now, else an error
	// saying why not (wrapping ErrUnavailable). It does not block.
	Writable() error
}

// Compactor is an optional capability of a Storage that reclaims the space
// of released bodies while the store stays in service.
type Compactor interface {
	Storage
	// Compact rewrites the parts of the store that hold released bodies and
	// frees their space. It runs concurrently with every other method.
	Compact(ctx context.Context) (CompactStats, error)
}

// CompactStats reports what a compaction did.
type CompactStats struct {
	Volumes        int   // volumes rewritten and removed
	BodiesMoved    int   // live bodies copied out of them
	BytesReclaimed int64 // disk space freed
}

// Scrubber is an optional capability of a Storage that verifies every stored
// byte against its checksums.
type Scrubber interface {
	Storage
	// Scrub reads and verifies every record, calling report (which may be
	// nil) for each damaged one, while the store stays in service. It returns
	// what it checked; damage is reported, not returned as an error.
	Scrub(ctx context.Context, report func(Damage)) (ScrubStats, error)
}

// Damage describes one damaged place found by Scrub or when opening a store.
type Damage struct {
	Volume uint32 // volume number
	Offset int64  // where the damage starts in the volume file
	Length int64  // how many bytes are unreadable, if known
	ID     uint64 // the body's id, if the record header was readable
	Err    error  // what is wrong; wraps ErrCorrupt
}

// ScrubStats reports what a scrub checked.
type ScrubStats struct {
	Records int   // records read and verified
	Bytes   int64 // bytes read
	Damaged int   // damaged places found
}
