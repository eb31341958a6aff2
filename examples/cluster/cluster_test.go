package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
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
	"github.com/mailsys/mailsys/cluster/pgdir"
	"github.com/mailsys/mailsys/cluster/rpc"
	"github.com/mailsys/mailsys/internal/pgtest"
	"github.com/mailsys/mailsys/msstore"
)

// binary is the program under test, built once by TestMain.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "mailsys-cluster-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "cluster")
	out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "building the program: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// harness runs the program: five node processes on addresses of their
// own in 127.0.0.0/8, and the test's own gRPC clients of the cluster (a
// certificate from the cluster's CA), to look at what the nodes hold and
// to change the directory as an administrator does.
type harness struct {
	t        *testing.T
	data     string
	ip       [5]string         // front, ud1, ud2, ms1, ms2
	addrs    map[string]string // each node's gRPC address, from its node line
	launcher *exec.Cmd
	pids     map[string]int
	extra    []*exec.Cmd // nodes the test started again itself
	creds    cluster.Credentials
	dir      cluster.Directory
	users    []string
	later    chan string // the launcher's lines after "cluster ready"
	admin    [2]string   // the system administrator printed with -admin: address, password
}

const (
	smtpPort = "2525"
	imapPort = "1143"
	pop3Port = "1110"
	apiPort  = "8080"
	rpcPort  = 7001
)

var nodeIndex = map[string]int{"front": 0, "ud1": 1, "ud2": 2, "ms1": 3, "ms2": 4}

var (
	nodeLine  = regexp.MustCompile(`^node role=(\S+) id=(\S+) pid=(\d+) addr=(\S+)$`)
	adminLine = regexp.MustCompile(`^system administrator: (\S+) password: (\S+)$`)
)

// start runs the launcher with users user0..user(n-1)@example.test and
// waits for "cluster ready".
func start(t *testing.T, nusers int, extra ...string) *harness {
	h := &harness{t: t, data: t.TempDir(), pids: map[string]int{}, addrs: map[string]string{}}
	// A /24 of loopback addresses of its own, so that tests running at
	// once on this machine do not meet.
	base := fmt.Sprintf("127.%d.%d.", 10+rand.IntN(240), 1+rand.IntN(250))
	for i := range h.ip {
		h.ip[i] = base + strconv.Itoa(2+i)
	}
	args := []string{"-data", h.data, "-ip", h.ip[0], "-insecure-auth", "-verify=false", "-outbound=false", "-dkim=false",
		"-smtp", h.ip[0] + ":" + smtpPort, "-submission", "", "-imap", h.ip[0] + ":" + imapPort, "-pop3", h.ip[0] + ":" + pop3Port}
	for i := range nusers {
		u := fmt.Sprintf("user%d@example.test", i)
		h.users = append(h.users, u)
		args = append(args, "-user", u+":pw-"+u)
	}
	extra = slices.Clone(extra)
	if i := slices.Index(extra, "-admin"); i >= 0 && extra[i+1] == "" {
		extra[i+1] = h.ip[0] + ":" + apiPort // the front's
	}
	h.launcher = exec.Command(binary, append(args, extra...)...)
	h.launcher.Stderr = os.Stderr
	out, err := h.launcher.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := h.launcher.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.stop)
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	deadline := time.After(90 * time.Second)
	for ready := false; !ready; {
		select {
		case l, ok := <-lines:
			if !ok {
				h.logTails()
				t.Fatalf("the launcher ended before the cluster was ready; logs in %s", h.data)
			}
			t.Log(l)
			if m := nodeLine.FindStringSubmatch(l); m != nil {
				h.pids[m[2]], _ = strconv.Atoi(m[3])
				h.addrs[m[2]] = m[4]
			}
			if m := adminLine.FindStringSubmatch(l); m != nil {
				h.admin = [2]string{m[1], m[2]}
			}
			ready = strings.HasPrefix(l, "cluster ready ")
		case <-deadline:
			t.Fatal("no cluster ready line within 90 s")
		}
	}
	h.later = make(chan string, 64)
	go func() {
		for l := range lines {
			select {
			case h.later <- l:
			default:
			}
		}
	}()
	want := 5
	if slices.Contains(extra, "-standby") {
		want += 2 // ud1b, ud2b
	}
	if i := slices.Index(extra, "-replicas"); i >= 0 && extra[i+1] == "2" {
		want++ // ms3
	}
	if len(h.pids) != want {
		t.Fatalf("node lines for %v, want %d nodes", h.pids, want)
	}
	h.creds = h.credentials()
	if i := slices.Index(extra, "-postgres"); i >= 0 {
		d, err := pgdir.Open(t.Context(), extra[i+1], pgdir.Config{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Close() })
		h.dir = d
		return h
	}
	conn, err := rpc.Dial(h.rpcAddr("front"), "front", h.creds)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	h.dir = rpc.NewDirectory(conn, "front")
	return h
}

// logTails logs the last lines of every node's log, for a start that
// failed: the temporary directory holding them is gone after the test.
func (h *harness) logTails() {
	files, _ := filepath.Glob(filepath.Join(h.data, "logs", "*.log"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		h.t.Logf("%s, last lines:\n%s", filepath.Base(f), strings.Join(lines[max(0, len(lines)-15):], "\n"))
	}
}

func (h *harness) stop() {
	for _, c := range h.extra {
		c.Process.Signal(syscall.SIGTERM)
	}
	for _, p := range h.pids {
		syscall.Kill(p, syscall.SIGCONT) // a test may have left one stopped
	}
	h.launcher.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- h.launcher.Wait() }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		h.t.Error("the launcher did not stop within 30 s of SIGTERM")
		h.launcher.Process.Kill()
	}
	for _, c := range h.extra {
		c.Wait()
	}
}

func (h *harness) rpcAddr(id string) string {
	if a, ok := h.addrs[id]; ok {
		return a
	}
	return net.JoinHostPort(h.ip[nodeIndex[id]], strconv.Itoa(rpcPort))
}

// credentials issues the test a certificate from the cluster's CA.
func (h *harness) credentials() cluster.Credentials {
	certs := filepath.Join(h.data, "certs")
	ca, err := cluster.LoadCA(filepath.Join(certs, "ca.pem"), filepath.Join(certs, "ca.key"))
	if err != nil {
		h.t.Fatal(err)
	}
	certPEM, keyPEM, err := ca.Issue("tester", nil, time.Hour)
	if err != nil {
		h.t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		h.t.Fatal(err)
	}
	c, err := cluster.NewCredentials(cert, ca.CertPEM())
	if err != nil {
		h.t.Fatal(err)
	}
	return c
}

// bodies counts the bodies MS node id holds, walking its store over gRPC.
func (h *harness) bodies(id string) int {
	conn, err := rpc.Dial(h.rpcAddr(id), id, h.creds)
	if err != nil {
		h.t.Fatal(err)
	}
	defer conn.Close()
	n := 0
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := rpc.NewStorage(conn, id).Walk(ctx, func(msstore.Ref, msstore.Meta) error { n++; return nil }); err != nil {
		h.t.Fatalf("walking %s: %v", id, err)
	}
	return n
}

// restart starts node id again from its configuration file and waits for
// it to say it serves.
func (h *harness) restart(id string) {
	cmd := exec.Command(binary, "-node", filepath.Join(h.data, "nodes", id+".toml"))
	logf, err := os.OpenFile(filepath.Join(h.data, "logs", id+".log"), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		h.t.Fatal(err)
	}
	defer logf.Close()
	cmd.Stderr = logf
	out, err := cmd.StdoutPipe()
	if err != nil {
		h.t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		h.t.Fatal(err)
	}
	h.extra = append(h.extra, cmd)
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if sc.Text() == "ready" {
				ready <- true
			}
		}
		ready <- false
	}()
	select {
	case ok := <-ready:
		if !ok {
			h.t.Fatalf("node %s ended instead of starting again", id)
		}
	case <-time.After(60 * time.Second):
		h.t.Fatalf("node %s not ready again within 60 s", id)
	}
	h.pids[id] = cmd.Process.Pid
}

// load sends count messages from clients connections at once, each to one
// of the users in turn with a token in its subject, and returns the tokens
// that got a 250 by user. A message answered 4xx is sent again (up to 10
// times); a 5xx fails the test. during, if not nil, is called once when
// the first of every three messages has been accepted.
func (h *harness) load(prefix string, clients, count int, during func()) map[string][]string {
	var mu sync.Mutex
	acked := map[string][]string{}
	var wg sync.WaitGroup
	var once sync.Once
	total := 0
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var cl *smtp.Client
			defer func() {
				if cl != nil {
					cl.Quit()
				}
			}()
			for i := c; i < count; i += clients {
				user := h.users[i%len(h.users)]
				token := fmt.Sprintf("%s-%d", prefix, i)
				for attempt := 0; ; attempt++ {
					if attempt == 10 {
						h.t.Errorf("message %s: still refused after 10 tries", token)
						break
					}
					if cl == nil {
						var err error
						if cl, err = smtp.Dial(h.ip[0] + ":" + smtpPort); err != nil {
							time.Sleep(100 * time.Millisecond)
							continue
						}
						cl.Hello("load.example.net")
					}
					body := "From: load@example.net\r\nTo: " + user + "\r\nSubject: " + token + "\r\nMessage-ID: <" + token + "@example.net>\r\n\r\n" + strings.Repeat("a line of the body\r\n", 40)
					err := cl.SendMail("load@example.net", []string{user}, strings.NewReader(body))
					var se *smtp.SMTPError
					switch {
					case err == nil:
						mu.Lock()
						acked[user] = append(acked[user], token)
						total++
						if during != nil && total >= count/3 {
							once.Do(func() { go during() })
						}
						mu.Unlock()
					case errors.As(err, &se) && se.Code >= 500:
						h.t.Errorf("message %s: %v", token, err)
					default:
						if errors.As(err, &se) {
							h.t.Logf("message %s: %v (will send again)", token, err)
						}
						cl.Close()
						cl = nil
						time.Sleep(200 * time.Millisecond)
						continue
					}
					break
				}
			}
		}()
	}
	wg.Wait()
	return acked
}

// subjects returns the subjects in user's INBOX, with how many times each
// is there.
func (h *harness) subjects(user string) (map[string]int, error) {
	c, err := imapclient.DialInsecure(h.ip[0]+":"+imapPort, nil)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if err := c.Login(user, "pw-"+user).Wait(); err != nil {
		return nil, err
	}
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		return nil, err
	}
	msgs, err := c.Fetch(goimap.SeqSet{goimap.SeqRange{Start: 1, Stop: 0}}, &goimap.FetchOptions{Envelope: true}).Collect()
	if err != nil && !strings.Contains(err.Error(), "No matching messages") {
		return nil, err
	}
	got := map[string]int{}
	for _, m := range msgs {
		got[m.Envelope.Subject]++
	}
	c.Logout().Wait()
	return got, nil
}

// checkDelivered waits (up to a minute) until every acknowledged message
// is in its user's INBOX, then checks that each is there exactly once.
func (h *harness) checkDelivered(acked map[string][]string) {
	deadline := time.Now().Add(time.Minute)
	for user, tokens := range acked {
		for {
			got, err := h.subjects(user)
			missing := 0
			if err == nil {
				for _, tok := range tokens {
					if got[tok] == 0 {
						missing++
					}
				}
			}
			if err == nil && missing == 0 {
				for _, tok := range tokens {
					if got[tok] != 1 {
						h.t.Errorf("%s: message %s is there %d times", user, tok, got[tok])
					}
				}
				break
			}
			if time.Now().After(deadline) {
				h.t.Fatalf("%s: %d of %d acknowledged messages missing after a minute (last error %v)", user, missing, len(tokens), err)
			}
			time.Sleep(500 * time.Millisecond)
		}
	}
}

// lastTry returns the time of the front's last attempt to store a body on
// node id after since, from its log, or since if none.
func (h *harness) lastTry(id string, since time.Time) time.Time {
	b, err := os.ReadFile(filepath.Join(h.data, "logs", "front.log"))
	if err != nil {
		h.t.Fatal(err)
	}
	last := since
	for l := range strings.SplitSeq(string(b), "\n") {
		if !strings.Contains(l, "body not stored") || !strings.Contains(l, "node="+id) {
			continue
		}
		f := strings.Fields(l)
		if len(f) == 0 || !strings.HasPrefix(f[0], "time=") {
			continue
		}
		if ts, err := time.Parse(time.RFC3339Nano, strings.TrimPrefix(f[0], "time=")); err == nil && ts.After(last) {
			last = ts
		}
	}
	return last
}

// TestKillMS: an MS node killed with SIGKILL in the middle of an SMTP load
// (10 clients, 2,000 messages) costs no message and no 5xx; new bodies
// stop going to it at once; back, it takes its share by weight again. A
// mask and new weights set in the directory take effect without a
// restart.
func TestKillMS(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process cluster test")
	}
	h := start(t, 10, "-supervise=false") // the test restarts ms1 itself
	var killed time.Time
	acked := h.load("kill", 10, 2000, func() {
		killed = time.Now()
		if err := syscall.Kill(h.pids["ms1"], syscall.SIGKILL); err != nil {
			t.Error(err)
		}
	})
	n := 0
	for _, toks := range acked {
		n += len(toks)
	}
	if n != 2000 {
		t.Fatalf("%d messages acknowledged, want 2000", n)
	}
	h.checkDelivered(acked)
	if killed.IsZero() {
		t.Fatal("ms1 was never killed")
	}
	gap := h.lastTry("ms1", killed).Sub(killed)
	t.Logf("ms1 killed: the front last tried to store a body there %v after the kill", gap.Round(time.Millisecond))
	fmt.Printf("cluster_test: new bodies stopped going to the killed MS node within %v\n", gap.Round(time.Millisecond))
	if gap > 2*time.Second {
		t.Errorf("bodies still went to the dead node %v after the kill, want at most 2 s", gap)
	}

	// Back, ms1 takes its share again (10:10).
	h.restart("ms1")
	time.Sleep(3 * time.Second) // its heartbeat reaches the front
	h.share("back", 400, 0.5)

	// Masked in the directory: no new body goes to ms2.
	ctx := t.Context()
	if err := h.dir.SetMasked(ctx, "ms2", true); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second)
	h.share("masked", 200, 1)
	if err := h.dir.SetMasked(ctx, "ms2", false); err != nil {
		t.Fatal(err)
	}
	// Weights changed online: 30:10.
	if err := h.dir.SetWeight(ctx, "ms1", 30); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second)
	h.share("weights", 400, 0.75)
}

// share delivers count messages and checks that ms1 got its share want1
// of the new bodies (±0.05), ms2 the rest.
func (h *harness) share(what string, count int, want1 float64) {
	t := h.t
	t.Helper()
	b1, b2 := h.bodies("ms1"), h.bodies("ms2")
	h.checkDelivered(h.load(what, 4, count, nil))
	d1, d2 := h.bodies("ms1")-b1, h.bodies("ms2")-b2
	got := float64(d1) / float64(d1+d2)
	t.Logf("%s: %d new bodies on ms1, %d on ms2: ms1's share %.3f, want %.3f", what, d1, d2, got, want1)
	if d1+d2 != count || got < want1-0.05 || got > want1+0.05 {
		t.Errorf("%s: %d new bodies on ms1 and %d on ms2 for %d messages; want ms1's share %.2f ±0.05", what, d1, d2, count, want1)
	}
}

// TestPostgres runs the cluster on a PostgreSQL directory (a real server,
// started for the test): users spread over both UD nodes, mail delivered
// and read, and a mask set in PostgreSQL by another client reaches the
// front without a restart.
func TestPostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process cluster test")
	}
	dsn := pgtest.Start(t)
	h := start(t, 6, "-postgres", dsn)
	ctx := t.Context()
	nodes := map[string]int{}
	for _, u := range h.users {
		p, err := h.dir.LookupAddress(ctx, u)
		if err != nil {
			t.Fatal(err)
		}
		nodes[p.Node]++
	}
	if nodes["ud1"] == 0 || nodes["ud2"] == 0 {
		t.Fatalf("users by UD node %v, want both", nodes)
	}
	h.share("both", 200, 0.5)
	if err := h.dir.SetMasked(ctx, "ms2", true); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second)
	h.share("masked", 100, 1)
}

// TestSupervised: under the launcher's supervisor, each kind of node
// killed with SIGKILL (an MS, a UD, the front) is started again by
// itself, the event is in the supervisor's log with its time, and mail is
// delivered and read again.
func TestSupervised(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process cluster test")
	}
	h := start(t, 4, "-admin", "")
	for _, id := range []string{"ms1", "ud1", "front"} {
		killed := time.Now()
		if err := syscall.Kill(h.pids[id], syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		deadline := time.After(60 * time.Second)
		for restarted := false; !restarted; {
			select {
			case l := <-h.later:
				if m := regexp.MustCompile(`^node restarted role=\S+ id=(\S+) pid=(\d+)`).FindStringSubmatch(l); m != nil && m[1] == id {
					old := h.pids[id]
					h.pids[id], _ = strconv.Atoi(m[2])
					if h.pids[id] == old {
						t.Fatalf("%s restarted with its old pid %d", id, old)
					}
					restarted = true
				}
			case <-deadline:
				t.Fatalf("%s not restarted within 60 s of SIGKILL", id)
			}
		}
		t.Logf("%s killed and serving again after %v", id, time.Since(killed).Round(time.Millisecond))
		ev := h.supervisorEvent(id, "exited", killed)
		if ev == nil || ev["signal"] != "killed" {
			t.Fatalf("no supervisor event of %s's kill after %v: %v", id, killed, ev)
		}
		// Service resumes: the heartbeat has seen the node again.
		time.Sleep(3 * time.Second)
		h.checkDelivered(h.load("after-"+id, 2, 20, nil))
	}
	h.checkAdmin()
}

// checkAdmin reads the supervisor's events and the nodes through the
// front's administration API after TestSupervised's kills, and changes a
// weight and a mask there.
func (h *harness) checkAdmin() {
	t := h.t
	api := "http://" + h.ip[0] + ":" + apiPort
	if h.admin[0] == "" {
		t.Fatal("no system administrator printed with -admin")
	}
	call := func(method, path, token string, body, out any) int {
		t.Helper()
		var rd io.Reader
		switch b := body.(type) {
		case nil:
		case string:
			rd = strings.NewReader(b)
		default:
			j, _ := json.Marshal(b)
			rd = bytes.NewReader(j)
		}
		req, _ := http.NewRequest(method, api+path, rd)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		data, _ := io.ReadAll(resp.Body)
		if out != nil && resp.StatusCode < 300 {
			if err := json.Unmarshal(data, out); err != nil {
				t.Fatalf("%s %s: %s: %v", method, path, data, err)
			}
		}
		return resp.StatusCode
	}
	var login struct{ Token string }
	if got := call("POST", "/api/v1/login", "", map[string]string{"user": h.admin[0], "password": h.admin[1]}, &login); got != 200 {
		t.Fatalf("login of %s: %d", h.admin[0], got)
	}
	var evs struct {
		Events []struct{ Module, Kind, Signal string }
	}
	if got := call("GET", "/api/v1/events?limit=1000", login.Token, nil, &evs); got != 200 {
		t.Fatalf("events: %d", got)
	}
	for _, id := range []string{"ms1", "ud1", "front"} {
		killed, started := false, false
		for _, e := range evs.Events {
			killed = killed || e.Module == id && e.Kind == "exited" && e.Signal == "killed"
			started = started || killed && e.Module == id && e.Kind == "started"
		}
		if !killed || !started {
			t.Errorf("events: %s's kill and restart missing from %+v", id, evs.Events)
		}
	}
	type nodeJSON struct {
		ID, Roles       string
		Weight          int
		Masked, Healthy bool
	}
	var nodes struct{ Nodes []nodeJSON }
	deadline := time.Now().Add(20 * time.Second)
	for {
		if got := call("GET", "/api/v1/nodes", login.Token, nil, &nodes); got != 200 {
			t.Fatalf("nodes: %d", got)
		}
		healthy := 0
		for _, n := range nodes.Nodes {
			if n.Healthy {
				healthy++
			}
		}
		if len(nodes.Nodes) == 5 && healthy == 5 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("nodes after the restarts: %+v, want 5 healthy", nodes.Nodes)
		}
		time.Sleep(200 * time.Millisecond)
	}
	var ms2 nodeJSON
	if got := call("PATCH", "/api/v1/nodes/ms2", login.Token, map[string]any{"weight": 7, "masked": true}, &ms2); got != 200 || ms2.Weight != 7 || !ms2.Masked {
		t.Fatalf("PATCH ms2: %d %+v", got, ms2)
	}
	reg, err := h.dir.Registry(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := reg.Node("ms2"); n.Weight != 7 || !n.Masked {
		t.Fatalf("the registry's ms2 after PATCH: %+v", n)
	}
	for body, want := range map[string]int{`{"weight": 10001}`: 400, `{}`: 400, `{"wieght": 1}`: 400} {
		if got := call("PATCH", "/api/v1/nodes/ms2", login.Token, body, nil); got != want {
			t.Errorf("PATCH ms2 %s: %d, want %d", body, got, want)
		}
	}
	if got := call("PATCH", "/api/v1/nodes/nosuch", login.Token, map[string]any{"weight": 1}, nil); got != 404 {
		t.Errorf("PATCH an unknown node: %d, want 404", got)
	}
	// The front's metrics report its peers' health.
	req, _ := http.NewRequest("GET", api+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+login.Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`mailsys_cluster_peer_up{peer="ms1"} 1`, `mailsys_cluster_peer_up{peer="ud2"} 1`,
		`mailsys_cluster_peer_breaker_state{peer="ud1",state="closed"} 1`, `mailsys_connections_total{`} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics: no %s in\n%.3000s", want, body)
		}
	}
}

// supervisorEvent returns the first event of the supervisor's log for
// module id of kind kind at or after since.
func (h *harness) supervisorEvent(id, kind string, since time.Time) map[string]any {
	b, err := os.ReadFile(filepath.Join(h.data, "logs", "supervisor.jsonl"))
	if err != nil {
		h.t.Fatal(err)
	}
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var ev map[string]any
		if err := json.Unmarshal([]byte(l), &ev); err != nil {
			h.t.Fatalf("supervisor.jsonl: %q: %v", l, err)
		}
		at, _ := time.Parse(time.RFC3339Nano, fmt.Sprint(ev["time"]))
		if ev["module"] == id && ev["kind"] == kind && !at.Before(since) {
			return ev
		}
	}
	return nil
}

// TestStopUD: a UD node stopped with SIGSTOP gives its users temporary
// errors, never a hang past the heartbeat's timeout plus a second, while
// the other node's users work normally; SIGCONT brings it back by itself.
func TestStopUD(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process cluster test")
	}
	h := start(t, 6)
	ctx := t.Context()
	var on1, on2 string
	for _, u := range h.users {
		p, err := h.dir.LookupAddress(ctx, u)
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case p.Node == "ud1" && on1 == "":
			on1 = u
		case p.Node == "ud2" && on2 == "":
			on2 = u
		}
	}
	if on1 == "" || on2 == "" {
		t.Fatalf("users not spread over both UD nodes")
	}
	h.checkDelivered(h.load("before", 2, 12, nil))

	// A session of a user of ud1, open before the stop.
	s1 := h.imapLogin(on1)
	defer s1.Close()
	if _, err := s1.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(h.pids["ud1"], syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	const bound = 3 * time.Second // the heartbeat's ~2 s, plus 1 s
	var sawTemp bool
	for time.Since(stopped) < 8*time.Second {
		begin := time.Now()
		_, err := s1.Fetch(goimap.SeqSet{goimap.SeqRange{Start: 1, Stop: 0}}, &goimap.FetchOptions{Flags: true}).Collect()
		took := time.Since(begin)
		if took > bound {
			t.Errorf("a FETCH of a user of the stopped node took %v, want at most %v", took, bound)
		}
		if err != nil {
			if !strings.Contains(err.Error(), "UNAVAILABLE") {
				t.Errorf("FETCH of a user of the stopped node: %v, want NO [UNAVAILABLE]", err)
			}
			sawTemp = true
		}
		// The other node's user is served meanwhile.
		begin = time.Now()
		if _, err := h.subjects(on2); err != nil {
			t.Errorf("user of the running node while ud1 is stopped: %v", err)
		} else if took := time.Since(begin); took > time.Second {
			t.Errorf("user of the running node took %v to log in and fetch", took)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if !sawTemp {
		t.Error("no temporary error for the stopped node's user in 8 s")
	}
	// New logins, POP3 and SMTP for ud1's user: temporary errors, at once.
	begin := time.Now()
	c, err := imapclient.DialInsecure(h.ip[0]+":"+imapPort, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = c.Login(on1, "pw-"+on1).Wait()
	c.Close()
	if err == nil || !strings.Contains(err.Error(), "UNAVAILABLE") || time.Since(begin) > time.Second {
		t.Errorf("IMAP login of the stopped node's user: %v after %v, want NO [UNAVAILABLE] at once", err, time.Since(begin))
	}
	if r := pop3Login(h.ip[0]+":"+pop3Port, on1); !strings.HasPrefix(r, "-ERR [SYS/TEMP]") {
		t.Errorf("POP3 login of the stopped node's user: %q, want -ERR [SYS/TEMP]", r)
	}
	if err := sendOne(h.ip[0]+":"+smtpPort, on1); err == nil || !strings.Contains(err.Error(), "451") {
		t.Errorf("SMTP to the stopped node's user: %v, want 451", err)
	}

	if err := syscall.Kill(h.pids["ud1"], syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	resumed := time.Now()
	for {
		if _, err := h.subjects(on1); err == nil {
			t.Logf("ud1 serves again %v after SIGCONT", time.Since(resumed).Round(time.Millisecond))
			break
		}
		if time.Since(resumed) > 15*time.Second {
			t.Fatal("ud1's user not served again 15 s after SIGCONT")
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (h *harness) imapLogin(user string) *imapclient.Client {
	c, err := imapclient.DialInsecure(h.ip[0]+":"+imapPort, nil)
	if err != nil {
		h.t.Fatal(err)
	}
	if err := c.Login(user, "pw-"+user).Wait(); err != nil {
		h.t.Fatal(err)
	}
	return c
}

// pop3Login logs in over POP3 and returns the answer to PASS.
func pop3Login(addr, user string) string {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err.Error()
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(c)
	r.ReadString('\n')
	fmt.Fprintf(c, "USER %s\r\n", user)
	r.ReadString('\n')
	fmt.Fprintf(c, "PASS pw-%s\r\n", user)
	l, _ := r.ReadString('\n')
	return strings.TrimSpace(l)
}

func sendOne(addr, to string) error {
	c, err := smtp.Dial(addr)
	if err != nil {
		return err
	}
	defer c.Close()
	return c.SendMail("one@example.net", []string{to}, strings.NewReader("Subject: one\r\n\r\nbody\r\n"))
}
