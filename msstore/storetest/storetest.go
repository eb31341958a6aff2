// Package storetest checks that an [msstore.Storage] implementation behaves
// as the interface documents, in the manner of testing/fstest.
//
// An implementation's tests call [Run] with a function that makes a fresh,
// empty store for each subtest:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) msstore.Storage {
//			s, err := mystore.Open(t.TempDir())
//			if err != nil {
//				t.Fatal(err)
//			}
//			return s
//		})
//	}
//
// The suite closes each store at the end of its subtest. Subtests that need an
// optional capability ([msstore.Walker], [msstore.Compactor]) use it when the
// store has it and skip or leave that part out otherwise.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"testing/iotest"
	"time"

	"github.com/mailsys/mailsys/msstore"
)

// Run runs the conformance suite against the stores newStore makes, one
// fresh store per subtest. newStore may call t.Fatal and t.Cleanup; the suite
// closes the store it returns at the end of the subtest (after every Body the
// subtest opened is closed), and reports an error from that Close.
func Run(t *testing.T, newStore func(t *testing.T) msstore.Storage) {
	t.Helper()
	tests := []struct {
		name string
		fn   func(t *testing.T, s msstore.Storage)
	}{
		{"PutOpen", testPutOpen},
		{"UnknownSize", testUnknownSize},
		{"ReadAtRanges", testReadAtRanges},
		{"ConcurrentReadAt", testConcurrentReadAt},
		{"ConcurrentPut", testConcurrentPut},
		{"RefEncoding", testRefEncoding},
		{"NotFound", testNotFound},
		{"RefCount", testRefCount},
		{"OpenSurvivesRelease", testOpenSurvivesRelease},
		{"ReaderError", testReaderError},
		{"ContextCanceled", testContextCanceled},
		{"Walk", testWalk},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := makeStore(t, newStore)
			t.Cleanup(func() {
				if err := s.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
			tc.fn(t, s)
		})
	}
	// ClosedStore closes its store itself.
	t.Run("ClosedStore", func(t *testing.T) { testClosedStore(t, newStore) })
}

func makeStore(t *testing.T, newStore func(t *testing.T) msstore.Storage) msstore.Storage {
	t.Helper()
	s := newStore(t)
	if s == nil {
		t.Fatal("newStore returned a nil Storage")
	}
	return s
}

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// checksum is the CRC32C a Ref of data must carry.
func checksum(data []byte) uint32 { return crc32.Checksum(data, crcTable) }

// randBytes returns n pseudo-random bytes, the same for the same seed.
func randBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, uint64(n)))
	b := make([]byte, n)
	for i := 0; i < n; i += 8 {
		v := r.Uint64()
		for j := i; j < min(n, i+8); j++ {
			b[j] = byte(v >> (8 * (j - i)))
		}
	}
	return b
}

// put stores data and checks the Ref's Size and Sum.
func put(t *testing.T, s msstore.Storage, data []byte, meta msstore.Meta) msstore.Ref {
	t.Helper()
	ref, err := s.Put(t.Context(), bytes.NewReader(data), meta)
	if err != nil {
		t.Fatalf("Put of %d bytes: %v", len(data), err)
	}
	checkRef(t, ref, data)
	return ref
}

func checkRef(t *testing.T, ref msstore.Ref, data []byte) {
	t.Helper()
	if ref.Size != int64(len(data)) {
		t.Errorf("Put of %d bytes: Ref %v has Size %d", len(data), ref, ref.Size)
	}
	if want := checksum(data); ref.Sum != want {
		t.Errorf("Put of %d bytes: Ref %v has Sum %08x, want CRC32C %08x", len(data), ref, ref.Sum, want)
	}
}

// open opens ref and checks the Body's size.
func open(t *testing.T, s msstore.Storage, ref msstore.Ref, size int) msstore.Body {
	t.Helper()
	b, err := s.Open(t.Context(), ref)
	if err != nil {
		t.Fatalf("Open(%v): %v", ref, err)
	}
	t.Cleanup(func() { b.Close() })
	if b.Size() != int64(size) {
		t.Fatalf("Open(%v): Body.Size() = %d, want %d", ref, b.Size(), size)
	}
	return b
}

// readAll reads b from start to end through a section reader and compares it
// with want.
func readAll(t *testing.T, b msstore.Body, want []byte, what string) {
	t.Helper()
	got, err := io.ReadAll(io.NewSectionReader(b, 0, b.Size()))
	if err != nil {
		t.Errorf("%s: reading body: %v", what, err)
	}
	compare(t, got, want, what)
}

func compare(t *testing.T, got, want []byte, what string) {
	t.Helper()
	if bytes.Equal(got, want) {
		return
	}
	i := 0
	for i < len(got) && i < len(want) && got[i] == want[i] {
		i++
	}
	t.Errorf("%s: got %d bytes, want %d; first difference at offset %d", what, len(got), len(want), i)
}

// check opens ref, reads it all, compares it with want and closes it.
func check(t *testing.T, s msstore.Storage, ref msstore.Ref, want []byte) {
	t.Helper()
	b := open(t, s, ref, len(want))
	readAll(t, b, want, fmt.Sprintf("body %v", ref))
	if err := b.Close(); err != nil {
		t.Errorf("Body.Close: %v", err)
	}
}

// wantNotFound checks that Open, Retain and Release of ref report ErrNotFound.
func wantNotFound(t *testing.T, s msstore.Storage, ref msstore.Ref, what string) {
	t.Helper()
	ctx := t.Context()
	b, err := s.Open(ctx, ref)
	if err == nil {
		b.Close()
	}
	if !errors.Is(err, msstore.ErrNotFound) {
		t.Errorf("%s: Open(%v) error = %v, want ErrNotFound", what, ref, err)
	}
	if err := s.Retain(ctx, ref, 1); !errors.Is(err, msstore.ErrNotFound) {
		t.Errorf("%s: Retain(%v, 1) error = %v, want ErrNotFound", what, ref, err)
	}
	if err := s.Release(ctx, ref); !errors.Is(err, msstore.ErrNotFound) {
		t.Errorf("%s: Release(%v) error = %v, want ErrNotFound", what, ref, err)
	}
}

func release(t *testing.T, s msstore.Storage, ref msstore.Ref) {
	t.Helper()
	if err := s.Release(t.Context(), ref); err != nil {
		t.Fatalf("Release(%v): %v", ref, err)
	}
}

// readOnly hides every method of a reader but Read, such as a WriterTo or a
// Len, so that the store cannot learn the length in advance.
type readOnly struct{ r io.Reader }

func (r readOnly) Read(p []byte) (int, error) { return r.r.Read(p) }

// chunkReader returns data in small irregular chunks, and io.EOF together
// with the last one.
type chunkReader struct {
	data []byte
	i    int
}

var chunkSizes = []int{1, 7, 4096, 13, 65541, 300, 0, 2, 8191, 1000}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	n := min(len(p), len(c.data), chunkSizes[c.i%len(chunkSizes)])
	c.i++
	copy(p, c.data[:n])
	c.data = c.data[n:]
	if len(c.data) == 0 {
		return n, io.EOF
	}
	return n, nil
}

func testPutOpen(t *testing.T, s msstore.Storage) {
	sizes := []int{0, 1, 4095, 4096, 65535, 65536, 65537, 200000, 1<<20 + 3}
	bodies := make([][]byte, len(sizes))
	refs := make([]msstore.Ref, len(sizes))
	for i, n := range sizes {
		bodies[i] = randBytes(uint64(i+1), n)
		refs[i] = put(t, s, bodies[i], msstore.Meta{MessageID: fmt.Sprintf("<%d@example.org>", i)})
		if refs[i].IsZero() {
			t.Fatalf("Put of %d bytes returned the zero Ref", n)
		}
		if refs[i].Node != refs[0].Node {
			t.Errorf("Put of %d bytes: Ref.Node = %d, earlier Put gave %d", n, refs[i].Node, refs[0].Node)
		}
		for j := range i {
			if refs[j].ID == refs[i].ID {
				t.Errorf("Refs %v and %v have the same ID", refs[j], refs[i])
			}
		}
		check(t, s, refs[i], bodies[i])
	}
	// Later Puts must not have disturbed earlier bodies.
	for i := range refs {
		check(t, s, refs[i], bodies[i])
	}
}

func testUnknownSize(t *testing.T, s msstore.Storage) {
	small := randBytes(11, 3001)
	ref, err := s.Put(t.Context(), readOnly{iotest.OneByteReader(bytes.NewReader(small))}, msstore.Meta{})
	if err != nil {
		t.Fatalf("Put from a one-byte reader: %v", err)
	}
	checkRef(t, ref, small)
	check(t, s, ref, small)

	large := randBytes(12, 300017)
	ref, err = s.Put(t.Context(), readOnly{&chunkReader{data: large}}, msstore.Meta{})
	if err != nil {
		t.Fatalf("Put from a chunked reader: %v", err)
	}
	checkRef(t, ref, large)
	check(t, s, ref, large)
}

func testReadAtRanges(t *testing.T, s msstore.Storage) {
	const n = 300123
	data := randBytes(21, n)
	b := open(t, s, put(t, s, data, msstore.Meta{}), n)
	type span struct{ off, len int }
	spans := []span{
		{0, 1}, {0, 100}, {0, 65536}, {1, 65536}, {65535, 1}, {65535, 2}, {65530, 20},
		{65536, 65536}, {131071, 3}, {131062, 65556}, {196600, 70000}, {n / 2, 1000},
		{n - 1, 1}, {n - 100, 100}, {0, n}, // these end exactly at the end
		{n, 1}, {n + 1000, 10}, // these start at or past the end
		{n - 10, 100}, {0, n + 5}, {n - 1, 65536}, // these extend past the end
	}
	r := rand.New(rand.NewPCG(21, 22))
	for range 200 {
		off := r.IntN(n)
		spans = append(spans, span{off, r.IntN(min(n-off, 70000)) + 1})
	}
	for _, sp := range spans {
		p := make([]byte, sp.len)
		got, err := b.ReadAt(p, int64(sp.off))
		var want []byte
		if sp.off < n {
			want = data[sp.off:min(n, sp.off+sp.len)]
		}
		what := fmt.Sprintf("ReadAt(%d bytes, off %d) of a %d-byte body", sp.len, sp.off, n)
		switch {
		case got != len(want):
			t.Errorf("%s = %d, %v; want %d bytes", what, got, err, len(want))
		case len(want) < sp.len && err != io.EOF:
			t.Errorf("%s = %d, %v; want io.EOF", what, got, err)
		case len(want) == sp.len && err != nil && (err != io.EOF || sp.off+sp.len != n):
			t.Errorf("%s = %d, %v; want nil error", what, got, err)
		}
		compare(t, p[:max(0, min(got, sp.len))], want, what)
	}
	if got, err := b.ReadAt(make([]byte, 10), -1); err == nil || got != 0 {
		t.Errorf("ReadAt(10 bytes, off -1) = %d, %v; want an error", got, err)
	}
}

func testConcurrentReadAt(t *testing.T, s msstore.Storage) {
	const n = 500009
	data := randBytes(31, n)
	b := open(t, s, put(t, s, data, msstore.Meta{}), n)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(31, uint64(g)))
			for range 200 {
				off := r.IntN(n)
				p := make([]byte, r.IntN(70000)+1)
				got, err := b.ReadAt(p, int64(off))
				want := data[off:min(n, off+len(p))]
				if got != len(want) || (got < len(p) && err != io.EOF) || (got == len(p) && err != nil && err != io.EOF) {
					t.Errorf("goroutine %d: ReadAt(%d bytes, off %d) = %d, %v; want %d bytes", g, len(p), off, got, err, len(want))
					return
				}
				if !bytes.Equal(p[:got], want) {
					t.Errorf("goroutine %d: ReadAt(%d bytes, off %d) returned wrong bytes", g, len(p), off)
					return
				}
			}
		})
	}
	wg.Wait()
}

func testConcurrentPut(t *testing.T, s msstore.Storage) {
	const goroutines, puts = 16, 20
	var refs [goroutines][puts]msstore.Ref
	var bodies [goroutines][puts][]byte
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range puts {
				data := randBytes(uint64(1000+g*puts+i), (g*puts+i)*1237%70001)
				meta := msstore.Meta{
					MessageID: fmt.Sprintf("<%d.%d@example.org>", g, i),
					Owners:    []msstore.Owner{{User: fmt.Sprintf("user%d", g), Mailbox: "INBOX"}},
				}
				ref, err := s.Put(t.Context(), bytes.NewReader(data), meta)
				if err != nil {
					t.Errorf("goroutine %d: Put %d of %d bytes: %v", g, i, len(data), err)
					return
				}
				refs[g][i], bodies[g][i] = ref, data
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	ids := make(map[uint64]msstore.Ref)
	for g := range goroutines {
		for i := range puts {
			ref := refs[g][i]
			checkRef(t, ref, bodies[g][i])
			if prev, ok := ids[ref.ID]; ok {
				t.Errorf("Refs %v and %v have the same ID", prev, ref)
			}
			ids[ref.ID] = ref
			if ref.Node != refs[0][0].Node {
				t.Errorf("Ref %v has Node %d, another Put gave %d", ref, ref.Node, refs[0][0].Node)
			}
			check(t, s, ref, bodies[g][i])
		}
	}
}

func testRefEncoding(t *testing.T, s msstore.Storage) {
	for i, n := range []int{0, 77, 150001} {
		data := randBytes(uint64(41+i), n)
		ref := put(t, s, data, msstore.Meta{})

		bin, err := ref.MarshalBinary()
		if err != nil {
			t.Fatalf("%v.MarshalBinary: %v", ref, err)
		}
		var fromBin msstore.Ref
		if err := fromBin.UnmarshalBinary(bin); err != nil {
			t.Fatalf("UnmarshalBinary of %v: %v", ref, err)
		}
		if fromBin != ref {
			t.Errorf("binary round trip of %v gave %v", ref, fromBin)
		}
		check(t, s, fromBin, data)

		fromText, err := msstore.ParseRef(ref.String())
		if err != nil {
			t.Fatalf("ParseRef(%q): %v", ref.String(), err)
		}
		if fromText != ref {
			t.Errorf("text round trip of %v gave %v", ref, fromText)
		}
		check(t, s, fromText, data)
	}
}

func testNotFound(t *testing.T, s msstore.Storage) {
	data := randBytes(51, 5000)
	ref := put(t, s, data, msstore.Meta{})
	wrong := func(f func(r *msstore.Ref)) msstore.Ref { r := ref; f(&r); return r }
	cases := []struct {
		what string
		ref  msstore.Ref
	}{
		{"zero Ref", msstore.Ref{}},
		{"unknown ID", wrong(func(r *msstore.Ref) { r.ID += 1000000 })},
		{"wrong Sum", wrong(func(r *msstore.Ref) { r.Sum ^= 0x5a5a5a5a })},
		{"wrong Size", wrong(func(r *msstore.Ref) { r.Size++ })},
		{"smaller Size", wrong(func(r *msstore.Ref) { r.Size-- })},
		{"wrong Node", wrong(func(r *msstore.Ref) { r.Node++ })},
	}
	for _, c := range cases {
		wantNotFound(t, s, c.ref, c.what)
	}
	// None of that may have touched the real body, which has one reference.
	check(t, s, ref, data)
	release(t, s, ref)
	wantNotFound(t, s, ref, "released body")
}

func testRefCount(t *testing.T, s msstore.Storage) {
	ctx := t.Context()
	data := randBytes(61, 12345)
	owners := []msstore.Owner{
		{User: "alice", Mailbox: "INBOX"}, {User: "bob", Mailbox: "INBOX"}, {User: "carol", Mailbox: "Lists"},
	}
	ref := put(t, s, data, msstore.Meta{MessageID: "<rc@example.org>", Owners: owners})

	for _, n := range []int{0, -1} {
		if err := s.Retain(ctx, ref, n); err == nil {
			t.Errorf("Retain(%v, %d) succeeded, want an error", ref, n)
		}
	}
	// 3 references.
	release(t, s, ref)
	release(t, s, ref)
	check(t, s, ref, data) // 1 left
	if err := s.Retain(ctx, ref, 2); err != nil {
		t.Fatalf("Retain(%v, 2): %v", ref, err)
	}
	for left := 2; left > 0; left-- {
		release(t, s, ref)
		check(t, s, ref, data)
	}
	release(t, s, ref)
	wantNotFound(t, s, ref, "body released to zero")

	// A body without owners starts with one reference.
	lone := randBytes(62, 999)
	ref = put(t, s, lone, msstore.Meta{MessageID: "<lone@example.org>"})
	check(t, s, ref, lone)
	release(t, s, ref)
	wantNotFound(t, s, ref, "ownerless body after one Release")
}

func testOpenSurvivesRelease(t *testing.T, s msstore.Storage) {
	const n = 100003
	data := randBytes(71, n)
	ref := put(t, s, data, msstore.Meta{})
	b := open(t, s, ref, n)
	release(t, s, ref)
	wantNotFound(t, s, ref, "released body")
	// More traffic and, if the store can, a compaction must not disturb it.
	other := randBytes(72, 70000)
	for range 3 {
		release(t, s, put(t, s, other, msstore.Meta{}))
	}
	if c, ok := s.(msstore.Compactor); ok {
		if _, err := c.Compact(t.Context()); err != nil {
			t.Errorf("Compact: %v", err)
		}
	}
	readAll(t, b, data, "open body after its last Release")
	p := make([]byte, 1000)
	if got, err := b.ReadAt(p, n-1000); got != 1000 || (err != nil && err != io.EOF) {
		t.Errorf("ReadAt(1000 bytes, off %d) = %d, %v", n-1000, got, err)
	}
	compare(t, p, data[n-1000:], "tail of open body after its last Release")
	if err := b.Close(); err != nil {
		t.Errorf("Body.Close: %v", err)
	}
}

func testReaderError(t *testing.T, s msstore.Storage) {
	good := randBytes(81, 2000)
	ref := put(t, s, good, msstore.Meta{MessageID: "<good@example.org>"})
	errBoom := errors.New("storetest: reader failed")
	for _, n := range []int{0, 100, 200000} {
		r := io.MultiReader(bytes.NewReader(randBytes(82, n)), iotest.ErrReader(errBoom))
		if _, err := s.Put(t.Context(), r, msstore.Meta{MessageID: "<bad@example.org>"}); !errors.Is(err, errBoom) {
			t.Errorf("Put from a reader failing after %d bytes: error = %v, want it to wrap %v", n, err, errBoom)
		}
	}
	if w, ok := s.(msstore.Walker); ok {
		var seen []msstore.Ref
		err := w.Walk(t.Context(), func(r msstore.Ref, m msstore.Meta) error {
			seen = append(seen, r)
			if r.ID != ref.ID {
				t.Errorf("Walk lists %v (MessageID %q) after failed Puts", r, m.MessageID)
			}
			return nil
		})
		if err != nil {
			t.Errorf("Walk: %v", err)
		}
		if len(seen) != 1 {
			t.Errorf("Walk listed %d bodies, want 1", len(seen))
		}
	}
	check(t, s, ref, good)
}

func testContextCanceled(t *testing.T, s msstore.Storage) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := s.Put(ctx, bytes.NewReader(randBytes(91, 1000)), msstore.Meta{})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Put with a canceled context: error = %v, want context.Canceled", err)
	}
}

func testWalk(t *testing.T, s msstore.Storage) {
	w, ok := s.(msstore.Walker)
	if !ok {
		t.Skip("store does not implement msstore.Walker")
	}
	type body struct {
		data []byte
		meta msstore.Meta
		ref  msstore.Ref
	}
	bodies := []*body{
		{data: randBytes(101, 1500), meta: msstore.Meta{
			MessageID: "<a@example.org>",
			Received:  time.Date(2024, 3, 1, 12, 30, 45, 0, time.UTC),
			Owners:    []msstore.Owner{{User: "alice", Mailbox: "INBOX"}},
		}},
		{data: randBytes(102, 70000), meta: msstore.Meta{
			MessageID: "<b@example.org>",
			Received:  time.Date(2025, 11, 30, 23, 59, 59, 0, time.UTC),
			Owners:    []msstore.Owner{{User: "bob", Mailbox: "INBOX"}, {User: "carol", Mailbox: "Archive/2025"}},
		}},
		{data: nil, meta: msstore.Meta{
			MessageID: "<c@example.org>",
			Received:  time.Date(2023, 1, 2, 3, 4, 5, 0, time.UTC),
		}},
	}
	for _, b := range bodies {
		// Put must not retain meta: scribble on the caller's copy afterwards.
		owners := slices.Clone(b.meta.Owners)
		meta := b.meta
		meta.Owners = owners
		b.ref = put(t, s, b.data, meta)
		for i := range owners {
			owners[i] = msstore.Owner{User: "mallory", Mailbox: "Junk"}
		}
	}
	release(t, s, bodies[0].ref)
	live := map[uint64]*body{bodies[1].ref.ID: bodies[1], bodies[2].ref.ID: bodies[2]}

	for pass := range 2 {
		seen := make(map[uint64]bool)
		err := w.Walk(t.Context(), func(ref msstore.Ref, m msstore.Meta) error {
			b, ok := live[ref.ID]
			switch {
			case !ok:
				t.Errorf("pass %d: Walk lists %v (MessageID %q), which is not live", pass, ref, m.MessageID)
				return nil
			case seen[ref.ID]:
				t.Errorf("pass %d: Walk lists %v twice", pass, ref)
			}
			seen[ref.ID] = true
			if ref.Node != b.ref.Node || ref.Size != b.ref.Size || ref.Sum != b.ref.Sum {
				t.Errorf("pass %d: Walk gives Ref %v, Put gave %v", pass, ref, b.ref)
			}
			if m.MessageID != b.meta.MessageID || !m.Received.Equal(b.meta.Received) || !slices.Equal(m.Owners, b.meta.Owners) {
				t.Errorf("pass %d: Walk gives Meta %+v for %v, want %+v", pass, m, ref, b.meta)
			}
			// Walk hands out copies: scribbling on one must not show next time.
			for i := range m.Owners {
				m.Owners[i].User = "mallory"
			}
			return nil
		})
		if err != nil {
			t.Fatalf("Walk: %v", err)
		}
		if len(seen) != len(live) {
			t.Errorf("pass %d: Walk listed %d bodies, want %d", pass, len(seen), len(live))
		}
	}
	for _, b := range live {
		check(t, s, b.ref, b.data)
	}

	errStop := errors.New("storetest: stop walking")
	calls := 0
	err := w.Walk(t.Context(), func(msstore.Ref, msstore.Meta) error {
		calls++
		return errStop
	})
	if !errors.Is(err, errStop) {
		t.Errorf("Walk with fn failing: error = %v, want %v", err, errStop)
	}
	if calls != 1 {
		t.Errorf("Walk called fn %d times after it failed, want 1 call", calls)
	}
}

func testClosedStore(t *testing.T, newStore func(t *testing.T) msstore.Storage) {
	s := makeStore(t, newStore)
	closed := false
	t.Cleanup(func() {
		if !closed {
			s.Close()
		}
	})
	ctx := t.Context()
	data := randBytes(111, 80000)
	ref := put(t, s, data, msstore.Meta{})
	b := open(t, s, ref, len(data))

	closed = true
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	// A Body open at Close stays readable until it is closed.
	readAll(t, b, data, "body open across Close of the store")
	if err := b.Close(); err != nil {
		t.Errorf("Body.Close: %v", err)
	}

	if _, err := s.Put(ctx, bytes.NewReader(data), msstore.Meta{}); !errors.Is(err, msstore.ErrClosed) {
		t.Errorf("Put after Close: error = %v, want ErrClosed", err)
	}
	if b, err := s.Open(ctx, ref); !errors.Is(err, msstore.ErrClosed) {
		if err == nil {
			b.Close()
		}
		t.Errorf("Open after Close: error = %v, want ErrClosed", err)
	}
	if err := s.Retain(ctx, ref, 1); !errors.Is(err, msstore.ErrClosed) {
		t.Errorf("Retain after Close: error = %v, want ErrClosed", err)
	}
	if err := s.Release(ctx, ref); !errors.Is(err, msstore.ErrClosed) {
		t.Errorf("Release after Close: error = %v, want ErrClosed", err)
	}
	if w, ok := s.(msstore.Walker); ok {
		err := w.Walk(ctx, func(msstore.Ref, msstore.Meta) error { return nil })
		if !errors.Is(err, msstore.ErrClosed) {
			t.Errorf("Walk after Close: error = %v, want ErrClosed", err)
		}
	}
	s.Close() // may fail, must not panic
}
