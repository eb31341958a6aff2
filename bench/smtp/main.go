// Command smtp benchmarks mailsys receiving mail: N concurrent SMTP clients
// (default 16) send M messages of S bytes (default 4 KiB) over loopback to
// a mailsys.System like the all-in-one server's (without the SPF, DKIM and
// DMARC checks of incoming mail, whose DNS lookups it does not measure),
// each message durable in
// the transaction log before its 250. It reports accepted messages/s, the
// p50 and p99 time from the end of DATA to the 250, CPU time per message
// (until the last message is in the INBOX, so every delivery is counted),
// and, in the same run on the same disk, the transaction log's raw
// group-commit ceiling (txlog.Accept from N goroutines). The last line is
// ratio_vs_ceiling=<x>.
//
//	go run ./bench/smtp
//	go run ./bench/smtp -clients 10 -messages 20000
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/mailsys/mailsys"
	"github.com/mailsys/mailsys/txlog"
	"github.com/mailsys/mailsys/userdata"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout)) }

func run(args []string, w io.Writer) int {
	fs := flag.NewFlagSet("smtp-bench", flag.ContinueOnError)
	clients := fs.Int("clients", 16, "concurrent SMTP clients")
	messages := fs.Int("messages", 8000, "messages in all")
	size := fs.Int("size", 4096, "message size in bytes")
	dir := fs.String("dir", "", "data directory (default: a temporary one, removed after)")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile of the SMTP run to this file")
	memprofile := fs.String("memprofile", "", "write an allocation profile of the SMTP run to this file")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *dir == "" {
		d, err := os.MkdirTemp("", "smtpbench-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(d)
		*dir = d
	}
	if err := bench(w, *dir, *clients, *messages, *size, *cpuprofile, *memprofile); err != nil {
		fmt.Fprintln(os.Stderr, "smtp bench:", err)
		return 1
	}
	return 0
}

func cpu() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// message returns message n, of size bytes, in b's storage: the client
// reuses one buffer, so that making messages costs the run little.
func message(b []byte, size, n int) []byte {
	b = fmt.Appendf(b[:0], "From: bench@example.net\r\nTo: user@bench.example\r\nSubject: message %d\r\n\r\n", n)
	for len(b) < size-2 {
		b = append(b, xs[:min(len(xs), size-2-len(b))]...)
		b = append(b, "\r\n"...)
	}
	return b[:size]
}

var xs = strings.Repeat("x", 76)

func pct(d []time.Duration, p float64) time.Duration { return d[int(float64(len(d)-1)*p)] }

func bench(w io.Writer, dir string, clients, messages, size int, cpuprofile, memprofile string) error {
	ctx := context.Background()
	quiet := slog.New(slog.DiscardHandler)

	// The ceiling: the transaction log alone, same disk, same concurrency.
	tl, err := txlog.Open(ctx, txlog.Config{Dir: filepath.Join(dir, "ceiling"), Logger: quiet})
	if err != nil {
		return err
	}
	body := message(nil, size, 0)
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(messages) {
				tx, err := tl.Accept(ctx, txlog.Envelope{From: "bench@example.net", To: []string{"user@bench.example"}, Received: time.Now()}, bytes.NewReader(body))
				if err == nil {
					err = tl.Done(ctx, tx)
				}
				if err != nil {
					panic(err)
				}
			}
		}()
	}
	wg.Wait()
	ceiling := float64(messages) / time.Since(start).Seconds()
	tl.Close()

	// The server.
	// No SPF/DKIM/DMARC checks: their DNS lookups (answered or timing out)
	// are not what this measures.
	sys, err := mailsys.Open(ctx, mailsys.Config{DataDir: filepath.Join(dir, "server"), Hostname: "bench.example", SMTPAddr: "127.0.0.1:0", DisableVerify: true, Logger: quiet})
	if err != nil {
		return err
	}
	defer sys.Shutdown(ctx)
	if _, err := sys.EnsureUser(ctx, "user@bench.example", "pw"); err != nil {
		return err
	}
	if err := sys.Start(ctx); err != nil {
		return err
	}
	addr := sys.Addrs()[0].String()
	next.Store(0)
	lat := make([][]time.Duration, clients)
	errs := make(chan error, clients)
	if cpuprofile != "" {
		f, err := os.Create(cpuprofile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	if memprofile != "" {
		runtime.MemProfileRate = 4096
		defer func() {
			if f, err := os.Create(memprofile); err == nil {
				pprof.Lookup("allocs").WriteTo(f, 0)
				f.Close()
			}
		}()
	}
	cpu0 := cpu()
	start = time.Now()
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cl, err := smtp.Dial(addr)
			if err != nil {
				errs <- err
				return
			}
			defer cl.Close()
			var msg []byte
			for {
				n := int(next.Add(1))
				if n > messages {
					cl.Quit()
					return
				}
				if err := cl.Mail("bench@example.net", nil); err != nil {
					errs <- err
					return
				}
				if err := cl.Rcpt("user@bench.example", nil); err != nil {
					errs <- err
					return
				}
				wc, err := cl.Data()
				if err != nil {
					errs <- err
					return
				}
				msg = message(msg, size, n)
				if _, err := wc.Write(msg); err != nil {
					errs <- err
					return
				}
				t := time.Now() // end of DATA: the final dot goes out in Close
				if err := wc.Close(); err != nil {
					errs <- err
					return
				}
				lat[c] = append(lat[c], time.Since(t))
			}
		}()
	}
	wg.Wait()
	took := time.Since(start)
	close(errs)
	for err := range errs {
		return err
	}
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	slices.Sort(all)
	rate := float64(len(all)) / took.Seconds()

	// Let the background deliveries finish, and check them.
	u, err := sys.UserDB().LookupAddress(ctx, "user@bench.example")
	if err != nil {
		return err
	}
	var inbox userdata.Folder
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if inbox, err = sys.UserDB().Folder(ctx, u.ID, userdata.Inbox); err != nil || int(inbox.Messages) >= len(all) {
			break
		}
	}
	// The CPU of every delivery, those finished after the last 250 too.
	delivered := time.Since(start)
	used := cpu() - cpu0
	fmt.Fprintf(w, "smtp benchmark: %d clients over loopback, %d messages of %d bytes, durable before 250\n", clients, len(all), size)
	fmt.Fprintf(w, "  accepted: %.0f messages/s (%.1f MB/s)\n", rate, rate*float64(size)/1e6)
	fmt.Fprintf(w, "  end of DATA to 250: p50 %v  p99 %v\n", pct(all, .5).Round(time.Microsecond), pct(all, .99).Round(time.Microsecond))
	fmt.Fprintf(w, "  CPU per message: %v (client and server in this process, until the last delivery)\n", (used / time.Duration(len(all))).Round(time.Microsecond))
	fmt.Fprintf(w, "  delivered to the INBOX: %d of %d, the last %v after the first MAIL\n", inbox.Messages, len(all), delivered.Round(time.Millisecond))
	fmt.Fprintf(w, "  txlog group-commit ceiling, same disk, %d writers: %.0f messages/s\n", clients, ceiling)
	fmt.Fprintf(w, "ratio_vs_ceiling=%.2f\n", rate/ceiling)
	return nil
}
