package msstore

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
)

// scanWindow is how much of a volume the scanner reads at a time.
const scanWindow = 1 << 20

// scanner reads the records of one volume file in order, checking each one,
// and skips over damage to the next good record.
type scanner struct {
	f      *os.File
	num    uint32
	size   int64 // file size
	verify bool  // check the bodies of large records too (small ones always are)

	win    []byte
	winOff int64
}

// get returns n bytes at off, from the window when it can. The slice is
// valid until the next call.
func (sc *scanner) get(off int64, n int) ([]byte, error) {
	if off < sc.winOff || off+int64(n) > sc.winOff+int64(len(sc.win)) {
		if n > scanWindow {
			b := make([]byte, n)
			_, err := sc.f.ReadAt(b, off)
			return b, err
		}
		if sc.win == nil {
			sc.win = make([]byte, scanWindow)
		}
		m, err := sc.f.ReadAt(sc.win[:cap(sc.win)], off)
		sc.win, sc.winOff = sc.win[:m], off
		if m < n {
			if err == nil || errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
	}
	return sc.win[off-sc.winOff : off-sc.winOff+int64(n)], nil
}

// record checks the record at off and returns its header.
func (sc *scanner) record(off int64) (recHeader, error) {
	hb, err := sc.get(off, recHeaderLen)
	if err != nil {
		return recHeader{}, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	h, err := parseHeader(hb, sc.size-off)
	if err != nil {
		return h, err
	}
	if h.size() <= smallRecord {
		b, err := sc.get(off, int(h.size()))
		if err != nil {
			return h, fmt.Errorf("%w: %w", ErrCorrupt, err)
		}
		_, _, _, err = decodeRecord(b)
		return h, err
	}
	return h, sc.checkLarge(off, &h)
}

// checkLarge checks a large record's meta and chunk table against its
// trailer and, if sc.verify, its body against the chunk table.
func (sc *scanner) checkLarge(off int64, h *recHeader) error {
	mb, err := sc.get(off+recHeaderLen, int(h.metaLen))
	if err != nil {
		return fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	meta := append([]byte(nil), mb...)
	if _, err := decodeMeta(meta); err != nil {
		return err
	}
	tail := make([]byte, h.size()-h.tableOff())
	if _, err := sc.f.ReadAt(tail, off+h.tableOff()); err != nil {
		return fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	table := tail[:len(tail)-recTrailerLen]
	if err := checkTrailer(tail[len(table):], h, metaTableSum(meta, table)); err != nil {
		return err
	}
	if !sc.verify {
		return nil
	}
	if err := verifyBody(sc.f, off+h.bodyOff(), int64(h.bodyLen), table, h.bodySum); err != nil {
		return bodyDamage{err}
	}
	return nil
}

// verifyBody reads a body from f and checks it chunk by chunk.
func verifyBody(f io.ReaderAt, start, n int64, table []byte, sum uint32) error {
	buf := make([]byte, 16*chunkSize)
	var whole uint32
	for pos := int64(0); pos < n; {
		b := buf[:min(int64(len(buf)), n-pos)]
		if _, err := f.ReadAt(b, start+pos); err != nil {
			return fmt.Errorf("%w: %w", ErrCorrupt, err)
		}
		for i := 0; i < len(b); i += chunkSize {
			c := b[i:min(i+chunkSize, len(b))]
			k := (pos + int64(i)) / chunkSize
			if got, want := crc(c), binary.LittleEndian.Uint32(table[4*k:]); got != want {
				return fmt.Errorf("%w: body chunk %d checksum %08x, want %08x", ErrCorrupt, k, got, want)
			}
		}
		whole = crc32.Update(whole, castagnoli, b)
		pos += int64(len(b))
	}
	if whole != sum {
		return fmt.Errorf("%w: body checksum %08x, want %08x", ErrCorrupt, whole, sum)
	}
	return nil
}

// resync looks for the next good record after damage at off. It returns -1
// if there is none before the end of the file.
func (sc *scanner) resync(off int64) int64 {
	var magic [4]byte
	binary.LittleEndian.PutUint32(magic[:], recMagic)
	for pos := off + 1; pos+recHeaderLen+recTrailerLen <= sc.size; {
		b, err := sc.get(pos, int(min(scanWindow, sc.size-pos)))
		if err != nil {
			return -1
		}
		i := bytes.Index(b, magic[:])
		if i < 0 {
			pos += int64(max(1, len(b)-3))
			continue
		}
		cand := pos + int64(i)
		if _, err := sc.record(cand); err == nil {
			return cand
		}
		pos = cand + 1
	}
	return -1
}

// scan visits every record from off to the end of the file, in file order,
// reporting damaged ranges. fn also gets the records whose body is damaged
// but whose frame is intact, with damaged set. It returns the end of the
// last record visited.
func (sc *scanner) scan(off int64, fn func(h *recHeader, off int64, damaged bool), damage func(Damage)) int64 {
	end := off
	for off < sc.size {
		h, err := sc.record(off)
		var bd bodyDamage
		if err == nil || errors.As(err, &bd) {
			if err != nil {
				damage(Damage{Volume: sc.num, Offset: off, Length: h.size(), ID: h.id, Err: err})
			}
			fn(&h, off, err != nil)
			off += h.size()
			end = off
			continue
		}
		next := sc.resync(off)
		d := Damage{Volume: sc.num, Offset: off, Err: err}
		if h.lsn != 0 {
			d.ID = h.id
		}
		if next < 0 {
			d.Length = sc.size - off
			damage(d)
			return end
		}
		d.Length = next - off
		damage(d)
		off = next
	}
	return end
}
