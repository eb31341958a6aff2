// Package wire is the IMAP protocol's wire format for a server: a Reader
// that parses client commands (RFC 9051, RFC 3501 and the extensions
// mailsys serves) into typed arguments, and a Writer that encodes
// responses.
//
// # Reading
//
// A Reader parses one command at a time from a bufio.Reader (ReadCommand)
// into a Command whose Args are typed by the command's grammar, in
// go-imap's vocabulary where it has the words (goimap.SeqSet and UIDSet,
// SearchCriteria, FetchOptions, StoreFlags, ListOptions, StatusOptions...)
// and the package's own where it has not (QResync, SortKey, the FETCH
// VANISHED modifier, the RFC822 items' names).
//
// Limits are enforced while the Reader reads, never after: the length of
// a command outside its literals (MaxLine), the size of a literal
// (MaxLiteral) and of all of a command's literals, the nesting of
// parenthesized lists and NOT/OR (MaxNesting), the ranges of a
// sequence set (MaxSetRanges) and the keys of a search (MaxSearchKeys). The memory a command takes is bounded by
// them whatever the client sends. A command that breaks the grammar or a
// limit is an *Error, a BAD (or NO [TOOBIG] for a literal over its limit)
// for its tag whose text names what was expected ("Expected SP after the
// mailbox name, got the end of the line"); the rest of the command has
// then been read and dropped, its non-synchronizing literals included, so
// that the stream is at the next command. Dropping is bounded too, by
// DiscardLimit a command: past it, and on any other error (the
// connection's, a Continuer's), the error is fatal and the server answers
// BYE if it can and closes.
//
// Literals (RFC 9051 section 4.3): a synchronizing one ({n}) within its
// limit is accepted through the Continuer ("+ Ready") before the Reader
// waits for its bytes; one over it is refused through the Continuer
// (the tagged NO), the client abandons the command, and ReadCommand goes
// on with the next one. Non-synchronizing ones ({n+}, LITERAL+, and {n-},
// LITERAL- up to 4096 bytes, RFC 7888) over their limit are read and
// dropped. The Reader never looks ahead past what a client sends before
// it waits for a continuation.
//
// An APPEND's messages (literal, literal8 ~{n} of RFC 3516, UTF8 (~{n}) of
// RFC 6855, several with MULTIAPPEND) are not read with the command:
// ReadCommand returns the mailbox, and NextAppend returns each message in
// turn, its Body streaming the literal from the connection; AppendLimit
// bounds it (APPENDLIMIT, RFC 7889). AUTHENTICATE's and IDLE's lines are
// read with ReadAuthLine and ReadIdleDone.
//
// Mailbox names are decoded from modified UTF-7 (DecodeMailbox, strict:
// anything an encoder would not write is refused), or taken as UTF-8 once
// SetUTF8 has been called (after ENABLE UTF8=ACCEPT or IMAP4rev2); INBOX
// in any case is "INBOX". Quoted strings may hold 8-bit bytes only in
// UTF-8 mode, and never CR, LF or NUL.
//
// The grammar read is RFC 9051's and RFC 3501's, with CONDSTORE and
// QRESYNC (RFC 7162), QUOTA (RFC 9208), SORT and THREAD (RFC 5256),
// ESORT (RFC 5267), DISPLAYFROM/DISPLAYTO (RFC 5957), COMPRESS (RFC 4978),
// MULTIAPPEND (RFC 3502), ID (RFC 2971), LIST-EXTENDED (RFC 5258),
// LIST-STATUS (RFC 5819), ESEARCH (RFC 4731), SEARCHRES (RFC 5182),
// UTF8=ACCEPT (RFC 6855), ENABLE (RFC 5161), MOVE (RFC 6851), UIDPLUS
// (RFC 4315), IDLE (RFC 2177), SASL-IR (RFC 4959), SPECIAL-USE (RFC 6154),
// BINARY (RFC 3516), LITERAL+ and LITERAL- (RFC 7888), APPENDLIMIT
// (RFC 7889).
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
