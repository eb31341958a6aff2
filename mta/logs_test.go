package mta_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/mailsys/mailsys/mta"
	"github.com/mailsys/mailsys/userdata"
)

// jsonLog is a slog JSON sink that the test reads while the servers write.
type jsonLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *jsonLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *jsonLog) logger() *slog.Logger {
	return slog.New(slog.NewJSONHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// records parses every record, failing the test on one that names a key
// twice.
func (l *jsonLog) records(t *testing.T) []map[string]any {
	t.Helper()
	l.mu.Lock()
	text := l.b.String()
	l.mu.Unlock()
	var recs []map[string]any
	for line := range strings.Lines(text) {
		dec := json.NewDecoder(strings.NewReader(line))
		if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
			t.Fatalf("not a JSON object: %q", line)
		}
		rec := map[string]any{}
		for dec.More() {
			k, err := dec.Token()
			if err != nil {
				t.Fatalf("%q: %v", line, err)
			}
			var v any
			if err := dec.Decode(&v); err != nil {
				t.Fatalf("%q: %v", line, err)
			}
			if _, dup := rec[k.(string)]; dup {
				t.Errorf("key %q twice in %s", k, line)
			}
			rec[k.(string)] = v
		}
		recs = append(recs, rec)
	}
	return recs
}

// TestLogs: the inbound and submission listeners log, in JSON, each key
// once per record; exactly one line per accepted message, with what an
// administrator looks for, its id the Received field's; one line per
// login attempt; and clients that abort a transfer (a close, a reset, a
// timeout, a cut BDAT) at information or warning level, never as errors.
func TestLogs(t *testing.T) {
	var logs jsonLog
	s, addr := startInboundWith(t, func(c *mta.InboundConfig) {
		c.Logger = logs.logger()
		c.DataTimeout = 300 * time.Millisecond
	})
	_, subAddr := startSubmissionWith(t, func(c *mta.InboundConfig) { c.Logger = logs.logger() }, nil)

	// One message to two recipients.
	msg := "From: carol@example.net\r\nSubject: logged\r\n\r\nhello\r\n"
	if err := send(addr, "carol@example.net", []string{"u0@example.test", "u1@example.test"}, strings.NewReader(msg)); err != nil {
		t.Fatal(err)
	}

	// Transfers the client aborts.
	abort := func(script string, end func(c *net.TCPConn)) {
		t.Helper()
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		r := bufio.NewReader(c)
		io.WriteString(c, script)
		for { // up to the 354 or the BDAT's 250
			line, err := r.ReadString('\n')
			if err != nil {
				t.Fatalf("before the abort: %v", err)
			}
			if strings.HasPrefix(line, "354 ") || strings.HasPrefix(line, "250 2.0.0 Continue") {
				break
			}
		}
		end(c.(*net.TCPConn))
		io.Copy(io.Discard, r)
	}
	start := "EHLO client.example.net\r\nMAIL FROM:<carol@example.net>\r\nRCPT TO:<u2@example.test>\r\n"
	closeWrite := func(c *net.TCPConn) { c.Write([]byte("Subject: cut\r\n\r\nhalf")); c.CloseWrite() }
	abort(start+"DATA\r\n", closeWrite)
	abort(start+"DATA\r\n", func(c *net.TCPConn) {
		c.Write([]byte("Subject: reset\r\n\r\nhalf"))
		time.Sleep(50 * time.Millisecond)
		c.SetLinger(0) // the close sends RST
		c.Close()
	})
	abort(start+"DATA\r\n", func(c *net.TCPConn) { c.Write([]byte("Subject: slow\r\n\r\nhalf")) }) // then the timeout
	abort(start+"BDAT 10\r\n0123456789", func(c *net.TCPConn) { c.Write([]byte("BDAT 100 LAST\r\nhalf")); c.CloseWrite() })

	// Logins on the submission listener, and a message.
	tlsc := &tls.Config{InsecureSkipVerify: true}
	login := func(a sasl.Client) (*smtp.Client, error) {
		t.Helper()
		c, err := smtp.DialStartTLS(subAddr, tlsc)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Auth(a); err != nil {
			c.Close()
			return nil, err
		}
		return c, nil
	}
	if _, err := login(sasl.NewPlainClient("", "u0@example.test", "wrong")); err == nil {
		t.Fatal("wrong password accepted")
	}
	if _, err := login(sasl.NewPlainClient("u1@example.test", "u0@example.test", "pw0")); err == nil {
		t.Fatal("PLAIN as another identity accepted")
	}
	c, err := login(sasl.NewLoginClient("U0@example.test", "pw0"))
	if err != nil {
		t.Fatal(err)
	}
	c.Quit()
	c, err = login(sasl.NewPlainClient("", "u0@example.test", "pw0"))
	if err != nil {
		t.Fatal(err)
	}
	sub := "From: u0@example.test\r\nSubject: submitted\r\n\r\nx\r\n"
	if err := c.SendMail("u0@example.test", []string{"u2@example.test"}, strings.NewReader(sub)); err != nil {
		t.Fatal(err)
	}
	c.Quit()

	got := inbox(t, s, "u0@example.test", 1)
	if len(got) != 1 {
		t.Fatalf("u0: %d messages", len(got))
	}
	receivedID := regexp.MustCompile(` id ([A-Z2-7]{16})`).FindSubmatch(got[0])
	time.Sleep(200 * time.Millisecond) // the aborted sessions' last lines

	var accepted, logins, aborted []map[string]any
	for _, r := range logs.records(t) {
		if r["level"] == "ERROR" {
			t.Errorf("logged as an error: %v", r)
		}
		switch r["msg"] {
		case "message accepted":
			accepted = append(accepted, r)
		case "login":
			logins = append(logins, r)
		case "client went away in the middle of a message", "message not received in time":
			aborted = append(aborted, r)
		}
	}
	str := func(v any) string { return fmt.Sprint(v) }
	if len(accepted) != 2 {
		t.Fatalf("%d lines say a message was accepted, want 2 (one per message):\n%v", len(accepted), accepted)
	}
	in, out := accepted[0], accepted[1]
	if in["listener"] == "submission" {
		in, out = out, in
	}
	if receivedID == nil || in["id"] != string(receivedID[1]) {
		t.Errorf("accepted line id %v, Received field says %q", in["id"], receivedID)
	}
	for k, want := range map[string]string{"listener": "smtp", "component": "mta", "from": "carol@example.net",
		"to": "[u0@example.test u1@example.test]", "size": fmt.Sprint(len(msg)), "tls": "false"} {
		if str(in[k]) != want {
			t.Errorf("inbound accepted line: %s=%v, want %s (%v)", k, in[k], want, in)
		}
	}
	if _, ok := in["user"]; ok {
		t.Errorf("inbound accepted line names a user: %v", in)
	}
	for k, want := range map[string]string{"listener": "submission", "from": "u0@example.test", "to": "[u2@example.test]",
		"size": fmt.Sprint(len(sub)), "tls": "true", "user": "u0@example.test"} {
		if str(out[k]) != want {
			t.Errorf("submission accepted line: %s=%v, want %s (%v)", k, out[k], want, out)
		}
	}
	for _, r := range accepted {
		if !strings.HasPrefix(str(r["remote"]), "127.0.0.1:") || r["txn"] == nil || r["id"] == nil || r["level"] != "INFO" {
			t.Errorf("accepted line without remote, txn or id, or not at INFO: %v", r)
		}
	}

	wantLogins := []struct{ user, mech, result string }{
		{"u0@example.test", "PLAIN", "failed"},
		{"u0@example.test", "PLAIN", "failed"},
		{"u0@example.test", "LOGIN", "ok"},
		{"u0@example.test", "PLAIN", "ok"},
	}
	if len(logins) != len(wantLogins) {
		t.Fatalf("%d login lines, want %d:\n%v", len(logins), len(wantLogins), logins)
	}
	for i, w := range wantLogins {
		r := logins[i]
		if r["user"] != w.user || r["mechanism"] != w.mech || r["result"] != w.result || !strings.HasPrefix(str(r["remote"]), "127.0.0.1:") || r["listener"] != "submission" {
			t.Errorf("login line %d: %v, want user=%s mechanism=%s result=%s and the remote address", i, r, w.user, w.mech, w.result)
		}
	}
	if len(aborted) != 4 {
		t.Errorf("%d lines about aborted transfers, want 4:\n%v", len(aborted), aborted)
	}
}

// failingAuth is an Authenticator whose UserDB is down.
type failingAuth struct{}

func (failingAuth) Authenticate(context.Context, string, string, userdata.Protocol) (userdata.User, error) {
	return userdata.User{}, errors.New("failingAuth: database unreachable")
}

// TestSubmissionAuthError: a login the UserDB cannot check is answered
// 454 4.7.0, logged once as an error of the server's, and not counted as
// a failed login (more of them than the lockout's 5 do not lock out).
func TestSubmissionAuthError(t *testing.T) {
	var logs jsonLog
	_, addr := startSubmissionWith(t, func(c *mta.InboundConfig) { c.Logger = logs.logger() },
		func(mta.Authenticator) mta.Authenticator { return failingAuth{} })
	for i := range 7 {
		c, err := smtp.DialStartTLS(addr, &tls.Config{InsecureSkipVerify: true})
		if err != nil {
			t.Fatal(err)
		}
		err = c.Auth(sasl.NewPlainClient("", "u0@example.test", "pw0"))
		c.Close()
		var se *smtp.SMTPError
		if !errors.As(err, &se) || se.Code != 454 || se.EnhancedCode != (smtp.EnhancedCode{4, 7, 0}) {
			t.Fatalf("login %d with the UserDB down: %v; want 454 4.7.0", i, err)
		}
	}
	n := 0
	for _, r := range logs.records(t) {
		if r["msg"] == "login" {
			n++
			if r["result"] != "error" || r["level"] != "ERROR" {
				t.Errorf("login line %v, want result=error at ERROR", r)
			}
		}
	}
	if n != 7 {
		t.Errorf("%d login lines for 7 attempts", n)
	}
}
