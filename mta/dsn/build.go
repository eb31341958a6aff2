package dsn

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"strings"
	"time"

	"github.com/emersion/go-message/textproto"
)

// The subjects of the notifications Build makes, by what happened to
// the recipients reported on.
const (
	// SubjectFailed is the subject when any recipient failed.
	SubjectFailed = "Undelivered Mail Returned to Sender"
	// SubjectDelayed is the subject when none failed and any is
	// delayed.
	SubjectDelayed = "Delayed Mail (still being retried)"
	// SubjectDelivered is the subject when every recipient was
	// delivered, expanded or relayed, and not every one relayed.
	SubjectDelivered = "Successful Mail Delivery Report"
	// SubjectRelayed is the subject when every recipient was relayed.
	SubjectRelayed = "Relayed Mail Delivery Report"
)

// Build returns the notification r describes: a whole message (RFC
// 5322) with CRLF line ends, ready to be handed to the queue with the
// null reverse path and r.To as its one recipient.
//
// Its header has From: "Mail Delivery System" <MAILER-DAEMON@host>, To,
// Subject (SubjectFailed, SubjectDelayed, SubjectDelivered or
// SubjectRelayed), Date, Message-ID, MIME-Version, Auto-Submitted:
// auto-replied (RFC 3834) and Content-Type: multipart/report;
// report-type=delivery-status. Its three parts are the account for a
// person (text/plain), the fields (message/delivery-status: the
// per-message fields, then a blank line before each recipient's), and
// the original: message/rfc822 holding it whole when r.Ret is not HDRS
// and it is at most MaxReturn bytes, text/rfc822-headers holding its
// header otherwise. When an address or the original's header is UTF-8
// beyond ASCII the types are those of RFC 6533 instead
// (message/global-delivery-status, message/global,
// message/global-headers).
//
// Build fails with an error wrapping ErrInvalid, naming every field at
// fault, for a Report that is not valid (see Report and Recipient), and
// with the error of r.Original if it cannot be read. It is safe for
// concurrent use.
func Build(r Report) ([]byte, error) {
	if err := r.validate(); err != nil {
		return nil, err
	}
	orig, err := readOriginal(&r)
	if err != nil {
		return nil, err
	}
	global := orig.global || nonASCII(r.To)
	for _, rc := range r.Recipients {
		global = global || nonASCII(rc.Final) || nonASCII(rc.Original)
	}
	host := strings.ToLower(strings.TrimSuffix(r.ReportingMTA, "."))
	date := r.Date
	if date.IsZero() {
		date = time.Now()
	}
	msgid := r.MessageID
	if msgid == "" {
		msgid = rand.Text() + "@" + host
	}

	parts := []part{
		textPart(&r, host, orig.whole, global),
		statusPart(&r, host, global),
		originalPart(orig, global),
	}
	boundary := pickBoundary(parts)
	cte := "7bit"
	for _, p := range parts {
		cte = widest(cte, p.cte)
	}

	var b bytes.Buffer
	b.Grow(len(orig.data) + 4096)
	writeField(&b, "From", `"Mail Delivery System" <MAILER-DAEMON@`+host+">")
	writeField(&b, "To", "<"+clean(r.To, global, MaxDiagnostic)+">")
	writeField(&b, "Subject", subject(r.Recipients))
	writeField(&b, "Date", date.Format(time.RFC1123Z))
	writeField(&b, "Message-ID", "<"+msgid+">")
	writeField(&b, "MIME-Version", "1.0")
	writeField(&b, "Auto-Submitted", "auto-replied")
	writeField(&b, "Content-Type", `multipart/report; report-type=delivery-status; boundary="`+boundary+`"`)
	if cte != "7bit" {
		writeField(&b, "Content-Transfer-Encoding", cte)
	}
	b.WriteString("\r\n")

	mw := textproto.NewMultipartWriter(&b)
	if err := mw.SetBoundary(boundary); err != nil {
		return nil, fmt.Errorf("dsn: boundary %q: %w", boundary, err)
	}
	for _, p := range parts {
		w, err := mw.CreatePart(p.header())
		if err != nil {
			return nil, fmt.Errorf("dsn: writing the %s part: %w", p.ctype, err)
		}
		if _, err := w.Write(p.body); err != nil {
			return nil, fmt.Errorf("dsn: writing the %s part: %w", p.ctype, err)
		}
	}
	if err := mw.Close(); err != nil {
		return nil, fmt.Errorf("dsn: closing the report: %w", err)
	}
	return b.Bytes(), nil
}

// part is one part of the multipart/report.
type part struct {
	ctype string // the Content-Type value
	cte   string // 7bit, 8bit or binary
	desc  string // Content-Description
	body  []byte
}

// header returns p's MIME header, its fields in order.
func (p *part) header() textproto.Header {
	fields := []string{"Content-Type", p.ctype, "Content-Description", p.desc}
	if p.cte != "7bit" {
		fields = append(fields, "Content-Transfer-Encoding", p.cte)
	}
	// A textproto.Header writes the field added last first.
	var h textproto.Header
	for i := len(fields) - 2; i >= 0; i -= 2 {
		var b bytes.Buffer
		writeField(&b, fields[i], fields[i+1])
		h.AddRaw(b.Bytes())
	}
	return h
}

// statusPart returns the message/delivery-status part: the per-message
// fields, then each recipient's after a blank line (RFC 3464 §2.1).
func statusPart(r *Report, host string, global bool) part {
	var b bytes.Buffer
	if envid := clean(r.EnvID, global, MaxDiagnostic); envid != "" {
		writeField(&b, "Original-Envelope-Id", envid)
	}
	writeField(&b, "Reporting-MTA", "dns; "+host)
	if !r.Arrival.IsZero() {
		writeField(&b, "Arrival-Date", r.Arrival.Format(time.RFC1123Z))
	}
	for _, rc := range r.Recipients {
		b.WriteString("\r\n")
		if rc.Original != "" {
			writeField(&b, "Original-Recipient", originalRecipient(rc.Original, global))
		}
		writeField(&b, "Final-Recipient", address(rc.Final, global))
		writeField(&b, "Action", string(rc.Action))
		writeField(&b, "Status", rc.status())
		if mta := clean(rc.RemoteMTA, global, 255); mta != "" {
			writeField(&b, "Remote-MTA", "dns; "+mta)
		}
		if diag := clean(rc.Diagnostic, global, MaxDiagnostic); diag != "" {
			writeField(&b, "Diagnostic-Code", "smtp; "+diag)
		}
		if !rc.LastAttempt.IsZero() {
			writeField(&b, "Last-Attempt-Date", rc.LastAttempt.Format(time.RFC1123Z))
		}
		if rc.Action == Delayed && !rc.WillRetryUntil.IsZero() {
			writeField(&b, "Will-Retry-Until", rc.WillRetryUntil.Format(time.RFC1123Z))
		}
	}
	p := part{ctype: "message/delivery-status", desc: "Delivery report", body: b.Bytes()}
	if global {
		p.ctype = "message/global-delivery-status"
	}
	p.cte = transferEncoding(p.body)
	return p
}

// originalPart returns the part holding what of the original is
// returned: of the RFC 6533 types in a global notification.
func originalPart(o *returned, global bool) part {
	p := part{body: o.data, cte: o.cte}
	switch {
	case o.whole && global:
		p.ctype, p.desc = "message/global", "Original message"
	case o.whole:
		p.ctype, p.desc = "message/rfc822", "Original message"
	case global:
		p.ctype, p.desc = "message/global-headers", "Original message header"
	default:
		p.ctype, p.desc = "text/rfc822-headers", "Original message header"
	}
	return p
}

// pickBoundary returns a random boundary that no part's body holds, of
// characters that need no quoting (RFC 2046 §5.1.1).
func pickBoundary(parts []part) string {
	for {
		b := "dsn." + rand.Text()
		clash := false
		for _, p := range parts {
			clash = clash || bytes.Contains(p.body, []byte(b))
		}
		if !clash {
			return b
		}
	}
}

// widest returns the more demanding of two transfer encodings.
func widest(a, b string) string {
	rank := map[string]int{"7bit": 0, "8bit": 1, "binary": 2}
	if rank[b] > rank[a] {
		return b
	}
	return a
}

// kind sums up what happened to rcpts: Failed if any failed, else
// Delayed if any is delayed, else Relayed if every one was relayed,
// else Delivered.
func kind(rcpts []Recipient) Action {
	k := Relayed
	for _, rc := range rcpts {
		switch rc.Action {
		case Failed:
			return Failed
		case Delayed:
			k = Delayed
		case Delivered, Expanded:
			if k == Relayed {
				k = Delivered
			}
		}
	}
	return k
}

// subject returns the Subject of a notification about rcpts.
func subject(rcpts []Recipient) string {
	switch kind(rcpts) {
	case Failed:
		return SubjectFailed
	case Delayed:
		return SubjectDelayed
	case Relayed:
		return SubjectRelayed
	}
	return SubjectDelivered
}
