// Package msstore holds message bodies: the Storage back module of mailsys.
//
// A mailbox and its messages are kept apart (docs/architecture.md, principle 1): the
// UserDB holds folders, flags and the mail index, and each index entry holds
// a [Ref] to a body stored here. A body delivered to many local recipients is
// stored once and reference counted ([Storage.Retain], [Storage.Release]).
//
// [Storage] is the interface the rest of mailsys consumes. [Volumes] is the
// default implementation, packing many bodies into few large files; [Memory]
// is an in-memory one for tests. Package storetest checks any implementation
// against the contract. Optional capabilities are discovered by type
// assertion: [Walker] (visit every body's self-describing [Meta], used to
// rebuild a lost index), [Compactor] and [Scrubber].
//
// # On-disk format (version 1)
//
// A Volumes store has one or more data directories. Each holds volume files
// named vol-NNNNNNNN.msv (the volume number, unique across the directories),
// a tmp/ directory for bodies too large to hold in memory while they are
// read, and, in the first directory, the checkpoint msstore.ckpt. Integers
// are little-endian; checksums are CRC32C (Castagnoli).
//
// A volume file starts with a 32-byte header:
//
//	0  [8]byte "msstvol1"
//	8  uint32  volume number
//	12 uint32  node number
//	16 int64   creation time, Unix nanoseconds
//	24 uint32  reserved (0)
//	28 uint32  CRC32C of bytes 0..27
//
// followed by records, back to back. A record is:
//
//	header   48 bytes
//	  0  uint32 magic "msr1"
//	  4  uint8  format version (1)
//	  5  uint8  kind: 1 body, 2 reference count
//	  6  uint16 reserved (0)
//	  8  uint64 sequence number (LSN), unique and increasing per store
//	  16 uint64 body id (the LSN of the body's first record)
//	  24 uint32 reference count as of this record
//	  28 uint32 meta length
//	  32 uint64 body length
//	  40 uint32 CRC32C of the whole body
//	  44 uint32 CRC32C of header bytes 0..43
//	meta     the encoded Meta: a version byte, then uvarint-length-prefixed
//	         fields (message id, received time as a varint of Unix
//	         nanoseconds, owner count, each owner's user and mailbox)
//	body     the message, byte for byte
//	table    one CRC32C per 64 KiB chunk of the body
//	trailer  16 bytes
//	  0  uint64 sequence number, again
//	  8  uint32 CRC32C of meta followed by table
//	  12 uint32 magic "msre"
//
// A reference-count record (kind 2) has no meta, body or table: 64 bytes.
//
// The checkpoint is a snapshot of the in-memory index: for each volume the
// length it covers and the offset and sequence number of its last record,
// then (id, volume, offset, record length, reference count) for every body
// with a record on disk, then the superseded copies left by an interrupted
// compaction, all followed by a CRC32C.
//
// # Invariants
//
//   - Records are only ever appended, to one volume at a time (the active
//     one); within a volume, file order is sequence order.
//   - A Put or a reference change returns only after its record is on
//     stable storage: the leader of a commit batch writes every queued record
//     with one call and syncs once for all of them (group commit). A new
//     volume's header and directory entry are synced before any record goes
//     in, and a volume is synced when it is sealed, so only the newest volume
//     can end in a torn record.
//   - A write that fails (a full disk) is undone: the volume is cut back,
//     durably, to the end of its last good record, and only the records of
//     that write fail; sequence numbers they took are never used again. A
//     volume whose creation fails is removed. The store goes on and takes
//     writes again when space returns. A failed fsync, by contrast, is
//     final: the store refuses writes (ErrReadOnly) until it is reopened.
//   - The state of a body is the one in its record with the highest
//     sequence number: a body record (which carries the count when written)
//     or a reference-count record. A count of zero is a tombstone: the body
//     can no longer be opened, and its bytes are dead space.
//   - Compaction copies each live record of a volume to the active volume
//     (same id, meta, body and checksums; new sequence number and current
//     count), carries forward the reference-count records still needed,
//     syncs, and only then removes the old volume. A crash at any point
//     leaves the old record or the newer copy as the current one, never
//     neither; an old copy left behind is known as superseded and keeps its
//     tombstones alive until its volume is gone.
//   - Opening a store loads the checkpoint if every volume it names still
//     ends, at the recorded length, with the recorded record; it then scans
//     only what follows. Otherwise it scans every volume. Records of the
//     newest volume are verified in full; a torn record at its end is cut
//     off. Damage elsewhere is logged, skipped to the next good record, and
//     never truncated.
//   - Reads check every byte they return against the chunk table; a
//     checkpoint or a reference is never trusted over the record itself.
//
// The in-memory index costs about 56 bytes per body (a Go map from id to
// volume, offset, length and count); see bench/msstore for the figures.
package msstore
