package msstore

import (
	"bytes"
	"encoding/binary"
	"testing"
)

func TestRefForms(t *testing.T) {
	one := Ref{Node: 3, Volume: 7, Offset: 4096, Size: 1234, ID: 99, Sum: 0xdeadbeef}
	two := one
	two.Copy, two.CopyID = 5, 42
	for _, c := range []struct {
		ref  Ref
		n    int
		text string
	}{
		{one, RefLen, "3/7/4096/1234/99/deadbeef"},
		{two, RefLenMax, "3/7/4096/1234/99/deadbeef+5/42"},
	} {
		b, err := c.ref.MarshalBinary()
		if err != nil || len(b) != c.n {
			t.Fatalf("MarshalBinary(%v) = %d bytes, %v; want %d", c.ref, len(b), err, c.n)
		}
		var back Ref
		if err := back.UnmarshalBinary(b); err != nil || back != c.ref {
			t.Fatalf("binary round trip of %v: %v, %v", c.ref, back, err)
		}
		if s := c.ref.String(); s != c.text {
			t.Fatalf("String() = %q, want %q", s, c.text)
		}
		if p, err := ParseRef(c.text); err != nil || p != c.ref {
			t.Fatalf("ParseRef(%q) = %v, %v", c.text, p, err)
		}
	}
	// Version 1 is the form every existing index holds: unchanged.
	b, _ := one.MarshalBinary()
	if b[0] != 1 {
		t.Fatalf("a one-copy ref is version %d", b[0])
	}
	if first := two.First(); first != one {
		t.Fatalf("First() = %v", first)
	}
	if sec, ok := two.Second(); !ok || sec != (Ref{Node: 5, Size: 1234, ID: 42, Sum: 0xdeadbeef}) {
		t.Fatalf("Second() = %v, %v", sec, ok)
	}
	if _, ok := one.Second(); ok {
		t.Fatal("a one-copy ref has a Second")
	}
	if w, err := one.WithCopy(Ref{Node: 5, Volume: 9, Size: 1234, ID: 42, Sum: 0xdeadbeef}); err != nil || w != two {
		t.Fatalf("WithCopy = %v, %v", w, err)
	}
	for _, bad := range []Ref{{Node: 3, Size: 1234, ID: 1, Sum: 0xdeadbeef}, {Node: 5, Size: 1, ID: 1, Sum: 0xdeadbeef}} {
		if _, err := one.WithCopy(bad); err == nil {
			t.Errorf("WithCopy(%v) succeeded", bad)
		}
	}
}

func TestRefInvalid(t *testing.T) {
	good := Ref{Node: 3, Size: 10, ID: 1, Sum: 1, Copy: 4, CopyID: 2}
	for _, r := range []Ref{
		{Node: 3, Size: 10, ID: 1, Copy: 3, CopyID: 2}, // copy on its own node
		{Node: 3, Size: 10, ID: 1, CopyID: 2},          // an id without a node
	} {
		if _, err := r.MarshalBinary(); err == nil {
			t.Errorf("MarshalBinary(%+v) succeeded", r)
		}
		if _, err := r.MarshalText(); err == nil {
			t.Errorf("MarshalText(%+v) succeeded", r)
		}
		if _, err := ParseRef(r.String()); err == nil {
			t.Errorf("ParseRef(%q) succeeded", r.String())
		}
	}
	b, _ := good.MarshalBinary()
	mutate := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(b)) }
	for what, bad := range map[string][]byte{
		"empty":           nil,
		"v2 as v1":        mutate(func(b []byte) []byte { b[0] = 1; return b }),
		"v1 with copy":    mutate(func(b []byte) []byte { b[0] = 1; return b[:RefLen] })[:RefLen-1],
		"v3":              mutate(func(b []byte) []byte { b[0] = 3; return b }),
		"short v2":        b[:RefLenMax-1],
		"long v2":         append(bytes.Clone(b), 0),
		"v2 copy node 0":  mutate(func(b []byte) []byte { binary.BigEndian.PutUint32(b[RefLen:], 0); return b }),
		"v2 copy on Node": mutate(func(b []byte) []byte { binary.BigEndian.PutUint32(b[RefLen:], 3); return b }),
		"v2 as v1 length": mutate(func(b []byte) []byte { return b[:RefLen] }),
	} {
		var r Ref
		if err := r.UnmarshalBinary(bad); err == nil {
			t.Errorf("%s: UnmarshalBinary(%x) = %v, want an error", what, bad, r)
		}
	}
}

// FuzzRefBinary checks that UnmarshalBinary accepts exactly the forms
// AppendBinary makes.
func FuzzRefBinary(f *testing.F) {
	one, _ := Ref{Node: 1, Volume: 2, Offset: 3, Size: 4, ID: 5, Sum: 6}.MarshalBinary()
	two, _ := Ref{Node: 1, Volume: 2, Offset: 3, Size: 4, ID: 5, Sum: 6, Copy: 7, CopyID: 8}.MarshalBinary()
	f.Add(one)
	f.Add(two)
	f.Add([]byte{2})
	f.Fuzz(func(t *testing.T, b []byte) {
		var r Ref
		if err := r.UnmarshalBinary(b); err != nil {
			return
		}
		again, err := r.MarshalBinary()
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("%x decodes to %v, which encodes to %x (%v)", b, r, again, err)
		}
		if p, err := ParseRef(r.String()); err != nil || p != r {
			t.Fatalf("text round trip of %v: %v, %v", r, p, err)
		}
	})
}
