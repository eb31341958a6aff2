package wire

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	goimap "github.com/emersion/go-imap/v2"
)

// DefaultBufferSize is the size of a Writer's buffer when NewWriter is
// given 0, and so the size of the blocks it writes.
const DefaultBufferSize = 64 << 10

// minBufferSize is the smallest buffer a Writer takes: room for any
// number, date or literal header.
const minBufferSize = 64

// maxQuoted is the longest string written as a quoted string; longer
// ones are literals.
const maxQuoted = 1024

// ErrLiteralSize is returned by Literal and Literal8 for a negative size;
// nothing is written then.
var ErrLiteralSize = errors.New("wire: negative literal size")

// Writer encodes server responses (RFC 9051 section 7, formal syntax in
// section 9) into a buffer of its own, which reaches the underlying
// io.Writer in blocks: when it is full and on Flush, never once a line.
// The server calls Flush when it has answered a command and before it
// waits for the client (a continuation request, IDLE).
//
// The Writer spaces the elements of a response: an element (Atom,
// Number, NIL, String, AString, NString, Mailbox, Literal, Flags, NumSet,
// DateTime, Date, a list) written after another gets one SP before it;
// none at the start of a line, after "(", after SP or after Raw text
// that ends in a space, "(", "[", "<" or "{". So
//
//	w.Untagged(); w.Number(3); w.Atom("EXISTS"); w.CRLF()
//
// writes "* 3 EXISTS\r\n", and an explicit SP between two elements is
// never doubled.
//
// The first error of the underlying writer is kept: every later call
// writes nothing, and Flush, Err and the methods that return an error
// report it (wrapped). A Writer is not safe for concurrent use; the
// buffer is the Writer's and is never handed out.
type Writer struct {
	w    io.Writer
	buf  []byte // what waits for the next write; cap(buf) is the size
	err  error  // the underlying writer's first error
	sp   bool   // an element ended just before: the next one gets SP
	utf8 bool

	track trackReader      // a literal's source, reused
	lim   io.LimitedReader // a literal's file, for an io.ReaderFrom
}

// NewWriter returns a Writer to w with a buffer of size bytes (0 or less
// means DefaultBufferSize; at least 64).
func NewWriter(w io.Writer, size int) *Writer {
	if size <= 0 {
		size = DefaultBufferSize
	}
	size = max(size, minBufferSize)
	return &Writer{w: w, buf: make([]byte, 0, size)}
}

// Reset flushes what is buffered to the current writer, then makes the
// Writer write to to: after STARTTLS, or once COMPRESS=DEFLATE is on (the
// tagged OK that turns it on goes first, uncompressed). It returns the
// flush's error, after which the Writer stays failed.
func (w *Writer) Reset(to io.Writer) error {
	if err := w.Flush(); err != nil {
		return err
	}
	w.w = to
	w.sp = false
	return nil
}

// SetUTF8 turns UTF-8 mode on or off. In UTF-8 mode (after ENABLE
// UTF8=ACCEPT, RFC 6855, or with IMAP4rev2) a string of valid UTF-8 may
// be quoted and mailbox names are written in UTF-8; otherwise a string
// with an 8-bit byte is a literal and mailbox names are modified UTF-7.
func (w *Writer) SetUTF8(on bool) { w.utf8 = on }

// UTF8 reports whether UTF-8 mode is on.
func (w *Writer) UTF8() bool { return w.utf8 }

// Flush writes what is buffered to the underlying writer, in one Write,
// and returns the Writer's error, if any.
func (w *Writer) Flush() error {
	w.flush()
	return w.err
}

// Err returns the underlying writer's first error, or nil.
func (w *Writer) Err() error { return w.err }

// Buffered returns the number of bytes waiting for Flush.
func (w *Writer) Buffered() int { return len(w.buf) }

// flush writes out the buffer; after an error it drops it.
func (w *Writer) flush() {
	if w.err != nil || len(w.buf) == 0 {
		w.buf = w.buf[:0]
		return
	}
	n, err := w.w.Write(w.buf)
	if err == nil && n < len(w.buf) {
		err = io.ErrShortWrite
	}
	if err != nil {
		w.err = fmt.Errorf("wire: write: %w", err)
	}
	w.buf = w.buf[:0]
}

// room makes room for n bytes (at most minBufferSize) in the buffer.
func (w *Writer) room(n int) {
	if cap(w.buf)-len(w.buf) < n {
		w.flush()
	}
}

// writeString, writeByte and writeUint write bytes without touching the
// spacing.
func (w *Writer) writeString(s string) {
	if n := len(w.buf); len(s) <= cap(w.buf)-n {
		w.buf = w.buf[:n+len(s)]
		copy(w.buf[n:], s)
		return
	}
	w.writeLong(s)
}

// writeLong writes s through as many buffers as it takes.
func (w *Writer) writeLong(s string) {
	for w.err == nil {
		n := copy(w.buf[len(w.buf):cap(w.buf)], s)
		w.buf = w.buf[:len(w.buf)+n]
		s = s[n:]
		if len(s) == 0 {
			return
		}
		w.flush()
	}
}

func (w *Writer) writeByte(c byte) {
	if len(w.buf) == cap(w.buf) {
		w.flush()
	}
	if w.err == nil {
		w.buf = append(w.buf, c)
	}
}

func (w *Writer) writeUint(n uint64) {
	if w.err != nil {
		return
	}
	w.room(20)
	w.buf = strconv.AppendUint(w.buf, n, 10)
}

// spaceAfter reports whether an element after c needs SP.
func spaceAfter(c byte) bool {
	switch c {
	case ' ', '(', '[', '<', '{', '\n':
		return false
	}
	return true
}

// Raw writes s as it is: response names, fixed text, parts of a token
// the grammar writes without spaces ("BODY[1.2]<0>"). An element after
// it gets SP unless s ends in a space, "(", "[", "<", "{" or LF. The
// caller must know that s is valid where it writes it.
func (w *Writer) Raw(s string) {
	if s == "" {
		return
	}
	w.writeString(s)
	w.sp = spaceAfter(s[len(s)-1])
}

// byte1 is Raw of one byte.
func (w *Writer) byte1(c byte) {
	w.writeByte(c)
	w.sp = spaceAfter(c)
}

// SP writes a space. The Writer spaces elements by itself; SP is for
// where the grammar wants one after Raw text, and is never doubled by
// the element that follows.
func (w *Writer) SP() {
	w.writeByte(' ')
	w.sp = false
}

// CRLF ends a response line.
func (w *Writer) CRLF() {
	w.writeString("\r\n")
	w.sp = false
}

// elem writes the SP an element needs before it, if any.
func (w *Writer) elem() {
	if w.sp {
		w.space()
	}
}

func (w *Writer) space() {
	w.writeByte(' ')
	w.sp = false
}

// BeginList writes "(" as the next element: the first element inside it
// gets no SP.
func (w *Writer) BeginList() {
	w.elem()
	w.writeByte('(')
	w.sp = false
}

// EndList writes ")", which ends the list element.
func (w *Writer) EndList() {
	w.writeByte(')')
	w.sp = true
}

// Atom writes s as it is, as an element: the caller knows it is an atom
// or another bare token of the grammar (a flag, a response or item name,
// a capability). Use AString for data that may not be an atom.
func (w *Writer) Atom(s string) {
	w.elem()
	w.writeString(s)
	w.sp = true
}

// ElemAtom is Atom (kept for the response encoders written before the
// Writer spaced elements itself).
func (w *Writer) ElemAtom(s string) { w.Atom(s) }

// Number writes n (number, nz-number).
func (w *Writer) Number(n uint32) { w.Number64(uint64(n)) }

// Number64 writes n (number64, mod-sequence-value).
func (w *Writer) Number64(n uint64) {
	w.elem()
	w.writeUint(n)
	w.sp = true
}

// NIL writes NIL.
func (w *Writer) NIL() { w.Atom("NIL") }

// String writes s as a string: quoted when it is at most 1024 bytes with
// no CR, LF or NUL and no 8-bit byte (in UTF-8 mode: valid UTF-8), with
// `"` and `\` escaped by a backslash; otherwise as a literal, "{n}" CRLF
// and the bytes. No string may hold a NUL byte (RFC 9051 CHAR8): one
// with NUL is written as a literal as it is, which the client may
// refuse; the caller should not write one.
func (w *Writer) String(s string) {
	w.elem()
	w.str(s)
	w.sp = true
}

// str writes s as String does, without spacing.
func (w *Writer) str(s string) {
	if quotable(s, w.utf8) {
		w.quotedBody(s)
	} else {
		w.literalString(s)
	}
}

// quotable reports whether s can be written as a quoted string.
func quotable(s string, utf8Mode bool) bool {
	if len(s) > maxQuoted {
		return false
	}
	ascii := true
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\r' || c == '\n' || c == 0:
			return false
		case c >= 0x80:
			if !utf8Mode {
				return false
			}
			ascii = false
		}
	}
	return ascii || utf8.ValidString(s)
}

// quoted writes s as a quoted string (the caller knows it can be one).
func (w *Writer) quoted(s string) {
	w.elem()
	w.quotedBody(s)
	w.sp = true
}

func (w *Writer) quotedBody(s string) {
	w.writeByte('"')
	for {
		i := strings.IndexAny(s, `"\`)
		if i < 0 {
			break
		}
		w.writeString(s[:i])
		w.writeByte('\\')
		w.writeByte(s[i])
		s = s[i+1:]
	}
	w.writeString(s)
	w.writeByte('"')
}

// appendQuoted appends s as a quoted string: '"' and '\' escaped.
func appendQuoted(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '"' || c == '\\' {
			b = append(b, '\\')
		}
		b = append(b, s[i])
	}
	return append(b, '"')
}

// literalString writes s as a literal.
func (w *Writer) literalString(s string) {
	w.writeByte('{')
	w.writeUint(uint64(len(s)))
	w.writeString("}\r\n")
	w.writeString(s)
}

// AString writes s as an atom when it is one of ASTRING-CHARs and would
// not read as NIL, else as String does.
func (w *Writer) AString(s string) {
	w.elem()
	w.astr(s)
	w.sp = true
}

func (w *Writer) astr(s string) {
	if isAtomString(s) {
		w.writeString(s)
	} else {
		w.str(s)
	}
}

// isAtomString reports whether s can be written as an astring's atom:
// not empty, all ASTRING-CHAR, and not "NIL" in any case (which an
// nstring would read as NIL).
func isAtomString(s string) bool {
	if s == "" || len(s) == 3 && strings.EqualFold(s, "NIL") {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isAStringChar(s[i]) {
			return false
		}
	}
	return true
}

// NString writes s as String does, or NIL for "".
func (w *Writer) NString(s string) { w.NStringOK(s, s != "") }

// NStringOK writes s as String does when ok, else NIL: for an nstring
// whose empty value is not NIL (an empty header field, an empty part).
func (w *Writer) NStringOK(s string, ok bool) {
	if !ok {
		w.NIL()
		return
	}
	w.String(s)
}

// Mailbox writes a mailbox name as an astring: INBOX (in any case) as
// the atom INBOX; any other name in modified UTF-7 (RFC 3501 section
// 5.1.3, EncodeMailbox) unless UTF-8 mode is on, in which case it is
// written in UTF-8 as it is.
func (w *Writer) Mailbox(name string) {
	w.elem()
	if len(name) == 5 && strings.EqualFold(name, "INBOX") {
		w.writeString("INBOX")
	} else {
		if !w.utf8 {
			name = EncodeMailbox(name)
		}
		w.astr(name)
	}
	w.sp = true
}

// Literal writes a literal of size bytes read from r: "{size}" CRLF and
// the bytes, streamed from r through the Writer's buffer without ever
// holding the whole, in blocks of the buffer's size. A literal larger
// than the buffer goes straight to the underlying writer once the buffer
// is flushed when r is an io.WriterTo that holds exactly size bytes (a
// bytes.Reader, strings.Reader or bytes.Buffer), or when r is an
// *os.File and the underlying writer an io.ReaderFrom (a *net.TCPConn,
// which sends a file with sendfile(2); an error then, the file's or the
// connection's, is kept as the Writer's).
//
// If r ends before size bytes or fails, the literal is padded with NUL
// bytes to its size, so that the stream stays in step, and an error is
// returned that wraps io.ErrUnexpectedEOF or r's error: the client got
// wrong bytes, and the server should end the connection (BYE). A failure
// of the underlying writer is returned too, and kept as the Writer's
// error. A negative size is ErrLiteralSize, and nothing is written.
func (w *Writer) Literal(size int64, r io.Reader) error {
	return w.literal("{", size, r)
}

// Literal8 is Literal as a literal8 ("~{size}", RFC 3516), for BINARY
// data that may hold NUL bytes.
func (w *Writer) Literal8(size int64, r io.Reader) error {
	return w.literal("~{", size, r)
}

func (w *Writer) literal(open string, size int64, r io.Reader) error {
	if size < 0 {
		return fmt.Errorf("%w: %d", ErrLiteralSize, size)
	}
	w.elem()
	w.writeString(open)
	w.writeUint(uint64(size))
	w.writeString("}\r\n")
	w.sp = true
	return w.literalBody(size, r)
}

// sizedWriterTo is a source that writes itself and knows how much it
// holds.
type sizedWriterTo interface {
	io.WriterTo
	Len() int
}

func (w *Writer) literalBody(size int64, r io.Reader) error {
	if w.err != nil || size == 0 {
		return w.err
	}
	if r == nil {
		return w.pad(size, nil)
	}
	big := size > int64(cap(w.buf))
	if wt, ok := r.(sizedWriterTo); ok && big && int64(wt.Len()) == size {
		w.flush()
		if w.err != nil {
			return w.err
		}
		n, err := wt.WriteTo(w.w)
		if err == nil && n < size {
			err = io.ErrShortWrite
		}
		if err != nil {
			w.err = fmt.Errorf("wire: write: %w", err)
		}
		return w.err
	}
	if f, ok := r.(*os.File); ok && big {
		if rf, ok := w.w.(io.ReaderFrom); ok {
			return w.literalFrom(rf, f, size)
		}
	}
	w.track = trackReader{r: r}
	defer func() { w.track.r = nil }()
	left := size
	for left > 0 && w.err == nil && w.track.err == nil {
		if len(w.buf) == cap(w.buf) {
			w.flush()
			continue
		}
		end := cap(w.buf)
		if int64(end-len(w.buf)) > left {
			end = len(w.buf) + int(left)
		}
		n, _ := w.track.Read(w.buf[len(w.buf):end])
		w.buf = w.buf[:len(w.buf)+n]
		left -= int64(n)
	}
	if w.err != nil {
		return w.err
	}
	return w.pad(left, w.track.err)
}

// literalFrom has rf read a literal's size bytes from f: a *net.TCPConn
// sends them with sendfile(2), which it does only for an
// *io.LimitedReader of an *os.File. Its error may be the file's or the
// connection's; either way the stream may be out of step, and it is kept
// as the Writer's.
func (w *Writer) literalFrom(rf io.ReaderFrom, f *os.File, size int64) error {
	w.flush()
	if w.err != nil {
		return w.err
	}
	w.lim = io.LimitedReader{R: f, N: size}
	n, err := rf.ReadFrom(&w.lim)
	w.lim.R = nil
	if err != nil {
		w.err = fmt.Errorf("wire: literal from %s: %w", f.Name(), err)
		return w.err
	}
	return w.pad(size-n, nil)
}

// pad writes n NUL bytes in place of a literal's missing bytes and
// returns why they were missing (readErr; io.EOF or nil is
// io.ErrUnexpectedEOF), or the Writer's error. With n 0 it returns nil.
func (w *Writer) pad(n int64, readErr error) error {
	if n == 0 {
		return nil
	}
	for n > 0 && w.err == nil {
		if len(w.buf) == cap(w.buf) {
			w.flush()
			continue
		}
		k := int(min(int64(cap(w.buf)-len(w.buf)), n))
		start := len(w.buf)
		w.buf = w.buf[:start+k]
		clear(w.buf[start:])
		n -= int64(k)
	}
	if w.err != nil {
		return w.err
	}
	if readErr == nil || errors.Is(readErr, io.EOF) {
		return fmt.Errorf("wire: literal source: %w", io.ErrUnexpectedEOF)
	}
	return fmt.Errorf("wire: literal source: %w", readErr)
}

// trackReader reads from r and keeps its first error (io.EOF too), after
// which it reads nothing more.
type trackReader struct {
	r   io.Reader
	err error
}

func (t *trackReader) Read(p []byte) (int, error) {
	if t.err != nil {
		return 0, t.err
	}
	n, err := t.r.Read(p)
	if err != nil {
		t.err = err
	}
	return n, err
}

// zeroReader reads NUL bytes without end.
type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// Flags writes a parenthesized list of flags (flag-list), each as it
// is.
func (w *Writer) Flags(flags []goimap.Flag) {
	w.BeginList()
	for _, f := range flags {
		w.Atom(string(f))
	}
	w.EndList()
}

// NumSet writes a sequence set or a UID set (sequence-set): its ranges
// separated by ",", 0 standing for "*". An empty set, which the grammar
// has no form for, writes nothing: the caller must not write one.
func (w *Writer) NumSet(s goimap.NumSet) {
	switch s := s.(type) {
	case goimap.SeqSet:
		if len(s) == 0 {
			return
		}
		w.elem()
		for i, r := range s {
			w.numRange(i, r.Start, r.Stop)
		}
	case goimap.UIDSet:
		if len(s) == 0 {
			return
		}
		w.elem()
		for i, r := range s {
			w.numRange(i, uint32(r.Start), uint32(r.Stop))
		}
	case nil:
		return
	default:
		str := s.String()
		if str == "" {
			return
		}
		w.elem()
		w.writeString(str)
	}
	w.sp = true
}

func (w *Writer) numRange(i int, start, stop uint32) {
	if i > 0 {
		w.writeByte(',')
	}
	w.seqNum(start)
	if stop != start {
		w.writeByte(':')
		w.seqNum(stop)
	}
}

func (w *Writer) seqNum(n uint32) {
	if n == 0 {
		w.writeByte('*')
	} else {
		w.writeUint(uint64(n))
	}
}

// DateTime writes t as a quoted date-time, "dd-Mon-yyyy hh:mm:ss +zzzz",
// a one-digit day after a space (RFC 9051 date-day-fixed). t's year must
// be 0 to 9999.
func (w *Writer) DateTime(t time.Time) {
	w.elem()
	if w.err == nil {
		w.room(minBufferSize)
		w.buf = append(w.buf, '"')
		w.buf = t.AppendFormat(w.buf, "_2-Jan-2006 15:04:05 -0700")
		w.buf = append(w.buf, '"')
	}
	w.sp = true
}

// Date writes t as a date, "d-Mon-yyyy" (RFC 9051 date-text).
func (w *Writer) Date(t time.Time) {
	w.elem()
	if w.err == nil {
		w.room(minBufferSize)
		w.buf = t.AppendFormat(w.buf, "2-Jan-2006")
	}
	w.sp = true
}
