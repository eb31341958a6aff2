package msstore_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/mailsys/mailsys/msstore"
)

// The tests in this file damage the files of a closed store the way a crash,
// a bad disk or an operator can, and check that the store opens anyway,
// returns every intact body byte for byte, reports the damaged ones with
// ErrCorrupt or ErrNotFound, and keeps working. They read the on-disk format
// as doc.go describes it, independently of the package's own code.

// On-disk format figures from doc.go.
const (
	dmgVolHeaderLen = 32
	dmgRecHeaderLen = 48
	dmgTrailerLen   = 16
	dmgChunk        = 64 << 10
	dmgCkptName     = "msstore.ckpt"
)

var dmgCastagnoli = crc32.MakeTable(crc32.Castagnoli)

// dmgRec is a record found in a volume file image.
type dmgRec struct {
	off, size int64
	kind      byte
	lsn, id   uint64
	refs      uint32
	metaLen   int64
	bodyLen   int64
}

func (r dmgRec) bodyOff() int64 { return r.off + dmgRecHeaderLen + r.metaLen }
func (r dmgRec) end() int64     { return r.off + r.size }

// dmgParse walks the records of a volume file image from offset 32 and stops
// at the first one whose header is not valid or that does not fit.
func dmgParse(data []byte) []dmgRec {
	var recs []dmgRec
	le32, le64 := binary.LittleEndian.Uint32, binary.LittleEndian.Uint64
	for off := int64(dmgVolHeaderLen); off+dmgRecHeaderLen <= int64(len(data)); {
		h := data[off : off+dmgRecHeaderLen]
		if string(h[:4]) != "msr1" || crc32.Checksum(h[:44], dmgCastagnoli) != le32(h[44:]) {
			break
		}
		r := dmgRec{off: off, kind: h[5], lsn: le64(h[8:]), id: le64(h[16:]), refs: le32(h[24:]),
			metaLen: int64(le32(h[28:])), bodyLen: int64(le64(h[32:]))}
		r.size = dmgRecHeaderLen + r.metaLen + r.bodyLen + 4*((r.bodyLen+dmgChunk-1)/dmgChunk) + dmgTrailerLen
		if r.end() > int64(len(data)) {
			break
		}
		recs = append(recs, r)
		off = r.end()
	}
	return recs
}

// dmgVolumes returns the volume files in dirs by number.
func dmgVolumes(t *testing.T, dirs ...string) map[uint32]string {
	t.Helper()
	vols := map[uint32]string{}
	for _, d := range dirs {
		names, err := filepath.Glob(filepath.Join(d, "vol-*.msv"))
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range names {
			n, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimPrefix(filepath.Base(p), "vol-"), ".msv"), 10, 32)
			if err != nil {
				t.Fatalf("odd volume file name %s", p)
			}
			if other, dup := vols[uint32(n)]; dup {
				t.Fatalf("volume %d twice: %s and %s", n, other, p)
			}
			vols[uint32(n)] = p
		}
	}
	return vols
}

// dmgNewest returns the number and path of the newest volume file in dirs.
func dmgNewest(t *testing.T, dirs ...string) (uint32, string) {
	t.Helper()
	vols := dmgVolumes(t, dirs...)
	if len(vols) == 0 {
		t.Fatalf("no volume file in %v", dirs)
	}
	nums := slices.Sorted(func(yield func(uint32) bool) {
		for n := range vols {
			if !yield(n) {
				return
			}
		}
	})
	n := nums[len(nums)-1]
	return n, vols[n]
}

// dmgCopyDir copies the files of a closed store's directory to a new
// temporary directory and returns it.
func dmgCopyDir(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o750)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o640)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

func dmgReadFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func dmgWriteFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o640); err != nil {
		t.Fatal(err)
	}
}

// dmgFlip changes the byte at off of the file at path.
func dmgFlip(t *testing.T, path string, off int64) {
	t.Helper()
	b := dmgReadFile(t, path)
	b[off] ^= 0xa5
	dmgWriteFile(t, path, b)
}

func dmgRemoveCkpt(t *testing.T, dir string) {
	t.Helper()
	if err := os.Remove(filepath.Join(dir, dmgCkptName)); err != nil {
		t.Fatal(err)
	}
}

func dmgSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// dmgLogs records what a store logs, and passes it on to the test log.
type dmgLogs struct {
	mu   sync.Mutex
	recs []dmgLogRec
}

type dmgLogRec struct {
	level slog.Level
	msg   string
	attrs map[string]string
}

type dmgHandler struct {
	next slog.Handler
	logs *dmgLogs
}

func (h dmgHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h dmgHandler) Handle(ctx context.Context, r slog.Record) error {
	rec := dmgLogRec{level: r.Level, msg: r.Message, attrs: map[string]string{}}
	r.Attrs(func(a slog.Attr) bool {
		rec.attrs[a.Key] = a.Value.String()
		return true
	})
	h.logs.mu.Lock()
	h.logs.recs = append(h.logs.recs, rec)
	h.logs.mu.Unlock()
	return h.next.Handle(ctx, r)
}

func (h dmgHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return dmgHandler{h.next.WithAttrs(as), h.logs}
}

func (h dmgHandler) WithGroup(name string) slog.Handler {
	return dmgHandler{h.next.WithGroup(name), h.logs}
}

// openMode returns how the last open recovered ("checkpoint" or "full
// scan"), as the store logs it, or "" if it did not say.
func (l *dmgLogs) openMode() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := len(l.recs) - 1; i >= 0; i-- {
		if l.recs[i].msg == "store opened" {
			return l.recs[i].attrs["mode"]
		}
	}
	return ""
}

// dmgOpen opens a store logging to the test log and to the returned dmgLogs.
func dmgOpen(t *testing.T, cfg msstore.Config) (*msstore.Volumes, *dmgLogs) {
	t.Helper()
	logs := &dmgLogs{}
	cfg.Logger = slog.New(dmgHandler{testLogger(t).Handler(), logs})
	s, err := msstore.OpenVolumes(t.Context(), cfg)
	if err != nil {
		t.Fatalf("OpenVolumes: %v", err)
	}
	return s, logs
}

// dmgCheckMode reports an open that did not recover the way it should
// have, when the store says how it did.
func dmgCheckMode(t *testing.T, logs *dmgLogs, want string) {
	t.Helper()
	if got := logs.openMode(); got != "" && got != want {
		t.Errorf("store opened by %q, want %q", got, want)
	}
}

func dmgClose(t *testing.T, s *msstore.Volumes) {
	t.Helper()
	if err := s.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
}

// dmgExpect checks that ref reads back as want (want nil: fails with an
// error wrapping wantErr).
func dmgExpect(t *testing.T, s msstore.Storage, what string, ref msstore.Ref, want []byte, wantErr error) {
	t.Helper()
	got, err := read(t, s, ref)
	switch {
	case wantErr == nil && err != nil:
		t.Errorf("%s %v: %v", what, ref, err)
	case wantErr == nil && !bytes.Equal(got, want):
		t.Errorf("%s %v: read %d bytes, want %d, contents differ", what, ref, len(got), len(want))
	case wantErr != nil && !errors.Is(err, wantErr):
		t.Errorf("%s %v: read gives %d bytes and error %v, want an error wrapping %v", what, ref, len(got), err, wantErr)
	}
}

// dmgDrain checks that ref has exactly count references left: it opens
// before each release and is gone after the last one.
func dmgDrain(t *testing.T, s *msstore.Volumes, what string, ref msstore.Ref, count int, want []byte) {
	t.Helper()
	ctx := t.Context()
	for k := 1; k <= count; k++ {
		if got, err := read(t, s, ref); err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s %v: before release %d of %d: read error %v (contents equal %v)", what, ref, k, count, err, bytes.Equal(got, want))
			return
		}
		if err := s.Release(ctx, ref); err != nil {
			t.Errorf("%s %v: release %d of %d: %v", what, ref, k, count, err)
			return
		}
	}
	if _, err := read(t, s, ref); !errors.Is(err, msstore.ErrNotFound) {
		t.Errorf("%s %v: still opens after %d releases (its count): err %v", what, ref, count, err)
	}
	if err := s.Release(t.Context(), ref); !errors.Is(err, msstore.ErrNotFound) {
		t.Errorf("%s %v: release past zero: err %v, want ErrNotFound", what, ref, err)
	}
}

// lastState is what becomes of the last record of the newest volume.
type lastState int

const (
	lastIntact  lastState = iota // reads back
	lastGone                     // cut off: ErrNotFound
	lastCorrupt                  // kept: ErrCorrupt
)

func TestTornTail(t *testing.T) {
	// Two stores: one whose last record is small (read whole at once), one
	// whose last record is large (read and checked chunk by chunk).
	for _, variant := range []struct {
		name     string
		lastSize int
	}{{"small-last", 9000}, {"large-last", 150 << 10}} {
		t.Run(variant.name, func(t *testing.T) {
			base := t.TempDir()
			rng := rand.New(rand.NewPCG(21, uint64(variant.lastSize)))
			s := openStore(t, smallConfig(base))
			var refs []msstore.Ref
			var bodies [][]byte
			for i := range 30 {
				n := rng.IntN(40 << 10)
				switch {
				case i == 0:
					n = 0
				case i == 10:
					n = 200<<10 + rng.IntN(1000) // more than 128 KiB: several chunks, read lazily
				case i%7 == 3:
					n = 64<<10 + 1 + rng.IntN(60<<10) // two chunks
				case i == 29:
					n = variant.lastSize
				}
				b := body(rng, n)
				refs = append(refs, mustPut(t, s, b, "u"+strconv.Itoa(i)))
				bodies = append(bodies, b)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			newest, path := dmgNewest(t, base)
			rel, _ := filepath.Rel(base, path)
			img := dmgReadFile(t, path)
			recs := dmgParse(img)
			if len(recs) == 0 || recs[len(recs)-1].end() != int64(len(img)) {
				t.Fatalf("cannot parse %s: %d records, file of %d bytes", path, len(recs), len(img))
			}
			last, first := recs[len(recs)-1], recs[0]
			lastRef := refs[len(refs)-1]
			if last.off != lastRef.Offset || newest != lastRef.Volume || last.kind != 1 || last.bodyLen != lastRef.Size {
				t.Fatalf("last record %+v in volume %d does not match the last ref %v", last, newest, lastRef)
			}
			if first.off != dmgVolHeaderLen {
				t.Fatalf("first record at %d", first.off)
			}

			cases := []struct {
				name   string
				damage func(img []byte) []byte
				scan   lastState // without the checkpoint
				ckpt   lastState // with it
			}{
				{"cut-in-header", func(img []byte) []byte { return img[:last.off+20] }, lastGone, lastGone},
				{"cut-in-body", func(img []byte) []byte { return img[:last.bodyOff()+last.bodyLen/2] }, lastGone, lastGone},
				{"cut-in-trailer", func(img []byte) []byte { return img[:len(img)-5] }, lastGone, lastGone},
				{"cut-at-record", func(img []byte) []byte { return img[:last.off] }, lastGone, lastGone},
				{"zeros-appended", func(img []byte) []byte { return append(img, make([]byte, 4096)...) }, lastIntact, lastIntact},
				{"random-appended", func(img []byte) []byte {
					r := rand.New(rand.NewPCG(5, 6))
					return append(img, body(r, 10000)...)
				}, lastIntact, lastIntact},
				{"header-appended", func(img []byte) []byte {
					return append(img, img[first.off:first.off+dmgRecHeaderLen]...)
				}, lastIntact, lastIntact},
				// The file kept its length but the last body's data did not
				// reach the disk (zeros): a torn record, cut off by a scan.
				// A checkpoint covering it says it was synced, so then it is
				// damage, not a torn tail, and reads fail with ErrCorrupt.
				{"body-zeroed", func(img []byte) []byte {
					clear(img[last.bodyOff()+last.bodyLen/4 : last.bodyOff()+3*last.bodyLen/4])
					return img
				}, lastGone, lastCorrupt},
			}
			for _, tc := range cases {
				for _, withCkpt := range []bool{false, true} {
					name := tc.name + "/scan"
					want := tc.scan
					if withCkpt {
						name, want = tc.name+"/checkpoint", tc.ckpt
					}
					t.Run(name, func(t *testing.T) {
						dir := dmgCopyDir(t, base)
						vpath := filepath.Join(dir, rel)
						dmgWriteFile(t, vpath, tc.damage(slices.Clone(img)))
						if !withCkpt {
							dmgRemoveCkpt(t, dir)
						}
						wantEnd := int64(len(img))
						if want == lastGone {
							wantEnd = last.off
						}
						check := func(s *msstore.Volumes, extra []msstore.Ref, extraBodies [][]byte, scrub bool) {
							t.Helper()
							for i, ref := range refs[:len(refs)-1] {
								dmgExpect(t, s, fmt.Sprintf("body %d", i), ref, bodies[i], nil)
							}
							switch want {
							case lastIntact:
								dmgExpect(t, s, "last body", lastRef, bodies[len(bodies)-1], nil)
							case lastGone:
								dmgExpect(t, s, "torn last body", lastRef, nil, msstore.ErrNotFound)
							case lastCorrupt:
								dmgExpect(t, s, "damaged last body", lastRef, nil, msstore.ErrCorrupt)
							}
							for i, ref := range extra {
								dmgExpect(t, s, fmt.Sprintf("new body %d", i), ref, extraBodies[i], nil)
							}
							wantBodies := len(refs) + len(extra)
							if want == lastGone {
								wantBodies--
							}
							if st := s.Stats(); st.Bodies != wantBodies {
								t.Errorf("Stats().Bodies = %d, want %d", st.Bodies, wantBodies)
							}
							if scrub {
								st, err := s.Scrub(t.Context(), nil)
								wantDamaged := 0
								if want == lastCorrupt {
									wantDamaged = 1
								}
								if err != nil || st.Damaged != wantDamaged {
									t.Errorf("Scrub: %+v, %v; want %d damaged", st, err, wantDamaged)
								}
							}
						}

						s := openStore(t, smallConfig(dir))
						check(s, nil, nil, false)
						if got := dmgSize(t, vpath); got != wantEnd {
							t.Errorf("newest volume is %d bytes after open, want %d (the end of the last intact record; damaged image was %d)",
								got, wantEnd, len(tc.damage(slices.Clone(img))))
						}
						r := rand.New(rand.NewPCG(7, 8))
						extraBodies := [][]byte{body(r, 7000), body(r, 70<<10)}
						var extra []msstore.Ref
						for _, b := range extraBodies {
							extra = append(extra, mustPut(t, s, b, "new"))
						}
						check(s, extra, extraBodies, true)
						dmgClose(t, s)

						s, logs := dmgOpen(t, smallConfig(dir))
						dmgCheckMode(t, logs, "checkpoint")
						check(s, extra, extraBodies, true)
						dmgClose(t, s)

						dmgRemoveCkpt(t, dir)
						s = openStore(t, smallConfig(dir))
						check(s, extra, extraBodies, true)
						dmgClose(t, s)
					})
				}
			}
		})
	}
}

func TestCorruptBody(t *testing.T) {
	base := t.TempDir()
	cfg := smallConfig(base)
	cfg.VolumeSize = 1 << 20
	cfg.MaxBodySize = 512 << 10
	rng := rand.New(rand.NewPCG(31, 32))
	s := openStore(t, cfg)
	var small []msstore.Ref
	var smallBodies [][]byte
	putSmall := func() {
		b := body(rng, 1<<10+rng.IntN(9<<10))
		small = append(small, mustPut(t, s, b, "a"))
		smallBodies = append(smallBodies, b)
	}
	for range 10 {
		putSmall()
	}
	largeBody := body(rng, 500<<10)
	large := mustPut(t, s, largeBody, "a")
	for range 10 {
		putSmall()
	}
	// Reference records in the volume to be damaged, about a body that
	// compaction will copy out of it: small[0] ends with 2 references.
	if err := s.Retain(t.Context(), small[0], 2); err != nil {
		t.Fatal(err)
	}
	if err := s.Release(t.Context(), small[0]); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	vols := dmgVolumes(t, base)
	if len(vols) != 1 {
		t.Fatalf("%d volumes, want 1", len(vols))
	}
	_, vpath := dmgNewest(t, base)
	rel, _ := filepath.Rel(base, vpath)
	recs := dmgParse(dmgReadFile(t, vpath))
	byOff := map[int64]dmgRec{}
	for _, r := range recs {
		byOff[r.off] = r
	}
	bad := small[4]
	badRec, ok1 := byOff[bad.Offset]
	largeRec, ok2 := byOff[large.Offset]
	if !ok1 || !ok2 || badRec.id != bad.ID || largeRec.id != large.ID || largeRec.bodyLen != 500<<10 {
		t.Fatalf("records of the refs not found by parsing the volume: %v %v", ok1, ok2)
	}
	if recs[len(recs)-1].off == badRec.off || recs[len(recs)-1].off == largeRec.off {
		t.Fatal("a damaged record would be the last one")
	}

	for _, withCkpt := range []bool{true, false} {
		t.Run(map[bool]string{true: "checkpoint", false: "scan"}[withCkpt], func(t *testing.T) {
			dir := dmgCopyDir(t, base)
			cfg := cfg
			cfg.Dirs = []msstore.Dir{{Path: dir}}
			vpath := filepath.Join(dir, rel)
			dmgFlip(t, vpath, badRec.bodyOff()+badRec.bodyLen/2)
			dmgFlip(t, vpath, largeRec.bodyOff()+3*dmgChunk+100)
			if !withCkpt {
				dmgRemoveCkpt(t, dir)
			}
			s := openStore(t, cfg)
			ctx := t.Context()

			checkSmall := func(released map[int]bool) {
				t.Helper()
				for i, ref := range small {
					switch {
					case i == 4:
						dmgExpect(t, s, "damaged small body", ref, nil, msstore.ErrCorrupt)
					case released[i]:
						dmgExpect(t, s, "released small body", ref, nil, msstore.ErrNotFound)
					default:
						dmgExpect(t, s, fmt.Sprintf("small body %d", i), ref, smallBodies[i], nil)
					}
				}
			}
			checkSmall(nil)

			// The large body opens; the chunks that are intact read, the
			// damaged one does not.
			func() {
				b, err := s.Open(ctx, large)
				if err != nil {
					t.Errorf("Open large body: %v", err)
					return
				}
				defer b.Close()
				if b.Size() != int64(len(largeBody)) {
					t.Errorf("large body size %d", b.Size())
				}
				p := make([]byte, 2*dmgChunk)
				if n, err := b.ReadAt(p[:dmgChunk], 0); err != nil || n != dmgChunk || !bytes.Equal(p[:dmgChunk], largeBody[:dmgChunk]) {
					t.Errorf("ReadAt first chunk: %d, %v", n, err)
				}
				if n, err := b.ReadAt(p[:dmgChunk], 4*dmgChunk); err != nil || !bytes.Equal(p[:dmgChunk], largeBody[4*dmgChunk:5*dmgChunk]) {
					t.Errorf("ReadAt chunk 4 (intact): %d, %v", n, err)
				}
				if n, err := b.ReadAt(p, 2*dmgChunk); !errors.Is(err, msstore.ErrCorrupt) {
					t.Errorf("ReadAt chunks 2-3 (3 damaged): %d bytes, err %v, want ErrCorrupt", n, err)
				}
				if n, err := b.ReadAt(p[:10], 3*dmgChunk+5000); !errors.Is(err, msstore.ErrCorrupt) {
					t.Errorf("ReadAt 10 bytes in chunk 3: %d bytes, err %v, want ErrCorrupt", n, err)
				}
				if n, err := b.ReadAt(p[:100], 3*dmgChunk+50); !errors.Is(err, msstore.ErrCorrupt) {
					t.Errorf("ReadAt 100 bytes in chunk 3 over the damaged byte: %d bytes, err %v, want ErrCorrupt", n, err)
				}
			}()
			dmgExpect(t, s, "whole large body", large, nil, msstore.ErrCorrupt)

			scrub := func() {
				t.Helper()
				var dmg []msstore.Damage
				st, err := s.Scrub(ctx, func(d msstore.Damage) { dmg = append(dmg, d) })
				if err != nil || st.Damaged != 2 || len(dmg) != 2 {
					t.Errorf("Scrub: %+v, %v, %d reports; want 2 damaged", st, err, len(dmg))
				}
				want := map[int64]uint64{badRec.off: bad.ID, largeRec.off: large.ID}
				for _, d := range dmg {
					id, ok := want[d.Offset]
					if !ok || d.Volume != bad.Volume {
						t.Errorf("Scrub reported damage at volume %d offset %d; want volume %d offset %d or %d",
							d.Volume, d.Offset, bad.Volume, badRec.off, largeRec.off)
						continue
					}
					delete(want, d.Offset)
					if !errors.Is(d.Err, msstore.ErrCorrupt) {
						t.Errorf("damage at %d: Err %v does not wrap ErrCorrupt", d.Offset, d.Err)
					}
					if d.ID != id {
						t.Errorf("damage at %d: ID %d, want %d", d.Offset, d.ID, id)
					}
				}
			}
			scrub()

			// Fill the damaged volume's successor so that it is sealed, then
			// release most bodies: the damaged volume is a candidate for
			// compaction, and must be left alone.
			var more []msstore.Ref
			var moreBodies [][]byte
			for s.Stats().Volumes < 2 {
				b := body(rng, 150<<10)
				more = append(more, mustPut(t, s, b))
				moreBodies = append(moreBodies, b)
			}
			released := map[int]bool{}
			for i, ref := range small {
				if i == 0 || i == 4 || i == 9 || i == 19 {
					continue
				}
				if err := s.Release(ctx, ref); err != nil {
					t.Fatalf("Release small %d: %v", i, err)
				}
				released[i] = true
			}
			if err := s.Release(ctx, large); err != nil {
				t.Fatalf("Release damaged large body: %v", err)
			}
			before := s.Stats()
			cst, err := s.Compact(ctx)
			if err != nil {
				t.Fatalf("Compact: %v", err)
			}
			t.Logf("compaction: %+v; stats before %+v, after %+v", cst, before, s.Stats())
			if cst.Volumes != 0 {
				t.Errorf("Compact removed %d volumes; the only candidate is damaged", cst.Volumes)
			}
			if _, err := os.Stat(vpath); err != nil {
				t.Errorf("damaged volume: %v", err)
			}
			checkAll := func() {
				t.Helper()
				checkSmall(released)
				dmgExpect(t, s, "released large body", large, nil, msstore.ErrNotFound)
				for i, ref := range more {
					dmgExpect(t, s, fmt.Sprintf("later body %d", i), ref, moreBodies[i], nil)
				}
				if st := s.Stats(); st.Bodies != 4+len(more) || st.Volumes != 2 {
					t.Errorf("Stats %+v: want %d bodies in 2 volumes", st, 4+len(more))
				}
			}
			checkAll()
			scrub()
			// Nothing changed since: compacting again has nothing to do.
			idle := func(when string) {
				t.Helper()
				before := s.Stats()
				for k := range 3 {
					if cst, err := s.Compact(ctx); err != nil || cst.Volumes != 0 {
						t.Errorf("%s: Compact %d: %+v, %v", when, k, cst, err)
					}
				}
				if after := s.Stats(); after.DiskBytes != before.DiskBytes {
					t.Errorf("%s: 3 more Compact calls with nothing to do grew the store from %d to %d bytes (%+v)",
						when, before.DiskBytes, after.DiskBytes, after)
				}
			}
			idle("after the first compaction")
			checkAll()

			// And the same after a reopen from the volumes alone.
			dmgClose(t, s)
			dmgRemoveCkpt(t, dir)
			s = openStore(t, cfg)
			defer dmgClose(t, s)
			checkAll()
			scrub()
			idle("reopened")
			checkAll()
			dmgDrain(t, s, "small body 0", small[0], 2, smallBodies[0])
		})
	}
}

func TestCorruptCheckpoint(t *testing.T) {
	base := t.TempDir()
	ctx := t.Context()
	rng := rand.New(rand.NewPCG(41, 42))
	s := openStore(t, smallConfig(base))
	var refs []msstore.Ref
	var bodies [][]byte
	gone := map[int]bool{}
	var stale []byte
	for i := range 40 {
		b := body(rng, rng.IntN(50<<10))
		refs = append(refs, mustPut(t, s, b, "a", "b"))
		bodies = append(bodies, b)
		if i%4 == 1 {
			for range 2 {
				if err := s.Release(ctx, refs[i]); err != nil {
					t.Fatal(err)
				}
			}
			gone[i] = true
		}
		if i == 19 {
			// An older, valid checkpoint: what follows it is in the
			// volumes only.
			if err := s.Checkpoint(ctx); err != nil {
				t.Fatal(err)
			}
			stale = dmgReadFile(t, filepath.Join(base, dmgCkptName))
		}
	}
	for i := 0; i < 20; i += 4 { // releases of bodies the old checkpoint has live
		for range 2 {
			if err := s.Release(ctx, refs[i]); err != nil {
				t.Fatal(err)
			}
		}
		gone[i] = true
	}
	want := s.Stats()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	good := dmgReadFile(t, filepath.Join(base, dmgCkptName))
	if len(good) < 64 {
		t.Fatalf("checkpoint of %d bytes", len(good))
	}

	cases := []struct {
		name string
		ckpt func() []byte
		mode string
	}{
		{"garbage", func() []byte { return body(rand.New(rand.NewPCG(1, 1)), len(good)) }, "full scan"},
		{"first-half", func() []byte { return slices.Clone(good[:len(good)/2]) }, "full scan"},
		{"byte-flipped", func() []byte {
			b := slices.Clone(good)
			b[len(b)/2] ^= 0x10
			return b
		}, "full scan"},
		{"empty", func() []byte { return nil }, "full scan"},
		{"magic-only", func() []byte { return slices.Clone(good[:8]) }, "full scan"},
		{"last-byte-cut", func() []byte { return slices.Clone(good[:len(good)-1]) }, "full scan"},
		{"older", func() []byte { return stale }, "checkpoint"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := dmgCopyDir(t, base)
			dmgWriteFile(t, filepath.Join(dir, dmgCkptName), tc.ckpt())
			check := func(s *msstore.Volumes) {
				t.Helper()
				for i, ref := range refs {
					if gone[i] {
						dmgExpect(t, s, fmt.Sprintf("released body %d", i), ref, nil, msstore.ErrNotFound)
					} else {
						dmgExpect(t, s, fmt.Sprintf("body %d", i), ref, bodies[i], nil)
					}
				}
				if got := s.Stats(); got != want {
					t.Errorf("Stats %+v, want %+v", got, want)
				}
			}
			s, logs := dmgOpen(t, smallConfig(dir))
			dmgCheckMode(t, logs, tc.mode)
			check(s)
			dmgClose(t, s)
			// Close wrote a good checkpoint again.
			s, logs = dmgOpen(t, smallConfig(dir))
			dmgCheckMode(t, logs, "checkpoint")
			check(s)
			dmgClose(t, s)
		})
	}
}

func TestCorruptVolumeHeader(t *testing.T) {
	base := t.TempDir()
	cfg := smallConfig(base)
	cfg.VolumeSize = 256 << 10
	cfg.MaxBodySize = 64 << 10
	rng := rand.New(rand.NewPCG(51, 52))
	s := openStore(t, cfg)
	var refs []msstore.Ref
	var bodies [][]byte
	for len(refs) < 15 || s.Stats().Volumes < 3 {
		b := body(rng, 20<<10+rng.IntN(40<<10))
		refs = append(refs, mustPut(t, s, b, "a"))
		bodies = append(bodies, b)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	vols := dmgVolumes(t, base)
	if len(vols) < 3 || vols[1] == "" {
		t.Fatalf("volumes %v: want at least 3, the first numbered 1", vols)
	}
	in1 := 0
	for _, ref := range refs {
		if ref.Volume == 1 {
			in1++
		}
	}
	if in1 == 0 {
		t.Fatal("no body in volume 1")
	}
	newest, _ := dmgNewest(t, base)

	checkAll := func(t *testing.T, s *msstore.Volumes, extra []msstore.Ref, extraBodies [][]byte) {
		t.Helper()
		for i, ref := range refs {
			dmgExpect(t, s, fmt.Sprintf("body %d (volume %d)", i, ref.Volume), ref, bodies[i], nil)
		}
		for i, ref := range extra {
			dmgExpect(t, s, fmt.Sprintf("new body %d", i), ref, extraBodies[i], nil)
		}
		if st := s.Stats(); st.Bodies != len(refs)+len(extra) {
			t.Errorf("Stats().Bodies = %d, want %d", st.Bodies, len(refs)+len(extra))
		}
	}
	// putMore puts bodies enough to fill a volume, so that a new one is
	// begun too.
	putMore := func(t *testing.T, s *msstore.Volumes) ([]msstore.Ref, [][]byte) {
		r := rand.New(rand.NewPCG(53, 54))
		var extra []msstore.Ref
		var extraBodies [][]byte
		for range 6 {
			b := body(r, 50<<10)
			extra = append(extra, mustPut(t, s, b, "new"))
			extraBodies = append(extraBodies, b)
		}
		return extra, extraBodies
	}

	for _, pos := range []int64{0, 7, 9, 13, 20, 25, 29} {
		for _, withCkpt := range []bool{false, true} {
			t.Run(fmt.Sprintf("header-byte-%d/%s", pos, map[bool]string{true: "checkpoint", false: "scan"}[withCkpt]), func(t *testing.T) {
				dir := dmgCopyDir(t, base)
				cfg := cfg
				cfg.Dirs = []msstore.Dir{{Path: dir}}
				dmgFlip(t, filepath.Join(dir, filepath.Base(vols[1])), pos)
				if !withCkpt {
					dmgRemoveCkpt(t, dir)
				}
				s := openStore(t, cfg)
				checkAll(t, s, nil, nil)
				extra, extraBodies := putMore(t, s)
				checkAll(t, s, extra, extraBodies)
				dmgClose(t, s)
				s = openStore(t, cfg)
				checkAll(t, s, extra, extraBodies)
				dmgClose(t, s)
				dmgRemoveCkpt(t, dir)
				s = openStore(t, cfg)
				checkAll(t, s, extra, extraBodies)
				dmgClose(t, s)
			})
		}
	}

	// A crash while a volume was being created leaves its file empty or
	// with part of its header. The store must not append to it as if it
	// were a volume.
	hdr := dmgReadFile(t, vols[1])[:dmgVolHeaderLen]
	for _, tc := range []struct {
		name    string
		content []byte
	}{{"empty", nil}, {"partial-header", hdr[:10]}, {"garbage-header", make([]byte, dmgVolHeaderLen)}} {
		for _, withCkpt := range []bool{false, true} {
			t.Run(fmt.Sprintf("new-volume-%s/%s", tc.name, map[bool]string{true: "checkpoint", false: "scan"}[withCkpt]), func(t *testing.T) {
				dir := dmgCopyDir(t, base)
				cfg := cfg
				cfg.Dirs = []msstore.Dir{{Path: dir}}
				npath := filepath.Join(dir, fmt.Sprintf("vol-%08d.msv", newest+1))
				dmgWriteFile(t, npath, tc.content)
				if !withCkpt {
					dmgRemoveCkpt(t, dir)
				}
				s := openStore(t, cfg)
				if b, err := os.ReadFile(npath); err == nil {
					if len(b) < dmgVolHeaderLen || string(b[:8]) != "msstvol1" ||
						crc32.Checksum(b[:28], dmgCastagnoli) != binary.LittleEndian.Uint32(b[28:]) {
						t.Errorf("volume file %s whose creation did not finish is still there after open, %d bytes with no valid header",
							filepath.Base(npath), len(b))
					}
				} else if !errors.Is(err, fs.ErrNotExist) {
					t.Fatal(err)
				}
				checkAll(t, s, nil, nil)
				extra, extraBodies := putMore(t, s)
				for _, ref := range extra {
					if ref.Volume == newest+1 && ref.Offset < dmgVolHeaderLen {
						t.Errorf("new body %v written at offset %d of volume %d, over where its header belongs",
							ref, ref.Offset, ref.Volume)
					}
				}
				checkAll(t, s, extra, extraBodies)
				dmgClose(t, s)
				s = openStore(t, cfg)
				checkAll(t, s, extra, extraBodies)
				dmgClose(t, s)
				dmgRemoveCkpt(t, dir)
				s = openStore(t, cfg)
				checkAll(t, s, extra, extraBodies)
				if st, err := s.Scrub(t.Context(), nil); err != nil || st.Damaged != 0 {
					t.Errorf("Scrub: %+v, %v; want no damage", st, err)
				}
				dmgClose(t, s)
			})
		}
	}
}

func TestBadRefs(t *testing.T) {
	dir := t.TempDir()
	ctx := t.Context()
	rng := rand.New(rand.NewPCG(61, 62))
	s := openStore(t, smallConfig(dir))
	type item struct {
		ref   msstore.Ref
		body  []byte
		count int
	}
	var items []item
	for i := range 40 {
		b := body(rng, rng.IntN(20<<10))
		owners := []string{"a", "b", "c"}[:1+i%3]
		items = append(items, item{mustPut(t, s, b, owners...), b, len(owners)})
	}
	for i := range items {
		switch i % 5 {
		case 1: // released to zero: a tombstone
			for range items[i].count {
				if err := s.Release(ctx, items[i].ref); err != nil {
					t.Fatal(err)
				}
			}
			items[i].count = 0
		case 2:
			if err := s.Retain(ctx, items[i].ref, 2); err != nil {
				t.Fatal(err)
			}
			items[i].count += 2
		}
	}
	byID := map[uint64]item{}
	var maxID uint64
	for _, it := range items {
		byID[it.ref.ID] = it
		maxID = max(maxID, it.ref.ID)
	}

	// try uses ref with Open, Retain and Release. mayOpen says ref names a
	// live body, but for its Volume and Offset, which are only hints.
	tried, opened := 0, 0
	try := func(ref msstore.Ref, what string) {
		t.Helper()
		tried++
		defer func() {
			if p := recover(); p != nil {
				t.Errorf("%s %v: panic %v", what, ref, p)
			}
		}()
		it, known := byID[ref.ID]
		mayOpen := known && it.count > 0 && ref.Node == 0 && ref.Size == it.ref.Size && ref.Sum == it.ref.Sum
		check := func(op string, err error) bool {
			t.Helper()
			if err == nil {
				if !mayOpen {
					t.Errorf("%s %v: %s succeeded for a ref that names no live body", what, ref, op)
				}
				return true
			}
			if !errors.Is(err, msstore.ErrNotFound) || errors.Is(err, msstore.ErrCorrupt) {
				t.Errorf("%s %v: %s: %v, want an error wrapping ErrNotFound only", what, ref, op, err)
			}
			return false
		}
		b, err := s.Open(ctx, ref)
		if check("Open", err) {
			opened++
			got, err := io.ReadAll(io.NewSectionReader(b, 0, b.Size()))
			b.Close()
			if err != nil || !bytes.Equal(got, it.body) {
				t.Errorf("%s %v: opened, but read %d bytes, %v; want the body of %v", what, ref, len(got), err, it.ref)
			}
		}
		retained := check("Retain", s.Retain(ctx, ref, 1))
		released := check("Release", s.Release(ctx, ref))
		if retained != released {
			t.Errorf("%s %v: Retain succeeded %v but Release %v: the count moved", what, ref, retained, released)
		}
	}

	for i := range 2000 {
		var r msstore.Ref
		if i%4 == 0 { // anything at all
			r = msstore.Ref{Node: rng.Uint32(), Volume: rng.Uint32(), Offset: int64(rng.Uint64()),
				Size: int64(rng.Uint64()), ID: rng.Uint64(), Sum: rng.Uint32()}
		} else { // this node, ids near the real ones
			r = msstore.Ref{Node: rng.Uint32N(3) / 2, Volume: rng.Uint32N(4), Offset: rng.Int64N(1<<22) - 100,
				Size: rng.Int64N(20<<10) - 10, ID: rng.Uint64N(maxID + 10), Sum: rng.Uint32()}
			if i%3 == 0 { // a real body's id and size, or id and sum
				it := items[rng.IntN(len(items))]
				r.ID, r.Node = it.ref.ID, 0
				if rng.IntN(2) == 0 {
					r.Size = it.ref.Size
				} else {
					r.Sum = it.ref.Sum
				}
			}
		}
		try(r, "random ref")
	}
	for _, it := range items {
		orig := it.ref
		if it.count == 0 {
			try(orig, "released ref")
		}
		for _, p := range []struct {
			what string
			f    func(*msstore.Ref)
		}{
			{"ID+1", func(r *msstore.Ref) { r.ID++ }},
			{"ID-1", func(r *msstore.Ref) { r.ID-- }},
			{"Size+1", func(r *msstore.Ref) { r.Size++ }},
			{"Size-1", func(r *msstore.Ref) { r.Size-- }},
			{"Sum^1", func(r *msstore.Ref) { r.Sum ^= 1 }},
			{"Node+1", func(r *msstore.Ref) { r.Node++ }},
			{"Volume+1", func(r *msstore.Ref) { r.Volume++ }},
			{"Offset+1", func(r *msstore.Ref) { r.Offset++ }},
			{"Volume,Offset=0", func(r *msstore.Ref) { r.Volume, r.Offset = 0, 0 }},
		} {
			r := orig
			p.f(&r)
			try(r, "ref with "+p.what)
		}
		// Invalid counts are refused without changing anything.
		if it.count > 0 {
			for _, n := range []int{0, -1, 1<<30 + 1} {
				if err := s.Retain(ctx, orig, n); err == nil {
					t.Errorf("Retain(%v, %d) succeeded", orig, n)
				}
			}
		}
	}
	t.Logf("%d bad refs tried, %d of them opened (only Volume or Offset wrong)", tried, opened)
	if opened == 0 {
		t.Error("no ref with only its Volume or Offset changed opened: Volume and Offset should be hints only")
	}

	// Text and binary forms.
	func() {
		defer func() {
			if p := recover(); p != nil {
				t.Errorf("ParseRef panicked: %v", p)
			}
		}()
		const alphabet = "0123456789abcdefABCDEF/-+ x%\n\t."
		parse := func(str string) {
			t.Helper()
			r, err := msstore.ParseRef(str)
			if err == nil && r.String() != str {
				t.Errorf("ParseRef(%q) = %v, whose text is %q", str, r, r.String())
			}
		}
		for i := range 500 {
			n := rng.IntN(60)
			b := make([]byte, n)
			for j := range b {
				if i%5 == 0 {
					b[j] = byte(rng.Uint32())
				} else {
					b[j] = alphabet[rng.IntN(len(alphabet))]
				}
			}
			parse(string(b))
		}
		for _, it := range items {
			str := it.ref.String()
			if r, err := msstore.ParseRef(str); err != nil || r != it.ref {
				t.Errorf("ParseRef(%q) = %v, %v; want %v", str, r, err, it.ref)
			}
			for range 20 {
				b := []byte(str)
				for range 1 + rng.IntN(3) {
					k := rng.IntN(len(b))
					switch rng.IntN(5) {
					case 0:
						b = slices.Delete(b, k, k+1)
					case 1:
						b = slices.Insert(b, k, alphabet[rng.IntN(len(alphabet))])
					case 2:
						b[k] = alphabet[rng.IntN(len(alphabet))]
					case 3:
						b = b[:k]
					case 4:
						b = append(b, b[k:]...)
					}
					if len(b) == 0 {
						b = append(b, '/')
					}
				}
				parse(string(b))
			}
		}
	}()
	for _, it := range items {
		bin, err := it.ref.MarshalBinary()
		if err != nil || len(bin) != msstore.RefLen {
			t.Fatalf("MarshalBinary: %d bytes, %v", len(bin), err)
		}
		var r msstore.Ref
		if err := r.UnmarshalBinary(bin); err != nil || r != it.ref {
			t.Errorf("binary round trip of %v: %v, %v", it.ref, r, err)
		}
		for _, n := range []int{0, 1, msstore.RefLen - 1, msstore.RefLen + 1, 2 * msstore.RefLen} {
			b := make([]byte, n)
			copy(b, bin)
			if err := new(msstore.Ref).UnmarshalBinary(b); err == nil {
				t.Errorf("UnmarshalBinary of %d bytes succeeded", n)
			}
		}
		for _, v := range []byte{0, 2, 0xff} {
			b := slices.Clone(bin)
			b[0] = v
			if err := new(msstore.Ref).UnmarshalBinary(b); err == nil {
				t.Errorf("UnmarshalBinary with version byte %d succeeded", v)
			}
		}
		for _, at := range []int{9, 17} { // the sign bit of Offset, of Size
			b := slices.Clone(bin)
			b[at] |= 0x80
			if err := new(msstore.Ref).UnmarshalBinary(b); err == nil {
				t.Errorf("UnmarshalBinary with a negative field (byte %d) succeeded", at)
			}
		}
	}
	for range 500 {
		b := body(rng, msstore.RefLen)
		b[0] = 1
		var r msstore.Ref
		if err := r.UnmarshalBinary(b); err == nil {
			if again, _ := r.MarshalBinary(); !bytes.Equal(again, b) {
				t.Errorf("UnmarshalBinary(%x) = %v, which marshals to %x", b, r, again)
			}
		}
	}

	// Every body kept its count, also as the volumes tell it.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	dmgRemoveCkpt(t, dir)
	s = openStore(t, smallConfig(dir))
	defer dmgClose(t, s)
	for i, it := range items {
		if it.count == 0 {
			dmgExpect(t, s, fmt.Sprintf("released body %d", i), it.ref, nil, msstore.ErrNotFound)
			continue
		}
		dmgDrain(t, s, fmt.Sprintf("body %d", i), it.ref, it.count, it.body)
	}
}

func TestDirsWeights(t *testing.T) {
	root := t.TempDir()
	d1, d2, d3, d4 := filepath.Join(root, "d1"), filepath.Join(root, "d2"), filepath.Join(root, "d3"), filepath.Join(root, "d4")
	cfg := msstore.DefaultConfig(d1)
	cfg.Dirs = []msstore.Dir{{Path: d1, Weight: 1}, {Path: d2, Weight: 1}, {Path: d3, Weight: 2}}
	cfg.VolumeSize = 64 << 10
	cfg.MaxBodySize = 16 << 10
	s := openStore(t, cfg)
	ctx := t.Context()
	rng := rand.New(rand.NewPCG(71, 72))
	var refs []msstore.Ref
	var bodies [][]byte
	putUntil := func(s *msstore.Volumes, volumes int) {
		t.Helper()
		for s.Stats().Volumes < volumes {
			b := body(rng, 10<<10)
			refs = append(refs, mustPut(t, s, b, "a"))
			bodies = append(bodies, b)
		}
	}
	// spread counts the volume files numbered after `after` per directory.
	spread := func(after uint32) map[string]int {
		t.Helper()
		n := map[string]int{}
		for _, d := range []string{d1, d2, d3, d4} {
			for num := range dmgVolumes(t, d) {
				if num > after {
					n[filepath.Base(d)]++
				}
			}
		}
		return n
	}
	checkSpread := func(phase string, got map[string]int, want map[string]int) {
		t.Helper()
		for _, d := range []string{"d1", "d2", "d3", "d4"} {
			if diff := got[d] - want[d]; diff < -1 || diff > 1 || (want[d] == 0 && got[d] != 0) {
				t.Errorf("%s: %d new volumes in %s, want %d (spread %v)", phase, got[d], d, want[d], got)
			}
		}
	}
	maxVol := func() uint32 {
		n, _ := dmgNewest(t, d1, d2, d3, d4)
		return n
	}

	putUntil(s, 40)
	checkSpread("weights 1:1:2", spread(0), map[string]int{"d1": 10, "d2": 10, "d3": 20})

	if err := s.MaskDir(d3, true); err != nil {
		t.Fatal(err)
	}
	mark := maxVol()
	putUntil(s, 60)
	checkSpread("d3 masked", spread(mark), map[string]int{"d1": 10, "d2": 10})

	if err := s.AddDir(msstore.Dir{Path: d4, Weight: 2}); err != nil {
		t.Fatal(err)
	}
	if err := s.AddDir(msstore.Dir{Path: d4, Weight: 1}); err == nil {
		t.Error("AddDir of a data directory twice succeeded")
	}
	mark = maxVol()
	putUntil(s, 80)
	checkSpread("d4 added with weight 2", spread(mark), map[string]int{"d1": 5, "d2": 5, "d4": 10})

	if n := len(dmgVolumes(t, d1, d2, d3, d4)); n != s.Stats().Volumes {
		t.Errorf("%d volume files, Stats says %d", n, s.Stats().Volumes)
	}
	checkAll := func(s *msstore.Volumes) {
		t.Helper()
		for i, ref := range refs {
			dmgExpect(t, s, fmt.Sprintf("body %d", i), ref, bodies[i], nil)
		}
		if st := s.Stats(); st.Bodies != len(refs) {
			t.Errorf("Stats().Bodies = %d, want %d", st.Bodies, len(refs))
		}
	}
	checkAll(s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	full := cfg
	full.Dirs = []msstore.Dir{{Path: d1, Weight: 1}, {Path: d2, Weight: 1}, {Path: d3, Weight: 2, Masked: true}, {Path: d4, Weight: 2}}
	s = openStore(t, full)
	checkAll(s)
	mark = maxVol()
	putUntil(s, s.Stats().Volumes+4)
	if n := spread(mark)["d3"]; n != 0 {
		t.Errorf("%d new volumes in masked directory d3 after reopen", n)
	}
	checkAll(s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// A data directory left out of the configuration: its volumes hold live
	// bodies the checkpoint knows of. The open must fail, and harm nothing.
	missing := full
	missing.Dirs = slices.Delete(slices.Clone(full.Dirs), 1, 2)
	func() {
		defer func() {
			if p := recover(); p != nil {
				t.Errorf("OpenVolumes without d2 panicked: %v", p)
			}
		}()
		missing.Logger = testLogger(t)
		s, err := msstore.OpenVolumes(ctx, missing)
		if err == nil {
			t.Errorf("OpenVolumes without d2 (which holds %d volumes), with a checkpoint that knows them, succeeded "+
				"with %d of the %d live bodies: the others are silently gone (%+v)",
				len(dmgVolumes(t, d2)), s.Stats().Bodies, len(refs), s.Stats())
			s.Close()
			return
		}
		t.Logf("OpenVolumes without d2: %v", err)
		if !strings.Contains(err.Error(), d2) {
			t.Errorf("OpenVolumes without d2: error %q does not name the directory", err)
		}
	}()
	s = openStore(t, full)
	checkAll(s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// Without a checkpoint the directories' manifests still know d2.
	dmgRemoveCkpt(t, d1)
	missing.Logger = testLogger(t)
	if s, err := msstore.OpenVolumes(ctx, missing); err == nil {
		t.Errorf("without a checkpoint, OpenVolumes without d2 succeeds: %+v (%d bodies were stored)", s.Stats(), len(refs))
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	}
	s = openStore(t, full)
	checkAll(s)
	dmgClose(t, s)
}

func TestReleaseAfterReopenAndCompact(t *testing.T) {
	dir := t.TempDir()
	cfg := smallConfig(dir)
	cfg.VolumeSize = 256 << 10
	cfg.MaxBodySize = 64 << 10
	ctx := t.Context()
	rng := rand.New(rand.NewPCG(81, 82))
	s := openStore(t, cfg)

	type item struct {
		ref   msstore.Ref
		body  []byte
		count int
	}
	// Bodies to keep, most of them live, in the first volumes; then
	// fillers, all released in the end, over which the reference changes of
	// the kept bodies are spread. The fillers' volumes are compacted away,
	// the kept bodies' mostly not: the releases to zero recorded in the
	// fillers' volumes must survive them.
	var keep, fill []item
	for range 30 {
		b := body(rng, 8<<10+rng.IntN(8<<10))
		keep = append(keep, item{mustPut(t, s, b, "a", "b"), b, 2})
	}
	change := func(i int) {
		it := &keep[i]
		switch i % 6 {
		case 0:
			if err := s.Retain(ctx, it.ref, 2); err != nil {
				t.Fatal(err)
			}
			it.count += 2
		case 1: // to zero
			for range it.count {
				if err := s.Release(ctx, it.ref); err != nil {
					t.Fatal(err)
				}
			}
			it.count = 0
		case 4: // up and down again
			if err := s.Retain(ctx, it.ref, 1); err != nil {
				t.Fatal(err)
			}
			if err := s.Release(ctx, it.ref); err != nil {
				t.Fatal(err)
			}
		case 2:
			if err := s.Release(ctx, it.ref); err != nil {
				t.Fatal(err)
			}
			it.count--
		case 3: // up, then to zero
			if err := s.Retain(ctx, it.ref, 1); err != nil {
				t.Fatal(err)
			}
			for range it.count + 1 {
				if err := s.Release(ctx, it.ref); err != nil {
					t.Fatal(err)
				}
			}
			it.count = 0
		}
	}
	for i := range 90 {
		b := body(rng, 8<<10+rng.IntN(8<<10))
		fill = append(fill, item{mustPut(t, s, b, "a", "b"), b, 2})
		if i%3 == 0 {
			change(i / 3)
		}
	}
	for i := range fill {
		for range 2 {
			if err := s.Release(ctx, fill[i].ref); err != nil {
				t.Fatal(err)
			}
		}
		fill[i].count = 0
	}
	live := 0
	for _, it := range keep {
		if it.count > 0 {
			live++
		}
	}
	check := func(s *msstore.Volumes, when string) {
		t.Helper()
		for i, it := range keep {
			if it.count == 0 {
				dmgExpect(t, s, fmt.Sprintf("%s: kept body %d, released", when, i), it.ref, nil, msstore.ErrNotFound)
			} else {
				dmgExpect(t, s, fmt.Sprintf("%s: kept body %d", when, i), it.ref, it.body, nil)
			}
		}
		for i, it := range fill {
			dmgExpect(t, s, fmt.Sprintf("%s: filler %d, released", when, i), it.ref, nil, msstore.ErrNotFound)
		}
		if st := s.Stats(); st.Bodies != live {
			t.Errorf("%s: Stats().Bodies = %d, want %d", when, st.Bodies, live)
		}
	}
	check(s, "before reopen")
	t.Logf("before compaction: %+v", s.Stats())
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	total := 0
	for round := range 3 {
		s = openStore(t, cfg)
		check(s, fmt.Sprintf("round %d, reopened from the checkpoint", round))
		st, err := s.Compact(ctx)
		if err != nil {
			t.Fatalf("round %d: Compact: %v", round, err)
		}
		total += st.Volumes
		t.Logf("round %d: compaction %+v, stats %+v", round, st, s.Stats())
		check(s, fmt.Sprintf("round %d, compacted", round))
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		dmgRemoveCkpt(t, dir)
		s = openStore(t, cfg)
		check(s, fmt.Sprintf("round %d, compacted and reopened from the volumes", round))
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if round == 1 {
			dmgRemoveCkpt(t, dir) // the next round starts from a scan
		}
	}
	if total == 0 {
		t.Fatal("compaction rewrote no volume: the test tests nothing")
	}

	dmgRemoveCkpt(t, dir)
	s = openStore(t, cfg)
	defer dmgClose(t, s)
	for i, it := range keep {
		if it.count > 0 {
			dmgDrain(t, s, fmt.Sprintf("kept body %d", i), it.ref, it.count, it.body)
		}
	}
	if st := s.Stats(); st.Bodies != 0 {
		t.Errorf("after releasing everything: %+v", st)
	}
}
