package msstore

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"time"
	"unicode/utf8"

	"github.com/mailsys/mailsys/internal/varint"
)

// On-disk format, version 1. All integers are little-endian. See doc.go for
// the layout and its invariants.
const (
	volMagic     = "msstvol1"
	volHeaderLen = 32

	recMagic      = 0x3172736d // "msr1"
	recEndMagic   = 0x6572736d // "msre"
	recVersion    = 1
	recHeaderLen  = 48
	recTrailerLen = 16

	kindBody = 1 // a body with its meta
	kindRefs = 2 // a new reference count for an earlier body

	chunkSize  = 64 << 10 // bodies are checksummed in chunks of this size
	maxMetaLen = 64 << 10 // encoded Meta limit
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func crc(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }

// recHeader is the fixed-length head of a record.
type recHeader struct {
	kind    uint8
	lsn     uint64 // sequence number of this record, unique per store
	id      uint64 // the body this record is about (== lsn of its first Put)
	refs    uint32 // the body's reference count as of this record
	metaLen uint32
	bodyLen uint64
	bodySum uint32 // CRC32C of the whole body
}

func numChunks(bodyLen uint64) uint64 { return (bodyLen + chunkSize - 1) / chunkSize }

// size is the record's total length on disk.
func (h *recHeader) size() int64 {
	return recHeaderLen + int64(h.metaLen) + int64(h.bodyLen) + 4*int64(numChunks(h.bodyLen)) + recTrailerLen
}

// bodyOff is the offset of the body from the start of the record.
func (h *recHeader) bodyOff() int64 { return recHeaderLen + int64(h.metaLen) }

// tableOff is the offset of the chunk checksum table from the start of the record.
func (h *recHeader) tableOff() int64 { return h.bodyOff() + int64(h.bodyLen) }

func (h *recHeader) marshal(b []byte) {
	binary.LittleEndian.PutUint32(b[0:], recMagic)
	b[4] = recVersion
	b[5] = h.kind
	b[6], b[7] = 0, 0
	binary.LittleEndian.PutUint64(b[8:], h.lsn)
	binary.LittleEndian.PutUint64(b[16:], h.id)
	binary.LittleEndian.PutUint32(b[24:], h.refs)
	binary.LittleEndian.PutUint32(b[28:], h.metaLen)
	binary.LittleEndian.PutUint64(b[32:], h.bodyLen)
	binary.LittleEndian.PutUint32(b[40:], h.bodySum)
	binary.LittleEndian.PutUint32(b[44:], crc(b[:44]))
}

// parseHeader decodes and checks a record header. maxLen bounds the record's
// size (the bytes left in the volume).
func parseHeader(b []byte, maxLen int64) (recHeader, error) {
	var h recHeader
	if len(b) < recHeaderLen {
		return h, fmt.Errorf("%w: short header (%d bytes)", ErrCorrupt, len(b))
	}
	if binary.LittleEndian.Uint32(b) != recMagic {
		return h, fmt.Errorf("%w: bad record magic", ErrCorrupt)
	}
	if got, want := crc(b[:44]), binary.LittleEndian.Uint32(b[44:]); got != want {
		return h, fmt.Errorf("%w: header checksum %08x, want %08x", ErrCorrupt, got, want)
	}
	if b[4] != recVersion {
		return h, fmt.Errorf("%w: unknown record version %d", ErrCorrupt, b[4])
	}
	h = recHeader{
		kind:    b[5],
		lsn:     binary.LittleEndian.Uint64(b[8:]),
		id:      binary.LittleEndian.Uint64(b[16:]),
		refs:    binary.LittleEndian.Uint32(b[24:]),
		metaLen: binary.LittleEndian.Uint32(b[28:]),
		bodyLen: binary.LittleEndian.Uint64(b[32:]),
		bodySum: binary.LittleEndian.Uint32(b[40:]),
	}
	switch {
	case h.kind != kindBody && h.kind != kindRefs:
		return h, fmt.Errorf("%w: unknown record kind %d", ErrCorrupt, h.kind)
	case h.lsn == 0 || h.id == 0 || h.id > h.lsn:
		return h, fmt.Errorf("%w: bad record sequence (lsn %d, id %d)", ErrCorrupt, h.lsn, h.id)
	case h.kind == kindRefs && (h.metaLen != 0 || h.bodyLen != 0):
		return h, fmt.Errorf("%w: reference record with a body", ErrCorrupt)
	case h.kind == kindBody && h.refs == 0:
		return h, fmt.Errorf("%w: body record without references", ErrCorrupt)
	case h.metaLen > maxMetaLen:
		return h, fmt.Errorf("%w: meta length %d over the limit", ErrCorrupt, h.metaLen)
	case h.bodyLen > maxVolumeSize || h.size() > maxLen:
		return h, fmt.Errorf("%w: record length %d past the end of the volume", ErrCorrupt, int64(h.bodyLen))
	}
	return h, nil
}

// marshalTrailer writes the trailer for a record with header h whose meta
// and chunk table checksum to sum.
func marshalTrailer(b []byte, h *recHeader, sum uint32) {
	binary.LittleEndian.PutUint64(b[0:], h.lsn)
	binary.LittleEndian.PutUint32(b[8:], sum)
	binary.LittleEndian.PutUint32(b[12:], recEndMagic)
}

// checkTrailer checks a record's trailer against its header and the
// checksum of its meta and chunk table.
func checkTrailer(b []byte, h *recHeader, sum uint32) error {
	if binary.LittleEndian.Uint32(b[12:]) != recEndMagic || binary.LittleEndian.Uint64(b) != h.lsn {
		return fmt.Errorf("%w: bad record trailer", ErrCorrupt)
	}
	if got := binary.LittleEndian.Uint32(b[8:]); got != sum {
		return fmt.Errorf("%w: meta checksum %08x, want %08x", ErrCorrupt, sum, got)
	}
	return nil
}

// metaTableSum is the checksum the trailer holds: CRC32C of the meta followed
// by the chunk table.
func metaTableSum(meta, table []byte) uint32 {
	return crc32.Update(crc(meta), castagnoli, table)
}

// decodeRecord decodes a whole record held in b (as read from a volume) and
// verifies every checksum. It returns the header, the meta bytes and the body,
// which alias b. Scrub, the tail check at open and the fuzz test use it.
func decodeRecord(b []byte) (h recHeader, meta, body []byte, err error) {
	h, err = parseHeader(b, int64(len(b)))
	if err != nil {
		return h, nil, nil, err
	}
	n := h.size()
	meta = b[recHeaderLen:h.bodyOff()]
	body = b[h.bodyOff():h.tableOff()]
	table := b[h.tableOff() : n-recTrailerLen]
	if err := checkTrailer(b[n-recTrailerLen:n], &h, metaTableSum(meta, table)); err != nil {
		return h, nil, nil, err
	}
	if err := checkBody(body, table, h.bodySum); err != nil {
		return h, nil, nil, bodyDamage{err}
	}
	if h.kind == kindBody {
		if _, err := decodeMeta(meta); err != nil {
			return h, nil, nil, err
		}
	}
	return h, meta, body, nil
}

// bodyDamage is the error of a record whose header, meta and chunk table
// are intact but whose body is not: its length can be trusted, and the
// records after it can be read.
type bodyDamage struct{ error }

func (e bodyDamage) Unwrap() error { return e.error }

// checkBody verifies body against its chunk table and whole-body checksum.
func checkBody(body, table []byte, sum uint32) error {
	var whole uint32
	for i := 0; len(body) > 0; i++ {
		c := body[:min(chunkSize, len(body))]
		if got, want := crc(c), binary.LittleEndian.Uint32(table[4*i:]); got != want {
			return fmt.Errorf("%w: body chunk %d checksum %08x, want %08x", ErrCorrupt, i, got, want)
		}
		whole = crc32.Update(whole, castagnoli, c)
		body = body[len(c):]
	}
	if whole != sum {
		return fmt.Errorf("%w: body checksum %08x, want %08x", ErrCorrupt, whole, sum)
	}
	return nil
}

// Meta encoding: a version byte, then uvarint-length-prefixed fields:
// MessageID, Received (varint Unix nanoseconds, 0 for the zero time), the
// owner count, and each owner's User and Mailbox.
const metaVersion = 1

func appendMeta(b []byte, m *Meta) ([]byte, error) {
	if !utf8.ValidString(m.MessageID) {
		return b, fmt.Errorf("msstore: meta: message id is not valid UTF-8")
	}
	for _, o := range m.Owners {
		if !utf8.ValidString(o.User) || !utf8.ValidString(o.Mailbox) {
			return b, fmt.Errorf("msstore: meta: owner %q/%q is not valid UTF-8", o.User, o.Mailbox)
		}
	}
	start := len(b)
	b = append(b, metaVersion)
	b = appendString(b, m.MessageID)
	var ns int64
	if !m.Received.IsZero() {
		ns = m.Received.UnixNano()
	}
	b = binary.AppendVarint(b, ns)
	b = binary.AppendUvarint(b, uint64(len(m.Owners)))
	for _, o := range m.Owners {
		b = appendString(b, o.User)
		b = appendString(b, o.Mailbox)
	}
	if len(b)-start > maxMetaLen {
		return b[:start], fmt.Errorf("msstore: meta of %d bytes over the limit of %d", len(b)-start, maxMetaLen)
	}
	return b, nil
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func decodeMeta(b []byte) (Meta, error) {
	var m Meta
	d := varint.New(b)
	if v := d.Byte(); v != metaVersion {
		return m, fmt.Errorf("%w: unknown meta version %d", ErrCorrupt, v)
	}
	m.MessageID = d.UTF8()
	if ns := d.Varint(); ns != 0 {
		m.Received = time.Unix(0, ns).UTC()
	}
	n := d.Uvarint()
	if n > uint64(len(b)) { // each owner takes at least two bytes
		d.Fail("owner count")
	}
	if !d.Failed() && n > 0 {
		m.Owners = make([]Owner, 0, n)
		for i := uint64(0); i < n && !d.Failed(); i++ {
			m.Owners = append(m.Owners, Owner{User: d.UTF8(), Mailbox: d.UTF8()})
		}
	}
	if err := d.Done(); err != nil {
		return Meta{}, fmt.Errorf("%w: bad meta (%w)", ErrCorrupt, err)
	}
	return m, nil
}

// marshalVolHeader writes the header of volume num of node.
func marshalVolHeader(b []byte, num, node uint32, created time.Time) {
	copy(b, volMagic)
	binary.LittleEndian.PutUint32(b[8:], num)
	binary.LittleEndian.PutUint32(b[12:], node)
	binary.LittleEndian.PutUint64(b[16:], uint64(created.UnixNano()))
	binary.LittleEndian.PutUint32(b[24:], 0)
	binary.LittleEndian.PutUint32(b[28:], crc(b[:28]))
}

func parseVolHeader(b []byte) (num, node uint32, err error) {
	if len(b) < volHeaderLen || string(b[:8]) != volMagic {
		return 0, 0, fmt.Errorf("%w: not a volume file", ErrCorrupt)
	}
	if crc(b[:28]) != binary.LittleEndian.Uint32(b[28:]) {
		return 0, 0, fmt.Errorf("%w: volume header checksum", ErrCorrupt)
	}
	return binary.LittleEndian.Uint32(b[8:]), binary.LittleEndian.Uint32(b[12:]), nil
}
