package dsn

import (
	"bytes"
	"strings"
	"unicode/utf8"
)

// clean returns s made fit for a header field or a line of text: every
// control character (C0, DEL, C1: CR and LF among them), with the spaces
// around it, becomes one space; invalid UTF-8 becomes "?", and so does
// every character that is not ASCII unless utf8ok; spaces at either end
// are dropped; and a result longer than max bytes is cut on a character
// boundary, "..." marking the cut.
func clean(s string, utf8ok bool, max int) string {
	var b strings.Builder
	b.Grow(min(len(s), max+3))
	gap := false // a control character since the last one written
	for i, r := range s {
		switch {
		case r == utf8.RuneError && isInvalid(s[i:]):
			r = '?'
		case r < 0x20 || r == 0x7f || 0x80 <= r && r < 0xa0:
			gap = true
			continue
		case r >= 0x80 && !utf8ok:
			r = '?'
		}
		if r == ' ' {
			if !gap && b.Len() > 0 {
				gap = true
			}
			continue
		}
		if gap && b.Len() > 0 {
			b.WriteByte(' ')
		}
		gap = false
		b.WriteRune(r)
	}
	return cut(b.String(), max)
}

// isInvalid reports whether s starts with an invalid UTF-8 sequence (as
// opposed to an encoded U+FFFD).
func isInvalid(s string) bool {
	_, n := utf8.DecodeRuneInString(s)
	return n <= 1
}

// cut returns s cut to at most max bytes on a character boundary, with
// "..." marking a cut.
func cut(s string, max int) string {
	if len(s) <= max {
		return s
	}
	n := max - 3
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "..."
}

// nonASCII reports whether s has a byte outside ASCII.
func nonASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return true
		}
	}
	return false
}

// foldAt is the column past which writeField folds a field's value.
const foldAt = 76

// writeField writes the field "name: value" and its CRLF to b, folded
// at spaces so that lines stay within foldAt columns where a word allows
// (RFC 5322 §2.2.3). value must have been through clean: one line,
// bounded, no spaces at either end.
func writeField(b *bytes.Buffer, name, value string) {
	b.WriteString(name)
	b.WriteByte(':')
	col, words := len(name)+1, 0
	for w := range strings.SplitSeq(value, " ") {
		if words > 0 && col+1+len(w) > foldAt {
			b.WriteString("\r\n")
			col, words = 0, 0
		}
		b.WriteByte(' ')
		b.WriteString(w)
		col += 1 + len(w)
		words++
	}
	b.WriteString("\r\n")
}

// address returns an address-type and address for a field of the
// delivery status (RFC 3464 §2.1.2): "rfc822; addr", or "utf-8; addr"
// (RFC 6533 §3) for an address that is not ASCII when global.
func address(addr string, global bool) string {
	addr = clean(addr, global, MaxDiagnostic)
	if nonASCII(addr) {
		return "utf-8; " + addr
	}
	return "rfc822; " + addr
}

// originalRecipient returns the Original-Recipient value for an ORCPT given as
// "type;address": its type as given (rfc822 if none), made utf-8 for an
// address that is not ASCII when global.
func originalRecipient(orcpt string, global bool) string {
	typ, addr, ok := strings.Cut(orcpt, ";")
	if !ok || !isAtom(strings.TrimSpace(typ)) {
		return address(orcpt, global)
	}
	typ, addr = strings.ToLower(strings.TrimSpace(typ)), clean(addr, global, MaxDiagnostic)
	if typ == "rfc822" && nonASCII(addr) {
		typ = "utf-8"
	}
	return typ + "; " + addr
}

// isAtom reports whether s is a non-empty atom of letters, digits and
// hyphens, as address types are.
func isAtom(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}
