package pop3

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"runtime/debug"
	"time"
)

// maxErrors is how many -ERR replies in a row a session gets before the
// server hangs up: a client that is not speaking POP3 gets nowhere.
const maxErrors = 10

// writeBuffer is the size of a session's output buffer. Message bodies
// mostly bypass it: big runs of a body go straight to the connection.
const writeBuffer = 8 << 10

// state is a session's RFC 1939 state. The UPDATE state is the QUIT
// command of the TRANSACTION state, which ends the session.
type state uint8

const (
	stateAuthorization state = iota
	stateTransaction
)

// reply is a -ERR reply: the error a command ends with, sent to the client
// as it is, with an optional response code (RFC 2449, RFC 3206). Any other
// error a command returns ends the session.
type reply struct {
	code string // "AUTH", "IN-USE", "SYS/TEMP"...; "" for none
	text string
}

func (r *reply) Error() string {
	if r.code == "" {
		return r.text
	}
	return "[" + r.code + "] " + r.text
}

// Replies more than one command gives.
var (
	errWrongState     = &reply{text: "Command not valid in this state"}
	errNoSuchMsg      = &reply{text: "No such message"}
	errSyntax         = &reply{text: "Syntax error in the arguments"}
	errTemporary      = &reply{"SYS/TEMP", "Temporary failure, try again later"}
	errNeedsTLS       = &reply{text: "Plain-text passwords need TLS: use STLS first"}
	errAuthFailed     = &reply{"AUTH", "Authentication failed"}
	errLockedOut      = &reply{"SYS/TEMP", "Too many failed logins, try again later"}
	errBusy           = &reply{"SYS/TEMP", "Server busy, try again later"}
	errInUse          = &reply{"IN-USE", "Maildrop already in use by another POP3 session"}
	errTooManyErrors  = &reply{text: "Too many errors, closing the connection"}
	errSessionTooLong = &reply{text: "Session time limit reached, closing the connection; nothing deleted"}
)

// Why readCommand gives up waiting for a command, besides the
// connection's own errors: the session has reached Config.MaxSession, or
// a connection has not logged in within Config.LoginTimeout.
var (
	errSessionOver = errors.New("pop3: the session has reached its maximum length")
	errLoginOver   = fmt.Errorf("pop3: not logged in in time: %w", os.ErrDeadlineExceeded)
)

// session is one client connection. Its fields belong to its goroutine,
// but for idle, which the server reads under its mutex.
type session struct {
	srv    *Server
	log    *slog.Logger
	raw    net.Conn // the accepted connection: closing it ends the session and gives its place back to the Guard
	conn   net.Conn // raw, or the TLS connection over it
	tls    bool     // conn is a TLS connection
	r      *bufio.Reader
	w      *bufio.Writer
	ip     netip.Addr
	idle   bool // waiting for a command; guarded by srv.mu
	state  state
	user   string    // USER's argument, waiting for PASS
	drop   *maildrop // the maildrop, in the TRANSACTION state
	errors int       // -ERR replies in a row
	// end is when the session is over (Config.MaxSession), and loginBy,
	// no later, when a connection that has not logged in is closed
	// (Config.LoginTimeout), however busy either keeps itself.
	end, loginBy time.Time
	// writeEnd is the latest deadline of a write: end, or zero once the
	// last reply is being sent, which gets Config.WriteTimeout whatever
	// the time.
	writeEnd time.Time
}

func newSession(srv *Server, c net.Conn, implicitTLS bool) *session {
	raw := c
	if tc, ok := c.(*tls.Conn); ok {
		raw = tc.NetConn()
	}
	ap, _ := netip.ParseAddrPort(raw.RemoteAddr().String())
	now := time.Now()
	end := now.Add(srv.cfg.MaxSession)
	ss := &session{srv: srv, raw: raw, conn: c, tls: implicitTLS, ip: ap.Addr().Unmap(),
		end: end, loginBy: earliest(now.Add(srv.cfg.LoginTimeout), end), writeEnd: end,
		log: srv.log.With("remote", raw.RemoteAddr().String())}
	ss.r = bufio.NewReaderSize(c, maxLine)
	ss.w = bufio.NewWriterSize(ss.deadlineWriter(c), writeBuffer)
	return ss
}

func earliest(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// deadlineWriter gives every write to a connection its own deadline:
// Config.WriteTimeout from its start, but no later than *end unless that
// is zero.
type deadlineWriter struct {
	c       net.Conn
	timeout time.Duration
	end     *time.Time
}

func (ss *session) deadlineWriter(c net.Conn) deadlineWriter {
	return deadlineWriter{c, ss.srv.cfg.WriteTimeout, &ss.writeEnd}
}

func (w deadlineWriter) Write(p []byte) (int, error) {
	d := time.Now().Add(w.timeout)
	if !w.end.IsZero() {
		d = earliest(d, *w.end)
	}
	w.c.SetWriteDeadline(d)
	return w.c.Write(p)
}

// last sends what is buffered as the session's last words, within
// Config.WriteTimeout even past the end of the session.
func (ss *session) last() {
	ss.writeEnd = time.Time{}
	ss.w.Flush()
}

// serve runs the session to its end.
func (ss *session) serve() {
	defer ss.srv.untrack(ss)
	defer ss.raw.Close()
	defer func() {
		if ss.drop != nil {
			ss.srv.unlock(ss.drop.user)
		}
	}()
	defer func() {
		if v := recover(); v != nil {
			ss.log.Error("session panicked", "panic", v, "stack", string(debug.Stack()))
		}
	}()
	if tc, ok := ss.conn.(*tls.Conn); ok {
		if err := ss.handshake(tc); err != nil {
			ss.log.Info("TLS handshake failed", "err", err)
			return
		}
	}
	ss.okf("%s POP3 server ready", ss.srv.cfg.Hostname)
	for ss.errors < maxErrors {
		// Past the end of the session, the replies still buffered go out
		// with its last words, which are not held to the end.
		if time.Now().Before(ss.end) {
			if err := ss.flushIfWaiting(); err != nil {
				return
			}
		}
		line, err := ss.readCommand()
		if err == errLineTooLong {
			ss.send(&reply{text: "Line too long"})
			continue
		}
		if err == errSessionOver {
			ss.log.Info("session closed: it reached its maximum length", "limit", ss.srv.cfg.MaxSession)
			ss.send(errSessionTooLong)
			ss.last()
			return
		}
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				ss.log.Debug("session ends", "err", err)
			}
			return
		}
		keyword, rest, err := parseCommand(line)
		if err != nil {
			ss.send(&reply{text: "Bad command: " + err.Error()})
			continue
		}
		began := time.Now()
		quit, err := ss.exec(keyword, rest)
		ss.srv.cfg.Metrics.Command(keyword, time.Since(began))
		var r *reply
		switch {
		case errors.As(err, &r):
			ss.send(r)
		case err != nil:
			if !errors.Is(err, net.ErrClosed) {
				ss.log.Info("session ends", "command", keyword, "err", err)
			}
			return
		}
		if quit {
			ss.last()
			return
		}
	}
	ss.send(errTooManyErrors)
	ss.w.Flush()
}

// handshake runs the TLS handshake on tc, which must be over by the
// login deadline: TLS comes before login, with implicit TLS or STLS.
func (ss *session) handshake(tc *tls.Conn) error {
	tc.SetDeadline(ss.loginBy)
	defer tc.SetDeadline(time.Time{})
	return tc.HandshakeContext(ss.srv.ctx)
}

// flushIfWaiting sends the replies written so far, unless the client has
// already sent another whole command (pipelining, RFC 2449): then they go
// out together with its reply.
func (ss *session) flushIfWaiting() error {
	if n := ss.r.Buffered(); n > 0 {
		if b, _ := ss.r.Peek(n); bytes.IndexByte(b, '\n') >= 0 {
			return nil
		}
	}
	return ss.w.Flush()
}

// readCommand reads the next command line, without its line ending. The
// whole line must be in by one deadline, fixed when the wait starts, so
// that trickling bytes does not extend it: before login the login
// deadline, after it Config.CommandTimeout from now, and never past the
// end of the session, when it fails with errSessionOver. It returns
// errLineTooLong, having skipped the line, for a line longer than maxLine.
// It marks the session idle while it waits, and fails with
// ErrServerClosed once the server is shutting down.
func (ss *session) readCommand() (string, error) {
	s := ss.srv
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return "", ErrServerClosed
	}
	ss.idle = true
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		ss.idle = false
		s.mu.Unlock()
	}()
	// Checked here too, as a pipelined line may be buffered already and
	// need no read.
	now := time.Now()
	if !now.Before(ss.end) {
		return "", errSessionOver
	}
	deadline := ss.loginBy
	if ss.state == stateTransaction {
		deadline = earliest(now.Add(s.cfg.CommandTimeout), ss.end)
	} else if !now.Before(deadline) {
		return "", errLoginOver
	}
	ss.conn.SetReadDeadline(deadline)
	line, err := ss.readLine()
	if errors.Is(err, os.ErrDeadlineExceeded) && !time.Now().Before(ss.end) {
		return "", errSessionOver
	}
	return line, err
}

// readLine reads a line of at most maxLine bytes and returns it without its
// line ending; a longer one is skipped, and errLineTooLong returned.
func (ss *session) readLine() (string, error) {
	line, err := ss.r.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		for err == bufio.ErrBufferFull {
			_, err = ss.r.ReadSlice('\n')
		}
		if err != nil {
			return "", err
		}
		return "", errLineTooLong
	}
	if err != nil {
		return "", err // a last line without its LF is not a command
	}
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return string(line), nil
}

// okf writes a +OK reply and counts the -ERR replies in a row from zero
// again.
func (ss *session) okf(format string, args ...any) {
	ss.errors = 0
	ss.w.WriteString("+OK")
	if format != "" {
		ss.w.WriteByte(' ')
		fmt.Fprintf(ss.w, format, args...)
	}
	ss.w.WriteString("\r\n")
}

// send writes a -ERR reply.
func (ss *session) send(r *reply) {
	ss.errors++
	ss.w.WriteString("-ERR ")
	ss.w.WriteString(r.Error())
	ss.w.WriteString("\r\n")
}

// exec runs one command; quit reports that the session is over.
func (ss *session) exec(keyword, rest string) (quit bool, err error) {
	switch keyword {
	case "CAPA":
		return false, ss.capa()
	case "QUIT":
		return true, ss.quit()
	}
	if ss.state == stateAuthorization {
		switch keyword {
		case "USER":
			return false, ss.userCmd(rest)
		case "PASS":
			return false, ss.pass(rest)
		case "AUTH":
			return false, ss.auth(rest)
		case "STLS":
			return false, ss.stls()
		case "APOP":
			return false, ss.apop(rest)
		case "STAT", "LIST", "RETR", "DELE", "NOOP", "RSET", "TOP", "UIDL":
			return false, errWrongState
		}
		return false, &reply{text: "Unknown command"}
	}
	switch keyword {
	case "STAT":
		return false, ss.stat(rest)
	case "LIST":
		return false, ss.list(rest)
	case "UIDL":
		return false, ss.uidl(rest)
	case "RETR":
		return false, ss.retr(rest)
	case "TOP":
		return false, ss.top(rest)
	case "DELE":
		return false, ss.dele(rest)
	case "NOOP":
		return false, ss.noop(rest)
	case "RSET":
		return false, ss.rset(rest)
	case "USER", "PASS", "AUTH", "STLS", "APOP":
		return false, errWrongState
	}
	return false, &reply{text: "Unknown command"}
}

// capa answers CAPA (RFC 2449). Before login it offers the ways to log in
// that are open now; after, only what the TRANSACTION state has.
func (ss *session) capa() error {
	ss.okf("Capability list follows")
	caps := []string{"TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING"}
	if ss.state == stateAuthorization {
		if ss.plainAllowed() {
			caps = append(caps, "USER", "SASL PLAIN")
		}
		if ss.srv.cfg.TLS != nil && !ss.tls {
			caps = append(caps, "STLS")
		}
	}
	caps = append(caps, "IMPLEMENTATION mailsys")
	for _, c := range caps {
		ss.w.WriteString(c + "\r\n")
	}
	ss.w.WriteString(".\r\n")
	return nil
}

// quit answers QUIT: in the TRANSACTION state it enters the UPDATE state,
// which deletes what the session marked, all of it or nothing.
func (ss *session) quit() error {
	if ss.state == stateAuthorization {
		ss.okf("%s POP3 server signing off", ss.srv.cfg.Hostname)
		return nil
	}
	left, err := ss.update()
	// The maildrop is free before the reply goes out, so that a client
	// may log in again as soon as it has it.
	ss.srv.unlock(ss.drop.user)
	ss.drop = nil
	if err != nil {
		return err
	}
	ss.okf("%s POP3 server signing off (%d messages left)", ss.srv.cfg.Hostname, left)
	return nil
}
