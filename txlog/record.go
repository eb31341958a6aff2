package txlog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"strings"
	"time"
	"unicode"
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

// ErrInvalidEnvelope is what Accept returns, wrapped, for an Envelope it
// cannot write (see Envelope).
var ErrInvalidEnvelope = errors.New("txlog: invalid envelope")

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

// Envelope is what the SMTP transaction said about a message. Accept
// refuses, with ErrInvalidEnvelope, one without recipients, with a string
// that is not UTF-8, with Rcpts neither nil nor one per address of To, or
// with a DSN parameter (Ret, EnvID, Notify, ORcpt) holding a control
// character; and one whose encoding is over 1 MiB.
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

// An envelope is encoded as:
//
//	uvarint-prefixed From
//	uvarint count of To, then each, uvarint-prefixed
//	varint Received, Unix nanoseconds (0 for the zero time)
//	uvarint-prefixed Remote
//	uvarint-prefixed Mailbox, optional: written when not empty
//	uvarint fields, optional: written, after Mailbox (even an empty one),
//	  when the envelope has DSN parameters or Rcpts; a set of the bits below,
//	  never 0. Each bit set is followed by its field, in the order of the
//	  bits: Ret and EnvID uvarint-prefixed (neither empty), Rcpts as one
//	  entry per address of To: a uvarint set of the rcpt bits below, then
//	  Notify and ORcpt, uvarint-prefixed (neither empty), where the set
//	  says so.
//
// Records written before a field existed end where it would start, and
// read as they always did. A reader refuses a bit it does not know (a log
// written by a newer version) as corrupt rather than drop what it says.
const (
	envRet   = 1 << iota // Ret follows
	envEnvID             // EnvID follows
	envRcpts             // one Rcpt per recipient follows
	envKnown = envRet | envEnvID | envRcpts
)

// The fields of a recipient's entry in Rcpts.
const (
	rcptRelay  = 1 << iota // Relay is set
	rcptNotify             // Notify follows
	rcptORcpt              // ORcpt follows
	rcptKnown  = rcptRelay | rcptNotify | rcptORcpt
)

func appendEnvelope(b []byte, e *Envelope) ([]byte, error) {
	if len(e.To) == 0 {
		return nil, fmt.Errorf("%w: no recipients", ErrInvalidEnvelope)
	}
	for _, s := range append([]string{e.From, e.Remote, e.Mailbox}, e.To...) {
		if !utf8.ValidString(s) {
			return nil, fmt.Errorf("%w: address %q is not UTF-8", ErrInvalidEnvelope, s)
		}
	}
	if err := checkDSN(e); err != nil {
		return nil, err
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
	fields := envFields(e)
	if e.Mailbox != "" || fields != 0 { // absent in records written before the field existed
		b = appendString(b, e.Mailbox)
	}
	if fields != 0 {
		b = binary.AppendUvarint(b, fields)
		if fields&envRet != 0 {
			b = appendString(b, e.Ret)
		}
		if fields&envEnvID != 0 {
			b = appendString(b, e.EnvID)
		}
		for _, r := range e.Rcpts {
			f := rcptFields(r)
			b = binary.AppendUvarint(b, f)
			if f&rcptNotify != 0 {
				b = appendString(b, r.Notify)
			}
			if f&rcptORcpt != 0 {
				b = appendString(b, r.ORcpt)
			}
		}
	}
	n := len(b) - start - 4
	if n > maxEnvelope {
		return nil, fmt.Errorf("%w: %d bytes, too large", ErrInvalidEnvelope, n)
	}
	binary.LittleEndian.PutUint32(b[start:], uint32(n))
	return b, nil
}

// envFields is the set of optional fields e has.
func envFields(e *Envelope) uint64 {
	var f uint64
	if e.Ret != "" {
		f |= envRet
	}
	if e.EnvID != "" {
		f |= envEnvID
	}
	if e.Rcpts != nil {
		f |= envRcpts
	}
	return f
}

// rcptFields is the set of fields r has.
func rcptFields(r Rcpt) uint64 {
	var f uint64
	if r.Relay {
		f |= rcptRelay
	}
	if r.Notify != "" {
		f |= rcptNotify
	}
	if r.ORcpt != "" {
		f |= rcptORcpt
	}
	return f
}

// checkDSN checks the DSN parameters and Rcpts of e: Rcpts nil or one
// per recipient, every parameter UTF-8 without control characters (they
// are protocol tokens and addresses, printed in a DSN's fields).
func checkDSN(e *Envelope) error {
	if e.Rcpts != nil && len(e.Rcpts) != len(e.To) {
		return fmt.Errorf("%w: %d Rcpts for %d recipients", ErrInvalidEnvelope, len(e.Rcpts), len(e.To))
	}
	if err := checkParam("Ret", e.Ret); err != nil {
		return err
	}
	if err := checkParam("EnvID", e.EnvID); err != nil {
		return err
	}
	for _, r := range e.Rcpts {
		if err := checkParam("Notify", r.Notify); err != nil {
			return err
		}
		if err := checkParam("ORcpt", r.ORcpt); err != nil {
			return err
		}
	}
	return nil
}

// checkParam checks the value of a DSN parameter: UTF-8, without control
// characters (C0, DEL and C1).
func checkParam(name, v string) error {
	if !utf8.ValidString(v) {
		return fmt.Errorf("%w: %s %q is not UTF-8", ErrInvalidEnvelope, name, v)
	}
	if strings.ContainsFunc(v, unicode.IsControl) {
		return fmt.Errorf("%w: %s %q holds a control character", ErrInvalidEnvelope, name, v)
	}
	return nil
}

func appendString(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

// parseAccept splits an accept payload into the envelope and the body's
// offset within the payload. It refuses, as corrupt, any envelope
// appendEnvelope would not write.
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
		e.Mailbox = d.UTF8()
		if d.Len() == 0 && e.Mailbox == "" {
			d.Fail("empty mailbox") // written only when set, or before fields
		}
	}
	if d.Len() != 0 {
		parseFields(&d, &e)
	}
	if err := d.Done(); err != nil {
		return e, 0, corrupt(err)
	}
	if err := checkDSN(&e); err != nil {
		return e, 0, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	return e, 4 + int(n), nil
}

// parseFields reads the optional fields that follow Mailbox into e.
func parseFields(d *varint.Decoder[[]byte], e *Envelope) {
	fields := d.Uvarint()
	if fields == 0 || fields&^envKnown != 0 {
		d.Fail("bad envelope fields")
		return
	}
	if fields&envRet != 0 {
		e.Ret = nonEmpty(d, "empty Ret")
	}
	if fields&envEnvID != 0 {
		e.EnvID = nonEmpty(d, "empty EnvID")
	}
	if fields&envRcpts == 0 {
		return
	}
	e.Rcpts = make([]Rcpt, len(e.To))
	for i := range e.Rcpts {
		f := d.Uvarint()
		if f&^rcptKnown != 0 {
			d.Fail("bad recipient fields")
			return
		}
		r := &e.Rcpts[i]
		r.Relay = f&rcptRelay != 0
		if f&rcptNotify != 0 {
			r.Notify = nonEmpty(d, "empty Notify")
		}
		if f&rcptORcpt != 0 {
			r.ORcpt = nonEmpty(d, "empty ORcpt")
		}
	}
}

// nonEmpty reads a string that is written only when not empty.
func nonEmpty(d *varint.Decoder[[]byte], what string) string {
	s := d.UTF8()
	if s == "" {
		d.Fail(what)
	}
	return s
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
