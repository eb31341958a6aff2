package msstore

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"testing"
	"time"
)

// encodeRecord builds a whole record the way the writers do, for tests.
func encodeRecord(h recHeader, meta, body []byte) []byte {
	h.metaLen, h.bodyLen = uint32(len(meta)), uint64(len(body))
	h.bodySum = crc(body)
	var table []byte
	for i := 0; i < len(body); i += chunkSize {
		table = binary.LittleEndian.AppendUint32(table, crc(body[i:min(i+chunkSize, len(body))]))
	}
	b := make([]byte, recHeaderLen, h.size())
	h.marshal(b)
	b = append(append(append(b, meta...), body...), table...)
	var trailer [recTrailerLen]byte
	marshalTrailer(trailer[:], &h, metaTableSum(meta, table))
	return append(b, trailer[:]...)
}

func seedRecords(t testing.TB) [][]byte {
	meta, err := appendMeta(nil, &Meta{
		MessageID: "<seed@example.com>",
		Received:  time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC),
		Owners:    []Owner{{User: "alice@example.com", Mailbox: "INBOX"}, {User: "bob@example.com", Mailbox: "Archive/2026"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	empty, _ := appendMeta(nil, &Meta{})
	big := bytes.Repeat([]byte("Subject: hi\r\n\r\nbody line\r\n"), 3000) // two chunks
	return [][]byte{
		encodeRecord(recHeader{kind: kindBody, lsn: 1, id: 1, refs: 2}, meta, []byte("From: a@b\r\n\r\nhello\r\n")),
		encodeRecord(recHeader{kind: kindBody, lsn: 7, id: 7, refs: 1}, empty, nil),
		encodeRecord(recHeader{kind: kindBody, lsn: 9, id: 3, refs: 1}, meta, big),
		encodeRecord(recHeader{kind: kindRefs, lsn: 10, id: 1, refs: 0}, nil, nil),
	}
}

func TestRecordRoundTrip(t *testing.T) {
	for i, rec := range seedRecords(t) {
		h, meta, body, err := decodeRecord(rec)
		if err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		if got := encodeRecord(h, meta, body); !bytes.Equal(got, rec) {
			t.Errorf("record %d does not re-encode to itself", i)
		}
		// Every single-byte change is caught, and every cut too (in a big
		// record: all around the frame, and a sample of the body).
		sample := func(j int) bool { return len(rec) < 4096 || j < 512 || j > len(rec)-512 || j%509 == 0 }
		for j := range rec {
			if !sample(j) {
				continue
			}
			bad := bytes.Clone(rec)
			bad[j] ^= 0x40
			if _, _, _, err := decodeRecord(bad); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("record %d: flipping byte %d gives %v, want ErrCorrupt", i, j, err)
			}
		}
		for n := range len(rec) {
			if !sample(n) {
				continue
			}
			if _, _, _, err := decodeRecord(rec[:n]); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("record %d cut to %d bytes: %v, want ErrCorrupt", i, n, err)
			}
		}
	}
}

func TestMetaRoundTrip(t *testing.T) {
	in := Meta{
		MessageID: "<ünïcode@example.com>",
		Received:  time.Unix(1764331200, 123456789).UTC(),
		Owners:    []Owner{{User: "u1", Mailbox: "INBOX"}, {User: "用户@example.cn", Mailbox: "收件箱"}},
	}
	b, err := appendMeta(nil, &in)
	if err != nil {
		t.Fatal(err)
	}
	out, err := decodeMeta(b)
	if err != nil {
		t.Fatal(err)
	}
	if out.MessageID != in.MessageID || !out.Received.Equal(in.Received) || len(out.Owners) != 2 || out.Owners[1] != in.Owners[1] {
		t.Fatalf("got %+v, want %+v", out, in)
	}
	if _, err := appendMeta(nil, &Meta{MessageID: "\xff"}); err == nil {
		t.Error("invalid UTF-8 accepted")
	}
	if _, err := appendMeta(nil, &Meta{MessageID: string(make([]byte, maxMetaLen))}); err == nil {
		t.Error("oversized meta accepted")
	}
}

// FuzzDecodeRecord feeds the record decoder arbitrary bytes: it must never
// panic, and whatever it accepts must re-encode to the same bytes.
func FuzzDecodeRecord(f *testing.F) {
	for _, rec := range seedRecords(f) {
		f.Add(rec)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		h, meta, body, err := decodeRecord(b)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		n := h.size()
		if got := encodeRecord(h, meta, body); !bytes.Equal(got, b[:n]) {
			t.Fatalf("accepted record does not re-encode to itself")
		}
	})
}

// FuzzDecodeMeta checks the meta decoder alone, which has the most
// structure: it must never panic, and what it accepts must survive a round
// trip.
func FuzzDecodeMeta(f *testing.F) {
	for _, rec := range seedRecords(f) {
		h, _ := parseHeader(rec, int64(len(rec)))
		f.Add(rec[recHeaderLen:h.bodyOff()])
	}
	f.Add([]byte{1, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeMeta(b)
		if err != nil {
			return
		}
		again, err := appendMeta(nil, &m)
		if err != nil {
			t.Fatalf("decoded meta does not encode: %v", err)
		}
		m2, err := decodeMeta(again)
		if err != nil || m2.MessageID != m.MessageID || !m2.Received.Equal(m.Received) || len(m2.Owners) != len(m.Owners) {
			t.Fatalf("round trip changed %+v into %+v (%v)", m, m2, err)
		}
	})
}

// FuzzParseRef checks the text form of a Ref.
func FuzzParseRef(f *testing.F) {
	f.Add("0/1/32/4096/1/0a0b0c0d")
	f.Add("4294967295/4294967295/9223372036854775807/1/18446744073709551615/ffffffff")
	f.Add("1/2/3")
	f.Add("1/2/32/4096/7/0a0b0c0d+3/9")
	f.Add("1/2/32/4096/7/0a0b0c0d+1/9")
	f.Add("1/2/32/4096/7/0a0b0c0d+0/0")
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRef(s)
		if err != nil {
			return
		}
		if r.String() != s {
			t.Fatalf("ParseRef(%q) = %v, which prints as %q", s, r, r.String())
		}
		var back Ref
		b, _ := r.MarshalBinary()
		if err := back.UnmarshalBinary(b); err != nil || back != r {
			t.Fatalf("binary round trip of %v: %v, %v", r, back, err)
		}
	})
}

func TestSeedChecksums(t *testing.T) {
	// The CRC32C used throughout is the Castagnoli polynomial.
	if got := crc32.Checksum([]byte("123456789"), castagnoli); got != 0xe3069283 {
		t.Fatalf("CRC32C check value %08x", got)
	}
}
