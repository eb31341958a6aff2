package main

import (
	"fmt"
	"math/rand/v2"
	"strings"
)

// The messages: each made from its client and number, so that a FETCH of
// one can be compared with what was appended, by its Message-ID.

var senders = []string{`"Alice Liddell" <alice@example.org>`, `Bob <bob@example.net>`, `carol@example.com`, `"Dave, Jr." <dave@example.org>`}

func stressMessageID(client, n int) string {
	return fmt.Sprintf("<v1.c%d.n%d@stress.invalid>", client, n)
}

// stressContent returns the message a Message-ID of ours names, and
// whether it is a single part.
func stressContent(id string) ([]byte, bool, bool) {
	var client, n int
	if _, err := fmt.Sscanf(id, "<v1.c%d.n%d@stress.invalid>", &client, &n); err != nil || stressMessageID(client, n) != id || client < 0 || n < 0 {
		return nil, false, false
	}
	msg, single := stressMessage(client, n)
	return msg, single, true
}

// stressMessage makes message n of a client: plain, multipart,
// 8-bit, with an attachment, with a message inside, or long-headed.
func stressMessage(client, n int) ([]byte, bool) {
	r := rand.New(rand.NewPCG(uint64(client), uint64(n)))
	var b strings.Builder
	kind := n % 6
	fmt.Fprintf(&b, "From: %s\r\nTo: %s\r\n", senders[(client+n)%len(senders)], user)
	if kind == 2 {
		fmt.Fprintf(&b, "Subject: =?UTF-8?Q?stress_=C3=A9t=C3=A9_%d?=\r\n", n)
	} else {
		fmt.Fprintf(&b, "Subject: stress %d from client %d\r\n", n, client)
	}
	fmt.Fprintf(&b, "Date: Mon, 02 Jan 2006 15:04:05 +0000\r\nMessage-ID: %s\r\n", stressMessageID(client, n))
	if kind == 5 {
		b.WriteString("X-Long: ")
		for i := range 12 {
			fmt.Fprintf(&b, "word%d word%d word%d\r\n\t", i, i*7, i*13)
		}
		b.WriteString("end\r\n")
	}
	lines := func(k int) {
		for j := range k {
			fmt.Fprintf(&b, "line %d of %d/%d, needle%d and some more words\r\n", j, client, n, r.IntN(10))
		}
	}
	switch kind {
	case 1:
		b.WriteString("MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=\"b1\"\r\n\r\n--b1\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n")
		lines(3 + r.IntN(20))
		b.WriteString("--b1\r\nContent-Type: text/html\r\n\r\n<p>html part</p>\r\n--b1--\r\n")
	case 2:
		b.WriteString("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n")
		b.WriteString("Grüße aus Köln, été, 日本語\r\n")
		lines(2 + r.IntN(10))
	case 3:
		b.WriteString("MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b2\"\r\n\r\npreamble\r\n--b2\r\nContent-Type: text/plain\r\n\r\n")
		lines(2 + r.IntN(10))
		b.WriteString("--b2\r\nContent-Type: application/octet-stream; name=\"a.bin\"\r\nContent-Disposition: attachment; filename=\"a.bin\"\r\nContent-Transfer-Encoding: base64\r\n\r\n")
		for range 1 + r.IntN(8) {
			b.WriteString("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4v\r\n")
		}
		b.WriteString("--b2--\r\nepilogue\r\n")
	case 4:
		b.WriteString("MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b3\"\r\n\r\n--b3\r\nContent-Type: text/plain\r\n\r\nforwarded:\r\n--b3\r\nContent-Type: message/rfc822\r\n\r\n")
		fmt.Fprintf(&b, "From: inner@example.net\r\nSubject: inner %d\r\nMessage-ID: <inner.%d.%d@stress.invalid>\r\n\r\n", n, client, n)
		lines(2 + r.IntN(6))
		b.WriteString("--b3--\r\n")
	default:
		b.WriteString("\r\n")
		lines(3 + r.IntN(40))
	}
	return []byte(b.String()), kind == 0 || kind == 2 || kind == 5
}
