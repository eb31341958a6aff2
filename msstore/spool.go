package msstore

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"os"
)

// spool holds a body read from a Put's reader before it is appended: in
// memory up to a limit, the rest in an unlinked temporary file. It computes
// the chunk checksums as it reads, so the append is a plain copy.
//
// rec starts with room for the record header and the meta, so that a body
// held in memory is written with its whole record in one call.
type spool struct {
	rec   []byte   // header room, meta, then the first bytes of the body
	head  int      // length of the header room and meta in rec
	file  *os.File // the rest of the body, if any
	n     int64    // body length
	sum   uint32   // CRC32C of the body
	table []byte   // CRC32C of each chunk, 4 bytes each
	chunk uint32   // running CRC of the current, unfinished chunk
}

// readSpool reads r to EOF into a new spool whose rec begins with head.
// Bodies longer than max give ErrTooLarge. tmpDir holds the overflow file.
func readSpool(ctx context.Context, r io.Reader, head []byte, memLimit int, max int64, tmpDir string) (*spool, error) {
	s := &spool{rec: head, head: len(head)}
	memLimit += len(head) + 1 // and a byte to see io.EOF without spilling
	if n := sizeHint(r); n > 0 && n < int64(memLimit-len(head)) && cap(head) < len(head)+int(n)+1 {
		// One allocation of the right size (and a byte to see io.EOF).
		s.rec = append(make([]byte, 0, len(head)+int(n)+1), head...)
	}
	var tmp []byte
	for {
		if err := ctx.Err(); err != nil {
			s.close()
			return nil, err
		}
		var n int
		var err error
		over := false
		if s.file == nil && len(s.rec) < memLimit {
			if cap(s.rec)-len(s.rec) < 32<<10 {
				s.rec = growSpool(s.rec, memLimit)
			}
			p := s.rec[len(s.rec):min(cap(s.rec), memLimit)]
			n, err = r.Read(p)
			if over = s.n+int64(n) > max; n > 0 && !over {
				s.add(p[:n])
				s.rec = s.rec[:len(s.rec)+n]
			}
		} else {
			if tmp == nil {
				tmp = make([]byte, 256<<10)
			}
			n, err = r.Read(tmp)
			if over = s.n+int64(n) > max; n > 0 && !over {
				s.add(tmp[:n])
				if werr := s.spill(tmp[:n], tmpDir); werr != nil {
					s.close()
					return nil, werr
				}
			}
		}
		if over {
			s.close()
			return nil, fmt.Errorf("%w: body over %d bytes", ErrTooLarge, max)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			s.close()
			return nil, fmt.Errorf("msstore: reading body: %w", err)
		}
	}
	if s.n%chunkSize != 0 {
		s.table = binary.LittleEndian.AppendUint32(s.table, s.chunk)
	}
	return s, nil
}

// sizeHint returns the length of the body r will yield, if r tells it, as
// *bytes.Reader, *strings.Reader and *io.SectionReader do.
func sizeHint(r io.Reader) int64 {
	switch r := r.(type) {
	case interface{ Len() int }:
		return int64(r.Len())
	case *io.SectionReader:
		return r.Size()
	}
	return -1
}

func growSpool(b []byte, limit int) []byte {
	n := min(max(2*cap(b), 64<<10), limit)
	nb := make([]byte, len(b), n)
	copy(nb, b)
	return nb
}

// add updates the checksums with the next bytes of the body.
func (s *spool) add(p []byte) {
	s.sum = crc32.Update(s.sum, castagnoli, p)
	for len(p) > 0 {
		room := chunkSize - int(s.n%chunkSize)
		c := p[:min(room, len(p))]
		s.chunk = crc32.Update(s.chunk, castagnoli, c)
		s.n += int64(len(c))
		p = p[len(c):]
		if s.n%chunkSize == 0 {
			s.table = binary.LittleEndian.AppendUint32(s.table, s.chunk)
			s.chunk = 0
		}
	}
}

func (s *spool) spill(p []byte, tmpDir string) error {
	if s.file == nil {
		f, err := os.CreateTemp(tmpDir, "spool-*")
		if err != nil {
			return fmt.Errorf("msstore: spool: %w", err)
		}
		os.Remove(f.Name()) // unlinked: nothing to clean up after a crash
		s.file = f
	}
	if _, err := s.file.Write(p); err != nil {
		return fmt.Errorf("msstore: spool: %w", err)
	}
	return nil
}

// copyFileTo copies the part of the body held in the temporary file to f at
// off. The copy stays in the kernel (copy_file_range where the system has
// it). The caller must be the only one using f's file offset: volumes are
// otherwise written and read with positioned calls only.
func (s *spool) copyFileTo(f *os.File, off int64) error {
	if s.file == nil {
		return nil
	}
	if _, err := s.file.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("msstore: spool: %w", err)
	}
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		return err
	}
	want := s.n - int64(len(s.rec)-s.head)
	n, err := f.ReadFrom(io.LimitReader(s.file, want))
	if err == nil && n != want {
		err = fmt.Errorf("msstore: spool: copied %d bytes of %d", n, want)
	}
	return err
}

func (s *spool) close() {
	if s.file != nil {
		s.file.Close()
		s.file = nil
	}
}
