// Package mta is the SMTP side of mailsys: receiving (the MX role),
// submission, and local delivery. This first part is local delivery: the
// Deliverer takes the transactions of a txlog.Log to the end of "a
// delivery, end to end" (DESIGN.md): the body stored once in msstore, with
// one reference per local recipient; an index entry in each recipient's
// INBOX; the transaction done. Each step is recorded in the log, so a crash
// at any point is finished by Recover without a duplicate or a leaked body.
//
// The SMTP listeners (github.com/emersion/go-smtp) arrive next; they call
// txlog.Log.Accept at the end of DATA, answer 250 when it returns, and hand
// the transaction to Deliver.
package mta
