// Command cluster runs a whole mailsys cluster on one machine: one front
// node, two UD nodes and two MS nodes, each a process of its own on a
// loopback address of its own, with the embedded directory (held by the
// front) or a PostgreSQL one:
//
//	go run ./examples/cluster -data ./mailsys-cluster
//
// It makes the cluster's CA and a certificate per node on first start (in
// DATA/certs), writes each node's configuration file (DATA/nodes/ID.toml,
// the format of examples/node) and starts the nodes, each logging to
// DATA/logs/ID.log. For each node that is up it prints a line
//
//	node role=ms id=ms1 pid=12345 addr=127.0.0.5:7001
//
// and then, once the front serves,
//
//	cluster ready smtp=127.0.0.1:2525 submission=127.0.0.1:2587 imap=127.0.0.1:1143 pop3=127.0.0.1:1110
//
// The front's listeners take allinone's flags (-smtp, -submission,
// -submissions, -imap, -imaps, -pop3, -pop3s, -hostname, -insecure-auth,
// -outbound, -dkim, -verify, -admin); -user EMAIL:PASSWORD (repeatable)
// creates or updates users, spread over the UD nodes by weight; without
// any, a demo user is made on first start and its password printed. With
// -admin ADDR the front serves the administration API and web admin
// there, with the cluster's nodes and the supervisor's events, and makes
// postmaster@HOSTNAME its system administrator on first start, printing
// the password. -postgres
// DSN uses a PostgreSQL directory instead of the embedded one. Nodes take
// consecutive addresses from -ip (front, ud1, ud2, ms1, ms2, then ud1b
// and ud2b with -standby), gRPC on -rpc-port and the heartbeat on
// -gossip-port.
//
// -standby gives each UD node a synchronous hot standby in a replication
// group named after it (ud1 with ud1b, ud2 with ud2b): every change is on
// both before it is acknowledged, and when the heartbeat declares a
// primary dead its standby takes over with the next epoch; the old
// primary, back, follows the new one. -replicas 2 writes each new body to
// two MS nodes, and runs a third (ms3), so that the bodies of one lost
// for good (removed from the registry) get their second copy back: the
// front walks the index and re-creates them.
//
// The nodes run under a cluster.Supervisor: one that exits or is killed is
// started again (after a backoff, throttled if it keeps crashing), and
// "node restarted ..." is printed once it serves; every event is in
// DATA/logs/supervisor.jsonl. With -supervise=false a node that dies is
// reported, not restarted; `cluster -node DATA/nodes/ID.toml` starts it
// again by hand (it rejoins by itself). SIGINT or SIGTERM stops every
// node.
package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/mailsys/mailsys/admin"
	"github.com/mailsys/mailsys/cluster"
	"github.com/mailsys/mailsys/cluster/node"
)

func main() {
	if len(os.Args) > 2 && os.Args[1] == "-node" {
		if err := runNode(os.Args[2]); err != nil {
			fmt.Fprintln(os.Stderr, "node:", err)
			os.Exit(1)
		}
		return
	}
	o, err := parseFlags(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "cluster:", err)
		os.Exit(1)
	}
}

// options are the launcher's flags.
type options struct {
	data, hostname, postgres, ip                             string
	smtp, submission, submissions, imap, imaps, pop3, pop3s  string
	admin                                                    string
	insecureAuth, outbound, dkim, verify, supervise, standby bool
	rpcPort, gossipPort, replicas                            int
	users                                                    []node.FileUser
}

func parseFlags(args []string) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("cluster", flag.ContinueOnError)
	fs.StringVar(&o.data, "data", "./mailsys-cluster", "data directory: certificates, node configurations, logs and every node's data")
	fs.StringVar(&o.hostname, "hostname", "localhost", "host name the front announces")
	fs.StringVar(&o.postgres, "postgres", "", "DSN of a PostgreSQL directory (empty: the embedded one, held by the front)")
	fs.StringVar(&o.ip, "ip", "127.0.0.2", "loopback address of the first node; the others take the next ones")
	fs.IntVar(&o.rpcPort, "rpc-port", 7001, "gRPC port of every node")
	fs.IntVar(&o.gossipPort, "gossip-port", 7946, "heartbeat (memberlist) port of every node")
	fs.StringVar(&o.smtp, "smtp", "127.0.0.1:2525", "front: inbound SMTP listener address (empty: off)")
	fs.StringVar(&o.submission, "submission", "127.0.0.1:2587", "front: submission listener address (empty: off)")
	fs.StringVar(&o.submissions, "submissions", "", "front: implicit-TLS submission listener address (empty: off)")
	fs.StringVar(&o.imap, "imap", "127.0.0.1:1143", "front: IMAP listener address (empty: off)")
	fs.StringVar(&o.imaps, "imaps", "", "front: implicit-TLS IMAP listener address (empty: off)")
	fs.StringVar(&o.pop3, "pop3", "127.0.0.1:1110", "front: POP3 listener address (empty: off)")
	fs.StringVar(&o.pop3s, "pop3s", "", "front: implicit-TLS POP3 listener address (empty: off)")
	fs.StringVar(&o.admin, "admin", "", "front: administration API and web admin listener, such as 127.0.0.1:8080 (empty: off)")
	fs.BoolVar(&o.supervise, "supervise", true, "run the nodes under a supervisor that restarts one that exits or is killed (events in DATA/logs/supervisor.jsonl); false: report it and leave it down")
	fs.BoolVar(&o.standby, "standby", false, "give each UD node a synchronous hot standby (ud1b, ud2b) that takes over when it dies")
	fs.IntVar(&o.replicas, "replicas", 1, "copies of each new message body, on distinct MS nodes (1 or 2)")
	fs.BoolVar(&o.insecureAuth, "insecure-auth", false, "let IMAP and POP3 clients log in with plain-text passwords before TLS (testing only)")
	fs.BoolVar(&o.outbound, "outbound", true, "send the users' mail for other domains through the front's outbound queue")
	fs.BoolVar(&o.dkim, "dkim", true, "sign outbound mail with DKIM")
	fs.BoolVar(&o.verify, "verify", true, "check incoming mail's SPF, DKIM and DMARC on the smtp listener")
	fs.Func("user", "EMAIL:PASSWORD to create or update; repeatable", func(s string) error {
		addr, pw, ok := strings.Cut(s, ":")
		if !ok || !strings.Contains(addr, "@") || pw == "" {
			return fmt.Errorf("want EMAIL:PASSWORD, not %q", s)
		}
		o.users = append(o.users, node.FileUser{Address: addr, Password: pw})
		return nil
	})
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	if _, err := netip.ParseAddr(o.ip); err != nil {
		return nil, fmt.Errorf("-ip: %w", err)
	}
	if o.replicas < 1 || o.replicas > cluster.MaxReplicas {
		return nil, fmt.Errorf("-replicas %d: want 1 to %d", o.replicas, cluster.MaxReplicas)
	}
	return o, nil
}

// layoutNode is one node the launcher runs.
type layoutNode struct {
	id    string
	roles cluster.Role
	group string // a UD node's replication group, with -standby
}

// layout is the cluster the launcher runs: five nodes, the front holding
// the embedded directory.
var layout = []layoutNode{
	{"front", cluster.RoleFront, ""},
	{"ud1", cluster.RoleUD, ""},
	{"ud2", cluster.RoleUD, ""},
	{"ms1", cluster.RoleMS, ""},
	{"ms2", cluster.RoleMS, ""},
}

// standbys are the nodes -standby adds: a hot standby of each UD node, in
// a replication group named after it.
var standbys = []layoutNode{
	{"ud1b", cluster.RoleUD, "ud1"},
	{"ud2b", cluster.RoleUD, "ud2"},
}

// thirdMS is the node -replicas 2 adds, so that a body still has two
// copies after one MS node is lost for good.
var thirdMS = layoutNode{"ms3", cluster.RoleMS, ""}

// nodes returns the nodes to run, in the order they take addresses.
func (o *options) nodes() []layoutNode {
	all := append([]layoutNode(nil), layout...)
	if o.standby {
		for i := range all {
			if all[i].roles&cluster.RoleUD != 0 {
				all[i].group = all[i].id
			}
		}
		all = append(all, standbys...)
	}
	if o.replicas > 1 {
		all = append(all, thirdMS)
	}
	return all
}

// run writes the certificates and configurations, starts the nodes and
// waits for ctx to end, then stops them.
func run(ctx context.Context, o *options) error {
	data, err := filepath.Abs(o.data)
	if err != nil {
		return err
	}
	files, err := prepare(data, o)
	if err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	if o.supervise {
		return runSupervised(ctx, o, data, self, files)
	}
	var children []*child
	defer func() { stopAll(children) }()
	ready, exits := make(chan *child, len(files)), make(chan *child, len(files))
	for i, f := range files {
		c, err := startChild(self, f, filepath.Join(data, "logs", o.nodes()[i].id+".log"), ready, exits)
		if err != nil {
			return err
		}
		children = append(children, c)
	}
	for range children {
		select {
		case c := <-ready:
			fmt.Printf("node role=%s id=%s pid=%d addr=%s\n", c.roles, c.id, c.cmd.Process.Pid, c.addr)
		case c := <-exits:
			return fmt.Errorf("node %s exited before it was ready (see %s): %v", c.id, c.logFile, c.err)
		case <-ctx.Done():
			return nil
		case <-time.After(90 * time.Second):
			return errors.New("the nodes were not ready within 90 s; see their logs in " + filepath.Join(data, "logs"))
		}
	}
	fmt.Printf("cluster ready smtp=%s submission=%s imap=%s pop3=%s\n", o.smtp, o.submission, o.imap, o.pop3)
	for {
		select {
		case <-ctx.Done():
			return nil
		case c := <-exits:
			fmt.Fprintf(os.Stderr, "cluster: node %s (pid %d) exited: %v; start it again with: %s -node %s\n", c.id, c.cmd.Process.Pid, c.err, self, c.file)
		}
	}
}

// prepare makes the CA and the node certificates (first start only) and
// writes every node's configuration file, returning their paths in
// layout order.
func prepare(data string, o *options) ([]string, error) {
	certs := filepath.Join(data, "certs")
	for _, d := range []string{data, certs, filepath.Join(data, "nodes"), filepath.Join(data, "logs")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, err
		}
	}
	first, _ := netip.ParseAddr(o.ip)
	nodes := o.nodes()
	addrs := make([]netip.Addr, len(nodes))
	for i := range nodes {
		addrs[i] = first
		first = first.Next()
	}
	ca, err := cluster.LoadCA(filepath.Join(certs, "ca.pem"), filepath.Join(certs, "ca.key"))
	if errors.Is(err, os.ErrNotExist) {
		if ca, err = cluster.NewCA("mailsys example cluster", 10*365*24*time.Hour); err == nil {
			err = ca.WriteFiles(certs)
		}
	}
	if err != nil {
		return nil, err
	}
	var seeds []string
	for _, a := range addrs {
		seeds = append(seeds, net.JoinHostPort(a.String(), strconv.Itoa(o.gossipPort)))
	}
	rpcAddr := func(i int) string { return net.JoinHostPort(addrs[i].String(), strconv.Itoa(o.rpcPort)) }
	var files []string
	for i, l := range nodes {
		if err := ca.IssueFiles(certs, l.id, []string{addrs[i].String()}, 10*365*24*time.Hour); err != nil {
			return nil, err
		}
		f := node.File{
			ID: l.id, Num: uint32(i + 1), Roles: l.roles.String(), DataDir: filepath.Join(data, l.id),
			Listen: rpcAddr(i), Gossip: seeds[i], Seeds: others(seeds, i), Group: l.group,
			Cert: filepath.Join(certs, l.id+".pem"), Key: filepath.Join(certs, l.id+".key"), CA: filepath.Join(certs, "ca.pem"),
		}
		switch {
		case o.postgres != "":
			f.Directory.Postgres = o.postgres
		case i == 0:
			f.Directory.Hold = true
		default:
			f.Directory.Node, f.Directory.Addr = nodes[0].id, rpcAddr(0)
		}
		if l.roles&cluster.RoleFront != 0 {
			f.Front = node.FileFront{
				Hostname: o.hostname, SMTP: o.smtp, Submission: o.submission, Submissions: o.submissions,
				IMAP: o.imap, IMAPS: o.imaps, POP3: o.pop3, POP3S: o.pop3s, InsecureAuth: o.insecureAuth,
				Outbound: &o.outbound, DKIM: &o.dkim, Verify: &o.verify, Admin: o.admin,
			}
			if o.supervise && o.admin != "" {
				f.Front.Events = filepath.Join(data, "logs", "supervisor.jsonl")
			}
			f.Users, f.Replicas = o.users, o.replicas
			for _, p := range nodes {
				if p.roles&(cluster.RoleUD|cluster.RoleMS) != 0 {
					f.Peers = append(f.Peers, p.id)
				}
			}
		}
		path := filepath.Join(data, "nodes", l.id+".toml")
		if err := writeTOML(path, &f); err != nil {
			return nil, err
		}
		files = append(files, path)
	}
	return files, nil
}

func others(all []string, i int) []string {
	var o []string
	for j, s := range all {
		if j != i {
			o = append(o, s)
		}
	}
	return o
}

func writeTOML(path string, v any) error {
	f, err := os.OpenFile(path+".tmp", os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600) // it may hold passwords
	if err != nil {
		return err
	}
	if err := toml.NewEncoder(f).Encode(v); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(path+".tmp", path)
}

// child is a node process.
type child struct {
	id, file, logFile, addr string
	roles                   cluster.Role
	cmd                     *exec.Cmd
	done                    chan struct{}
	err                     error
}

// startChild starts the node of configuration file path; ready gets it
// once the node says it serves, exits once it has exited.
func startChild(self, path, logFile string, ready, exits chan<- *child) (*child, error) {
	f, err := node.LoadFile(path)
	if err != nil {
		return nil, err
	}
	roles, _ := cluster.ParseRole(f.Roles)
	logf, err := os.OpenFile(logFile, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	defer logf.Close() // the child has its own copy
	c := &child{id: f.ID, file: path, logFile: logFile, addr: f.Listen, roles: roles, done: make(chan struct{})}
	c.cmd = exec.Command(self, "-node", path)
	c.cmd.Stderr = logf
	c.cmd.SysProcAttr = childAttr()
	out, err := c.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := c.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting node %s: %w", c.id, err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if sc.Text() == readyLine {
				ready <- c
				continue
			}
			fmt.Println(sc.Text()) // what the node has to say (the demo user)
		}
		c.err = c.cmd.Wait()
		close(c.done)
		exits <- c
	}()
	return c, nil
}

// stopAll sends SIGTERM to every node still running, and SIGKILL to those
// still there after 15 s.
func stopAll(children []*child) {
	for _, c := range children {
		c.cmd.Process.Signal(syscall.SIGTERM)
	}
	deadline := time.After(15 * time.Second)
	for _, c := range children {
		select {
		case <-c.done:
		case <-deadline:
			c.cmd.Process.Kill()
			<-c.done
		}
	}
}

// readyLine is what a node prints on its standard output once it serves.
const readyLine = "ready"

// runNode runs one node from its configuration file until SIGINT or
// SIGTERM: the node mode of this program, as examples/node runs it.
func runNode(path string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	f, err := node.LoadFile(path)
	if err != nil {
		return err
	}
	return node.Run(ctx, f, slog.New(slog.NewTextHandler(os.Stderr, nil)), func(n *node.Node) error {
		if n.System() != nil && len(f.Users) == 0 {
			if err := ensureDemoUser(ctx, n, f.Front.Hostname); err != nil {
				return err
			}
		}
		if n.System() != nil {
			if err := ensureAdmin(ctx, n, f.Front.Hostname); err != nil {
				return err
			}
		}
		fmt.Println(readyLine)
		return nil
	})
}

// ensureAdmin makes postmaster@hostname a system administrator of the
// front's administration API, with a random password it prints, when the
// API is on and has none yet (its first start).
func ensureAdmin(ctx context.Context, n *node.Node, host string) error {
	a := n.System().Admin()
	if a == nil {
		return nil
	}
	has, err := a.HasSystemAdmin()
	if err != nil || has {
		return err
	}
	if host == "" {
		host = "localhost"
	}
	addr := "postmaster@" + host
	b := make([]byte, 9)
	rand.Read(b)
	pw := hex.EncodeToString(b)
	if _, err := n.System().EnsureUser(ctx, addr, pw); err != nil {
		return fmt.Errorf("system administrator: %w", err)
	}
	if err := a.SetGrant(ctx, admin.Grant{User: addr, Role: admin.RoleSystem}); err != nil {
		return err
	}
	fmt.Printf("system administrator: %s password: %s\n", addr, pw)
	return nil
}

// ensureDemoUser makes demo@hostname with a random password, and prints
// them, unless it is there from an earlier start.
func ensureDemoUser(ctx context.Context, n *node.Node, host string) error {
	if host == "" {
		host = "localhost"
	}
	demo := "demo@" + host
	sys := n.System()
	if _, err := sys.UserDB().LookupAddress(ctx, demo); err == nil {
		return nil
	}
	b := make([]byte, 9)
	rand.Read(b)
	pw := hex.EncodeToString(b)
	if _, err := sys.EnsureUser(ctx, demo, pw); err != nil {
		return fmt.Errorf("demo user: %w", err)
	}
	fmt.Printf("demo user: %s password: %s\n", demo, pw)
	return nil
}
