package mailsys_test

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-smtp"

	"github.com/mailsys/mailsys"
	"github.com/mailsys/mailsys/admin"
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
		var rd io.Reader
		if body != nil {
			b, _ := json.Marshal(body)
			rd = bytes.NewReader(b)
		}
		req, _ := http.NewRequest(method, api+path, rd)
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
		Users, Bytes, Quota, Messages int64
		Days                          []struct{ Received int64 }
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
	if stats.Users != 1 || stats.Bytes == 0 {
		t.Fatalf("stats %+v, want 1 user holding bytes", stats)
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
