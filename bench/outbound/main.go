// Command outbound benchmarks mailsys sending mail: M messages of S bytes
// (default 4 KiB), each for one recipient at one of 10 sink domains, are
// queued from N goroutines into a durable outbound queue (mta/queue, each
// message synced before Enqueue returns) with DKIM signing (an ed25519
// and an RSA-2048 signature per message, mta/mailauth), and delivered to
// the sinks: go-smtp servers on 127.0.0.10-19 that read and discard.
// It reports messages/s from the first Enqueue to the last message taken
// by a sink, and CPU time per message (the sinks' included). In the same
// run it measures the protocol-only ceiling: go-smtp's client sending the
// same messages straight to the same sinks over as many connections as
// the queue may open. The last line is ratio_vs_direct=<x>.
//
//	go run ./bench/outbound
//	go run ./bench/outbound -messages 20000 -dkim=false
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/mailsys/mailsys/mta/mailauth"
	"github.com/mailsys/mailsys/mta/queue"
	"github.com/mailsys/mailsys/mta/resolve"
)

const domains = 10

func main() { os.Exit(run(os.Args[1:], os.Stdout)) }

func run(args []string, w io.Writer) int {
	fs := flag.NewFlagSet("outbound-bench", flag.ContinueOnError)
	messages := fs.Int("messages", 10000, "messages in all")
	size := fs.Int("size", 4096, "message size in bytes")
	senders := fs.Int("senders", 32, "goroutines queueing messages")
	perDest := fs.Int("per-destination", 4, "connections per sink domain (the queue's PerDestination, and the direct run's)")
	sign := fs.Bool("dkim", true, "sign every message with DKIM (ed25519 and RSA-2048)")
	dir := fs.String("dir", "", "data directory (default: a temporary one, removed after)")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile of the queue's run to this file")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *dir == "" {
		d, err := os.MkdirTemp("", "outbound-bench-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(d)
		*dir = d
	}
	b := &bench{w: w, dir: *dir, messages: *messages, size: *size, senders: *senders, perDest: *perDest, sign: *sign, profile: *cpuprofile}
	if err := b.run(); err != nil {
		fmt.Fprintln(os.Stderr, "outbound bench:", err)
		return 1
	}
	return 0
}

type bench struct {
	w                                io.Writer
	dir                              string
	messages, size, senders, perDest int
	sign                             bool
	profile                          string
	sinks                            []*sink
	port                             int
	received                         atomic.Int64
}

func cpu() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// message returns message n, of about size bytes.
func message(size, n int) []byte {
	b := fmt.Appendf(nil, "From: Bench <bench@example.org>\r\nTo: user@d%d.example\r\nSubject: message %d\r\nMessage-ID: <%d@example.org>\r\nDate: Wed, 02 Dec 2026 10:00:00 +0000\r\n\r\n", n%domains, n, n)
	line := []byte("The quick brown fox jumps over the lazy dog, again and again and again.\r\n")
	for len(b) < size {
		b = append(b, line...)
	}
	return b
}

func (b *bench) run() error {
	if err := b.startSinks(); err != nil {
		return err
	}
	defer func() {
		for _, s := range b.sinks {
			s.srv.Close()
		}
	}()
	msgs := make([][]byte, b.messages)
	for i := range msgs {
		msgs[i] = message(b.size, i)
	}
	fmt.Fprintf(b.w, "outbound: %d messages of %d bytes to %d sink domains, %d senders, %d connections a domain, DKIM %v\n",
		b.messages, b.size, domains, b.senders, b.perDest, b.sign)

	direct, directCPU, err := b.direct(msgs)
	if err != nil {
		return fmt.Errorf("direct: %w", err)
	}
	fmt.Fprintf(b.w, "direct (go-smtp client to the sinks): %.0f messages/s, %.0f us CPU a message\n", direct, directCPU)
	rate, perMsg, err := b.queued(msgs)
	if err != nil {
		return fmt.Errorf("queue: %w", err)
	}
	fmt.Fprintf(b.w, "queue (durable, signed, delivered): %.0f messages/s, %.0f us CPU a message\n", rate, perMsg)
	fmt.Fprintf(b.w, "ratio_vs_direct=%.2f\n", rate/direct)
	return nil
}

// direct sends msgs straight to the sinks with go-smtp's client, over
// perDest connections per domain, and returns messages/s and CPU
// microseconds per message.
func (b *bench) direct(msgs [][]byte) (float64, float64, error) {
	b.received.Store(0)
	start, c0 := time.Now(), cpu()
	var wg sync.WaitGroup
	errs := make(chan error, domains*b.perDest)
	for d := range domains {
		for k := range b.perDest {
			wg.Go(func() {
				c, err := smtp.Dial(net.JoinHostPort(b.sinks[d].ip, strconv.Itoa(b.port)))
				if err != nil {
					errs <- err
					return
				}
				defer c.Close()
				if err := c.Hello("bench.example.org"); err != nil {
					errs <- err
					return
				}
				for i := d + k*domains; i < len(msgs); i += domains * b.perDest {
					if err := c.SendMail("bench@example.org", []string{"user@d" + strconv.Itoa(d) + ".example"}, bytes.NewReader(msgs[i])); err != nil {
						errs <- err
						return
					}
				}
				c.Quit()
			})
		}
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return 0, 0, err
	}
	el, used := time.Since(start), cpu()-c0
	if n := b.received.Load(); n != int64(len(msgs)) {
		return 0, 0, fmt.Errorf("sinks got %d of %d", n, len(msgs))
	}
	return float64(len(msgs)) / el.Seconds(), float64(used.Microseconds()) / float64(len(msgs)), nil
}

// queued queues msgs from b.senders goroutines and waits for the sinks to
// have them all.
func (b *bench) queued(msgs [][]byte) (float64, float64, error) {
	zone := &resolve.Static{}
	for d, s := range b.sinks {
		name := "d" + strconv.Itoa(d) + ".example"
		zone.SetMX(name, "10 mx."+name)
		zone.SetIP("mx."+name, netip.MustParseAddr(s.ip))
	}
	quiet := slog.New(slog.DiscardHandler)
	cfg := queue.DefaultConfig(filepath.Join(b.dir, "queue"))
	cfg.Hostname, cfg.Resolver, cfg.Port, cfg.DisableSTS = "bench.example.org", zone, b.port, true
	cfg.PerDestination, cfg.Logger = b.perDest, quiet
	if b.sign {
		signer, err := mailauth.NewSigner(mailauth.SignerConfig{Dir: filepath.Join(b.dir, "dkim"), Logger: quiet,
			Domains: func(ctx context.Context, domain string) (bool, error) { return domain == "example.org", nil }})
		if err != nil {
			return 0, 0, err
		}
		// The keys are made before the clock starts.
		if _, err := signer.Records(context.Background(), "example.org"); err != nil {
			return 0, 0, err
		}
		cfg.Signer = signer
	}
	q, err := queue.Open(context.Background(), cfg)
	if err != nil {
		return 0, 0, err
	}
	defer q.Close()
	if b.profile != "" {
		f, err := os.Create(b.profile)
		if err != nil {
			return 0, 0, err
		}
		defer f.Close()
		pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	b.received.Store(0)
	ctx := context.Background()
	start, c0 := time.Now(), cpu()
	var wg sync.WaitGroup
	var failed atomic.Value
	for s := range b.senders {
		wg.Go(func() {
			for i := s; i < len(msgs); i += b.senders {
				m := queue.Message{ID: "m" + strconv.Itoa(i), From: "bench@example.org",
					Rcpts: []queue.Rcpt{{Addr: "user@d" + strconv.Itoa(i%domains) + ".example"}}}
				if err := q.Enqueue(ctx, m, bytes.NewReader(msgs[i])); err != nil {
					failed.Store(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		return 0, 0, err
	}
	deadline := time.Now().Add(10 * time.Minute)
	for b.received.Load() < int64(len(msgs)) {
		if time.Now().After(deadline) {
			return 0, 0, fmt.Errorf("sinks got %d of %d in 10 minutes", b.received.Load(), len(msgs))
		}
		time.Sleep(time.Millisecond)
	}
	el, used := time.Since(start), cpu()-c0
	return float64(len(msgs)) / el.Seconds(), float64(used.Microseconds()) / float64(len(msgs)), nil
}

// sink is a sink domain's MX host.
type sink struct {
	ip  string
	srv *smtp.Server
}

func (b *bench) startSinks() error {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	b.port = l.Addr().(*net.TCPAddr).Port
	l.Close()
	for d := range domains {
		ip := "127.0.0." + strconv.Itoa(10+d)
		l, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(b.port)))
		if err != nil {
			return err
		}
		srv := smtp.NewServer(backend{b})
		srv.Domain, srv.MaxMessageBytes, srv.EnableSMTPUTF8 = "sink"+strconv.Itoa(d), 64<<20, true
		srv.ErrorLog = log.New(io.Discard, "", 0) // connections the queue's Close cuts
		go srv.Serve(l)
		b.sinks = append(b.sinks, &sink{ip: ip, srv: srv})
	}
	return nil
}

type backend struct{ b *bench }

func (k backend) NewSession(*smtp.Conn) (smtp.Session, error) { return session(k), nil }

type session backend

func (session) Mail(string, *smtp.MailOptions) error { return nil }
func (session) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (s session) Data(r io.Reader) error {
	if _, err := io.Copy(io.Discard, r); err != nil {
		return err
	}
	s.b.received.Add(1)
	return nil
}
func (session) Reset()        {}
func (session) Logout() error { return nil }
