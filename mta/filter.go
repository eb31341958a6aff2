package mta

import (
	"context"
	"io"
	"net/netip"

	"github.com/mailsys/mailsys/txlog"
)

// Filter inspects a message before it is accepted, so that antispam and
// antivirus engines plug in. The listener calls it at the end of DATA with
// the envelope and the whole body (without the Received header), then acts
// on the Verdict before answering. Check may block (a scanner may take
// seconds) and is called concurrently for different sessions.
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
// listener's Received field; the Verdict's Headers (an
// Authentication-Results field) go on top of the message stored. Verify
// may block on DNS and is called concurrently for different sessions; an
// error is answered with a temporary failure.
type Verifier interface {
	Verify(ctx context.Context, o Origin, msg []byte) (Verdict, error)
}
