package mta_test

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/mailsys/mailsys/mta/dsn"
	"github.com/mailsys/mailsys/txlog"
	"github.com/mailsys/mailsys/userdata"
)

// A local delivery tells the sender what its recipients asked for
// (RFC 3461): "delivered" for NOTIFY=SUCCESS, "failed" for a recipient
// gone since the message was accepted; nothing for NOTIFY=NEVER.
func TestLocalDeliveryNotifies(t *testing.T) {
	ctx := t.Context()
	s, err := open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	s.d.Hostname = "mx.example.test"
	if err := s.db.CreateDomain(ctx, userdata.Domain{Name: "example.test"}); err != nil {
		t.Fatal(err)
	}
	for _, u := range users[:3] {
		if _, err := s.db.CreateUser(ctx, userdata.NewUser{Address: u}); err != nil {
			t.Fatal(err)
		}
	}
	env := txlog.Envelope{From: users[2], To: []string{users[0], "ghost@example.test", users[1]}, Received: time.Now(), EnvID: "E1",
		Rcpts: []txlog.Rcpt{{Notify: "SUCCESS"}, {ORcpt: "rfc822;ghost@example.test"}, {Notify: "NEVER"}}}
	tx, err := s.log.Accept(ctx, env, strings.NewReader("From: u2@example.test\r\nSubject: hi\r\n\r\nhello\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.d.Deliver(ctx, tx); err != nil {
		t.Fatal(err)
	}
	got := bodies(t, s, users[2])
	if len(got) != 1 {
		t.Fatalf("the sender has %d messages, want one notification", len(got))
	}
	if !bytes.HasPrefix(got[0], []byte("Return-Path: <>\r\n")) {
		t.Errorf("notification not from the null sender:\n%.200s", got[0])
	}
	p, err := dsn.Parse(bytes.NewReader(got[0]))
	if err != nil {
		t.Fatal(err)
	}
	if p.PerMessage.Get("Original-Envelope-Id") != "E1" || len(p.Recipients) != 2 {
		t.Fatalf("DSN %v %v", p.PerMessage, p.Recipients)
	}
	want := []struct{ final, action, status string }{{users[0], "delivered", "2.0.0"}, {"ghost@example.test", "failed", "5.1.1"}}
	for i, w := range want {
		r := p.Recipients[i]
		if _, final, _ := r.Typed("Final-Recipient"); final != w.final || r.Get("Action") != w.action || r.Get("Status") != w.status {
			t.Errorf("recipient %d: %v, want %+v", i, r, w)
		}
	}
	if _, orcpt, _ := p.Recipients[1].Typed("Original-Recipient"); orcpt != "ghost@example.test" {
		t.Errorf("Original-Recipient %q", orcpt)
	}
	if n := len(bodies(t, s, users[1])); n != 1 {
		t.Errorf("u1 has %d messages", n)
	}
}

// bodies returns the messages in addr's INBOX.
func bodies(t *testing.T, s *system, addr string) [][]byte {
	t.Helper()
	ctx := t.Context()
	u, err := s.db.LookupAddress(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	f, err := s.db.Folder(ctx, u.ID, userdata.Inbox)
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	err = s.db.Messages(ctx, u.ID, f.ID, nil, func(m *userdata.Message) error {
		b, err := s.store.Open(ctx, m.Ref)
		if err != nil {
			return err
		}
		defer b.Close()
		data, err := io.ReadAll(io.NewSectionReader(b, 0, b.Size()))
		out = append(out, data)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
