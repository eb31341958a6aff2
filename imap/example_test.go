package imap_test

import (
	"fmt"
	"log"
	"strings"

	goimap "github.com/emersion/go-imap/v2"
	"github.com/mailsys/mailsys/imap"
)

// At delivery, Summarize makes the index entry's cached ENVELOPE and
// BODYSTRUCTURE; at FETCH time, the server decodes them instead of reading
// the body.
func ExampleSummarize() {
	msg := strings.ReplaceAll(`From: =?GB2312?B?1tC5+tLGtq8=?= <10086@139.com>
To: user@139.com
Subject: =?UTF-8?B?5oKo55qE6LSm5Y2V?=
Date: Fri, 17 Jan 2025 08:00:00 +0800
Content-Type: multipart/alternative; boundary=b

--b
Content-Type: text/plain; charset=utf-8

Hello
--b
Content-Type: text/html; charset=utf-8

<p>Hello</p>
--b--
`, "\n", "\r\n")

	envelope, structure, err := imap.Summarize(strings.NewReader(msg))
	if err != nil {
		log.Fatal(err)
	}
	// ... stored in userdata.NewMessage{Envelope: envelope, Structure: structure}

	env, err := imap.DecodeEnvelope(envelope)
	if err != nil {
		log.Fatal(err)
	}
	bs, err := imap.DecodeStructure(structure)
	if err != nil {
		log.Fatal(err)
	}
	// The subject and display names are the header's own words, encoded
	// words and all, as IMAP clients expect them.
	fmt.Println(env.Subject, env.From[0].Name, env.From[0].Addr(), env.Date.Format("2006-01-02 15:04 -0700"))
	bs.Walk(func(path []int, part goimap.BodyStructure) bool {
		fmt.Println(path, part.MediaType())
		return true
	})
	// Output:
	// =?UTF-8?B?5oKo55qE6LSm5Y2V?= =?GB2312?B?1tC5+tLGtq8=?= 10086@139.com 2025-01-17 08:00 +0800
	// [] multipart/alternative
	// [1] text/plain
	// [2] text/html
}
