package imap

import goimap "github.com/emersion/go-imap/v2"

// Answers to a mailbox name or LIST pattern that go-imap would answer NO
// [SERVERBUG] (its decoder of modified UTF-7 fails) or that RFC 3501
// 5.1.3 does not allow; the commandReader sends them in go-imap's place.
var (
	errNameCTL      = badName("control character")
	errName8Bit     = badName("not modified UTF-7 (RFC 3501 5.1.3): 8-bit characters need ENABLE UTF8=ACCEPT")
	errNameUnclosed = badName(`not modified UTF-7 (RFC 3501 5.1.3): "&" not closed by "-"`)
	errNameBase64   = badName(`not modified UTF-7 (RFC 3501 5.1.3): not modified base64 after "&"`)
	errNameUTF16    = badName(`not modified UTF-7 (RFC 3501 5.1.3): "&...-" is not well-formed UTF-16`)
	errNameASCII    = badName(`not modified UTF-7 (RFC 3501 5.1.3): "&...-" encodes a printable US-ASCII character`)
	errNameAdjacent = badName(`not modified UTF-7 (RFC 3501 5.1.3): "&...-" right after another`)
	errNameUTF8     = badName("not UTF-8")
)

// nameFault is a name's fault, for a nameCheck (which holds no pointer:
// it is zeroed for each command).
type nameFault uint8

const (
	_ nameFault = iota
	faultCTL
	fault8Bit
	faultUnclosed
	faultBase64
	faultUTF16
	faultASCII
	faultAdjacent
	faultUTF8
)

var faultErrs = [...]error{
	faultCTL:      errNameCTL,
	fault8Bit:     errName8Bit,
	faultUnclosed: errNameUnclosed,
	faultBase64:   errNameBase64,
	faultUTF16:    errNameUTF16,
	faultASCII:    errNameASCII,
	faultAdjacent: errNameAdjacent,
	faultUTF8:     errNameUTF8,
}

func badName(why string) *goimap.Error {
	return &goimap.Error{Type: goimap.StatusResponseTypeBad, Text: "Invalid mailbox name: " + why}
}

// nameCheck checks a mailbox name (or LIST pattern) a byte at a time, as
// it passes on the command stream: before ENABLE UTF8=ACCEPT (or
// IMAP4rev2) it must be modified UTF-7 (RFC 3501 5.1.3): printable US-ASCII
// with "&" written "&-", and everything else in shift sequences "&" +
// modified base64 + "-" of UTF-16BE, whole characters with no bits left
// over, none printable US-ASCII, no two sequences in a row (the encoder
// would have made them one). After it the name is UTF-8 (RFC 6855 3).
// Either way no control character (0x00-0x1F, 0x7F) may be in it, encoded
// or not. The zero nameCheck checks modified UTF-7.
type nameCheck struct {
	utf8  bool      // the name is UTF-8
	fault nameFault // the first found, or 0

	// Modified UTF-7.
	shift bool   // in "&...-"
	n     int    // base64 characters of the shift sequence so far
	bits  uint32 // those not yet in a UTF-16 code unit, the low nbits
	nbits uint8
	high  uint16 // a high surrogate waiting for its low half, or 0
	after bool   // a shift sequence ended just before

	// UTF-8.
	need   int  // continuation bytes still to come
	lo, hi byte // the range of the next one
}

// feed takes the next byte of the name.
func (c *nameCheck) feed(b byte) {
	switch {
	case c.fault != 0:
	case c.utf8:
		c.feedUTF8(b)
	case c.shift:
		c.feedShifted(b)
	case b == '&':
		c.shift, c.n, c.bits, c.nbits = true, 0, 0, 0
	case b < 0x20 || b == 0x7f:
		c.fault = faultCTL
	case b > 0x7f:
		c.fault = fault8Bit
	default:
		c.after = false
	}
}

// end returns nil if the bytes fed are a valid name, or the answer to
// the command (a *goimap.Error).
func (c *nameCheck) end() error {
	switch {
	case c.fault != 0:
		return faultErrs[c.fault]
	case c.shift:
		return errNameUnclosed
	case c.need > 0:
		return errNameUTF8
	}
	return nil
}

func (c *nameCheck) feedShifted(b byte) {
	var v byte
	switch {
	case 'A' <= b && b <= 'Z':
		v = b - 'A'
	case 'a' <= b && b <= 'z':
		v = b - 'a' + 26
	case '0' <= b && b <= '9':
		v = b - '0' + 52
	case b == '+':
		v = 62
	case b == ',':
		v = 63
	case b == '-' && c.n == 0: // "&-" is "&"
		c.shift, c.after = false, false
		return
	case b == '-':
		c.shift = false
		switch {
		case c.after:
			c.fault = faultAdjacent
		case c.high != 0 || c.nbits >= 6 || c.bits != 0:
			c.fault = faultUTF16 // half a pair, a character cut short
		}
		c.after = true
		return
	default:
		c.fault = faultBase64
		return
	}
	c.n++
	c.bits, c.nbits = c.bits<<6|uint32(v), c.nbits+6
	if c.nbits < 16 {
		return
	}
	c.nbits -= 16
	u := uint16(c.bits >> c.nbits)
	c.bits &= 1<<c.nbits - 1
	switch {
	case c.high != 0:
		if u < 0xdc00 || u > 0xdfff {
			c.fault = faultUTF16
		}
		c.high = 0
	case 0xd800 <= u && u <= 0xdbff:
		c.high = u
	case 0xdc00 <= u && u <= 0xdfff:
		c.fault = faultUTF16
	case u < 0x20 || u == 0x7f:
		c.fault = faultCTL
	case u < 0x7f:
		c.fault = faultASCII
	}
}

// feedUTF8 follows RFC 3629's UTF-8-octets, a byte at a time.
func (c *nameCheck) feedUTF8(b byte) {
	if c.need > 0 {
		if b < c.lo || b > c.hi {
			c.fault = faultUTF8
		}
		c.need, c.lo, c.hi = c.need-1, 0x80, 0xbf
		return
	}
	c.lo, c.hi = 0x80, 0xbf
	switch {
	case b < 0x20 || b == 0x7f:
		c.fault = faultCTL
	case b < 0x80:
	case 0xc2 <= b && b <= 0xdf:
		c.need = 1
	case b == 0xe0:
		c.need, c.lo = 2, 0xa0
	case b == 0xed:
		c.need, c.hi = 2, 0x9f // no surrogates
	case 0xe1 <= b && b <= 0xef:
		c.need = 2
	case b == 0xf0:
		c.need, c.lo = 3, 0x90
	case 0xf1 <= b && b <= 0xf3:
		c.need = 3
	case b == 0xf4:
		c.need, c.hi = 3, 0x8f // up to U+10FFFF
	default:
		c.fault = faultUTF8
	}
}
