package dsn_test

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-message/mail"

	"github.com/mailsys/mailsys/mta/dsn"
)

const original = "From: Alice <alice@example.org>\r\n" +
	"To: Bob <bob@example.com>\r\n" +
	"Subject: Lunch\r\n" +
	"Message-ID: <1@example.org>\r\n" +
	"\r\n" +
	"Shall we have lunch on Friday?\r\n"

var (
	arrival = time.Date(2026, 3, 2, 9, 30, 0, 0, time.UTC)
	date    = time.Date(2026, 3, 2, 9, 31, 0, 0, time.UTC)
)

// report returns a Report of a failed delivery to bob@example.com of
// msg, with RET=FULL.
func report(msg string) dsn.Report {
	return dsn.Report{
		ReportingMTA: "mx.example.org",
		To:           "alice@example.org",
		Arrival:      arrival,
		Ret:          "FULL",
		Recipients: []dsn.Recipient{{
			Final:       "bob@example.com",
			Action:      dsn.Failed,
			Status:      "5.1.1",
			RemoteMTA:   "mx.example.com",
			Diagnostic:  "550 5.1.1 No such user",
			LastAttempt: date,
		}},
		Original:     strings.NewReader(msg),
		OriginalSize: int64(len(msg)),
		Date:         date,
		MessageID:    "dsn1@mx.example.org",
	}
}

// build builds r and parses it back, checking what every notification
// must be: CRLF lines of at most 998 bytes (but for those of the
// original), readable by go-message's mail reader part by part.
func build(t *testing.T, r dsn.Report) ([]byte, *dsn.Parsed) {
	t.Helper()
	msg, err := dsn.Build(r)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	orig, _ := io.ReadAll(io.NewSectionReader(r.Original, 0, r.OriginalSize))
	for i, line := range bytes.Split(msg, []byte("\r\n")) {
		if bytes.ContainsAny(line, "\r\n") {
			t.Fatalf("line %d has a bare CR or LF: %q", i+1, line)
		}
		if len(line) > 998 && !bytes.Contains(orig, line) {
			t.Fatalf("line %d is %d bytes long", i+1, len(line))
		}
	}
	mr, err := mail.CreateReader(bytes.NewReader(msg))
	if err != nil {
		t.Fatalf("mail.CreateReader: %v\n%s", err, msg)
	}
	parts := 0
	for {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("mail.Reader.NextPart: %v", err)
		}
		if _, err := io.ReadAll(p.Body); err != nil {
			t.Fatalf("reading part %d: %v", parts+1, err)
		}
		parts++
	}
	if parts != 3 {
		t.Fatalf("mail.Reader read %d parts, want 3", parts)
	}
	p, err := dsn.Parse(bytes.NewReader(msg))
	if err != nil {
		t.Fatalf("Parse: %v\n%s", err, msg)
	}
	return msg, p
}

// want checks the fields of f against want ("" for a field that must be
// absent).
func want(t *testing.T, what string, f dsn.Fields, want map[string]string) {
	t.Helper()
	for k, v := range want {
		if got := f.Get(k); got != v {
			t.Errorf("%s %s = %q, want %q", what, k, got, v)
		}
	}
}

func TestFailedFull(t *testing.T) {
	msg, p := build(t, report(original))
	h := p.Header
	for k, v := range map[string]string{
		"From":           `"Mail Delivery System" <MAILER-DAEMON@mx.example.org>`,
		"To":             "<alice@example.org>",
		"Subject":        dsn.SubjectFailed,
		"Date":           "Mon, 02 Mar 2026 09:31:00 +0000",
		"Message-Id":     "<dsn1@mx.example.org>",
		"Mime-Version":   "1.0",
		"Auto-Submitted": "auto-replied",
	} {
		if got := h.Get(k); got != v {
			t.Errorf("header %s = %q, want %q", k, got, v)
		}
	}
	mt, params, err := h.ContentType()
	if err != nil || mt != "multipart/report" || params["report-type"] != "delivery-status" {
		t.Errorf("Content-Type %q: %q %v %v", h.Get("Content-Type"), mt, params, err)
	}
	if h.Has("Content-Transfer-Encoding") {
		t.Errorf("an ASCII notification has Content-Transfer-Encoding %q", h.Get("Content-Transfer-Encoding"))
	}
	if p.Global {
		t.Error("Global for an ASCII notification")
	}
	want(t, "per-message", p.PerMessage, map[string]string{
		"Reporting-MTA":        "dns; mx.example.org",
		"Arrival-Date":         "Mon, 02 Mar 2026 09:30:00 +0000",
		"Original-Envelope-Id": "",
	})
	if len(p.Recipients) != 1 {
		t.Fatalf("%d recipients, want 1", len(p.Recipients))
	}
	want(t, "recipient", p.Recipients[0], map[string]string{
		"Final-Recipient":    "rfc822; bob@example.com",
		"Original-Recipient": "",
		"Action":             "failed",
		"Status":             "5.1.1",
		"Remote-MTA":         "dns; mx.example.com",
		"Diagnostic-Code":    "smtp; 550 5.1.1 No such user",
		"Last-Attempt-Date":  "Mon, 02 Mar 2026 09:31:00 +0000",
		"Will-Retry-Until":   "",
	})
	if typ, addr, ok := p.Recipients[0].Typed("Final-Recipient"); typ != "rfc822" || addr != "bob@example.com" || !ok {
		t.Errorf("Typed(Final-Recipient) = %q, %q, %v", typ, addr, ok)
	}
	if p.OriginalType != "message/rfc822" || string(p.Original) != original {
		t.Errorf("original part %s:\n%q\nwant message/rfc822:\n%q", p.OriginalType, p.Original, original)
	}
	for _, s := range []string{"<bob@example.com>: could not be delivered (5.1.1)", "mx.example.com said: 550 5.1.1 No such user", "The message is attached."} {
		if !strings.Contains(p.Text, s) {
			t.Errorf("text part lacks %q:\n%s", s, p.Text)
		}
	}
	// The fields in RFC 3464's order, with the blank line between the
	// per-message and the per-recipient ones.
	order := []string{"Reporting-MTA:", "Arrival-Date:", "\r\n\r\nFinal-Recipient:", "Action:", "Status:", "Remote-MTA:", "Diagnostic-Code:", "Last-Attempt-Date:"}
	at := 0
	for _, s := range order {
		i := bytes.Index(msg[at:], []byte(s))
		if i < 0 {
			t.Fatalf("%q not found after byte %d:\n%s", s, at, msg)
		}
		at += i
	}
}

func TestRetHeaders(t *testing.T) {
	for _, ret := range []string{"HDRS", "hdrs"} {
		r := report(original)
		r.Ret = ret
		_, p := build(t, r)
		header := original[:strings.Index(original, "\r\n\r\n")+2]
		if p.OriginalType != "text/rfc822-headers" || string(p.Original) != header {
			t.Errorf("RET=%s: original part %s:\n%q\nwant text/rfc822-headers:\n%q", ret, p.OriginalType, p.Original, header)
		}
		if !strings.Contains(p.Text, "Its header is attached.") {
			t.Errorf("RET=%s: text part:\n%s", ret, p.Text)
		}
	}
}

func TestOverMaxReturn(t *testing.T) {
	body := strings.Repeat("All work and no play makes Jack a dull boy.\r\n", 100)
	msg := original + body
	header := original[:strings.Index(original, "\r\n\r\n")+2]
	for _, tc := range []struct {
		name      string
		ret       string
		maxReturn int64
		whole     bool
	}{
		{"fits", "", int64(len(msg)), true},
		{"one byte over", "", int64(len(msg)) - 1, false},
		{"RET=FULL over", "FULL", 100, false},
	} {
		r := report(msg)
		r.Ret, r.MaxReturn = tc.ret, tc.maxReturn
		_, p := build(t, r)
		switch {
		case tc.whole && (p.OriginalType != "message/rfc822" || string(p.Original) != msg):
			t.Errorf("%s: original part %s, %d bytes; want message/rfc822, %d bytes", tc.name, p.OriginalType, len(p.Original), len(msg))
		case !tc.whole && (p.OriginalType != "text/rfc822-headers" || string(p.Original) != header):
			t.Errorf("%s: original part %s:\n%q\nwant its header", tc.name, p.OriginalType, p.Original)
		}
	}
}

func TestDefaultMaxReturn(t *testing.T) {
	msg := original + strings.Repeat(strings.Repeat("x", 70)+"\r\n", dsn.DefaultMaxReturn/72+1)
	_, p := build(t, report(msg))
	if p.OriginalType != "text/rfc822-headers" {
		t.Errorf("an original of %d bytes returned as %s, want only its header", len(msg), p.OriginalType)
	}
}

func TestDelayed(t *testing.T) {
	until := arrival.Add(5 * 24 * time.Hour)
	r := report(original)
	r.Recipients = []dsn.Recipient{{
		Final: "bob@example.com", Action: dsn.Delayed, Status: "4.4.1", RemoteMTA: "mx.example.com",
		Diagnostic: "451 4.4.1 Try again later", LastAttempt: date, WillRetryUntil: until,
	}}
	_, p := build(t, r)
	if s := p.Header.Get("Subject"); s != dsn.SubjectDelayed {
		t.Errorf("Subject %q, want %q", s, dsn.SubjectDelayed)
	}
	want(t, "recipient", p.Recipients[0], map[string]string{
		"Action":           "delayed",
		"Status":           "4.4.1",
		"Will-Retry-Until": "Sat, 07 Mar 2026 09:30:00 +0000",
		"Diagnostic-Code":  "smtp; 451 4.4.1 Try again later",
	})
	if !strings.Contains(p.Text, "will be tried until Sat, 07 Mar 2026 09:30:00 +0000") {
		t.Errorf("text part does not say until when:\n%s", p.Text)
	}
	// Will-Retry-Until is for delays only.
	r.Recipients[0].Action, r.Recipients[0].Status = dsn.Failed, "4.4.7"
	_, p = build(t, r)
	if v := p.Recipients[0].Get("Will-Retry-Until"); v != "" {
		t.Errorf("a failed recipient has Will-Retry-Until %q", v)
	}
}

func TestSeveralRecipients(t *testing.T) {
	r := report(original)
	r.Recipients = []dsn.Recipient{
		{Final: "bob@example.com", Action: dsn.Failed, Status: "5.1.1", Diagnostic: "550 5.1.1 No such user"},
		{Final: "carol@example.net", Action: dsn.Relayed, Status: "2.0.0", RemoteMTA: "mx.example.net"},
		{Final: "dave@example.com", Action: dsn.Failed}, // the default status
	}
	_, p := build(t, r)
	if len(p.Recipients) != 3 {
		t.Fatalf("%d recipients, want 3", len(p.Recipients))
	}
	for i, w := range []map[string]string{
		{"Final-Recipient": "rfc822; bob@example.com", "Action": "failed", "Status": "5.1.1", "Remote-MTA": ""},
		{"Final-Recipient": "rfc822; carol@example.net", "Action": "relayed", "Status": "2.0.0", "Remote-MTA": "dns; mx.example.net", "Diagnostic-Code": ""},
		{"Final-Recipient": "rfc822; dave@example.com", "Action": "failed", "Status": "5.0.0"},
	} {
		want(t, "recipient "+string(rune('1'+i)), p.Recipients[i], w)
	}
	if s := p.Header.Get("Subject"); s != dsn.SubjectFailed {
		t.Errorf("Subject %q, want %q", s, dsn.SubjectFailed)
	}
}

func TestSubjects(t *testing.T) {
	for _, tc := range []struct {
		actions []dsn.Action
		want    string
	}{
		{[]dsn.Action{dsn.Delayed, dsn.Failed}, dsn.SubjectFailed},
		{[]dsn.Action{dsn.Delayed, dsn.Delivered}, dsn.SubjectDelayed},
		{[]dsn.Action{dsn.Delivered}, dsn.SubjectDelivered},
		{[]dsn.Action{dsn.Relayed, dsn.Expanded}, dsn.SubjectDelivered},
		{[]dsn.Action{dsn.Relayed, dsn.Relayed}, dsn.SubjectRelayed},
	} {
		r := report(original)
		r.Recipients = nil
		for _, a := range tc.actions {
			r.Recipients = append(r.Recipients, dsn.Recipient{Final: "bob@example.com", Action: a})
		}
		_, p := build(t, r)
		if s := p.Header.Get("Subject"); s != tc.want {
			t.Errorf("%v: Subject %q, want %q", tc.actions, s, tc.want)
		}
	}
}

func TestEnvIDAndORcpt(t *testing.T) {
	r := report(original)
	r.EnvID = "QQ314159"
	r.Recipients[0].Original = "rfc822;Bob@Example.COM"
	_, p := build(t, r)
	want(t, "per-message", p.PerMessage, map[string]string{"Original-Envelope-Id": "QQ314159"})
	want(t, "recipient", p.Recipients[0], map[string]string{"Original-Recipient": "rfc822; Bob@Example.COM"})

	// Absent: no fields (TestFailedFull), and an ORCPT without a type
	// taken as rfc822.
	r.EnvID, r.Recipients[0].Original = "", "bob@example.com"
	_, p = build(t, r)
	want(t, "per-message", p.PerMessage, map[string]string{"Original-Envelope-Id": ""})
	want(t, "recipient", p.Recipients[0], map[string]string{"Original-Recipient": "rfc822; bob@example.com"})
}

func TestUTF8Recipient(t *testing.T) {
	r := report(original)
	r.Recipients[0].Final = "josé@exemplo.br"
	r.Recipients[0].Original = "rfc822;josé@exemplo.br"
	r.Recipients[0].Diagnostic = "550 5.1.1 Não existe"
	_, p := build(t, r)
	if !p.Global {
		t.Fatal("not global: want message/global-delivery-status")
	}
	want(t, "recipient", p.Recipients[0], map[string]string{
		"Final-Recipient":    "utf-8; josé@exemplo.br",
		"Original-Recipient": "utf-8; josé@exemplo.br",
		"Diagnostic-Code":    "smtp; 550 5.1.1 Não existe",
	})
	if p.OriginalType != "message/global" || string(p.Original) != original {
		t.Errorf("original part %s, want message/global with the original", p.OriginalType)
	}
	if !strings.Contains(p.Text, "<josé@exemplo.br>") {
		t.Errorf("text part:\n%s", p.Text)
	}
	if cte := p.Header.Get("Content-Transfer-Encoding"); cte != "8bit" {
		t.Errorf("Content-Transfer-Encoding %q, want 8bit", cte)
	}
	// ASCII addresses keep rfc822 in a global notification.
	r.Recipients = append(r.Recipients, dsn.Recipient{Final: "bob@example.com", Action: dsn.Failed})
	_, p = build(t, r)
	want(t, "recipient 2", p.Recipients[1], map[string]string{"Final-Recipient": "rfc822; bob@example.com"})
}

func TestUTF8Header(t *testing.T) {
	msg := "From: José <jose@example.org>\r\nSubject: Olá\r\n\r\nBody\r\n"
	r := report(msg)
	_, p := build(t, r)
	if !p.Global || p.OriginalType != "message/global" {
		t.Errorf("Global %v, original %s: want message/global", p.Global, p.OriginalType)
	}
	r.Ret = "HDRS"
	_, p = build(t, r)
	if p.OriginalType != "message/global-headers" || string(p.Original) != "From: José <jose@example.org>\r\nSubject: Olá\r\n" {
		t.Errorf("original part %s: %q; want message/global-headers", p.OriginalType, p.Original)
	}
}

func TestEightBitBody(t *testing.T) {
	// An 8BITMIME body under an ASCII header: message/rfc822, 8bit.
	msg := "From: a@example.org\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nçà\r\n"
	b, p := build(t, report(msg))
	if p.Global || p.OriginalType != "message/rfc822" || string(p.Original) != msg {
		t.Errorf("Global %v, original part %s %q", p.Global, p.OriginalType, p.Original)
	}
	if !bytes.Contains(b, []byte("Content-Type: message/rfc822\r\nContent-Description: Original message\r\nContent-Transfer-Encoding: 8bit\r\n")) {
		t.Errorf("the original's part is not declared 8bit:\n%s", b)
	}
}

func TestInjection(t *testing.T) {
	r := report(original)
	r.To = "alice@example.org\r\nBcc: eve@example.net"
	r.EnvID = "id\r\n\r\nFinal-Recipient: rfc822; eve@example.net"
	r.Recipients[0].RemoteMTA = "mx.example.com\nX-Remote: 1"
	r.Recipients[0].Diagnostic = "550-5.1.1 No such user\r\n550 5.1.1 here\r\n\r\nFinal-Recipient: rfc822; eve@example.net\r\nAction: delivered\r\n\x00\x1b[31m\x7f\u0085end"
	b, p := build(t, r)
	if len(p.Recipients) != 1 {
		t.Fatalf("%d recipients, want 1:\n%s", len(p.Recipients), b)
	}
	if bytes.Contains(b, []byte("\nBcc:")) || p.Header.Has("Bcc") || bytes.Contains(b, []byte("\nX-Remote:")) {
		t.Errorf("a field was injected:\n%s", b)
	}
	want(t, "header", dsn.Fields{"to": p.Header.Get("To")}, map[string]string{"To": "<alice@example.org Bcc: eve@example.net>"})
	want(t, "recipient", p.Recipients[0], map[string]string{
		"Action":          "failed",
		"Remote-MTA":      "dns; mx.example.com X-Remote: 1",
		"Diagnostic-Code": "smtp; 550-5.1.1 No such user 550 5.1.1 here Final-Recipient: rfc822; eve@example.net Action: delivered [31m end",
	})
	want(t, "per-message", p.PerMessage, map[string]string{"Original-Envelope-Id": "id Final-Recipient: rfc822; eve@example.net"})
	if bytes.ContainsAny(b, "\x00\x1b\x7f") || bytes.Contains(b, []byte("\u0085")) {
		t.Errorf("a control character got through:\n%q", b)
	}
}

func TestLongDiagnostic(t *testing.T) {
	r := report(original)
	r.Recipients[0].Diagnostic = "550 5.7.1 " + strings.Repeat("ü", 2000) // two bytes each
	r.Recipients[0].Final = "bøb@example.com"
	_, p := build(t, r)
	d := p.Recipients[0].Get("Diagnostic-Code")
	if len(d) > dsn.MaxDiagnostic+len("smtp; ") || !strings.HasSuffix(d, "ü...") {
		t.Errorf("Diagnostic-Code of %d bytes ends %q", len(d), d[len(d)-10:])
	}
	// A word too long to fold still makes lines under 998 bytes (build
	// checks), and is cut, in ASCII.
	r.Recipients[0].Final = "bob@example.com"
	r.Recipients[0].Diagnostic = strings.Repeat("x", 5000) + "ü"
	_, p = build(t, r)
	if d := p.Recipients[0].Get("Diagnostic-Code"); d != "smtp; "+strings.Repeat("x", dsn.MaxDiagnostic-3)+"..." {
		t.Errorf("Diagnostic-Code %q", d)
	}
}

func TestLineEnds(t *testing.T) {
	// An original with bare LFs and CRs is returned with CRLFs.
	msg := "From: a@example.org\nSubject: x\r\n\nline 1\rline 2\n"
	_, p := build(t, report(msg))
	if w := "From: a@example.org\r\nSubject: x\r\n\r\nline 1\r\nline 2\r\n"; string(p.Original) != w {
		t.Errorf("original %q, want %q", p.Original, w)
	}
}

func TestBinaryOriginal(t *testing.T) {
	msg := "From: a@example.org\r\n\r\n" + strings.Repeat("y", 2000) + "\r\n"
	b, p := build(t, report(msg))
	if string(p.Original) != msg {
		t.Errorf("a long line was changed")
	}
	if !bytes.Contains(b, []byte("Content-Transfer-Encoding: binary\r\n")) {
		t.Errorf("an original with a 2000-byte line is not declared binary")
	}
}

func TestHeaderOnlyOriginal(t *testing.T) {
	for _, tc := range []struct{ msg, header string }{
		{"Subject: no body\r\n", "Subject: no body\r\n"},
		{"\r\nno header\r\n", ""},
		{"", ""},
	} {
		r := report(tc.msg)
		r.Ret = "HDRS"
		_, p := build(t, r)
		if string(p.Original) != tc.header {
			t.Errorf("%q: header %q, want %q", tc.msg, p.Original, tc.header)
		}
	}
	// A header longer than MaxHeaderReturn is cut after a whole line.
	field := "X-Long: " + strings.Repeat("z", 90) + "\r\n"
	msg := strings.Repeat(field, dsn.MaxHeaderReturn/len(field)+10) + "\r\nbody\r\n"
	r := report(msg)
	r.Ret = "HDRS"
	_, p := build(t, r)
	if n := len(p.Original); n > dsn.MaxHeaderReturn || n%len(field) != 0 || n < dsn.MaxHeaderReturn-len(field) {
		t.Errorf("a long header returned as %d bytes (fields of %d, MaxHeaderReturn %d)", n, len(field), dsn.MaxHeaderReturn)
	}
}

func TestDefaults(t *testing.T) {
	r := report(original)
	r.Date, r.MessageID = time.Time{}, ""
	r.ReportingMTA = "MX.Example.ORG."
	before := time.Now().Add(-time.Second)
	_, p := build(t, r)
	d, err := p.Header.Date()
	if err != nil || d.Before(before) || d.After(time.Now().Add(time.Second)) {
		t.Errorf("Date %q (%v), want now", p.Header.Get("Date"), err)
	}
	id, err := p.Header.MessageID()
	if err != nil || !strings.HasSuffix(id, "@mx.example.org") || len(id) < 20 {
		t.Errorf("Message-ID %q (%v)", id, err)
	}
	want(t, "per-message", p.PerMessage, map[string]string{"Reporting-MTA": "dns; mx.example.org"})
	if f := p.Header.Get("From"); f != `"Mail Delivery System" <MAILER-DAEMON@mx.example.org>` {
		t.Errorf("From %q", f)
	}
	_, p2 := build(t, r)
	if id2, _ := p2.Header.MessageID(); id2 == id {
		t.Errorf("two notifications with Message-ID %q", id)
	}
}

func TestInvalid(t *testing.T) {
	for _, tc := range []struct {
		field string
		edit  func(r *dsn.Report)
	}{
		{"ReportingMTA", func(r *dsn.Report) { r.ReportingMTA = "" }},
		{"ReportingMTA", func(r *dsn.Report) { r.ReportingMTA = "mx example.org" }},
		{"ReportingMTA", func(r *dsn.Report) { r.ReportingMTA = "mx.example.org\r\nBcc: x" }},
		{"To", func(r *dsn.Report) { r.To = "" }},
		{"Ret", func(r *dsn.Report) { r.Ret = "BODY" }},
		{"Original", func(r *dsn.Report) { r.Original = nil }},
		{"OriginalSize", func(r *dsn.Report) { r.OriginalSize = -1 }},
		{"MaxReturn", func(r *dsn.Report) { r.MaxReturn = -1 }},
		{"MessageID", func(r *dsn.Report) { r.MessageID = "<x@y>" }},
		{"MessageID", func(r *dsn.Report) { r.MessageID = "no-at" }},
		{"Recipients", func(r *dsn.Report) { r.Recipients = nil }},
		{"Recipients[0].Final", func(r *dsn.Report) { r.Recipients[0].Final = " " }},
		{"Recipients[0].Action", func(r *dsn.Report) { r.Recipients[0].Action = "bounced" }},
		{"Recipients[0].Status", func(r *dsn.Report) { r.Recipients[0].Status = "550" }},
		{"Recipients[0].Status", func(r *dsn.Report) { r.Recipients[0].Status = "3.1.1" }},
		{"Recipients[0].Status", func(r *dsn.Report) { r.Recipients[0].Status = "5.1.1\r\nX: y" }},
	} {
		r := report(original)
		tc.edit(&r)
		_, err := dsn.Build(r)
		if !errors.Is(err, dsn.ErrInvalid) || !strings.Contains(err.Error(), "Report."+tc.field+":") {
			t.Errorf("%s: Build: %v, want ErrInvalid naming the field", tc.field, err)
		}
	}
	// Every problem at once.
	r := report(original)
	r.To, r.Ret = "", "x"
	if _, err := dsn.Build(r); err == nil || !strings.Contains(err.Error(), "Report.To") || !strings.Contains(err.Error(), "Report.Ret") {
		t.Errorf("Build: %v, want both To and Ret named", err)
	}
}

// shortReader holds less than the size a Report says.
func TestShortOriginal(t *testing.T) {
	r := report(original)
	r.OriginalSize = int64(len(original)) + 10
	if _, err := dsn.Build(r); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("Build with an original shorter than OriginalSize: %v", err)
	}
	failing := errors.New("disk on fire")
	r.Original = errReaderAt{failing}
	if _, err := dsn.Build(r); !errors.Is(err, failing) {
		t.Errorf("Build with a failing original: %v", err)
	}
}

type errReaderAt struct{ err error }

func (e errReaderAt) ReadAt([]byte, int64) (int, error) { return 0, e.err }
