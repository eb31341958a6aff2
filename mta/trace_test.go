package mta_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/mailsys/mailsys/userdata"
)

// TestInboundReturnPath: the stored message starts with a Return-Path
// naming the envelope sender, above the Received field; the Return-Path
// fields the client put in the header (any case, folded, with white space
// before the colon) are gone, and a line of the body that looks like one
// is kept. Two recipients share one stored body.
func TestInboundReturnPath(t *testing.T) {
	s, addr := startInbound(t)
	msg := "Return-Path: <forged@example.org>\r\n" +
		"From: carol@example.net\r\n" +
		"return-path :\r\n\t<folded@example.org>\r\n" +
		"Subject: return path\r\n" +
		"RETURN-PATH:<upper@example.org>\r\n" +
		"Return-Paths: not this one\r\n" +
		"\r\n" +
		"Return-Path: <in the body, kept>\r\n"
	want := "From: carol@example.net\r\n" +
		"Subject: return path\r\n" +
		"Return-Paths: not this one\r\n" +
		"\r\n" +
		"Return-Path: <in the body, kept>\r\n"
	if err := send(addr, "carol@example.net", []string{"u0@example.test", "u1@example.test"}, strings.NewReader(msg)); err != nil {
		t.Fatal(err)
	}
	var refs []uint64
	for _, u := range []string{"u0@example.test", "u1@example.test"} {
		got := inbox(t, s, u, 1)
		if len(got) != 1 {
			t.Fatalf("%s: %d messages", u, len(got))
		}
		if !bytes.HasPrefix(got[0], []byte("Return-Path: <carol@example.net>\r\nReceived: from ")) {
			t.Errorf("%s: the message does not start with Return-Path then Received:\n%q", u, got[0])
		}
		if !bytes.HasSuffix(got[0], []byte(want)) || bytes.Count(got[0], []byte("example.org")) != 0 {
			t.Errorf("%s: the client's Return-Path fields were not all taken out of the header, or more was:\n%q", u, got[0])
		}
		refs = append(refs, messageRefs(t, s, u)...)
	}
	if len(refs) != 2 || refs[0] != refs[1] {
		t.Errorf("the two recipients' messages are bodies %v, want one body", refs)
	}

	// The null sender.
	if err := send(addr, "", []string{"u2@example.test"}, strings.NewReader("Subject: bounce\r\n\r\nx\r\n")); err != nil {
		t.Fatal(err)
	}
	if got := inbox(t, s, "u2@example.test", 1); len(got) != 1 || !bytes.HasPrefix(got[0], []byte("Return-Path: <>\r\nReceived: ")) {
		t.Errorf("null sender: %q", got)
	}
}

// messageRefs returns the body IDs of the messages in addr's INBOX.
func messageRefs(t *testing.T, s *system, addr string) []uint64 {
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
	var ids []uint64
	err = s.db.Messages(ctx, u.ID, f.ID, nil, func(m *userdata.Message) error {
		ids = append(ids, m.Ref.ID)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return ids
}
