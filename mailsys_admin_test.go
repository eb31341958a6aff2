package mailsys_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/mailsys/mailsys"
	"github.com/mailsys/mailsys/admin"
	"github.com/mailsys/mailsys/internal/selfsigned"
	"github.com/mailsys/mailsys/mta/resolve"
)

// TestAdminSystem: a System with the admin listener. A domain, a unit and
// a user with a quota are provisioned through the API; the user logs in
// over IMAP and is sent mail over SMTP; the domain's statistics and the
// metrics, read back through the API, show it.
func TestAdminSystem(t *testing.T) {
	ctx := t.Context()
	sys, err := mailsys.Open(ctx, mailsys.Config{DataDir: t.TempDir(), Hostname: "mx.example.test",
		SMTPAddr: "127.0.0.1:0", IMAPAddr: "127.0.0.1:0", AdminAddr: "127.0.0.1:0", InsecureAuth: true,
		DisableVerify: true, DisableOutbound: true, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sys.Shutdown(t.Context()) })
	if _, err := sys.EnsureUser(ctx, "postmaster@mx.example.test", "the first password"); err != nil {
		t.Fatal(err)
	}
	if err := sys.Admin().SetGrant(ctx, admin.Grant{User: "postmaster@mx.example.test", Role: admin.RoleSystem}); err != nil {
		t.Fatal(err)
	}
	if err := sys.Start(ctx); err != nil {
		t.Fatal(err)
	}
	addrs := sys.Addrs()
	smtpAddr, imapAddr, api := addrs[0].String(), addrs[1].String(), "http://"+addrs[2].String()

	call := func(method, path, token string, body any, out any) int {
		t.Helper()
		return apiCall(t, api, method, path, token, body, out)
	}
	var login struct{ Token string }
	if got := call("POST", "/api/v1/login", "", map[string]string{"user": "postmaster@mx.example.test", "password": "the first password"}, &login); got != 200 {
		t.Fatalf("login: %d", got)
	}
	tok := login.Token
	var unit struct{ ID uint64 }
	for _, c := range []struct {
		path string
		body any
		out  any
	}{
		{"/api/v1/domains", map[string]any{"name": "example.org"}, nil},
		{"/api/v1/units", map[string]any{"domain": "example.org", "name": "Sales"}, &unit},
		{"/api/v1/users", map[string]any{"address": "ann@example.org", "password": "ann's password", "quota": 10 << 20}, nil},
	} {
		if c.path == "/api/v1/users" {
			c.body.(map[string]any)["unit"] = unit.ID
		}
		if got := call("POST", c.path, tok, c.body, c.out); got != 201 {
			t.Fatalf("POST %s: %d", c.path, got)
		}
	}

	ic, err := imapclient.DialInsecure(imapAddr, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := ic.Login("ann@example.org", "ann's password").Wait(); err != nil {
		t.Fatalf("IMAP login of the provisioned user: %v", err)
	}
	sc, err := smtp.Dial(smtpAddr)
	if err != nil {
		t.Fatal(err)
	}
	msg := "From: bob@example.net\r\nTo: ann@example.org\r\nSubject: hello\r\n\r\nhello Ann\r\n"
	if err := sc.SendMail("bob@example.net", []string{"ann@example.org"}, strings.NewReader(msg)); err != nil {
		t.Fatal(err)
	}
	sc.Quit()
	var stats struct {
		Users, Active, Bytes, Quota, Messages int64
		Days                                  []struct{ Received int64 }
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if got := call("GET", "/api/v1/domains/example.org/stats", tok, nil, &stats); got != 200 {
			t.Fatalf("stats: %d", got)
		}
		if stats.Days[len(stats.Days)-1].Received == 1 && stats.Messages == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the delivery is not in the statistics after 10 s: %+v", stats)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if stats.Users != 1 || stats.Active != 1 || stats.Bytes == 0 {
		t.Fatalf("stats %+v, want 1 user, active (logged in over IMAP), holding bytes", stats)
	}
	sel, err := ic.Select("INBOX", nil).Wait()
	if err != nil || sel.NumMessages != 1 {
		t.Fatalf("the user's INBOX: %+v, %v", sel, err)
	}
	ic.Close()

	req, _ := http.NewRequest("GET", api+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Accept", "text/plain")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `mailsys_deliveries_total{outcome="delivered"} 1`) {
		t.Fatalf("/metrics: %s\n%.2000s", resp.Status, body)
	}
	// Without a system administrator's token: 401.
	if resp, err := http.Get(api + "/metrics"); err != nil || resp.StatusCode != 401 {
		t.Fatalf("/metrics without a token: %v %v", resp.Status, err)
	}
}

// apiCall makes a request of the API at base with a bearer token (none if
// ""), body marshalled as JSON, decoding the answer into out; it returns
// the status.
func apiCall(t *testing.T, base, method, path, token string, body any, out any) int {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, base+path, rd)
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			t.Fatalf("%s %s: %s: %v", method, path, data, err)
		}
	}
	return resp.StatusCode
}

// TestAdminQueue: the outbound queue and the DKIM keys of a System
// through the API. Mail to a host that refuses connections waits in the
// queue, listed with its recipient's state; it is held, released, retried
// and deleted with a bounce, which reaches the sender. The domain's DKIM
// records are read, rotated and the old pair retired.
func TestAdminQueue(t *testing.T) {
	ctx := t.Context()
	// A port nothing listens on, at the remote's address.
	pl, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Fatal(err)
	}
	port := pl.Addr().(*net.TCPAddr).Port
	pl.Close()
	zone := &resolve.Static{}
	zone.SetMX("example.net", "10 mx.example.net")
	zone.SetIP("mx.example.net", netip.MustParseAddr("127.0.0.2"))
	cfg := mailsys.DefaultConfig(t.TempDir())
	cert, err := selfsigned.New("mx.example.org", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Hostname, cfg.SubmissionAddr, cfg.AdminAddr = "mx.example.org", "127.0.0.1:0", "127.0.0.1:0"
	cfg.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	cfg.Resolver = zone
	cfg.Outbound.Port = port
	cfg.Outbound.DisableSTS = true
	cfg.Outbound.RetryFirst, cfg.Outbound.RetryMax = time.Hour, time.Hour
	cfg.Logger = slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	sys, err := mailsys.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sys.Shutdown(context.Background()) })
	for _, u := range []string{"ann@example.org", "sys@example.org"} {
		if _, err := sys.EnsureUser(ctx, u, "a long password"); err != nil {
			t.Fatal(err)
		}
	}
	if err := sys.Admin().SetGrant(ctx, admin.Grant{User: "sys@example.org", Role: admin.RoleSystem}); err != nil {
		t.Fatal(err)
	}
	if err := sys.Start(ctx); err != nil {
		t.Fatal(err)
	}
	submit, api := sys.Addrs()[0].String(), "http://"+sys.Addrs()[1].String()
	var login struct{ Token string }
	if got := apiCall(t, api, "POST", "/api/v1/login", "", map[string]string{"user": "sys@example.org", "password": "a long password"}, &login); got != 200 {
		t.Fatalf("login: %d", got)
	}
	call := func(method, path string, body, out any) int {
		t.Helper()
		return apiCall(t, api, method, path, login.Token, body, out)
	}

	c, err := smtp.DialStartTLS(submit, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Auth(sasl.NewPlainClient("", "ann@example.org", "a long password")); err != nil {
		t.Fatal(err)
	}
	msg := "From: ann@example.org\r\nTo: bob@example.net\r\nSubject: out\r\n\r\nhello\r\n"
	if err := c.SendMail("ann@example.org", []string{"bob@example.net"}, strings.NewReader(msg)); err != nil {
		t.Fatal(err)
	}
	c.Quit()

	type rcpt struct {
		Addr, State string
		LastReply   string `json:"last_reply"`
		Attempts    int
		Busy        bool
	}
	type entry struct {
		ID, From string
		Held     bool
		Rcpts    []rcpt
	}
	var page struct {
		Messages []entry
		Next     string
	}
	list := func() []entry {
		t.Helper()
		if got := call("GET", "/api/v1/queue", nil, &page); got != 200 {
			t.Fatalf("GET /api/v1/queue: %d", got)
		}
		return page.Messages
	}
	waitUntil(t, "the message deferred", func() bool {
		l := list()
		return len(l) == 1 && l[0].Rcpts[0].State == "deferred" && l[0].Rcpts[0].Attempts == 1 && !l[0].Rcpts[0].Busy
	})
	m := list()[0]
	if m.From != "ann@example.org" || m.Rcpts[0].Addr != "bob@example.net" || m.Rcpts[0].LastReply == "" {
		t.Fatalf("queued: %+v", m)
	}
	for _, act := range []struct {
		method, path string
		want         int
	}{
		{"POST", "/api/v1/queue/" + m.ID + "/hold", 204},
		{"POST", "/api/v1/queue/" + m.ID + "/retry", 204}, // held: no attempt
		{"POST", "/api/v1/queue/no-such-id/retry", 404},
		{"DELETE", "/api/v1/queue/" + m.ID + "?bounce=maybe", 400},
	} {
		if got := call(act.method, act.path, nil, nil); got != act.want {
			t.Fatalf("%s %s: %d, want %d", act.method, act.path, got, act.want)
		}
	}
	if l := list(); !l[0].Held || l[0].Rcpts[0].Attempts != 1 {
		t.Fatalf("held and retried: %+v", l[0])
	}
	if got := call("POST", "/api/v1/queue/"+m.ID+"/release", nil, nil); got != 204 {
		t.Fatalf("release: %d", got)
	}
	if got := call("POST", "/api/v1/queue/"+m.ID+"/retry", nil, nil); got != 204 {
		t.Fatalf("retry: %d", got)
	}
	// Released, then retried: tried again (once or twice, as the
	// release's own attempt and the retry fall).
	waitUntil(t, "another attempt", func() bool {
		l := list()
		return len(l) == 1 && l[0].Rcpts[0].Attempts >= 2 && !l[0].Rcpts[0].Busy
	})
	if got := call("DELETE", "/api/v1/queue/"+m.ID+"?bounce=true", nil, nil); got != 204 {
		t.Fatalf("delete: %d", got)
	}
	// Gone once the bounce is made.
	waitUntil(t, "the message gone from the queue", func() bool { return len(list()) == 0 })
	waitUntil(t, "the bounce in ann's INBOX", func() bool { return inboxCount(t, sys, "ann@example.org") == 1 })

	// DKIM: a pair (ed25519 and RSA) signs; a rotation adds one; the old
	// one, no longer signing, is retired.
	type dkim struct {
		Records []struct{ Name, Value, Zone string }
	}
	var d dkim
	if got := call("GET", "/api/v1/domains/example.org/dkim", nil, &d); got != 200 || len(d.Records) != 2 {
		t.Fatalf("DKIM records: %d %+v", got, d)
	}
	if !strings.HasSuffix(d.Records[0].Name, "._domainkey.example.org") || !strings.HasPrefix(d.Records[0].Value, "v=DKIM1;") || !strings.Contains(d.Records[0].Zone, " IN TXT ") {
		t.Fatalf("DKIM record: %+v", d.Records[0])
	}
	old := strings.TrimSuffix(d.Records[0].Name, "._domainkey.example.org")
	if got := call("DELETE", "/api/v1/domains/example.org/dkim/"+old, nil, nil); got != 409 {
		t.Fatalf("retiring the signing selector: %d, want 409", got)
	}
	if got := call("POST", "/api/v1/domains/example.org/dkim/rotate", nil, &d); got != 200 || len(d.Records) != 4 {
		t.Fatalf("rotate: %d %+v", got, d)
	}
	if got := call("DELETE", "/api/v1/domains/example.org/dkim/"+old, nil, nil); got != 204 {
		t.Fatalf("retire: %d", got)
	}
	if got := call("GET", "/api/v1/domains/example.org/dkim", nil, &d); got != 200 || len(d.Records) != 2 || strings.HasPrefix(d.Records[0].Name, old+".") {
		t.Fatalf("after retiring %s: %d %+v", old, got, d)
	}
	if got := call("GET", "/api/v1/domains/example.net/dkim", nil, nil); got != 404 {
		t.Fatalf("DKIM of a domain not ours: %d, want 404", got)
	}
	// No cluster, no supervisor on this System.
	if got := call("GET", "/api/v1/nodes", nil, nil); got != 404 {
		t.Fatalf("nodes of a single System: %d, want 404", got)
	}
}
