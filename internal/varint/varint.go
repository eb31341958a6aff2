// Package varint reads the varint-framed records of mailsys's formats:
// txlog's records, userdata's values, msstore's body meta and imap's
// summaries. Each is a run of fields written with encoding/binary's
// AppendUvarint and AppendVarint, strings and byte strings prefixed with
// their length as a uvarint.
//
// A Decoder reads such a record field by field with a sticky error: the
// first problem is kept, and every later read returns a zero value, so
// that a decoding function reads every field and checks once, at the end.
// The package-level functions are the same reads, one at a time, for a
// decoder of a package's own.
//
// Decoder and the functions work on a []byte or on a string: what they
// return shares the input's memory, so a record read as a string yields
// substrings of it without a copy per field. A []byte field's capacity
// may reach into the rest of the input: a caller that keeps one to append
// to clips it first (slices.Clip).
package varint

import (
	"strconv"
	"unicode/utf8"
)

// Bytes is what a Decoder reads: a byte slice or a string.
type Bytes interface{ []byte | string }

// MaxLen64 is the most bytes a 64-bit varint takes.
const MaxLen64 = 10

// Uvarint decodes a uvarint from the start of b and returns it and the
// bytes it took, exactly as encoding/binary's Uvarint: n == 0 if b ends
// within it, n < 0 if it overflows 64 bits (-n bytes were read).
func Uvarint[T Bytes](b T) (v uint64, n int) {
	var shift uint
	for i := 0; i < len(b); i++ {
		if i == MaxLen64 {
			return 0, -(i + 1) // overflow
		}
		c := b[i]
		if c < 0x80 {
			if i == MaxLen64-1 && c > 1 {
				return 0, -(i + 1) // overflow
			}
			return v | uint64(c)<<shift, i + 1
		}
		v |= uint64(c&0x7f) << shift
		shift += 7
	}
	return 0, 0
}

// Varint decodes a zig-zag varint from the start of b, as encoding/binary's
// Varint, with Uvarint's n.
func Varint[T Bytes](b T) (int64, int) {
	u, n := Uvarint(b)
	v := int64(u >> 1)
	if u&1 != 0 {
		v = ^v
	}
	return v, n
}

// Field decodes a field prefixed with its length from the start of b and
// returns it, sharing b's memory, and the bytes the prefix and the field
// took; n <= 0 if b does not hold a whole one.
func Field[T Bytes](b T) (f T, n int) {
	l, k := Uvarint(b)
	if k <= 0 || l > uint64(len(b)-k) {
		return f, min(k, 0)
	}
	end := k + int(l)
	return b[k:end], end
}

// Error is a Decoder's failure: what went wrong, and the offset in the
// input of the field that did not decode. Packages wrap it in errors of
// their own (their ErrCorrupt).
type Error struct {
	What   string
	Offset int
}

func (e *Error) Error() string { return e.What + " at byte " + strconv.Itoa(e.Offset) }

// A Decoder reads the fields of one record, in order, from the start of
// the input given to New. The first failure sticks: every later read
// returns a zero value and Err reports it. What a read returns shares the
// input's memory. The zero Decoder reads an empty input. A Decoder is not
// safe for concurrent use.
type Decoder[T Bytes] struct {
	b   T
	off int
	err *Error
}

// New returns a decoder of b.
func New[T Bytes](b T) Decoder[T] { return Decoder[T]{b: b} }

// Fail records a failure at the current offset, unless one is already
// recorded. Decoders of a format call it for what the format itself
// refuses (a count too large, an unknown value).
func (d *Decoder[T]) Fail(what string) {
	if d.err == nil {
		d.err = &Error{What: what, Offset: d.off}
	}
}

// Failed reports whether a read has failed.
func (d *Decoder[T]) Failed() bool { return d.err != nil }

// Err returns the first failure, as an *Error, or nil.
func (d *Decoder[T]) Err() error {
	if d.err == nil {
		return nil
	}
	return d.err
}

// Done returns Err, or, if every read succeeded but input is left, a
// failure for the trailing bytes.
func (d *Decoder[T]) Done() error {
	if d.err == nil && d.off != len(d.b) {
		d.Fail("trailing bytes")
	}
	return d.Err()
}

// Len is the number of bytes not yet read; 0 after a failure.
func (d *Decoder[T]) Len() int {
	if d.err != nil {
		return 0
	}
	return len(d.b) - d.off
}

// Offset is the number of bytes read so far.
func (d *Decoder[T]) Offset() int { return d.off }

// Rest returns the bytes not yet read, sharing the input's memory, and
// reads them; after a failure it returns none.
func (d *Decoder[T]) Rest() T {
	var r T
	if d.err == nil {
		r = d.b[d.off:]
		d.off = len(d.b)
	}
	return r
}

// Byte reads one byte.
func (d *Decoder[T]) Byte() byte {
	if d.err != nil {
		return 0
	}
	if d.off >= len(d.b) {
		d.Fail("truncated")
		return 0
	}
	c := d.b[d.off]
	d.off++
	return c
}

// Uvarint reads a uvarint.
func (d *Decoder[T]) Uvarint() uint64 {
	// Most are one byte (lengths, counts, flags): that case inlines.
	if d.err == nil && d.off < len(d.b) && d.b[d.off] < 0x80 {
		d.off++
		return uint64(d.b[d.off-1])
	}
	return d.uvarint()
}

func (d *Decoder[T]) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := Uvarint(d.b[d.off:])
	if n <= 0 {
		d.failVarint(n)
		return 0
	}
	d.off += n
	return v
}

// Varint reads a zig-zag varint.
func (d *Decoder[T]) Varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := Varint(d.b[d.off:])
	if n <= 0 {
		d.failVarint(n)
		return 0
	}
	d.off += n
	return v
}

func (d *Decoder[T]) failVarint(n int) {
	if n == 0 {
		d.Fail("truncated varint")
	} else {
		d.Fail("varint overflows 64 bits")
	}
}

// Next reads the next n bytes, failing if fewer are left.
func (d *Decoder[T]) Next(n uint64) T {
	var f T
	if d.err != nil {
		return f
	}
	if n > uint64(len(d.b)-d.off) {
		d.Fail("field past the end")
		return f
	}
	end := d.off + int(n)
	f = d.b[d.off:end]
	d.off = end
	return f
}

// Field reads a field prefixed with its length.
func (d *Decoder[T]) Field() T {
	start := d.off
	n := d.Uvarint()
	f := d.Next(n)
	if d.err != nil && d.err.Offset > start {
		d.err.Offset = start // the field's, not its bytes'
	}
	return f
}

// UTF8 reads a string prefixed with its length that must be valid UTF-8:
// one that is not is a failure. From a []byte, it is a copy.
func (d *Decoder[T]) UTF8() string {
	start := d.off
	s := string(d.Field())
	if !utf8.ValidString(s) {
		d.off = start
		d.Fail("invalid UTF-8")
		return ""
	}
	return s
}
