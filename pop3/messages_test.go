package pop3_test

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"strings"
)

// testMessage is a message the client tests deliver and fetch back.
type testMessage struct {
	name string
	body []byte
}

// variedMessages are messages that test the edges of the wire format:
// 8-bit bytes, long lines, lines that start with ".", no final CRLF, MIME
// parts, and a body of 1 MiB.
func variedMessages() []testMessage {
	return []testMessage{
		{"plain", []byte("From: carol@example.net\r\nTo: ann@example.test\r\nSubject: hello\r\n\r\nHello, Ann.\r\n")},
		{"8bit", []byte("From: carol@example.net\r\nSubject: caf\xc3\xa9 \xe9t\xe9\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n" +
			"Cr\xc3\xa8me br\xc3\xbbl\xc3\xa9e, \xe2\x82\xac 5.\r\nLatin-1: \xe9\xe8\xe0\r\nHigh bytes: \x80\x81\xfe\xff\r\n")},
		{"long-lines", []byte("Subject: long lines\r\n\r\n" + strings.Repeat("x", 20000) + "\r\n" +
			strings.Repeat("0123456789", 1000) + "\r\nshort\r\n")},
		{"dots", []byte("Subject: dots\r\n\r\n.\r\n..\r\n.leading dot\r\n. space\r\n...\r\nmiddle . dot\r\n\r\n.\r\nlast\r\n.\r\n")},
		{"dot-first", []byte(".Odd: a header line that starts with a dot\r\nSubject: dot first\r\n\r\nbody\r\n")},
		{"no-final-crlf", []byte("Subject: no final CRLF\r\n\r\nfirst line\r\nlast line without one")},
		{"multipart", []byte("From: carol@example.net\r\nSubject: parts\r\nMIME-Version: 1.0\r\n" +
			"Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\nPreamble.\r\n--b1\r\nContent-Type: text/plain\r\n\r\n" +
			"Part one.\r\n.dotted line in a part\r\n--b1\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
			"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\r\n--b1--\r\nEpilogue.\r\n")},
		{"header-only", []byte("Subject: no body, no blank line\r\n")},
		{"1MiB", bigMessage(1<<20, 1)},
	}
}

// bigMessage is a message of exactly size bytes with 76-character lines,
// some starting with ".", made from seed.
func bigMessage(size int, seed uint64) []byte {
	rng := rand.New(rand.NewPCG(seed, 42))
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	var b bytes.Buffer
	b.Grow(size)
	fmt.Fprintf(&b, "From: bulk@example.net\r\nSubject: big message %d\r\n\r\n", seed)
	line := make([]byte, 76)
	for b.Len() < size {
		for i := range line {
			line[i] = alphabet[rng.IntN(len(alphabet))]
		}
		if rng.IntN(50) == 0 {
			line[0] = '.'
		}
		b.Write(line)
		b.WriteString("\r\n")
	}
	out := b.Bytes()[:size-2]
	return append(out, '\r', '\n')
}

// onTheWire is what a client that keeps line endings gets for body: the
// body, with CRLF added if it does not end with one.
func onTheWire(body []byte) []byte {
	if len(body) > 0 && !bytes.HasSuffix(body, []byte("\r\n")) {
		return append(bytes.Clone(body), '\r', '\n')
	}
	return body
}
