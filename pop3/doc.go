// Package pop3 is the POP3 server of mailsys, over a UserDB (userdata) and
// a message store (msstore). The maildrop is the user's INBOX.
//
// It implements:
//
//   - RFC 1939: USER/PASS, STAT, LIST, RETR, DELE, NOOP, RSET, QUIT and the
//     UPDATE state, TOP and UIDL. APOP is not offered: it needs the
//     password in clear on the server, and the UserDB keeps only hashes.
//   - RFC 2449: CAPA, with TOP, UIDL, USER, SASL PLAIN, STLS, RESP-CODES,
//     PIPELINING and IMPLEMENTATION, and the response codes [IN-USE] and
//     [SYS/TEMP].
//   - RFC 3206: AUTH-RESP-CODE; a login refused for its credentials says
//     [AUTH], one refused by the lockout after repeated failures
//     [SYS/TEMP] (the password may well be right), and so does one the
//     UserDB had no capacity to check (userdata.ErrBusy), which is not
//     counted as a failure.
//   - RFC 2595: STLS; and RFC 8314's implicit TLS through ServeTLS.
//   - RFC 5034: AUTH PLAIN (RFC 4616), with an initial response or after a
//     "+ " continuation; "*" cancels.
//
// Plain-text passwords (USER/PASS, AUTH PLAIN) are refused on a
// connection without TLS unless Config.InsecureAuth is set, and are not
// advertised in CAPA then.
//
// # Sessions and the maildrop lock
//
// A session sees a snapshot of the INBOX taken at login: messages 1 to n in
// UID order, with the sizes the index holds (the stored bodies' sizes, CRLF
// line endings included). Mail that arrives later waits for the next
// session. IMAP sessions on the same mailbox go on working meanwhile: a
// message they expunge stays in the snapshot, and RETR of it fails with
// -ERR once its body is gone. The unique ids of UIDL are
// "UIDVALIDITY.UID", stable across sessions and restarts.
//
// One POP3 session at a time holds a user's maildrop; a second login gets
// -ERR [IN-USE] until the first ends. The lock is kept in the Server, in
// memory: it covers every listener the Server serves, but not other
// processes or nodes, so a cluster must route all of a user's POP3
// connections to one node.
//
// # The UPDATE state
//
// DELE only marks a message. At QUIT the marked messages are removed from
// the INBOX in one atomic, durable step (userdata.Remover: exactly those
// UIDs, whatever their flags, so messages an IMAP session flagged \Deleted
// stay unless this session deleted them too), and +OK is sent only once
// the removal is committed. A connection that ends without QUIT, or a crash
// before the commit, deletes nothing; after +OK nothing deleted comes
// back.
//
// # Limits
//
// A command line may be 1024 octets long (RFC 2449 allows 255; longer
// lines get -ERR and are skipped); ten -ERR replies in a row end the
// session. Every deadline is fixed when it starts, so a client that
// trickles bytes cannot extend it:
//
//   - a connection must have logged in, TLS handshake included, within
//     Config.LoginTimeout of connecting (60 s);
//   - after login, each command line must have arrived whole within
//     Config.CommandTimeout of when the server began waiting for it (10
//     minutes, RFC 1939's autologout timer); past it the connection is
//     closed without a reply;
//   - a session lasts at most Config.MaxSession from connecting (1 hour),
//     however busy it keeps itself: then its next command is answered
//     -ERR and the connection closed, or a reply still being sent is cut
//     off;
//   - each write to the client must be done within Config.WriteTimeout (1
//     minute), so a client that stops reading its replies is dropped.
//
// A session closed by any of these does not enter the UPDATE state:
// nothing it marked is deleted, and its maildrop is free again.
//
// Config.Guard decides on each connection as it is accepted, before the
// greeting and before TLS, under the listener name "pop3" (Serve) or
// "pop3s" (ServeTLS): its allow and deny lists and its bounds on
// connections open at once. A refused client on a plain listener is sent
// "-ERR [SYS/TEMP] Too many connections, try again later" and closed; on
// an implicit-TLS listener it is closed without a word, before any
// handshake. The Guard's lockout applies to every login, and a failed
// login is answered only after the delay the Guard asks for (its
// slow-down of an account under attack), or not at all if the
// connection's login timeout or Shutdown comes first. Every login attempt
// (USER and PASS, AUTH PLAIN, APOP, which is refused) is logged as one
// line "login" with the user, the client's address, the mechanism, tls
// and the result: ok, failed, locked out, busy, in use or error. User
// names that clients typed are logged cut to 256 bytes.
//
// Message bodies are streamed from the store to the client, never held
// whole in memory.
package pop3
