package mta

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/emersion/go-smtp"

	"github.com/mailsys/mailsys/internal/tlsconf"
	"github.com/mailsys/mailsys/txlog"
	"github.com/mailsys/mailsys/userdata"
)

// Recipients is what the inbound listener needs of the UserDB to accept or
// refuse a recipient; userdata.UserDB satisfies it.
type Recipients interface {
	LookupAddress(ctx context.Context, address string) (userdata.User, error)
	Domain(ctx context.Context, name string) (userdata.Domain, error)
	Limits(ctx context.Context, id userdata.UserID) (userdata.Limits, error)
	Usage(ctx context.Context, id userdata.UserID) (userdata.Usage, error)
}

// InboundConfig configures the inbound (MX) listener, and the submission
// one. Zero values mean the defaults, which DefaultInboundConfig spells
// out; negative sizes and durations are refused (see Validate) but where
// a field says what a negative value means.
type InboundConfig struct {
	Hostname       string // announced in the greeting and trace headers; "localhost" if empty
	MaxMessageSize int64  // advertised with SIZE; 32 MiB if zero
	MaxRecipients  int    // per message; 100 if zero
	// MaxUnknownRecipients is how many recipients a session may name
	// that are refused as unknown (no such user, a domain not served, a
	// bad address) before it is answered 421 and closed, against address
	// harvesting. Zero means 20; negative means no bound.
	MaxUnknownRecipients int
	// ReadTimeout bounds the wait for each command line, from when the
	// server starts waiting for it (trickling bytes does not extend it).
	// Zero means 5 minutes (RFC 5321 §4.5.3.2.7).
	ReadTimeout time.Duration
	// DataTimeout bounds the whole of a message's transfer, DATA or every
	// BDAT chunk of it, from the DATA command (RFC 5321 §4.5.3.2.6 says
	// 10 minutes for its end). A message not in by then is answered 451
	// and the connection closed. Zero means 10 minutes.
	DataTimeout time.Duration
	// LoginTimeout bounds, on a submission listener, the time from
	// connecting to a successful AUTH: a client not logged in by then is
	// answered 421 and closed. Zero means 1 minute.
	LoginTimeout time.Duration
	// MaxSession bounds a session's length, however busy the client keeps
	// it: past it, the next command line is answered 421 and the
	// connection closed (a message being received is answered first).
	// Zero means 30 minutes.
	MaxSession   time.Duration
	WriteTimeout time.Duration // per write; 1 minute if zero
	TLS          *tls.Config   // enables STARTTLS when set; left to Go, the suites and version are TLS 1.2+ AEAD only
	Guard        *Guard        // access rules, shared with the other listeners; nil means a default Guard of its own
	Filter       Filter        // content filter called before acceptance; nil for none
	// Verifier, if set, checks the origin of each message the MX listener
	// receives (SPF, DKIM, DMARC: mta/mailauth's) at the end of DATA,
	// before the Filter, and the listener acts on its Verdict: Reject is
	// answered with its Reply (550 5.7.1 if zero), Junk files the message
	// into Junk, and its Headers (an Authentication-Results field) go on
	// top of the message stored, under the Received field and the
	// Filter's, and are what the Filter then sees on top of the message
	// (as SpamAssassin-style filters expect). Before that, every
	// Authentication-Results field of the message's header whose
	// authserv-id is Hostname (in any case) is taken out: the client
	// forged it (RFC 8601 §5), so the Verifier must use Hostname as its
	// authserv-id. A Verify error is answered 451 and logged. A
	// submission listener never calls it, even if set: its users are
	// authenticated, and their mail is checked where it arrives.
	Verifier Verifier
	// AnyFrom lists who may submit mail whose From: and Sender: are not
	// their own addresses (see NewSubmission): user addresses, and
	// domains as "@example.com" for all of their users. Empty means
	// nobody.
	AnyFrom []string
	Logger  *slog.Logger // nil means slog.Default()
	// Metrics, if set, is told of connections, commands, logins and
	// accepted transactions (see Metrics). Nil means none.
	Metrics Metrics
	// Logins, if set, is told of every user who logs in (AUTH on a
	// submission listener).
	Logins userdata.LoginObserver
}

// Defaults of InboundConfig.
const (
	defaultHostname             = "localhost"
	defaultMaxMessageSize       = 32 << 20
	defaultMaxRecipients        = 100
	defaultMaxUnknownRecipients = 20
	defaultReadTimeout          = 5 * time.Minute
	defaultDataTimeout          = 10 * time.Minute
	defaultLoginTimeout         = time.Minute
	defaultMaxSession           = 30 * time.Minute
	defaultWriteTimeout         = time.Minute
)

// DefaultInboundConfig returns the configuration the zero value stands
// for, with every default spelled out: a starting point to change.
func DefaultInboundConfig() InboundConfig {
	return InboundConfig{
		Hostname:             defaultHostname,
		MaxMessageSize:       defaultMaxMessageSize,
		MaxRecipients:        defaultMaxRecipients,
		MaxUnknownRecipients: defaultMaxUnknownRecipients,
		ReadTimeout:          defaultReadTimeout,
		DataTimeout:          defaultDataTimeout,
		LoginTimeout:         defaultLoginTimeout,
		MaxSession:           defaultMaxSession,
		WriteTimeout:         defaultWriteTimeout,
	}
}

// Validate reports every problem of c at once (errors.Join, each naming
// its field), or nil: a negative size, count or duration where none is
// allowed, a Hostname that could not stand in the greeting or the
// Received field, an AnyFrom entry that is neither an address nor
// "@domain", and a Guard made from a configuration GuardConfig.Validate
// refuses. NewInbound and NewSubmission call it.
func (c InboundConfig) Validate() error {
	var errs []error
	bad := func(field string, format string, args ...any) {
		errs = append(errs, fmt.Errorf("mta: InboundConfig.%s: %s", field, fmt.Sprintf(format, args...)))
	}
	if strings.ContainsFunc(c.Hostname, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		bad("Hostname", "%q holds white space or a control character", c.Hostname)
	}
	if c.MaxMessageSize < 0 {
		bad("MaxMessageSize", "negative (%d)", c.MaxMessageSize)
	}
	if c.MaxRecipients < 0 {
		bad("MaxRecipients", "negative (%d)", c.MaxRecipients)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"ReadTimeout", c.ReadTimeout}, {"DataTimeout", c.DataTimeout}, {"LoginTimeout", c.LoginTimeout},
		{"MaxSession", c.MaxSession}, {"WriteTimeout", c.WriteTimeout}} {
		if d.v < 0 {
			bad(d.name, "negative (%v)", d.v)
		}
	}
	for i, a := range c.AnyFrom {
		if err := checkAnyFrom(a); err != nil {
			bad(fmt.Sprintf("AnyFrom[%d]", i), "%q: %v", a, err)
		}
	}
	if c.Guard != nil && c.Guard.invalid != nil {
		bad("Guard", "made from an invalid GuardConfig: %v", c.Guard.invalid)
	}
	return errors.Join(errs...)
}

// checkAnyFrom checks an AnyFrom entry: "local@domain" or "@domain", with
// no white space and one "@".
func checkAnyFrom(a string) error {
	local, domain, ok := strings.Cut(a, "@")
	switch {
	case !ok:
		return errors.New(`neither an address nor "@domain"`)
	case domain == "" || strings.Contains(domain, "@"):
		return errors.New("no domain, or more than one @")
	case strings.ContainsFunc(a, func(r rune) bool { return r <= ' ' || r == 0x7f }):
		return errors.New("white space or a control character")
	case strings.HasPrefix(domain, ".") || strings.HasSuffix(domain, ".") || strings.Contains(domain, ".."):
		return errors.New("not a domain name")
	}
	_ = local // "" is "@domain": every user of the domain
	return nil
}

// Inbound is the MX listener: it accepts mail for local users only (it
// never relays), writes each message to the transaction log, answers 250
// once the log has it on stable storage, and hands it to the Deliverer.
// NewSubmission makes one that is the submission listener instead, which
// also takes its authenticated users' mail for other domains when the
// Deliverer has a Relay.
//
// A delivery that fails (a full disk, a database down) is tried again in
// the background, after a delay that doubles from one attempt to the next,
// a bounded number of times; the transaction stays pending in the log
// meanwhile, and one still pending at Shutdown, or after the last attempt,
// is finished by the next start's Deliverer.Recover.
type Inbound struct {
	cfg   InboundConfig
	base  *slog.Logger // the component's logger, for what names the listener itself (the gate)
	log   *slog.Logger // base with the listener's name
	users Recipients
	deliv *Deliverer
	srv   *smtp.Server
	auth  Authenticator // set for a submission listener
	name  string        // of the listener, for the Guard: "smtp" or "submission"

	// ctx is the context of every backend call: sessions derive theirs
	// from it, deliveries use it. Close cancels it, and Shutdown once its
	// own context ends.
	ctx    context.Context
	cancel context.CancelFunc

	wg       sync.WaitGroup // deliveries in progress or waiting to be retried
	jobs     chan delivery  // to an idle delivery worker
	slots    chan struct{}  // one per worker or retry running: bounds the deliveries in progress
	stop     chan struct{}  // closed by Shutdown and Close: retries give up
	stopOnce sync.Once

	mu        sync.Mutex
	closed    bool                      // Shutdown or Close was called
	listeners map[net.Listener]struct{} // being served
}

// ErrServerClosed is what Serve and ServeTLS return after Shutdown or
// Close, and what a second Shutdown returns. It also matches
// smtp.ErrServerClosed (errors.Is), for callers that tested for go-smtp's.
var ErrServerClosed error = serverClosed{}

type serverClosed struct{}

func (serverClosed) Error() string        { return "mta: server closed" }
func (serverClosed) Is(target error) bool { return target == smtp.ErrServerClosed }

// maxDeliveries bounds the deliveries running in the background: past it,
// sessions wait before their 250, which slows senders down instead of
// piling up goroutines.
const maxDeliveries = 64

// Retries of a failed delivery: the first after retryFirst, each later one
// after twice the delay before it, at most retryMax, and retryAttempts
// attempts in all (about five minutes).
const (
	retryFirst    = 500 * time.Millisecond
	retryMax      = time.Minute
	retryAttempts = 12
)

// NewInbound returns an inbound listener, or the error of
// cfg.Validate; Serve starts it.
func NewInbound(cfg InboundConfig, users Recipients, d *Deliverer) (*Inbound, error) {
	return newInbound(cfg, users, d, "smtp")
}

// newInbound returns a listener named name, for the Guard and the logs:
// "smtp" or "submission".
func newInbound(cfg InboundConfig, users Recipients, d *Deliverer, name string) (*Inbound, error) {
	err := cfg.Validate()
	if users == nil {
		err = errors.Join(err, errors.New("mta: no Recipients"))
	}
	if d == nil || d.Log == nil || d.Store == nil || d.Users == nil {
		err = errors.Join(err, errors.New("mta: a Deliverer needs a Log, a Store and Users"))
	}
	if err != nil {
		return nil, err
	}
	def := DefaultInboundConfig()
	if cfg.Hostname == "" {
		cfg.Hostname = def.Hostname
	}
	if cfg.MaxMessageSize == 0 {
		cfg.MaxMessageSize = def.MaxMessageSize
	}
	if cfg.MaxRecipients == 0 {
		cfg.MaxRecipients = def.MaxRecipients
	}
	if cfg.MaxUnknownRecipients == 0 {
		cfg.MaxUnknownRecipients = def.MaxUnknownRecipients
	}
	for _, d := range []struct{ v, def *time.Duration }{{&cfg.ReadTimeout, &def.ReadTimeout}, {&cfg.DataTimeout, &def.DataTimeout},
		{&cfg.LoginTimeout, &def.LoginTimeout}, {&cfg.MaxSession, &def.MaxSession}, {&cfg.WriteTimeout, &def.WriteTimeout}} {
		if *d.v == 0 {
			*d.v = *d.def
		}
	}
	if cfg.Guard == nil {
		cfg.Guard = NewGuard(GuardConfig{})
	}
	if cfg.Metrics == nil {
		cfg.Metrics = noMetrics{}
	}
	cfg.AnyFrom = slices.Clone(cfg.AnyFrom)
	cfg.TLS = tlsconf.Harden(cfg.TLS)
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	base := log.With("component", "mta")
	ctx, cancel := context.WithCancel(context.Background())
	in := &Inbound{cfg: cfg, base: base, log: base.With("listener", name), users: users, deliv: d, name: name,
		ctx: ctx, cancel: cancel, jobs: make(chan delivery), slots: make(chan struct{}, maxDeliveries), stop: make(chan struct{}),
		listeners: map[net.Listener]struct{}{}}
	s := smtp.NewServer(in)
	s.Domain = cfg.Hostname
	s.MaxMessageBytes = cfg.MaxMessageSize
	s.MaxRecipients = cfg.MaxRecipients
	s.MaxLineLength = 2000 // RFC 5321 says 1000 with CRLF; a little slack for sloppy clients
	s.ReadTimeout = cfg.ReadTimeout
	s.WriteTimeout = cfg.WriteTimeout
	s.TLSConfig = cfg.TLS
	s.EnableSMTPUTF8 = true
	s.EnableDSN = true // RET, ENVID, NOTIFY, ORCPT: kept in the Envelope
	s.ErrorLog = errorLog{in.log}
	in.srv = s
	return in, nil
}

// Shutdown stops accepting and waits for the sessions and the deliveries
// in progress to finish, or for ctx to end: then it cancels what is left
// (the backend calls of sessions and deliveries, through the listener's
// context), closes the connections and returns ctx's error. Deliveries
// waiting to be retried are left to the next start's Recover. A second
// call returns ErrServerClosed.
func (in *Inbound) Shutdown(ctx context.Context) error {
	if !in.shut() {
		return ErrServerClosed
	}
	if err := in.srv.Shutdown(ctx); err != nil && ctx.Err() != nil {
		in.cancel()
		in.srv.Close()
		return ctx.Err()
	}
	done := make(chan struct{})
	go func() { in.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		in.cancel()
		return ctx.Err()
	}
	in.cancel()
	return nil
}

// Close stops accepting, closes every connection and cancels the backend
// calls in progress, of sessions and deliveries, at once, without waiting
// for them to return. A message not yet answered 250 is not accepted; a
// delivery cut short stays pending in the log for the next start's
// Recover. A second call returns ErrServerClosed.
func (in *Inbound) Close() error {
	if !in.shut() {
		return ErrServerClosed
	}
	in.cancel()
	in.srv.Close()
	return nil
}

// shut marks the listener closed, closes the listeners Serve was given
// and tells retries to give up; it reports false if it was done before.
func (in *Inbound) shut() bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.closed {
		return false
	}
	in.closed = true
	in.stopOnce.Do(func() { close(in.stop) })
	for l := range in.listeners {
		l.Close()
	}
	return true
}

// serve runs go-smtp's Serve on l, which is closed by Shutdown and Close,
// and returns ErrServerClosed once they are called.
func (in *Inbound) serve(l net.Listener) error {
	in.mu.Lock()
	if in.closed {
		in.mu.Unlock()
		l.Close()
		return ErrServerClosed
	}
	in.listeners[l] = struct{}{}
	in.mu.Unlock()
	err := in.srv.Serve(l)
	in.mu.Lock()
	delete(in.listeners, l)
	closed := in.closed
	in.mu.Unlock()
	if closed {
		return ErrServerClosed
	}
	if err == nil { // go-smtp's Serve returns nil after its Close
		err = ErrServerClosed
	}
	return err
}

// NewSession implements smtp.Backend. The Guard admitted the connection
// when it was accepted (see Serve).
func (in *Inbound) NewSession(c *smtp.Conn) (smtp.Session, error) {
	ap, _ := netip.ParseAddrPort(c.Conn().RemoteAddr().String())
	ctx, cancel := context.WithCancel(in.ctx)
	s := &inboundSession{in: in, ctx: ctx, cancel: cancel, smtp: c, conn: c.Conn, remote: c.Conn().RemoteAddr().String(), ip: ap.Addr().Unmap()}
	if in.auth != nil {
		s.relay = in.deliv.Relay != nil // and its Rcpt takes none before AUTH
		return &submissionSession{s}, nil
	}
	return s, nil
}

type inboundSession struct {
	in     *Inbound
	ctx    context.Context // of the session's backend calls: the listener's, until Logout
	cancel context.CancelFunc
	smtp   *smtp.Conn
	conn   func() net.Conn // the client's connection, TLS once started
	remote string
	from   string
	to     []string
	rcpts  []userdata.User // the users of to, resolved at RCPT; a zero User for a relay recipient
	params []txlog.Rcpt    // the DSN parameters of to, and the Relay marks, in its order
	ret    string          // MAIL's RET, "" if not given
	envID  string          // MAIL's ENVID, decoded, "" if not given
	utf8   bool            // MAIL had the SMTPUTF8 parameter
	user   *userdata.User  // the authenticated user, on a submission listener
	relay  bool            // recipients of other domains are taken, for the Deliverer's Relay: submission with a Relay

	ip      netip.Addr
	unknown int // recipients refused as unknown in the session
}

var (
	errNoRelay     = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "Relaying denied: this server only accepts mail for its own domains"}
	errNoUser      = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "No such user here"}
	errDisabled    = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 2, 1}, Message: "Mailbox disabled"}
	errFull        = &smtp.SMTPError{Code: 452, EnhancedCode: smtp.EnhancedCode{4, 2, 2}, Message: "Mailbox full, try again later"}
	errNoStorage   = &smtp.SMTPError{Code: 452, EnhancedCode: smtp.EnhancedCode{4, 3, 1}, Message: "Insufficient system storage, try again later"}
	errTooBig      = &smtp.SMTPError{Code: 552, EnhancedCode: smtp.EnhancedCode{5, 3, 4}, Message: "Message too big"}
	errBadAddr     = &smtp.SMTPError{Code: 553, EnhancedCode: smtp.EnhancedCode{5, 1, 3}, Message: "Bad recipient address syntax"}
	errLineTooLong = &smtp.SMTPError{Code: 500, EnhancedCode: smtp.EnhancedCode{5, 5, 2}, Message: "Line too long"}
	errNoStore     = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "No message store available, try again later"}
	errTemporary   = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "Temporary failure, try again later"}
	errTooSlow     = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 4, 2}, Message: "Message not received in time, closing connection"}
	errHarvesting  = &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 7, 0}, Message: "Too many unknown recipients, closing connection"}
	errNeedUTF8    = &smtp.SMTPError{Code: 553, EnhancedCode: smtp.EnhancedCode{5, 6, 7}, Message: "Non-ASCII address needs the SMTPUTF8 parameter on MAIL FROM (RFC 6531)"}
	errLongEnvID   = &smtp.SMTPError{Code: 501, EnhancedCode: smtp.EnhancedCode{5, 5, 4}, Message: "ENVID parameter value longer than 100 characters (RFC 3461)"}
	errBadORcpt    = &smtp.SMTPError{Code: 501, EnhancedCode: smtp.EnhancedCode{5, 5, 4}, Message: "Malformed ORCPT parameter value (RFC 3461)"}
)

// The longest ENVID and ORCPT values RFC 3461 allows (§4.4 and §4.2),
// in characters. They are measured on the values go-smtp decoded from
// xtext, which are never longer than what the client sent.
const (
	maxEnvID = 100
	maxORcpt = 500
)

// checkUTF8 refuses a non-ASCII address in a transaction whose MAIL had no
// SMTPUTF8 parameter (RFC 6531 §3.5).
func checkUTF8(address string, utf8 bool) error {
	if utf8 {
		return nil
	}
	for i := 0; i < len(address); i++ {
		if address[i] >= 0x80 {
			return errNeedUTF8
		}
	}
	return nil
}

// Mail implements smtp.Session. go-smtp has checked RET (FULL or HDRS)
// and decoded ENVID (printable ASCII, not empty); its length is checked
// here.
func (s *inboundSession) Mail(from string, opts *smtp.MailOptions) error {
	defer s.took("MAIL", time.Now())
	if opts == nil {
		opts = &smtp.MailOptions{}
	}
	if opts.Size > s.in.cfg.MaxMessageSize {
		return errTooBig
	}
	if err := checkUTF8(from, opts.UTF8); err != nil {
		return err
	}
	if len(opts.EnvelopeID) > maxEnvID {
		return errLongEnvID
	}
	if w, ok := s.in.deliv.Store.(interface{ Writable() error }); ok { // msstore.Writable
		if err := w.Writable(); err != nil {
			s.in.log.Warn("message refused: no store can take it now", "err", err)
			return errNoStore
		}
	}
	s.from = from
	s.utf8 = opts.UTF8
	s.ret = string(opts.Return)
	s.envID = opts.EnvelopeID
	return nil
}

// Rcpt implements smtp.Session. A recipient of a domain not served here
// is refused with errNoRelay, unless the session relays (see
// inboundSession.relay): it is then taken, marked Relay. A session that
// names too many unknown recipients is answered 421 and closed.
func (s *inboundSession) Rcpt(to string, opts *smtp.RcptOptions) error {
	defer s.took("RCPT", time.Now())
	if err := checkUTF8(to, s.utf8); err != nil {
		return err
	}
	p, err := rcptParams(opts)
	if err != nil {
		return err
	}
	u, err := s.lookup(to)
	if err == errNoRelay && s.relay {
		u, err, p.Relay = userdata.User{}, nil, true
	}
	if err == errNoUser || err == errNoRelay || err == errBadAddr {
		s.unknown++
		if max := s.in.cfg.MaxUnknownRecipients; max > 0 && s.unknown >= max {
			s.in.log.Warn("closing a session naming too many unknown recipients", "remote", s.remote, "unknown", s.unknown)
			s.closeAfterReply()
			return errHarvesting
		}
	}
	if err != nil {
		return err
	}
	s.to = append(s.to, to)
	s.rcpts = append(s.rcpts, u)
	s.params = append(s.params, p)
	return nil
}

// rcptParams returns the DSN parameters of a RCPT (RFC 3461). go-smtp has
// checked NOTIFY (known values, none twice, NEVER alone) and decoded
// ORCPT (a known address type, xtext); an ORCPT that is too long, or
// whose address holds a control character or is not UTF-8, is refused
// here. ORcpt's address type is written in lower case, as registered.
func rcptParams(opts *smtp.RcptOptions) (txlog.Rcpt, error) {
	var p txlog.Rcpt
	if opts == nil {
		return p, nil
	}
	for i, n := range opts.Notify {
		if i > 0 {
			p.Notify += ","
		}
		p.Notify += string(n)
	}
	if a := opts.OriginalRecipient; a != "" {
		p.ORcpt = strings.ToLower(string(opts.OriginalRecipientType)) + ";" + a
		if !utf8.ValidString(a) || strings.ContainsFunc(a, unicode.IsControl) || utf8.RuneCountInString(p.ORcpt) > maxORcpt {
			return p, errBadORcpt
		}
	}
	return p, nil
}

// lookup resolves the recipient to, or returns the reply refusing it:
// errNoRelay for an address of a domain that is not served here.
func (s *inboundSession) lookup(to string) (userdata.User, error) {
	ctx := s.ctx
	_, domain, ok := strings.Cut(to, "@")
	if !ok || domain == "" {
		return userdata.User{}, errBadAddr
	}
	u, err := s.in.users.LookupAddress(ctx, to)
	switch {
	case errors.Is(err, userdata.ErrInvalid):
		return u, errBadAddr
	case errors.Is(err, userdata.ErrNotFound):
		if _, derr := s.in.users.Domain(ctx, domain); derr == nil {
			return u, errNoUser
		} else if !errors.Is(derr, userdata.ErrNotFound) && !errors.Is(derr, userdata.ErrInvalid) {
			s.in.log.Error("domain lookup", "domain", domain, "err", derr)
			return u, errTemporary
		}
		return u, errNoRelay
	case err != nil:
		s.in.log.Error("recipient lookup", "rcpt", to, "err", err)
		return u, errTemporary
	}
	if u.Disabled {
		return u, errDisabled
	}
	l, err := s.in.users.Limits(ctx, u.ID)
	if err == nil && l.Quota > 0 {
		var usage userdata.Usage
		if usage, err = s.in.users.Usage(ctx, u.ID); err == nil && usage.Bytes >= l.Quota {
			return u, errFull
		}
	}
	if err != nil {
		s.in.log.Error("recipient limits", "rcpt", to, "err", err)
		return u, errTemporary
	}
	return u, nil
}

// closeAfterReply closes the connection once the next reply is written.
func (s *inboundSession) closeAfterReply() {
	if w := watchedOf(s.conn()); w != nil {
		w.closeAfterReply()
	}
}

// Data implements smtp.Session. The message has DataTimeout to arrive
// whole; one that does not is answered 451 and the connection closed.
func (s *inboundSession) Data(r io.Reader) error {
	defer s.took("DATA", time.Now())
	if w := watchedOf(s.conn()); w != nil {
		w.startData(s.in.cfg.DataTimeout)
		defer w.endData()
	}
	r = wholeBody{r, s.conn}
	var err error
	if s.user != nil { // submission
		r, err = s.checkSenders(r)
	}
	if err == nil {
		err = s.data(r)
	}
	if err == errTooSlow {
		s.closeAfterReply()
	}
	return err
}

func (s *inboundSession) data(r io.Reader) error {
	ctx := s.ctx
	now := time.Now()
	env := txlog.Envelope{From: s.from, To: s.to, Received: now, Remote: s.remote, Ret: s.ret, EnvID: s.envID}
	if slices.ContainsFunc(s.params, func(p txlog.Rcpt) bool { return p != txlog.Rcpt{} }) {
		env.Rcpts = s.params // else nil: plain mail for local users
	}
	id := newMessageID()
	trace := s.trace(id, now)
	counted := &countReader{r: r}
	k := newKept(s.from)
	var body io.Reader // the message to log
	if v, f := s.verifier(), s.in.cfg.Filter; v != nil || f != nil {
		// The checks need the whole message before the answer: read it
		// (within the size limit go-smtp enforces) and act on the verdicts.
		msg, err := io.ReadAll(counted)
		if err != nil {
			k.release()
			return s.readError(err)
		}
		headers, msg, err := s.check(ctx, v, f, &env, id, msg)
		if err != nil {
			k.release()
			return err
		}
		body = k.add(trace+headers, msg)
	} else {
		var err error
		if body, err = k.read(trace, counted); err != nil {
			k.release()
			return s.readError(err)
		}
	}
	tx, err := s.in.deliv.Log.Accept(ctx, env, body)
	if !k.whole {
		k.release() // the log has what it held
		k = nil
	}
	if err != nil {
		k.release()
		return s.readError(err)
	}
	s.logAccepted(id, tx, counted.n)
	s.in.cfg.Metrics.Accepted(s.in.name, len(env.To))
	if s.user != nil && s.in.deliv.Observer != nil {
		s.in.deliv.Observer.Submitted(*s.user, len(env.To))
	}
	// Durable now: 250 goes out as Data returns. Delivery goes on in the
	// background, retried if it fails.
	s.in.startDelivery(delivery{tx, &attempt{kept: k, rcpts: s.rcpts}})
	return nil
}

// A message of up to keepMax bytes, trace field included, is kept in
// memory from DATA to the end of its first delivery attempt, which then
// reads nothing back from the log. Its buffer starts at keepFirst bytes;
// buffers up to keepPooled are used again.
const (
	keepMax    = 1 << 20
	keepFirst  = 16 << 10
	keepPooled = 64 << 10
)

var keptPool = sync.Pool{New: func() any { b := make([]byte, 0, keepFirst); return &b }}

// kept is a message kept in memory for its delivery: the Return-Path
// field for the envelope sender, then the message as logged, so that
// the delivery stores b as it is when the message has no Return-Path
// field of its own (see deliverySource).
type kept struct {
	buf   *[]byte // from keptPool
	b     []byte
	rp    int  // the length of the Return-Path field
	whole bool // b holds the whole message
}

func newKept(from string) *kept {
	buf := keptPool.Get().(*[]byte)
	b := append((*buf)[:0], "Return-Path: <"...)
	b = append(b, from...)
	b = append(b, ">\r\n"...)
	return &kept{buf: buf, b: b, rp: len(b)}
}

// logged is the message as the log holds it.
func (k *kept) logged() []byte { return k.b[k.rp:] }

// read reads trace and then r, up to keepMax bytes in all, and returns a
// reader of the message to log: what was read, then the rest of r.
func (k *kept) read(trace string, r io.Reader) (io.Reader, error) {
	var err error
	k.b, k.whole, err = readUpTo(append(k.b, trace...), r, k.rp+keepMax)
	if err != nil {
		return nil, err
	}
	if k.whole {
		return bytes.NewReader(k.logged()), nil
	}
	return io.MultiReader(bytes.NewReader(k.logged()), r), nil
}

// add keeps trace and msg, if they fit, and returns a reader of them.
func (k *kept) add(trace string, msg []byte) io.Reader {
	if len(trace)+len(msg) > keepMax {
		return io.MultiReader(strings.NewReader(trace), bytes.NewReader(msg))
	}
	k.b = append(append(k.b, trace...), msg...)
	k.whole = true
	return bytes.NewReader(k.logged())
}

// release gives the storage back; k, if not nil, is not used after.
func (k *kept) release() {
	if k == nil || k.b == nil {
		return
	}
	if cap(k.b) <= keepPooled {
		*k.buf = k.b[:0]
		keptPool.Put(k.buf)
	}
	k.b = nil
}

// readUpTo appends what r holds to b, up to max bytes in all, and reports
// whether that was all of it (r reached io.EOF).
func readUpTo(b []byte, r io.Reader, max int) ([]byte, bool, error) {
	for len(b) < max {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)] // let append grow it
		}
		n, err := r.Read(b[len(b):min(cap(b), max)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, true, nil
		}
		if err != nil {
			return b, false, err
		}
	}
	return b, false, nil
}

// delivery is a transaction for the listener's deliveries to finish.
type delivery struct {
	tx *txlog.Txn
	a  *attempt
}

// workerIdle is how long a delivery worker waits for the next
// transaction before it ends.
const workerIdle = 10 * time.Second

// startDelivery hands j to an idle delivery worker, or to a new one if
// fewer than maxDeliveries run, or else waits for one to be idle. Workers
// outlive their deliveries so that each does not start a goroutine anew
// (and grow its stack anew: the UserDB's calls go deep).
func (in *Inbound) startDelivery(j delivery) {
	in.wg.Add(1)
	select {
	case in.jobs <- j:
		return
	default:
	}
	select {
	case in.jobs <- j:
	case in.slots <- struct{}{}:
		go in.worker(j)
	}
}

// worker delivers j, which holds one of in.slots, then the transactions
// handed to it, until it has been idle for workerIdle or the listener is
// closed.
func (in *Inbound) worker(j delivery) {
	defer func() { <-in.slots }()
	idle := time.NewTimer(workerIdle)
	defer idle.Stop()
	for {
		in.first(j)
		idle.Reset(workerIdle)
		select {
		case j = <-in.jobs:
		case <-idle.C:
			return
		case <-in.ctx.Done():
			return
		}
	}
}

// first makes the first attempt at delivering j; a failed one is retried
// by a goroutine of its own (see Inbound).
func (in *Inbound) first(j delivery) {
	err := in.deliv.deliver(in.ctx, j.tx, j.a)
	j.a.kept.release() // not held while a retry waits: the log has it
	j.a.kept = nil
	if err == nil {
		in.wg.Done()
		return
	}
	in.deliv.metrics().Delivery(Deferred, len(j.tx.Envelope.To))
	go in.retry(j, err)
}

// retry tries j again after a failure, with a delay that doubles, a slot
// held only while an attempt runs, until one works, retryAttempts were
// made, or Shutdown or Close.
func (in *Inbound) retry(j delivery, err error) {
	defer in.wg.Done()
	delay := retryFirst
	for n := 1; ; n++ {
		if n == retryAttempts {
			in.log.Error("delivery failed; giving up until the next start", "txn", j.tx.ID, "attempts", n, "err", err)
			return
		}
		in.log.Warn("delivery failed; will try again", "txn", j.tx.ID, "attempt", n, "in", delay, "err", err)
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-in.stop:
			t.Stop()
			in.log.Info("shutting down; delivery left for the next start", "txn", j.tx.ID)
			return
		}
		select {
		case in.slots <- struct{}{}:
		case <-in.stop:
			return
		}
		j.a.replay = true
		err = in.deliv.deliver(in.ctx, j.tx, j.a)
		<-in.slots
		if err == nil {
			return
		}
		in.deliv.metrics().Delivery(Deferred, len(j.tx.Envelope.To))
		delay = min(2*delay, retryMax)
	}
}

// readError turns an error met while taking in a message into the reply.
func (s *inboundSession) readError(err error) error {
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		return se // go-smtp's own, such as the size limit
	}
	if errors.Is(err, txlog.ErrTooLarge) {
		return errTooBig
	}
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		s.in.log.Warn("message refused: no room to store it", "err", err)
		return errNoStorage
	}
	if errors.Is(err, smtp.ErrTooLongLine) {
		return errLineTooLong
	}
	if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
		s.in.log.Info("message not received in time", "remote", s.remote, "limit", s.in.cfg.DataTimeout)
		return errTooSlow
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, smtp.ErrDataReset) || readFailed(s.conn()) {
		// The client's doing: it closed or reset the connection, or
		// reset the transaction, in the middle of the message.
		s.in.log.Info("client went away in the middle of a message", "remote", s.remote, "err", err)
		return errTemporary
	}
	s.in.log.Error("accepting a message", "remote", s.remote, "err", err)
	return errTemporary
}

// logAccepted logs the one line that says a message was accepted: its id
// (in the Received field) and transaction, the envelope, its size as the
// client sent it, and how the client came.
func (s *inboundSession) logAccepted(id string, tx *txlog.Txn, size int64) {
	_, secure := s.conn().(*tls.Conn)
	attrs := []any{"id", id, "txn", tx.ID, "from", reversePath(s.from), "to", s.to, "size", size, "remote", s.remote, "tls", secure}
	if s.user != nil {
		attrs = append(attrs, "user", s.user.Address)
	}
	if tx.Envelope.Mailbox != "" {
		attrs = append(attrs, "folder", tx.Envelope.Mailbox)
	}
	s.in.log.Info("message accepted", attrs...)
}

// reversePath is how the logs show a MAIL FROM address: "<>" for the null
// sender.
func reversePath(from string) string {
	if from == "" {
		return "<>"
	}
	return from
}

// countReader counts the bytes read through it.
type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// Reset implements smtp.Session: the transaction is forgotten.
func (s *inboundSession) Reset() {
	s.from, s.to, s.rcpts, s.params, s.utf8, s.ret, s.envID = "", nil, nil, nil, false, "", ""
}

// Logout implements smtp.Session: the session's context ends.
func (s *inboundSession) Logout() error {
	s.cancel()
	return nil
}

// errorLog sends go-smtp's error log to slog. go-smtp logs a panic in a
// session (an error here), a failed Accept it retries (a warning), and a
// connection that ended in an error, which is the client's doing (a TLS
// handshake that failed, a connection reset) and logged as information.
type errorLog struct{ log *slog.Logger }

func (e errorLog) Printf(format string, v ...any) { e.print(fmt.Sprintf(format, v...)) }
func (e errorLog) Println(v ...any)               { e.print(fmt.Sprint(v...)) }

func (e errorLog) print(msg string) {
	switch {
	case strings.HasPrefix(msg, "panic"):
		e.log.Error(msg)
	case strings.HasPrefix(msg, "accept error"):
		e.log.Warn(msg)
	default:
		e.log.Info(msg)
	}
}

// took reports command name, begun at began, to the Metrics: deferred
// by the session's methods.
func (s *inboundSession) took(name string, began time.Time) {
	s.in.cfg.Metrics.Command(name, time.Since(began))
}
