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
	} {
		if b, err := appendEnvelope(nil, &env); err == nil {
			t.Errorf("appendEnvelope(From %.20q, To %q, Remote %q) = %d bytes, want an error", env.From, env.To, env.Remote, len(b))
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
	// The envelope's length is a prefix: the rest is body, whatever it holds.
	p := withLen([]byte{0, 0, 0, 0, 0, 1, 1, 'a', 0, 0})
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
	for i, env := range roundTripEnvelopes[:4] {
		p, err := appendEnvelope(nil, &env)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(testRecord(kindAccept, uint64(i+1), append(p, "Subject: hi\r\n\r\nbody\r\n"...)))
	}
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
