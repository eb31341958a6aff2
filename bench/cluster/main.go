// Command cluster measures what spreading a System over nodes costs: the
// same SMTP delivery and IMAP login+FETCH load, first against a System
// whose UserDB and Storage are in its own process (the all-in-one
// server), then against a cluster front whose UserDB and Storage are a UD
// node and an MS node reached over gRPC with mutual TLS on loopback (all
// three nodes in this process, each with its own listener, heartbeat and
// data directory). It prints the throughput of both, their ratio, the
// latency each kind of call gains by crossing the wire (p50/p99), and the
// sizes the sizing model in docs/cluster.md takes as inputs: bytes per
// user in the directory and on the UD node, bytes per message on the UD
// and MS nodes.
//
//	go run ./bench/cluster
//	go run ./bench/cluster -clients 16 -messages 8000 -sessions 4000
//	go run ./bench/cluster -postgres 'postgres://...'   # the directory's size on PostgreSQL too
//
// The last line is
//
//	ratio_remote_vs_local=<the lower of the two ratios> smtp=<x> imap=<y>
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/pprof"
	"time"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout)) }

// options are the program's flags.
type options struct {
	dir          string
	keep         bool
	clients      int
	messages     int
	size         int
	sessions     int
	calls        int
	users        int
	dirUsers     int
	postgres     string
	timeLimit    time.Duration
	cpuprofile   string
	haRuns       int
	failoverRuns int
}

func run(args []string, w io.Writer) int {
	var o options
	fs := flag.NewFlagSet("cluster", flag.ContinueOnError)
	fs.StringVar(&o.dir, "dir", "", "data directory (empty: a temporary one, removed at the end)")
	fs.BoolVar(&o.keep, "keep", false, "keep the data directory")
	fs.IntVar(&o.clients, "clients", 8, "concurrent SMTP and IMAP clients")
	fs.IntVar(&o.messages, "messages", 4000, "messages delivered over SMTP, per setup")
	fs.IntVar(&o.size, "size", 4096, "message size in bytes")
	fs.IntVar(&o.sessions, "sessions", 2000, "IMAP sessions (LOGIN, SELECT INBOX, FETCH one BODY[], LOGOUT), per setup")
	fs.IntVar(&o.calls, "calls", 3000, "calls of each kind timed one at a time for the latency figures")
	fs.IntVar(&o.users, "users", 10, "users the load is spread over")
	fs.IntVar(&o.dirUsers, "dir-users", 20000, "users placed for the size figures")
	fs.StringVar(&o.postgres, "postgres", "", "DSN of a PostgreSQL database to measure the PostgreSQL directory's size per user in (its tables are created there)")
	fs.StringVar(&o.cpuprofile, "cpuprofile", "", "write a CPU profile of the remote setup's SMTP and IMAP phases to this file")
	fs.IntVar(&o.haRuns, "ha-runs", 3, "runs of the SMTP load without and with a standby, and with two replicas (the median is reported); 0 skips them")
	fs.IntVar(&o.failoverRuns, "failover-runs", 5, "runs of the failover test (examples/cluster, UD primary killed); 0 skips it")
	fs.DurationVar(&o.timeLimit, "time-limit", 10*time.Minute, "give up after this long")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if o.haRuns < 0 || o.failoverRuns < 0 || o.failoverRuns > 0 && o.haRuns == 0 {
		fmt.Fprintln(os.Stderr, "cluster: -ha-runs and -failover-runs must not be negative, and -failover-runs needs -ha-runs")
		return 2
	}
	if o.clients < 1 || o.messages < 1 || o.sessions < 1 || o.calls < 1 || o.users < 1 || o.size < 256 || o.dirUsers < 1 {
		fmt.Fprintln(os.Stderr, "cluster: -clients, -messages, -sessions, -calls, -users, -dir-users must be positive and -size at least 256")
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), o.timeLimit)
	defer cancel()
	if o.dir == "" {
		d, err := os.MkdirTemp("", "bench-cluster-")
		if err != nil {
			fmt.Fprintln(os.Stderr, "cluster:", err)
			return 1
		}
		o.dir = d
	}
	if !o.keep {
		defer os.RemoveAll(o.dir)
	}
	if err := bench(ctx, w, &o); err != nil {
		fmt.Fprintln(os.Stderr, "cluster:", err)
		return 1
	}
	return 0
}

func bench(ctx context.Context, w io.Writer, o *options) error {
	fmt.Fprintf(w, "cluster benchmark: %d clients, %d messages of %d bytes over SMTP, %d IMAP sessions, %d users; same machine, same run\n",
		o.clients, o.messages, o.size, o.sessions, o.users)

	local, err := startLocal(ctx, filepath.Join(o.dir, "local"))
	if err != nil {
		return fmt.Errorf("local: %w", err)
	}
	lr, err := measure(ctx, local, o)
	local.stop()
	if err != nil {
		return fmt.Errorf("local: %w", err)
	}

	remote, err := startRemote(ctx, filepath.Join(o.dir, "remote"), variant{name: "remote", replicas: 1})
	if err != nil {
		return fmt.Errorf("remote: %w", err)
	}
	if o.cpuprofile != "" {
		f, err := os.Create(o.cpuprofile)
		if err != nil {
			remote.stop()
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			remote.stop()
			return err
		}
	}
	rr, err := measure(ctx, remote, o)
	pprof.StopCPUProfile()
	if err != nil {
		remote.stop()
		return fmt.Errorf("remote: %w", err)
	}
	remote.stop()
	sz, err := sizes(ctx, rr, o)
	if err != nil {
		return fmt.Errorf("sizes: %w", err)
	}

	smtpRatio := rr.smtpRate / lr.smtpRate
	imapRatio := rr.imapRate / lr.imapRate
	fmt.Fprintf(w, "%-34s %12s %12s %8s\n", "", "local", "remote", "ratio")
	fmt.Fprintf(w, "%-34s %12.0f %12.0f %8.2f\n", "SMTP deliveries/s (250 durable)", lr.smtpRate, rr.smtpRate, smtpRatio)
	fmt.Fprintf(w, "%-34s %12.0f %12.0f %8.2f\n", "IMAP login+SELECT+FETCH sessions/s", lr.imapRate, rr.imapRate, imapRatio)
	fmt.Fprintf(w, "%-34s %12v %12v\n", "SMTP end of DATA to 250, p50", lr.smtpP50, rr.smtpP50)
	fmt.Fprintf(w, "%-34s %12v %12v\n", "IMAP session, p50", lr.imapP50, rr.imapP50)
	fmt.Fprintf(w, "added latency per call over gRPC (remote minus local, %d calls each, one at a time):\n", o.calls)
	for i, c := range rr.calls {
		l := lr.calls[i]
		fmt.Fprintf(w, "  %-28s p50 %9v (local %9v)   p99 %9v (local %9v)\n", c.name,
			(c.p50 - l.p50).Round(time.Microsecond), l.p50.Round(time.Microsecond),
			(c.p99 - l.p99).Round(time.Microsecond), l.p99.Round(time.Microsecond))
	}
	sz.print(w)
	if o.haRuns > 0 {
		ha, err := measureHA(ctx, o)
		if err != nil {
			return fmt.Errorf("high availability: %w", err)
		}
		ha.print(w)
	}
	fmt.Fprintf(w, "ratio_remote_vs_local=%.2f smtp=%.2f imap=%.2f\n", min(smtpRatio, imapRatio), smtpRatio, imapRatio)
	return nil
}
