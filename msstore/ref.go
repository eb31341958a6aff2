package msstore

import (
	"encoding/binary"
	"fmt"
)

// Ref locates a stored body. It is a small comparable value, meant to be kept
// in a mail index (as bytes from [Ref.AppendBinary] or as the text of
// [Ref.String]). It records where the body was placed (docs/architecture.md, principle 4):
// the node, the volume and offset of the record, and the body's id, size and
// checksum. The store finds a body by Node and ID; Volume and Offset are where
// it was written, and stay useful after compaction moved it only as a hint.
type Ref struct {
	Node   uint32 // the storage node that holds the body
	Volume uint32 // the volume the record was written to
	Offset int64  // the record's offset in that volume
	Size   int64  // the body's length in bytes
	ID     uint64 // the body's id, unique within its node
	Sum    uint32 // CRC32C of the body
}

// refVersion is the first byte of a Ref's binary form.
const refVersion = 1

// RefLen is the length of a Ref's binary form.
const RefLen = 1 + 4 + 4 + 8 + 8 + 8 + 4

// IsZero reports whether r is the zero Ref, which locates nothing.
func (r Ref) IsZero() bool { return r == Ref{} }

// AppendBinary appends the fixed-length binary form of r (RefLen bytes) to b.
func (r Ref) AppendBinary(b []byte) ([]byte, error) {
	b = append(b, refVersion)
	b = binary.BigEndian.AppendUint32(b, r.Node)
	b = binary.BigEndian.AppendUint32(b, r.Volume)
	b = binary.BigEndian.AppendUint64(b, uint64(r.Offset))
	b = binary.BigEndian.AppendUint64(b, uint64(r.Size))
	b = binary.BigEndian.AppendUint64(b, r.ID)
	b = binary.BigEndian.AppendUint32(b, r.Sum)
	return b, nil
}

// MarshalBinary returns the binary form of r.
func (r Ref) MarshalBinary() ([]byte, error) {
	return r.AppendBinary(make([]byte, 0, RefLen))
}

// UnmarshalBinary decodes the binary form made by AppendBinary.
func (r *Ref) UnmarshalBinary(b []byte) error {
	if len(b) != RefLen || b[0] != refVersion {
		return fmt.Errorf("msstore: invalid binary ref (%d bytes)", len(b))
	}
	b = b[1:]
	off, size := int64(binary.BigEndian.Uint64(b[8:])), int64(binary.BigEndian.Uint64(b[16:]))
	if off < 0 || size < 0 {
		return fmt.Errorf("msstore: invalid binary ref (negative offset or size)")
	}
	*r = Ref{
		Node:   binary.BigEndian.Uint32(b),
		Volume: binary.BigEndian.Uint32(b[4:]),
		Offset: off,
		Size:   size,
		ID:     binary.BigEndian.Uint64(b[24:]),
		Sum:    binary.BigEndian.Uint32(b[32:]),
	}
	return nil
}

// String returns the text form of r: "node/volume/offset/size/id/sum" with the
// checksum in hexadecimal. [ParseRef] reads it back.
func (r Ref) String() string {
	return fmt.Sprintf("%d/%d/%d/%d/%d/%08x", r.Node, r.Volume, r.Offset, r.Size, r.ID, r.Sum)
}

// MarshalText returns the text form of r.
func (r Ref) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// UnmarshalText decodes the text form made by String.
func (r *Ref) UnmarshalText(b []byte) error {
	p, err := ParseRef(string(b))
	if err != nil {
		return err
	}
	*r = p
	return nil
}

// ParseRef parses the text form made by [Ref.String].
func ParseRef(s string) (Ref, error) {
	var r Ref
	var rest string
	n, err := fmt.Sscanf(s, "%d/%d/%d/%d/%d/%8x%s", &r.Node, &r.Volume, &r.Offset, &r.Size, &r.ID, &r.Sum, &rest)
	if n != 6 || (err != nil && n != 6) || r.Offset < 0 || r.Size < 0 || r.String() != s {
		return Ref{}, fmt.Errorf("msstore: invalid ref %q", s)
	}
	return r, nil
}
