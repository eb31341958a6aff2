package mta_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/mailsys/mailsys/mta"
	"github.com/mailsys/mailsys/mta/queue"
	"github.com/mailsys/mailsys/txlog"
)

// pendingLog is a TxLog that never marks a transaction done, so that the
// log, reopened, shows every envelope as it was written to disk.
type pendingLog struct{ mta.TxLog }

func (pendingLog) DoneAsync(context.Context, *txlog.Txn) error { return nil }

// takeAll is a Relay that takes every message: the listeners only ask
// whether the Deliverer has one. (Handing messages to it is the
// Deliverer's business, tested with it.)
type takeAll struct{}

func (takeAll) Enqueue(_ context.Context, _ queue.Message, body io.Reader) error {
	_, err := io.Copy(io.Discard, body)
	return err
}

// startLogged runs a listener over s (the MX one, or a submission one if
// auth is not nil) whose Deliverer, with relay as its Relay, writes to a
// transaction log of its own and never marks a transaction done. It
// returns the listener's address and a function that shuts it down and
// returns the envelopes of the log, reopened, oldest first.
func startLogged(t *testing.T, s *system, cfg mta.InboundConfig, auth mta.Authenticator, relay mta.Relay) (string, func() []txlog.Envelope) {
	t.Helper()
	dir := t.TempDir()
	quiet := slog.New(slog.DiscardHandler)
	logCfg := txlog.Config{Dir: dir, SegmentSize: 1 << 20, MaxBodySize: 64 << 10, Logger: quiet}
	l, err := txlog.Open(t.Context(), logCfg)
	if err != nil {
		t.Fatal(err)
	}
	d := &mta.Deliverer{Log: pendingLog{l}, Store: s.store, Users: s.db, Relay: relay, Logger: quiet}
	if cfg.Hostname == "" {
		cfg.Hostname = "mx.example.test"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(t.Output(), nil))
	}
	var in *mta.Inbound
	if auth != nil {
		in, err = mta.NewSubmission(cfg, s.db, auth, d)
	} else {
		in, err = mta.NewInbound(cfg, s.db, d)
	}
	if err != nil {
		t.Fatal(err)
	}
	addr, _ := serve(t, in)
	t.Cleanup(func() {
		in.Close()
		l.Close()
	})
	return addr, func() []txlog.Envelope {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := in.Shutdown(ctx); err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
		if err := l.Close(); err != nil {
			t.Fatalf("closing the log: %v", err)
		}
		l, err := txlog.Open(t.Context(), logCfg)
		if err != nil {
			t.Fatalf("reopening the log: %v", err)
		}
		defer l.Close()
		var envs []txlog.Envelope
		for _, tx := range l.Pending() {
			envs = append(envs, tx.Envelope)
		}
		return envs
	}
}

// checkEnvelopes compares the DSN parameters and recipients of got, the
// envelopes a log holds, with want's.
func checkEnvelopes(t *testing.T, got, want []txlog.Envelope) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d transactions in the log, want %d: %+v", len(got), len(want), got)
	}
	for i, g := range got {
		w := want[i]
		if g.From != w.From || !slices.Equal(g.To, w.To) || g.Ret != w.Ret || g.EnvID != w.EnvID ||
			(g.Rcpts == nil) != (w.Rcpts == nil) || !slices.Equal(g.Rcpts, w.Rcpts) {
			t.Errorf("transaction %d: From %q, To %q, Ret %q, EnvID %q, Rcpts %+v\nwant From %q, To %q, Ret %q, EnvID %q, Rcpts %+v",
				i, g.From, g.To, g.Ret, g.EnvID, g.Rcpts, w.From, w.To, w.Ret, w.EnvID, w.Rcpts)
		}
	}
}

// TestDSNParams (RFC 3461): the MX listener offers DSN, and RET, ENVID,
// NOTIFY and ORCPT are written to the log with the transaction, decoded
// from xtext; plain mail has no Rcpts; values RFC 3461 forbids are
// refused with 501 5.5.4, whether go-smtp or the listener catches them.
func TestDSNParams(t *testing.T) {
	s, _ := startInbound(t)
	addr, envelopes := startLogged(t, s, mta.InboundConfig{MaxMessageSize: 64 << 10}, nil, nil)

	c, err := smtp.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Hello("client.example"); err != nil {
		t.Fatal(err)
	}
	if ok, _ := c.Extension("DSN"); !ok {
		t.Error("DSN not offered")
	}
	c.Close()

	rc := dialRaw(t, addr)
	rc.reply()
	long := strings.Repeat("x", 101)
	for _, step := range []struct{ cmd, want string }{
		{"EHLO client.example", "250 "},
		{"MAIL FROM:<carol@example.net> RET=HDRS ENVID=QQ314159", "250 "},
		{"RCPT TO:<u0@example.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;bob@example.com", "250 "},
		{"RCPT TO:<u1@example.test>", "250 "},
		{"RCPT TO:<u2@example.test> NOTIFY=NEVER,SUCCESS", "501 5.5.4 "},                     // go-smtp's check
		{"RCPT TO:<u2@example.test> NOTIFY=SUCCESS,SUCCESS", "501 5.5.4 "},                   // go-smtp's
		{"RCPT TO:<u2@example.test> ORCPT=rfc822;bob+0Aevil@example.com", "501 5.5.4 "},      // go-smtp's: a line feed
		{"RCPT TO:<u2@example.test> ORCPT=utf-8;b\\x{01}ob@example.com", "501 5.5.4 "},       // a control character, decoded
		{"RCPT TO:<u2@example.test> ORCPT=utf-8;b\\x{85}ob@example.com", "501 5.5.4 "},       // a C1 control
		{"RCPT TO:<u2@example.test> ORCPT=rfc822;" + strings.Repeat("b", 494), "501 5.5.4 "}, // 501 characters
		{"DATA", "354 "},
		{"Subject: one\r\n\r\nbody\r\n.", "250 "},
		{"MAIL FROM:<carol@example.net>", "250 "},
		{"RCPT TO:<u1@example.test>", "250 "},
		{"DATA", "354 "},
		{"Subject: two\r\n\r\nbody\r\n.", "250 "},
		{"MAIL FROM:<carol@example.net> ENVID=" + long, "501 5.5.4 "},
		{"MAIL FROM:<carol@example.net> ENVID=" + long[:100] + "+2B", "501 5.5.4 "}, // 101 decoded
		{"MAIL FROM:<carol@example.net> RET=full ENVID=QQ+2B1", "250 "},
		{"RCPT TO:<u2@example.test> NOTIFY=delay ORCPT=UTF-8;j\\x{F6}rg@example.test", "250 "},
		{"RCPT TO:<u0@example.test> ORCPT=rfc822;" + strings.Repeat("b", 493), "250 "}, // 500 characters
		{"DATA", "354 "},
		{"Subject: three\r\n\r\nbody\r\n.", "250 "},
		{"QUIT", "221 "},
	} {
		rc.send(step.cmd)
		if got := rc.reply(); !strings.HasPrefix(got, step.want) {
			t.Errorf("%.60s: %q, want %q...", step.cmd, got, step.want)
		}
	}
	checkEnvelopes(t, envelopes(), []txlog.Envelope{
		{From: "carol@example.net", To: []string{"u0@example.test", "u1@example.test"}, Ret: "HDRS", EnvID: "QQ314159",
			Rcpts: []txlog.Rcpt{{Notify: "SUCCESS,FAILURE", ORcpt: "rfc822;bob@example.com"}, {}}},
		{From: "carol@example.net", To: []string{"u1@example.test"}},
		{From: "carol@example.net", To: []string{"u2@example.test", "u0@example.test"}, Ret: "FULL", EnvID: "QQ+1",
			Rcpts: []txlog.Rcpt{{Notify: "DELAY", ORcpt: "utf-8;jörg@example.test"}, {ORcpt: "rfc822;" + strings.Repeat("b", 493)}}},
	})
}

// enhanced returns the enhanced status code of an SMTP reply error, as
// "5.7.1", or "" for another error.
func enhanced(err error) string {
	var se *smtp.SMTPError
	if !errors.As(err, &se) {
		return ""
	}
	return fmt.Sprintf("%d.%d.%d", se.EnhancedCode[0], se.EnhancedCode[1], se.EnhancedCode[2])
}
