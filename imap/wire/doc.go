// Package wire is the IMAP protocol's wire format for a server: a Reader
// that parses client commands (RFC 9051, RFC 3501 and the extensions
// mailsys serves) into typed arguments, and a Writer that encodes
// responses.
//
// # Reading
//
// A Reader parses one command at a time from a bufio.Reader with the
// limits of its Limits, enforced while it reads: the length of a command
// outside its literals, the size of each literal and of all of them, the
// nesting of parenthesized lists and the ranges of a sequence set. A
// command that breaks the grammar or a limit is an *Error (a BAD or NO
// for its tag, its text naming what was wrong) after which the stream is
// at the next command: the rest of the command has been read and dropped,
// non-synchronizing literals included, up to Limits.MaxDiscard bytes. Any
// other error (the connection's, or more to drop than MaxDiscard) is
// fatal: the server answers BYE if it can and closes.
//
// A synchronizing literal ({n}) is announced to the Continuer, which
// writes the "+" continuation, before the Reader waits for its bytes; one
// over its limit is refused instead (the client then abandons the
// command). An APPEND's messages are not read with the command: ReadCommand
// returns the mailbox, and NextAppend returns each message with a Body
// that streams its literal from the connection.
//
// Mailbox names are decoded from modified UTF-7 (DecodeMailbox), or taken
// as UTF-8 once SetUTF8 has been called (after ENABLE UTF8=ACCEPT or
// IMAP4rev2); INBOX in any case is "INBOX".
//
// # Writing
//
// A Writer buffers responses and writes them in blocks: nothing reaches
// the connection before Flush (or a full buffer), so a command's many
// responses cost a few writes. Strings are written quoted or as literals
// as their bytes require, literals stream from an io.Reader, and FETCH
// responses are built item by item.
//
// The Writer spaces a response's elements itself (one SP between two,
// none after "(" or at the start of a line), so callers write elements in
// order and cannot double or drop a space. In UTF-8 mode (SetUTF8, after
// ENABLE UTF8=ACCEPT or with IMAP4rev2) valid UTF-8 may be quoted and
// mailbox names go out as UTF-8, else as modified UTF-7 (EncodeMailbox).
// A literal whose source fails or ends early is padded to its announced
// size, so that the stream stays in step, and reported: the client got
// wrong bytes and the server should say BYE. The underlying writer's
// first error is kept and stops all writing after it.
package wire
