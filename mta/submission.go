package mta

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"
	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/mailsys/mailsys/userdata"
)

// Authenticator checks a submission client's credentials;
// userdata.UserDB satisfies it. Authenticate may return userdata.ErrBusy
// when too many password checks run at once: the client is told to try
// again later, and it is not counted as a failed login.
type Authenticator interface {
	Authenticate(ctx context.Context, address, password string, p userdata.Protocol) (userdata.User, error)
}

// NewSubmission returns the submission listener (RFC 6409): like the
// inbound one, but a client must authenticate (PLAIN or LOGIN, offered only
// over TLS: after STARTTLS, or on a listener serving TLS itself) within
// LoginTimeout of connecting and before MAIL. The envelope sender, and
// every address of the message's From: and Sender: fields, must be the
// authenticated user's own address or one of their aliases, unless
// InboundConfig.AnyFrom names the user or their domain; otherwise the
// message is refused with 550 5.7.1. The Received: field names the user
// and says ESMTPSA (RFC 3848). Mail for local users is delivered. A
// recipient of a domain not served here is taken when the Deliverer has a
// Relay (the outbound queue), marked Relay in the Envelope's Rcpts, for
// the Deliverer to hand over; without a Relay it is refused with 550
// 5.7.1. This is no open relay: the client has authenticated. Such
// recipients count towards MaxRecipients as any other. The
// InboundConfig's Verifier is not called (see InboundConfig.Verifier).
//
// It returns the error of cfg.Validate, if any, or one for a nil auth.
func NewSubmission(cfg InboundConfig, users Recipients, auth Authenticator, d *Deliverer) (*Inbound, error) {
	in, err := newInbound(cfg, users, d, "submission")
	if auth == nil {
		err = errors.Join(err, errors.New("mta: a submission listener needs an Authenticator"))
	}
	if err != nil {
		return nil, err
	}
	in.auth = auth
	in.srv.AllowInsecureAuth = false
	return in, nil
}

var (
	errAuthRequired = &smtp.SMTPError{Code: 530, EnhancedCode: smtp.EnhancedCode{5, 7, 0}, Message: "Authentication required"}
	errLockedOut    = &smtp.SMTPError{Code: 454, EnhancedCode: smtp.EnhancedCode{4, 7, 0}, Message: "Too many failed logins, try again later"}
	errAuthBusy     = &smtp.SMTPError{Code: 454, EnhancedCode: smtp.EnhancedCode{4, 7, 0}, Message: "Too many logins at once, try again later"}
	errAuthFailed   = &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 8}, Message: "Authentication credentials invalid"}
	errAuthTemp     = &smtp.SMTPError{Code: 454, EnhancedCode: smtp.EnhancedCode{4, 7, 0}, Message: "Temporary authentication failure"}
	errNotYours     = &smtp.SMTPError{Code: 553, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "Sender address is not yours"}
	errFromNotYours = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "From: or Sender: names an address that is not yours"}
	errBadHeader    = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 6, 0}, Message: "Message header malformed or too large"}
	errNoOutbound   = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "Relaying to other domains is not available here"}
)

// maxHeader bounds the header a submission listener reads to check From:
// and Sender:.
const maxHeader = 256 << 10

// submissionSession adds authentication and the sender checks to a
// session.
type submissionSession struct{ *inboundSession }

var _ smtp.AuthSession = (*submissionSession)(nil)

// AuthMechanisms implements smtp.AuthSession.
func (s *submissionSession) AuthMechanisms() []string { return []string{sasl.Plain, sasl.Login} }

// Auth implements smtp.AuthSession. Each attempt, every credential
// checked, is logged once (see logLogin).
func (s *submissionSession) Auth(mech string) (sasl.Server, error) {
	check := func(username, password string) error {
		defer s.took("AUTH", time.Now())
		g := s.in.cfg.Guard
		if !g.AuthAllowed(s.ip, username) {
			s.logLogin(slog.LevelWarn, username, mech, "locked out", nil)
			return errLockedOut
		}
		u, err := s.in.auth.Authenticate(s.ctx, username, password, userdata.ProtoSubmission)
		switch {
		case errors.Is(err, userdata.ErrBusy):
			s.logLogin(slog.LevelWarn, username, mech, "busy", err)
			return errAuthBusy
		case errors.Is(err, userdata.ErrAuthFailed), errors.Is(err, userdata.ErrDisabled), errors.Is(err, userdata.ErrProtocol):
			delay := g.AuthFailed(s.ip, username)
			s.logLogin(slog.LevelInfo, username, mech, "failed", err)
			s.in.cfg.Metrics.LoginFailed(mech)
			s.wait(delay)
			return errAuthFailed
		case err != nil:
			s.logLogin(slog.LevelError, username, mech, "error", err)
			return errAuthTemp
		}
		g.AuthSucceeded(s.ip, username)
		s.logLogin(slog.LevelInfo, username, mech, "ok", nil)
		s.in.cfg.Metrics.LoginSucceeded(mech)
		if l := s.in.cfg.Logins; l != nil {
			l.LoggedIn(u, userdata.ProtoSubmission)
		}
		s.user = &u
		if w := watchedOf(s.conn()); w != nil {
			w.loggedIn()
		}
		return nil
	}
	switch mech {
	case sasl.Plain:
		return sasl.NewPlainServer(func(identity, username, password string) error {
			if identity != "" && identity != username {
				s.logLogin(slog.LevelInfo, username, mech, "failed", errOtherIdentity)
				return errAuthFailed
			}
			return check(username, password)
		}), nil
	case sasl.Login:
		return newLoginServer(check), nil
	}
	return nil, smtp.ErrAuthUnknownMechanism
}

// errOtherIdentity is why a PLAIN login asking to act as another user
// fails.
var errOtherIdentity = errors.New("mta: PLAIN authorization identity is not the user's")

// logLogin logs a login attempt as every protocol's logs do: the account
// as typed (normalized and cut, see NormalizeAccount), the client's
// address, the SASL mechanism, and the result: "ok", "failed" (wrong
// credentials, or an account that may not submit), "locked out" (the
// Guard's lockout), "busy" (too many password checks at once) or "error"
// (the UserDB could not answer), with why if err is not nil.
func (s *submissionSession) logLogin(level slog.Level, username, mech, result string, err error) {
	attrs := []any{"user", NormalizeAccount(username), "remote", s.remote, "mechanism", mech, "result", result}
	if err != nil {
		attrs = append(attrs, "err", err)
	}
	s.in.log.Log(s.ctx, level, "login", attrs...)
}

// wait sleeps for the Guard's delay of a failed login, or until Shutdown.
func (s *submissionSession) wait(d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-s.in.stop:
	}
}

// Mail implements smtp.Session: only for the authenticated user's own
// addresses.
func (s *submissionSession) Mail(from string, opts *smtp.MailOptions) error {
	if s.user == nil {
		return errAuthRequired
	}
	if err := checkUTF8(from, opts != nil && opts.UTF8); err != nil {
		return err
	}
	if !s.mayUse(from) {
		return errNotYours
	}
	return s.inboundSession.Mail(from, opts)
}

// mayUse reports whether the authenticated user may send as address: one
// of their own, or any if AnyFrom names them or their domain.
func (s *inboundSession) mayUse(address string) bool {
	owner, err := s.in.users.LookupAddress(s.ctx, address)
	if err == nil && owner.ID == s.user.ID {
		return true
	}
	own := strings.ToLower(s.user.Address)
	_, domain, _ := strings.Cut(own, "@")
	for _, a := range s.in.cfg.AnyFrom {
		a = strings.ToLower(a)
		if a == own || a == "@"+domain {
			return true
		}
	}
	return false
}

// Rcpt implements smtp.Session: local recipients, and those of other
// domains when the Deliverer has a Relay to take them.
func (s *submissionSession) Rcpt(to string, opts *smtp.RcptOptions) error {
	if s.user == nil {
		return errAuthRequired
	}
	err := s.inboundSession.Rcpt(to, opts)
	if err == errNoRelay {
		return errNoOutbound
	}
	return err
}

// checkSenders reads the header of a submitted message from r and checks
// that the user may use every address of its From: and Sender: fields. It
// returns a reader of the whole message, header included, less the
// Authentication-Results fields that name this host.
func (s *inboundSession) checkSenders(r io.Reader) (io.Reader, error) {
	src := &errReader{r: io.LimitReader(r, maxHeader)}
	var head bytes.Buffer
	h, err := textproto.ReadHeader(bufio.NewReader(io.TeeReader(src, &head)))
	if src.err != nil && src.err != io.EOF {
		return nil, s.readError(src.err)
	}
	if err != nil && (!errors.Is(err, io.EOF) || head.Len() >= maxHeader) {
		return nil, errBadHeader
	}
	mh := mail.Header{Header: message.Header{Header: h}}
	for _, field := range []string{"From", "Sender"} {
		list, err := mh.AddressList(field)
		if err != nil {
			s.in.log.Info("submission refused: unreadable header field", "user", s.user.Address, "field", field, "err", err)
			return nil, errBadHeader
		}
		for _, a := range list {
			if !s.mayUse(a.Address) {
				s.in.log.Info("submission refused: header names another's address", "user", s.user.Address, "field", field, "address", a.Address)
				return nil, errFromNotYours
			}
		}
	}
	// An Authentication-Results field naming this host is a forgery
	// here too (RFC 8601 §5): the downstream agents trust this host's.
	return io.MultiReader(bytes.NewReader(stripAuthResults(head.Bytes(), s.in.cfg.Hostname)), r), nil
}

// errReader keeps the error its reader returned.
type errReader struct {
	r   io.Reader
	err error
}

func (e *errReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil {
		e.err = err
	}
	return n, err
}
