package wire

import (
	"bufio"
	"errors"
	"io"
	"strconv"
	"time"
	"unicode/utf8"

	goimap "github.com/emersion/go-imap/v2"
)

// Writer writes server responses into a buffer that reaches the
// connection on Flush or when full. Its methods record the first write
// error and do nothing after it; Flush and Err return it. It is not safe
// for concurrent use.
//
// Elements of a response are separated by the caller with SP, or by the
// list methods (BeginList, EndList, and the typed ones) which put the
// spaces between their own elements.
type Writer struct {
	bw   *bufio.Writer
	w    io.Writer
	utf8 bool
	err  error
	// first is set right after "(" or at the start of a list's first
	// element: Elem writes no SP then.
	first bool
}

// DefaultBufferSize is the Writer's buffer, and the size of the blocks it
// writes.
const DefaultBufferSize = 64 << 10

// NewWriter returns a Writer to w with a buffer of size bytes (0 means
// DefaultBufferSize).
func NewWriter(w io.Writer, size int) *Writer {
	if size <= 0 {
		size = DefaultBufferSize
	}
	return &Writer{bw: bufio.NewWriterSize(w, size), w: w}
}

// Reset makes the Writer write to w (after STARTTLS or COMPRESS), once
// what it holds is flushed.
func (w *Writer) Reset(to io.Writer) {
	w.bw.Reset(to)
	w.w = to
}

// SetUTF8 makes strings with UTF-8 go out quoted and mailbox names in
// UTF-8 (after ENABLE UTF8=ACCEPT or IMAP4rev2).
func (w *Writer) SetUTF8(on bool) { w.utf8 = on }

// UTF8 reports whether SetUTF8 is on.
func (w *Writer) UTF8() bool { return w.utf8 }

// Flush writes what the buffer holds.
func (w *Writer) Flush() error {
	if w.err == nil {
		w.err = w.bw.Flush()
	}
	return w.err
}

// Err is the first write error.
func (w *Writer) Err() error { return w.err }

// Buffered is the number of bytes waiting for Flush.
func (w *Writer) Buffered() int { return w.bw.Buffered() }

// Raw writes s as it is.
func (w *Writer) Raw(s string) {
	if w.err == nil {
		_, w.err = w.bw.WriteString(s)
	}
	w.first = false
}

func (w *Writer) rawBytes(b []byte) {
	if w.err == nil {
		_, w.err = w.bw.Write(b)
	}
	w.first = false
}

func (w *Writer) byte1(c byte) {
	if w.err == nil {
		w.err = w.bw.WriteByte(c)
	}
	w.first = false
}

// SP writes a space.
func (w *Writer) SP() { w.byte1(' ') }

// CRLF ends a response line.
func (w *Writer) CRLF() { w.Raw("\r\n") }

// elem writes the SP before a list element but the first.
func (w *Writer) elem() {
	if !w.first {
		w.byte1(' ')
	}
	w.first = false
}

// BeginList writes "(": the next element written with an Elem method
// gets no SP before it.
func (w *Writer) BeginList() {
	w.byte1('(')
	w.first = true
}

// EndList writes ")".
func (w *Writer) EndList() { w.byte1(')') }

// Atom writes s as it is: the caller knows it is an atom.
func (w *Writer) Atom(s string) { w.Raw(s) }

// ElemAtom writes an atom as a list element.
func (w *Writer) ElemAtom(s string) {
	w.elem()
	w.Raw(s)
}

// Number writes n.
func (w *Writer) Number(n uint32) { w.Number64(uint64(n)) }

// Number64 writes n.
func (w *Writer) Number64(n uint64) {
	var buf [20]byte
	w.rawBytes(strconv.AppendUint(buf[:0], n, 10))
}

// NIL writes NIL.
func (w *Writer) NIL() { w.Raw("NIL") }

// maxQuoted is the longest string written quoted; longer ones are
// literals.
const maxQuoted = 1024

// quotable reports whether s can be a quoted string: no CR, LF or NUL,
// and, unless utf8, no 8-bit byte (with utf8, valid UTF-8).
func quotable(s string, utf8mode bool) bool {
	if len(s) > maxQuoted {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\r' || c == '\n' || c == 0:
			return false
		case c >= 0x80 && !utf8mode:
			return false
		}
	}
	return !utf8mode || utf8.ValidString(s)
}

// String writes s as a quoted string if it can be one, else as a
// literal.
func (w *Writer) String(s string) {
	if quotable(s, w.utf8) {
		w.quoted(s)
		return
	}
	w.literalString(s)
}

func (w *Writer) quoted(s string) {
	var buf [128]byte
	w.rawBytes(appendQuoted(buf[:0], s))
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

func (w *Writer) literalString(s string) {
	w.byte1('{')
	w.Number(uint32(len(s)))
	w.Raw("}\r\n")
	w.Raw(s)
}

// AString writes s as an atom if it is one (and not NIL, which would
// read as nothing), else as String does.
func (w *Writer) AString(s string) {
	if isAtomString(s) {
		w.Raw(s)
		return
	}
	w.String(s)
}

func isAtomString(s string) bool {
	if s == "" || len(s) == 3 && (s[0]|0x20) == 'n' && (s[1]|0x20) == 'i' && (s[2]|0x20) == 'l' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isAStringChar(s[i]) {
			return false
		}
	}
	return true
}

// NString writes s, or NIL for "".
func (w *Writer) NString(s string) {
	if s == "" {
		w.NIL()
		return
	}
	w.String(s)
}

// Mailbox writes a mailbox name: INBOX as an atom; in modified UTF-7
// unless UTF-8 mode; an atom when it can be one.
func (w *Writer) Mailbox(name string) {
	if !w.utf8 {
		name = EncodeMailbox(name)
	}
	w.AString(name)
}

// Literal writes a literal of size bytes read from r: "{size}" CRLF, then
// the bytes, streamed through the buffer (or, for a large one, straight
// to the connection once the buffer is flushed). If r ends early the
// literal is padded with NUL bytes to its size so that the stream stays
// in step, and the read error is returned.
func (w *Writer) Literal(size int64, r io.Reader) error {
	w.byte1('{')
	w.Number64(uint64(size))
	w.Raw("}\r\n")
	return w.literalBody(size, r)
}

// Literal8 is Literal as a literal8 ("~{size}", RFC 3516), for BINARY
// data that may hold NUL bytes.
func (w *Writer) Literal8(size int64, r io.Reader) error {
	w.Raw("~{")
	w.Number64(uint64(size))
	w.Raw("}\r\n")
	return w.literalBody(size, r)
}

func (w *Writer) literalBody(size int64, r io.Reader) error {
	w.first = false
	if w.err != nil {
		return w.err
	}
	var dst io.Writer = w.bw
	if size >= int64(w.bw.Size()) {
		// Large: what is buffered goes first, then the body straight to
		// the connection, without a copy through the buffer.
		if w.err = w.bw.Flush(); w.err != nil {
			return w.err
		}
		dst = w.w
	}
	tr := &trackReader{r: r}
	n, err := io.CopyN(dst, tr, size)
	if n == size {
		return nil
	}
	if tr.err == nil && !errors.Is(err, io.EOF) {
		w.err = err // the connection failed
		return err
	}
	// The source ended early or failed: the literal is padded to its
	// size, so that the stream stays in step.
	if _, perr := io.CopyN(dst, zeroReader{}, size-n); perr != nil {
		w.err = perr
		return perr
	}
	if tr.err != nil {
		return tr.err
	}
	return io.ErrUnexpectedEOF
}

// trackReader keeps its reader's error, other than io.EOF.
type trackReader struct {
	r   io.Reader
	err error
}

func (t *trackReader) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if err != nil && err != io.EOF && t.err == nil {
		t.err = err
	}
	return n, err
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// Flags writes a parenthesized flag list.
func (w *Writer) Flags(flags []goimap.Flag) {
	w.BeginList()
	for _, f := range flags {
		w.elem()
		w.Raw(string(f))
	}
	w.EndList()
}

// NumSet writes a sequence set or UID set; an empty one is not valid
// IMAP: the caller must not write one.
func (w *Writer) NumSet(s goimap.NumSet) {
	w.Raw(s.String())
}

// DateTime writes a quoted date-time: "dd-Mon-yyyy hh:mm:ss +zzzz", a
// one-digit day after a space.
func (w *Writer) DateTime(t time.Time) {
	var buf [32]byte
	b := append(buf[:0], '"')
	b = t.AppendFormat(b, "_2-Jan-2006 15:04:05 -0700")
	b = append(b, '"')
	w.rawBytes(b)
}
