package mta

import (
	"net/netip"
	"time"

	"github.com/mailsys/mailsys/userdata"
)

// Metrics receives an SMTP listener's events (InboundConfig.Metrics),
// for a metrics system: the metrics package implements it with
// Prometheus, and a host program may give its own. Every session calls
// it, concurrently, on its hot path: the methods must be safe for
// concurrent use, must not block and should not allocate.
//
// The strings are the listener's constants: listener names "smtp",
// "submission" and "submissions", mechanisms "PLAIN" and "LOGIN", and the
// command names "MAIL", "RCPT", "DATA" and "AUTH" (go-smtp answers the
// others itself, and they are not reported).
type Metrics interface {
	// ConnAccepted and ConnRefused report a connection the Guard admitted
	// or refused on the listener named listener.
	ConnAccepted(listener string)
	ConnRefused(listener string)
	// Command reports a command the listener ran, and how long it took
	// (for DATA, from its first byte to the transaction being durable).
	Command(name string, elapsed time.Duration)
	// LoginSucceeded and LoginFailed report an AUTH by mechanism. Wrong
	// credentials and an account that may not submit are failures; a
	// login refused for want of capacity, or locked out, is neither.
	LoginSucceeded(mechanism string)
	LoginFailed(mechanism string)
	// Accepted reports a transaction accepted (250 to DATA) on listener,
	// for recipients recipients.
	Accepted(listener string, recipients int)
}

// Outcome is what became of recipients of an accepted transaction, as
// DeliveryMetrics reports it.
type Outcome uint8

// The outcomes of DeliveryMetrics.Delivery.
const (
	// Delivered: indexed into a local user's folder.
	Delivered Outcome = iota
	// Deferred: an attempt at delivering the transaction failed and it
	// will be tried again (or left to the next start's Recover).
	Deferred
	// Bounced: accepted but not delivered (the mailbox full, or the
	// user gone since), reported to the sender.
	Bounced
	// Relayed: handed to the outbound queue, for another domain.
	Relayed
)

// String returns the outcome's name in lower case: "delivered",
// "deferred", "bounced" or "relayed".
func (o Outcome) String() string {
	switch o {
	case Delivered:
		return "delivered"
	case Deferred:
		return "deferred"
	case Bounced:
		return "bounced"
	case Relayed:
		return "relayed"
	}
	return "unknown"
}

// DeliveryMetrics receives the Deliverer's outcomes (Deliverer.Metrics).
// It is called concurrently from every delivery and must not block.
//
// A delivery replayed after a crash reports again what it does again:
// a recipient found already indexed is not reported Delivered twice, but
// a relay handed again to the queue is reported Relayed twice.
type DeliveryMetrics interface {
	// Delivery reports recipients recipients of one transaction (one
	// attempt of it, for Deferred) with outcome o.
	Delivery(o Outcome, recipients int)
}

// Observer is told of each message a local user gets or sends, to keep
// statistics per user, domain or unit (Deliverer.Observer). Its methods
// are called concurrently from the deliveries and the submission
// listeners, after the fact (the index entry made, the transaction
// durable), and must not block for long: a delivery waits for them. u is
// a copy, the Observer's to keep.
//
// Delivered is called once per recipient indexed. A delivery retried in
// the same run (a failure of the UserDB, say) is not reported twice.
// After a crash, Recover reports again every recipient of a transaction
// whose done mark was not durable, the ones it finds indexed already
// included: the reports are at least once, never lost, but a crash may
// repeat some.
type Observer interface {
	// Delivered reports a message of size bytes indexed into u's INBOX
	// (or the folder a filter chose).
	Delivered(u userdata.User, size int64)
	// Submitted reports a message u submitted (AUTH on a submission
	// listener), accepted for rcpts recipients, local or not.
	Submitted(u userdata.User, rcpts int)
}

// Defaults of a nil Metrics, DeliveryMetrics and Observer.
type noMetrics struct{}

func (noMetrics) ConnAccepted(string)           {}
func (noMetrics) ConnRefused(string)            {}
func (noMetrics) Command(string, time.Duration) {}
func (noMetrics) LoginSucceeded(string)         {}
func (noMetrics) LoginFailed(string)            {}
func (noMetrics) Accepted(string, int)          {}
func (noMetrics) Delivery(Outcome, int)         {}

// metrics returns the Deliverer's DeliveryMetrics, or none.
func (d *Deliverer) metrics() DeliveryMetrics {
	if d.Metrics == nil {
		return noMetrics{}
	}
	return d.Metrics
}

// countingGuard is the gate's Admitter of a listener with Metrics: it
// asks the Guard and reports its answer.
type countingGuard struct {
	g *Guard
	m Metrics
}

func (c countingGuard) Admit(listener string, ip netip.Addr) (func(), error) {
	release, err := c.g.Admit(listener, ip)
	if err != nil {
		c.m.ConnRefused(listener)
		return nil, err
	}
	c.m.ConnAccepted(listener)
	return release, nil
}
