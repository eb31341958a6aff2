package dsn_test

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/mailsys/mailsys/mta/dsn"
)

// postfix is a bounce in the form Postfix sends, LF line ends and all,
// with a base64 delivery-status part.
const postfix = `Date: Mon,  2 Mar 2026 10:00:00 +0100 (CET)
From: MAILER-DAEMON@mail.example.net (Mail Delivery System)
Subject: Undelivered Mail Returned to Sender
To: alice@example.org
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status;
	boundary="B1.1/mail.example.net"

This is a MIME-encapsulated message.

--B1.1/mail.example.net
Content-Description: Notification
Content-Type: text/plain; charset=us-ascii

I'm sorry to have to inform you that your message could not
be delivered to one or more recipients.

--B1.1/mail.example.net
Content-Description: Delivery report
Content-Type: message/delivery-status
Content-Transfer-Encoding: base64

UmVwb3J0aW5nLU1UQTogZG5zOyBtYWlsLmV4YW1wbGUubmV0ClgtUG9zdGZpeC1RdWV1ZS1JRDog
QUJDMTIzCkFycml2YWwtRGF0ZTogTW9uLCAgMiBNYXIgMjAyNiAwOTo1OTo1OSArMDEwMCAoQ0VU
KQoKRmluYWwtUmVjaXBpZW50OiByZmM4MjI7IGJvYkBleGFtcGxlLmNvbQpPcmlnaW5hbC1SZWNp
cGllbnQ6IHJmYzgyMjtib2JAZXhhbXBsZS5jb20KQWN0aW9uOiBmYWlsZWQKU3RhdHVzOiA1LjEu
MQpSZW1vdGUtTVRBOiBkbnM7IG14LmV4YW1wbGUuY29tCkRpYWdub3N0aWMtQ29kZTogc210cDsg
NTUwIDUuMS4xIDxib2JAZXhhbXBsZS5jb20+OiBSZWNpcGllbnQgYWRkcmVzcyByZWplY3RlZDoK
ICAgIFVzZXIgdW5rbm93bgo=

--B1.1/mail.example.net
Content-Description: Undelivered Message Headers
Content-Type: text/rfc822-headers

From: alice@example.org
Subject: Lunch

--B1.1/mail.example.net--
`

func TestParsePostfix(t *testing.T) {
	p, err := dsn.Parse(strings.NewReader(postfix))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	want(t, "per-message", p.PerMessage, map[string]string{
		"Reporting-MTA":      "dns; mail.example.net",
		"X-Postfix-Queue-ID": "ABC123",
		"Arrival-Date":       "Mon,  2 Mar 2026 09:59:59 +0100 (CET)",
	})
	if len(p.Recipients) != 1 {
		t.Fatalf("%d recipients", len(p.Recipients))
	}
	want(t, "recipient", p.Recipients[0], map[string]string{
		"final-recipient":    "rfc822; bob@example.com",
		"ORIGINAL-RECIPIENT": "rfc822;bob@example.com",
		"Action":             "failed",
		"Status":             "5.1.1",
		// Unfolded.
		"Diagnostic-Code": "smtp; 550 5.1.1 <bob@example.com>: Recipient address rejected: User unknown",
	})
	if typ, v, ok := p.Recipients[0].Typed("Original-Recipient"); typ != "rfc822" || v != "bob@example.com" || !ok {
		t.Errorf("Typed(Original-Recipient) = %q, %q, %v", typ, v, ok)
	}
	if _, _, ok := p.Recipients[0].Typed("Action"); ok {
		t.Error("Typed(Action) ok")
	}
	if p.OriginalType != "text/rfc822-headers" || string(p.Original) != "From: alice@example.org\nSubject: Lunch\n" {
		t.Errorf("original %s %q", p.OriginalType, p.Original)
	}
	if !strings.HasPrefix(p.Text, "I'm sorry") || p.Global {
		t.Errorf("text %q, global %v", p.Text, p.Global)
	}
}

func TestParseNoOriginal(t *testing.T) {
	msg := strings.Replace(postfix, "--B1.1/mail.example.net\nContent-Description: Undelivered Message Headers\nContent-Type: text/rfc822-headers\n\nFrom: alice@example.org\nSubject: Lunch\n\n", "", 1)
	p, err := dsn.Parse(strings.NewReader(msg))
	if err != nil || p.OriginalType != "" || p.Original != nil {
		t.Fatalf("Parse: %v, original %q %q", err, p.OriginalType, p.Original)
	}
}

func TestParseRefuses(t *testing.T) {
	status := "Content-Type: message/delivery-status\r\n\r\n"
	head := "Content-Type: multipart/report; report-type=delivery-status; boundary=b\r\n\r\n--b\r\n"
	for _, tc := range []struct{ name, msg string }{
		{"empty", ""},
		{"not multipart", "Subject: hi\r\n\r\nhello\r\n"},
		{"mixed", "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n" + status + "Reporting-MTA: dns; x\r\n\r\nFinal-Recipient: rfc822; a@b\r\nAction: failed\r\nStatus: 5.0.0\r\n--b--\r\n"},
		{"other report", "Content-Type: multipart/report; report-type=disposition-notification; boundary=b\r\n\r\n--b\r\n--b--\r\n"},
		{"no status part", head + "Content-Type: text/plain\r\n\r\nhi\r\n--b--\r\n"},
		{"no recipients", head + status + "Reporting-MTA: dns; x\r\n--b--\r\n"},
		{"no Reporting-MTA", head + status + "Arrival-Date: x\r\n\r\nFinal-Recipient: rfc822; a@b\r\nAction: failed\r\nStatus: 5.0.0\r\n--b--\r\n"},
		{"no Status", head + status + "Reporting-MTA: dns; x\r\n\r\nFinal-Recipient: rfc822; a@b\r\nAction: failed\r\n--b--\r\n"},
		{"no Action", head + status + "Reporting-MTA: dns; x\r\n\r\nFinal-Recipient: rfc822; a@b\r\nStatus: 5.0.0\r\n--b--\r\n"},
		{"second recipient without Final-Recipient", head + status + "Reporting-MTA: dns; x\r\n\r\nFinal-Recipient: rfc822; a@b\r\nAction: failed\r\nStatus: 5.0.0\r\n\r\nAction: failed\r\nStatus: 5.0.0\r\n--b--\r\n"},
		{"bad field", head + status + "Reporting-MTA: dns; x\r\n\r\nnot a field\r\n--b--\r\n"},
		{"too many parts", "Content-Type: multipart/report; report-type=delivery-status; boundary=b\r\n\r\n" + strings.Repeat("--b\r\n\r\nx\r\n", 100) + "--b--\r\n"},
		{"status too large", head + status + "Reporting-MTA: dns; x\r\n" + strings.Repeat("X-Pad: "+strings.Repeat("p", 100)+"\r\n", 11000) + "--b--\r\n"},
	} {
		if _, err := dsn.Parse(strings.NewReader(tc.msg)); !errors.Is(err, dsn.ErrMalformed) {
			t.Errorf("%s: Parse: %v, want ErrMalformed", tc.name, err)
		}
	}
}

func TestParseTooLarge(t *testing.T) {
	msg, err := dsn.Build(report(original))
	if err != nil {
		t.Fatal(err)
	}
	big := io.MultiReader(bytes.NewReader(msg[:len(msg)-len("--\r\n")]), strings.NewReader("\r\n"), zeros{})
	if _, err := dsn.Parse(big); !errors.Is(err, dsn.ErrMalformed) || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("Parse of an endless notification: %v", err)
	}
}

// zeros reads as an endless run of "0".
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = '0'
	}
	return len(p), nil
}

func TestParseReadError(t *testing.T) {
	msg, err := dsn.Build(report(original))
	if err != nil {
		t.Fatal(err)
	}
	failing := errors.New("connection reset")
	r := io.MultiReader(bytes.NewReader(msg[:len(msg)/2]), iotest.ErrReader(failing))
	if _, err := dsn.Parse(r); !errors.Is(err, failing) {
		t.Errorf("Parse with a failing reader: %v, want it wrapped", err)
	}
}

func TestParseBlankLines(t *testing.T) {
	// Several blank lines, and lines of spaces, between blocks.
	msg := "Content-Type: multipart/report; report-type=global-delivery-status; boundary=b\r\n\r\n--b\r\n" +
		"Content-Type: message/global-delivery-status\r\n\r\n" +
		"\r\nReporting-MTA: dns; x\r\n\r\n \t\r\n\r\nFinal-Recipient: utf-8; ü@b\r\nAction: failed\r\nStatus: 5.0.0\r\nAction: delivered\r\n\r\n\r\n--b--\r\n"
	p, err := dsn.Parse(strings.NewReader(msg))
	if err != nil {
		t.Fatal(err)
	}
	if !p.Global || len(p.Recipients) != 1 || p.Recipients[0].Get("Action") != "failed" || p.Recipients[0].Get("Final-Recipient") != "utf-8; ü@b" {
		t.Errorf("global %v, recipients %v", p.Global, p.Recipients)
	}
}
