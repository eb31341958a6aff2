package mta

import (
	"context"
	"errors"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/mailsys/mailsys/userdata"
)

// Authenticator checks a submission client's credentials;
// userdata.UserDB satisfies it.
type Authenticator interface {
	Authenticate(ctx context.Context, address, password string, p userdata.Protocol) (userdata.User, error)
}

// NewSubmission returns the submission listener (RFC 6409): like the
// inbound one, but a client must authenticate (PLAIN or LOGIN, offered only
// over TLS: after STARTTLS, or on a listener serving TLS itself) before
// MAIL, and the envelope sender must be the authenticated user's address or
// one of their aliases. Mail for local users is delivered; mail for other
// domains is refused until the outbound relay exists.
func NewSubmission(cfg InboundConfig, users Recipients, auth Authenticator, d *Deliverer) *Inbound {
	in := NewInbound(cfg, users, d)
	in.auth = auth
	in.name = "submission"
	in.log = in.log.With("listener", "submission")
	in.srv.AllowInsecureAuth = false
	return in
}

var (
	errAuthRequired = &smtp.SMTPError{Code: 530, EnhancedCode: smtp.EnhancedCode{5, 7, 0}, Message: "Authentication required"}
	errLockedOut    = &smtp.SMTPError{Code: 454, EnhancedCode: smtp.EnhancedCode{4, 7, 0}, Message: "Too many failed logins, try again later"}
	errAuthFailed   = &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 8}, Message: "Authentication credentials invalid"}
	errNotYours     = &smtp.SMTPError{Code: 553, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "Sender address is not yours"}
	errNoOutbound   = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "Relaying to other domains is not available yet"}
)

// submissionSession adds authentication and the sender check to a session.
type submissionSession struct{ *inboundSession }

var _ smtp.AuthSession = (*submissionSession)(nil)

// AuthMechanisms implements smtp.AuthSession.
func (s *submissionSession) AuthMechanisms() []string { return []string{sasl.Plain, sasl.Login} }

// Auth implements smtp.AuthSession.
func (s *submissionSession) Auth(mech string) (sasl.Server, error) {
	check := func(username, password string) error {
		g := s.in.cfg.Guard
		if !g.AuthAllowed(s.ip, username) {
			s.in.log.Warn("login refused: too many failures", "remote", s.remote, "user", username)
			return errLockedOut
		}
		u, err := s.in.auth.Authenticate(context.Background(), username, password, userdata.ProtoSubmission)
		if err != nil {
			g.AuthFailed(s.ip, username)
			s.in.log.Info("authentication failed", "remote", s.remote, "user", username, "err", err)
			return errAuthFailed
		}
		g.AuthSucceeded(s.ip, username)
		s.user = &u
		return nil
	}
	switch mech {
	case sasl.Plain:
		return sasl.NewPlainServer(func(identity, username, password string) error {
			if identity != "" && identity != username {
				return errAuthFailed
			}
			return check(username, password)
		}), nil
	case sasl.Login:
		return newLoginServer(check), nil
	}
	return nil, smtp.ErrAuthUnknownMechanism
}

// Mail implements smtp.Session: only for the authenticated user's own
// addresses.
func (s *submissionSession) Mail(from string, opts *smtp.MailOptions) error {
	if s.user == nil {
		return errAuthRequired
	}
	owner, err := s.in.users.LookupAddress(context.Background(), from)
	if err != nil || owner.ID != s.user.ID {
		return errNotYours
	}
	return s.inboundSession.Mail(from, opts)
}

// Rcpt implements smtp.Session: local recipients only, until the outbound
// relay exists.
func (s *submissionSession) Rcpt(to string, opts *smtp.RcptOptions) error {
	if s.user == nil {
		return errAuthRequired
	}
	err := s.inboundSession.Rcpt(to, opts)
	var se *smtp.SMTPError
	if errors.As(err, &se) && se == errNoRelay {
		return errNoOutbound
	}
	return err
}
