// Command pop3 benchmarks the POP3 server over loopback, on a real store
// and UserDB (msstore.Volumes, userdata.DB) in a temporary directory:
//
//   - RETR throughput: one client fetches M messages of S bytes (default
//     256 of 1 MiB) with RETR, dot-stuffing and all, and the rate is set
//     against the store's raw read rate for the same bodies in the same run
//     (Open and a copy in 64 KiB reads, no protocol), best of three rounds
//     each, and, for scale, against loopback TCP alone;
//   - sessions/s: N clients (default 8), each with its own mailbox of 100
//     small messages, run login, STAT, QUIT in a loop.
//
// The last line is ratio_vs_store_read=<x>, the RETR rate over the raw
// read rate.
//
//	go run ./bench/pop3
//	go run ./bench/pop3 -messages 512 -cpuprofile retr.prof
package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mailsys/mailsys/msstore"
	"github.com/mailsys/mailsys/pop3"
	"github.com/mailsys/mailsys/userdata"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout)) }

// params are the benchmark's settings.
type params struct {
	dir         string
	messages    int
	size        int
	clients     int
	sessions    int
	rounds      int
	cpuprofile  string
	sessionMsgs int
}

func run(args []string, w io.Writer) int {
	fs := flag.NewFlagSet("pop3-bench", flag.ContinueOnError)
	var p params
	fs.IntVar(&p.messages, "messages", 256, "messages to RETR")
	fs.IntVar(&p.size, "size", 1<<20, "message size in bytes")
	fs.IntVar(&p.clients, "clients", 8, "concurrent clients for the login-STAT-QUIT sessions")
	fs.IntVar(&p.sessions, "sessions", 4000, "login-STAT-QUIT sessions in all")
	fs.IntVar(&p.sessionMsgs, "session-messages", 100, "messages in each session client's mailbox")
	fs.IntVar(&p.rounds, "rounds", 3, "rounds of the store read and of RETR (the best of each counts)")
	fs.StringVar(&p.dir, "dir", "", "data directory (default: a temporary one, removed after)")
	fs.StringVar(&p.cpuprofile, "cpuprofile", "", "write a CPU profile of the RETR rounds to this file")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if p.dir == "" {
		d, err := os.MkdirTemp("", "pop3bench-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(d)
		p.dir = d
	}
	if err := bench(w, p); err != nil {
		fmt.Fprintln(os.Stderr, "pop3 bench:", err)
		return 1
	}
	return 0
}

// message is a message of size bytes in 76-character CRLF lines, one in
// fifty starting with "." (so RETR has some stuffing to do).
func message(size, n int) []byte {
	rng := rand.New(rand.NewPCG(uint64(n), 1))
	var b bytes.Buffer
	b.Grow(size)
	fmt.Fprintf(&b, "From: bench@example.net\r\nTo: user@bench.example\r\nSubject: message %d\r\n\r\n", n)
	line := make([]byte, 78)
	for b.Len() < size {
		for i := range 76 {
			line[i] = 'a' + byte(rng.IntN(26))
		}
		if rng.IntN(50) == 0 {
			line[0] = '.'
		}
		line[76], line[77] = '\r', '\n'
		b.Write(line)
	}
	out := b.Bytes()[:size]
	copy(out[size-2:], "\r\n")
	return out
}

func bench(w io.Writer, p params) error {
	ctx := context.Background()
	quiet := slog.New(slog.DiscardHandler)
	// Set up in bulk (NoSync): what is measured only reads.
	scfg := msstore.DefaultConfig(filepath.Join(p.dir, "store"))
	scfg.NoSync, scfg.Logger = true, quiet
	store, err := msstore.OpenVolumes(ctx, scfg)
	if err != nil {
		return err
	}
	defer store.Close()
	db, err := userdata.Open(ctx, userdata.Config{Dir: filepath.Join(p.dir, "userdb"), Bodies: store, NoSync: true, Logger: quiet})
	if err != nil {
		return err
	}
	defer db.Close()
	if err := db.CreateDomain(ctx, userdata.Domain{Name: "bench.example"}); err != nil {
		return err
	}
	deliver := func(u userdata.User, body []byte) (msstore.Ref, error) {
		ref, err := store.Put(ctx, bytes.NewReader(body), msstore.Meta{Received: time.Now()})
		if err != nil {
			return ref, err
		}
		inbox, err := db.Folder(ctx, u.ID, userdata.Inbox)
		if err == nil {
			_, err = db.Append(ctx, u.ID, inbox.ID, userdata.NewMessage{Ref: ref, Size: ref.Size, InternalDate: time.Now()})
		}
		return ref, err
	}
	reader, err := db.CreateUser(ctx, userdata.NewUser{Address: "reader@bench.example", Password: "pw"})
	if err != nil {
		return err
	}
	var refs []msstore.Ref
	for i := range p.messages {
		ref, err := deliver(reader, message(p.size, i))
		if err != nil {
			return err
		}
		refs = append(refs, ref)
	}
	sessionUsers := make([]string, p.clients)
	for c := range p.clients {
		sessionUsers[c] = fmt.Sprintf("s%d@bench.example", c)
		u, err := db.CreateUser(ctx, userdata.NewUser{Address: sessionUsers[c], Password: "pw"})
		if err != nil {
			return err
		}
		for i := range p.sessionMsgs {
			if _, err := deliver(u, message(2048, i)); err != nil {
				return err
			}
		}
	}
	if err := store.Sync(ctx); err != nil {
		return err
	}

	srv, err := pop3.NewServer(pop3.Config{Hostname: "bench.example", InsecureAuth: true, Logger: quiet}, db, store)
	if err != nil {
		return err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	go srv.Serve(l)
	defer srv.Shutdown(ctx)
	addr := l.Addr().String()

	total := float64(p.messages) * float64(p.size)
	readOnce := func() (time.Duration, error) {
		buf := make([]byte, 64<<10)
		start := time.Now()
		for _, ref := range refs {
			b, err := store.Open(ctx, ref)
			if err != nil {
				return 0, err
			}
			_, err = io.CopyBuffer(struct{ io.Writer }{io.Discard}, io.NewSectionReader(b, 0, b.Size()), buf)
			b.Close()
			if err != nil {
				return 0, err
			}
		}
		return time.Since(start), nil
	}
	if _, err := readOnce(); err != nil { // warm the page cache
		return err
	}
	if p.cpuprofile != "" {
		f, err := os.Create(p.cpuprofile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
	}
	bestRead, bestRetr, bestWire := time.Duration(1<<62), time.Duration(1<<62), time.Duration(1<<62)
	for range p.rounds {
		d, err := readOnce()
		if err != nil {
			return err
		}
		bestRead = min(bestRead, d)
		if d, err = retrAll(addr, "reader@bench.example", p.messages); err != nil {
			return err
		}
		bestRetr = min(bestRetr, d)
		if d, err = loopback(int64(total)); err != nil {
			return err
		}
		bestWire = min(bestWire, d)
	}
	if p.cpuprofile != "" {
		pprof.StopCPUProfile()
	}

	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, p.clients)
	start := time.Now()
	for c := range p.clients {
		wg.Go(func() {
			for next.Add(1) <= int64(p.sessions) {
				if err := session(addr, sessionUsers[c], p.sessionMsgs); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	took := time.Since(start)
	close(errs)
	for err := range errs {
		return err
	}

	readRate := total / bestRead.Seconds() / 1e6
	retrRate := total / bestRetr.Seconds() / 1e6
	fmt.Fprintf(w, "pop3 benchmark over loopback: %d messages of %d bytes, best of %d rounds\n", p.messages, p.size, p.rounds)
	fmt.Fprintf(w, "  store raw read (Open + 64 KiB reads): %.0f MB/s\n", readRate)
	fmt.Fprintf(w, "  RETR, one client: %.0f MB/s (%.1f messages/s)\n", retrRate, float64(p.messages)/bestRetr.Seconds())
	fmt.Fprintf(w, "  loopback TCP alone (the same bytes from memory, 256 KiB writes): %.0f MB/s; RETR is %.2f of it\n",
		total/bestWire.Seconds()/1e6, bestWire.Seconds()/bestRetr.Seconds())
	fmt.Fprintf(w, "  login-STAT-QUIT: %.0f sessions/s (%d clients, %d sessions, %d messages per mailbox)\n",
		float64(p.sessions)/took.Seconds(), p.clients, p.sessions, p.sessionMsgs)
	fmt.Fprintf(w, "ratio_vs_store_read=%.2f\n", retrRate/readRate)
	return nil
}

// loopback sends n bytes from memory over a loopback TCP connection, in
// writes of 256 KiB, and returns the time the reader took: the transport's
// own ceiling, for scale.
func loopback(n int64) (time.Duration, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		buf := make([]byte, 256<<10)
		for sent := int64(0); sent < n; sent += int64(len(buf)) {
			if _, err := c.Write(buf[:min(int64(len(buf)), n-sent)]); err != nil {
				return
			}
		}
	}()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		return 0, err
	}
	defer c.Close()
	start := time.Now()
	got, err := io.CopyBuffer(struct{ io.Writer }{io.Discard}, c, make([]byte, 1<<20))
	if err == nil && got != n {
		err = fmt.Errorf("loopback: %d bytes of %d", got, n)
	}
	return time.Since(start), err
}

// client is a bare POP3 client.
type client struct {
	c net.Conn
	r *bufio.Reader
}

func dial(addr, user string) (*client, error) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	cl := &client{c: c, r: bufio.NewReaderSize(c, 1<<20)}
	if _, err := cl.status(); err != nil {
		c.Close()
		return nil, err
	}
	if _, err := cl.cmd("USER " + user); err != nil {
		c.Close()
		return nil, err
	}
	if _, err := cl.cmd("PASS pw"); err != nil {
		c.Close()
		return nil, err
	}
	return cl, nil
}

// status reads a status line and fails unless it is +OK.
func (cl *client) status() (string, error) {
	l, err := cl.r.ReadString('\n')
	if err != nil {
		return "", err
	}
	if !strings.HasPrefix(l, "+OK") {
		return "", fmt.Errorf("server said %q", strings.TrimSpace(l))
	}
	return l, nil
}

func (cl *client) cmd(line string) (string, error) {
	if _, err := io.WriteString(cl.c, line+"\r\n"); err != nil {
		return "", err
	}
	return cl.status()
}

// skipBody reads a multi-line reply up to its terminating CRLF.CRLF (the
// status line's CRLF counts as the first CRLF).
func (cl *client) skipBody() error {
	end := []byte("\r\n.\r\n")
	prev := []byte("\r\n") // the last (up to 4) bytes before b
	for {
		b, err := cl.r.Peek(max(1, cl.r.Buffered()))
		if err != nil {
			return err
		}
		// The terminator may start in the bytes before b.
		head := append(prev, b[:min(len(b), 4)]...)
		if i := bytes.Index(head, end); i >= 0 {
			_, err := cl.r.Discard(i + len(end) - len(prev))
			return err
		}
		if i := bytes.Index(b, end); i >= 0 {
			_, err := cl.r.Discard(i + len(end))
			return err
		}
		if len(b) >= 4 {
			prev = append(prev[:0], b[len(b)-4:]...)
		} else {
			prev = append(prev[:0], head[max(0, len(head)-4):]...)
		}
		cl.r.Discard(len(b))
	}
}

// retrAll logs in, RETRs messages 1 to n, and QUITs without deleting; it
// returns the time the RETRs took.
func retrAll(addr, user string, n int) (time.Duration, error) {
	cl, err := dial(addr, user)
	if err != nil {
		return 0, err
	}
	defer cl.c.Close()
	start := time.Now()
	for i := 1; i <= n; i++ {
		if _, err := cl.cmd(fmt.Sprintf("RETR %d", i)); err != nil {
			return 0, err
		}
		if err := cl.skipBody(); err != nil {
			return 0, fmt.Errorf("RETR %d: %w", i, err)
		}
	}
	took := time.Since(start)
	if _, err := cl.cmd("QUIT"); err != nil {
		return 0, err
	}
	return took, nil
}

// session runs login, STAT, QUIT.
func session(addr, user string, want int) error {
	cl, err := dial(addr, user)
	if err != nil {
		return err
	}
	defer cl.c.Close()
	st, err := cl.cmd("STAT")
	if err != nil {
		return err
	}
	if !strings.HasPrefix(st, fmt.Sprintf("+OK %d ", want)) {
		return errors.New("STAT: " + strings.TrimSpace(st))
	}
	_, err = cl.cmd("QUIT")
	return err
}
