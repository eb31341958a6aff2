// Package txlog is the transaction log of mailsys deliveries: it makes an
// accepted message survive a crash (docs/architecture.md, principle 3).
//
// An SMTP server calls Accept with the envelope and body once DATA ends and
// answers 250 only when Accept returns: the transaction is then on stable
// storage. The delivery agent stores the body once in msstore, records that
// step with the body's Ref (Record), indexes it into each recipient's
// mailbox and marks the transaction done, with Done, or with DoneAsync,
// which joins the next group commit instead of waiting for one. After a
// crash, Open returns every transaction not done in Pending, with the
// steps recorded; the agent skips the steps already recorded and checks
// those that may have happened without a record (an index entry for the
// body's Ref), so that a replay never delivers twice.
//
// # On-disk format
//
// The log is a directory of segment files, seg-NNNNNNNN.txl, written in
// order; each is a sequence of records (see record.go): a 32-byte header
// with magic, kind (accept, step, done), transaction id, payload length and
// CRC32C of the payload and of the header, then the payload.
//
// # Invariants
//
//   - Records are appended by one leader at a time: it writes every queued
//     record with one call and syncs once for all of them (group commit,
//     internal/groupcommit), so concurrent sessions share each fsync. A
//     call returns once its record is durable (DoneAsync's, once it is
//     queued behind a leader; Close writes what is queued). Records are
//     numbered as they are queued, so ids follow file order, and a
//     batch's records take effect (a transaction pending, or done) before
//     any of its callers is told.
//   - A write that fails (a full disk) is undone and fails its batch
//     alone; a failed sync is fatal until the log is reopened.
//   - A new segment's directory entry is synced before records go in, and
//     a segment is synced when sealed, so only the newest segment can end
//     in a torn record; Open cuts it off. Damage in an older segment stops
//     Open with ErrCorrupt rather than dropping transactions.
//   - Transaction ids increase in file order and across restarts.
//   - A segment starts with a base record holding the highest transaction
//     id given so far, so ids never go back even when every older segment
//     is gone.
//   - Segments are removed oldest first, once every transaction accepted
//     in them is done; a later segment also holds the steps and done
//     records of older transactions, so it goes only after them. The log
//     is thus about the segments written since the oldest unfinished
//     transaction was accepted: bounded while deliveries finish, but a
//     transaction that stays unfinished holds everything after it
//     (copying such transactions forward is future work).
package txlog
