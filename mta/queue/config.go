package queue

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/mailsys/mailsys/internal/dnsname"
	"github.com/mailsys/mailsys/mta/mtasts"
	"github.com/mailsys/mailsys/mta/resolve"
)

// Config configures a Queue. Zero values mean the defaults, which
// DefaultConfig spells out; only Dir is required.
type Config struct {
	// Dir holds the queue's database (messages, recipients' states) and
	// its MTA-STS policy cache. Required.
	Dir string
	// Hostname is the name given in EHLO and in the bounces'
	// Reporting-MTA. Zero means "localhost".
	Hostname string
	// Resolver answers the MX, address and TLSA lookups. Nil means the
	// system's (resolve.System, the servers of /etc/resolv.conf).
	Resolver resolve.Resolver
	// Port is the TCP port of the MX hosts: 25 if zero. (Tests and
	// unusual networks change it; routes name their own.)
	Port int

	// Transports maps a recipient domain (lower case) to the route that
	// takes its mail instead of its MX hosts, like Postfix's
	// transport_maps. A domain not in it takes SmartHost if set, else
	// its MX hosts.
	Transports map[string]Route
	// SmartHost, if set, takes the mail of every domain that Transports
	// does not name, or of SmartHostDomains only when that is not empty.
	SmartHost        *Route
	SmartHostDomains []string

	// RetryFirst is the delay before the first retry of a recipient
	// deferred (a 4xx reply, a host not answering); each later one
	// doubles, up to RetryMax, each drawn within ±Jitter of its value.
	// Zero means 5 minutes, 4 hours and 0.2.
	RetryFirst time.Duration
	RetryMax   time.Duration
	Jitter     float64
	// Lifetime is how long a recipient is retried: past it, the next
	// failure bounces it (4.4.7). Zero means 5 days.
	Lifetime time.Duration
	// DelayWarning is the age after which the sender is told, once, that
	// a recipient is still being retried (if NOTIFY allows it). Zero
	// means 4 hours; negative turns warnings off.
	DelayWarning time.Duration

	// Concurrency bounds the deliveries in progress, over all
	// destinations (one connection each): 100 if zero.
	// PerDestination bounds them for one destination (a domain, or a
	// route): 10 if zero.
	Concurrency    int
	PerDestination int
	// A destination whose connections fail DeadAfter times in a row (no
	// host reachable, a 4xx greeting, a timeout) is marked dead for
	// DeadFor: its mail is deferred without a try meanwhile, so that it
	// holds no worker. Zero means 5 and 2 minutes.
	DeadAfter int
	DeadFor   time.Duration
	// MaxPerConnection bounds the messages sent over one connection
	// before it is closed: 100 if zero.
	MaxPerConnection int

	// ConnectTimeout bounds a TCP connection's set-up, CommandTimeout
	// each command's reply (the greeting's, EHLO's, RCPT's...),
	// DataTimeout the whole message's transfer and its reply (RFC 5321
	// §4.5.3.2 gives 5 and 10 minutes). Zero means 30 s, 5 minutes and
	// 10 minutes.
	ConnectTimeout time.Duration
	CommandTimeout time.Duration
	DataTimeout    time.Duration
	// MaxReply bounds what a remote host may send in answer to one
	// command (TLS handshakes included): more fails the connection, as
	// from a misbehaving or hostile host. Zero means 1 MiB.
	MaxReply int

	// TLS is the base of the client's TLS configuration: its RootCAs
	// verify the certificates MTA-STS and routes require (nil: the
	// system's roots). Opportunistic STARTTLS does not verify.
	TLS *tls.Config
	// STSFetcher fetches MTA-STS policies (RFC 8461). Nil means
	// mtasts.HTTPSFetcher with TLS's roots. DisableSTS turns MTA-STS
	// off; DisableDANE turns DANE (RFC 7672) off.
	STSFetcher  mtasts.Fetcher
	DisableSTS  bool
	DisableDANE bool

	// Signer, if set, signs every message as it is queued (DKIM).
	Signer Signer
	// Bounces takes the delivery status notifications the queue makes
	// (failures, delays, relays to hosts without DSN). Nil means none are
	// sent: they are logged.
	Bounces Submitter
	// Remember is how long the ID of a message that left the queue is
	// kept, so that Enqueue of it again is a no-op (a replay after a
	// crash). Zero means 7 days.
	Remember time.Duration

	Logger *slog.Logger // nil means slog.Default()
}

// Route is a fixed next hop: a transport map entry, or the smart host.
type Route struct {
	// Addr is "host:port" (port 25 if left out).
	Addr string
	// Username and Password, if set, are sent with AUTH PLAIN; the route
	// then needs TLS (STARTTLS, or ImplicitTLS), with a certificate
	// verified against the host's name.
	Username, Password string
	// ImplicitTLS connects with TLS at once (port 465, RFC 8314), rather
	// than STARTTLS.
	ImplicitTLS bool
	// RequireTLS refuses to send without verified TLS even without AUTH.
	RequireTLS bool
}

// Defaults of Config.
const (
	defaultHostname         = "localhost"
	defaultPort             = 25
	defaultRetryFirst       = 5 * time.Minute
	defaultRetryMax         = 4 * time.Hour
	defaultJitter           = 0.2
	defaultLifetime         = 5 * 24 * time.Hour
	defaultDelayWarning     = 4 * time.Hour
	defaultConcurrency      = 100
	defaultPerDestination   = 10
	defaultDeadAfter        = 5
	defaultDeadFor          = 2 * time.Minute
	defaultMaxPerConnection = 100
	defaultConnectTimeout   = 30 * time.Second
	defaultCommandTimeout   = 5 * time.Minute
	defaultDataTimeout      = 10 * time.Minute
	defaultMaxReply         = 1 << 20
	defaultRemember         = 7 * 24 * time.Hour
)

// DefaultConfig returns the configuration of a queue in dir with every
// default spelled out: a starting point to change.
func DefaultConfig(dir string) Config {
	return Config{
		Dir: dir, Hostname: defaultHostname, Port: defaultPort,
		RetryFirst: defaultRetryFirst, RetryMax: defaultRetryMax, Jitter: defaultJitter,
		Lifetime: defaultLifetime, DelayWarning: defaultDelayWarning,
		Concurrency: defaultConcurrency, PerDestination: defaultPerDestination,
		DeadAfter: defaultDeadAfter, DeadFor: defaultDeadFor, MaxPerConnection: defaultMaxPerConnection,
		ConnectTimeout: defaultConnectTimeout, CommandTimeout: defaultCommandTimeout, DataTimeout: defaultDataTimeout,
		MaxReply: defaultMaxReply, Remember: defaultRemember,
	}
}

// Validate reports every problem of c at once (errors.Join, each naming
// its field), or nil: no Dir, a negative duration or count, a Jitter
// outside [0, 1), RetryMax below RetryFirst, a route without a usable
// address, credentials on a route, or a Hostname that could not stand in
// EHLO. Open calls it.
func (c Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("queue: Config.%s: %s", field, fmt.Sprintf(format, args...)))
	}
	if c.Dir == "" {
		bad("Dir", "required")
	}
	if c.Hostname != "" && !dnsname.IsHost(strings.TrimSuffix(c.Hostname, ".")) {
		bad("Hostname", "%q is not a host name", c.Hostname)
	}
	if c.Port < 0 || c.Port > 65535 {
		bad("Port", "%d out of range", c.Port)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"RetryFirst", c.RetryFirst}, {"RetryMax", c.RetryMax}, {"Lifetime", c.Lifetime}, {"DeadFor", c.DeadFor},
		{"ConnectTimeout", c.ConnectTimeout}, {"CommandTimeout", c.CommandTimeout}, {"DataTimeout", c.DataTimeout}, {"Remember", c.Remember}} {
		if d.v < 0 {
			bad(d.name, "negative (%v)", d.v)
		}
	}
	if c.RetryFirst > 0 && c.RetryMax > 0 && c.RetryMax < c.RetryFirst {
		bad("RetryMax", "%v is below RetryFirst (%v)", c.RetryMax, c.RetryFirst)
	}
	if c.Jitter < 0 || c.Jitter >= 1 {
		bad("Jitter", "%v is outside [0, 1)", c.Jitter)
	}
	for _, n := range []struct {
		name string
		v    int
	}{{"Concurrency", c.Concurrency}, {"PerDestination", c.PerDestination}, {"DeadAfter", c.DeadAfter},
		{"MaxPerConnection", c.MaxPerConnection}, {"MaxReply", c.MaxReply}} {
		if n.v < 0 {
			bad(n.name, "negative (%d)", n.v)
		}
	}
	for domain, r := range c.Transports {
		if domain != strings.ToLower(domain) || !dnsname.IsHost(domain) {
			bad("Transports", "%q is not a lower-case domain", domain)
		}
		if err := r.validate(); err != nil {
			bad("Transports["+domain+"]", "%v", err)
		}
	}
	if c.SmartHost != nil {
		if err := c.SmartHost.validate(); err != nil {
			bad("SmartHost", "%v", err)
		}
	} else if len(c.SmartHostDomains) > 0 {
		bad("SmartHostDomains", "set without a SmartHost")
	}
	return errors.Join(errs...)
}

func (r Route) validate() error {
	host, port, err := r.hostPort()
	if err != nil {
		return err
	}
	if !dnsname.IsHost(strings.TrimSuffix(host, ".")) && net.ParseIP(host) == nil {
		return fmt.Errorf("%q is not a host name or address", host)
	}
	if port < 1 || port > 65535 {
		return fmt.Errorf("port %d out of range", port)
	}
	if (r.Username == "") != (r.Password == "") {
		return errors.New("a Username needs a Password, and the reverse")
	}
	return nil
}

// hostPort splits the route's address, with port 25 if it has none.
func (r Route) hostPort() (string, int, error) {
	if r.Addr == "" {
		return "", 0, errors.New("no address (Addr)")
	}
	host, port, err := net.SplitHostPort(r.Addr)
	if err != nil {
		if strings.Contains(err.Error(), "missing port") {
			return strings.Trim(r.Addr, "[]"), defaultPort, nil
		}
		return "", 0, fmt.Errorf("address %q: %w", r.Addr, err)
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		return "", 0, fmt.Errorf("address %q: bad port", r.Addr)
	}
	return host, p, nil
}

// withDefaults returns c with its zero fields set to the defaults.
func (c Config) withDefaults() Config {
	d := DefaultConfig(c.Dir)
	set := func(v *time.Duration, def time.Duration) {
		if *v == 0 {
			*v = def
		}
	}
	seti := func(v *int, def int) {
		if *v == 0 {
			*v = def
		}
	}
	if c.Hostname == "" {
		c.Hostname = d.Hostname
	}
	seti(&c.Port, d.Port)
	set(&c.RetryFirst, d.RetryFirst)
	set(&c.RetryMax, d.RetryMax)
	if c.RetryMax < c.RetryFirst {
		c.RetryMax = c.RetryFirst
	}
	if c.Jitter == 0 {
		c.Jitter = d.Jitter
	}
	set(&c.Lifetime, d.Lifetime)
	set(&c.DelayWarning, d.DelayWarning)
	seti(&c.Concurrency, d.Concurrency)
	seti(&c.PerDestination, d.PerDestination)
	seti(&c.DeadAfter, d.DeadAfter)
	set(&c.DeadFor, d.DeadFor)
	seti(&c.MaxPerConnection, d.MaxPerConnection)
	set(&c.ConnectTimeout, d.ConnectTimeout)
	set(&c.CommandTimeout, d.CommandTimeout)
	set(&c.DataTimeout, d.DataTimeout)
	seti(&c.MaxReply, d.MaxReply)
	set(&c.Remember, d.Remember)
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}
