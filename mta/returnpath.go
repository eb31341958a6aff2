package mta

import (
	"bufio"
	"bytes"
	"io"

	"github.com/mailsys/mailsys/txlog"
)

// The Return-Path field (RFC 5321 §4.4): the SMTP server that makes the
// final delivery puts the envelope sender on top of the message, and a
// message arriving with one has it removed. The Deliverer does both as it
// stores a body, from what the transaction log holds (the envelope's From
// and the body as received), so a replay after a crash stores the same
// bytes, and a transaction handed to a relay one day will not carry it.

// deliveryBody returns the message of tx as it is stored for its local
// recipients: a Return-Path field naming the envelope sender ("<>" for
// the null sender), then the message with any Return-Path fields of its
// header taken out. The body past the header is passed on unread.
func deliveryBody(tx *txlog.Txn) io.Reader { return deliveryReader(tx.Envelope.From, tx.Body()) }

// deliveryReader is deliveryBody for a message read from body.
func deliveryReader(from string, body io.Reader) io.Reader {
	return io.MultiReader(
		bytes.NewReader(returnPathField(from)),
		&headerFilter{r: bufio.NewReaderSize(body, 4096), drop: isReturnPath},
	)
}

// appendDelivery appends to dst what deliveryBody reads for a
// transaction from the reverse path from whose logged body is msg: the
// same bytes, made in memory in one pass.
func appendDelivery(dst []byte, from string, msg []byte) []byte {
	dst = append(dst, "Return-Path: <"...)
	dst = append(dst, from...)
	dst = append(dst, ">\r\n"...)
	body := scanHeader(msg, func(line []byte, returnPath bool) bool {
		if !returnPath {
			dst = append(dst, line...)
		}
		return true
	})
	return append(dst, msg[body:]...)
}

// hasReturnPath reports whether the header of msg has a Return-Path
// field, which the delivery takes out.
func hasReturnPath(msg []byte) bool {
	found := false
	scanHeader(msg, func(_ []byte, returnPath bool) bool {
		found = returnPath
		return !found
	})
	return found
}

// scanHeader calls fn with each line of msg's header, in order, and
// whether it is part of a Return-Path field (as headerFilter sees them:
// the header ends at the first empty line; a continuation line goes with
// its field), until fn returns false. It returns the offset of the empty
// line, or len(msg) if there is none.
func scanHeader(msg []byte, fn func(line []byte, returnPath bool) bool) int {
	dropping := false
	for i := 0; i < len(msg); {
		start := msg[i:min(i+fieldPeek, len(msg))] // what headerFilter peeks
		switch {
		case start[0] == '\n', start[0] == '\r' && (len(start) == 1 || start[1] == '\n'):
			return i
		case start[0] == ' ', start[0] == '\t':
			// A continuation line goes with its field.
		default:
			dropping = isReturnPath(start)
		}
		end := len(msg)
		if j := bytes.IndexByte(msg[i:], '\n'); j >= 0 {
			end = i + j + 1
		}
		if !fn(msg[i:end], dropping) {
			return i
		}
		i = end
	}
	return len(msg)
}

// returnPathField is the Return-Path field for the reverse path from.
func returnPathField(from string) []byte {
	return []byte("Return-Path: <" + from + ">\r\n")
}

// returnPath is the field name isReturnPath looks for, lower case.
const returnPath = "return-path"

// isReturnPath reports whether a header line that begins with start (at
// least as long as the field name and a colon, when the line is) starts a
// Return-Path field: the name in any case, then optional white space
// (RFC 5322 §4.5.1, obsolete syntax) and a colon.
func isReturnPath(start []byte) bool {
	if len(start) < len(returnPath) || !bytes.EqualFold(start[:len(returnPath)], []byte(returnPath)) {
		return false
	}
	rest := bytes.TrimLeft(start[len(returnPath):], " \t")
	return len(rest) > 0 && rest[0] == ':'
}

// fieldPeek is how many bytes of a header line drop is shown.
const fieldPeek = 32

// headerFilter passes a message through, taking out of its header every
// field whose first line drop is true of (the start of the line, up to
// fieldPeek bytes), with its continuation lines. The header ends at the
// first empty line; the rest passes unread. Lines of any length pass; a
// message without an empty line is header to its end.
type headerFilter struct {
	r    *bufio.Reader
	drop func(start []byte) bool

	body     bool   // past the header
	mid      bool   // in the middle of a line longer than r's buffer
	dropping bool   // the field being read is dropped
	pending  []byte // part of a line kept, not yet read
	buf      []byte // pending's storage
	err      error  // r's, returned once pending is read
}

func (f *headerFilter) Read(p []byte) (int, error) {
	for len(f.pending) == 0 {
		if f.err != nil {
			return 0, f.err
		}
		if f.body {
			return f.r.Read(p)
		}
		if !f.mid {
			start, _ := f.r.Peek(fieldPeek) // an error comes again from ReadSlice
			switch {
			case len(start) == 0:
			case start[0] == '\n', start[0] == '\r' && (len(start) == 1 || start[1] == '\n'):
				f.body = true // the empty line is the body's first
				continue
			case start[0] == ' ', start[0] == '\t':
				// A continuation line goes with its field.
			default:
				f.dropping = f.drop(start)
			}
		}
		line, err := f.r.ReadSlice('\n')
		f.mid = err == bufio.ErrBufferFull
		if err != nil && !f.mid {
			f.err = err
		}
		if !f.dropping {
			f.buf = append(f.buf[:0], line...)
			f.pending = f.buf
		}
	}
	n := copy(p, f.pending)
	f.pending = f.pending[n:]
	return n, nil
}
