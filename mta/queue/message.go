package queue

import (
	"context"
	"io"
	"time"
)

// Message is a message for the queue to send: its envelope. The body is
// given beside it to Enqueue.
type Message struct {
	// ID names the message in the queue, its logs and its bounces. It is
	// the key that makes Enqueue idempotent: a message whose ID is queued,
	// or was within Config.Remember, is not queued again. Printable ASCII,
	// at most 128 bytes.
	ID string
	// From is the envelope sender, "" for the null sender: a message from
	// it is never bounced.
	From string
	// Rcpts are the recipients, at least one, none twice.
	Rcpts []Rcpt
	// EnvID and Ret are the DSN parameters of MAIL (RFC 3461): the
	// envelope identifier, and "FULL" or "HDRS" ("" for neither).
	EnvID string
	Ret   string
	// Received is when the message was accepted: its lifetime and the
	// delay warning count from it. Zero means now.
	Received time.Time
}

// Rcpt is a recipient with its DSN parameters (RFC 3461).
type Rcpt struct {
	Addr string
	// Notify is NOTIFY: "" when not given (a failure and a delay are
	// reported), "NEVER", or a comma-separated set of SUCCESS, FAILURE
	// and DELAY.
	Notify string
	// ORcpt is ORCPT, "addr-type;address" (decoded from xtext), or "".
	ORcpt string
}

// Submitter takes the queue's bounces (delivery status notifications),
// from the null sender: mta.Deliverer, which delivers them locally and
// queues those for other domains. Submit returns once the message is
// durable; the queue then forgets it.
type Submitter interface {
	Submit(ctx context.Context, from string, to []string, body io.Reader) error
}

// Signer signs outgoing messages: mta/mailauth's Signer (DKIM). Sign reads
// the whole message and returns the header fields to prepend to it, each
// ending in CRLF, or "" for a message it does not sign (one from a domain
// that is not ours). It is called once per message, when it is queued.
type Signer interface {
	Sign(ctx context.Context, msg io.Reader) (string, error)
}
