// Package imap is the IMAP front module of mailsys: an IMAP4rev1 and
// IMAP4rev2 server, built on github.com/emersion/go-imap/v2's imapserver,
// over a userdata.UserDB (folders, flags, the message index) and a message
// store (msstore).
//
// NewServer makes a Server; Serve and ServeTLS run it on listeners
// (STARTTLS, and implicit TLS for port 993); Shutdown says BYE to every
// session. Besides what go-imap provides itself it advertises NAMESPACE,
// UIDPLUS, ESEARCH, SEARCHRES, LIST-EXTENDED, LIST-STATUS, MOVE,
// STATUS=SIZE, BINARY, CHILDREN, SPECIAL-USE, CREATE-SPECIAL-USE,
// LITERAL+ and APPENDLIMIT, and authenticates with LOGIN and AUTHENTICATE
// PLAIN, refused before TLS unless Config.InsecureAuth. The Guard shared
// with the SMTP listeners admits connections as they are accepted, locks
// out repeated login failures and slows down failed logins; a connection
// that has not logged in is bounded in time and bytes, and a logged-in
// one is closed with BYE after Config.IdleTimeout without a whole command
// (autologout), or Config.IdleCommandTimeout in IDLE.
//
// # Commands
//
// go-imap parses the commands, but what it would mishandle is stopped
// before it reads it (see wire.go): a command of more than 48 KiB outside
// literals or with lists nested more than 100 deep is answered BAD, a
// literal go-imap would refuse is read and dropped (or, past 1 MiB, the
// connection closed with BYE), so that the bytes of a refused literal
// never run as commands, over TLS as in the clear.
//
// # Open folders
//
// A Server keeps one state per folder some session has selected: its UIDs
// in order, from which every session's sequence numbers derive, and
// go-imap's MailboxTracker, which queues each change for each session to
// report when IMAP allows it. Changes reach it through the UserDB's
// Watcher, in commit order, whoever made them (this server's sessions,
// SMTP delivery, anything else), and the event's Origin tells a session
// its own flag changes, whose FETCH responses it writes itself. Folders
// opened with EXAMINE refuse STORE, EXPUNGE and MOVE, which go-imap does
// not stop, and reading them does not set \Seen.
//
// # Messages
//
// Summarize computes, once per delivered or appended message, the
// ENVELOPE and BODYSTRUCTURE that go-imap's imapserver.ExtractEnvelope and
// imapserver.ExtractBodyStructure would, streaming the body, and encodes
// them compactly for userdata.NewMessage's Envelope and Structure fields.
// DecodeEnvelope and DecodeStructure turn the cached bytes back into
// go-imap values, so FETCH ENVELOPE and FETCH BODYSTRUCTURE never re-parse
// a body (a message without a summary is parsed instead). BODY[] and its
// partial ranges stream from the store; other sections are cut out of the
// body by go-imap. SEARCH (RFC 3501 and RFC 9051 keys) is compiled once per
// command, matches flags, dates, sizes and numbers from the index and opens
// a body only for a key on the header or the text, reading and decoding it
// once for all the keys, streaming it; a search of more than 4,000 keys or
// nested more than 100 levels deep is refused with BAD, and a search whose
// client hangs up stops.
//
// # Not yet
//
// go-imap v2.0.0-beta.8 has no CONDSTORE, QRESYNC, QUOTA or ID on the
// server side. The index already keeps a MODSEQ per message and per
// folder and a change log with expunge tombstones (userdata.Index.Changes),
// which is what CONDSTORE's FETCH (CHANGEDSINCE), STORE (UNCHANGEDSINCE,
// already passed through) and QRESYNC's VANISHED need; QUOTA can report
// userdata.Usage against userdata.Limits.
package imap
