package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	goimap "github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/mailsys/mailsys/cluster"
	"github.com/mailsys/mailsys/cluster/rpc"
)

// group returns UD group id as the directory has it now.
func (h *harness) group(id string) cluster.Group {
	h.t.Helper()
	reg, err := h.dir.Registry(h.t.Context())
	if err != nil {
		h.t.Fatal(err)
	}
	g, ok := reg.Group(id)
	if !ok {
		h.t.Fatalf("no group %s in the registry: %+v", id, reg.Groups)
	}
	return g
}

// waitGroup waits (up to d) until group id satisfies cond.
func (h *harness) waitGroup(id string, d time.Duration, what string, cond func(cluster.Group) bool) cluster.Group {
	h.t.Helper()
	deadline := time.Now().Add(d)
	for {
		g := h.group(id)
		if cond(g) {
			return g
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("group %s not %s within %v: %+v", id, what, d, g)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// usersOn returns the users the directory places on UD group or node id.
func (h *harness) usersOn(id string) []string {
	var out []string
	for _, u := range h.users {
		p, err := h.dir.LookupAddress(h.t.Context(), u)
		if err != nil {
			h.t.Fatal(err)
		}
		if p.Node == id {
			out = append(out, u)
		}
	}
	if len(out) == 0 {
		h.t.Fatalf("no user on %s", id)
	}
	return out
}

// flagAll sets \Flagged on every message in user's INBOX and returns how
// many it flagged.
func (h *harness) flagAll(user string) int {
	c := h.imapLogin(user)
	defer c.Close()
	sel, err := c.Select("INBOX", nil).Wait()
	if err != nil {
		h.t.Fatal(err)
	}
	if sel.NumMessages == 0 {
		return 0
	}
	all := goimap.SeqSet{goimap.SeqRange{Start: 1, Stop: 0}}
	if err := c.Store(all, &goimap.StoreFlags{Op: goimap.StoreFlagsAdd, Silent: true, Flags: []goimap.Flag{goimap.FlagFlagged}}, nil).Close(); err != nil {
		h.t.Fatalf("%s: STORE: %v", user, err)
	}
	return int(sel.NumMessages)
}

// flagged counts the messages of user's INBOX with \Flagged.
func (h *harness) flagged(user string) int {
	c := h.imapLogin(user)
	defer c.Close()
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		h.t.Fatal(err)
	}
	data, err := c.Search(&goimap.SearchCriteria{Flag: []goimap.Flag{goimap.FlagFlagged}}, nil).Wait()
	if err != nil {
		h.t.Fatal(err)
	}
	return len(data.AllSeqNums())
}

// prober logs in as user over IMAP and POP3 every 25 ms until stop,
// SELECTs and FETCHes over IMAP, and records when sessions failed.
type prober struct {
	mu       sync.Mutex
	fails    []time.Time
	oks      []time.Time
	failText string
}

func (p *prober) run(h *harness, user string, stop <-chan struct{}) {
	for {
		select {
		case <-stop:
			return
		default:
		}
		at := time.Now()
		err := probeIMAP(h, user)
		if err == nil {
			if l := pop3Login(h.ip[0]+":"+pop3Port, user); !strings.HasPrefix(l, "+OK") {
				err = fmt.Errorf("POP3 PASS: %s", l)
			}
		}
		p.mu.Lock()
		if err != nil {
			p.fails = append(p.fails, at)
			p.failText = err.Error()
		} else {
			p.oks = append(p.oks, at)
		}
		p.mu.Unlock()
		time.Sleep(25 * time.Millisecond)
	}
}

func probeIMAP(h *harness, user string) error {
	conn, err := net.DialTimeout("tcp", h.ip[0]+":"+imapPort, 5*time.Second)
	if err != nil {
		return err
	}
	conn.SetDeadline(time.Now().Add(10 * time.Second)) // a hang fails the probe
	c := imapclient.New(conn, nil)
	defer c.Close()
	if err := c.Login(user, "pw-"+user).Wait(); err != nil {
		return fmt.Errorf("LOGIN: %w", err)
	}
	sel, err := c.Select("INBOX", nil).Wait()
	if err != nil {
		return fmt.Errorf("SELECT: %w", err)
	}
	if sel.NumMessages > 0 {
		last := goimap.SeqSet{goimap.SeqRange{Start: sel.NumMessages, Stop: sel.NumMessages}}
		if _, err := c.Fetch(last, &goimap.FetchOptions{Flags: true, Envelope: true}).Collect(); err != nil {
			return fmt.Errorf("FETCH: %w", err)
		}
	}
	return c.Logout().Wait()
}

// gap is how long after t0 sessions kept failing: from t0 to the first
// success after the last failure; 0 if none failed after t0.
func (p *prober) gap(t0 time.Time) (time.Duration, int, string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var lastFail time.Time
	n := 0
	for _, f := range p.fails {
		if f.After(t0) {
			n++
			lastFail = f
		}
	}
	if lastFail.IsZero() {
		return 0, 0, ""
	}
	for _, ok := range p.oks {
		if ok.After(lastFail) {
			return ok.Sub(t0), n, p.failText
		}
	}
	return time.Since(t0), n, p.failText
}

// TestStandbyKill: the primary of a UD group is killed with SIGKILL in the
// middle of a mixed load (SMTP deliveries to every user, IMAP and POP3
// sessions of the group's users); its standby is promoted with the next
// epoch, logins and deliveries go on from it after a gap (measured and
// printed), every message that got a 250 is there exactly once, and no
// flag set before the kill is lost. The killed node, started again,
// follows the new primary and catches up from its log, without a full
// copy.
func TestStandbyKill(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process cluster test")
	}
	h := start(t, 8, "-standby", "-supervise=false") // the test restarts the old primary itself
	g := h.waitGroup("ud1", 20*time.Second, "in step", func(g cluster.Group) bool { return g.Synced })
	old, standby := g.Primary, g.Standby
	mine := h.usersOn("ud1")

	pre := h.load("pre", 4, 160, nil)
	h.checkDelivered(pre)
	flags := map[string]int{}
	for _, u := range h.users {
		flags[u] = h.flagAll(u)
	}

	stop := make(chan struct{})
	var probes sync.WaitGroup
	p := &prober{}
	for _, u := range mine[:min(2, len(mine))] {
		probes.Go(func() { p.run(h, u, stop) })
	}
	var killed time.Time
	acked := h.load("kill", 8, 1200, func() {
		killed = time.Now()
		if err := syscall.Kill(h.pids[old], syscall.SIGKILL); err != nil {
			t.Error(err)
		}
	})
	time.Sleep(500 * time.Millisecond)
	close(stop)
	probes.Wait()
	if killed.IsZero() {
		t.Fatal("the primary was never killed")
	}
	ng := h.group("ud1")
	if ng.Primary != standby || ng.Epoch != g.Epoch+1 || ng.Standby != old {
		t.Fatalf("after the kill: %+v, want %s primary at epoch %d with %s its standby", ng, standby, g.Epoch+1, old)
	}
	gap, fails, why := p.gap(killed)
	t.Logf("sessions failed %d times after the kill (last: %s)", fails, why)
	fmt.Printf("standby_test: failover gap %v (UD primary killed; IMAP/POP3 sessions of its users served again by the promoted standby)\n", gap.Round(time.Millisecond))
	if gap > 6*time.Second {
		t.Errorf("failover gap %v, want the heartbeat's timeout plus the promotion (a few seconds)", gap)
	}
	n := 0
	for _, toks := range acked {
		n += len(toks)
	}
	if n != 1200 {
		t.Fatalf("%d messages acknowledged, want 1200", n)
	}
	h.checkDelivered(pre)
	h.checkDelivered(acked)
	for u, want := range flags {
		if got := h.flagged(u); got < want {
			t.Errorf("%s: %d messages flagged, %d were before the kill", u, got, want)
		}
	}

	// The old primary, back, follows the new one from its log.
	h.restart(old)
	h.waitGroup("ud1", 20*time.Second, "in step again", func(g cluster.Group) bool { return g.Synced && g.Standby == old })
	logb, err := os.ReadFile(filepath.Join(h.data, "logs", standby+".log"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(logb), "full copy") {
		t.Error("the returning node got a full copy; it was away briefly")
	}
	if !strings.Contains(string(logb), "catching up from the log") {
		t.Error("no catch-up from the log on the new primary")
	}
	h.checkDelivered(h.load("after", 2, 40, nil))
}

// TestStandbyPause: the primary of a UD group is stopped with SIGSTOP
// until its standby has been promoted, then resumed: a write sent to it
// directly is refused (fenced), it follows the new primary from its log,
// and nothing acknowledged before, during or after is lost.
func TestStandbyPause(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process cluster test")
	}
	h := start(t, 6, "-standby", "-supervise=false")
	g := h.waitGroup("ud1", 20*time.Second, "in step", func(g cluster.Group) bool { return g.Synced })
	old, standby := g.Primary, g.Standby
	mine := h.usersOn("ud1")
	before := h.load("before", 3, 60, nil)
	h.checkDelivered(before)

	if err := syscall.Kill(h.pids[old], syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	ng := h.waitGroup("ud1", 15*time.Second, "promoted", func(g cluster.Group) bool { return g.Primary == standby })
	t.Logf("%s promoted %v after %s was stopped: %+v", standby, time.Since(stopped).Round(time.Millisecond), old, ng)
	during := h.load("during", 3, 60, nil)

	// Resumed: a write straight to the old primary is refused.
	conn, err := rpc.Dial(h.rpcAddr(old), old, h.creds)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	udb := rpc.NewUserDB(conn, old)
	defer udb.Close()
	p, err := h.dir.LookupAddress(t.Context(), mine[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(h.pids[old], syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
	defer cancel()
	_, err = udb.CreateFolder(ctx, p.User, "Split-"+old, "")
	if err == nil {
		t.Fatalf("the old primary %s took a write after %s was promoted", old, standby)
	}
	t.Logf("write to the resumed old primary: %v", err)
	if !cluster.IsUnavailable(err) {
		t.Errorf("write to the old primary: %v, want a temporary refusal (fenced)", err)
	}
	h.waitGroup("ud1", 20*time.Second, "in step with the old primary as standby", func(g cluster.Group) bool { return g.Synced && g.Standby == old })
	// The folder is nowhere: not on the new primary either.
	c := h.imapLogin(mine[0])
	list, err := c.List("", "*", nil).Collect()
	c.Close()
	if err != nil {
		t.Fatal(err)
	}
	if slices.ContainsFunc(list, func(d *goimap.ListData) bool { return strings.HasPrefix(d.Mailbox, "Split-") }) {
		t.Error("the refused write reached the new primary")
	}
	logb, err := os.ReadFile(filepath.Join(h.data, "logs", old+".log"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(logb), "fenced") {
		t.Error("the old primary's log does not say it was fenced")
	}
	after := h.load("after", 3, 60, nil)
	for _, a := range []map[string][]string{before, during, after} {
		h.checkDelivered(a)
	}
	if _, err := udb.CreateFolder(ctx, p.User, "Still-"+old, ""); err == nil {
		t.Error("the old primary, now the standby, took a write")
	}
}

// TestReplicasKillMS: with two replicas, every body is on two MS nodes;
// one killed with SIGKILL for good, every message is still readable; once
// it is removed from the registry, the front's repair walk gives every
// body its second copy back on the third node.
func TestReplicasKillMS(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process cluster test")
	}
	h := start(t, 6, "-replicas", "2", "-supervise=false")
	acked := h.load("two", 6, 300, nil)
	h.checkDelivered(acked)
	total := 0
	for _, id := range []string{"ms1", "ms2", "ms3"} {
		total += h.bodies(id)
	}
	if total != 600 {
		t.Fatalf("%d bodies on the MS nodes, want 600 (two copies of 300)", total)
	}
	if err := syscall.Kill(h.pids["ms2"], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second) // the heartbeat declares it dead
	h.readBodies(acked)
	if err := h.dir.RemoveNode(t.Context(), "ms2"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		b, err := os.ReadFile(filepath.Join(h.data, "logs", "front.log"))
		if err != nil {
			t.Fatal(err)
		}
		if i := strings.Index(string(b), "repair walk done"); i >= 0 {
			line, _, _ := strings.Cut(string(b[i:]), "\n")
			t.Logf("front: %s", line)
			if !strings.Contains(line, "lost_bodies=0 failed=0") {
				t.Fatalf("repair incomplete: %s", line)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no repair walk done within 60 s of removing ms2")
		}
		time.Sleep(200 * time.Millisecond)
	}
	if n := h.bodies("ms1") + h.bodies("ms3"); n != 600 {
		t.Errorf("%d bodies on ms1 and ms3 after the repair, want 600", n)
	}
	h.readBodies(acked)
}

// readBodies fetches the body of every acknowledged message and checks it
// has its subject.
func (h *harness) readBodies(acked map[string][]string) {
	h.t.Helper()
	for user, tokens := range acked {
		c := h.imapLogin(user)
		if _, err := c.Select("INBOX", nil).Wait(); err != nil {
			h.t.Fatal(err)
		}
		msgs, err := c.Fetch(goimap.SeqSet{goimap.SeqRange{Start: 1, Stop: 0}}, &goimap.FetchOptions{BodySection: []*goimap.FetchItemBodySection{{}}}).Collect()
		c.Close()
		if err != nil {
			h.t.Fatalf("%s: FETCH BODY[]: %v", user, err)
		}
		seen := map[string]bool{}
		for _, m := range msgs {
			for _, b := range m.BodySection {
				for _, tok := range tokens {
					if strings.Contains(string(b.Bytes), "Subject: "+tok+"\r\n") {
						seen[tok] = true
					}
				}
			}
		}
		for _, tok := range tokens {
			if !seen[tok] {
				h.t.Errorf("%s: body of %s not readable", user, tok)
			}
		}
	}
}
