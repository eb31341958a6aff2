// Package imap is the IMAP front module of mailsys: an IMAP4rev1 and
// IMAP4rev2 server, built on github.com/emersion/go-imap/v2's imapserver,
// over the few methods of a user database it names in its own UserDB
// (logins, folders, the message index, the watch on changes; satisfied by
// *userdata.DB) and of a message store in Bodies (msstore.Storage).
//
// NewServer makes a Server from a Config it validates; Serve and ServeTLS
// run it on listeners (STARTTLS, and implicit TLS for port 993); Shutdown
// says BYE to every session and cancels the backend calls still running
// when its context ends, Close drops every connection at once. Besides what go-imap provides itself it advertises NAMESPACE,
// UIDPLUS, ESEARCH, SEARCHRES, LIST-EXTENDED, LIST-STATUS, MOVE,
// STATUS=SIZE, CHILDREN, SPECIAL-USE, CREATE-SPECIAL-USE,
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
// in order, and one view per session of the messages its client knows,
// which lags the server's by the changes the client has not been told of
// yet. Changes reach it through the UserDB's Watcher, in commit order,
// whoever made them (this server's sessions, SMTP delivery, anything
// else), and are queued on every view by UID, to be numbered when they
// are told: EXISTS, FLAGS and FETCH go out after any command, EXPUNGE
// only where RFC 3501 7.4.1 allows it (not during FETCH, STORE or
// SEARCH). A message another session expunged stays addressable, and its
// body readable (userdata.FolderEvent.Hold), until the client has been
// told; a UserDB that cannot hold bodies gets NO [EXPUNGEISSUED] instead.
// A STORE without .SILENT is answered through the view too. Folders
// opened with EXAMINE refuse STORE, EXPUNGE and MOVE, which go-imap does
// not stop, and reading them does not set \Seen. COPY and MOVE may name
// the selected folder itself.
//
// SELECT lists the folder's keywords (userdata.KeywordLister) in FLAGS and
// PERMANENTFLAGS, with \* until the folder holds
// userdata.MaxFolderKeywords; a keyword first used by STORE, APPEND, COPY
// or MOVE is announced with FLAGS to every session on the folder before
// any FETCH that shows it. IMAP4rev1's \Recent is kept
// (userdata.RecentClaimer): the first read-write session to select a
// folder claims the messages that came since the last claim, messages
// that come while it is selected are recent in the first read-write
// session there, and EXAMINE sees them without claiming them; SELECT
// reports RECENT and UNSEEN, EXISTS is followed by RECENT, and FLAGS,
// SEARCH RECENT/NEW/OLD and STATUS RECENT follow. IMAP4rev2 sessions see
// none of it.
//
// # Messages
//
// Summarize computes, once per delivered or appended message, its
// ENVELOPE and BODYSTRUCTURE, streaming the body, and encodes them
// compactly for userdata.NewMessage's Envelope and Structure fields. The
// address fields are parsed here (RFC 5322 with its obsolete syntax:
// groups, with RFC 3501's group markers, comments, routes, which are
// dropped), and the subject, display names, message-id and in-reply-to
// are the header's own text, encoded words as sent; the References
// field's message ids are kept beside the envelope for threading
// (DecodeThreading). DecodeEnvelope and DecodeStructure turn the cached
// bytes back into go-imap values, so FETCH
// ENVELOPE and FETCH BODYSTRUCTURE never re-parse a body (a message
// without a summary is parsed instead; OutdatedSummary finds the summaries
// made by older versions). BODY[] and its partial ranges stream from the
// store; other sections are cut out of the body by go-imap. APPEND stores
// a part sent with Content-Transfer-Encoding binary in base64, so that
// BODY[] never holds a NUL; BINARY[...] (RFC 3516) decodes it, and any
// other part, back to its bytes, and answers NO [UNKNOWN-CTE] for an
// encoding it does not know. SEARCH (RFC 3501 and RFC 9051 keys) is compiled once per
// command, matches flags, dates, sizes and numbers from the index and opens
// a body only for a key on the header or the text, reading and decoding it
// once for all the keys, streaming it; a search of more than 4,000 keys or
// nested more than 100 levels deep is refused with BAD, and a search whose
// client hangs up stops.
//
// # Not yet
//
// go-imap v2.0.0-beta.8 has no CONDSTORE, QRESYNC, QUOTA or ID on the
// server side: it parses neither STORE's UNCHANGEDSINCE nor SEARCH's
// MODSEQ, so neither reaches this package. The index already keeps a
// MODSEQ per message and per folder, UnchangedSince in
// userdata.FlagUpdate, and a change log with expunge tombstones
// (userdata.Index.Changes), which is what CONDSTORE's FETCH
// (CHANGEDSINCE), STORE (UNCHANGEDSINCE) and QRESYNC's VANISHED need;
// QUOTA can report userdata.Usage against userdata.Limits.
//
// # Known departures
//
// What go-imap v2.0.0-beta.8 decides before this package sees a command,
// or cannot write:
//
//   - A partial BINARY[...]<o.l> fetch cannot be answered (go-imap's writer
//     has no <origin>): it is refused with NO [CANNOT], and BINARY is not
//     advertised, although IMAP4rev2, which includes it, is.
//   - ENVELOPE addresses have no route (adl): go-imap always writes NIL.
//   - A non-ASCII subject or display name is written as MIME encoded
//     words even after ENABLE UTF8=ACCEPT (RFC 6855 3 wants it raw).
//   - After ENABLE UTF8=ACCEPT (or IMAP4rev2) go-imap still decodes
//     "&...-" in mailbox names and LIST patterns as modified UTF-7
//     ("x&AOQ-" is taken as "xä"), answers a name whose "&" starts no
//     valid modified UTF-7 ("R&D") NO [SERVERBUG] itself, and sends "&"
//     as "&-", where RFC 6855 wants UTF-8 with a literal "&" both ways.
//     (Before it, a name or pattern that is not modified UTF-7, quoted,
//     atom or literal, and at any time one with a control character or,
//     after it, one not UTF-8, is answered BAD by the command reader
//     before go-imap decodes it.)
//   - LIST "" ("") is refused with BAD.
//   - LSUB is told from LIST only by an unexported field of go-imap's
//     ListWriter, read by reflection (TestSubscriptions notices if it
//     goes).
package imap
