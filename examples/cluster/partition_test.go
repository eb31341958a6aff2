//go:build linux

package main

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	goimap "github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-smtp"

	"github.com/mailsys/mailsys/cluster"
	"github.com/mailsys/mailsys/cluster/node"
	"github.com/mailsys/mailsys/cluster/rpc"
)

// The partition test's topology. The front runs in a network namespace of
// its own, joined to the machine's by a veth pair on a private /30
// (10.200.A.B/30, chosen at random per run); ud1, ud2, ms1 and ms2 run in
// the machine's namespace on /32 addresses of 10.201.A.0/24 put on the
// veth's outer end, so that the front reaches them (127.0.0.0/8 is not
// routed between namespaces) and they reach the front, its directory and
// its gossip. With the front on the far side of the link, the partition
// can be between the front and ms2 alone: ms2 keeps talking to the UD
// nodes, to ms1 and to the test, as a node cut off by a network fault
// from one peer does, so the front's heartbeat hears from the others
// that ms2 is alive and only the front's own calls can tell it that ms2
// does not answer.
//
// The partition is a tc blackhole, on the egress of both ends of the veth:
// an htb root whose u32 filter sends the packets addressed to ms2 (in the
// front's namespace) and those sent from ms2's addresses (in the
// machine's) to a class whose qdisc is "blackhole", which drops them and
// tells the sender they went. Nothing is refused and no ICMP comes back:
// the peer is silent, as on a cut cable. (This kernel has no netem and no
// gact drop action; blackhole, htb and u32 are built in.) The TCP
// connections ms2 itself opens to the front (its directory watch, the
// gossip's state syncs) leave from the veth's address, not ms2's, and are
// not cut: the front cannot reach ms2, and nothing ms2's listeners or its
// gossip socket send reaches the front.

// partNet is the network the test made: a namespace, a veth pair and the
// addresses; close removes them.
type partNet struct {
	ns, outer, inner string    // namespace, veth ends (outer in the machine's namespace)
	front            string    // the front's address, inside ns
	nodes            [4]string // ud1, ud2, ms1, ms2, outside
}

// need returns the path of program, skipping the test if it is missing,
// except under CI (which installs it).
func need(t *testing.T, program, pkg string) string {
	p, err := exec.LookPath(program)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s (Debian package %s) is missing; .ci/run installs it", program, pkg)
		}
		t.Skipf("no %s (Debian package %s): the partition test needs it", program, pkg)
	}
	return p
}

// sh runs a command of iproute2 and fails the test with its output if it
// fails.
func sh(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// newPartNet makes the namespace and the link; the test's cleanup removes
// them, whatever the test's outcome. It skips the test when the machine
// cannot make a namespace (not root, no CAP_NET_ADMIN).
func newPartNet(t *testing.T) *partNet {
	need(t, "ip", "iproute2")
	need(t, "tc", "iproute2")
	var id [3]byte
	rand.Read(id[:])
	x := hex.EncodeToString(id[:])
	p := &partNet{ns: "mailsys-part-" + x, outer: "mspo" + x, inner: "mspi" + x}
	have := sh(t, "ip", "-o", "-4", "addr", "show")
	var a, b int
	for try := 0; ; try++ {
		a, b = mrand.IntN(256), 4*mrand.IntN(63)
		if !strings.Contains(have, fmt.Sprintf(" 10.200.%d.%d/", a, b+1)) && !strings.Contains(have, fmt.Sprintf(" 10.201.%d.%d/", a, b+1)) {
			break
		}
		if try == 20 {
			t.Fatal("no free 10.200.x.y/30 found")
		}
	}
	p.front = fmt.Sprintf("10.200.%d.%d", a, b+2)
	for i := range p.nodes {
		p.nodes[i] = fmt.Sprintf("10.201.%d.%d", a, b+1+i)
	}
	out, err := exec.Command("ip", "netns", "add", p.ns).CombinedOutput()
	if err != nil {
		if os.Geteuid() != 0 || strings.Contains(string(out), "not permitted") || strings.Contains(string(out), "ermission denied") {
			t.Skipf("cannot create a network namespace (needs root or CAP_NET_ADMIN): %v: %s", err, strings.TrimSpace(string(out)))
		}
		t.Fatalf("ip netns add %s: %v\n%s", p.ns, err, out)
	}
	t.Cleanup(func() {
		// Deleting one end deletes the pair, and the addresses on it.
		exec.Command("ip", "link", "del", p.outer).Run()
		if out, err := exec.Command("ip", "netns", "del", p.ns).CombinedOutput(); err != nil {
			t.Errorf("removing namespace %s: %v: %s", p.ns, err, out)
		}
		if exec.Command("ip", "link", "show", p.outer).Run() == nil {
			t.Errorf("link %s still there after the cleanup", p.outer)
		}
	})
	sh(t, "ip", "link", "add", p.outer, "type", "veth", "peer", "name", p.inner, "netns", p.ns)
	sh(t, "ip", "addr", "add", fmt.Sprintf("10.200.%d.%d/30", a, b+1), "dev", p.outer)
	for _, n := range p.nodes {
		sh(t, "ip", "addr", "add", n+"/32", "dev", p.outer)
	}
	sh(t, "ip", "link", "set", p.outer, "up")
	sh(t, "ip", "-n", p.ns, "addr", "add", p.front+"/30", "dev", p.inner)
	sh(t, "ip", "-n", p.ns, "link", "set", "lo", "up")
	sh(t, "ip", "-n", p.ns, "link", "set", p.inner, "up")
	sh(t, "ip", "-n", p.ns, "route", "add", "default", "via", fmt.Sprintf("10.200.%d.%d", a, b+1))
	return p
}

// cut blackholes the traffic between the front and ms2 (see partNet).
func (p *partNet) cut(t *testing.T) {
	ms2 := p.nodes[3] + "/32"
	for _, side := range []struct {
		tc         []string
		dev, match string
	}{{[]string{"tc"}, p.outer, "src"}, {[]string{"tc", "-n", p.ns}, p.inner, "dst"}} {
		tc := func(args ...string) { sh(t, append(append([]string{}, side.tc...), args...)...) }
		tc("qdisc", "add", "dev", side.dev, "root", "handle", "1:", "htb", "default", "1")
		tc("class", "add", "dev", side.dev, "parent", "1:", "classid", "1:1", "htb", "rate", "10gbit", "quantum", "60000")
		tc("class", "add", "dev", side.dev, "parent", "1:", "classid", "1:2", "htb", "rate", "10gbit", "quantum", "60000")
		tc("qdisc", "add", "dev", side.dev, "parent", "1:2", "handle", "2:", "blackhole")
		tc("filter", "add", "dev", side.dev, "parent", "1:", "protocol", "ip", "prio", "1", "u32", "match", "ip", side.match, ms2, "flowid", "1:2")
	}
}

var droppedRe = regexp.MustCompile(`qdisc blackhole 2:[^\n]*\n[^\n]*dropped (\d+)`)

// heal removes the blackholes and returns how many packets each dropped:
// toward the front, toward ms2.
func (p *partNet) heal(t *testing.T) (toFront, toMS2 int) {
	count := func(out string) int {
		m := droppedRe.FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("no blackhole in:\n%s", out)
		}
		n, _ := strconv.Atoi(m[1])
		return n
	}
	toFront = count(sh(t, "tc", "-s", "qdisc", "show", "dev", p.outer))
	toMS2 = count(sh(t, "tc", "-n", p.ns, "-s", "qdisc", "show", "dev", p.inner))
	sh(t, "tc", "qdisc", "del", "dev", p.outer, "root")
	sh(t, "tc", "-n", p.ns, "qdisc", "del", "dev", p.inner, "root")
	return toFront, toMS2
}

// startPartCluster writes the CA, the certificates and the five nodes'
// files (the launcher's format, as prepare writes them) into h.data and
// starts the nodes, the front inside the namespace, waiting until every
// node serves. The test's cleanup stops them.
func startPartCluster(t *testing.T, p *partNet, nusers int) *harness {
	h := &harness{t: t, data: t.TempDir(), pids: map[string]int{}}
	h.ip = [5]string{p.front, p.nodes[0], p.nodes[1], p.nodes[2], p.nodes[3]}
	certs := filepath.Join(h.data, "certs")
	for _, d := range []string{certs, filepath.Join(h.data, "nodes"), filepath.Join(h.data, "logs")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	ca, err := cluster.NewCA("mailsys partition test", 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := ca.WriteFiles(certs); err != nil {
		t.Fatal(err)
	}
	const gossipPort = "7946"
	var seeds []string
	for _, ip := range h.ip {
		seeds = append(seeds, net.JoinHostPort(ip, gossipPort))
	}
	no := false
	var users []node.FileUser
	for i := range nusers {
		u := fmt.Sprintf("user%d@example.test", i)
		h.users = append(h.users, u)
		users = append(users, node.FileUser{Address: u, Password: "pw-" + u})
	}
	var files []string
	for i, l := range layout {
		if err := ca.IssueFiles(certs, l.id, []string{h.ip[i]}, 24*time.Hour); err != nil {
			t.Fatal(err)
		}
		f := node.File{
			ID: l.id, Num: uint32(i + 1), Roles: l.roles.String(), DataDir: filepath.Join(h.data, l.id),
			Listen: h.rpcAddr(l.id), Gossip: seeds[i], Seeds: others(seeds, i),
			Cert: filepath.Join(certs, l.id+".pem"), Key: filepath.Join(certs, l.id+".key"), CA: filepath.Join(certs, "ca.pem"),
		}
		if i == 0 {
			f.Directory.Hold = true
			f.Front = node.FileFront{
				Hostname: "localhost", SMTP: net.JoinHostPort(p.front, smtpPort), IMAP: net.JoinHostPort(p.front, imapPort),
				InsecureAuth: true, Outbound: &no, DKIM: &no, Verify: &no,
				AllowRoot: true, // the test runs as root (it makes namespaces); the address is the namespace's
			}
			f.Users = users
			f.Peers = []string{"ud1", "ud2", "ms1", "ms2"}
		} else {
			f.Directory.Node, f.Directory.Addr = "front", h.rpcAddr("front")
		}
		path := filepath.Join(h.data, "nodes", l.id+".toml")
		if err := writeTOML(path, &f); err != nil {
			t.Fatal(err)
		}
		files = append(files, path)
	}

	var cmds []*exec.Cmd
	t.Cleanup(func() {
		for _, c := range cmds {
			c.Process.Signal(syscall.SIGTERM)
		}
		for _, c := range cmds {
			done := make(chan struct{})
			go func() { c.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(15 * time.Second):
				t.Errorf("node pid %d did not stop within 15 s of SIGTERM", c.Process.Pid)
				c.Process.Kill()
				<-done
			}
		}
	})
	ready := make(chan string, len(files))
	ended := make(chan string, len(files))
	for i, path := range files {
		id := layout[i].id
		args := []string{binary, "-node", path}
		if id == "front" {
			args = append([]string{"ip", "netns", "exec", p.ns}, args...) // ip execs the node: same pid
		}
		cmd := exec.Command(args[0], args[1:]...)
		logf, err := os.OpenFile(filepath.Join(h.data, "logs", id+".log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = logf
		cmd.SysProcAttr = childAttr()
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		err = cmd.Start()
		logf.Close()
		if err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, cmd)
		h.pids[id] = cmd.Process.Pid
		go func() {
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				if sc.Text() == readyLine {
					ready <- id
				}
			}
			ended <- id
		}()
	}
	deadline := time.After(60 * time.Second)
	for range files {
		select {
		case <-ready:
		case id := <-ended:
			t.Fatalf("node %s ended before it served; the end of its log:\n%s", id, tail(filepath.Join(h.data, "logs", id+".log")))
		case <-deadline:
			t.Fatalf("the nodes did not all serve within 60 s; logs in %s", filepath.Join(h.data, "logs"))
		}
	}
	h.creds = h.credentials()
	conn, err := rpc.Dial(h.rpcAddr("front"), "front", h.creds)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	h.dir = rpc.NewDirectory(conn, "front")
	return h
}

// timedLoad is load with every SMTP transaction timed: count messages over
// clients connections, each retried on a 4xx (up to 10 times). It returns
// the tokens that got a 250 by user, the longest transaction (dial, MAIL,
// RCPT, DATA, the final reply) and how many temporary failures came back.
func (h *harness) timedLoad(prefix string, clients, count int) (acked map[string][]string, longest time.Duration, temp int) {
	var mu sync.Mutex
	acked = map[string][]string{}
	var wg sync.WaitGroup
	for c := range clients {
		wg.Go(func() {
			for i := c; i < count; i += clients {
				user := h.users[i%len(h.users)]
				token := fmt.Sprintf("%s-%d", prefix, i)
				for attempt := 0; ; attempt++ {
					if attempt == 10 {
						h.t.Errorf("message %s: still refused after 10 tries", token)
						break
					}
					begin := time.Now()
					err := sendToken(h.ip[0]+":"+smtpPort, user, token)
					took := time.Since(begin)
					mu.Lock()
					longest = max(longest, took)
					if err == nil {
						acked[user] = append(acked[user], token)
					}
					var se *smtp.SMTPError
					temporary := err != nil && !(errors.As(err, &se) && se.Code >= 500)
					if temporary {
						temp++
					}
					mu.Unlock()
					if err != nil && !temporary {
						h.t.Errorf("message %s: %v", token, err)
					}
					if !temporary {
						break
					}
					h.t.Logf("message %s: %v after %v (will send again)", token, err, took.Round(time.Millisecond))
					time.Sleep(100 * time.Millisecond)
				}
			}
		})
	}
	wg.Wait()
	return acked, longest, temp
}

// sendToken sends one message with token as its subject and in its body,
// on a connection of its own, every command bounded by 30 s.
func sendToken(addr, user, token string) error {
	conn, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return err
	}
	c := smtp.NewClient(conn)
	defer c.Close()
	c.CommandTimeout, c.SubmissionTimeout = 30*time.Second, 30*time.Second
	if err := c.Hello("load.example.net"); err != nil {
		return err
	}
	body := "From: load@example.net\r\nTo: " + user + "\r\nSubject: " + token + "\r\nMessage-ID: <" + token + "@example.net>\r\n\r\nbody of " + token + "\r\n" + strings.Repeat("a line of the body\r\n", 40)
	if err := c.SendMail("load@example.net", []string{user}, strings.NewReader(body)); err != nil {
		return err
	}
	return c.Quit()
}

// imapSession logs user in on a connection that no command may hold
// longer than a minute.
func (h *harness) imapSession(user string) (*imapclient.Client, error) {
	conn, err := net.DialTimeout("tcp", h.ip[0]+":"+imapPort, 10*time.Second)
	if err != nil {
		return nil, err
	}
	conn.SetDeadline(time.Now().Add(time.Minute))
	c := imapclient.New(conn, nil)
	if err := c.Login(user, "pw-"+user).Wait(); err != nil {
		c.Close()
		return nil, err
	}
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

var subjectRe = regexp.MustCompile(`(?m)^Subject: (\S+)\r$`)

// fetchBody fetches message seq's body (peeking) and returns its subject.
func fetchBody(c *imapclient.Client, seq uint32) (string, error) {
	msgs, err := c.Fetch(goimap.SeqSetNum(seq), &goimap.FetchOptions{BodySection: []*goimap.FetchItemBodySection{{Peek: true}}}).Collect()
	if err != nil {
		return "", err
	}
	if len(msgs) != 1 || len(msgs[0].BodySection) != 1 {
		return "", fmt.Errorf("FETCH %d: %d messages in the answer", seq, len(msgs))
	}
	m := subjectRe.FindSubmatch(msgs[0].BodySection[0].Bytes)
	if m == nil {
		return "", fmt.Errorf("FETCH %d: no subject in the body", seq)
	}
	return string(m[1]), nil
}

// readAll reads every message body of user's INBOX and returns the
// subjects with how many times each is there.
func (h *harness) readAll(user string) (map[string]int, error) {
	c, err := h.imapSession(user)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	st, err := c.Status("INBOX", &goimap.StatusOptions{NumMessages: true}).Wait()
	if err != nil {
		return nil, err
	}
	got := map[string]int{}
	for seq := uint32(1); seq <= *st.NumMessages; seq++ {
		s, err := fetchBody(c, seq)
		if err != nil {
			return nil, err
		}
		got[s]++
	}
	return got, nil
}

var logTime = regexp.MustCompile(`^time=(\S+) `)

// frontLogged returns the time of the first line of the front's log after
// since that has every one of words, or the zero time.
func (h *harness) frontLogged(since time.Time, words ...string) time.Time {
	b, err := os.ReadFile(filepath.Join(h.data, "logs", "front.log"))
	if err != nil {
		h.t.Fatal(err)
	}
next:
	for l := range strings.SplitSeq(string(b), "\n") {
		for _, w := range words {
			if !strings.Contains(l, w) {
				continue next
			}
		}
		if m := logTime.FindStringSubmatch(l); m != nil {
			if ts, err := time.Parse(time.RFC3339Nano, m[1]); err == nil && ts.After(since) {
				return ts
			}
		}
	}
	return time.Time{}
}

// reader reads a user's messages, 1 to n, one FETCH each, over and over
// until stop, keeping what the last whole pass found.
type reader struct {
	c *imapclient.Client
	n uint32

	mu           sync.Mutex
	prompt       time.Time       // the first NO [UNAVAILABLE] that took under 200 ms
	passed       time.Time       // when the last whole pass began
	last         map[uint32]bool // by sequence number of the last whole pass: unavailable
	longest      time.Duration   // the longest FETCH
	longestAfter time.Duration   // the longest FETCH begun after prompt
	errs         []string        // answers neither a body nor NO [UNAVAILABLE]
}

func (r *reader) run(stop <-chan struct{}) {
	for {
		began := time.Now()
		pass := map[uint32]bool{}
		for seq := uint32(1); seq <= r.n; seq++ {
			select {
			case <-stop:
				return
			default:
			}
			start := time.Now()
			subj, err := fetchBody(r.c, seq)
			took := time.Since(start)
			r.mu.Lock()
			r.longest = max(r.longest, took)
			if !r.prompt.IsZero() && start.After(r.prompt) {
				r.longestAfter = max(r.longestAfter, took)
			}
			switch {
			case err == nil && strings.HasPrefix(subj, "before-"):
				pass[seq] = false
			case err != nil && strings.Contains(err.Error(), "UNAVAILABLE"):
				pass[seq] = true
				if took < 200*time.Millisecond && r.prompt.IsZero() {
					r.prompt = time.Now()
				}
			default:
				r.errs = append(r.errs, fmt.Sprintf("FETCH %d: %q, %v; want a body or NO [UNAVAILABLE]", seq, subj, err))
			}
			r.mu.Unlock()
		}
		r.mu.Lock()
		r.passed, r.last = began, pass
		r.mu.Unlock()
		time.Sleep(20 * time.Millisecond)
	}
}

func (r *reader) firstPrompt() time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.prompt
}

// allPassed reports whether every reader has made a whole pass begun
// after t.
func allPassed(readers []*reader, t time.Time) bool {
	for _, r := range readers {
		r.mu.Lock()
		ok := r.passed.After(t)
		r.mu.Unlock()
		if !ok {
			return false
		}
	}
	return true
}

// TestPartition: the front cut off from ms2 by a network partition (a tc
// blackhole on a veth between two network namespaces; see partNet), ms2
// still running and heard from by the others. The front's breaker of
// ms2 opens, no SMTP or IMAP command takes longer than the call timeout
// plus a second, every delivery gets a 250 and its body lands on ms1, an
// IMAP FETCH of a body on ms2 is NO [UNAVAILABLE] while the others are
// served; healed, new bodies go to ms2 again; every message acknowledged
// is readable, once.
func TestPartition(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process cluster test")
	}
	p := newPartNet(t)
	h := startPartCluster(t, p, 8)
	const bound = cluster.DefaultBreakerCallTimeout + time.Second // the front's call_timeout is the default

	// Before: bodies on both MS nodes.
	all := map[string][]string{}
	merge := func(acked map[string][]string) {
		for u, toks := range acked {
			all[u] = append(all[u], toks...)
		}
	}
	acked, _, _ := h.timedLoad("before", 4, 40)
	merge(acked)
	h.checkDelivered(acked)
	b1, b2 := h.bodies("ms1"), h.bodies("ms2")
	if b1 == 0 || b2 == 0 || b1+b2 != 40 {
		t.Fatalf("before the partition: %d bodies on ms1, %d on ms2, want 40 over both", b1, b2)
	}

	// A session per user, open before the cut, that reads its messages
	// one by one during the partition.
	readers := make([]*reader, len(h.users))
	for i, u := range h.users {
		c, err := h.imapSession(u)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		readers[i] = &reader{c: c, n: uint32(len(acked[u]))}
	}

	p.cut(t)
	cut := time.Now()
	t.Logf("partition: front %s cut off from ms2 %s", p.front, p.nodes[3])
	// A true drop: a connection from ms2's address to the front is not
	// refused, it gets no answer.
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(p.nodes[3])}, Timeout: 500 * time.Millisecond}
	if c, err := d.Dial("tcp", h.ip[0]+":"+smtpPort); err == nil {
		c.Close()
		t.Fatal("a connection from ms2's address reached the front through the partition")
	} else if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
		t.Fatalf("a connection from ms2's address to the front: %v, want a timeout (a silent drop)", err)
	}

	// During: SMTP from several clients, and the readers' FETCHes, until
	// a FETCH of a body on ms2 is refused at once (the breaker is open)
	// and every reader has read all its messages once since.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, r := range readers {
		wg.Go(func() { r.run(stop) })
	}
	acked, smtpLongest, temp := h.timedLoad("part", 6, 60)
	merge(acked)
	var prompt time.Time
	for time.Since(cut) < 20*time.Second {
		if prompt.IsZero() {
			for _, r := range readers {
				if at := r.firstPrompt(); !at.IsZero() && (prompt.IsZero() || at.Before(prompt)) {
					prompt = at
				}
			}
		}
		if !prompt.IsZero() && allPassed(readers, prompt) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	n := 0
	for _, toks := range acked {
		n += len(toks)
	}
	if n != 60 {
		t.Errorf("during the partition: %d of 60 messages acknowledged", n)
	}
	h.checkDelivered(acked)
	d1, d2 := h.bodies("ms1")-b1, h.bodies("ms2")-b2
	var fetchLongest, promptLongest time.Duration
	var no, ok int
	for _, r := range readers {
		fetchLongest = max(fetchLongest, r.longest)
		promptLongest = max(promptLongest, r.longestAfter)
		for _, e := range r.errs {
			t.Error(e)
		}
		for _, unavailable := range r.last {
			if unavailable {
				no++
			} else {
				ok++
			}
		}
	}
	t.Logf("during the partition: %d messages, %d temporary failures, new bodies %d on ms1 and %d on ms2; longest SMTP transaction %v, longest FETCH %v (%v once a FETCH was refused at once)",
		n, temp, d1, d2, smtpLongest.Round(time.Millisecond), fetchLongest.Round(time.Millisecond), promptLongest.Round(time.Millisecond))
	t.Logf("the readers' last pass: %d bodies NO [UNAVAILABLE], %d served; %d were on ms2, %d on ms1", no, ok, b2, b1)
	if d1 != n || d2 != 0 {
		t.Errorf("during the partition %d new bodies went to ms1 and %d to ms2, want all %d on ms1", d1, d2, n)
	}
	if smtpLongest > bound {
		t.Errorf("an SMTP transaction took %v during the partition, want at most %v", smtpLongest, bound)
	}
	if fetchLongest > bound {
		t.Errorf("a FETCH took %v during the partition, want at most %v", fetchLongest, bound)
	}
	if prompt.IsZero() || !allPassed(readers, prompt) {
		t.Errorf("FETCHes of bodies on ms2 not refused at once within 20 s of the cut, or not every message read since")
	} else if no != b2 || ok != b1 {
		t.Errorf("the readers' last pass: %d NO [UNAVAILABLE] and %d served, want %d (ms2's bodies) and %d (ms1's)", no, ok, b2, b1)
	}
	opened := h.frontLogged(cut, "circuit breaker", "peer=ms2")
	if opened.IsZero() {
		t.Error("the front's breaker of ms2 never opened")
	}
	moved := h.lastTry("ms2", cut)
	if hb := h.frontLogged(cut, "peer failed", "peer=ms2"); hb.IsZero() {
		t.Log("the front's heartbeat kept ms2 alive (the other nodes answered for it): the breaker opened on the failed calls")
	} else {
		t.Logf("the front's heartbeat declared ms2 failed %v after the cut", hb.Sub(cut).Round(time.Millisecond))
	}
	t.Logf("breaker of ms2 opened %v after the cut; last body tried on ms2 %v after it; FETCHes of ms2's bodies refused at once %v after it",
		sinceOr(opened, cut), moved.Sub(cut).Round(time.Millisecond), sinceOr(prompt, cut))

	// Healed: new bodies reach ms2 again.
	toFront, toMS2 := p.heal(t)
	healed := time.Now()
	t.Logf("healed; the blackholes dropped %d packets toward the front and %d toward ms2", toFront, toMS2)
	if toFront == 0 || toMS2 == 0 {
		t.Errorf("the blackholes dropped %d packets toward the front and %d toward ms2: the partition cut nothing", toFront, toMS2)
	}
	var back time.Duration
	for round := 0; ; round++ {
		acked, _, _ := h.timedLoad(fmt.Sprintf("healed%d", round), 2, 4)
		merge(acked)
		if h.bodies("ms2") > b2 {
			back = time.Since(healed)
			break
		}
		if time.Since(healed) > 20*time.Second {
			t.Fatalf("no new body on ms2 within 20 s of the healing")
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("traffic back on ms2 %v after the healing", back.Round(time.Millisecond))

	// At the end: every message acknowledged is there once, and readable.
	h.checkDelivered(all)
	for user, toks := range all {
		got, err := h.readAll(user)
		if err != nil {
			t.Errorf("reading %s's messages after the healing: %v", user, err)
			continue
		}
		for _, tok := range toks {
			if got[tok] != 1 {
				t.Errorf("%s: message %s readable %d times, want once", user, tok, got[tok])
			}
		}
	}
	fmt.Printf("partition_test: breaker opened %v after the cut, bodies stopped going to ms2 %v after it, longest command during the partition %v (SMTP) / %v (FETCH), traffic back on ms2 %v after the healing\n",
		sinceOr(opened, cut), moved.Sub(cut).Round(time.Millisecond), smtpLongest.Round(time.Millisecond), fetchLongest.Round(time.Millisecond), back.Round(time.Millisecond))
}

// tail returns the last lines of a log file.
func tail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return strings.Join(lines[max(0, len(lines)-15):], "\n")
}

func sinceOr(t, from time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.Sub(from).Round(time.Millisecond).String()
}
