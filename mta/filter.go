package mta

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net/netip"
	"strings"

	"github.com/emersion/go-smtp"

	"github.com/mailsys/mailsys/txlog"
)

// Filter inspects a message before it is accepted, so that antispam and
// antivirus engines plug in. The listener calls it at the end of DATA with
// the envelope and the whole body (without the Received header), then acts
// on the Verdict before answering. On the MX listener with a Verifier, it
// is called after it, on the message as it will be stored: the Verifier's
// header fields (Authentication-Results) on top, forged
// Authentication-Results fields taken out, and env.Mailbox "Junk" if the
// Verifier said Junk. Check may block (a scanner may take seconds) and is
// called concurrently for different sessions; body is valid until it
// returns.
type Filter interface {
	Check(ctx context.Context, env txlog.Envelope, body io.ReaderAt, size int64) (Verdict, error)
}

// FilterFunc adapts a function to Filter.
type FilterFunc func(ctx context.Context, env txlog.Envelope, body io.ReaderAt, size int64) (Verdict, error)

// Check calls f.
func (f FilterFunc) Check(ctx context.Context, env txlog.Envelope, body io.ReaderAt, size int64) (Verdict, error) {
	return f(ctx, env, body, size)
}

// Action is what a Verdict does with the message.
type Action int

// Actions.
const (
	Accept Action = iota // deliver to INBOX
	Reject               // refuse with Verdict.Reply
	Junk                 // deliver to the recipients' Junk folder
)

// Verdict is a filter's decision. Headers are prepended to the stored
// message whatever the action (e.g. "X-Spam-Score: 7.1").
type Verdict struct {
	Action  Action
	Reply   Reply    // for Reject; zero means 550 5.7.1 "Message refused"
	Headers []string // "Name: value", without line ends
}

// Reply is an SMTP reply a filter gives.
type Reply struct {
	Code     int    // 4xx or 5xx
	Enhanced [3]int // e.g. {5, 7, 1}
	Message  string
}

// Origin is what the inbound listener knows of where a message comes from
// when its DATA ends: what checks of the message's origin (SPF, DKIM,
// DMARC) start from.
type Origin struct {
	IP       netip.Addr // the client's address
	Hello    string     // the name the client gave in EHLO or HELO
	MailFrom string     // the reverse path, "" for the null sender
	TLS      bool       // the session is over TLS
}

// Verifier checks the origin of a message received by the MX listener
// (mta/mailauth's Verifier: SPF, DKIM and DMARC), and says what to do
// with it. msg is the whole message as the client sent it, without the
// listener's Received field, forged Authentication-Results fields still
// in it; Verify must not change it nor keep it past its return. The
// Verdict's Headers (an Authentication-Results field, whose authserv-id
// is the listener's Hostname) go on top of the message stored; see
// InboundConfig.Verifier for the rest. Verify may block on DNS and is
// called concurrently for different sessions; an error is answered with
// a temporary failure.
type Verifier interface {
	Verify(ctx context.Context, o Origin, msg []byte) (Verdict, error)
}

// verifier is the Verifier the session's messages go through: the
// configured one on the MX listener, none on a submission listener.
func (s *inboundSession) verifier() Verifier {
	if s.in.auth != nil {
		return nil
	}
	return s.in.cfg.Verifier
}

// check has v check the origin of msg, the whole message as received,
// and f its content, either of them nil for none, in that order; it sets
// env.Mailbox to the folder they file the message into ("Junk" if either
// says so). It returns the header fields they add, each with its CRLF
// (the filter's above the verifier's), and the message to store under
// them: msg without its forged Authentication-Results fields, when v is
// set. Or it returns the reply refusing the message.
func (s *inboundSession) check(ctx context.Context, v Verifier, f Filter, env *txlog.Envelope, id string, msg []byte) (string, []byte, error) {
	var headers string
	if v != nil {
		_, secure := s.conn().(*tls.Conn)
		verdict, err := v.Verify(ctx, Origin{IP: s.ip, Hello: s.smtp.Hostname(), MailFrom: s.from, TLS: secure}, msg)
		if err != nil {
			s.in.log.Error("origin checks", "id", id, "remote", s.remote, "err", err)
			return "", nil, errTemporary
		}
		if verdict.Action == Reject {
			s.in.log.Info("message refused by the origin checks", "id", id, "from", reversePath(s.from), "to", s.to, "remote", s.remote)
			return "", nil, refusal(verdict.Reply)
		}
		if verdict.Action == Junk {
			env.Mailbox = junk
		}
		headers = headerFields(verdict.Headers)
		msg = stripAuthResults(msg, s.in.cfg.Hostname)
	}
	if f != nil {
		verdict, err := f.Check(ctx, *env, prefixedReader{headers, msg}, int64(len(headers)+len(msg)))
		if err != nil {
			s.in.log.Error("content filter", "err", err)
			return "", nil, errTemporary
		}
		if verdict.Action == Reject {
			s.in.log.Info("message refused by the content filter", "id", id, "from", reversePath(s.from), "to", s.to, "remote", s.remote)
			return "", nil, refusal(verdict.Reply)
		}
		if verdict.Action == Junk {
			env.Mailbox = junk
		}
		headers = headerFields(verdict.Headers) + headers
	}
	return headers, msg, nil
}

// junk is the folder a Junk verdict files a message into: made with every
// user; the Deliverer falls back to INBOX if it is gone.
const junk = "Junk"

// refusal is the reply for a Reject verdict's Reply: 550 5.7.1 if it is
// zero.
func refusal(rep Reply) error {
	if rep.Code == 0 {
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "Message refused"}
	}
	return &smtp.SMTPError{Code: rep.Code, EnhancedCode: smtp.EnhancedCode(rep.Enhanced), Message: rep.Message}
}

// headerFields returns a Verdict's header fields as they are prepended,
// each with its CRLF: only those that are one line and have a colon.
func headerFields(hs []string) string {
	var b strings.Builder
	for _, h := range hs {
		if !strings.ContainsAny(h, "\r\n") && strings.Contains(h, ":") {
			b.WriteString(h)
			b.WriteString("\r\n")
		}
	}
	return b.String()
}

// prefixedReader reads p, then b, as one io.ReaderAt.
type prefixedReader struct {
	p string
	b []byte
}

func (r prefixedReader) ReadAt(dst []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("mta: negative offset")
	}
	n := 0
	if off < int64(len(r.p)) {
		n = copy(dst, r.p[off:])
	}
	if n < len(dst) {
		if at := off + int64(n) - int64(len(r.p)); at < int64(len(r.b)) {
			n += copy(dst[n:], r.b[at:])
		}
	}
	if n < len(dst) {
		return n, io.EOF
	}
	return n, nil
}

// stripAuthResults takes out of msg's header, in place, every
// Authentication-Results field (RFC 8601) whose authserv-id is id, in any
// case, with its continuation lines, and returns what is left: fields a
// client forged to pass for this host's (RFC 8601 §5). Other fields, and
// the body, are left as they are.
func stripAuthResults(msg []byte, id string) []byte {
	type span struct{ start, end int }
	var drop []span
	field, off := -1, 0 // where the field being read starts; where the next line does
	end := func(at int) {
		if field >= 0 && isAuthResultsOf(msg[field:at], id) {
			drop = append(drop, span{field, at})
		}
	}
	body := scanHeader(msg, func(line []byte, _ bool) bool {
		if line[0] != ' ' && line[0] != '\t' {
			end(off)
			field = off
		}
		off += len(line)
		return true
	})
	end(body)
	if len(drop) == 0 {
		return msg
	}
	out := msg[:drop[0].start]
	for i, d := range drop {
		next := len(msg)
		if i+1 < len(drop) {
			next = drop[i+1].start
		}
		out = append(out, msg[d.end:next]...) // moves bytes down: copy's overlap rule
	}
	return out
}

// authResults is the field name isAuthResultsOf looks for, lower case.
const authResults = "authentication-results"

// isAuthResultsOf reports whether field, a whole header field with its
// line ends, is an Authentication-Results field whose authserv-id is id,
// in any case.
func isAuthResultsOf(field []byte, id string) bool {
	name, value, ok := bytes.Cut(field, []byte(":"))
	if !ok || !bytes.EqualFold(bytes.TrimRight(name, " \t"), []byte(authResults)) {
		return false
	}
	got, ok := authservID(value)
	return ok && strings.EqualFold(got, id)
}

// authservID returns the authserv-id that starts an Authentication-Results
// field's value (RFC 8601 §2.2): a token or a quoted-string (RFC 2045),
// after white space, line folds and comments.
func authservID(v []byte) (string, bool) {
	i := skipCFWS(v, 0)
	if i < 0 || i == len(v) {
		return "", false
	}
	if v[i] == '"' {
		var b []byte
		for i++; i < len(v); i++ {
			switch c := v[i]; c {
			case '"':
				return string(b), len(b) > 0
			case '\\':
				if i++; i < len(v) {
					b = append(b, v[i])
				}
			case '\r', '\n':
				// a fold
			default:
				b = append(b, c)
			}
		}
		return "", false
	}
	start := i
	for i < len(v) && v[i] > ' ' && v[i] < 0x7f && strings.IndexByte(tspecials, v[i]) < 0 {
		i++
	}
	return string(v[start:i]), i > start
}

// tspecials are the characters a token (RFC 2045 §5.1) cannot hold,
// besides white space and controls.
const tspecials = `()<>@,;:\"/[]?=`

// skipCFWS returns the offset of the first byte of v from i that is not
// white space, a line end or in a comment (nested, with quoted pairs), or
// -1 if a comment does not end.
func skipCFWS(v []byte, i int) int {
	depth := 0
	for ; i < len(v); i++ {
		switch c := v[i]; {
		case c == '\\' && depth > 0:
			i++
		case c == '(':
			depth++
		case c == ')' && depth > 0:
			depth--
		case depth > 0, c == ' ', c == '\t', c == '\r', c == '\n':
		default:
			return i
		}
	}
	if depth > 0 {
		return -1
	}
	return i
}
