package pop3

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/emersion/go-sasl"

	"github.com/mailsys/mailsys/internal/logname"
	"github.com/mailsys/mailsys/userdata"
)

// plainAllowed reports whether a plain-text password may be sent now: over
// TLS, or anywhere with Config.InsecureAuth.
func (ss *session) plainAllowed() bool { return ss.tls || ss.srv.cfg.InsecureAuth }

// userCmd answers USER. It says nothing about whether the user exists.
func (ss *session) userCmd(rest string) error {
	if !ss.plainAllowed() {
		return errNeedsTLS
	}
	if rest == "" {
		return errSyntax
	}
	ss.user = rest
	ss.okf("Send your password")
	return nil
}

// pass answers PASS, whose argument is the rest of the line, spaces and
// all (RFC 1939, section 7).
func (ss *session) pass(rest string) error {
	if !ss.plainAllowed() {
		return errNeedsTLS
	}
	if ss.user == "" {
		return &reply{text: "USER first"}
	}
	user := ss.user
	ss.user = ""
	return ss.login("USER", user, rest)
}

// apop answers APOP, which is not offered (it needs the password in the
// clear on the server); the attempt is logged as a failed login, so that
// a client set up for it can be found.
func (ss *session) apop(rest string) error {
	user, _, _ := strings.Cut(rest, " ")
	ss.logLogin(slog.LevelInfo, "APOP", user, "failed", errNoAPOP)
	return &reply{text: "APOP is not offered here"}
}

var errNoAPOP = errors.New("pop3: APOP is not offered")

// auth answers AUTH (RFC 5034): without an argument it lists the
// mechanisms; AUTH PLAIN takes the credentials as an initial response or
// after a "+ " continuation, and "*" cancels.
func (ss *session) auth(rest string) error {
	if rest == "" {
		ss.okf("SASL mechanisms follow")
		if ss.plainAllowed() {
			ss.w.WriteString("PLAIN\r\n")
		}
		ss.w.WriteString(".\r\n")
		return nil
	}
	mech, initial, hasInitial := strings.Cut(rest, " ")
	if !strings.EqualFold(mech, sasl.Plain) {
		return &reply{text: "Unsupported SASL mechanism"}
	}
	if !ss.plainAllowed() {
		return errNeedsTLS
	}
	ss.user = ""
	var loginErr error
	server := sasl.NewPlainServer(func(identity, username, password string) error {
		if identity != "" && identity != username {
			ss.logLogin(slog.LevelInfo, sasl.Plain, username, "failed", errOtherIdentity)
			loginErr = errAuthFailed
		} else {
			loginErr = ss.login(sasl.Plain, username, password)
		}
		return loginErr
	})
	var response []byte // nil: no initial response
	if hasInitial {
		var r *reply
		if response, r = decodeResponse(initial); r != nil {
			return r
		}
	}
	for {
		challenge, done, err := server.Next(response)
		if loginErr != nil {
			return loginErr
		}
		if err != nil {
			return &reply{"AUTH", "Malformed SASL response"}
		}
		if done {
			return nil // login said +OK
		}
		ss.w.WriteString("+ " + base64.StdEncoding.EncodeToString(challenge) + "\r\n")
		if err := ss.w.Flush(); err != nil {
			return err
		}
		line, err := ss.readCommand()
		if err == errLineTooLong {
			return &reply{text: "SASL response too long"}
		}
		if err != nil {
			return err
		}
		if line == "*" {
			return &reply{text: "Authentication cancelled"}
		}
		var r *reply
		if response, r = decodeResponse(line); r != nil {
			return r
		}
	}
}

// decodeResponse decodes a base64 SASL response; "=" is the empty one.
func decodeResponse(s string) ([]byte, *reply) {
	if s == "=" {
		return []byte{}, nil
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, &reply{text: "Invalid base64 in the SASL response"}
	}
	return b, nil
}

// login checks the credentials under the Guard's lockout rules, takes the
// user's maildrop lock, takes the snapshot of the INBOX and enters the
// TRANSACTION state, saying +OK. It fails with a reply that says why, or
// with another error, which ends the session, when it cannot wait out
// the Guard's delay (see pause). Each call is logged once (see logLogin),
// under mech: "USER" for USER and PASS, or the SASL mechanism.
//
// A failed login is answered after the delay the Guard asks for, if any
// (see pause). A login the UserDB could not check for want of capacity
// (userdata.ErrBusy) is answered [SYS/TEMP] at once and is not counted as
// a failure: it says nothing about the password.
func (ss *session) login(mech, username, password string) error {
	g := ss.srv.cfg.Guard
	if g != nil && !g.AuthAllowed(ss.ip, username) {
		ss.logLogin(slog.LevelWarn, mech, username, "locked out", nil)
		return errLockedOut
	}
	ctx := ss.srv.ctx
	u, err := ss.srv.users.Authenticate(ctx, username, password, userdata.ProtoPOP3)
	switch {
	case errors.Is(err, userdata.ErrBusy):
		ss.logLogin(slog.LevelWarn, mech, username, "busy", err)
		return errBusy
	case errors.Is(err, userdata.ErrAuthFailed):
		ss.logLogin(slog.LevelInfo, mech, username, "failed", err)
		ss.srv.cfg.Metrics.LoginFailed(mech)
		if g != nil {
			if err := ss.pause(g.AuthFailed(ss.ip, username)); err != nil {
				return err
			}
		}
		return errAuthFailed
	case errors.Is(err, userdata.ErrDisabled), errors.Is(err, userdata.ErrProtocol):
		ss.logLogin(slog.LevelInfo, mech, username, "failed", err)
		return &reply{"AUTH", "This account may not use POP3"}
	case err != nil:
		ss.logLogin(slog.LevelError, mech, username, "error", err)
		return errTemporary
	}
	ss.srv.cfg.Metrics.LoginSucceeded(mech)
	if l := ss.srv.cfg.Logins; l != nil {
		l.LoggedIn(u, userdata.ProtoPOP3)
	}
	if g != nil {
		g.AuthSucceeded(ss.ip, username)
	}
	if !ss.srv.lock(u.ID) {
		ss.logLogin(slog.LevelInfo, mech, username, "in use", errMaildropInUse)
		return errInUse
	}
	drop, err := openMaildrop(ctx, ss.srv.users, u.ID)
	if err != nil {
		ss.srv.unlock(u.ID)
		ss.logLogin(slog.LevelError, mech, username, "error", fmt.Errorf("opening the maildrop: %w", err))
		return errTemporary
	}
	ss.drop, ss.state = drop, stateTransaction
	ss.logLogin(slog.LevelInfo, mech, username, "ok", nil, "messages", drop.count)
	ss.log = ss.log.With("user", u.Address)
	ss.okf("%s has %d messages (%d octets)", u.Address, drop.count, drop.size)
	return nil
}

var (
	errOtherIdentity = errors.New("pop3: PLAIN authorization identity is not the user's")
	errMaildropInUse = errors.New("pop3: maildrop locked by another session")
)

// logLogin logs a login attempt as every protocol's logs do: the account
// as typed (cut, see logname), the client's address (in the session's
// logger), the mechanism, whether the session is under TLS, and the
// result: "ok", "failed" (wrong credentials, or an account that may not
// use POP3), "locked out" (the Guard's lockout), "busy" (too many password
// checks at once), "in use" (the maildrop is another session's) or
// "error" (the UserDB could not answer), with why if err is not nil, and
// then attrs.
func (ss *session) logLogin(level slog.Level, mech, username, result string, err error, attrs ...any) {
	attrs = append([]any{"user", logname.Cut(username), "mechanism", mech, "result", result, "tls", ss.tls}, attrs...)
	if err != nil {
		attrs = append(attrs, "err", err)
	}
	ss.log.Log(context.Background(), level, "login", attrs...)
}

// errLoginTimeUp ends a session whose login timeout passes while it waits
// to answer a failed login.
var errLoginTimeUp = errors.New("pop3: login timeout reached during a failed login's delay")

// pause waits d, the Guard's delay before a failed login is answered. It
// does not wait past the time the connection has to log in, nor past the
// beginning of Shutdown or Close: it returns nil once d has passed, and
// otherwise an error that ends the session without a reply.
func (ss *session) pause(d time.Duration) error {
	if d <= 0 {
		return nil
	}
	left := time.Until(ss.loginBy)
	t := time.NewTimer(min(d, left))
	defer t.Stop()
	select {
	case <-t.C:
		if d >= left {
			return errLoginTimeUp
		}
		return nil
	case <-ss.srv.stopping:
		return ErrServerClosed
	}
}

// stls answers STLS (RFC 2595) and runs the TLS handshake. Whatever the
// client sent after STLS, before the handshake, is dropped.
func (ss *session) stls() error {
	if ss.tls {
		return &reply{text: "Already using TLS"}
	}
	if ss.srv.cfg.TLS == nil {
		return &reply{text: "STLS is not offered here"}
	}
	ss.okf("Begin TLS negotiation")
	if err := ss.w.Flush(); err != nil {
		return err
	}
	tc := tls.Server(ss.conn, ss.srv.cfg.TLS)
	if err := ss.handshake(tc); err != nil {
		return err
	}
	ss.conn, ss.tls, ss.user = tc, true, ""
	ss.r = bufio.NewReaderSize(tc, maxLine)
	ss.w.Reset(ss.deadlineWriter(tc))
	return nil
}
