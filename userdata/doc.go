// Package userdata is the UserDB of mailsys: accounts, domains, the
// organisation tree, service classes, folders and the message index —
// everything about users and their mailboxes except message bodies, which
// live in msstore and are referenced by msstore.Ref (docs/architecture.md, principle 1).
// Listing a folder, setting a flag, copying or moving a message is a UserDB
// operation only.
//
// [UserDB] is made of small interfaces ([Accounts], [Authenticator],
// [Folders], [Index]) so that consumers depend on the part they call; [DB]
// is the default implementation on Pebble, and package udtest checks any
// implementation against the contract.
//
// # Key schema
//
// One Pebble key space; the first byte of a key names its table. Integers
// in keys are big-endian, so keys sort numerically; values are records:
// a version byte, then uvarint/varint numbers and length-prefixed strings.
//
//	c <name>                         counter (next user id, next unit id; "schema", the layout's version)
//	d <domain>                       domain: class, quota, disabled
//	D <alias-domain>                 the domain it is another name of
//	U <domain>                       bytes stored by the domain's users (merge operator: sum of deltas)
//	k <class>                        service class: quota, max message size, protocols
//	o <unit:8>                       organisation unit: domain, parent, name, class, disabled
//	u <user:8>                       user: address, name, unit, class, quota, disabled, node, created, argon2id hash
//	a <address>                      user:8, kind (primary or alias)
//	A <domain> 0x00 <address>        a user of the domain, by primary address: user id, unit, name
//	                                 (what Lister.ListUsers filters on; schema version 2)
//	l <user:8> <address>             empty: an alias of the user (for DeleteUser)
//	S <domain> 0x00 <kind:1>         the domain's count of users (u), disabled users (x), messages (m)
//	                                 (merge operator, as U)
//	b <user:8>                       mailbox: next folder id, last UIDVALIDITY, usage (messages, bytes)
//	f <user:8> <folder:4>            folder (record version 2): name, special use, a byte no longer
//	                                 used (subscriptions were kept here), UIDVALIDITY, UIDNEXT,
//	                                 HIGHESTMODSEQ, messages, unseen, size, \Recent watermark
//	n <user:8> <name>                folder id:4
//	K <user:8> <folder:4>            the folder's keywords, in order of first use (gathered from its
//	                                 messages when missing, for folders made before)
//	s <user:8> <name>                empty: the user is subscribed to name, folder or not
//	m <user:8> <folder:4> <uid:4>    message: modseq, msstore.Ref, internal date, size, flags,
//	                                 keywords, cached envelope and body structure
//	q <user:8> <folder:4> <modseq:8> <uid:4>   uid:4, expunged:1 — the change log; the tombstone of
//	                                 an expunge also names the body it dropped (id:8, node:4), and
//	                                 those tombstones outlive their folder's deletion (for AutoRepair)
//
// # Invariants
//
//   - Every mutation is one Pebble batch committed with Sync: it happens
//     whole or not at all, and is durable when the call returns.
//   - A full disk refuses writes, it does not fail the database: a reserve
//     file (Config.DiskReserve) is given up to the write that meets ENOSPC,
//     later writes fail with an error wrapping syscall.ENOSPC until space
//     returns, and reads go on. A commit that fails anyway (an I/O error)
//     with no mirror to take over fails the DB: every call then returns
//     ErrFailed until it is reopened.
//   - A user's records are read and rewritten under that user's lock (one
//     of 256, by user id), so UIDs in a folder are unique and strictly
//     increasing, and the folder's counts (messages, unseen, size), UIDNEXT,
//     HIGHESTMODSEQ and the user's usage always equal what its message keys
//     hold: a STATUS reads one record and never scans.
//   - Every mutation of a folder takes one new MODSEQ. The change log holds
//     one entry per live message (its latest change) and a tombstone per
//     expunged one, so "changes since MODSEQ" is a range scan.
//   - Bodies are reference counted outside the index (Config.Bodies):
//     Copy retains before its batch commits, Expunge and DeleteFolder
//     release after theirs (an expunge's after the watchers that hold the
//     bodies, FolderEvent.Hold, are done); a crash in between leaks a
//     reference, never loses a body.
//   - Every user record names the UD node holding it, and every message
//     entry its body's Ref: placement is recorded, never recomputed
//     (principle 4).
//   - What the index loses can be found again: bodies are self-describing
//     (msstore.Meta), and [DB.Repair] rebuilds a user's index from them;
//     with [DB.EnableAutoRepair], a login checks the user's index and
//     repairs it when damaged (see repair.go).
//   - Passwords are stored only as argon2id PHC strings; a bounded login
//     cache keeps a salted SHA-256 of recently verified passwords, dropped
//     on any change to the account, its units, its domain or classes.
//   - Every argon2id hash the DB computes is admitted by a
//     [PasswordLimiter] (by count and by memory, with a short FIFO queue),
//     so a storm of wrong passwords costs bounded memory; the logins it
//     refuses fail with ErrBusy, and cached logins never wait for it.
package userdata
