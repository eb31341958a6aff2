package imap

import (
	"context"
	"errors"
	"io"
	"net/netip"
	"strings"
	"sync"
	"time"

	goimap "github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-sasl"

	"github.com/mailsys/mailsys/internal/logname"
	"github.com/mailsys/mailsys/msstore"
	"github.com/mailsys/mailsys/userdata"
)

// session is one client connection.
type session struct {
	srv  *Server
	conn *imapserver.Conn
	ip   netip.Addr

	user   *userdata.User // nil until logged in
	sel    *selected      // nil unless a folder is selected
	reader *commandReader // what go-imap reads commands from, nil if it cannot be

	// go-imap runs Idle in a goroutine of its own and, when reading DONE
	// fails, closes the session without waiting for it: Close waits for
	// a running Idle, and an Idle that starts after Close does nothing.
	idleMu sync.Mutex
	closed bool
	idles  sync.WaitGroup
}

var _ imapserver.SessionIMAP4rev2 = (*session)(nil)
var _ imapserver.SessionSASL = (*session)(nil)
var _ imapserver.SessionAppendLimit = (*session)(nil)

// Errors with the response codes clients act on.
var (
	errLockedOut   = &goimap.Error{Type: goimap.StatusResponseTypeNo, Code: goimap.ResponseCodeUnavailable, Text: "Too many failed logins, try again later"}
	errBusy        = &goimap.Error{Type: goimap.StatusResponseTypeNo, Code: goimap.ResponseCodeUnavailable, Text: "Server busy, try again later"}
	errNotAllowed  = &goimap.Error{Type: goimap.StatusResponseTypeNo, Code: goimap.ResponseCodeAuthorizationFailed, Text: "Not allowed to use IMAP"}
	errNoMailbox   = &goimap.Error{Type: goimap.StatusResponseTypeNo, Code: goimap.ResponseCodeNonExistent, Text: "No such mailbox"}
	errTryCreate   = &goimap.Error{Type: goimap.StatusResponseTypeNo, Code: goimap.ResponseCodeTryCreate, Text: "No such mailbox"}
	errExists      = &goimap.Error{Type: goimap.StatusResponseTypeNo, Code: goimap.ResponseCodeAlreadyExists, Text: "Mailbox already exists"}
	errOverQuota   = &goimap.Error{Type: goimap.StatusResponseTypeNo, Code: goimap.ResponseCodeOverQuota, Text: "Over quota"}
	errReadOnly    = &goimap.Error{Type: goimap.StatusResponseTypeNo, Code: goimap.ResponseCodeCannot, Text: "Mailbox is read-only (EXAMINE)"}
	errUnavailable = &goimap.Error{Type: goimap.StatusResponseTypeNo, Code: goimap.ResponseCodeUnavailable, Text: "Temporarily unavailable, try again later"}
	errServer      = &goimap.Error{Type: goimap.StatusResponseTypeNo, Code: goimap.ResponseCodeServerBug, Text: "Internal error, try again later"}
	errInboxDelete = &goimap.Error{Type: goimap.StatusResponseTypeNo, Code: goimap.ResponseCodeCannot, Text: "INBOX cannot be deleted"}
)

// errPeerGone stops a command whose client has hung up.
var errPeerGone = errors.New("imap: client gone")

// hangUp ends a command whose client has gone (errPeerGone): it closes
// the connection, so that go-imap ends the session, and returns the
// command's answer, which nobody will read.
func (s *session) hangUp(what string) error {
	s.srv.log.Info(what+" abandoned: client gone", "remote", s.ip, "user", s.address())
	s.conn.NetConn().Close()
	return &goimap.Error{Type: goimap.StatusResponseTypeNo, Text: "Connection closed"}
}

// ctx is the context of a command's backend calls: the server's, which
// Close cancels, and Shutdown once it is done or out of time. go-imap
// gives none.
func (s *session) ctx() context.Context { return s.srv.ctx }

// fail turns a UserDB or store error into the client's NO, logging what
// the client cannot act on.
func (s *session) fail(what string, err error) error {
	var ie *goimap.Error
	switch {
	case errors.As(err, &ie):
		return err
	case errors.Is(err, userdata.ErrNotFound):
		return errNoMailbox
	case errors.Is(err, userdata.ErrExists):
		return errExists
	case errors.Is(err, userdata.ErrQuota):
		return errOverQuota
	case errors.Is(err, userdata.ErrInvalid):
		return &goimap.Error{Type: goimap.StatusResponseTypeNo, Code: goimap.ResponseCodeCannot, Text: what + ": " + err.Error()}
	case errors.Is(err, io.ErrUnexpectedEOF):
		return &goimap.Error{Type: goimap.StatusResponseTypeBad, Text: what + ": message cut short"}
	case errors.Is(err, userdata.ErrUnavailable) || errors.Is(err, msstore.ErrUnavailable):
		// A node of a cluster is down or cut off: temporary.
		s.srv.log.Warn(what, "user", s.address(), "err", err)
		return errUnavailable
	}
	s.srv.log.Error(what, "user", s.address(), "err", err)
	return errServer
}

func (s *session) address() string {
	if s.user == nil {
		return ""
	}
	return s.user.Address
}

// Close implements imapserver.Session.
func (s *session) Close() error {
	s.idleMu.Lock()
	s.closed = true
	s.idleMu.Unlock()
	s.idles.Wait() // go-imap has closed its stop channel
	if s.sel != nil {
		s.sel.close()
		s.sel = nil
	}
	s.srv.forget(s)
	return nil
}

// Login implements imapserver.Session.
func (s *session) Login(username, password string) error {
	return s.login(username, password, "LOGIN")
}

// login checks a user name and password, for LOGIN and AUTHENTICATE
// PLAIN. A password check the UserDB refuses as busy (userdata.ErrBusy)
// is answered NO [UNAVAILABLE] and is not a failed login for the Guard; a
// failed login is answered after the delay the Guard asks for, or at
// once when the server shuts down. Every attempt is logged once: user,
// remote address, mechanism and result.
func (s *session) login(username, password, mech string) error {
	if mech == "LOGIN" {
		defer s.took("LOGIN", time.Now())
	} else {
		defer s.took("AUTHENTICATE", time.Now())
	}
	logAttempt := func(result string, attrs ...any) {
		s.srv.log.Info("login", append([]any{"user", logname.Cut(username), "remote", s.ip, "mechanism", mech, "result", result}, attrs...)...)
	}
	g := s.srv.cfg.Guard
	if g != nil && !g.AuthAllowed(s.ip, username) {
		logAttempt("locked out")
		return errLockedOut
	}
	u, err := s.srv.users.Authenticate(s.ctx(), username, password, userdata.ProtoIMAP)
	switch {
	case errors.Is(err, userdata.ErrBusy):
		logAttempt("busy")
		return errBusy
	case errors.Is(err, userdata.ErrAuthFailed) || errors.Is(err, userdata.ErrInvalid):
		var delay time.Duration
		if g != nil {
			delay = g.AuthFailed(s.ip, username)
		}
		logAttempt("failed", "delay", delay)
		s.srv.cfg.Metrics.LoginFailed(mech)
		s.srv.pause(delay)
		return imapserver.ErrAuthFailed
	case errors.Is(err, userdata.ErrDisabled) || errors.Is(err, userdata.ErrProtocol):
		logAttempt("not allowed")
		return errNotAllowed
	case err != nil:
		logAttempt("error")
		return s.fail("login", err)
	}
	logAttempt("ok")
	s.srv.cfg.Metrics.LoginSucceeded(mech)
	if l := s.srv.cfg.Logins; l != nil {
		l.LoggedIn(u, userdata.ProtoIMAP)
	}
	if g != nil {
		g.AuthSucceeded(s.ip, username)
	}
	s.user = &u
	lift(s.conn.NetConn())
	s.followCommands() // anew: the connection may be TLS since, and logged in
	return nil
}

// AuthenticateMechanisms implements imapserver.SessionSASL.
func (s *session) AuthenticateMechanisms() []string { return []string{sasl.Plain} }

// Authenticate implements imapserver.SessionSASL.
func (s *session) Authenticate(mech string) (sasl.Server, error) {
	if !strings.EqualFold(mech, sasl.Plain) {
		return nil, &goimap.Error{Type: goimap.StatusResponseTypeNo, Code: goimap.ResponseCodeCannot, Text: "Unsupported mechanism"}
	}
	return sasl.NewPlainServer(func(identity, username, password string) error {
		if identity != "" && identity != username {
			return &goimap.Error{Type: goimap.StatusResponseTypeNo, Code: goimap.ResponseCodeAuthorizationFailed, Text: "Cannot act as another user"}
		}
		return s.login(username, password, sasl.Plain)
	}), nil
}

// AppendLimit implements imapserver.SessionAppendLimit. Before login it
// is no limit: go-imap then reads an APPEND's message and drops it (the
// pre-authentication byte limit bounds it), rather than refuse it unread.
func (s *session) AppendLimit() uint32 {
	if s.user == nil {
		return 1<<32 - 1
	}
	limit := s.srv.cfg.MaxAppendSize
	if s.user != nil {
		if l, err := s.srv.users.Limits(s.ctx(), s.user.ID); err == nil && l.MaxMessageSize > 0 {
			limit = min(limit, l.MaxMessageSize)
		}
	}
	return uint32(min(limit, 1<<32-1))
}

// Status implements imapserver.Session.
func (s *session) Status(name string, options *goimap.StatusOptions) (*goimap.StatusData, error) {
	defer s.took("STATUS", time.Now())
	f, err := s.folder(name)
	if err != nil {
		return nil, s.fail("status", err)
	}
	return s.status(f, options)
}

func (s *session) status(f userdata.Folder, options *goimap.StatusOptions) (*goimap.StatusData, error) {
	d := &goimap.StatusData{Mailbox: f.Name}
	if options.NumMessages {
		d.NumMessages = &f.Messages
	}
	if options.UIDNext {
		d.UIDNext = goimap.UID(f.UIDNext)
	}
	if options.UIDValidity {
		d.UIDValidity = f.UIDValidity
	}
	if options.NumUnseen {
		d.NumUnseen = &f.Unseen
	}
	if options.NumRecent {
		n, err := s.numRecent(f)
		if err != nil {
			return nil, s.fail("status", err)
		}
		d.NumRecent = &n
	}
	if options.Size {
		d.Size = &f.Size
	}
	if options.AppendLimit {
		limit := s.AppendLimit()
		d.AppendLimit = &limit
	}
	if options.NumDeleted {
		var n uint32
		err := s.srv.users.Messages(s.ctx(), s.user.ID, f.ID, nil, func(m *userdata.Message) error {
			if m.Flags&userdata.FlagDeleted != 0 {
				n++
			}
			return nil
		})
		if err != nil {
			return nil, s.fail("status", err)
		}
		d.NumDeleted = &n
	}
	if options.HighestModSeq {
		d.HighestModSeq = f.HighestModSeq
	}
	return d, nil
}

// Poll implements imapserver.Session.
func (s *session) Poll(w *imapserver.UpdateWriter, allowExpunge bool) error {
	if s.sel == nil {
		return nil
	}
	return s.sel.poll(w, allowExpunge)
}

// Idle implements imapserver.Session. The autologout timer does not run
// during IDLE; Config.IdleCommandTimeout bounds it instead.
func (s *session) Idle(w *imapserver.UpdateWriter, stop <-chan struct{}) error {
	s.idleMu.Lock()
	if s.closed {
		s.idleMu.Unlock()
		return nil
	}
	s.idles.Add(1)
	s.idleMu.Unlock()
	defer s.idles.Done()
	startIdle(s.conn.NetConn(), s.srv.cfg.IdleCommandTimeout)
	defer endIdle(s.conn.NetConn())
	if s.sel == nil {
		<-stop
		return nil
	}
	for {
		if err := s.sel.poll(w, true); err != nil {
			return err
		}
		select {
		case <-stop:
			return nil
		case <-s.sel.view.notify:
		}
	}
}

// imapFlags turns index flags into IMAP's.
func imapFlags(f userdata.Flags, keywords []string) []goimap.Flag {
	out := make([]goimap.Flag, 0, 2+len(keywords))
	for _, sf := range systemFlags {
		if f&sf.bit != 0 {
			out = append(out, sf.flag)
		}
	}
	for _, k := range keywords {
		out = append(out, goimap.Flag(k))
	}
	return out
}

var systemFlags = []struct {
	bit  userdata.Flags
	flag goimap.Flag
}{
	{userdata.FlagSeen, goimap.FlagSeen},
	{userdata.FlagAnswered, goimap.FlagAnswered},
	{userdata.FlagFlagged, goimap.FlagFlagged},
	{userdata.FlagDeleted, goimap.FlagDeleted},
	{userdata.FlagDraft, goimap.FlagDraft},
}

// indexFlags turns IMAP flags into index flags and keywords. \Recent is
// dropped (the server sets it, clients cannot); another unknown system
// flag is an error.
func indexFlags(flags []goimap.Flag) (userdata.Flags, []string, error) {
	var f userdata.Flags
	var kws []string
outer:
	for _, fl := range flags {
		for _, sf := range systemFlags {
			if strings.EqualFold(string(fl), string(sf.flag)) {
				f |= sf.bit
				continue outer
			}
		}
		if strings.EqualFold(string(fl), `\Recent`) {
			continue
		}
		if strings.HasPrefix(string(fl), `\`) {
			return 0, nil, &goimap.Error{Type: goimap.StatusResponseTypeBad, Text: "Unknown system flag " + string(fl)}
		}
		kws = append(kws, string(fl))
	}
	return f, kws, nil
}

// numRecent is how many of f's messages no session has claimed as
// \Recent: those at or above the UserDB's watermark, or above the claims
// of this server's sessions if the folder is open here.
func (s *session) numRecent(f userdata.Folder) (uint32, error) {
	from := max(f.RecentUID, s.srv.open.recentTo(mailboxKey{s.user.ID, f.ID}))
	var n uint32
	err := s.srv.users.Messages(s.ctx(), s.user.ID, f.ID, userdata.UIDSet{{Start: max(from, 1)}}, func(*userdata.Message) error {
		n++
		return nil
	})
	return n, err
}
