package varint_test

import (
	"encoding/binary"
	"errors"
	"math"
	"testing"

	"github.com/mailsys/mailsys/internal/varint"
)

// TestUvarintAsBinary checks Uvarint and Varint against encoding/binary,
// on a []byte and on a string, for the values and the malformed inputs
// at the edges.
func TestUvarintAsBinary(t *testing.T) {
	inputs := [][]byte{
		nil, {0}, {1}, {0x7f}, {0x80}, {0x80, 0}, {0x80, 1}, {0xff, 0xff},
		binary.AppendUvarint(nil, math.MaxUint64),
		binary.AppendUvarint(nil, 1<<63),
		binary.AppendVarint(nil, math.MinInt64),
		binary.AppendVarint(nil, math.MaxInt64),
		{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02},                  // 65 bits
		{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x80, 0x01},            // 11 bytes
		{0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x0}, // too long
	}
	for _, b := range inputs {
		checkAsBinary(t, b)
	}
}

func checkAsBinary(t *testing.T, b []byte) {
	t.Helper()
	wu, wn := binary.Uvarint(b)
	if u, n := varint.Uvarint(b); u != wu || n != wn {
		t.Errorf("Uvarint(% x) = %d, %d; binary.Uvarint %d, %d", b, u, n, wu, wn)
	}
	if u, n := varint.Uvarint(string(b)); u != wu || n != wn {
		t.Errorf("Uvarint(%q) = %d, %d; binary.Uvarint %d, %d", b, u, n, wu, wn)
	}
	wv, wn := binary.Varint(b)
	if v, n := varint.Varint(b); v != wv || n != wn {
		t.Errorf("Varint(% x) = %d, %d; binary.Varint %d, %d", b, v, n, wv, wn)
	}
	if v, n := varint.Varint(string(b)); v != wv || n != wn {
		t.Errorf("Varint(%q) = %d, %d; binary.Varint %d, %d", b, v, n, wv, wn)
	}
}

func TestDecoder(t *testing.T) {
	var b []byte
	b = append(b, 7)
	b = binary.AppendUvarint(b, 300)
	b = binary.AppendVarint(b, -5)
	b = binary.AppendUvarint(b, 5)
	b = append(b, "h\xc3\xa9ll"...)
	b = binary.AppendUvarint(b, 3)
	b = append(b, "abc"...)
	b = append(b, "tail"...)

	d := varint.New(b)
	if got := d.Byte(); got != 7 {
		t.Errorf("Byte = %d", got)
	}
	if got := d.Uvarint(); got != 300 {
		t.Errorf("Uvarint = %d", got)
	}
	if got := d.Varint(); got != -5 {
		t.Errorf("Varint = %d", got)
	}
	if got := d.UTF8(); got != "h\xc3\xa9ll" {
		t.Errorf("UTF8 = %q", got)
	}
	if got := d.Field(); string(got) != "abc" {
		t.Errorf("Field = %q", got)
	}
	if d.Len() != 4 || d.Offset() != len(b)-4 {
		t.Errorf("Len, Offset = %d, %d", d.Len(), d.Offset())
	}
	if err := d.Err(); err != nil {
		t.Fatalf("Err = %v", err)
	}
	var e *varint.Error
	if err := d.Done(); !errors.As(err, &e) || e.What != "trailing bytes" || e.Offset != len(b)-4 {
		t.Errorf("Done = %v, want trailing bytes at %d", err, len(b)-4)
	}

	s := varint.New(string(b[1:]))
	s.Uvarint()
	s.Varint()
	s.Field()
	s.Field()
	if got := s.Rest(); got != "tail" || s.Done() != nil {
		t.Errorf("Rest = %q, Done = %v", got, s.Done())
	}
}

// TestSticky: after a failure every read returns a zero value and the
// first failure stays, with the offset of the field that failed.
func TestSticky(t *testing.T) {
	b := []byte{0x05, 0x02, 'a'} // a uvarint, then a field of 2 bytes with 1 left
	d := varint.New(b)
	d.Uvarint()
	if f := d.Field(); f != nil {
		t.Errorf("Field past the end = %q", f)
	}
	var e *varint.Error
	if !errors.As(d.Err(), &e) || e.What != "field past the end" || e.Offset != 1 {
		t.Fatalf("Err = %v, want field past the end at byte 1", d.Err())
	}
	if d.Byte() != 0 || d.Uvarint() != 0 || d.Varint() != 0 || d.UTF8() != "" || d.Len() != 0 || d.Rest() != nil {
		t.Error("a read after the failure returned something")
	}
	d.Fail("another")
	if d.Err().Error() != "field past the end at byte 1" {
		t.Errorf("Err after more reads = %v", d.Err())
	}

	u := varint.New([]byte{1, 0xc3})
	if got := u.UTF8(); got != "" || u.Err() == nil || u.Err().(*varint.Error).Offset != 0 {
		t.Errorf("UTF8 of invalid = %q, %v", got, u.Err())
	}
	var z varint.Decoder[string]
	if z.Byte() != 0 || z.Err() == nil {
		t.Errorf("zero Decoder: Byte did not fail: %v", z.Err())
	}
}

// FuzzDecoder reads fuzzed input with a fuzzed program of reads, on a
// []byte and on a string at once: the two must agree, never panic, keep
// their offset within the input, and agree with encoding/binary.
func FuzzDecoder(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3}, []byte{1, 0x80, 0x01, 3, 'a', 'b', 'c'})
	f.Add([]byte{2, 3, 4, 5, 6}, []byte{0x7f, 0x81, 0x00, 2, 0xc3, 0xa9, 0xff})
	f.Add([]byte{1, 1, 1}, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02})
	f.Fuzz(func(t *testing.T, program, input []byte) {
		checkAsBinary(t, input)
		b := varint.New(input)
		s := varint.New(string(input))
		for _, op := range program {
			var gb, gs string
			switch op % 7 {
			case 0:
				gb, gs = string(rune(b.Byte())), string(rune(s.Byte()))
			case 1:
				gb, gs = itoa(b.Uvarint()), itoa(s.Uvarint())
			case 2:
				gb, gs = itoa(uint64(b.Varint())), itoa(uint64(s.Varint()))
			case 3:
				gb, gs = string(b.Field()), s.Field()
			case 4:
				gb, gs = b.UTF8(), s.UTF8()
			case 5:
				gb, gs = string(b.Next(uint64(op>>3))), s.Next(uint64(op>>3))
			case 6:
				gb, gs = itoa(uint64(b.Len())), itoa(uint64(s.Len()))
			}
			if gb != gs {
				t.Fatalf("op %d: []byte read %q, string %q", op, gb, gs)
			}
			if b.Offset() < 0 || b.Offset() > len(input) || b.Offset() != s.Offset() {
				t.Fatalf("offsets %d, %d of %d", b.Offset(), s.Offset(), len(input))
			}
		}
		eb, es := b.Done(), s.Done()
		if (eb == nil) != (es == nil) || eb != nil && eb.Error() != es.Error() {
			t.Fatalf("Done: %v, %v", eb, es)
		}
		if eb == nil && b.Offset() != len(input) {
			t.Fatalf("Done without error at %d of %d", b.Offset(), len(input))
		}
	})
}

func itoa(v uint64) string { return string(binary.AppendUvarint(nil, v)) }

func BenchmarkDecoderString(b *testing.B) {
	var in []byte
	for i := range 64 {
		in = binary.AppendUvarint(in, uint64(i)*1000)
		in = binary.AppendUvarint(in, 5)
		in = append(in, "hello"...)
	}
	s := string(in)
	b.SetBytes(int64(len(s)))
	for b.Loop() {
		d := varint.New(s)
		for d.Len() > 0 {
			d.Uvarint()
			d.Field()
		}
		if d.Err() != nil {
			b.Fatal(d.Err())
		}
	}
}
