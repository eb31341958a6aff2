package main

import (
	"bytes"
	"context"
	"io"
	"net/mail"
	"strings"

	"github.com/mailsys/mailsys/mta"
	"github.com/mailsys/mailsys/txlog"
)

// eicar is the standard antivirus test string: the filter refuses a
// message that holds it, as a virus scanner would.
const eicar = `X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*`

// maxScan bounds how much of a message the filter reads.
const maxScan = 10 << 20

// contentFilter is the host program's content filter, called by the SMTP
// listeners before a message is accepted: it refuses a message carrying
// the EICAR test string (554 5.7.1), files one whose Subject starts with
// "[SPAM]" into the recipients' Junk folder, and marks every message it
// passes with an X-Custom-Filter field.
func contentFilter(ctx context.Context, env txlog.Envelope, body io.ReaderAt, size int64) (mta.Verdict, error) {
	b, err := io.ReadAll(io.NewSectionReader(body, 0, min(size, maxScan)))
	if err != nil {
		return mta.Verdict{}, err
	}
	if bytes.Contains(b, []byte(eicar)) {
		return mta.Verdict{Action: mta.Reject, Reply: mta.Reply{Code: 554, Enhanced: [3]int{5, 7, 1}, Message: "Virus found (EICAR test file)"}}, nil
	}
	verdict := mta.Verdict{Action: mta.Accept, Headers: []string{"X-Custom-Filter: scanned"}}
	if msg, err := mail.ReadMessage(bytes.NewReader(b)); err == nil && strings.HasPrefix(msg.Header.Get("Subject"), "[SPAM]") {
		verdict.Action = mta.Junk
		verdict.Headers = []string{"X-Custom-Filter: spam"}
	}
	return verdict, nil
}
