package imap

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"io"
	"runtime"
	"strings"
	"testing"

	gomessage "github.com/emersion/go-message"
	"github.com/emersion/go-message/textproto"
)

func reencode(t testing.TB, msg string) string {
	t.Helper()
	var b bytes.Buffer
	if err := encodeBinaryParts(&b, strings.NewReader(msg)); err != nil {
		t.Fatalf("encodeBinaryParts: %v", err)
	}
	return b.String()
}

// leaves returns the decoded content of every leaf part of msg, depth
// first, as go-message reads them, with their transfer encodings.
func leaves(t testing.TB, msg string) (bodies, encodings []string) {
	t.Helper()
	var walk func(h textproto.Header, r io.Reader, depth int)
	walk = func(h textproto.Header, r io.Reader, depth int) {
		mh := gomessage.Header{Header: h}
		mediaType, params, _ := mh.ContentType()
		switch {
		case strings.HasPrefix(mediaType, "multipart/"):
			mr := textproto.NewMultipartReader(r, params["boundary"])
			for {
				p, err := mr.NextPart()
				if err != nil {
					return
				}
				walk(p.Header, p, depth+1)
			}
		case mediaType == "message/rfc822":
			br := bufio.NewReader(r)
			inner, _ := textproto.ReadHeader(br)
			walk(inner, br, depth+1)
		default:
			d, err := decodeTransfer(mh, r)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(d)
			bodies = append(bodies, string(b))
			encodings = append(encodings, strings.ToLower(mh.Get("Content-Transfer-Encoding")))
		}
	}
	br := bufio.NewReader(strings.NewReader(msg))
	h, _ := textproto.ReadHeader(br)
	walk(h, br, 1)
	return bodies, encodings
}

func TestEncodeBinaryParts(t *testing.T) {
	bin := "\x00\x01\r\n\r--b\x00\n" + strings.Repeat("\xff", 100)
	for name, msg := range map[string]string{
		"top": "Subject: top\r\nContent-Transfer-Encoding: binary\r\n\r\n" + bin,
		"multipart": "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nplain\r\n" +
			"--b\r\nContent-Transfer-Encoding: BINARY (raw)\r\nContent-Type: application/octet-stream\r\n\r\n" + bin + "\r\n--b--\r\n",
		"nested": "Content-Type: multipart/mixed; boundary=outer\r\n\r\n--outer\r\nContent-Type: message/rfc822\r\nContent-Transfer-Encoding: binary\r\n\r\n" +
			"Subject: inner\r\nContent-Type: multipart/mixed; boundary=inner\r\n\r\n--inner\r\nContent-Transfer-Encoding: binary\r\n\r\n" + bin +
			"\r\n--inner\r\nContent-Transfer-Encoding:\r\n binary\r\n\r\n" + bin + "\r\n--outer--\r\n",
		"bare LF": "Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Transfer-Encoding: binary\n\n" + bin + "\n--b--\n",
		"long":    "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Transfer-Encoding: binary\r\n\r\n" + strings.Repeat("x", 64<<10-1) + "\r\n\r\n--b--\r\n",
		"empty":   "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Transfer-Encoding: binary\r\n\r\n--b--\r\n",
	} {
		t.Run(name, func(t *testing.T) {
			out := reencode(t, msg)
			if strings.ContainsRune(out, 0) {
				t.Errorf("NUL in the output:\n%q", out)
			}
			wantBodies, wantEnc := leaves(t, msg)
			gotBodies, gotEnc := leaves(t, out)
			if len(gotBodies) != len(wantBodies) {
				t.Fatalf("%d parts, want %d:\n%q", len(gotBodies), len(wantBodies), out)
			}
			for i := range wantBodies {
				if gotBodies[i] != wantBodies[i] {
					t.Errorf("part %d: %q, want %q", i, gotBodies[i], wantBodies[i])
				}
				if isBinaryCTE(wantEnc[i]) != (gotEnc[i] == "base64") {
					t.Errorf("part %d: encoding %q, sent %q", i, gotEnc[i], wantEnc[i])
				}
			}
		})
	}
	// A message without a binary part is left as it is, byte for byte.
	for name, msg := range corpus(t) {
		if got := reencode(t, string(msg)); got != string(msg) {
			t.Errorf("%s changed", name)
		}
	}
}

// TestEncodeBinaryPartsStreams: a large binary part is not held in memory.
func TestEncodeBinaryPartsStreams(t *testing.T) {
	const size = 32 << 20
	head := "Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\nContent-Transfer-Encoding: binary\r\n\r\n"
	r := io.MultiReader(strings.NewReader(head), io.LimitReader(repeatReader(0), size), strings.NewReader("\r\n--x--\r\n"))
	var n countWriter
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	if err := encodeBinaryParts(&n, r); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 2<<20 {
		t.Errorf("allocated %d bytes for a %d-byte part", alloc, size)
	}
	if want := int64(len(head)) + size/3*4 + 2 + size/3*4/76*2 + 2 + 9; int64(n) < want-10 || int64(n) > want+10 {
		t.Errorf("wrote %d bytes, want about %d", n, want)
	}
}

type countWriter int64

func (c *countWriter) Write(p []byte) (int, error) {
	*c += countWriter(len(p))
	return len(p), nil
}

func TestBase64Reader(t *testing.T) {
	data := []byte("any bytes \x00\xff at all, of odd length")
	enc := base64.StdEncoding.EncodeToString(data)
	for in, want := range map[string]string{
		enc:                                    string(data),
		enc[:10] + "\r\n " + enc[10:]:          string(data),
		strings.TrimRight(enc, "="):            string(data),
		"aGk=\r\naGk=\r\n":                     "hihi", // padded line by line
		"aGk!!\x00=":                           "hi",
		"a":                                    "",
		"":                                     "",
		strings.Repeat(enc+"\r\n", 300)[:7000]: "",
	} {
		got, err := io.ReadAll(&base64Reader{r: strings.NewReader(in)})
		if err != nil {
			t.Errorf("%q: %v", in, err)
		}
		if want != "" && string(got) != want {
			t.Errorf("%q: %q, want %q", in, got, want)
		}
	}
}

// FuzzEncodeBinaryParts: any input is copied without a panic or an
// error, unchanged when no part says binary, and with no NUL left in a
// part it relabelled.
func FuzzEncodeBinaryParts(f *testing.F) {
	f.Add([]byte("Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Transfer-Encoding: binary\r\n\r\n\x00\r\n--b--\r\n"))
	f.Add([]byte("Content-Transfer-Encoding: binary\n\n\x00\r"))
	f.Fuzz(func(t *testing.T, msg []byte) {
		var b bytes.Buffer
		if err := encodeBinaryParts(&b, bytes.NewReader(msg)); err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(bytes.ToLower(msg), []byte("binary")) && !bytes.Equal(b.Bytes(), msg) {
			t.Fatalf("changed:\n%q\n%q", msg, b.Bytes())
		}
	})
}
