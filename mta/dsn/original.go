package dsn

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"
)

// returned is what of the original a notification carries.
type returned struct {
	whole  bool   // the whole message; else only its header
	data   []byte // what is returned, with CRLF line ends
	global bool   // the header has UTF-8 beyond ASCII (RFC 6532)
	cte    string // the transfer encoding data needs: 7bit, 8bit or binary
}

// readOriginal reads what of r's original the notification returns: the
// whole of it when RET is not HDRS and it fits MaxReturn, else its header
// (up to MaxHeaderReturn, cut at the end of a line).
func readOriginal(r *Report) (*returned, error) {
	ret := &returned{whole: r.ret() != "HDRS" && r.OriginalSize <= r.maxReturn()}
	n := r.OriginalSize
	if !ret.whole {
		n = min(n, MaxHeaderReturn)
	}
	buf := make([]byte, n)
	if m, err := r.Original.ReadAt(buf, 0); m < len(buf) {
		if err == nil || errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("dsn: reading the original (%d of %d bytes): %w", m, r.OriginalSize, err)
	}
	truncated := n < r.OriginalSize
	if truncated {
		// A CR at the cut may be half of a CRLF.
		buf = bytes.TrimSuffix(buf, []byte("\r"))
	}
	data := crlf(buf)
	header := data
	switch end := bytes.Index(data, []byte("\r\n\r\n")); {
	case bytes.HasPrefix(data, []byte("\r\n")):
		header = nil
	case end >= 0:
		header = data[:end+2]
	case truncated:
		// No end of the header in what was read: keep whole lines.
		header = nil
		if i := bytes.LastIndex(data, []byte("\r\n")); i >= 0 {
			header = data[:i+2]
		}
	}
	if !ret.whole {
		data = header
	}
	ret.data = data
	ret.global = nonASCII(string(header)) && utf8.Valid(header)
	ret.cte = transferEncoding(data)
	return ret, nil
}

// crlf returns b with every line end made CRLF: a bare CR or a bare LF
// becomes CRLF.
func crlf(b []byte) []byte {
	out := make([]byte, 0, len(b)+len(b)/64+2)
	for i := 0; i < len(b); i++ {
		switch c := b[i]; c {
		case '\r':
			out = append(out, '\r', '\n')
			if i+1 < len(b) && b[i+1] == '\n' {
				i++
			}
		case '\n':
			out = append(out, '\r', '\n')
		default:
			out = append(out, c)
		}
	}
	return out
}

// maxLine is the longest line, without its CRLF, that 7bit and 8bit data
// may have (RFC 5322 §2.1.1, RFC 2045 §2.7).
const maxLine = 998

// transferEncoding returns the Content-Transfer-Encoding that data (with
// CRLF line ends) needs as it is: 7bit for short lines of ASCII, 8bit
// for short lines with other bytes, binary for a NUL or a long line.
func transferEncoding(data []byte) string {
	enc := "7bit"
	line := 0
	for _, c := range data {
		switch {
		case c == 0:
			return "binary"
		case c == '\n':
			line = 0
			continue
		case c >= 0x80:
			enc = "8bit"
		}
		if line++; line > maxLine+1 { // the CR before the LF counts here
			return "binary"
		}
	}
	return enc
}
