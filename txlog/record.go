package txlog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"time"
	"unicode/utf8"

	"github.com/mailsys/mailsys/internal/varint"
)

// Record format, version 1 (integers little-endian):
//
//	0  uint32 magic "txl1"
//	4  uint8  kind: 1 accept, 2 step, 3 done, 4 base
//	5  [3]byte reserved (0)
//	8  uint64 transaction id
//	16 uint32 payload length
//	20 uint32 CRC32C of the payload
//	24 uint32 reserved (0)
//	28 uint32 CRC32C of bytes 0..27
//	32 payload
//
// An accept's payload is the encoded envelope (its length first, as a
// uint32) followed by the message body; a step's is a key and a value; a
// done's is empty. A base record starts every segment; its id is the highest
// transaction id given before it, so ids never go back even when every
// older segment is gone.
const (
	recMagic  = 0x316c7874 // "txl1"
	headerLen = 32

	kindAccept = 1
	kindStep   = 2
	kindDone   = 3
	kindBase   = 4 // first record of a segment: the highest id given so far
)

// ErrCorrupt reports a damaged record.
var ErrCorrupt = errors.New("txlog: corrupt record")

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func crc(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }

type header struct {
	kind   uint8
	id     uint64
	length uint32
	sum    uint32
}

func (h *header) marshal(b []byte) {
	binary.LittleEndian.PutUint32(b[0:], recMagic)
	b[4], b[5], b[6], b[7] = h.kind, 0, 0, 0
	binary.LittleEndian.PutUint64(b[8:], h.id)
	binary.LittleEndian.PutUint32(b[16:], h.length)
	binary.LittleEndian.PutUint32(b[20:], h.sum)
	binary.LittleEndian.PutUint32(b[24:], 0)
	binary.LittleEndian.PutUint32(b[28:], crc(b[:28]))
}

func parseHeader(b []byte) (header, error) {
	if len(b) < headerLen || binary.LittleEndian.Uint32(b) != recMagic {
		return header{}, fmt.Errorf("%w: bad magic", ErrCorrupt)
	}
	if crc(b[:28]) != binary.LittleEndian.Uint32(b[28:]) {
		return header{}, fmt.Errorf("%w: header checksum", ErrCorrupt)
	}
	h := header{kind: b[4], id: binary.LittleEndian.Uint64(b[8:]), length: binary.LittleEndian.Uint32(b[16:]), sum: binary.LittleEndian.Uint32(b[20:])}
	if h.kind < kindAccept || h.kind > kindBase || h.id == 0 {
		return header{}, fmt.Errorf("%w: kind %d, id %d", ErrCorrupt, h.kind, h.id)
	}
	return h, nil
}

// Envelope is what the SMTP transaction said about a message.
type Envelope struct {
	From     string    // reverse path, "" for the null sender
	To       []string  // recipients, at least one
	Received time.Time // when the message was accepted
	Remote   string    // the client's address, for the trace header and logs
	Mailbox  string    // the folder to deliver into, "" for INBOX (a filter's verdict)
	// Ret and EnvID are the DSN parameters of MAIL (RFC 3461): "FULL" or
	// "HDRS" ("" when not given), and the envelope identifier (decoded
	// from xtext, "" when not given).
	Ret   string
	EnvID string
	// Rcpts, when not nil, holds one entry per address of To, in its
	// order: the recipient's DSN parameters, and whether it goes to the
	// outbound queue. Nil means every recipient is local, with none.
	Rcpts []Rcpt
}

// Rcpt is what an Envelope says of one recipient besides its address.
type Rcpt struct {
	// Notify is NOTIFY (RFC 3461): "" when not given, "NEVER", or a
	// comma-separated set of SUCCESS, FAILURE and DELAY.
	Notify string
	// ORcpt is ORCPT as "addr-type;address" (decoded from xtext), or "".
	ORcpt string
	// Relay is set for a recipient of another domain, for the outbound
	// queue (mail submitted by an authenticated user).
	Relay bool
}

const maxEnvelope = 1 << 20

func appendEnvelope(b []byte, e *Envelope) ([]byte, error) {
	if len(e.To) == 0 {
		return nil, fmt.Errorf("txlog: envelope without recipients")
	}
	for _, s := range append([]string{e.From, e.Remote, e.Mailbox}, e.To...) {
		if !utf8.ValidString(s) {
			return nil, fmt.Errorf("txlog: envelope address %q is not UTF-8", s)
		}
	}
	start := len(b)
	b = append(b, 0, 0, 0, 0) // length, filled in below
	b = appendString(b, e.From)
	b = binary.AppendUvarint(b, uint64(len(e.To)))
	for _, to := range e.To {
		b = appendString(b, to)
	}
	var ns int64
	if !e.Received.IsZero() {
		ns = e.Received.UnixNano()
	}
	b = binary.AppendVarint(b, ns)
	b = appendString(b, e.Remote)
	if e.Mailbox != "" { // absent in records written before the field existed
		b = appendString(b, e.Mailbox)
	}
	n := len(b) - start - 4
	if n > maxEnvelope {
		return nil, fmt.Errorf("txlog: envelope of %d bytes too large", n)
	}
	binary.LittleEndian.PutUint32(b[start:], uint32(n))
	return b, nil
}

func appendString(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

// parseAccept splits an accept payload into the envelope and the body's
// offset within the payload.
func parseAccept(p []byte) (Envelope, int, error) {
	var e Envelope
	if len(p) < 4 {
		return e, 0, fmt.Errorf("%w: short accept", ErrCorrupt)
	}
	n := binary.LittleEndian.Uint32(p)
	if uint64(n) > uint64(len(p)-4) {
		return e, 0, fmt.Errorf("%w: envelope past the record", ErrCorrupt)
	}
	d := varint.New(p[4 : 4+n])
	e.From = d.UTF8()
	count := d.Uvarint()
	if count == 0 || count > uint64(d.Len()) {
		d.Fail("bad recipient count")
	}
	for i := uint64(0); i < count && !d.Failed(); i++ {
		e.To = append(e.To, d.UTF8())
	}
	if ns := d.Varint(); ns != 0 {
		e.Received = time.Unix(0, ns).UTC()
	}
	e.Remote = d.UTF8()
	if d.Len() != 0 {
		if e.Mailbox = d.UTF8(); e.Mailbox == "" {
			d.Fail("empty mailbox") // written only when set
		}
	}
	return e, 4 + int(n), corrupt(d.Done())
}

func appendStep(b []byte, key string, value []byte) []byte {
	return append(appendString(b, key), value...)
}

func parseStep(p []byte) (string, []byte, error) {
	d := varint.New(p)
	k := d.UTF8()
	return k, append([]byte(nil), d.Rest()...), corrupt(d.Err())
}

// corrupt turns a payload's decoding error into an ErrCorrupt.
func corrupt(err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%w: bad payload: %w", ErrCorrupt, err)
}
