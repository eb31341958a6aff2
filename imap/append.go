package imap

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"io"
	"strings"
	"time"

	goimap "github.com/emersion/go-imap/v2"
	gomessage "github.com/emersion/go-message"
	"github.com/emersion/go-message/textproto"

	"github.com/mailsys/mailsys/msstore"
	"github.com/mailsys/mailsys/userdata"
)

// Append implements imapserver.Session. The message streams into the
// store while its ENVELOPE and BODYSTRUCTURE are worked out, then goes
// into the index within the user's quota. Its parts in the binary
// transfer encoding are stored in base64 (see encodeBinaryParts), so what
// is stored, and so RFC822.SIZE, BODY[] and BODYSTRUCTURE, is that.
//
// go-imap reads the message whether it came as a literal or, with
// BINARY's "~", as a literal8 (RFC 3516 section 4.3, RFC 9051's
// append-data) and does not say which; either way the message is treated
// alike.
func (s *session) Append(mailbox string, r goimap.LiteralReader, options *goimap.AppendOptions) (*goimap.AppendData, error) {
	defer s.took("APPEND", time.Now())
	f, err := s.folder(mailbox)
	if errors.Is(err, userdata.ErrNotFound) {
		return nil, errTryCreate
	}
	if err != nil {
		return nil, s.fail("append", err)
	}
	if int64(s.AppendLimit()) < r.Size() {
		return nil, &goimap.Error{Type: goimap.StatusResponseTypeNo, Code: goimap.ResponseCodeTooBig, Text: "Message too big"}
	}
	bits, kws, err := indexFlags(options.Flags)
	if err != nil {
		return nil, err
	}
	date := options.Time
	if date.IsZero() {
		date = time.Now()
	}
	nm, err := s.putAppended(&wholeLiteral{r: r, left: r.Size()}, msstore.Meta{Received: date, Owners: []msstore.Owner{{User: s.user.Address, Mailbox: f.Name}}})
	if err != nil {
		return nil, s.fail("append", err)
	}
	nm.InternalDate, nm.Flags, nm.Keywords = date, bits, kws
	m, err := s.srv.users.Append(s.ctx(), s.user.ID, f.ID, nm)
	if err != nil {
		if rerr := s.srv.store.Release(s.ctx(), nm.Ref); rerr != nil {
			s.srv.log.Error("append: giving back a body", "ref", nm.Ref, "err", rerr)
		}
		return nil, s.fail("append", err)
	}
	return &goimap.AppendData{UID: goimap.UID(m.UID), UIDValidity: f.UIDValidity}, nil
}

// putAppended stores an appended message, read from r, as put does, with
// its binary parts re-encoded on the way. r is not read after it returns.
func (s *session) putAppended(r io.Reader, meta msstore.Meta) (userdata.NewMessage, error) {
	pr, pw := io.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		pw.CloseWithError(encodeBinaryParts(pw, r))
	}()
	nm, err := s.put(pr, meta)
	// If the store stopped early, the encoder's next write fails; wait
	// for it, so that nothing reads r once go-imap drains it.
	pr.CloseWithError(errors.New("imap: append: store done"))
	<-done
	return nm, err
}

// put stores a message and summarizes it on the way.
func (s *session) put(r io.Reader, meta msstore.Meta) (userdata.NewMessage, error) {
	pr, pw := io.Pipe()
	type summary struct {
		env, bs []byte
		err     error
	}
	done := make(chan summary, 1)
	go func() {
		env, bs, err := Summarize(pr)
		io.Copy(io.Discard, pr) // whatever the parser left
		done <- summary{env, bs, err}
	}()
	ref, err := s.srv.store.Put(s.ctx(), io.TeeReader(r, pw), meta)
	pw.CloseWithError(err)
	sum := <-done
	if err != nil {
		return userdata.NewMessage{}, err
	}
	nm := userdata.NewMessage{Ref: ref, Size: ref.Size}
	if sum.err == nil {
		nm.Envelope, nm.Structure = sum.env, sum.bs
	}
	return nm, nil
}

// wholeLiteral reads a literal and fails with io.ErrUnexpectedEOF if the
// connection ends before all of it came: a cut APPEND stores nothing.
type wholeLiteral struct {
	r    io.Reader
	left int64
}

func (l *wholeLiteral) Read(p []byte) (int, error) {
	n, err := l.r.Read(p)
	l.left -= int64(n)
	if err == io.EOF && l.left > 0 {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

// encodeBinaryParts copies the message read from r to w, with every
// leaf part whose Content-Transfer-Encoding is binary (RFC 2045 section
// 6.2) re-encoded in base64, its header field saying so, as Dovecot does
// with what a client appends: such a part may hold NUL and lines of any
// length, which an IMAP literal and a 7bit or 8bit BODY[] must not (RFC
// 3501 section 4.3), while BINARY[part] undoes the base64 and gives the
// client its bytes back (RFC 3516). Every binary part is re-encoded,
// whatever it holds, so that nothing need be looked at twice. Everything
// else, down to its line endings, is copied as it is; a message/rfc822 or
// multipart part is walked into, up to maxDepth levels, whatever its own
// encoding says. NUL in a part not declared binary is copied too: it is
// not the server's to relabel.
//
// The body streams through: a part is read a line (or 64 KiB of a longer
// one) at a time. Header sections are held while they are read, so the
// APPEND size limit bounds the memory, as it does for Summarize.
func encodeBinaryParts(w io.Writer, r io.Reader) error {
	bw := bufio.NewWriterSize(w, 32<<10)
	c := &partCopier{r: bufio.NewReaderSize(r, 64<<10), w: bw}
	c.entity(nil, 1)
	if c.err != nil && c.err != io.EOF {
		return c.err
	}
	return bw.Flush()
}

// partCopier walks a MIME message, copying it. The first error sticks
// and ends the walk; io.EOF is the end of the message.
type partCopier struct {
	r   *bufio.Reader
	w   *bufio.Writer
	err error
	buf []byte // the line that ended the entity being walked, copied
}

// line reads the next line with its line break, or the next 64 KiB of a
// longer one (full), valid until the next read. At the end it returns
// what is left and sets c.err.
func (c *partCopier) line() (line []byte, full bool) {
	if c.err != nil {
		return nil, false
	}
	line, err := c.r.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		return line, true
	}
	if err != nil {
		c.err = err
	}
	return line, false
}

func (c *partCopier) write(b []byte) {
	if c.err == nil || c.err == io.EOF {
		if _, err := c.w.Write(b); err != nil {
			c.err = err
		}
	}
}

// delimiter reports whether line, read at the start of a line, is a
// delimiter line of one of the boundaries bounds (RFC 2046 section
// 5.1.1): "--" boundary, then white space or "--" (the close delimiter).
// It returns the index of the innermost boundary it matches.
func delimiter(line []byte, bounds []string) (int, bool) {
	if len(line) < 2 || line[0] != '-' || line[1] != '-' {
		return 0, false
	}
	for i := len(bounds) - 1; i >= 0; i-- {
		rest, ok := bytes.CutPrefix(line[2:], []byte(bounds[i]))
		if !ok {
			continue
		}
		if bytes.HasPrefix(rest, []byte("--")) || len(bytes.Trim(rest, " \t\r\n")) == 0 {
			return i, true
		}
	}
	return 0, false
}

// entity copies one entity, the message itself at depth 1: its header,
// then its body, up to the end of the message or a delimiter line of one
// of bounds, the boundaries of the multiparts it is in. It returns that
// line, not copied yet, or nil at the end.
func (c *partCopier) entity(bounds []string, depth int) []byte {
	var header bytes.Buffer
	start := true
	for {
		line, full := c.line()
		if start {
			if _, ok := delimiter(line, bounds); ok {
				c.write(header.Bytes()) // a header without a body
				return c.keep(line)
			}
		}
		header.Write(line)
		if start && (string(line) == "\r\n" || string(line) == "\n") || c.err != nil {
			break
		}
		start = !full
	}
	h, _ := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(header.Bytes())))
	mh := gomessage.Header{Header: h}
	mediaType, params, _ := mh.ContentType()
	switch {
	case depth >= maxDepth:
	case strings.HasPrefix(mediaType, "multipart/") && params["boundary"] != "":
		c.write(header.Bytes())
		return c.multipart(append(bounds[:len(bounds):len(bounds)], params["boundary"]), depth)
	case mediaType == "message/rfc822" || mediaType == "message/global":
		c.write(header.Bytes())
		return c.entity(bounds, depth+1)
	case isBinaryCTE(mh.Get("Content-Transfer-Encoding")):
		c.write(relabelBase64(header.Bytes()))
		return c.base64Body(bounds)
	}
	c.write(header.Bytes())
	return c.copyBody(bounds)
}

// keep copies line into c.buf, past the next read.
func (c *partCopier) keep(line []byte) []byte {
	c.buf = append(c.buf[:0], line...)
	return c.buf
}

// multipart copies a multipart body whose boundary is the last of bounds:
// preamble, parts, epilogue. It returns as entity does.
func (c *partCopier) multipart(bounds []string, depth int) []byte {
	own := len(bounds) - 1
	stop := c.copyBody(bounds)
	for stop != nil {
		i, _ := delimiter(stop, bounds)
		if i != own {
			return stop // an outer multipart's
		}
		c.write(stop)
		if bytes.HasPrefix(stop[2+len(bounds[own]):], []byte("--")) {
			return c.copyBody(bounds[:own]) // the epilogue
		}
		stop = c.entity(bounds, depth+1)
	}
	return nil
}

// copyBody copies lines up to the end or a delimiter line of bounds,
// which it returns as entity does.
func (c *partCopier) copyBody(bounds []string) []byte {
	start := true
	for {
		line, full := c.line()
		if start {
			if _, ok := delimiter(line, bounds); ok {
				return c.keep(line)
			}
		}
		c.write(line)
		if c.err != nil {
			return nil
		}
		start = !full
	}
}

// base64Body copies a body in base64, up to the end or a delimiter line
// of bounds, which it returns as entity does. The line break before the
// delimiter is the delimiter's (RFC 2046 section 5.1.1), not the body's:
// it is held back from the encoder until the next line shows which.
func (c *partCopier) base64Body(bounds []string) []byte {
	lw := &lineWrapper{w: c.w}
	enc := base64.NewEncoder(base64.StdEncoding, lw)
	var held [2]byte
	nheld := 0
	start := true
	for {
		line, full := c.line()
		if start {
			if _, ok := delimiter(line, bounds); ok {
				c.close(enc, lw)
				c.write(held[:nheld])
				return c.keep(line)
			}
		}
		// The line break at the end of what has come, perhaps a CR held
		// from the previous piece and this LF.
		n, brk := len(line), 0
		switch {
		case n > 0 && line[n-1] == '\n' && (n > 1 && line[n-2] == '\r' || n == 1 && nheld == 1 && held[0] == '\r'):
			brk = 2
		case n > 0 && (line[n-1] == '\n' || line[n-1] == '\r'):
			brk = 1
		}
		if brk > n { // "\r" held, "\n" read
			held[1], nheld = '\n', 2
		} else {
			enc.Write(held[:nheld])
			enc.Write(line[:n-brk])
			nheld = copy(held[:], line[n-brk:])
		}
		if lw.err != nil && (c.err == nil || c.err == io.EOF) {
			c.err = lw.err
		}
		if c.err != nil {
			enc.Write(held[:nheld]) // at the end, the body's own
			c.close(enc, lw)
			c.write([]byte("\r\n"))
			return nil
		}
		start = !full && n > 0 && line[n-1] == '\n'
	}
}

// close ends a base64 encoder writing to lw, keeping lw's error.
func (c *partCopier) close(enc io.WriteCloser, lw *lineWrapper) {
	enc.Close()
	if lw.err != nil && (c.err == nil || c.err == io.EOF) {
		c.err = lw.err
	}
}

// lineWrapper breaks base64 text into lines of 76 characters (RFC 2045
// section 6.8), CRLF between them and none after the last.
type lineWrapper struct {
	w   io.Writer
	n   int // characters on the current line
	err error
}

func (lw *lineWrapper) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 && lw.err == nil {
		if lw.n == 76 {
			_, lw.err = io.WriteString(lw.w, "\r\n")
			lw.n = 0
			continue
		}
		k := min(len(p), 76-lw.n)
		_, lw.err = lw.w.Write(p[:k])
		lw.n += k
		written += k
		p = p[k:]
	}
	return written, lw.err
}

// isBinaryCTE reports whether a Content-Transfer-Encoding value is
// binary, in any case, a comment after it allowed.
func isBinaryCTE(v string) bool {
	v = strings.TrimSpace(v)
	if i := strings.IndexAny(v, " \t("); i >= 0 {
		v = v[:i]
	}
	return strings.EqualFold(v, "binary")
}

// relabelBase64 returns a header section with its
// Content-Transfer-Encoding fields, continuation lines and all, replaced
// by one saying base64, where the first was, ending as it ended.
func relabelBase64(header []byte) []byte {
	out := make([]byte, 0, len(header)+8)
	skipping, done := false, false
	for rest := header; len(rest) > 0; {
		line := rest
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			line = rest[:i+1]
		}
		rest = rest[len(line):]
		if len(line) > 0 && (line[0] == ' ' || line[0] == '\t') {
			if !skipping {
				out = append(out, line...)
			}
			continue
		}
		name, _, ok := bytes.Cut(line, []byte(":"))
		skipping = ok && strings.EqualFold(string(bytes.TrimSpace(name)), "Content-Transfer-Encoding")
		if !skipping {
			out = append(out, line...)
			continue
		}
		if !done {
			done = true
			eol := "\r\n"
			if !bytes.HasSuffix(line, []byte("\r\n")) {
				eol = "\n"
			}
			out = append(out, "Content-Transfer-Encoding: base64"+eol...)
		}
	}
	return out
}
