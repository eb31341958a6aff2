package msstore

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"sync"
)

// smallRecord is the size up to which Open reads a whole record at once and
// serves the body from memory.
const smallRecord = 128 << 10

// Open returns the body ref points to; see [Storage.Open].
func (s *Volumes) Open(ctx context.Context, ref Ref) (Body, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if ref.Node != s.cfg.Node {
		return nil, fmt.Errorf("%w: ref %v is for node %d, this is node %d", ErrNotFound, ref, ref.Node, s.cfg.Node)
	}
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return nil, ErrClosed
	}
	e, ok := s.index[ref.ID]
	var v *volume
	if ok && e.refs > 0 {
		v = s.vols[e.vol]
	}
	if v == nil {
		s.mu.RUnlock()
		return nil, fmt.Errorf("%w: ref %v", ErrNotFound, ref)
	}
	v.acquire()
	s.mu.RUnlock()

	b, err := openRecord(v, e, ref)
	if err != nil {
		v.release()
		return nil, err
	}
	if b.pooled != nil { // held in memory: the volume is not needed
		v.release()
		b.v = nil
	}
	return b, nil
}

// openRecord reads e's record head (and the whole record when small),
// checks it against ref and returns a body reading from it.
func openRecord(v *volume, e entry, ref Ref) (*fileBody, error) {
	where := func(err error) error {
		return fmt.Errorf("volume %d offset %d: %w", v.num, e.off, err)
	}
	small := int64(e.size) <= smallRecord
	first := int64(e.size)
	if !small {
		first = 4 << 10 // the header and, mostly, the meta
	}
	bp := recordPool.Get().(*[]byte)
	buf := (*bp)[:first]
	if _, err := v.f.ReadAt(buf, int64(e.off)); err != nil {
		recordPool.Put(bp)
		return nil, where(fmt.Errorf("%w: %w", ErrCorrupt, err))
	}
	h, err := parseHeader(buf, int64(e.size))
	if err == nil && (h.kind != kindBody || h.id != ref.ID || int64(h.bodyLen) != ref.Size || h.bodySum != ref.Sum) {
		err = fmt.Errorf("%w: ref %v does not match the stored body", ErrNotFound, ref)
	}
	if err == nil && small && h.size() != first {
		err = fmt.Errorf("%w: record length %d, the index says %d", ErrCorrupt, h.size(), first)
	}
	if err != nil {
		recordPool.Put(bp)
		return nil, where(err)
	}
	b := &fileBody{v: v, size: int64(h.bodyLen)}
	if small {
		_, _, body, err := decodeRecord(buf)
		if err != nil {
			recordPool.Put(bp)
			return nil, where(err)
		}
		b.mem, b.pooled = body, bp
		return b, nil
	}
	defer recordPool.Put(bp)
	if h.bodyOff() > first {
		buf = make([]byte, h.bodyOff())
		if _, err := v.f.ReadAt(buf, int64(e.off)); err != nil {
			return nil, where(fmt.Errorf("%w: %w", ErrCorrupt, err))
		}
	}
	// A large record: check the meta and the chunk table against the
	// trailer now; ReadAt checks each chunk it reads.
	meta := buf[recHeaderLen:h.bodyOff()]
	tail := make([]byte, h.size()-h.tableOff())
	if _, err := v.f.ReadAt(tail, int64(e.off)+h.tableOff()); err != nil {
		return nil, where(fmt.Errorf("%w: %w", ErrCorrupt, err))
	}
	table := tail[:len(tail)-recTrailerLen]
	if err := checkTrailer(tail[len(table):], &h, metaTableSum(meta, table)); err != nil {
		return nil, where(err)
	}
	b.start = int64(e.off) + h.bodyOff()
	b.table = table
	b.vnum, b.voff = v.num, int64(e.off)
	return b, nil
}

// recordPool holds the buffers small records are read into.
var recordPool = sync.Pool{New: func() any { b := make([]byte, smallRecord); return &b }}

// fileBody is an open body: in memory when small, else read from its volume
// chunk by chunk, each chunk checked against the record's table.
type fileBody struct {
	v      *volume // nil for a body held in memory
	mem    []byte
	pooled *[]byte // the buffer mem is in, back to recordPool at Close
	size   int64
	start  int64  // the body's offset in the volume file
	table  []byte // chunk checksums
	vnum   uint32
	voff   int64

	life   sync.RWMutex // held for reading by ReadAt, for writing by Close
	closed bool

	mu     sync.Mutex // guards the cache
	cache  []byte     // the last chunk read and checked, if any
	cached int64      // its index
}

// Size returns the body's length.
func (b *fileBody) Size() int64 { return b.size }

// ReadAt reads len(p) bytes at off, as io.ReaderAt.
func (b *fileBody) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("msstore: ReadAt: negative offset %d", off)
	}
	b.life.RLock()
	defer b.life.RUnlock()
	if b.closed {
		return 0, fmt.Errorf("msstore: ReadAt on a closed body: %w", ErrClosed)
	}
	if off >= b.size {
		return 0, io.EOF
	}
	n := int(min(int64(len(p)), b.size-off))
	if b.v == nil {
		copy(p, b.mem[off:])
	} else if err := b.readChunks(p[:n], off); err != nil {
		return 0, err
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// readChunks fills p from offset off of the body, which p must not pass.
// Whole chunks are read straight into p and checked there; a chunk only
// partly wanted goes through the one-chunk cache.
func (b *fileBody) readChunks(p []byte, off int64) error {
	for len(p) > 0 {
		c := off / chunkSize
		cstart := c * chunkSize
		clen := min(chunkSize, b.size-cstart)
		if off == cstart && int64(len(p)) >= clen {
			// A run of whole chunks: one read, then check each.
			end, run, k := off+int64(len(p)), int64(0), int64(0)
			for pos := cstart; pos < b.size && pos+min(chunkSize, b.size-pos) <= end; pos += chunkSize {
				run += min(chunkSize, b.size-pos)
				k++
			}
			if err := b.readAt(p[:run], cstart); err != nil {
				return err
			}
			for i := int64(0); i < k; i++ {
				lo := i * chunkSize
				if err := b.check(c+i, p[lo:min(lo+chunkSize, run)]); err != nil {
					return err
				}
			}
			p, off = p[run:], off+run
			continue
		}
		b.mu.Lock()
		if b.cached != c || b.cache == nil {
			if b.cache == nil {
				b.cache = make([]byte, chunkSize)
			}
			b.cached = -1
			chunk := b.cache[:clen]
			if err := b.readAt(chunk, cstart); err != nil {
				b.mu.Unlock()
				return err
			}
			if err := b.check(c, chunk); err != nil {
				b.mu.Unlock()
				return err
			}
			b.cached = c
		}
		n := copy(p, b.cache[off-cstart:clen])
		b.mu.Unlock()
		p, off = p[n:], off+int64(n)
	}
	return nil
}

func (b *fileBody) readAt(p []byte, off int64) error {
	if _, err := b.v.f.ReadAt(p, b.start+off); err != nil {
		return fmt.Errorf("%w: volume %d offset %d: %w", ErrCorrupt, b.vnum, b.voff, err)
	}
	return nil
}

func (b *fileBody) check(chunk int64, data []byte) error {
	if got, want := crc(data), binary.LittleEndian.Uint32(b.table[4*chunk:]); got != want {
		return fmt.Errorf("%w: volume %d offset %d: body chunk %d checksum %08x, want %08x",
			ErrCorrupt, b.vnum, b.voff, chunk, got, want)
	}
	return nil
}

// Close releases the body. It is safe to call more than once.
func (b *fileBody) Close() error {
	b.life.Lock()
	defer b.life.Unlock()
	if b.closed {
		return nil
	}
	b.closed = true
	b.cache = nil
	if b.pooled != nil {
		recordPool.Put(b.pooled)
		b.pooled, b.mem = nil, nil
	}
	if b.v != nil {
		b.v.release()
	}
	return nil
}
