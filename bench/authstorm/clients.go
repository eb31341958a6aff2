package main

import (
	"bufio"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"strings"
	"syscall"
	"time"
)

// ioTimeout bounds every attempt and every legitimate login: the dial, and
// all its reads and writes together.
const ioTimeout = 10 * time.Second

// outcome is how a wrong-password login ended.
type outcome int

const (
	outBusy   outcome = iota // the protocol's "try again later": IMAP NO [UNAVAILABLE], POP3 -ERR [SYS/TEMP], SMTP 454
	outFailed                // authentication failed: IMAP NO [AUTHENTICATIONFAILED], POP3 -ERR, SMTP 535
	outOK                    // the wrong password was taken: never expected
	outOther                 // an answer that is none of these (detail says which)
	outError                 // a network error or timeout, or no answer
	numOutcomes
)

var outcomeNames = [numOutcomes]string{"busy", "failed", "accepted", "other", "errors"}

// protocol is what an attacker speaks.
type protocol int

const (
	protoIMAP protocol = iota
	protoPOP3
	protoSubmission
	numProtocols
)

var protocolNames = [numProtocols]string{"imap", "pop3", "submission"}

// addrs are the child's listeners.
type addrs struct {
	submission, imap, pop3 string
}

// textConn is a line-oriented client connection.
type textConn struct {
	c net.Conn
	r *bufio.Reader
}

// dial connects from local (nil for any) to addr; the connection's deadline
// is ioTimeout from now, for everything done on it.
func dial(local net.IP, addr string) (*textConn, error) {
	d := net.Dialer{Timeout: ioTimeout}
	if local != nil {
		d.LocalAddr = &net.TCPAddr{IP: local}
	}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	c.SetDeadline(time.Now().Add(ioTimeout))
	return &textConn{c: c, r: bufio.NewReaderSize(c, 4096)}, nil
}

func (t *textConn) send(s string) error {
	_, err := t.c.Write([]byte(s + "\r\n"))
	return err
}

// line reads a line without its CRLF; lines longer than the buffer are
// cut.
func (t *textConn) line() (string, error) {
	b, err := t.r.ReadSlice('\n')
	if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
		return "", err
	}
	s := strings.TrimRight(string(b), "\r\n")
	for errors.Is(err, bufio.ErrBufferFull) {
		_, err = t.r.ReadSlice('\n')
	}
	return s, nil
}

// tagged reads lines until the one tagged tag and returns what follows the
// tag.
func (t *textConn) tagged(tag string) (string, error) {
	for {
		l, err := t.line()
		if err != nil {
			return "", err
		}
		if rest, ok := strings.CutPrefix(l, tag+" "); ok {
			return rest, nil
		}
	}
}

// smtpReply reads a (multi-line) SMTP reply and returns its code and last
// line.
func (t *textConn) smtpReply() (string, string, error) {
	for {
		l, err := t.line()
		if err != nil {
			return "", "", err
		}
		if len(l) < 3 {
			return "", l, fmt.Errorf("bad SMTP reply %q", l)
		}
		if len(l) == 3 || l[3] != '-' {
			return l[:3], l, nil
		}
	}
}

func (t *textConn) close() { t.c.Close() }

// errUnexpected is a reply out of the protocol's order (a refused greeting,
// say), counted as an error with the reply as its detail.
type errUnexpected struct{ reply string }

func (e errUnexpected) Error() string { return "unexpected reply: " + e.reply }

// attempt is one attacker's login: connect from local, try user with a
// wrong password, read the answer, quit. It returns the outcome and, for
// outOther and outError, what happened.
func attempt(p protocol, a addrs, local net.IP, user, password string, tlsConf *tls.Config) (outcome, string) {
	var o outcome
	var detail string
	var err error
	switch p {
	case protoIMAP:
		o, detail, err = attackIMAP(a.imap, local, user, password)
	case protoPOP3:
		o, detail, err = attackPOP3(a.pop3, local, user, password)
	case protoSubmission:
		o, detail, err = attackSubmission(a.submission, local, user, password, tlsConf)
	}
	if err != nil {
		return outError, errorKind(err)
	}
	return o, detail
}

func attackIMAP(addr string, local net.IP, user, password string) (outcome, string, error) {
	c, err := dial(local, addr)
	if err != nil {
		return 0, "", fmt.Errorf("dial: %w", err)
	}
	defer c.close()
	g, err := c.line()
	if err != nil {
		return 0, "", fmt.Errorf("greeting: %w", err)
	}
	if !strings.HasPrefix(g, "* OK") {
		return 0, "", errUnexpected{g}
	}
	if err := c.send(fmt.Sprintf("a LOGIN %q %q", user, password)); err != nil {
		return 0, "", err
	}
	r, err := c.tagged("a")
	if err != nil {
		return 0, "", fmt.Errorf("LOGIN: %w", err)
	}
	var o outcome
	switch {
	case strings.HasPrefix(r, "OK"):
		o = outOK
	case strings.HasPrefix(r, "NO [UNAVAILABLE]"):
		o = outBusy
	case strings.HasPrefix(r, "NO [AUTHENTICATIONFAILED]"), r == "NO", strings.HasPrefix(r, "NO ") && !strings.HasPrefix(r, "NO ["):
		o = outFailed
	default:
		o = outOther
	}
	if c.send("b LOGOUT") == nil {
		c.tagged("b")
	}
	return o, "imap: " + r, nil
}

func attackPOP3(addr string, local net.IP, user, password string) (outcome, string, error) {
	c, err := dial(local, addr)
	if err != nil {
		return 0, "", fmt.Errorf("dial: %w", err)
	}
	defer c.close()
	g, err := c.line()
	if err != nil {
		return 0, "", fmt.Errorf("greeting: %w", err)
	}
	if !strings.HasPrefix(g, "+OK") {
		return 0, "", errUnexpected{g}
	}
	if err := c.send("USER " + user); err != nil {
		return 0, "", err
	}
	r, err := c.line()
	if err != nil {
		return 0, "", fmt.Errorf("USER: %w", err)
	}
	if !strings.HasPrefix(r, "+OK") {
		return outOther, "pop3 USER: " + r, nil
	}
	if err := c.send("PASS " + password); err != nil {
		return 0, "", err
	}
	if r, err = c.line(); err != nil {
		return 0, "", fmt.Errorf("PASS: %w", err)
	}
	var o outcome
	switch {
	case strings.HasPrefix(r, "+OK"):
		o = outOK
	case strings.HasPrefix(r, "-ERR [SYS/TEMP]"):
		o = outBusy
	case strings.HasPrefix(r, "-ERR"):
		o = outFailed
	default:
		o = outOther
	}
	if c.send("QUIT") == nil {
		c.line()
	}
	return o, "pop3: " + r, nil
}

func attackSubmission(addr string, local net.IP, user, password string, tlsConf *tls.Config) (outcome, string, error) {
	c, err := dial(local, addr)
	if err != nil {
		return 0, "", fmt.Errorf("dial: %w", err)
	}
	defer c.close()
	step := func(cmd, want string) error {
		if cmd != "" {
			if err := c.send(cmd); err != nil {
				return err
			}
		}
		code, l, err := c.smtpReply()
		if err != nil {
			return fmt.Errorf("%s: %w", strings.Fields(cmd + " greeting")[0], err)
		}
		if code != want {
			return errUnexpected{l}
		}
		return nil
	}
	if err := step("", "220"); err != nil {
		return 0, "", err
	}
	if err := step("EHLO attacker.example", "250"); err != nil {
		return 0, "", err
	}
	if err := step("STARTTLS", "220"); err != nil {
		return 0, "", err
	}
	tc := tls.Client(c.c, tlsConf)
	if err := tc.Handshake(); err != nil {
		return 0, "", fmt.Errorf("TLS: %w", err)
	}
	c.c, c.r = tc, bufio.NewReaderSize(tc, 4096)
	if err := step("EHLO attacker.example", "250"); err != nil {
		return 0, "", err
	}
	creds := base64.StdEncoding.EncodeToString([]byte("\x00" + user + "\x00" + password))
	if err := c.send("AUTH PLAIN " + creds); err != nil {
		return 0, "", err
	}
	code, l, err := c.smtpReply()
	if err != nil {
		return 0, "", fmt.Errorf("AUTH: %w", err)
	}
	var o outcome
	switch code {
	case "235":
		o = outOK
	case "454":
		o = outBusy
	case "535":
		o = outFailed
	default:
		o = outOther
	}
	if c.send("QUIT") == nil {
		c.smtpReply()
	}
	return o, "smtp: " + l, nil
}

// errorKind names an error by its class, for counting.
func errorKind(err error) string {
	var u errUnexpected
	var ne net.Error
	switch {
	case errors.As(err, &u):
		return "unexpected reply: " + u.reply
	case errors.Is(err, os.ErrDeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return prefix(err) + "timeout"
	case errors.Is(err, syscall.ECONNRESET):
		return prefix(err) + "connection reset"
	case errors.Is(err, syscall.ECONNREFUSED):
		return prefix(err) + "connection refused"
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return prefix(err) + "address not available"
	case errors.Is(err, syscall.EPIPE):
		return prefix(err) + "broken pipe"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return prefix(err) + "closed by the server"
	}
	return err.Error()
}

// prefix is the step an error happened in ("dial: ", "LOGIN: "...), if it
// says.
func prefix(err error) string {
	s := err.Error()
	if i := strings.Index(s, ": "); i > 0 && !strings.ContainsAny(s[:i], " .") {
		return s[:i+2]
	}
	return ""
}

// pickUser chooses whom an attacker tries: legit@ a tenth of the time,
// one of the other users six tenths, an address that does not exist the
// rest.
func pickUser(rng *rand.Rand, users int) string {
	switch r := rng.IntN(10); {
	case r == 0:
		return legitUser
	case r < 7 && users > 0:
		return otherUser(rng.IntN(users))
	default:
		return fmt.Sprintf("nobody%05d@%s", rng.IntN(100_000), domain)
	}
}

// attackerIP is attacker i's source address: 127.0.X.Y with X from 1, so
// never 127.0.0.1, the legitimate client's.
func attackerIP(i int) net.IP {
	return net.IPv4(127, byte(1+i/250), byte(1+i%250), 0).To4()
}

// legitTiming is one legitimate login's phases.
type legitTiming struct {
	dial, greeting, login time.Duration // connect; connected to greeting; LOGIN sent to tagged OK
}

func (l legitTiming) total() time.Duration { return l.dial + l.greeting + l.login }

// legitLogin logs legit@ in over IMAP from 127.0.0.1 on a new connection
// and out again. The timing stops at the tagged OK of LOGIN.
func legitLogin(addr string) (legitTiming, error) {
	var t legitTiming
	start := time.Now()
	c, err := dial(net.IPv4(127, 0, 0, 1), addr)
	if err != nil {
		return t, fmt.Errorf("dial: %w", err)
	}
	defer c.close()
	t.dial = time.Since(start)
	g, err := c.line()
	if err != nil {
		return t, fmt.Errorf("greeting: %w", err)
	}
	if !strings.HasPrefix(g, "* OK") {
		return t, errUnexpected{g}
	}
	t.greeting = time.Since(start) - t.dial
	if err := c.send(fmt.Sprintf("a LOGIN %q %q", legitUser, legitPass)); err != nil {
		return t, err
	}
	r, err := c.tagged("a")
	if err != nil {
		return t, fmt.Errorf("LOGIN: %w", err)
	}
	t.login = time.Since(start) - t.dial - t.greeting
	if !strings.HasPrefix(r, "OK") {
		return t, errUnexpected{r}
	}
	if c.send("b LOGOUT") == nil {
		c.tagged("b")
	}
	return t, nil
}
