package dsn_test

import (
	"bytes"
	"fmt"
	"log"
	"strings"
	"time"

	"github.com/mailsys/mailsys/mta/dsn"
)

// A bounce for a recipient the remote server does not know, built and
// read back field by field.
func Example() {
	msg := "From: alice@example.org\r\nTo: bob@example.com\r\nSubject: Lunch\r\n\r\nFriday?\r\n"
	b, err := dsn.Build(dsn.Report{
		ReportingMTA: "mx.example.org",
		To:           "alice@example.org",
		EnvID:        "QQ314159",
		Arrival:      time.Date(2026, 3, 2, 9, 30, 0, 0, time.UTC),
		Ret:          "HDRS",
		Recipients: []dsn.Recipient{{
			Final:      "bob@example.com",
			Original:   "rfc822;bob@example.com",
			Action:     dsn.Failed,
			Status:     "5.1.1",
			RemoteMTA:  "mx.example.com",
			Diagnostic: "550 5.1.1 No such user",
		}},
		Original:     strings.NewReader(msg),
		OriginalSize: int64(len(msg)),
	})
	if err != nil {
		log.Fatal(err)
	}

	p, err := dsn.Parse(bytes.NewReader(b))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(p.Header.Get("Subject"))
	fmt.Println(p.PerMessage.Get("Reporting-MTA"))
	fmt.Println(p.PerMessage.Get("Original-Envelope-Id"))
	rc := p.Recipients[0]
	for _, f := range []string{"Original-Recipient", "Final-Recipient", "Action", "Status", "Remote-MTA", "Diagnostic-Code"} {
		fmt.Printf("%s: %s\n", f, rc.Get(f))
	}
	fmt.Printf("%s: %q\n", p.OriginalType, p.Original)
	// Output:
	// Undelivered Mail Returned to Sender
	// dns; mx.example.org
	// QQ314159
	// Original-Recipient: rfc822; bob@example.com
	// Final-Recipient: rfc822; bob@example.com
	// Action: failed
	// Status: 5.1.1
	// Remote-MTA: dns; mx.example.com
	// Diagnostic-Code: smtp; 550 5.1.1 No such user
	// text/rfc822-headers: "From: alice@example.org\r\nTo: bob@example.com\r\nSubject: Lunch\r\n"
}
