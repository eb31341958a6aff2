// Command imap benchmarks mailsys's IMAP server. The server runs in a
// child process over a data directory the parent fills first: a folder of
// 10,000 messages (INBOX) and one of 100,000 (Big). Then, over loopback:
//
//   - SELECT and FETCH 1:* (FLAGS) latency on the 100,000-message folder;
//   - N clients (default 10) on INBOX running a mix like a real client's:
//     SELECT, FETCH 1:* (UID FLAGS), FETCH of whole bodies, STORE, SEARCH,
//     APPEND, EXPUNGE; commands/s and p99 latency per command;
//   - the server's RSS per idle connection: C connections (default 2,000)
//     logged in, INBOX selected, in IDLE.
//
// The last line is select_100k_p50_ms=<x> idle_kib_per_conn=<y>.
//
//	go run ./bench/imap
//	go run ./bench/imap -clients 10 -seconds 20 -idle 2000
//
// # Stress mode
//
// With -stress the program checks the protocol instead of timing it. It
// starts the server the same way, over a data directory that holds only
// the user, makes the folder set INBOX, Work, Archive and Trash, appends
// -per-folder messages to each with keywords, then runs -clients clients
// (default 10) for -duration (default 20s) on that one folder set. Each
// is a real connection, logged in; every other one enables IMAP4rev2
// (-rev 1, 2 or mixed). Each does, at random: APPEND (with and without a
// flag list, with keywords the folder has and new ones), SELECT and
// EXAMINE, FETCH and UID FETCH (FLAGS, UID, ENVELOPE, BODYSTRUCTURE,
// BODY.PEEK[], BODY.PEEK[HEADER], partial ranges, RFC822.SIZE), STORE and
// UID STORE (+FLAGS, -FLAGS, FLAGS, with and without .SILENT), SEARCH and
// UID SEARCH, EXPUNGE and UID EXPUNGE, COPY, MOVE (into other folders and
// into its own), NOOP, IDLE, STATUS of other folders, LIST, and now and
// then a command on a folder that does not exist or a LOGOUT.
//
// Every response is read by a strict parser of its own (RFC 9051 section
// 9) and checked against the state a client keeps per connection: the
// count (EXISTS never goes down but by EXPUNGE; no EXPUNGE during FETCH,
// STORE or SEARCH), the flags (each in a FETCH announced by the mailbox's
// FLAGS before it), the UIDs (fixed per message, ascending, against
// UIDNEXT; APPENDUID and COPYUID), what SELECT must send, SEARCH and
// STATUS results, and the bytes of BODY[] against the message appended
// (found by its Message-ID). The output gives commands per second per
// kind and in total, the departures the RFCs allow, and the protocol
// errors per category with the first -examples of each (command and
// offending response); the last line is stress_errors=<n>
// stress_cmds_per_s=<x>. The exit status is 1 if there were protocol
// errors, unless -allow-errors.
//
//	go run ./bench/imap -stress
//	go run ./bench/imap -stress -clients 20 -duration 1m -examples 10
//	go run ./bench/imap -stress -addr 127.0.0.1:1143 -user u@example.org -pass secret
//
// With -addr it runs against a server already running instead, as -user
// with -pass: it creates the folders it lacks and appends to them, so
// use an account meant for it. -seed makes the dice repeatable (with one
// client); -v writes each example to stderr as it happens; -trace FILE
// writes every client's conversation, each line after the client's
// number (the first 64 MiB).
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	goimap "github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/mailsys/mailsys/imap"
	"github.com/mailsys/mailsys/msstore"
	"github.com/mailsys/mailsys/userdata"
)

const (
	user     = "bench@bench.example"
	password = "pw"
)

// serveEnv, set to a data directory, makes the program the server child.
const serveEnv = "IMAPBENCH_SERVE"

func main() {
	serveIfChild()
	os.Exit(run(os.Args[1:], os.Stdout))
}

// serveIfChild runs the server and exits when this process is the child.
func serveIfChild() {
	if dir := os.Getenv(serveEnv); dir != "" {
		if err := serve(dir); err != nil {
			fmt.Fprintln(os.Stderr, "imap bench server:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
}

type options struct {
	dir              string
	small, big       int
	clients, seconds int
	idle             int
	stress           bool
	so               stressOptions
}

func run(args []string, w io.Writer) int {
	var o options
	fs := flag.NewFlagSet("imap-bench", flag.ContinueOnError)
	fs.StringVar(&o.dir, "dir", "", "data directory (default: a temporary one, removed after)")
	fs.IntVar(&o.small, "messages", 10_000, "messages in INBOX, for the mix")
	fs.IntVar(&o.big, "big", 100_000, "messages in Big, for SELECT and FETCH latency")
	fs.IntVar(&o.clients, "clients", 10, "concurrent clients in the mix")
	fs.IntVar(&o.seconds, "seconds", 20, "length of the mix")
	fs.IntVar(&o.idle, "idle", 2000, "idle connections for the memory figure")
	fs.BoolVar(&o.stress, "stress", false, "check the protocol under concurrent clients instead (see the doc comment)")
	fs.DurationVar(&o.so.duration, "duration", 20*time.Second, "-stress: how long the clients run")
	fs.IntVar(&o.so.perFolder, "per-folder", 30, "-stress: messages appended to each folder first")
	fs.StringVar(&o.so.addr, "addr", "", "-stress: a running server's host:port, instead of one of its own")
	fs.StringVar(&o.so.user, "user", "", "-stress with -addr: the account")
	fs.StringVar(&o.so.pass, "pass", "", "-stress with -addr: its password")
	fs.BoolVar(&o.so.allowErrors, "allow-errors", false, "-stress: exit 0 even with protocol errors")
	fs.IntVar(&o.so.examples, "examples", 5, "-stress: examples shown per kind of error")
	fs.StringVar(&o.so.rev, "rev", "mixed", "-stress: 1, 2 or mixed: which clients ENABLE IMAP4rev2")
	fs.Uint64Var(&o.so.seed, "seed", 0, "-stress: random seed (0: from the clock)")
	fs.BoolVar(&o.so.verbose, "v", false, "-stress: write each example to stderr as it happens")
	fs.StringVar(&o.so.trace, "trace", "", "-stress: write every client's conversation to this file")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	o.so.clients = o.clients
	if o.stress && o.so.addr != "" {
		n, err := stress(w, "", o.so)
		return stressExit(n, err, o.so)
	}
	if o.dir == "" {
		d, err := os.MkdirTemp("", "imapbench-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(d)
		o.dir = d
	}
	if o.stress {
		n, err := stress(w, o.dir, o.so)
		return stressExit(n, err, o.so)
	}
	if err := bench(w, o); err != nil {
		fmt.Fprintln(os.Stderr, "imap bench:", err)
		return 1
	}
	return 0
}

func stressExit(errs int, err error, o stressOptions) int {
	switch {
	case err != nil:
		fmt.Fprintln(os.Stderr, "imap stress:", err)
		return 2
	case errs > 0 && !o.allowErrors:
		return 1
	}
	return 0
}

// message is a 2 to 6 KiB message, plain or multipart.
func message(i int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "From: Sender %d <s%d@example.net>\r\nTo: %s\r\nSubject: message %d about topic %d\r\nDate: Mon, 02 Jan 2006 15:04:05 +0000\r\nMessage-ID: <%d@example.net>\r\n", i%97, i%97, user, i, i%13, i)
	if i%4 == 0 {
		b.WriteString("MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=xx\r\n\r\n--xx\r\nContent-Type: text/plain\r\n\r\n")
	} else {
		b.WriteString("\r\n")
	}
	for j := range 30 + i%60 {
		fmt.Fprintf(&b, "line %d of message %d, with some words to search for: needle%d\r\n", j, i, i%100)
	}
	if i%4 == 0 {
		b.WriteString("--xx\r\nContent-Type: text/html\r\n\r\n<p>html part</p>\r\n--xx--\r\n")
	}
	return b.String()
}

// fill loads the data directory: the user, INBOX and Big, in bulk.
func fill(dir string, small, big int) error {
	ctx := context.Background()
	quiet := slog.New(slog.DiscardHandler)
	scfg := msstore.DefaultConfig(filepath.Join(dir, "store"))
	scfg.Logger, scfg.NoSync = quiet, true
	store, err := msstore.OpenVolumes(ctx, scfg)
	if err != nil {
		return err
	}
	defer store.Close()
	db, err := userdata.Open(ctx, userdata.Config{Dir: filepath.Join(dir, "ud"), Bodies: store, Logger: quiet, NoSync: true})
	if err != nil {
		return err
	}
	defer db.Close()
	if err := db.CreateDomain(ctx, userdata.Domain{Name: "bench.example"}); err != nil {
		return err
	}
	u, err := db.CreateUser(ctx, userdata.NewUser{Address: user, Password: password})
	if err != nil {
		return err
	}
	for _, f := range []struct {
		name string
		n    int
	}{{userdata.Inbox, small}, {"Big", big}} {
		if f.n == 0 {
			continue
		}
		folder, err := db.Folder(ctx, u.ID, f.name)
		if errors.Is(err, userdata.ErrNotFound) {
			folder, err = db.CreateFolder(ctx, u.ID, f.name, "")
		}
		if err != nil {
			return err
		}
		var wg sync.WaitGroup
		errs := make(chan error, 4)
		for w := range 4 {
			wg.Go(func() {
				for i := w; i < f.n; i += 4 {
					m := message(i)
					env, bs, err := imap.Summarize(strings.NewReader(m))
					if err != nil {
						errs <- err
						return
					}
					ref, err := store.Put(ctx, strings.NewReader(m), msstore.Meta{Owners: []msstore.Owner{{User: user, Mailbox: f.name}}})
					if err != nil {
						errs <- err
						return
					}
					var fl userdata.Flags
					if i%3 == 0 {
						fl = userdata.FlagSeen
					}
					if _, err := db.Append(ctx, u.ID, folder.ID, userdata.NewMessage{Ref: ref, Size: ref.Size, InternalDate: time.Now(), Flags: fl, Envelope: env, Structure: bs}); err != nil {
						errs <- err
						return
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		if err := <-errs; err != nil {
			return err
		}
	}
	return store.Sync(ctx)
}

// serve is the child: the IMAP server over dir, its address on stdout,
// until stdin closes.
func serve(dir string) error {
	raiseFileLimit()
	ctx := context.Background()
	quiet := slog.New(slog.DiscardHandler)
	scfg := msstore.DefaultConfig(filepath.Join(dir, "store"))
	scfg.Logger = quiet
	store, err := msstore.OpenVolumes(ctx, scfg)
	if err != nil {
		return err
	}
	defer store.Close()
	db, err := userdata.Open(ctx, userdata.Config{Dir: filepath.Join(dir, "ud"), Bodies: store, Logger: quiet})
	if err != nil {
		return err
	}
	defer db.Close()
	srv, err := imap.NewServer(imap.Config{InsecureAuth: true, Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))}, db, store)
	if err != nil {
		return err
	}
	l, err := netListen()
	if err != nil {
		return err
	}
	go srv.Serve(l)
	fmt.Println(l.Addr())
	io.Copy(io.Discard, os.Stdin)
	return srv.Shutdown(ctx)
}

func bench(w io.Writer, o options) error {
	raiseFileLimit()
	start := time.Now()
	if err := fill(o.dir, o.small, o.big); err != nil {
		return fmt.Errorf("filling: %w", err)
	}
	fmt.Fprintf(w, "imap benchmark: INBOX %d messages, Big %d messages (loaded in %v)\n", o.small, o.big, time.Since(start).Round(time.Millisecond))

	srv, err := startServer(o.dir)
	if err != nil {
		return err
	}
	defer srv.stop()
	addr := srv.addr

	// SELECT and FETCH 1:* (FLAGS) on the big folder.
	c, err := login(addr)
	if err != nil {
		return err
	}
	var sel, fetch []time.Duration
	for range 20 {
		t := time.Now()
		if _, err := c.Select("Big", nil).Wait(); err != nil {
			return err
		}
		sel = append(sel, time.Since(t))
		c.Unselect().Wait()
	}
	if _, err := c.Select("Big", nil).Wait(); err != nil {
		return err
	}
	for range 5 {
		t := time.Now()
		cmd := c.Fetch(goimap.SeqSet{{Start: 1, Stop: 0}}, &goimap.FetchOptions{Flags: true})
		n := 0
		for m := cmd.Next(); m != nil; m = cmd.Next() {
			for m.Next() != nil {
			}
			n++
		}
		if err := cmd.Close(); err != nil {
			return err
		}
		if n != o.big {
			return fmt.Errorf("FETCH 1:* returned %d messages, want %d", n, o.big)
		}
		fetch = append(fetch, time.Since(t))
	}
	c.Logout().Wait()
	slices.Sort(sel)
	slices.Sort(fetch)
	fmt.Fprintf(w, "  SELECT of %d messages: p50 %v, max %v (20 runs)\n", o.big, sel[len(sel)/2].Round(time.Microsecond), sel[len(sel)-1].Round(time.Microsecond))
	fmt.Fprintf(w, "  FETCH 1:* (FLAGS) of %d messages: p50 %v (5 runs)\n", o.big, fetch[len(fetch)/2].Round(time.Millisecond))

	if err := mix(w, addr, o); err != nil {
		return err
	}

	perConn, err := idle(w, addr, srv.pid, o.idle)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "select_100k_p50_ms=%.1f idle_kib_per_conn=%.1f\n", float64(sel[len(sel)/2].Microseconds())/1000, perConn)
	return nil
}

// server is the server child process.
type server struct {
	addr string
	pid  int
	stop func() // ends it and waits for it
}

// startServer starts this program as the server over dir, on loopback.
func startServer(dir string) (*server, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	child := exec.Command(self)
	child.Env = append(os.Environ(), serveEnv+"="+dir)
	child.Stderr = os.Stderr
	stdin, _ := child.StdinPipe()
	stdout, _ := child.StdoutPipe()
	if err := child.Start(); err != nil {
		return nil, err
	}
	stop := func() { stdin.Close(); child.Wait() }
	addr, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		stop()
		return nil, fmt.Errorf("server: %w", err)
	}
	return &server{addr: strings.TrimSpace(addr), pid: child.Process.Pid, stop: stop}, nil
}

func login(addr string) (*imapclient.Client, error) {
	c, err := imapclient.DialInsecure(addr, nil)
	if err != nil {
		return nil, err
	}
	if err := c.Login(user, password).Wait(); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// The mix: each client loops over these, weighted like a client that
// syncs often and reads now and then.
var mixCommands = []string{"SELECT", "FETCH FLAGS", "FETCH FLAGS", "FETCH BODY", "FETCH BODY", "STORE", "STORE", "SEARCH", "APPEND", "EXPUNGE"}

func mix(w io.Writer, addr string, o options) error {
	type sample struct {
		cmd string
		d   time.Duration
	}
	results := make([][]sample, o.clients)
	errs := make(chan error, o.clients)
	deadline := time.Now().Add(time.Duration(o.seconds) * time.Second)
	var wg sync.WaitGroup
	for i := range o.clients {
		wg.Go(func() {
			c, err := login(addr)
			if err != nil {
				errs <- fmt.Errorf("client %d: login: %w", i, err)
				return
			}
			defer func() { c.Logout().Wait() }()
			if _, err := c.Select("INBOX", nil).Wait(); err != nil {
				errs <- fmt.Errorf("client %d: SELECT: %w", i, err)
				return
			}
			msg := message(1_000_000 + i)
			for r := i; time.Now().Before(deadline); r++ {
				cmd := mixCommands[r%len(mixCommands)]
				mb := c.Mailbox()
				if mb == nil { // go-imap's client forgets it for a moment around a re-SELECT
					cmd, mb = "SELECT", &imapclient.SelectedMailbox{}
				}
				n := max(mb.NumMessages, 1)
				seq := uint32(r*7919)%n + 1
				t := time.Now()
				var err error
				switch cmd {
				case "SELECT":
					_, err = c.Select("INBOX", nil).Wait()
				case "FETCH FLAGS":
					_, err = c.Fetch(goimap.SeqSet{{Start: 1, Stop: 0}}, &goimap.FetchOptions{UID: true, Flags: true}).Collect()
				case "FETCH BODY":
					_, err = c.Fetch(goimap.SeqSetNum(seq), &goimap.FetchOptions{UID: true, BodySection: []*goimap.FetchItemBodySection{{Peek: true}}}).Collect()
				case "STORE":
					_, err = c.Store(goimap.SeqSetNum(seq), &goimap.StoreFlags{Op: goimap.StoreFlagsAdd, Flags: []goimap.Flag{goimap.FlagFlagged}, Silent: true}, nil).Collect()
				case "SEARCH":
					_, err = c.Search(&goimap.SearchCriteria{Flag: []goimap.Flag{goimap.FlagFlagged}, NotFlag: []goimap.Flag{goimap.FlagSeen}}, nil).Wait()
				case "APPEND":
					a := c.Append("INBOX", int64(len(msg)), nil)
					io.WriteString(a, msg)
					a.Close()
					_, err = a.Wait()
				case "EXPUNGE":
					// Delete one message and expunge it, as a client does.
					if err = c.Store(goimap.SeqSetNum(seq), &goimap.StoreFlags{Op: goimap.StoreFlagsAdd, Flags: []goimap.Flag{goimap.FlagDeleted}, Silent: true}, nil).Close(); err == nil {
						_, err = c.UIDExpunge(goimap.UIDSet{{Start: 1, Stop: 0}}).Collect()
					}
				}
				if err != nil && !expungeIssued(err) {
					errs <- fmt.Errorf("client %d %s: %w", i, cmd, err)
					return
				}
				results[i] = append(results[i], sample{cmd, time.Since(t)})
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	by := map[string][]time.Duration{}
	total := 0
	for _, rs := range results {
		for _, s := range rs {
			by[s.cmd] = append(by[s.cmd], s.d)
			total++
		}
	}
	fmt.Fprintf(w, "  mix: %d clients on INBOX for %d s: %d commands, %.0f/s\n", o.clients, o.seconds, total, float64(total)/float64(o.seconds))
	for _, cmd := range []string{"SELECT", "FETCH FLAGS", "FETCH BODY", "STORE", "SEARCH", "APPEND", "EXPUNGE"} {
		d := by[cmd]
		if len(d) == 0 {
			continue
		}
		slices.Sort(d)
		fmt.Fprintf(w, "    %-12s %7.0f/s  p50 %9v  p99 %9v\n", cmd, float64(len(d))/float64(o.seconds), d[len(d)/2].Round(time.Microsecond), d[len(d)*99/100].Round(time.Microsecond))
	}
	return nil
}

// expungeIssued says whether err is a NO [EXPUNGEISSUED]: another client
// expunged a message this one named (RFC 9051 section 7.1), which the
// mix, all on one folder, runs into.
func expungeIssued(err error) bool {
	var e *goimap.Error
	return errors.As(err, &e) && e.Code == "EXPUNGEISSUED"
}

// idle opens n connections that log in, select INBOX and IDLE, and
// returns the server's RSS growth per connection in KiB.
func idle(w io.Writer, addr string, pid, n int) (float64, error) {
	before := rssKiB(pid)
	var clients []*imapclient.Client
	var idles []*imapclient.IdleCommand
	defer func() {
		for _, ic := range idles {
			ic.Close()
		}
		for _, c := range clients {
			c.Close()
		}
	}()
	for range n {
		c, err := login(addr)
		if err != nil {
			return 0, fmt.Errorf("idle connection %d: %w", len(clients), err)
		}
		clients = append(clients, c)
		if _, err := c.Select("INBOX", nil).Wait(); err != nil {
			return 0, err
		}
		ic, err := c.Idle()
		if err != nil {
			return 0, err
		}
		idles = append(idles, ic)
	}
	time.Sleep(2 * time.Second)
	after := rssKiB(pid)
	per := float64(after-before) / float64(n)
	fmt.Fprintf(w, "  idle: %d connections in IDLE: server RSS %d MiB -> %d MiB, %.1f KiB per connection\n", n, before/1024, after/1024, per)
	return per, nil
}

func rssKiB(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		var kb int64
		if n, _ := fmt.Sscanf(line, "VmRSS: %d kB", &kb); n == 1 {
			return kb
		}
	}
	return 0
}

// raiseFileLimit lifts the open-files limit to its maximum, for the idle
// connections.
func raiseFileLimit() {
	var l syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l) == nil {
		l.Cur = l.Max
		syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l)
	}
}

func netListen() (net.Listener, error) { return net.Listen("tcp", "127.0.0.1:0") }
