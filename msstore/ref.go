package msstore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
)

// Ref locates a stored body. It is a small comparable value, meant to be kept
// in a mail index (as bytes from [Ref.AppendBinary] or as the text of
// [Ref.String]). It records where the body was placed (docs/architecture.md, principle 4):
// the node, the volume and offset of the record, and the body's id, size and
// checksum. The store finds a body by Node and ID; Volume and Offset are where
// it was written, and stay useful after compaction moved it only as a hint.
//
// A body replicated on two storage nodes (a cluster's, with two replicas)
// has a second copy, named by Copy and CopyID: the same bytes (Size and
// Sum are those of both copies) under id CopyID on node Copy. Copy is 0
// when there is one copy, and never equals Node otherwise. [Ref.First]
// and [Ref.Second] return the Ref of each copy alone, as a single store
// takes it.
type Ref struct {
	Node   uint32 // the storage node that holds the body
	Volume uint32 // the volume the record was written to
	Offset int64  // the record's offset in that volume
	Size   int64  // the body's length in bytes
	ID     uint64 // the body's id, unique within its node
	Sum    uint32 // CRC32C of the body
	Copy   uint32 // the node of the second copy, 0 if there is none
	CopyID uint64 // the second copy's id on node Copy, 0 if there is none
}

// Versions of a Ref's binary form (its first byte): version 1 for a body
// with one copy, version 2 for one with a second copy.
const (
	refVersion     = 1
	refVersionCopy = 2
)

// RefLen is the length of the binary form of a Ref with one copy (Copy
// 0), which every index written before replicated bodies holds. A Ref
// with a second copy takes [RefLenMax] bytes.
const RefLen = 1 + 4 + 4 + 8 + 8 + 8 + 4

// RefLenMax is the length of the binary form of a Ref with a second copy,
// the longest form.
const RefLenMax = RefLen + 4 + 8

// errRefCopy reports a Ref whose copy fields are inconsistent.
var errRefCopy = errors.New("msstore: invalid ref: a second copy needs a node other than the first's and 0 without one")

// IsZero reports whether r is the zero Ref, which locates nothing.
func (r Ref) IsZero() bool { return r == Ref{} }

// HasCopy reports whether r names a second copy.
func (r Ref) HasCopy() bool { return r.Copy != 0 }

// checkCopy reports whether r's copy fields are consistent: no copy at all
// (Copy and CopyID 0), or a copy on a node other than Node.
func (r Ref) checkCopy() error {
	if (r.Copy == 0 && r.CopyID != 0) || (r.Copy != 0 && r.Copy == r.Node) {
		return errRefCopy
	}
	return nil
}

// First returns the Ref of r's first copy alone (Copy and CopyID 0).
func (r Ref) First() Ref {
	r.Copy, r.CopyID = 0, 0
	return r
}

// Second returns the Ref of r's second copy alone, and whether r has one.
// Its Volume and Offset are 0: the Ref does not record where the copy was
// written, and the copy's store finds it by its id.
func (r Ref) Second() (Ref, bool) {
	if r.Copy == 0 {
		return Ref{}, false
	}
	return Ref{Node: r.Copy, Size: r.Size, ID: r.CopyID, Sum: r.Sum}, true
}

// WithCopy returns r (its first copy) with c as its second copy: c's Node
// and ID become Copy and CopyID. c must hold the same body (same Size and
// Sum) on another node; WithCopy returns an error otherwise.
func (r Ref) WithCopy(c Ref) (Ref, error) {
	r = r.First()
	if c.Size != r.Size || c.Sum != r.Sum {
		return Ref{}, fmt.Errorf("msstore: %v and %v are not copies of one body", r, c)
	}
	r.Copy, r.CopyID = c.Node, c.ID
	if c.Node == 0 {
		return Ref{}, fmt.Errorf("msstore: a second copy on node 0: %w", errRefCopy)
	}
	if err := r.checkCopy(); err != nil {
		return Ref{}, err
	}
	return r, nil
}

// AppendBinary appends the binary form of r to b: version 1 of RefLen
// bytes when r has one copy, version 2 of RefLenMax bytes (the same
// fields, then Copy and CopyID) when it has a second. It returns an error,
// and b as it was, for a Ref whose copy fields are inconsistent (a copy on
// Node itself, or a CopyID without a Copy).
func (r Ref) AppendBinary(b []byte) ([]byte, error) {
	if err := r.checkCopy(); err != nil {
		return b, err
	}
	v := byte(refVersion)
	if r.Copy != 0 {
		v = refVersionCopy
	}
	b = append(b, v)
	b = binary.BigEndian.AppendUint32(b, r.Node)
	b = binary.BigEndian.AppendUint32(b, r.Volume)
	b = binary.BigEndian.AppendUint64(b, uint64(r.Offset))
	b = binary.BigEndian.AppendUint64(b, uint64(r.Size))
	b = binary.BigEndian.AppendUint64(b, r.ID)
	b = binary.BigEndian.AppendUint32(b, r.Sum)
	if r.Copy != 0 {
		b = binary.BigEndian.AppendUint32(b, r.Copy)
		b = binary.BigEndian.AppendUint64(b, r.CopyID)
	}
	return b, nil
}

// MarshalBinary returns the binary form of r (see AppendBinary).
func (r Ref) MarshalBinary() ([]byte, error) {
	return r.AppendBinary(make([]byte, 0, RefLenMax))
}

// UnmarshalBinary decodes the binary form made by AppendBinary, of either
// version. It rejects any other length or version, a negative offset or
// size, and a version 2 form whose copy is on node 0 or on Node itself.
func (r *Ref) UnmarshalBinary(b []byte) error {
	switch {
	case len(b) == RefLen && b[0] == refVersion:
	case len(b) == RefLenMax && b[0] == refVersionCopy:
	default:
		return fmt.Errorf("msstore: invalid binary ref (%d bytes)", len(b))
	}
	p := b[1:]
	off, size := int64(binary.BigEndian.Uint64(p[8:])), int64(binary.BigEndian.Uint64(p[16:]))
	if off < 0 || size < 0 {
		return fmt.Errorf("msstore: invalid binary ref (negative offset or size)")
	}
	v := Ref{
		Node:   binary.BigEndian.Uint32(p),
		Volume: binary.BigEndian.Uint32(p[4:]),
		Offset: off,
		Size:   size,
		ID:     binary.BigEndian.Uint64(p[24:]),
		Sum:    binary.BigEndian.Uint32(p[32:]),
	}
	if b[0] == refVersionCopy {
		v.Copy, v.CopyID = binary.BigEndian.Uint32(p[36:]), binary.BigEndian.Uint64(p[40:])
		if v.Copy == 0 || v.checkCopy() != nil {
			return fmt.Errorf("msstore: invalid binary ref: %w", errRefCopy)
		}
	}
	*r = v
	return nil
}

// String returns the text form of r: "node/volume/offset/size/id/sum" with the
// checksum in hexadecimal, followed by "+copy/copyid" when r has a second
// copy. [ParseRef] reads it back.
func (r Ref) String() string {
	s := fmt.Sprintf("%d/%d/%d/%d/%d/%08x", r.Node, r.Volume, r.Offset, r.Size, r.ID, r.Sum)
	if r.Copy != 0 || r.CopyID != 0 {
		s += fmt.Sprintf("+%d/%d", r.Copy, r.CopyID)
	}
	return s
}

// MarshalText returns the text form of r.
func (r Ref) MarshalText() ([]byte, error) {
	if err := r.checkCopy(); err != nil {
		return nil, err
	}
	return []byte(r.String()), nil
}

// UnmarshalText decodes the text form made by String.
func (r *Ref) UnmarshalText(b []byte) error {
	p, err := ParseRef(string(b))
	if err != nil {
		return err
	}
	*r = p
	return nil
}

// ParseRef parses the text form made by [Ref.String], with or without a
// second copy. Only the exact form String makes is accepted.
func ParseRef(s string) (Ref, error) {
	var r Ref
	head, tail, hasCopy := strings.Cut(s, "+")
	var rest string
	n, _ := fmt.Sscanf(head, "%d/%d/%d/%d/%d/%8x%s", &r.Node, &r.Volume, &r.Offset, &r.Size, &r.ID, &r.Sum, &rest)
	if n != 6 || r.Offset < 0 || r.Size < 0 {
		return Ref{}, fmt.Errorf("msstore: invalid ref %q", s)
	}
	if hasCopy {
		n, _ := fmt.Sscanf(tail, "%d/%d%s", &r.Copy, &r.CopyID, &rest)
		if n != 2 || r.Copy == 0 {
			return Ref{}, fmt.Errorf("msstore: invalid ref %q", s)
		}
	}
	if r.checkCopy() != nil || r.String() != s {
		return Ref{}, fmt.Errorf("msstore: invalid ref %q", s)
	}
	return r, nil
}
