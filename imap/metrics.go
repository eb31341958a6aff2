package imap

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
// The strings are the server's constants: listener names "imap" and
// "imaps", mechanisms "LOGIN" (the LOGIN command) and "PLAIN"
// (AUTHENTICATE PLAIN), and IMAP4rev2 command names, upper case.
type Metrics interface {
	// ConnAccepted and ConnRefused report a connection the Guard admitted
	// or refused on the listener named listener.
	ConnAccepted(listener string)
	ConnRefused(listener string)
	// Command reports a command the backend ran, and how long the
	// backend took: SELECT and EXAMINE, CREATE, DELETE, RENAME,
	// SUBSCRIBE, UNSUBSCRIBE, LIST, STATUS, APPEND, UNSELECT (and CLOSE),
	// EXPUNGE, SEARCH, FETCH, STORE, COPY, MOVE, NAMESPACE, LOGIN and
	// AUTHENTICATE, with their UID forms under the same name. go-imap
	// answers the rest itself (CAPABILITY, NOOP, ENABLE, ID, LOGOUT,
	// STARTTLS), and IDLE, whose length is the client's, is not
	// reported. FETCH's time includes writing its responses.
	Command(name string, elapsed time.Duration)
	// LoginSucceeded and LoginFailed report a login by mechanism. A
	// wrong password or an unknown user is a failure; a login refused
	// for want of capacity, or locked out, is neither.
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
