package pop3

import (
	"bufio"
	"bytes"
	"testing"
)

// stuffed is what RETR (lines < 0) or TOP sends for body, computed line by
// line: the reference the streaming writers are checked against.
func stuffed(body []byte, lines int) []byte {
	if lines >= 0 {
		header, count := true, 0
		for off := 0; off < len(body); {
			end := bytes.IndexByte(body[off:], '\n')
			if end < 0 {
				break
			}
			end += off + 1
			line := body[off:end]
			if header {
				if len(bytes.Trim(line, "\r\n")) == 0 {
					header = false
					if lines == 0 {
						body = body[:end]
						break
					}
				}
			} else if count++; count == lines {
				body = body[:end]
				break
			}
			off = end
		}
	}
	var out []byte
	for off := 0; off < len(body); {
		end := bytes.IndexByte(body[off:], '\n') + 1
		if end == 0 {
			end = len(body) - off
		}
		line := body[off : off+end]
		if line[0] == '.' {
			out = append(out, '.')
		}
		out = append(out, line...)
		off += end
	}
	if len(body) > 0 && !bytes.HasSuffix(body, []byte("\r\n")) {
		out = append(out, "\r\n"...)
	}
	return append(out, ".\r\n"...)
}

// send runs body through the writers, in writes of chunk bytes.
func send(body []byte, lines, chunk int) []byte {
	var out bytes.Buffer
	w := bufio.NewWriterSize(&out, 16)
	dw := &dotWriter{w: w, buf: make([]byte, 0, 7), bol: true}
	var dst interface{ Write([]byte) (int, error) } = dw
	if lines >= 0 {
		dst = &topWriter{w: dw, lines: lines, header: true, blank: true}
	}
	for p := body; len(p) > 0; {
		n := min(chunk, len(p))
		if _, err := dst.Write(p[:n]); err == errTopDone {
			break
		}
		p = p[n:]
	}
	dw.finish()
	w.Flush()
	return out.Bytes()
}

func TestDotStuffing(t *testing.T) {
	for _, tc := range []struct{ body, want string }{
		{"", ".\r\n"},
		{"a\r\n", "a\r\n.\r\n"},
		{"a", "a\r\n.\r\n"},
		{".", "..\r\n.\r\n"},
		{".\r\n", "..\r\n.\r\n"},
		{"a\r\n.\r\nb\r\n..x\r\n", "a\r\n..\r\nb\r\n...x\r\n.\r\n"},
		{"a\n.b\n", "a\n..b\n\r\n.\r\n"},
		{"x\r\n\r\n.", "x\r\n\r\n..\r\n.\r\n"},
	} {
		for chunk := 1; chunk <= len(tc.body)+1; chunk++ {
			if got := send([]byte(tc.body), -1, chunk); string(got) != tc.want {
				t.Errorf("%q in chunks of %d: %q, want %q", tc.body, chunk, got, tc.want)
			}
		}
	}
	msg := "H: 1\r\nH: 2\r\n\r\n.one\r\ntwo\r\nthree\r\n"
	for lines, want := range []string{
		"H: 1\r\nH: 2\r\n\r\n.\r\n",
		"H: 1\r\nH: 2\r\n\r\n..one\r\n.\r\n",
		"H: 1\r\nH: 2\r\n\r\n..one\r\ntwo\r\n.\r\n",
		"H: 1\r\nH: 2\r\n\r\n..one\r\ntwo\r\nthree\r\n.\r\n",
		"H: 1\r\nH: 2\r\n\r\n..one\r\ntwo\r\nthree\r\n.\r\n",
	} {
		for chunk := 1; chunk <= len(msg); chunk++ {
			if got := send([]byte(msg), lines, chunk); string(got) != want {
				t.Errorf("TOP %d in chunks of %d: %q, want %q", lines, chunk, got, want)
			}
		}
	}
}

// FuzzDotStuffing checks the streaming writers against the line-by-line
// reference, for any body, TOP line count and write size.
func FuzzDotStuffing(f *testing.F) {
	f.Add([]byte("Subject: x\r\n\r\n.\r\n..\r\nend"), -1, 3)
	f.Add([]byte("H: 1\r\n\r\n.a\r\nb\r\n"), 1, 1)
	f.Add([]byte("\n.\n.\r\n\r\r\n"), 0, 2)
	f.Fuzz(func(t *testing.T, body []byte, lines, chunk int) {
		if chunk <= 0 {
			chunk = 1 + (-chunk)%64
		}
		lines = max(lines%8, -1)
		if got, want := send(body, lines, chunk), stuffed(body, lines); !bytes.Equal(got, want) {
			t.Fatalf("body %q, lines %d, chunks of %d:\n got %q\nwant %q", body, lines, chunk, got, want)
		}
	})
}
