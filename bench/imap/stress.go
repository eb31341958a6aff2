package main

// The stress mode: clients on one folder set, each a real IMAP
// connection doing a random mix of commands, every response read by the
// strict reader (response.go) and checked (checker.go).

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The folder set the clients share, and a folder that does not exist.
var stressFolders = []string{"INBOX", "Work", "Archive", "Trash"}

const missingFolder = "Stress-Missing"

const (
	cmdTimeout    = 15 * time.Second // for one command's tagged response
	maxReconnects = 20               // failed connections per client, after which it stops
	maxOps        = 10_000_000       // per client, whatever the duration
	maxNewKeys    = 200              // brand-new $New keywords per run
	maxTrace      = 64 << 20         // bytes of -trace
)

type stressOptions struct {
	addr, user, pass string
	clients          int
	duration         time.Duration
	perFolder        int
	allowErrors      bool
	examples         int
	rev              string // 1, 2 or mixed
	seed             uint64
	verbose          bool
	trace            string // a file for every client's conversation
}

func (o *stressOptions) validate() error {
	var errs []error
	if o.clients < 1 || o.clients > 1000 {
		errs = append(errs, fmt.Errorf("-clients %d: want 1 to 1000", o.clients))
	}
	if o.duration <= 0 || o.duration > time.Hour {
		errs = append(errs, fmt.Errorf("-duration %v: want more than 0 and at most 1h", o.duration))
	}
	if o.perFolder < 1 || o.perFolder > 10_000 {
		errs = append(errs, fmt.Errorf("-per-folder %d: want 1 to 10000", o.perFolder))
	}
	if o.rev != "1" && o.rev != "2" && o.rev != "mixed" {
		errs = append(errs, fmt.Errorf("-rev %q: want 1, 2 or mixed", o.rev))
	}
	if o.examples < 0 {
		errs = append(errs, errors.New("-examples below 0"))
	}
	return errors.Join(errs...)
}

// stress runs the mode: a server of its own over dir unless o.addr, the
// seed, the clients, the report. It returns the number of protocol
// errors.
func stress(w io.Writer, dir string, o stressOptions) (int, error) {
	if err := o.validate(); err != nil {
		return 0, err
	}
	if o.addr == "" {
		if err := fill(dir, 0, 0); err != nil {
			return 0, fmt.Errorf("filling: %w", err)
		}
		srv, err := startServer(dir)
		if err != nil {
			return 0, err
		}
		defer srv.stop()
		o.addr, o.user, o.pass = srv.addr, user, password
	}
	if o.seed == 0 {
		o.seed = uint64(time.Now().UnixNano())
	}
	rep := newReport(o.examples)
	reg := newRegistry()
	if o.verbose {
		rep.w = os.Stderr
	}
	pool := &keywordPool{token: fmt.Sprintf("%x", o.seed%0xfffff)}

	var trace *tracer
	if o.trace != "" {
		f, err := os.Create(o.trace)
		if err != nil {
			return 0, err
		}
		defer f.Close()
		trace = &tracer{w: bufio.NewWriter(f)}
		defer trace.w.Flush()
	}
	seeder := newClient(0, &o, rep, reg, pool, false)
	if err := seeder.seed(); err != nil {
		return 0, fmt.Errorf("seeding: %w", err)
	}
	rev2 := 0
	start := time.Now()
	deadline := start.Add(o.duration)
	var wg sync.WaitGroup
	for i := 1; i <= o.clients; i++ {
		c := newClient(i, &o, rep, reg, pool, o.rev == "2" || o.rev == "mixed" && i%2 == 0)
		c.trace = trace
		if c.rev2 {
			rev2++
		}
		wg.Go(func() { c.run(deadline) })
	}
	wg.Wait()
	elapsed := time.Since(start)
	fmt.Fprintf(w, "imap stress: %d clients (%d IMAP4rev1, %d IMAP4rev2 when offered) for %v on %s at %s, %d messages seeded in each (seed %d)\n",
		o.clients, o.clients-rev2, rev2, o.duration, strings.Join(stressFolders, ", "), o.addr, o.perFolder, o.seed)
	n := rep.print(w, elapsed)
	total := rep.total()
	fmt.Fprintf(w, "stress_errors=%d stress_cmds_per_s=%.0f\n", total, float64(n)/elapsed.Seconds())
	return total, nil
}

// tracer writes the clients' conversations, up to maxTrace bytes, each
// line after its client's number. It is safe for concurrent use.
type tracer struct {
	mu sync.Mutex
	w  *bufio.Writer
	n  int
}

func (t *tracer) line(client int, dir string, b []byte) {
	if t == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.n > maxTrace {
		return
	}
	t.n += len(b)
	fmt.Fprintf(t.w, "%d %s", client, dir)
	t.w.Write(b)
	if !bytes.HasSuffix(b, []byte("\n")) {
		t.w.WriteString("\r\n")
	}
}

// keywordPool hands out brand-new keywords, a bounded number per run.
type keywordPool struct {
	token string
	n     atomic.Int64
}

func (p *keywordPool) fresh() (string, bool) {
	k := p.n.Add(1)
	if k > maxNewKeys {
		return "", false
	}
	return fmt.Sprintf("$New%s_%d", p.token, k), true
}

// conn is one connection and the goroutine reading it.
type conn struct {
	nc    net.Conn
	w     *bufio.Writer
	resps chan *response
	stop  chan struct{}
	err   error // why the reader ended; read after resps is closed
}

func (cn *conn) read() {
	defer close(cn.resps)
	rr := newRespReader(cn.nc)
	for {
		b, err := rr.frame()
		if err != nil {
			cn.err = err
			return
		}
		select {
		case cn.resps <- parseResponse(b):
		case <-cn.stop:
			return
		}
	}
}

func (cn *conn) close() {
	close(cn.stop)
	cn.nc.Close()
}

var (
	errTimeout = errors.New("timed out")
	errClosed  = errors.New("connection closed")
)

// client is one stress client: a connection, its checker, its dice.
type client struct {
	id    int
	o     *stressOptions
	rep   *report
	reg   *registry
	pool  *keywordPool
	rng   *rand.Rand
	rev2  bool
	cn    *conn
	s     *session
	tagN  int
	msgN  int
	stats map[string][]time.Duration
	trace *tracer // nil when not tracing
}

func newClient(id int, o *stressOptions, rep *report, reg *registry, pool *keywordPool, rev2 bool) *client {
	return &client{id: id, o: o, rep: rep, reg: reg, pool: pool, rev2: rev2, rng: rand.New(rand.NewPCG(o.seed, uint64(id))), stats: map[string][]time.Duration{}}
}

// connect dials, reads the greeting, logs in and enables IMAP4rev2 when
// the client is one that wants it.
func (c *client) connect() error {
	d := net.Dialer{Timeout: 5 * time.Second}
	nc, err := d.Dial("tcp", c.o.addr)
	if err != nil {
		return err
	}
	c.cn = &conn{nc: nc, w: bufio.NewWriter(nc), resps: make(chan *response, 4096), stop: make(chan struct{})}
	go c.cn.read()
	c.s = newSession(c.rep, fmt.Sprintf("client %d", c.id), stressFolders)
	c.s.reg = c.reg
	r, err := c.next(time.Now().Add(cmdTimeout))
	if err != nil {
		return fmt.Errorf("greeting: %w", err)
	}
	c.s.handle(r)
	if r.tag != "*" || r.kind != "OK" {
		return fmt.Errorf("greeting %s", shown(r.raw, 200))
	}
	if _, _, err := c.exec("CAPABILITY", nil, 0); err != nil {
		return err
	}
	_, r, err = c.exec("LOGIN "+quoteBox(c.o.user)+" "+quoteBox(c.o.pass), nil, 0)
	if err != nil {
		return err
	}
	if r.kind != "OK" {
		return fmt.Errorf("login: %s", shown(r.raw, 200))
	}
	if _, _, err := c.exec("CAPABILITY", nil, 0); err != nil {
		return err
	}
	if c.rev2 && c.s.caps["IMAP4REV2"] {
		if _, _, err := c.exec("ENABLE IMAP4rev2", nil, 0); err != nil {
			return err
		}
	}
	return nil
}

func (c *client) hangUp() {
	if c.cn != nil {
		c.cn.close()
		c.cn = nil
	}
}

// next returns the next response read, waiting until deadline.
func (c *client) next(deadline time.Time) (*response, error) {
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case r, ok := <-c.cn.resps:
		if !ok {
			return nil, fmt.Errorf("%w: %v", errClosed, c.cn.err)
		}
		c.trace.line(c.id, "S: ", r.raw)
		return r, nil
	case <-t.C:
		return nil, errTimeout
	}
}

// drain checks what came while no command was in progress (as much as
// the reader holds).
func (c *client) drain() {
	for range cap(c.cn.resps) {
		select {
		case r, ok := <-c.cn.resps:
			if !ok {
				return
			}
			c.trace.line(c.id, "S: ", r.raw)
			c.s.handle(r)
		default:
			return
		}
	}
}

// exec sends a command (with an APPEND's literal, or the time an IDLE
// lasts) and reads its responses up to the tagged one, every one checked.
func (c *client) exec(line string, literal []byte, idle time.Duration) (*command, *response, error) {
	c.drain()
	c.tagN++
	tag := fmt.Sprintf("A%d", c.tagN)
	text := tag + " " + line
	cmd, err := parseCommand(text)
	if err != nil {
		return nil, nil, err // the client's own mistake
	}
	if cmd.kind == "LOGIN" {
		cmd.text = tag + " LOGIN " + quoteBox(c.o.user) + " (password)"
	}
	if literal != nil {
		cmd.appendedID = messageIDOf(literal)
	}
	c.s.begin(cmd)
	c.trace.line(c.id, "C: ", []byte(cmd.text))
	start := time.Now()
	w := c.cn.w
	w.WriteString(text)
	w.WriteString("\r\n")
	if literal != nil && !cmd.syncLit {
		w.Write(literal)
		w.WriteString("\r\n")
	}
	c.cn.nc.SetWriteDeadline(time.Now().Add(cmdTimeout))
	if err := w.Flush(); err != nil {
		c.s.cmd = nil
		return cmd, nil, err
	}
	deadline := time.Now().Add(cmdTimeout + idle)
	for {
		r, err := c.next(deadline)
		if err != nil {
			c.s.cmd = nil
			return cmd, nil, fmt.Errorf("%s: %w", cmd.kind, err)
		}
		c.s.handle(r)
		if r.tag == tag {
			c.stats[cmd.kind] = append(c.stats[cmd.kind], time.Since(start))
			return cmd, r, nil
		}
		if r.tag != "+" || !cmd.sawCont || cmd.idling {
			continue
		}
		switch {
		case literal != nil && cmd.syncLit:
			w.Write(literal)
			w.WriteString("\r\n")
		case cmd.kind == "IDLE":
			cmd.idling = true
			end := time.Now().Add(idle)
			for {
				r, err := c.next(end)
				if errors.Is(err, errTimeout) {
					break
				}
				if err != nil {
					c.s.cmd = nil
					return cmd, nil, fmt.Errorf("IDLE: %w", err)
				}
				c.s.handle(r)
				if r.tag == tag {
					return cmd, r, nil
				}
			}
			w.WriteString("DONE\r\n")
		}
		if err := w.Flush(); err != nil {
			c.s.cmd = nil
			return cmd, nil, err
		}
	}
}

// seed creates the folders and appends o.perFolder messages to each.
func (c *client) seed() error {
	if err := c.connect(); err != nil {
		return err
	}
	defer c.hangUp()
	for _, f := range stressFolders[1:] {
		if _, _, err := c.exec("CREATE "+quoteBox(f), nil, 0); err != nil {
			return err
		}
	}
	for _, f := range stressFolders {
		for range c.o.perFolder {
			if err := c.appendTo(f); err != nil {
				return err
			}
		}
	}
	_, _, err := c.exec("LOGOUT", nil, 0)
	c.rep.addCommands(c.stats)
	return err
}

// run is one client's life until deadline.
func (c *client) run(deadline time.Time) {
	defer func() {
		c.hangUp()
		c.rep.addCommands(c.stats)
	}()
	failures := 0
	for i := 0; i < maxOps && failures <= maxReconnects && time.Now().Before(deadline); i++ {
		if c.cn == nil {
			if err := c.connect(); err != nil {
				failures++
				c.rep.fail("connection", fmt.Sprintf("client %d: connecting: %v", c.id, err))
				c.hangUp()
				time.Sleep(100 * time.Millisecond)
				continue
			}
		}
		if err := c.step(); err != nil {
			failures++
			c.rep.fail("connection", fmt.Sprintf("client %d: %v", c.id, err))
			c.hangUp()
		}
	}
	if c.cn != nil {
		c.exec("LOGOUT", nil, 0)
	}
}
