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
	"strings"
	"sync"
	"syscall"
	"time"

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
// one. Zero values mean the defaults.
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
	// AnyFrom lists who may submit mail whose From: and Sender: are not
	// their own addresses (see NewSubmission): user addresses, and
	// domains as "@example.com" for all of their users. Empty means
	// nobody.
	AnyFrom []string
	Logger  *slog.Logger // nil means slog.Default()
}

// Inbound is the MX listener: it accepts mail for local users only (it
// never relays), writes each message to the transaction log, answers 250
// once the log has it on stable storage, and hands it to the Deliverer.
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

	wg       sync.WaitGroup // deliveries in progress or waiting to be retried
	slots    chan struct{}  // bounds the deliveries in progress
	stop     chan struct{}  // closed by Shutdown: retries give up
	stopOnce sync.Once
}

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

// NewInbound returns an inbound listener; Serve starts it.
func NewInbound(cfg InboundConfig, users Recipients, d *Deliverer) *Inbound {
	return newInbound(cfg, users, d, "smtp")
}

// newInbound returns a listener named name, for the Guard and the logs:
// "smtp" or "submission".
func newInbound(cfg InboundConfig, users Recipients, d *Deliverer, name string) *Inbound {
	if cfg.Hostname == "" {
		cfg.Hostname = "localhost"
	}
	if cfg.MaxMessageSize == 0 {
		cfg.MaxMessageSize = 32 << 20
	}
	if cfg.MaxRecipients == 0 {
		cfg.MaxRecipients = 100
	}
	if cfg.MaxUnknownRecipients == 0 {
		cfg.MaxUnknownRecipients = 20
	}
	if cfg.ReadTimeout <= 0 {
		cfg.ReadTimeout = 5 * time.Minute
	}
	if cfg.DataTimeout <= 0 {
		cfg.DataTimeout = 10 * time.Minute
	}
	if cfg.LoginTimeout <= 0 {
		cfg.LoginTimeout = time.Minute
	}
	if cfg.MaxSession <= 0 {
		cfg.MaxSession = 30 * time.Minute
	}
	if cfg.WriteTimeout == 0 {
		cfg.WriteTimeout = time.Minute
	}
	if cfg.Guard == nil {
		cfg.Guard = NewGuard(GuardConfig{})
	}
	cfg.TLS = tlsconf.Harden(cfg.TLS)
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	base := log.With("component", "mta")
	in := &Inbound{cfg: cfg, base: base, log: base.With("listener", name), users: users, deliv: d, name: name,
		slots: make(chan struct{}, maxDeliveries), stop: make(chan struct{})}
	s := smtp.NewServer(in)
	s.Domain = cfg.Hostname
	s.MaxMessageBytes = cfg.MaxMessageSize
	s.MaxRecipients = cfg.MaxRecipients
	s.MaxLineLength = 2000 // RFC 5321 says 1000 with CRLF; a little slack for sloppy clients
	s.ReadTimeout = cfg.ReadTimeout
	s.WriteTimeout = cfg.WriteTimeout
	s.TLSConfig = cfg.TLS
	s.EnableSMTPUTF8 = true
	s.ErrorLog = errorLog{in.log}
	in.srv = s
	return in
}

// Shutdown stops accepting, waits for sessions and deliveries to finish, or
// for ctx. Deliveries waiting to be retried are left to the next start's
// Recover.
func (in *Inbound) Shutdown(ctx context.Context) error {
	in.stopOnce.Do(func() { close(in.stop) })
	err := in.srv.Shutdown(ctx)
	done := make(chan struct{})
	go func() { in.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		return ctx.Err()
	}
	return err
}

// NewSession implements smtp.Backend. The Guard admitted the connection
// when it was accepted (see Serve).
func (in *Inbound) NewSession(c *smtp.Conn) (smtp.Session, error) {
	ap, _ := netip.ParseAddrPort(c.Conn().RemoteAddr().String())
	s := &inboundSession{in: in, smtp: c, conn: c.Conn, remote: c.Conn().RemoteAddr().String(), ip: ap.Addr().Unmap()}
	if in.auth != nil {
		return &submissionSession{s}, nil
	}
	return s, nil
}

type inboundSession struct {
	in     *Inbound
	smtp   *smtp.Conn
	conn   func() net.Conn // the client's connection, TLS once started
	remote string
	from   string
	to     []string
	utf8   bool           // MAIL had the SMTPUTF8 parameter
	user   *userdata.User // the authenticated user, on a submission listener

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
	errTemporary   = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "Temporary failure, try again later"}
	errTooSlow     = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 4, 2}, Message: "Message not received in time, closing connection"}
	errHarvesting  = &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 7, 0}, Message: "Too many unknown recipients, closing connection"}
	errNeedUTF8    = &smtp.SMTPError{Code: 553, EnhancedCode: smtp.EnhancedCode{5, 6, 7}, Message: "Non-ASCII address needs the SMTPUTF8 parameter on MAIL FROM (RFC 6531)"}
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

func (s *inboundSession) Mail(from string, opts *smtp.MailOptions) error {
	if opts != nil && opts.Size > s.in.cfg.MaxMessageSize {
		return errTooBig
	}
	if err := checkUTF8(from, opts != nil && opts.UTF8); err != nil {
		return err
	}
	s.from = from
	s.utf8 = opts != nil && opts.UTF8
	return nil
}

// Rcpt implements smtp.Session. A session that names too many unknown
// recipients is answered 421 and closed.
func (s *inboundSession) Rcpt(to string, opts *smtp.RcptOptions) error {
	if err := checkUTF8(to, s.utf8); err != nil {
		return err
	}
	err := s.rcpt(to)
	if err == errNoUser || err == errNoRelay || err == errBadAddr {
		s.unknown++
		if max := s.in.cfg.MaxUnknownRecipients; max > 0 && s.unknown >= max {
			s.in.log.Warn("closing a session naming too many unknown recipients", "remote", s.remote, "unknown", s.unknown)
			s.closeAfterReply()
			return errHarvesting
		}
	}
	return err
}

func (s *inboundSession) rcpt(to string) error {
	ctx := context.Background()
	_, domain, ok := strings.Cut(to, "@")
	if !ok || domain == "" {
		return errBadAddr
	}
	u, err := s.in.users.LookupAddress(ctx, to)
	switch {
	case errors.Is(err, userdata.ErrInvalid):
		return errBadAddr
	case errors.Is(err, userdata.ErrNotFound):
		if _, derr := s.in.users.Domain(ctx, domain); derr == nil {
			return errNoUser
		} else if !errors.Is(derr, userdata.ErrNotFound) && !errors.Is(derr, userdata.ErrInvalid) {
			s.in.log.Error("domain lookup", "domain", domain, "err", derr)
			return errTemporary
		}
		return errNoRelay
	case err != nil:
		s.in.log.Error("recipient lookup", "rcpt", to, "err", err)
		return errTemporary
	}
	if u.Disabled {
		return errDisabled
	}
	l, err := s.in.users.Limits(ctx, u.ID)
	if err == nil && l.Quota > 0 {
		var usage userdata.Usage
		if usage, err = s.in.users.Usage(ctx, u.ID); err == nil && usage.Bytes >= l.Quota {
			return errFull
		}
	}
	if err != nil {
		s.in.log.Error("recipient limits", "rcpt", to, "err", err)
		return errTemporary
	}
	s.to = append(s.to, to)
	return nil
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
	ctx := context.Background()
	now := time.Now()
	env := txlog.Envelope{From: s.from, To: s.to, Received: now, Remote: s.remote}
	id := newMessageID()
	trace := s.trace(id, now)
	counted := &countReader{r: r}
	r = counted
	if f := s.in.cfg.Filter; f != nil {
		// The filter needs the whole message before the answer: read it
		// (within the size limit go-smtp enforces) and act on the verdict.
		body, err := io.ReadAll(r)
		if err != nil {
			return s.readError(err)
		}
		v, err := f.Check(ctx, env, bytes.NewReader(body), int64(len(body)))
		if err != nil {
			s.in.log.Error("content filter", "err", err)
			return errTemporary
		}
		switch v.Action {
		case Reject:
			s.in.log.Info("message refused by the content filter", "id", id, "from", reversePath(s.from), "to", s.to, "remote", s.remote)
			rep := v.Reply
			if rep.Code == 0 {
				return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "Message refused"}
			}
			return &smtp.SMTPError{Code: rep.Code, EnhancedCode: smtp.EnhancedCode(rep.Enhanced), Message: rep.Message}
		case Junk:
			env.Mailbox = "Junk" // made with every user; INBOX if it is gone
		}
		for _, h := range v.Headers {
			if !strings.ContainsAny(h, "\r\n") && strings.Contains(h, ":") {
				trace += h + "\r\n"
			}
		}
		r = bytes.NewReader(body)
	}
	tx, err := s.in.deliv.Log.Accept(ctx, env, io.MultiReader(strings.NewReader(trace), r))
	if err != nil {
		return s.readError(err)
	}
	s.logAccepted(id, tx, counted.n)
	// Durable now: 250 goes out as Data returns. Delivery goes on in the
	// background, retried if it fails.
	s.in.slots <- struct{}{}
	s.in.wg.Add(1)
	go s.in.deliver(tx)
	return nil
}

// deliver delivers tx, which holds one of in.slots, and tries again after
// a failure (see Inbound). A slot is held only while an attempt runs.
func (in *Inbound) deliver(tx *txlog.Txn) {
	defer in.wg.Done()
	a := &attempt{}
	delay := retryFirst
	for n := 1; ; n++ {
		err := in.deliv.deliver(context.Background(), tx, a)
		<-in.slots
		if err == nil {
			return
		}
		if n == retryAttempts {
			in.log.Error("delivery failed; giving up until the next start", "txn", tx.ID, "attempts", n, "err", err)
			return
		}
		in.log.Warn("delivery failed; will try again", "txn", tx.ID, "attempt", n, "in", delay, "err", err)
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-in.stop:
			t.Stop()
			in.log.Info("shutting down; delivery left for the next start", "txn", tx.ID)
			return
		}
		select {
		case in.slots <- struct{}{}:
		case <-in.stop:
			return
		}
		a.replay = true
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

func (s *inboundSession) Reset() { s.from, s.to, s.utf8 = "", nil, false }

func (s *inboundSession) Logout() error { return nil }

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
