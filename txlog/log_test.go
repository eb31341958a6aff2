package txlog

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// openLog opens a log in dir with a discarding logger; mod, if not nil,
// adjusts the config first.
func openLog(t testing.TB, dir string, mod func(*Config)) *Log {
	t.Helper()
	cfg := Config{Dir: dir, Logger: slog.New(slog.DiscardHandler)}
	if mod != nil {
		mod(&cfg)
	}
	l, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Open(%s): %v", dir, err)
	}
	return l
}

func smallSegments(c *Config) {
	c.SegmentSize = 64 << 10
	c.MaxBodySize = 16 << 10
}

func closeLog(t testing.TB, l *Log) {
	t.Helper()
	if err := l.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

// testBody returns n deterministic pseudo-random bytes for seed.
func testBody(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, uint64(n)))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func testEnv(i int) Envelope {
	return Envelope{
		From:     fmt.Sprintf("sender%d@example.org", i),
		To:       []string{fmt.Sprintf("rcpt%d@example.com", i)},
		Received: time.Date(2025, 3, 1, 12, 0, i, 0, time.UTC),
		Remote:   "192.0.2.1:2525",
	}
}

func accept(t testing.TB, l *Log, env Envelope, body []byte) *Txn {
	t.Helper()
	txn, err := l.Accept(context.Background(), env, bytes.NewReader(body))
	if err != nil {
		t.Fatalf("Accept: %v", err)
	}
	return txn
}

func done(t testing.TB, l *Log, txn *Txn) {
	t.Helper()
	if err := l.Done(context.Background(), txn); err != nil {
		t.Fatalf("Done(%d): %v", txn.ID, err)
	}
}

func checkBody(t testing.TB, txn *Txn, want []byte) {
	t.Helper()
	if txn.Size != int64(len(want)) {
		t.Errorf("txn %d: Size %d, want %d", txn.ID, txn.Size, len(want))
	}
	got, err := io.ReadAll(txn.Body())
	if err != nil {
		t.Errorf("txn %d: reading the body: %v", txn.ID, err)
		return
	}
	if !bytes.Equal(got, want) {
		t.Errorf("txn %d: body of %d bytes differs from the %d bytes accepted", txn.ID, len(got), len(want))
	}
}

func envEqual(a, b Envelope) bool {
	return a.From == b.From && slices.Equal(a.To, b.To) && a.Received.Equal(b.Received) && a.Remote == b.Remote &&
		a.Mailbox == b.Mailbox && a.Ret == b.Ret && a.EnvID == b.EnvID &&
		(a.Rcpts == nil) == (b.Rcpts == nil) && slices.Equal(a.Rcpts, b.Rcpts)
}

func checkEnv(t testing.TB, txn *Txn, want Envelope) {
	t.Helper()
	if !envEqual(txn.Envelope, want) {
		t.Errorf("txn %d: envelope %+v, want %+v", txn.ID, txn.Envelope, want)
	}
}

func pendingIDs(l *Log) []uint64 {
	var ids []uint64
	for _, t := range l.Pending() {
		ids = append(ids, t.ID)
	}
	return ids
}

func segFiles(t testing.TB, dir string) []string {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(dir, "seg-*.txl"))
	if err != nil {
		t.Fatal(err)
	}
	for i, n := range names {
		names[i] = filepath.Base(n)
	}
	return names
}

func activeSeg(l *Log) uint32 {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.active == nil {
		return 0
	}
	return l.active.num
}

func TestAcceptRecordDone(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	l := openLog(t, dir, nil)

	now := time.Now() // with a monotonic reading and the local zone: compared with Equal
	envs := []Envelope{
		{From: "", To: []string{"postmaster@example.com"}, Received: now, Remote: "[2001:db8::1]:4711"},
		{From: "jörg@bücher.example", To: []string{"用户@例子.广告", "δοκιμή@παράδειγμα.δοκιμή", "plain@example.net"}, Received: now.Add(time.Second), Remote: "198.51.100.7:25",
			Ret: "HDRS", EnvID: "QQ314159", Rcpts: []Rcpt{{Notify: "SUCCESS,FAILURE", ORcpt: "rfc822;bob@example.com"}, {}, {Relay: true}}},
		{From: "a@b", To: []string{"c@d", "c@d", ""}, Received: time.Date(1969, 7, 20, 20, 17, 40, 123456789, time.FixedZone("X", 3600))},
		{From: "big@example.org", To: []string{"x@example.org", "y@example.org"}, Received: now.Add(-time.Hour), Remote: "203.0.113.9:587"},
	}
	sizes := []int{0, 1, 4096, 300000}
	var bodies [][]byte
	var txns []*Txn
	for i, n := range sizes {
		bodies = append(bodies, testBody(uint64(i), n))
		txn := accept(t, l, envs[i], bodies[i])
		if i > 0 && txn.ID <= txns[i-1].ID {
			t.Errorf("ID %d after %d", txn.ID, txns[i-1].ID)
		}
		txns = append(txns, txn)
	}
	for i, txn := range txns {
		checkBody(t, txn, bodies[i])
		checkEnv(t, txn, envs[i])
	}

	// Steps: on the first (done later), on the second (overwritten) and the fourth.
	steps := []struct {
		i     int
		key   string
		value []byte
	}{
		{0, "stored", []byte("ref-0")},
		{1, "stored", []byte("ref-1")},
		{1, "delivered:c@d", nil},
		{1, "stored", []byte("ref-1b")},
		{3, "stored", bytes.Repeat([]byte{0, 0xff}, 1000)},
		{3, "ключ", []byte("значение")},
	}
	for _, s := range steps {
		if err := l.Record(ctx, txns[s.i], s.key, s.value); err != nil {
			t.Fatalf("Record(%d, %q): %v", txns[s.i].ID, s.key, err)
		}
	}
	if v, ok := txns[1].Step("stored"); !ok || string(v) != "ref-1b" {
		t.Errorf("Step(stored) = %q, %v; want ref-1b", v, ok)
	}
	done(t, l, txns[0])
	done(t, l, txns[2])
	closeLog(t, l)

	l = openLog(t, dir, nil)
	pending := l.Pending()
	if got, want := pendingIDs(l), []uint64{txns[1].ID, txns[3].ID}; !slices.Equal(got, want) {
		t.Fatalf("Pending IDs %v, want %v", got, want)
	}
	wantSteps := []map[string]string{
		{"stored": "ref-1b", "delivered:c@d": ""},
		{"stored": string(bytes.Repeat([]byte{0, 0xff}, 1000)), "ключ": "значение"},
	}
	for k, i := range []int{1, 3} {
		p := pending[k]
		checkEnv(t, p, envs[i])
		checkBody(t, p, bodies[i])
		if len(p.steps) != len(wantSteps[k]) {
			t.Errorf("txn %d: %d steps, want %d", p.ID, len(p.steps), len(wantSteps[k]))
		}
		for key, want := range wantSteps[k] {
			if v, ok := p.Step(key); !ok || string(v) != want {
				t.Errorf("txn %d: Step(%q) = %q, %v; want %q", p.ID, key, v, ok, want)
			}
		}
		if _, ok := p.Step("missing"); ok {
			t.Errorf("txn %d: Step(missing) found", p.ID)
		}
	}

	// IDs keep increasing across the reopen.
	next := accept(t, l, testEnv(9), []byte("after reopen\r\n"))
	for _, txn := range txns {
		if next.ID <= txn.ID {
			t.Errorf("ID %d after reopen is not above earlier ID %d", next.ID, txn.ID)
		}
	}
	// Done on a recovered transaction sticks.
	done(t, l, pending[0])
	closeLog(t, l)

	l = openLog(t, dir, nil)
	defer l.Close()
	if got, want := pendingIDs(l), []uint64{txns[3].ID, next.ID}; !slices.Equal(got, want) {
		t.Fatalf("after the second reopen: Pending IDs %v, want %v", got, want)
	}
	checkBody(t, l.Pending()[0], bodies[3])
	checkBody(t, l.Pending()[1], []byte("after reopen\r\n"))
	again := accept(t, l, testEnv(10), nil)
	if again.ID <= next.ID {
		t.Errorf("ID %d after the second reopen is not above %d", again.ID, next.ID)
	}
}

// acceptDoneMany accepts and finishes n transactions of size bytes from
// workers goroutines.
func acceptDoneMany(t *testing.T, l *Log, n, workers, size int) {
	acceptFinishMany(t, l, n, workers, size, l.Done)
}

// acceptFinishMany is acceptDoneMany with finish in place of Done.
func acceptFinishMany(t *testing.T, l *Log, n, workers, size int, finish func(context.Context, *Txn) error) {
	t.Helper()
	var (
		next atomic.Int64
		wg   sync.WaitGroup
		errs = make(chan error, workers)
	)
	for w := 0; w < workers; w++ {
		wg.Go(func() {
			for {
				i := next.Add(1)
				if i > int64(n) {
					return
				}
				txn, err := l.Accept(context.Background(), testEnv(int(i)), bytes.NewReader(testBody(uint64(i), size)))
				if err == nil {
					err = finish(context.Background(), txn)
				}
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

func TestTrim(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir, smallSegments)
	defer l.Close()

	acceptDoneMany(t, l, 500, 8, 8<<10)
	if files := segFiles(t, dir); len(files) > 3 {
		t.Fatalf("after 500 finished transactions of 8 KiB: %d segments left: %v", len(files), files)
	}

	// One transaction stays pending while the log moves on: its segment
	// stays until it is done.
	body := testBody(7, 1000)
	long := accept(t, l, testEnv(7), body)
	longSeg := segName(long.seg.num)
	acceptDoneMany(t, l, 100, 8, 8<<10) // ~800 KiB: a dozen segments
	if activeSeg(l) <= long.seg.num+2 {
		t.Fatalf("the log did not move on: active segment %d, long transaction in %d", activeSeg(l), long.seg.num)
	}
	files := segFiles(t, dir)
	if !slices.Contains(files, longSeg) {
		t.Fatalf("segment %s of the pending transaction %d removed: %v", longSeg, long.ID, files)
	}
	// Every segment from the pending transaction's on stays: later ones
	// may hold its steps (see doc.go).
	checkBody(t, long, body)

	done(t, l, long)
	files = segFiles(t, dir)
	if slices.Contains(files, longSeg) {
		t.Errorf("segment %s still there after its last transaction is done: %v", longSeg, files)
	}
	if len(files) > 3 {
		t.Errorf("%d segments left after everything is done: %v", len(files), files)
	}
}

// TestTrimKeepsRecordsOfOlderSegments: a segment holds not only the
// accepts of its own transactions but also Step and Done records of
// transactions accepted in older segments, and the highest ID so far.
// Removing it while an older segment stays loses those.
// TestDoneAsync: done marks that did not wait are written by the group
// commits that follow, or at Close, and trim the log like Done's.
func TestDoneAsync(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir, smallSegments)
	acceptFinishMany(t, l, 600, 8, 8<<10, l.DoneAsync)
	// The last marks may still be queued: Close writes them.
	closeLog(t, l)
	l = openLog(t, dir, smallSegments)
	defer l.Close()
	if ids := pendingIDs(l); len(ids) != 0 {
		t.Fatalf("after 600 transactions finished with DoneAsync and a Close: %d pending: %v", len(ids), ids)
	}
	if files := segFiles(t, dir); len(files) > 3 {
		t.Fatalf("after 600 finished transactions of 8 KiB: %d segments left: %v", len(files), files)
	}

	// Alone, DoneAsync leads its own commit and returns once it is written.
	txn := accept(t, l, testEnv(1), testBody(1, 100))
	if err := l.DoneAsync(t.Context(), txn); err != nil {
		t.Fatal(err)
	}
	if err := l.DoneAsync(t.Context(), txn); err != nil {
		t.Fatalf("a second DoneAsync: %v", err)
	}
}

// TestRecordAsync: a step recorded without waiting is seen by Step at
// once, written by the next group commit or Close, and found again after
// a reopen; a key that is not UTF-8 is refused as by Record.
func TestRecordAsync(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	l := openLog(t, dir, smallSegments)
	var txns []*Txn
	for i := range 50 {
		txns = append(txns, accept(t, l, testEnv(i), testBody(uint64(i), 100)))
	}
	for i, txn := range txns {
		if err := l.RecordAsync(ctx, txn, "stored", []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
		if v, ok := txn.Step("stored"); !ok || !bytes.Equal(v, []byte{byte(i)}) {
			t.Fatalf("txn %d: Step after RecordAsync: %q, %v", txn.ID, v, ok)
		}
	}
	if err := l.RecordAsync(ctx, txns[0], "bad\xff", nil); err == nil {
		t.Error("RecordAsync took a key that is not UTF-8")
	}
	closeLog(t, l)
	l = openLog(t, dir, smallSegments)
	defer l.Close()
	pending := l.Pending()
	if len(pending) != len(txns) {
		t.Fatalf("%d pending after reopen, want %d", len(pending), len(txns))
	}
	for i, txn := range pending {
		if v, ok := txn.Step("stored"); !ok || !bytes.Equal(v, []byte{byte(i)}) {
			t.Errorf("txn %d after reopen: step %q, %v", txn.ID, v, ok)
		}
	}
}

func TestTrimKeepsRecordsOfOlderSegments(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	l := openLog(t, dir, smallSegments)

	p := accept(t, l, testEnv(1), []byte("pending\r\n")) // stays pending: keeps segment 1
	d := accept(t, l, testEnv(2), []byte("done later\r\n"))
	maxID := d.ID
	// fill fills the active segment with finished transactions until the
	// log rolls to the next one.
	fill := func() {
		for seg := activeSeg(l); activeSeg(l) == seg; {
			f := accept(t, l, testEnv(3), testBody(3, 12<<10))
			maxID = max(maxID, f.ID)
			done(t, l, f)
		}
	}
	fill() // now in segment 2
	if err := l.Record(ctx, p, "stored", []byte("ref-p")); err != nil {
		t.Fatal(err)
	}
	done(t, l, d) // Done record in segment 2, for a transaction of segment 1
	fill()        // segment 2 sealed, all of its own transactions done: removed
	// Only step records of p (ID 1) from here on: the segment with the
	// highest ID goes too.
	for seg := activeSeg(l); activeSeg(l) == seg; {
		if err := l.Record(ctx, p, "big", testBody(4, 12<<10)); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("segments: %v; highest ID %d", segFiles(t, dir), maxID)
	closeLog(t, l)

	l = openLog(t, dir, smallSegments)
	defer l.Close()
	if got, want := pendingIDs(l), []uint64{p.ID}; !slices.Equal(got, want) {
		t.Errorf("Pending IDs %v, want %v: transaction %d, done before the close, is back", got, want, d.ID)
	}
	if len(l.Pending()) > 0 {
		if v, ok := l.Pending()[0].Step("stored"); !ok || string(v) != "ref-p" {
			t.Errorf("txn %d: Step(stored) = %q, %v after reopen; want ref-p", p.ID, v, ok)
		}
	}
	if n := accept(t, l, testEnv(5), nil); n.ID <= maxID {
		t.Errorf("new ID %d after reopen; IDs up to %d were used before", n.ID, maxID)
	}
}

// TestAcceptInBatchWithRoll: one batch holds two accepts; the first fits
// in the active segment, the second rolls to the next one. The first must
// be as durable as the second.
func TestAcceptInBatchWithRoll(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir, smallSegments)
	// Segment 1: ~40 KiB, every transaction done.
	for i := range 4 {
		done(t, l, accept(t, l, testEnv(i), testBody(uint64(i), 10000)))
	}

	// Keep a leader busy so that both accepts queue up behind it, then
	// let them go as one batch.
	hold, held, release := &write{}, make(chan struct{}), make(chan struct{})
	commit := l.commits.Commit
	l.commits.Commit = func(b []*write) {
		if len(b) == 1 && b[0] == hold {
			close(held)
			<-release
			return
		}
		commit(b)
	}
	l.mu.Lock()
	first := l.nextID + 1
	l.mu.Unlock()
	go l.commits.Do(hold, nil)
	<-held
	bodies := [][]byte{testBody(10, 16000), testBody(11, 16000)}
	txns := make([]*Txn, 2)
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i := range 2 {
		wg.Go(func() {
			txns[i], errs[i] = l.Accept(context.Background(), testEnv(10+i), bytes.NewReader(bodies[i]))
		})
	}
	for {
		l.mu.Lock()
		queued := l.nextID == first+1 // both numbered: both queued
		l.mu.Unlock()
		if queued {
			close(release)
			break
		}
		time.Sleep(time.Millisecond)
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("Accept %d: %v", i, err)
		}
	}
	if txns[0].seg == txns[1].seg {
		t.Fatalf("both in segment %d: the test did not make a batch that rolls", txns[0].seg.num)
	}
	for i, txn := range txns {
		checkBody(t, txn, bodies[i])
	}
	t.Logf("segments: %v", segFiles(t, dir))
	closeLog(t, l)

	l = openLog(t, dir, smallSegments)
	defer l.Close()
	want := []uint64{txns[0].ID, txns[1].ID}
	if txns[1].ID < txns[0].ID {
		want[0], want[1] = want[1], want[0]
	}
	if got := pendingIDs(l); !slices.Equal(got, want) {
		t.Errorf("after reopen: Pending IDs %v, want %v (accepted in segments %d and %d)", got, want, txns[0].seg.num, txns[1].seg.num)
	}
}

// TestRecordKeyNotUTF8: a step key is not checked at Record, but recovery
// rejects it. Either Record must refuse it, or the log must read it back.
func TestRecordKeyNotUTF8(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	l := openLog(t, dir, nil)
	a := accept(t, l, testEnv(1), []byte("a"))
	err := l.Record(ctx, a, "bad\xff", []byte("v"))
	if err != nil {
		closeLog(t, l)
		return // refused: fine
	}
	b := accept(t, l, testEnv(2), []byte("b"))
	closeLog(t, l)

	l = openLog(t, dir, nil)
	defer l.Close()
	if got, want := pendingIDs(l), []uint64{a.ID, b.ID}; !slices.Equal(got, want) {
		t.Errorf("Record(key %q) returned nil, but after reopen Pending IDs are %v, want %v", "bad\xff", got, want)
	}
}

// recordEnds returns the offsets at which the whole records of a segment
// end.
func recordEnds(t testing.TB, data []byte) []int {
	t.Helper()
	var ends []int
	for off := 0; off < len(data); {
		h, err := parseHeader(data[off:])
		if err != nil {
			t.Fatalf("offset %d: %v", off, err)
		}
		off += headerLen + int(h.length)
		ends = append(ends, off)
	}
	return ends
}

func copyDir(t testing.TB, src string) string {
	t.Helper()
	dst := t.TempDir()
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o640); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

func TestTornTail(t *testing.T) {
	ctx := context.Background()
	src := t.TempDir()
	l := openLog(t, src, smallSegments)
	bodies := map[uint64][]byte{}
	envs := map[uint64]Envelope{}
	var ids []uint64
	for i := range 12 { // ~120 KiB: two segments
		body := testBody(uint64(i), 10000+i)
		txn := accept(t, l, testEnv(i), body)
		bodies[txn.ID], envs[txn.ID] = body, testEnv(i)
		ids = append(ids, txn.ID)
		switch i {
		case 3:
			if err := l.Record(ctx, txn, "stored", []byte("ref")); err != nil {
				t.Fatal(err)
			}
		case 9:
			done(t, l, txn)
		}
	}
	closeLog(t, l)
	files := segFiles(t, src)
	if len(files) < 2 {
		t.Fatalf("want at least two segments, have %v", files)
	}
	newest := files[len(files)-1]
	data, err := os.ReadFile(filepath.Join(src, newest))
	if err != nil {
		t.Fatal(err)
	}
	ends := recordEnds(t, data)
	if len(ends) < 2 {
		t.Fatalf("newest segment has %d records", len(ends))
	}
	lastStart := ends[len(ends)-2] // the last record: the accept of ids[11]
	lastID := ids[len(ids)-1]
	var want []uint64 // pending before the damage
	for _, id := range ids {
		if id != ids[9] {
			want = append(want, id)
		}
	}

	// A header that parses, of a record whose payload is not all there.
	var fakeHeader [headerLen]byte
	(&header{kind: kindAccept, id: lastID + 1, length: 100000, sum: 1}).marshal(fakeHeader[:])
	garbage := testBody(99, 777)

	for _, tc := range []struct {
		name   string
		cut    int    // new length of the newest segment
		append []byte // then appended
		cutOff bool   // the last transaction is gone
	}{
		{"mid-payload", lastStart + headerLen + 5000, nil, true},
		{"mid-header", lastStart + 17, nil, true},
		{"header-only", lastStart + headerLen, nil, true},
		{"mid-payload+zeros", lastStart + 4000, make([]byte, 8192), true},
		{"mid-payload+garbage", lastStart + 4000, garbage, true},
		{"mid-payload+header", lastStart + 4000, fakeHeader[:], true},
		{"zeros", len(data), make([]byte, 4096), false},
		{"garbage", len(data), garbage, false},
		{"header", len(data), fakeHeader[:], false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := copyDir(t, src)
			path := filepath.Join(dir, newest)
			damaged := append(slices.Clone(data[:tc.cut]), tc.append...)
			if err := os.WriteFile(path, damaged, 0o640); err != nil {
				t.Fatal(err)
			}
			wantSize, wantIDs := len(data), want
			if tc.cutOff {
				wantSize, wantIDs = lastStart, want[:len(want)-1]
			}

			l := openLog(t, dir, smallSegments)
			if fi, err := os.Stat(path); err != nil || fi.Size() != int64(wantSize) {
				t.Errorf("newest segment: size %v (%v), want %d", fi.Size(), err, wantSize)
			}
			if got := pendingIDs(l); !slices.Equal(got, wantIDs) {
				t.Fatalf("Pending IDs %v, want %v", got, wantIDs)
			}
			for _, p := range l.Pending() {
				checkBody(t, p, bodies[p.ID])
				checkEnv(t, p, envs[p.ID])
			}
			if v, ok := l.Pending()[3].Step("stored"); !ok || string(v) != "ref" {
				t.Errorf("Step(stored) of %d = %q, %v", ids[3], v, ok)
			}
			// The log goes on.
			n1 := accept(t, l, testEnv(50), []byte("new 1\r\n"))
			n2 := accept(t, l, testEnv(51), testBody(51, 15000))
			closeLog(t, l)

			l = openLog(t, dir, smallSegments)
			defer l.Close()
			wantIDs = append(slices.Clone(wantIDs), n1.ID, n2.ID)
			if got := pendingIDs(l); !slices.Equal(got, wantIDs) {
				t.Fatalf("second reopen: Pending IDs %v, want %v", got, wantIDs)
			}
			ps := l.Pending()
			checkBody(t, ps[len(ps)-2], []byte("new 1\r\n"))
			checkBody(t, ps[len(ps)-1], testBody(51, 15000))
			checkBody(t, ps[0], bodies[ps[0].ID])
		})
	}

	// Damage in a segment that is not the newest is corruption, not a torn
	// tail: Open fails and changes nothing.
	first := files[0]
	firstData, err := os.ReadFile(filepath.Join(src, first))
	if err != nil {
		t.Fatal(err)
	}
	firstEnds := recordEnds(t, firstData)
	for _, tc := range []struct {
		name string
		edit func([]byte) []byte
	}{
		{"payload-bit", func(b []byte) []byte { b[firstEnds[0]+headerLen+200] ^= 0x10; return b }},
		{"header-bit", func(b []byte) []byte { b[firstEnds[1]+9] ^= 1; return b }},
		{"magic", func(b []byte) []byte { copy(b[firstEnds[0]:], "TXL1"); return b }},
		{"truncated", func(b []byte) []byte { return b[:len(b)-100] }},
		{"truncated-at-header", func(b []byte) []byte { return b[:firstEnds[len(firstEnds)-2]+10] }},
		{"zeros", func(b []byte) []byte { return append(b, make([]byte, 100)...) }},
		{"garbage", func(b []byte) []byte { return append(b, garbage...) }},
		{"bad-length", func(b []byte) []byte {
			off := firstEnds[0]
			binary.LittleEndian.PutUint32(b[off+16:], 1<<31)
			binary.LittleEndian.PutUint32(b[off+28:], crc(b[off:off+28]))
			return b
		}},
		{"bad-envelope", func(b []byte) []byte {
			// Envelope length past the record, with both checksums right.
			off := firstEnds[0]
			h, _ := parseHeader(b[off:])
			p := b[off+headerLen : off+headerLen+int(h.length)]
			binary.LittleEndian.PutUint32(p, uint32(len(p)))
			h.sum = crc(p)
			h.marshal(b[off:])
			return b
		}},
	} {
		t.Run("older-"+tc.name, func(t *testing.T) {
			dir := copyDir(t, src)
			damaged := tc.edit(slices.Clone(firstData))
			if err := os.WriteFile(filepath.Join(dir, first), damaged, 0o640); err != nil {
				t.Fatal(err)
			}
			l, err := Open(context.Background(), Config{Dir: dir, SegmentSize: 64 << 10, MaxBodySize: 16 << 10, Logger: slog.New(slog.DiscardHandler)})
			if err == nil {
				l.Close()
				t.Fatalf("Open succeeded on a damaged older segment")
			}
			if !errors.Is(err, ErrCorrupt) {
				t.Errorf("Open: %v; want an error wrapping ErrCorrupt", err)
			}
			if !strings.Contains(err.Error(), first) {
				t.Errorf("Open: %v; want the segment's name in the error", err)
			}
			// Nothing cut or dropped.
			for _, name := range files {
				b, err := os.ReadFile(filepath.Join(dir, name))
				if err != nil {
					t.Fatalf("segment %s: %v", name, err)
				}
				wantB, _ := os.ReadFile(filepath.Join(src, name))
				if name == first {
					wantB = damaged
				}
				if !bytes.Equal(b, wantB) {
					t.Errorf("segment %s changed by the failed Open", name)
				}
			}
		})
	}
}

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }

func TestLimits(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	l := openLog(t, dir, smallSegments)

	_, err := l.Accept(ctx, testEnv(1), bytes.NewReader(make([]byte, 16<<10+1)))
	if !errors.Is(err, ErrTooLarge) {
		t.Errorf("Accept of a body one byte over the limit: %v, want ErrTooLarge", err)
	}
	_, err = l.Accept(ctx, testEnv(1), bytes.NewReader(make([]byte, 1<<20)))
	if !errors.Is(err, ErrTooLarge) {
		t.Errorf("Accept of 1 MiB: %v, want ErrTooLarge", err)
	}
	if _, err := l.Accept(ctx, Envelope{From: "a@b", Received: time.Now()}, strings.NewReader("x")); err == nil {
		t.Errorf("Accept of an envelope without recipients succeeded")
	}
	if _, err := l.Accept(ctx, Envelope{From: "a@b", To: []string{}, Received: time.Now()}, strings.NewReader("x")); err == nil {
		t.Errorf("Accept of an envelope with an empty To succeeded")
	}
	for _, env := range []Envelope{
		{From: "a\xff@b", To: []string{"c@d"}},
		{From: "a@b", To: []string{"c@d", "e\xc3@f"}},
		{From: "a@b", To: []string{"c@d"}, Remote: "\xed\xa0\x80"}, // a surrogate
	} {
		if _, err := l.Accept(ctx, env, strings.NewReader("x")); err == nil {
			t.Errorf("Accept of %+v (not UTF-8) succeeded", env)
		}
	}
	readErr := errors.New("connection reset")
	if _, err := l.Accept(ctx, testEnv(2), errReader{readErr}); !errors.Is(err, readErr) {
		t.Errorf("Accept with a failing body: %v, want it to wrap %v", err, readErr)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := l.Accept(cctx, testEnv(3), strings.NewReader("x")); !errors.Is(err, context.Canceled) {
		t.Errorf("Accept with a canceled context: %v", err)
	}
	if len(l.Pending()) != 0 {
		t.Errorf("Pending after failed Accepts: %v", pendingIDs(l))
	}

	// Exactly the limit is fine.
	maxBody := testBody(4, 16<<10)
	ok := accept(t, l, testEnv(4), maxBody)
	checkBody(t, ok, maxBody)
	done(t, l, ok)
	closeLog(t, l)

	l = openLog(t, dir, smallSegments)
	if ids := pendingIDs(l); len(ids) != 0 {
		t.Errorf("after reopen, Pending %v; want none", ids)
	}
	txn := accept(t, l, testEnv(5), []byte("x"))
	if txn.ID != ok.ID+1 {
		t.Errorf("ID %d after one successful Accept with ID %d: failed Accepts used IDs", txn.ID, ok.ID)
	}
	closeLog(t, l)

	if _, err := l.Accept(ctx, testEnv(6), strings.NewReader("x")); !errors.Is(err, ErrClosed) {
		t.Errorf("Accept after Close: %v, want ErrClosed", err)
	}
	if err := l.Record(ctx, txn, "k", nil); !errors.Is(err, ErrClosed) {
		t.Errorf("Record after Close: %v, want ErrClosed", err)
	}
	if err := l.Done(ctx, txn); !errors.Is(err, ErrClosed) {
		t.Errorf("Done after Close: %v, want ErrClosed", err)
	}
	if err := l.Close(); !errors.Is(err, ErrClosed) {
		t.Errorf("second Close: %v, want ErrClosed", err)
	}

	// The transaction is still pending: nothing after Close was written.
	l = openLog(t, dir, smallSegments)
	defer l.Close()
	if got, want := pendingIDs(l), []uint64{txn.ID}; !slices.Equal(got, want) {
		t.Errorf("Pending %v, want %v", got, want)
	}
	if _, err := Open(ctx, Config{}); err == nil {
		t.Errorf("Open without a directory succeeded")
	}
}

func TestConcurrentAccept(t *testing.T) {
	const workers, each = 16, 100
	dir := t.TempDir()
	l := openLog(t, dir, nil)
	txns := make([][]*Txn, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				body := testBody(uint64(w*each+i), 100+(w*each+i)%3000)
				txn, err := l.Accept(context.Background(), testEnv(w), bytes.NewReader(body))
				if err != nil {
					t.Errorf("Accept: %v", err)
					return
				}
				txns[w] = append(txns[w], txn)
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	check := func(byID map[uint64]*Txn) {
		t.Helper()
		for w := range workers {
			for i, txn := range txns[w] {
				got := byID[txn.ID]
				if got == nil {
					t.Fatalf("txn %d missing", txn.ID)
				}
				checkBody(t, got, testBody(uint64(w*each+i), 100+(w*each+i)%3000))
				checkEnv(t, got, testEnv(w))
			}
		}
	}
	byID := map[uint64]*Txn{}
	for w := range workers {
		for i, txn := range txns[w] {
			if byID[txn.ID] != nil {
				t.Fatalf("ID %d given twice", txn.ID)
			}
			if i > 0 && txn.ID <= txns[w][i-1].ID {
				t.Errorf("worker %d: ID %d after %d", w, txn.ID, txns[w][i-1].ID)
			}
			byID[txn.ID] = txn
		}
	}
	check(byID)
	closeLog(t, l)

	l = openLog(t, dir, nil)
	defer l.Close()
	if n := len(l.Pending()); n != workers*each {
		t.Fatalf("%d pending after reopen, want %d", n, workers*each)
	}
	clear(byID)
	for _, p := range l.Pending() {
		byID[p.ID] = p
	}
	check(byID)
}

// BenchmarkAccept measures the group-commit ceiling: 16 goroutines
// accepting 4 KiB bodies, each Accept returning once durable.
func BenchmarkAccept(b *testing.B) {
	const workers = 16
	l := openLog(b, b.TempDir(), nil)
	defer l.Close()
	body := testBody(1, 4<<10)
	env := testEnv(1)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	for range workers {
		wg.Go(func() {
			for next.Add(1) <= int64(b.N) {
				if _, err := l.Accept(context.Background(), env, bytes.NewReader(body)); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

// TestConfigValidate: every problem at once, each naming its field, and
// Open refuses what Validate refuses before touching the disk.
func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig(t.TempDir()).Validate(); err != nil {
		t.Errorf("DefaultConfig: %v", err)
	}
	err := Config{SegmentSize: -1, MaxBodySize: -1}.Validate()
	for _, field := range []string{"Config.Dir", "Config.SegmentSize", "Config.MaxBodySize"} {
		if err == nil || !strings.Contains(err.Error(), field) {
			t.Errorf("Validate does not name %s: %v", field, err)
		}
	}
	if err := (Config{Dir: "x", MaxBodySize: 2 << 30}).Validate(); err == nil || !strings.Contains(err.Error(), "MaxBodySize") {
		t.Errorf("Validate of a 2 GiB MaxBodySize: %v", err)
	}
	dir := filepath.Join(t.TempDir(), "log")
	if l, err := Open(context.Background(), Config{Dir: dir, SegmentSize: -1}); err == nil {
		l.Close()
		t.Fatal("Open took a negative SegmentSize")
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Open made %s for a config it refused: %v", dir, err)
	}
}
