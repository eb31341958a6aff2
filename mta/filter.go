package mta

import (
	"context"
	"io"

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
