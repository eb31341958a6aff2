package txlog

import (
	"bytes"
	"encoding/binary"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

var roundTripEnvelopes = []Envelope{
	{From: "", To: []string{"postmaster@example.com"}, Received: time.Date(2025, 1, 2, 3, 4, 5, 6, time.UTC)},
	{From: "jörg@bücher.example", To: []string{"用户@例子.广告", "δοκιμή@παράδειγμα.δοκιμή", "a@b"}, Received: time.Unix(1700000000, 999999999).UTC(), Remote: "[2001:db8::1]:25"},
	{From: "a@b", To: []string{"", "", ""}, Remote: ""}, // the zero time
	{From: strings.Repeat("x", 300), To: slices.Repeat([]string{"r@example.org"}, 200), Received: time.Date(1969, 12, 31, 23, 59, 59, 1, time.UTC), Remote: "192.0.2.1:1"},
	{From: "a@b", To: []string{"c@d"}, Received: time.Unix(0, -1<<63).UTC()},
	{From: "a@b", To: []string{"c@d"}, Received: time.Unix(0, 1<<63-1).UTC()},
	{From: "a@b", To: []string{"c@d"}, Mailbox: "Junk"},
	// With the fields that came later: DSN parameters and Rcpts.
	{From: "a@b", To: []string{"c@d"}, Ret: "FULL"},
	{From: "a@b", To: []string{"c@d"}, Mailbox: "Junk", EnvID: "QQ314159"},
	{From: "a@b", To: []string{"c@d", "e@f"}, Rcpts: []Rcpt{{}, {}}}, // non-nil, with nothing in it
	{From: "jörg@bücher.example", To: []string{"bob@example.com", "用户@例子.广告", "far@elsewhere.example"}, Received: time.Unix(1700000000, 5).UTC(),
		Remote: "[2001:db8::1]:587", Mailbox: "Junk", Ret: "HDRS", EnvID: "id with spaces +=;",
		Rcpts: []Rcpt{{Notify: "SUCCESS,FAILURE", ORcpt: "rfc822;bob@example.com"}, {Notify: "NEVER", ORcpt: "utf-8;用户@例子.广告"}, {Notify: "DELAY", Relay: true}}},
	{From: "", To: slices.Repeat([]string{"r@example.org"}, 200), Rcpts: slices.Repeat([]Rcpt{{Relay: true, ORcpt: "rfc822;r@example.org"}}, 200)},
}

// oldAppendEnvelope is appendEnvelope as it was before Ret, EnvID and
// Rcpts were written: what records already in logs hold.
func oldAppendEnvelope(b []byte, e *Envelope) []byte {
	start := len(b)
	b = append(b, 0, 0, 0, 0)
	b = appendString(b, e.From)
	b = binary.AppendUvarint(b, uint64(len(e.To)))
	for _, to := range e.To {
		b = appendString(b, to)
	}
	var ns int64
	if !e.Received.IsZero() {
		ns = e.Received.UnixNano()
	}
	b = binary.AppendVarint(b, ns)
	b = appendString(b, e.Remote)
	if e.Mailbox != "" {
		b = appendString(b, e.Mailbox)
	}
	binary.LittleEndian.PutUint32(b[start:], uint32(len(b)-start-4))
	return b
}

// TestEnvelopeOldFormat: records written before the DSN fields existed
// read as they did, and an envelope without those fields is still
// written byte for byte as then.
func TestEnvelopeOldFormat(t *testing.T) {
	for _, env := range roundTripEnvelopes {
		if env.Ret != "" || env.EnvID != "" || env.Rcpts != nil {
			continue
		}
		old := append(oldAppendEnvelope(nil, &env), "Subject: old\r\n\r\nbody\r\n"...)
		got, off, err := parseAccept(old)
		if err != nil || !envEqual(got, env) || got.Rcpts != nil || string(old[off:]) != "Subject: old\r\n\r\nbody\r\n" {
			t.Errorf("old record of %+v came back as %+v, body at %d, %v", env, got, off, err)
		}
		p, err := appendEnvelope(nil, &env)
		if err != nil || !bytes.Equal(p, old[:off]) {
			t.Errorf("%+v is now written as %x, %v; was %x", env, p, err, old[:off])
		}
	}
	// A record as an older version wrote it, byte by byte: From "a@b",
	// To "c@d", Received 1 ns after the epoch, Remote "r", Mailbox "Junk".
	rec := []byte{17, 0, 0, 0, 3, 'a', '@', 'b', 1, 3, 'c', '@', 'd', 2, 1, 'r', 4, 'J', 'u', 'n', 'k', 'x'}
	want := Envelope{From: "a@b", To: []string{"c@d"}, Received: time.Unix(0, 1), Remote: "r", Mailbox: "Junk"}
	if got, off, err := parseAccept(rec); err != nil || !envEqual(got, want) || off != len(rec)-1 {
		t.Errorf("old record came back as %+v, body at %d, %v; want %+v at %d", got, off, err, want, len(rec)-1)
	}
}

func TestEnvelopeRoundTrip(t *testing.T) {
	for i, env := range roundTripEnvelopes {
		for _, body := range [][]byte{nil, []byte("x"), testBody(uint64(i), 5000)} {
			p, err := appendEnvelope([]byte("prefix"), &env)
			if err != nil {
				t.Fatalf("appendEnvelope(%+v): %v", env, err)
			}
			if string(p[:6]) != "prefix" {
				t.Fatalf("appendEnvelope clobbered what it appends to")
			}
			p = append(p[6:], body...)
			got, off, err := parseAccept(p)
			if err != nil {
				t.Fatalf("parseAccept of %+v: %v", env, err)
			}
			if !envEqual(got, env) || got.Received.Location() != time.UTC {
				t.Errorf("envelope %+v came back as %+v", env, got)
			}
			if !bytes.Equal(p[off:], body) {
				t.Errorf("body of %d bytes came back as %d bytes", len(body), len(p)-off)
			}
		}
	}
	// A local time and monotonic reading come back Equal (in UTC).
	now := time.Now()
	p, err := appendEnvelope(nil, &Envelope{To: []string{"a@b"}, Received: now})
	if err != nil {
		t.Fatal(err)
	}
	if got, _, err := parseAccept(p); err != nil || !got.Received.Equal(now) {
		t.Errorf("Received %v came back as %v (%v)", now, got.Received, err)
	}
}

func TestAppendEnvelopeErrors(t *testing.T) {
	for _, env := range []Envelope{
		{From: "a@b"},
		{From: "a@b", To: []string{}},
		{From: "\xff", To: []string{"a@b"}},
		{From: "a@b", To: []string{"a@b", "\xc0\x80"}},
		{From: "a@b", To: []string{"a@b"}, Remote: "\x80"},
		{From: strings.Repeat("x", maxEnvelope), To: []string{"a@b"}},
		{From: "a@b", To: []string{"a@b"}, Mailbox: "\xff"},
		{From: "a@b", To: []string{"a@b", "c@d"}, Rcpts: []Rcpt{{}}},
		{From: "a@b", To: []string{"a@b"}, Rcpts: []Rcpt{{}, {}}},
		{From: "a@b", To: []string{"a@b"}, Rcpts: []Rcpt{}},
		{From: "a@b", To: []string{"a@b"}, Ret: "\xffULL"},
		{From: "a@b", To: []string{"a@b"}, Ret: "FULL\r\n"},
		{From: "a@b", To: []string{"a@b"}, EnvID: "a\x00b"},
		{From: "a@b", To: []string{"a@b"}, EnvID: "a\x7fb"},
		{From: "a@b", To: []string{"a@b"}, Rcpts: []Rcpt{{Notify: "SUCCESS\x80"}}},
		{From: "a@b", To: []string{"a@b"}, Rcpts: []Rcpt{{Notify: "\tSUCCESS"}}},
		{From: "a@b", To: []string{"a@b"}, Rcpts: []Rcpt{{ORcpt: "utf-8;a\u0085b@c"}}}, // C1
		{From: "a@b", To: []string{"a@b"}, Rcpts: []Rcpt{{ORcpt: "rfc822;a\nb@c"}}},
		{From: "a@b", To: []string{"a@b"}, EnvID: strings.Repeat("x", maxEnvelope)},
	} {
		if b, err := appendEnvelope(nil, &env); !errors.Is(err, ErrInvalidEnvelope) {
			t.Errorf("appendEnvelope(From %.20q, To %q, Remote %q, Mailbox %q, Ret %q, EnvID %.20q, Rcpts %+v) = %d bytes, %v; want ErrInvalidEnvelope",
				env.From, env.To, env.Remote, env.Mailbox, env.Ret, env.EnvID, env.Rcpts, len(b), err)
		}
	}
}

func TestParseAcceptErrors(t *testing.T) {
	good, err := appendEnvelope(nil, &roundTripEnvelopes[1])
	if err != nil {
		t.Fatal(err)
	}
	withLen := func(b []byte) []byte {
		binary.LittleEndian.PutUint32(b, uint32(len(b)-4))
		return b
	}
	for name, p := range map[string][]byte{
		"empty":           nil,
		"short":           {1, 0, 0},
		"past-record":     withLen(slices.Clone(good))[:len(good)-1],
		"huge-length":     {0xff, 0xff, 0xff, 0xff, 0},
		"no-recipients":   withLen([]byte{0, 0, 0, 0, 0, 0, 0, 0}),
		"too-many":        withLen([]byte{0, 0, 0, 0, 0, 5, 1, 'a', 0, 0}),
		"string-past-end": withLen([]byte{0, 0, 0, 0, 9, 'a'}),
		"not-utf8":        withLen([]byte{0, 0, 0, 0, 0, 1, 1, 0xff, 0, 0}),
		"trailing":        withLen(append(slices.Clone(good), 0)),
		"bad-varint":      withLen([]byte{0, 0, 0, 0, 0, 1, 1, 'a', 0x80, 0x80}),
		"no-remote":       withLen([]byte{0, 0, 0, 0, 0, 1, 1, 'a', 0}),
	} {
		if env, _, err := parseAccept(p); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: parseAccept = %+v, %v; want ErrCorrupt", name, env, err)
		}
	}
	// The fields after Mailbox: From "a", To "b", Received 0, Remote "",
	// then Mailbox and the rest.
	fields := func(tail ...byte) []byte {
		return withLen(append([]byte{0, 0, 0, 0, 1, 'a', 1, 1, 'b', 0, 0}, tail...))
	}
	for name, p := range map[string][]byte{
		"empty-mailbox-last": fields(0),
		"no-fields":          fields(0, 0),
		"unknown-field":      fields(0, 8),
		"fields-overflow":    fields(0, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01),
		"empty-ret":          fields(0, envRet, 0),
		"ret-past-end":       fields(0, envRet, 5, 'F'),
		"ret-not-utf8":       fields(0, envRet, 1, 0xff),
		"envid-control":      fields(0, envEnvID, 3, 'a', 0x07, 'b'),
		"ret-missing":        fields(0, envRet|envEnvID, 1, 'x'),
		"no-rcpt-entry":      fields(0, envRcpts),
		"unknown-rcpt-field": fields(0, envRcpts, 8),
		"empty-notify":       fields(0, envRcpts, rcptNotify, 0),
		"orcpt-c1":           fields(0, envRcpts, rcptORcpt, 2, 0xc2, 0x85),
		"trailing-rcpt":      fields(0, envRcpts, 0, 0),
	} {
		if env, _, err := parseAccept(p); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: parseAccept = %+v, %v; want ErrCorrupt", name, env, err)
		}
	}
	want := Envelope{From: "a", To: []string{"b"}, Mailbox: "", EnvID: "x", Rcpts: []Rcpt{{Relay: true, Notify: "NEVER"}}}
	p := fields(0, envEnvID|envRcpts, 1, 'x', rcptRelay|rcptNotify, 5, 'N', 'E', 'V', 'E', 'R')
	if got, _, err := parseAccept(p); err != nil || !envEqual(got, want) {
		t.Errorf("hand-made record: %+v, %v; want %+v", got, err, want)
	}

	// The envelope's length is a prefix: the rest is body, whatever it holds.
	p = withLen([]byte{0, 0, 0, 0, 0, 1, 1, 'a', 0, 0})
	p = append(p, 0xff, 0xfe)
	binary.LittleEndian.PutUint32(p, uint32(len(p)-6))
	if _, off, err := parseAccept(p); err != nil || off != len(p)-2 {
		t.Errorf("parseAccept with a body: offset %d, %v; want %d", off, err, len(p)-2)
	}
}

func TestStepRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		key   string
		value []byte
	}{
		{"", nil},
		{"stored", []byte("ref-1")},
		{"delivered:用户@例子.广告", []byte{}},
		{strings.Repeat("k", 200), testBody(1, 70000)},
		{"k", []byte{0, 0xff, 0x80}},
	} {
		p := appendStep([]byte("pre"), tc.key, tc.value)
		key, value, err := parseStep(p[3:])
		if err != nil || key != tc.key || !bytes.Equal(value, tc.value) {
			t.Errorf("step %q=%q came back as %q=%q, %v", tc.key, tc.value, key, value, err)
		}
		if len(value) > 0 && &value[0] == &p[len(p)-len(value)] {
			t.Errorf("parseStep's value aliases the payload")
		}
	}
	for name, p := range map[string][]byte{
		"empty":       nil,
		"past-end":    {5, 'a'},
		"not-utf8":    {1, 0xff},
		"bad-uvarint": {0x80},
	} {
		if k, v, err := parseStep(p); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: parseStep = %q, %q, %v; want ErrCorrupt", name, k, v, err)
		}
	}
}

func TestHeaderRoundTrip(t *testing.T) {
	for _, h := range []header{
		{kind: kindAccept, id: 1, length: 0, sum: 0},
		{kind: kindStep, id: 1<<64 - 1, length: 1<<32 - 1, sum: 0xdeadbeef},
		{kind: kindDone, id: 42, length: 7, sum: crc(nil)},
	} {
		var b [headerLen + 3]byte
		h.marshal(b[:])
		got, err := parseHeader(b[:])
		if err != nil || got != h {
			t.Errorf("header %+v came back as %+v, %v", h, got, err)
		}
		for i := range headerLen {
			c := b
			c[i] ^= 0x04
			if _, err := parseHeader(c[:]); !errors.Is(err, ErrCorrupt) {
				t.Errorf("header with byte %d flipped: %v; want ErrCorrupt", i, err)
			}
		}
		if _, err := parseHeader(b[:headerLen-1]); !errors.Is(err, ErrCorrupt) {
			t.Errorf("short header: %v; want ErrCorrupt", err)
		}
	}
	for _, h := range []header{{kind: 0, id: 1}, {kind: kindBase + 1, id: 1}, {kind: kindDone, id: 0}} {
		var b [headerLen]byte
		h.marshal(b[:])
		if _, err := parseHeader(b[:]); !errors.Is(err, ErrCorrupt) {
			t.Errorf("header %+v: %v; want ErrCorrupt", h, err)
		}
	}
}

// testRecord builds a whole record as the log writes it.
func testRecord(kind uint8, id uint64, payload []byte) []byte {
	rec := append(make([]byte, headerLen), payload...)
	(&header{kind: kind, id: id, length: uint32(len(payload)), sum: crc(payload)}).marshal(rec)
	return rec
}

func FuzzParseRecord(f *testing.F) {
	for i, env := range append(roundTripEnvelopes[:4:4], roundTripEnvelopes[6:11]...) {
		p, err := appendEnvelope(nil, &env)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(testRecord(kindAccept, uint64(i+1), append(p, "Subject: hi\r\n\r\nbody\r\n"...)))
	}
	f.Add(testRecord(kindAccept, 20, append(oldAppendEnvelope(nil, &roundTripEnvelopes[6]), "Subject: old\r\n\r\nbody\r\n"...)))
	f.Add(testRecord(kindStep, 7, appendStep(nil, "stored", []byte("ref-7"))))
	f.Add(testRecord(kindStep, 8, appendStep(nil, "delivered:用户@例子.广告", nil)))
	f.Add(testRecord(kindDone, 9, nil))
	f.Add([]byte{})
	f.Add(make([]byte, headerLen+8))

	f.Fuzz(func(t *testing.T, b []byte) {
		if h, err := parseHeader(b); err == nil {
			if h.kind < kindAccept || h.kind > kindDone || h.id == 0 {
				t.Fatalf("parseHeader accepted %+v", h)
			}
			var c [headerLen]byte
			h.marshal(c[:])
			if h2, err := parseHeader(c[:]); err != nil || h2 != h {
				t.Fatalf("header %+v re-marshaled came back as %+v, %v", h, h2, err)
			}
		} else if !errors.Is(err, ErrCorrupt) {
			t.Fatalf("parseHeader: %v, not ErrCorrupt", err)
		}
		p := b[min(len(b), headerLen):]

		env, off, err := parseAccept(p)
		if err == nil {
			if off < 4 || off > len(p) {
				t.Fatalf("body offset %d in a payload of %d bytes", off, len(p))
			}
			if len(env.To) == 0 {
				t.Fatalf("parseAccept accepted an envelope without recipients")
			}
			q, err := appendEnvelope(nil, &env)
			if err != nil {
				if off-4 > maxEnvelope {
					return // parseAccept takes envelopes larger than appendEnvelope writes
				}
				t.Fatalf("appendEnvelope of parsed %+v: %v", env, err)
			}
			env2, off2, err := parseAccept(q)
			if err != nil || off2 != len(q) || !envEqual(env, env2) || env2.Received != env.Received {
				t.Fatalf("envelope %+v re-encoded came back as %+v, %d of %d, %v", env, env2, off2, len(q), err)
			}
		} else if !errors.Is(err, ErrCorrupt) {
			t.Fatalf("parseAccept: %v, not ErrCorrupt", err)
		}

		key, value, err := parseStep(p)
		if err == nil {
			q := appendStep(nil, key, value)
			k2, v2, err := parseStep(q)
			if err != nil || k2 != key || !bytes.Equal(v2, value) {
				t.Fatalf("step %q=%q re-encoded came back as %q=%q, %v", key, value, k2, v2, err)
			}
		} else if !errors.Is(err, ErrCorrupt) {
			t.Fatalf("parseStep: %v, not ErrCorrupt", err)
		}
	})
}
