package queue

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"net/textproto"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/mailsys/mailsys/mta/dane"
	"github.com/mailsys/mailsys/mta/mtasts"
	"github.com/mailsys/mailsys/mta/resolve"
)

// outcome is what became of a recipient in an attempt.
type outcome struct {
	ok, perm bool
	reply    string // the reply or error, "550 5.1.1 No such user"
	status   string // its enhanced status code
	host     string // that gave it, "" if none did
	dsn      bool   // the next hop offers DSN
}

// Bounds of an attempt at connecting to a destination.
const (
	maxHosts     = 10 // MX hosts tried
	maxAddresses = 10 // addresses tried, over all hosts
)

// conn is an SMTP connection to a destination's host, kept for several
// messages.
type conn struct {
	c    *smtp.Client
	raw  net.Conn // what the client talks over: TCP, or TLS over it
	br   *bufio.Reader
	host string // the host's name
	tls  bool
	dsn  bool // the host offers DSN
	// pipelining is set when the host offers PIPELINING (RFC 2920): a
	// transaction's commands go in one write (see sendPipelined).
	pipelining bool
	sent       int // messages sent over it
	broken     bool
	stop       func() bool // of the AfterFunc closing raw when the queue closes
}

func (c *conn) close() {
	c.stop()
	c.c.Close()
}

// quit ends the session politely, within a short time.
func (c *conn) quit() {
	c.raw.SetDeadline(time.Now().Add(5 * time.Second))
	if !c.broken {
		c.c.Quit()
	}
	c.close()
}

// attempt tries j over c, or over a new connection to d if c is nil or
// spent, records the outcome and returns the connection to use next (nil
// if none).
func (q *Queue) attempt(d *dest, j *job, c *conn) *conn {
	ctx := q.ctx
	if c != nil && (c.broken || c.sent >= q.cfg.MaxPerConnection) {
		c.quit()
		c = nil
	}
	if c == nil {
		var fail *outcome
		c, fail = q.connect(ctx, d, j)
		q.mu.Lock()
		if fail != nil && !fail.perm && ctx.Err() == nil {
			d.failures++
			d.lastErr, d.lastFail = fail.reply, time.Now()
			if d.failures >= q.cfg.DeadAfter {
				d.dead = time.Now().Add(q.cfg.DeadFor)
				q.log.Warn("destination marked dead", "destination", d.name, "failures", d.failures, "until", d.dead, "err", fail.reply)
			}
		} else if fail == nil {
			d.failures, d.dead = 0, time.Time{}
		}
		q.mu.Unlock()
		if fail != nil {
			out := make([]outcome, len(j.rcpts))
			for k := range out {
				out[k] = *fail
			}
			q.complete(j, out)
			return nil
		}
	}
	q.mu.Lock()
	kept := j.e.body
	q.mu.Unlock()
	out := c.send(ctx, q, j, kept)
	c.sent++
	if c.broken {
		c.close()
		c = nil
	}
	q.complete(j, out)
	return c
}

// target is a host to connect to, with the TLS it needs.
type target struct {
	name   string // host name (for TLS and the logs)
	port   int
	secure bool // its MX (or route) lookup was authenticated: DANE may apply
	verify bool // TLS with a certificate valid for name is required
	route  *Route
	domain string // the next-hop domain, for DANE's names
	// implicit is set for the domain itself, when it has no MX records:
	// with no address either, the domain has nowhere to take mail.
	implicit bool
}

// connect opens a connection for j to its destination's first host that
// answers, and returns it, or the outcome for all j's recipients.
func (q *Queue) connect(ctx context.Context, d *dest, j *job) (*conn, *outcome) {
	targets, fail := q.targets(ctx, d, j)
	if fail != nil {
		return nil, fail
	}
	tried := 0
	last := &outcome{reply: "451 4.4.0 No host to try", status: "4.4.0"}
	for _, t := range targets {
		if tried >= maxAddresses {
			break
		}
		ips, ires, err := q.hostAddrs(ctx, t.name)
		if t.implicit && errors.Is(err, resolve.ErrNotFound) {
			return nil, &outcome{perm: true, status: "5.1.2", reply: "550 5.1.2 Recipient domain " + t.name + " has no MX or address records"}
		}
		if err != nil {
			last = q.temp("4.4.3", t.name, "address lookup of %s: %v", t.name, err)
			continue
		}
		var recs []resolve.TLSA
		if t.secure && ires.Authentic && !q.cfg.DisableDANE && t.route == nil {
			all, tres, err := q.res.LookupTLSA(ctx, t.port, t.name)
			switch {
			case errors.Is(err, resolve.ErrNotFound):
			case err != nil:
				// RFC 7672 §2.2: a secure host whose TLSA records cannot
				// be had is not used.
				last = q.temp("4.7.5", t.name, "TLSA lookup of %s: %v", t.name, err)
				continue
			case tres.Authentic:
				recs = dane.Usable(all)
			}
		}
		for _, ip := range ips {
			if tried >= maxAddresses || ctx.Err() != nil {
				break
			}
			tried++
			c, fail := q.dial(ctx, t, ip, recs)
			if fail == nil {
				return c, nil
			}
			last = fail
			if fail.perm {
				return nil, fail
			}
		}
	}
	return nil, last
}

// targets returns the hosts to try for j, in order.
func (q *Queue) targets(ctx context.Context, d *dest, j *job) ([]target, *outcome) {
	if r := j.route; r != nil {
		host, port, _ := r.hostPort()
		return []target{{name: host, port: port, verify: r.Username != "" || r.RequireTLS || r.ImplicitTLS, route: r}}, nil
	}
	domain := d.name
	mx, res, err := q.res.LookupMX(ctx, domain)
	implicit := false
	switch {
	case errors.Is(err, resolve.ErrNotFound):
		// No MX: the domain itself is the implicit MX (RFC 5321 §5.1).
		mx, implicit = []*net.MX{{Host: domain, Pref: 0}}, true
	case err != nil:
		return nil, q.temp("4.4.3", "", "MX lookup of %s: %v", domain, err)
	case len(mx) == 1 && mx[0].Host == ".":
		return nil, &outcome{perm: true, reply: "556 5.1.10 Recipient domain " + domain + " does not accept mail (null MX, RFC 7505)", status: "5.1.10"}
	}
	// Lowest preference first; the order among equals is random, to
	// spread the load (RFC 5321 §5.1).
	rand.Shuffle(len(mx), func(a, b int) { mx[a], mx[b] = mx[b], mx[a] })
	slices.SortStableFunc(mx, func(a, b *net.MX) int { return cmp.Compare(a.Pref, b.Pref) })
	var pol *mtasts.Policy
	if q.sts != nil {
		if pol, err = q.sts.Policy(ctx, domain); err != nil {
			q.log.Warn("MTA-STS policy not had", "domain", domain, "err", err)
			pol = nil
		}
	}
	var out []target
	for _, m := range mx {
		host := strings.ToLower(strings.TrimSuffix(m.Host, "."))
		if host == "" || host == "." {
			continue
		}
		if pol != nil && pol.Mode != mtasts.None && !pol.Match(host) {
			if pol.Enforced() {
				q.log.Info("MX host skipped: not in the MTA-STS policy", "domain", domain, "host", host)
				continue
			}
			q.log.Info("MX host not in the MTA-STS policy (testing mode)", "domain", domain, "host", host)
		}
		out = append(out, target{name: host, port: q.cfg.Port, secure: res.Authentic, verify: pol != nil && pol.Enforced(), domain: domain, implicit: implicit})
		if len(out) == maxHosts {
			break
		}
	}
	if len(out) == 0 {
		return nil, q.temp("4.7.5", "", "no MX host of %s matches its MTA-STS policy", domain)
	}
	return out, nil
}

// hostAddrs returns a host's addresses: itself if it is an IP address.
func (q *Queue) hostAddrs(ctx context.Context, host string) ([]netip.Addr, resolve.Result, error) {
	if ip, err := netip.ParseAddr(host); err == nil {
		return []netip.Addr{ip}, resolve.Result{}, nil
	}
	return q.res.LookupIP(ctx, host)
}

// temp is a temporary failure outcome.
func (q *Queue) temp(status, host, format string, args ...any) *outcome {
	return &outcome{reply: "451 " + status + " " + fmt.Sprintf(format, args...), status: status, host: host}
}

// dial connects to one address of t, says EHLO, starts TLS as t and recs
// require (or opportunistically), and logs in on a route with
// credentials.
func (q *Queue) dial(ctx context.Context, t target, ip netip.Addr, recs []resolve.TLSA) (*conn, *outcome) {
	mustTLS := t.verify || len(recs) > 0
	c, fail := q.session(ctx, t, ip, recs, mustTLS, true)
	if fail != nil && fail.tlsFailed && !mustTLS {
		// Opportunistic TLS that failed: again in clear, as RFC 7435
		// allows.
		q.log.Info("TLS failed; trying again without it", "host", t.name, "addr", ip, "err", fail.reply)
		c, fail = q.session(ctx, t, ip, nil, false, false)
	}
	if fail != nil {
		return nil, &fail.outcome
	}
	return c, nil
}

// dialFailure is an outcome that says whether TLS is what failed.
type dialFailure struct {
	outcome
	tlsFailed bool
}

func (q *Queue) session(ctx context.Context, t target, ip netip.Addr, recs []resolve.TLSA, mustTLS, tryTLS bool) (*conn, *dialFailure) {
	addr := net.JoinHostPort(ip.String(), strconv.Itoa(t.port))
	fail := func(tlsFailed bool, status, format string, args ...any) *dialFailure {
		return &dialFailure{*q.temp(status, t.name, format, args...), tlsFailed}
	}
	dctx, cancel := context.WithTimeout(ctx, q.cfg.ConnectTimeout)
	raw, err := (&net.Dialer{}).DialContext(dctx, "tcp", addr)
	cancel()
	if err != nil {
		return nil, fail(false, "4.4.1", "connecting to %s [%s]: %v", t.name, addr, err)
	}
	raw = &budgetConn{Conn: raw, max: q.cfg.MaxReply}
	tcp := raw
	stop := context.AfterFunc(ctx, func() { tcp.Close() })
	var sc *smtp.Client
	if t.route != nil && t.route.ImplicitTLS {
		tc := tls.Client(raw, q.verifyConfig(t.name))
		hctx, cancel := context.WithTimeout(ctx, q.cfg.CommandTimeout)
		err := tc.HandshakeContext(hctx)
		cancel()
		if err != nil {
			stop()
			raw.Close()
			return nil, fail(true, "4.7.5", "TLS with %s [%s]: %v", t.name, addr, err)
		}
		sc, raw = smtp.NewClient(tc), tc
	} else {
		sc = smtp.NewClient(raw)
	}
	sc.CommandTimeout = q.cfg.CommandTimeout
	sc.SubmissionTimeout = q.cfg.DataTimeout
	c := &conn{c: sc, raw: raw, host: t.name, stop: stop, tls: t.route != nil && t.route.ImplicitTLS}
	abandon := func(f *dialFailure) (*conn, *dialFailure) {
		c.broken = true
		c.quit()
		return nil, f
	}
	if err := sc.Hello(q.cfg.Hostname); err != nil {
		return abandon(q.replyFailure(t.name, addr, "greeting or EHLO", err))
	}
	if !c.tls {
		offered, _ := sc.Extension("STARTTLS")
		switch {
		case offered && tryTLS:
			cfg := &tls.Config{ServerName: t.name, InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}
			switch {
			case len(recs) > 0:
				cfg = dane.Config(q.cfg.TLS, recs, daneNames(t))
			case mustTLS:
				cfg = q.verifyConfig(t.name)
			case q.cfg.TLS != nil:
				cfg = q.cfg.TLS.Clone()
				cfg.ServerName, cfg.InsecureSkipVerify, cfg.MinVersion = t.name, true, tls.VersionTLS12
			}
			tsc, tc, err := q.startTLS(ctx, raw, cfg, t.name)
			if err != nil {
				c.broken = true
				c.close()
				return nil, fail(true, "4.7.5", "STARTTLS with %s [%s]: %v", t.name, addr, err)
			}
			tsc.CommandTimeout, tsc.SubmissionTimeout = sc.CommandTimeout, sc.SubmissionTimeout
			c.c, sc, c.raw, c.tls = tsc, tsc, tc, true
		case mustTLS:
			return abandon(fail(false, "4.7.4", "%s [%s] does not offer STARTTLS, which policy requires", t.name, addr))
		}
	}
	if r := t.route; r != nil && r.Username != "" {
		if !c.tls {
			return abandon(fail(false, "4.7.4", "%s [%s]: no TLS to log in over", t.name, addr))
		}
		if err := sc.Auth(sasl.NewPlainClient("", r.Username, r.Password)); err != nil {
			return abandon(q.replyFailure(t.name, addr, "AUTH", err))
		}
	}
	c.dsn, _ = sc.Extension("DSN")
	c.pipelining, _ = sc.Extension("PIPELINING")
	return c, nil
}

// daneNames are the names a DANE-TA certificate may carry: the MX host's
// and the next-hop domain's (RFC 7672 §3.2.2).
func daneNames(t target) []string {
	if t.domain != "" && t.domain != t.name {
		return []string{t.name, t.domain}
	}
	return []string{t.name}
}

// verifyConfig is the TLS configuration that verifies a certificate for
// name against TLS's roots.
func (q *Queue) verifyConfig(name string) *tls.Config {
	cfg := &tls.Config{}
	if q.cfg.TLS != nil {
		cfg = q.cfg.TLS.Clone()
	}
	cfg.ServerName, cfg.InsecureSkipVerify = name, false
	cfg.MinVersion = max(cfg.MinVersion, tls.VersionTLS12)
	return cfg
}

// httpsClient is the client MTA-STS policies are fetched with: TLS's
// roots, no redirects.
func httpsClient(base *tls.Config) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if base != nil {
		tr.TLSClientConfig = &tls.Config{RootCAs: base.RootCAs, MinVersion: tls.VersionTLS12}
	}
	return &http.Client{Transport: tr, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// replyFailure is the outcome of a command that failed on connecting.
// Every failure at this stage is temporary for the destination (another
// host may answer): a 5xx greeting included.
func (q *Queue) replyFailure(host, addr, what string, err error) *dialFailure {
	if se, ok := errors.AsType[*smtp.SMTPError](err); ok {
		return &dialFailure{outcome: outcome{reply: replyText(se), status: statusOf(se), host: host}}
	}
	return &dialFailure{outcome: *q.temp("4.4.2", host, "%s of %s [%s]: %v", what, host, addr, err)}
}

// replyText is an SMTP error as a reply line.
func replyText(se *smtp.SMTPError) string {
	msg := strings.ReplaceAll(se.Message, "\n", " ")
	if se.EnhancedCode != (smtp.EnhancedCode{}) && se.EnhancedCode != smtp.NoEnhancedCode {
		return fmt.Sprintf("%d %d.%d.%d %s", se.Code, se.EnhancedCode[0], se.EnhancedCode[1], se.EnhancedCode[2], msg)
	}
	return fmt.Sprintf("%d %s", se.Code, msg)
}

// statusOf is the enhanced status code of a reply, or one made from its
// class.
func statusOf(se *smtp.SMTPError) string {
	if se.EnhancedCode != (smtp.EnhancedCode{}) && se.EnhancedCode != smtp.NoEnhancedCode {
		return fmt.Sprintf("%d.%d.%d", se.EnhancedCode[0], se.EnhancedCode[1], se.EnhancedCode[2])
	}
	if se.Code >= 500 {
		return "5.0.0"
	}
	return "4.0.0"
}

// send sends j's message (kept, if not nil, is its body) to j's
// recipients over c, and returns each
// recipient's outcome in j.rcpts's order. An error that leaves the
// session unusable marks c broken.
func (c *conn) send(ctx context.Context, q *Queue, j *job, kept []byte) []outcome {
	m := j.e.m
	out := make([]outcome, len(j.rcpts))
	all := func(o outcome) []outcome {
		for k := range out {
			out[k] = o
		}
		return out
	}
	size := m.Size + int64(len(m.Sig))
	if limit, ok := c.c.MaxMessageSize(); ok && limit > 0 && size > int64(limit) {
		return all(outcome{perm: true, host: c.host, status: "5.3.4",
			reply: fmt.Sprintf("552 5.3.4 Message of %d bytes is over the %d bytes %s takes", size, limit, c.host)})
	}
	if ok, _ := c.c.Extension("SMTPUTF8"); m.UTF8 && !ok {
		return all(outcome{perm: true, host: c.host, status: "5.6.7",
			reply: "553 5.6.7 The message needs SMTPUTF8 (RFC 6531), which " + c.host + " does not offer"})
	}
	if ok, _ := c.c.Extension("8BITMIME"); m.EightBit && !ok {
		return all(outcome{perm: true, host: c.host, status: "5.6.3",
			reply: "554 5.6.3 The message has 8-bit content, and " + c.host + " does not offer 8BITMIME"})
	}
	// failed classifies an error of a command: the reply's, or a
	// temporary failure that breaks the session.
	failed := func(err error) outcome {
		if se, ok := errors.AsType[*smtp.SMTPError](err); ok {
			if se.Code == 421 {
				c.broken = true
			}
			return outcome{perm: se.Code >= 500, reply: replyText(se), status: statusOf(se), host: c.host}
		}
		c.broken = true
		return *q.temp("4.4.2", c.host, "connection with %s: %v", c.host, err)
	}
	if c.pipelining {
		return c.sendPipelined(q, j, kept, size)
	}
	opts := &smtp.MailOptions{Size: size, UTF8: m.UTF8}
	if c.dsn {
		opts.Return, opts.EnvelopeID = smtp.DSNReturn(m.Ret), m.EnvID
	}
	if err := c.c.Mail(m.From, opts); err != nil {
		o := failed(err)
		c.reset()
		return all(o)
	}
	var accepted []int
	for k, i := range j.rcpts {
		rc := m.Rcpts[i]
		err := c.c.Rcpt(rc.Addr, c.rcptOptions(rc))
		if err != nil {
			out[k] = failed(err)
			if c.broken {
				for k2 := k + 1; k2 < len(j.rcpts); k2++ {
					out[k2] = out[k]
				}
				return out
			}
			continue
		}
		accepted = append(accepted, k)
	}
	if len(accepted) == 0 {
		c.reset()
		return out
	}
	w, err := c.c.Data()
	if err != nil {
		o := failed(err)
		for _, k := range accepted {
			out[k] = o
		}
		c.reset()
		return out
	}
	c.raw.SetDeadline(time.Now().Add(q.cfg.DataTimeout))
	_, err = io.WriteString(w, m.Sig)
	if err == nil {
		var body io.Reader = q.st.body(j.e.id, m.Size)
		if kept != nil {
			body = bytes.NewReader(kept)
		}
		_, err = io.Copy(w, body)
	}
	if err == nil {
		err = w.Close()
	} else {
		c.broken = true
	}
	o := outcome{ok: true, reply: "250 2.0.0 Accepted", status: "2.0.0", host: c.host, dsn: c.dsn}
	if err != nil {
		o = failed(err)
		if !c.broken {
			c.reset()
		}
	}
	for _, k := range accepted {
		out[k] = o
	}
	return out
}

// rcptOptions are the DSN parameters to pass on for rc, if the host
// takes them.
func (c *conn) rcptOptions(rc Rcpt) *smtp.RcptOptions {
	if !c.dsn {
		return nil
	}
	o := &smtp.RcptOptions{}
	if rc.Notify != "" {
		for _, n := range strings.Split(rc.Notify, ",") {
			o.Notify = append(o.Notify, smtp.DSNNotify(strings.ToUpper(strings.TrimSpace(n))))
		}
	}
	if typ, addr, ok := strings.Cut(rc.ORcpt, ";"); ok && addr != "" {
		switch strings.ToUpper(typ) {
		case "RFC822":
			o.OriginalRecipientType, o.OriginalRecipient = smtp.DSNAddressTypeRFC822, addr
		case "UTF-8":
			o.OriginalRecipientType, o.OriginalRecipient = smtp.DSNAddressTypeUTF8, addr
		}
	}
	return o
}

// reset ends a transaction that went wrong, so that the session can take
// the next; if it cannot, c is broken.
func (c *conn) reset() {
	if c.broken {
		return
	}
	if err := c.c.Reset(); err != nil {
		c.broken = true
	}
}

// budgetConn fails a read once the peer has sent more than max bytes
// since the last write: no reply to one command is that long, so the
// peer is misbehaving (a 10 MB line, an endless multi-line reply).
type budgetConn struct {
	net.Conn
	max, n int
}

var errReplyTooLong = errors.New("queue: reply too long")

func (b *budgetConn) Read(p []byte) (int, error) {
	if b.n >= b.max {
		return 0, errReplyTooLong
	}
	if len(p) > b.max-b.n {
		p = p[:b.max-b.n]
	}
	n, err := b.Conn.Read(p)
	b.n += n
	return n, err
}

func (b *budgetConn) Write(p []byte) (int, error) {
	b.n = 0
	return b.Conn.Write(p)
}

// startTLS sends STARTTLS over wire, a session go-smtp's client has said
// EHLO over, starts TLS on it, and returns a go-smtp client over the TLS
// connection that has said EHLO again as the configured host name, and
// the TLS connection. (go-smtp's client starts TLS only as
// NewClientStartTLS, which greets and says EHLO itself, as "localhost",
// and keeps the TLS connection to itself: PIPELINING needs it.)
func (q *Queue) startTLS(ctx context.Context, wire net.Conn, cfg *tls.Config, host string) (*smtp.Client, *tls.Conn, error) {
	wire.SetDeadline(time.Now().Add(q.cfg.CommandTimeout))
	if _, err := io.WriteString(wire, "STARTTLS\r\n"); err != nil {
		return nil, nil, err
	}
	br := bufio.NewReaderSize(wire, 1024)
	if _, _, err := textproto.NewReader(br).ReadResponse(220); err != nil {
		return nil, nil, err
	}
	if br.Buffered() > 0 {
		return nil, nil, errors.New("data after the STARTTLS reply")
	}
	tc := tls.Client(wire, cfg)
	hctx, cancel := context.WithTimeout(ctx, q.cfg.CommandTimeout)
	err := tc.HandshakeContext(hctx)
	cancel()
	if err != nil {
		return nil, nil, err
	}
	wire.SetDeadline(time.Time{})
	c := smtp.NewClient(&greeted{Conn: tc, greeting: []byte("220 " + host + "\r\n")})
	if err := c.Hello(q.cfg.Hostname); err != nil {
		c.Close()
		return nil, nil, err
	}
	return c, tc, nil
}

// greeted is a connection whose greeting was read before TLS: it gives
// go-smtp's client, which reads one first, a copy.
type greeted struct {
	net.Conn
	greeting []byte
}

func (g *greeted) Read(p []byte) (int, error) {
	if len(g.greeting) > 0 {
		n := copy(p, g.greeting)
		g.greeting = g.greeting[n:]
		return n, nil
	}
	return g.Conn.Read(p)
}

// sendPipelined is send for a host that offers PIPELINING (RFC 2920):
// MAIL, every RCPT and DATA go in one write, then their replies are read
// in order, then the message, if DATA was answered 354 and a recipient
// was accepted. go-smtp's client, which waits for each reply, keeps the
// rest of the session (EHLO, AUTH, RSET, QUIT): between transactions
// neither has anything of the other's buffered.
func (c *conn) sendPipelined(q *Queue, j *job, kept []byte, size int64) []outcome {
	m := j.e.m
	out := make([]outcome, len(j.rcpts))
	var b bytes.Buffer
	b.WriteString("MAIL FROM:<" + m.From + ">")
	if ok, _ := c.c.Extension("SIZE"); ok {
		fmt.Fprintf(&b, " SIZE=%d", size)
	}
	if m.EightBit {
		b.WriteString(" BODY=8BITMIME")
	}
	if m.UTF8 {
		b.WriteString(" SMTPUTF8")
	}
	if c.dsn {
		if m.Ret != "" {
			b.WriteString(" RET=" + m.Ret)
		}
		if m.EnvID != "" {
			b.WriteString(" ENVID=" + xtext(m.EnvID))
		}
	}
	b.WriteString("\r\n")
	for _, i := range j.rcpts {
		rc := m.Rcpts[i]
		b.WriteString("RCPT TO:<" + rc.Addr + ">")
		if c.dsn {
			if rc.Notify != "" {
				b.WriteString(" NOTIFY=" + strings.ToUpper(strings.ReplaceAll(rc.Notify, " ", "")))
			}
			if typ, addr, ok := strings.Cut(rc.ORcpt, ";"); ok && addr != "" {
				if strings.EqualFold(typ, "utf-8") {
					b.WriteString(" ORCPT=utf-8;" + utf8Xtext(addr))
				} else {
					b.WriteString(" ORCPT=" + typ + ";" + xtext(addr))
				}
			}
		}
		b.WriteString("\r\n")
	}
	b.WriteString("DATA\r\n")
	fail := func(err error) []outcome {
		c.broken = true
		o := *q.temp("4.4.2", c.host, "connection with %s: %v", c.host, err)
		for k := range out {
			if out[k].reply == "" {
				out[k] = o
			}
		}
		return out
	}
	c.raw.SetDeadline(time.Now().Add(q.cfg.CommandTimeout))
	defer c.raw.SetDeadline(time.Time{})
	if _, err := c.raw.Write(b.Bytes()); err != nil {
		return fail(err)
	}
	if c.br == nil {
		c.br = bufio.NewReader(c.raw)
	}
	r := textproto.NewReader(c.br)
	mail, err := readReply(r, c.host)
	if err != nil {
		return fail(err)
	}
	var accepted []int
	for k := range j.rcpts {
		o, err := readReply(r, c.host)
		if err != nil {
			return fail(err)
		}
		switch {
		case !mail.ok:
			out[k] = mail.outcome // the RCPTs' replies say no more than MAIL's
		case o.ok:
			accepted = append(accepted, k)
		default:
			out[k] = o.outcome
		}
	}
	data, err := readReply(r, c.host)
	if err != nil {
		return fail(err)
	}
	if data.code == 421 || mail.code == 421 {
		c.broken = true
	}
	if data.code != 354 {
		if len(accepted) > 0 {
			for _, k := range accepted {
				out[k] = data.outcome
			}
		}
		c.reset()
		return out
	}
	// 354: the message goes, or, with no recipient accepted, an empty
	// one that the host will refuse (RFC 2920 §3.1).
	c.raw.SetDeadline(time.Now().Add(q.cfg.DataTimeout))
	w := textproto.NewWriter(bufio.NewWriterSize(c.raw, 32<<10))
	dw := w.DotWriter()
	if len(accepted) > 0 {
		var body io.Reader = q.st.body(j.e.id, m.Size)
		if kept != nil {
			body = bytes.NewReader(kept)
		}
		if _, err := io.WriteString(dw, m.Sig); err != nil {
			return fail(err)
		}
		if _, err := io.Copy(dw, body); err != nil {
			return fail(err)
		}
	}
	if err := dw.Close(); err != nil {
		return fail(err)
	}
	final, err := readReply(r, c.host)
	if err != nil {
		return fail(err)
	}
	if final.code == 421 {
		c.broken = true
	}
	o := final.outcome
	if o.ok {
		o.dsn = c.dsn
	}
	for _, k := range accepted {
		out[k] = o
	}
	return out
}

// reply is a reply read by sendPipelined.
type reply struct {
	outcome
	code int
}

// readReply reads a reply and makes its outcome.
func readReply(r *textproto.Reader, host string) (reply, error) {
	code, msg, err := r.ReadResponse(0)
	if err != nil {
		if _, ok := err.(*textproto.Error); !ok {
			return reply{}, err
		}
	}
	if code < 200 || code > 599 {
		return reply{}, fmt.Errorf("queue: reply code %d", code)
	}
	msg = strings.ReplaceAll(msg, "\n", " ")
	status := fmt.Sprintf("%d.0.0", code/100)
	if f := strings.Fields(msg); len(f) > 0 && isStatus(f[0]) {
		status = f[0]
	}
	return reply{outcome{ok: code < 400 && code >= 200, perm: code >= 500, reply: strconv.Itoa(code) + " " + msg, status: status, host: host}, code}, nil
}

// isStatus reports whether s is an enhanced status code, "5.1.1".
func isStatus(s string) bool {
	parts := strings.Split(s, ".")
	if len(parts) != 3 || len(parts[0]) != 1 || parts[0] < "2" || parts[0] > "5" {
		return false
	}
	for _, p := range parts {
		if p == "" || len(p) > 3 || strings.Trim(p, "0123456789") != "" {
			return false
		}
	}
	return true
}

// xtext encodes s as RFC 3461 §4 says: "+", "=" and what is not
// printable ASCII as "+XX".
func xtext(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '!' || c > '~' || c == '+' || c == '=' {
			fmt.Fprintf(&b, "+%02X", c)
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// utf8Xtext encodes a UTF-8 ORCPT address (RFC 6533 §3): as it is but for
// "\x{...}" escapes of '+', '=', '\\' and control characters.
func utf8Xtext(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r < '!' || r == '+' || r == '=' || r == '\\' || r == 0x7f {
			fmt.Fprintf(&b, `\x{%X}`, r)
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}
