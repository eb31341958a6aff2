package pop3

import (
	"net/netip"
	"time"
)

// Metrics receives the server's events, for a metrics system: the
// metrics package implements it with Prometheus, and a host program may
// give its own. Every session calls it, concurrently, on its hot path:
// the methods must be safe for concurrent use, must not block and should
// not allocate.
//
// The strings are the server's constants (listener names "pop3" and
// "pop3s", mechanisms "USER" and "PLAIN", and the RFC 1939 and RFC 2449
// command keywords, upper case), except that Command's name is the
// client's keyword, upper-cased, for a command the server does not know:
// an implementation that makes a label of it must bound the values it
// takes (the metrics package counts unknown names as "other").
type Metrics interface {
	// ConnAccepted and ConnRefused report a connection the Guard admitted
	// or refused on the listener named listener.
	ConnAccepted(listener string)
	ConnRefused(listener string)
	// Command reports a command run, and how long it took from its line
	// being read to its reply being written to the session's buffer (for
	// RETR and TOP, the message sent but its last buffer).
	Command(name string, elapsed time.Duration)
	// LoginSucceeded and LoginFailed report a login by mechanism
	// ("USER" for USER/PASS, "PLAIN" for AUTH PLAIN). A wrong password
	// or an unknown user is a failure; a login refused for want of
	// capacity, or locked out, is neither.
	LoginSucceeded(mechanism string)
	LoginFailed(mechanism string)
}

// noMetrics is the Metrics of a Config without one.
type noMetrics struct{}

func (noMetrics) ConnAccepted(string)           {}
func (noMetrics) ConnRefused(string)            {}
func (noMetrics) Command(string, time.Duration) {}
func (noMetrics) LoginSucceeded(string)         {}
func (noMetrics) LoginFailed(string)            {}

// countingGuard is the Admitter of a server with Metrics: it asks the
// Guard, if any, and reports its answer.
type countingGuard struct {
	g Guard // nil admits everyone
	m Metrics
}

func (c countingGuard) Admit(listener string, ip netip.Addr) (func(), error) {
	if c.g == nil {
		c.m.ConnAccepted(listener)
		return func() {}, nil
	}
	release, err := c.g.Admit(listener, ip)
	if err != nil {
		c.m.ConnRefused(listener)
		return nil, err
	}
	c.m.ConnAccepted(listener)
	return release, nil
}
