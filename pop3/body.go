package pop3

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/mailsys/mailsys/msstore"
)

// bodyBuffer is the size of the reads of a body from the store (a whole
// number of msstore's 64 KiB checksummed chunks, each checked in place)
// and of the writes of the stuffed body to the client: big writes, few
// system calls.
const bodyBuffer = 256 << 10

// bodyBuffers holds the buffers of bodies being sent, shared by the
// sessions of all servers (they hold nothing between uses).
var bodyBuffers = sync.Pool{New: func() any { b := make([]byte, bodyBuffer); return &b }}

// sendBody answers RETR (lines < 0) or TOP (the header and lines lines of
// the body) for message n: +OK, then the body streamed from the store,
// byte-stuffed, and the terminating ".". A body that is gone (an IMAP
// session expunged the message meanwhile) gets -ERR; a body that cannot be
// read once +OK is sent ends the session, as no reply can say so then.
func (ss *session) sendBody(n int, m *message, lines int) error {
	b, err := ss.srv.store.Open(ss.srv.ctx, m.ref)
	if errors.Is(err, msstore.ErrNotFound) {
		return &reply{text: fmt.Sprintf("Message %d is no longer there", n)}
	}
	if err != nil {
		ss.log.Error("opening a body", "uid", m.uid, "err", err)
		return errTemporary
	}
	defer b.Close()
	if lines < 0 {
		ss.okf("%d octets", m.size)
	} else {
		ss.okf("Top of message %d follows", n)
	}
	in, out := bodyBuffers.Get().(*[]byte), bodyBuffers.Get().(*[]byte)
	defer bodyBuffers.Put(in)
	defer bodyBuffers.Put(out)
	dw := &dotWriter{w: ss.w, buf: (*out)[:0], bol: true}
	var dst io.Writer = dw
	if lines >= 0 {
		dst = &topWriter{w: dw, lines: lines, header: true, blank: true}
	}
	_, err = io.CopyBuffer(dst, io.NewSectionReader(b, 0, b.Size()), *in)
	if err != nil && err != errTopDone {
		if !dw.failed {
			ss.log.Error("reading a body", "uid", m.uid, "err", err)
		}
		return err
	}
	return dw.finish()
}

// dotWriter writes a body as the lines of a multi-line reply (RFC 1939,
// section 3): a line that starts with "." gets another "." in front, and
// finish ends the body with CRLF, if it does not end with one already,
// and the terminating ".". It looks for a "." after a line feed in big
// runs, not line by line, gathers the output in buf and hands it on to w
// in big writes, which go past w's small buffer.
type dotWriter struct {
	w      *bufio.Writer
	buf    []byte  // output not yet handed on; never grows past its capacity
	bol    bool    // at the beginning of a line
	n      int64   // bytes of the body written
	tail   [2]byte // its last two bytes
	failed bool    // a write to the client failed
}

var dotAfterLF = []byte("\n.")

func (d *dotWriter) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	n := len(p)
	d.n += int64(n)
	if n >= 2 {
		d.tail = [2]byte{p[n-2], p[n-1]}
	} else {
		d.tail = [2]byte{d.tail[1], p[0]}
	}
	for len(p) > 0 {
		if d.bol && p[0] == '.' {
			d.put([]byte{'.'})
		}
		i := bytes.Index(p, dotAfterLF)
		if i < 0 {
			d.put(p)
			d.bol = p[len(p)-1] == '\n'
			break
		}
		d.put(p[:i+1])
		p, d.bol = p[i+1:], true
	}
	if _, err := d.w.Write(nil); err != nil { // the writer's sticky error
		d.failed = true
		return 0, err
	}
	return n, nil
}

// put adds p to the output, handing on what is gathered first if p does
// not fit.
func (d *dotWriter) put(p []byte) {
	if len(d.buf)+len(p) > cap(d.buf) {
		d.w.Write(d.buf)
		d.buf = d.buf[:0]
		if len(p) > cap(d.buf) {
			d.w.Write(p)
			return
		}
	}
	d.buf = append(d.buf, p...)
}

// finish ends the body: CRLF if it is missing (not after an empty body),
// then ".".
func (d *dotWriter) finish() error {
	if d.n > 0 && d.tail != [2]byte{'\r', '\n'} {
		d.put([]byte("\r\n"))
	}
	d.put([]byte(".\r\n"))
	_, err := d.w.Write(d.buf)
	d.buf = d.buf[:0]
	return err
}

// errTopDone stops the copy of a body once TOP has what it asked for.
var errTopDone = errors.New("top: done")

// topWriter passes on the header of a body, the blank line after it and
// then lines lines, and fails with errTopDone after those. A body without
// a blank line is all header.
type topWriter struct {
	w      io.Writer
	lines  int  // body lines still to pass on
	header bool // still in the header
	blank  bool // the current line is empty so far (but for a CR)
}

func (t *topWriter) Write(p []byte) (int, error) {
	for i, c := range p {
		switch {
		case c == '\n':
			if t.header {
				t.header = !t.blank
			} else {
				t.lines--
			}
			t.blank = true
			if !t.header && t.lines <= 0 {
				if _, err := t.w.Write(p[:i+1]); err != nil {
					return 0, err
				}
				return i + 1, errTopDone
			}
		case c != '\r':
			t.blank = false
		}
	}
	return t.w.Write(p)
}
