package mailsys_test

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/mailsys/mailsys"
	"github.com/mailsys/mailsys/metrics"
	"github.com/mailsys/mailsys/userdata"
)

// countingObserver records the Observer's calls.
type countingObserver struct {
	mu        sync.Mutex
	delivered map[string]int
	bytes     int64
}

func (o *countingObserver) Delivered(u userdata.User, size int64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.delivered[u.Address]++
	o.bytes += size
}

func (o *countingObserver) Submitted(userdata.User, int) {}

// scrape fetches url and returns its samples, keyed by the sample's name
// with its labels as the text format writes them.
func scrape(t *testing.T, url string) map[string]float64 {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second}
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("Accept", "text/plain") // the text format, not protobuf
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("scrape: %s: %s", resp.Status, b)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			t.Fatalf("scrape: bad line %q", line)
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("scrape: bad value in %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestMetricsSystem runs a System with metrics, sends it a message over
// SMTP, logs in over IMAP and POP3 (a wrong password once each), scrapes
// its handler over HTTP and checks the figures moved as they should.
func TestMetricsSystem(t *testing.T) {
	m := metrics.New()
	obs := &countingObserver{delivered: map[string]int{}}
	sys, err := mailsys.Open(t.Context(), mailsys.Config{DataDir: t.TempDir(), Hostname: "mx.example.test",
		SMTPAddr: "127.0.0.1:0", IMAPAddr: "127.0.0.1:0", POP3Addr: "127.0.0.1:0", InsecureAuth: true,
		DisableVerify: true, DisableOutbound: true, Metrics: m, Observer: obs, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sys.Shutdown(t.Context()) })
	if sys.Metrics() != m {
		t.Fatal("System.Metrics is not Config.Metrics")
	}
	if _, err := sys.EnsureUser(t.Context(), "ann@example.test", "pw"); err != nil {
		t.Fatal(err)
	}
	if err := sys.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	web := httptest.NewServer(sys.Metrics().Handler())
	t.Cleanup(web.Close)
	addrs := sys.Addrs()
	smtpAddr, imapAddr, popAddr := addrs[0].String(), addrs[1].String(), addrs[2].String()

	msg := "From: bob@example.org\r\nTo: ann@example.test\r\nSubject: hi\r\n\r\nhello\r\n"
	sc, err := smtp.Dial(smtpAddr)
	if err != nil {
		t.Fatal(err)
	}
	if err := sc.SendMail("bob@example.org", []string{"ann@example.test"}, strings.NewReader(msg)); err != nil {
		t.Fatal(err)
	}
	sc.Quit()
	// Delivery runs after the 250: wait for it.
	deadline := time.Now().Add(10 * time.Second)
	for scrape(t, web.URL)[`mailsys_deliveries_total{outcome="delivered"}`] < 1 {
		if time.Now().After(deadline) {
			t.Fatal("no delivery counted within 10 s")
		}
		time.Sleep(20 * time.Millisecond)
	}

	dial := func(addr string) (net.Conn, *bufio.Reader) {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(15 * time.Second))
		r := bufio.NewReader(c)
		if _, err := r.ReadString('\n'); err != nil {
			t.Fatal(err)
		}
		return c, r
	}
	imapCmd := func(c net.Conn, r *bufio.Reader, cmd string) string {
		fmt.Fprintf(c, "a %s\r\n", cmd)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				t.Fatalf("%s: %v", cmd, err)
			}
			if strings.HasPrefix(line, "a ") {
				return line
			}
		}
	}
	c, r := dial(imapAddr)
	if got := imapCmd(c, r, `LOGIN ann@example.test wrong`); !strings.HasPrefix(got, "a NO") {
		t.Fatalf("IMAP wrong password: %s", got)
	}
	if got := imapCmd(c, r, `LOGIN ann@example.test pw`); !strings.HasPrefix(got, "a OK") {
		t.Fatalf("IMAP login: %s", got)
	}
	if got := imapCmd(c, r, `SELECT INBOX`); !strings.HasPrefix(got, "a OK") {
		t.Fatalf("SELECT: %s", got)
	}
	if got := imapCmd(c, r, `FETCH 1 (FLAGS RFC822.SIZE)`); !strings.HasPrefix(got, "a OK") {
		t.Fatalf("FETCH: %s", got)
	}
	imapCmd(c, r, "LOGOUT")
	c.Close()

	pc, pr := dial(popAddr)
	popCmd := func(cmd string) string {
		fmt.Fprintf(pc, "%s\r\n", cmd)
		line, err := pr.ReadString('\n')
		if err != nil {
			t.Fatalf("%s: %v", cmd, err)
		}
		return line
	}
	popCmd("USER ann@example.test")
	if got := popCmd("PASS wrong"); !strings.HasPrefix(got, "-ERR") {
		t.Fatalf("POP3 wrong password: %s", got)
	}
	popCmd("USER ann@example.test")
	if got := popCmd("PASS pw"); !strings.HasPrefix(got, "+OK") {
		t.Fatalf("POP3 login: %s", got)
	}
	if got := popCmd("STAT"); !strings.HasPrefix(got, "+OK 1 ") {
		t.Fatalf("STAT: %s", got)
	}
	popCmd("QUIT")
	pc.Close()

	s := scrape(t, web.URL)
	want := map[string]float64{
		`mailsys_connections_total{listener="smtp",protocol="smtp",result="accepted"}`: 1,
		`mailsys_connections_total{listener="imap",protocol="imap",result="accepted"}`: 1,
		`mailsys_connections_total{listener="pop3",protocol="pop3",result="accepted"}`: 1,
		`mailsys_smtp_transactions_total{listener="smtp"}`:                             1,
		`mailsys_deliveries_total{outcome="accepted"}`:                                 1,
		`mailsys_deliveries_total{outcome="delivered"}`:                                1,
		`mailsys_deliveries_total{outcome="bounced"}`:                                  0,
		`mailsys_logins_total{mechanism="LOGIN",protocol="imap",result="failure"}`:     1,
		`mailsys_logins_total{mechanism="LOGIN",protocol="imap",result="success"}`:     1,
		`mailsys_logins_total{mechanism="USER",protocol="pop3",result="failure"}`:      1,
		`mailsys_logins_total{mechanism="USER",protocol="pop3",result="success"}`:      1,
		`mailsys_command_duration_seconds_count{command="LOGIN",protocol="imap"}`:      2,
		`mailsys_command_duration_seconds_count{command="SELECT",protocol="imap"}`:     1,
		`mailsys_command_duration_seconds_count{command="FETCH",protocol="imap"}`:      1,
		`mailsys_command_duration_seconds_count{command="PASS",protocol="pop3"}`:       2,
		`mailsys_command_duration_seconds_count{command="STAT",protocol="pop3"}`:       1,
		`mailsys_command_duration_seconds_count{command="DATA",protocol="smtp"}`:       1,
		`mailsys_command_duration_seconds_count{command="RCPT",protocol="smtp"}`:       1,
		`mailsys_store_bodies`: 1,
	}
	for k, v := range want {
		if got, ok := s[k]; !ok || got != v {
			t.Errorf("%s = %v (present %v), want %v", k, got, ok, v)
		}
	}
	// Group commits: the accept and at least the done mark's.
	if s["mailsys_txlog_group_commits_total"] < 1 || s["mailsys_txlog_fsync_duration_seconds_count"] != s["mailsys_txlog_group_commits_total"] {
		t.Errorf("txlog: %v commits, %v fsyncs", s["mailsys_txlog_group_commits_total"], s["mailsys_txlog_fsync_duration_seconds_count"])
	}
	if s["mailsys_store_live_bytes"] <= 0 {
		t.Errorf("store live bytes %v", s["mailsys_store_live_bytes"])
	}
	// Four logins: the two wrong ones and IMAP's right one missed the
	// cache, POP3's right one (the same password) hit it.
	if s["mailsys_login_cache_misses_total"] != 3 || s["mailsys_login_cache_hits_total"] != 1 {
		t.Errorf("login cache: %v hits, %v misses; want 1, 3", s["mailsys_login_cache_hits_total"], s["mailsys_login_cache_misses_total"])
	}
	obs.mu.Lock()
	defer obs.mu.Unlock()
	if obs.delivered["ann@example.test"] != 1 || len(obs.delivered) != 1 || obs.bytes < int64(len(msg)) {
		t.Errorf("observer: %v, %d bytes", obs.delivered, obs.bytes)
	}
}
