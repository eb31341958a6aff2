// Package mta is the SMTP side of mailsys: receiving (the MX role),
// submission, and local delivery, on github.com/emersion/go-smtp.
//
// NewInbound is the MX listener: mail for local domains and aliases only
// (never a relay), limits on size, recipients and lines, timeouts, the
// extensions PIPELINING, 8BITMIME, SMTPUTF8, ENHANCEDSTATUSCODES, STARTTLS,
// CHUNKING and DSN; a non-ASCII address in a transaction whose MAIL lacks
// the SMTPUTF8 parameter is refused with 553 5.6.7 (RFC 6531 §3.5). The
// DSN parameters (RFC 3461: RET and ENVID of MAIL, NOTIFY and ORCPT of
// RCPT) are kept in the transaction's txlog.Envelope, for the outbound
// queue and its bounces; a value RFC 3461 forbids that go-smtp lets
// through (an ENVID or ORCPT too long, an ORCPT address with a control
// character) is refused with 501 5.5.4. At the end of DATA (or the last
// BDAT) a Verifier, if configured, checks the message's origin (SPF,
// DKIM, DMARC) and an Authentication-Results field forged with this
// host's name is taken out; then it calls the TxLog's Accept (txlog.Log's)
// and answers 250 only once the transaction is durable; a full disk is a
// 452 4.3.1. NewSubmission adds authentication (PLAIN, and LOGIN, whose
// server side is here), offered only over TLS, and checks that the
// envelope sender is the user's own address; it takes recipients of other
// domains, for the outbound queue, when the Deliverer has a Relay, and
// refuses them with 550 5.7.1 when not. A Guard (allow and deny lists,
// connections per address, login lockout) and a Filter (reject, file into
// Junk, add headers) are shared by the listeners.
//
// The Deliverer takes each transaction to the end of "a delivery, end to
// end" (docs/architecture.md): the body stored once in msstore, with one reference per
// local recipient, recorded in the log, a Return-Path field naming the
// envelope sender on top (RFC 5321 §4.4) in place of any the client sent;
// an index entry in each recipient's INBOX (found again by its Ref on a
// replay, so never made twice); the transaction done. Recover finishes
// what a crash left, without a duplicate or a leaked body; a delivery that
// fails while running is retried with a backoff.
//
// # Logs
//
// The listeners log with the attributes component=mta and listener=smtp
// or submission, each once per record. Every accepted message is one
// Info line "message accepted": its id (the Received field's), txn (the
// transaction, which the delivery's lines name), from, to, size (as the
// client sent it), remote, tls, and user after AUTH. Every login attempt
// on a submission listener is one line "login": user, remote, mechanism
// and result (ok, failed, locked out, busy, error). A client that goes
// away or times out in the middle of a message is logged as information;
// errors are the server's own failures.
package mta
