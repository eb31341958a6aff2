package wire

import (
	"errors"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// Mailbox names travel in modified UTF-7 (RFC 3501 section 5.1.3) unless
// the client has enabled UTF8=ACCEPT or IMAP4rev2 (RFC 6855, RFC 9051),
// after which they are UTF-8. Modified UTF-7 is printable US-ASCII, with
// "&" written "&-" and everything else in shift sequences: "&", modified
// BASE64 (RFC 3501: "," for "/", no padding) of the UTF-16BE code units,
// then "-".

// ErrMailboxName is wrapped by DecodeMailbox's errors.
var ErrMailboxName = errors.New("invalid mailbox name")

func nameError(why string) error {
	return &nameErr{why}
}

type nameErr struct{ why string }

func (e *nameErr) Error() string { return "invalid mailbox name: " + e.why }
func (e *nameErr) Unwrap() error { return ErrMailboxName }

const mbase64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,"

// mbase64Value is the value of a modified BASE64 character, 0xFF for
// the others.
func mbase64Value(c byte) byte {
	switch {
	case c >= 'A' && c <= 'Z':
		return c - 'A'
	case c >= 'a' && c <= 'z':
		return c - 'a' + 26
	case c >= '0' && c <= '9':
		return c - '0' + 52
	case c == '+':
		return 62
	case c == ',':
		return 63
	}
	return 0xFF
}

// DecodeMailbox decodes a mailbox name from modified UTF-7, strictly:
// control characters, 8-bit bytes, an unclosed or empty shift sequence
// other than "&-", bits left over, ill-formed UTF-16, a shift sequence
// encoding printable US-ASCII and two shift sequences in a row (an encoder
// makes them one) are errors wrapping ErrMailboxName.
func DecodeMailbox(s string) (string, error) {
	i := strings.IndexByte(s, '&')
	if i < 0 {
		if err := checkASCIIName(s); err != nil {
			return "", err
		}
		return s, nil
	}
	var b strings.Builder
	b.Grow(len(s))
	afterShift := false // the last thing was a shift sequence other than "&-"
	for len(s) > 0 {
		i := strings.IndexByte(s, '&')
		if i < 0 {
			i = len(s)
		}
		if err := checkASCIIName(s[:i]); err != nil {
			return "", err
		}
		if i > 0 {
			afterShift = false
		}
		b.WriteString(s[:i])
		s = s[i:]
		if s == "" {
			break
		}
		end := strings.IndexByte(s, '-')
		if end < 0 {
			return "", nameError(`"&" not closed by "-"`)
		}
		if end == 1 {
			b.WriteByte('&')
			s = s[2:]
			afterShift = false
			continue
		}
		if afterShift {
			return "", nameError(`a shift sequence right after another`)
		}
		if err := decodeShift(&b, s[1:end]); err != nil {
			return "", err
		}
		s = s[end+1:]
		afterShift = true
	}
	return b.String(), nil
}

// checkASCIIName checks the part of a name outside shift sequences:
// printable US-ASCII only.
func checkASCIIName(s string) error {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < 0x20 || c == 0x7F:
			return nameError("control character")
		case c >= 0x80:
			return nameError("8-bit character without UTF8=ACCEPT")
		}
	}
	return nil
}

// decodeShift decodes the modified BASE64 of a shift sequence into b.
func decodeShift(b *strings.Builder, enc string) error {
	var units []uint16
	var acc uint32
	bits := 0
	for i := 0; i < len(enc); i++ {
		v := mbase64Value(enc[i])
		if v == 0xFF {
			return nameError("not modified BASE64 in a shift sequence")
		}
		acc = acc<<6 | uint32(v)
		bits += 6
		if bits >= 16 {
			bits -= 16
			units = append(units, uint16(acc>>bits))
			acc &= 1<<bits - 1
		}
	}
	if bits >= 6 || acc != 0 {
		return nameError("bits left over in a shift sequence")
	}
	if len(units) == 0 {
		return nameError("empty shift sequence")
	}
	for i := 0; i < len(units); i++ {
		u := units[i]
		var r rune
		switch {
		case utf16.IsSurrogate(rune(u)):
			if u >= 0xDC00 || i+1 == len(units) {
				return nameError("ill-formed UTF-16 in a shift sequence")
			}
			r = utf16.DecodeRune(rune(u), rune(units[i+1]))
			if r == utf8.RuneError {
				return nameError("ill-formed UTF-16 in a shift sequence")
			}
			i++
		default:
			r = rune(u)
		}
		if r >= 0x20 && r <= 0x7E {
			return nameError("a shift sequence encoding printable US-ASCII")
		}
		if r < 0x20 || r == 0x7F || r >= 0x80 && r < 0xA0 {
			return nameError("control character")
		}
		b.WriteRune(r)
	}
	return nil
}

// EncodeMailbox encodes a mailbox name, which must be valid UTF-8, in
// modified UTF-7. Invalid UTF-8 is encoded as U+FFFD.
func EncodeMailbox(name string) string {
	ascii := true
	for i := 0; i < len(name); i++ {
		if c := name[i]; c == '&' || c < 0x20 || c > 0x7E {
			ascii = false
			break
		}
	}
	if ascii {
		return name
	}
	var b strings.Builder
	var units []uint16
	flush := func() {
		if len(units) == 0 {
			return
		}
		b.WriteByte('&')
		var acc uint32
		bits := 0
		for _, u := range units {
			acc = acc<<16 | uint32(u)
			bits += 16
			for bits >= 6 {
				bits -= 6
				b.WriteByte(mbase64[acc>>bits&0x3F])
			}
			acc &= 1<<bits - 1
		}
		if bits > 0 {
			b.WriteByte(mbase64[acc<<(6-bits)&0x3F])
		}
		b.WriteByte('-')
		units = units[:0]
	}
	for _, r := range name {
		switch {
		case r == '&':
			flush()
			b.WriteString("&-")
		case r >= 0x20 && r <= 0x7E:
			flush()
			b.WriteRune(r)
		default:
			units = utf16.AppendRune(units, r)
		}
	}
	flush()
	return b.String()
}
