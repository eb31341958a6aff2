package pop3

import (
	"errors"
	"strings"
)

// maxLine is the longest line a client may send, line ending included.
// RFC 2449 bounds a command at 255 octets; a little more is taken from
// sloppy clients and SASL responses, and a longer line is refused.
const maxLine = 1024

// Why a command line is refused.
var (
	errLineTooLong = errors.New("line too long")
	errEmptyLine   = errors.New("empty command")
	errBadKeyword  = errors.New("a command starts with a keyword of 1 to 4 letters")
	errControl     = errors.New("control character in the command")
)

// parseCommand splits a command line, without its line ending, into its
// keyword in upper case (RFC 1939 keywords are case-insensitive) and the
// rest of the line after the space that follows the keyword, kept as it
// is (PASS takes it whole, spaces included). A line holding a control
// character (NUL, a bare CR, a tab...) is refused; bytes of 0x80 and up
// are allowed, for UTF-8 passwords.
func parseCommand(line string) (keyword, rest string, err error) {
	if line == "" {
		return "", "", errEmptyLine
	}
	for i := range len(line) {
		if c := line[i]; c < ' ' || c == 0x7f {
			return "", "", errControl
		}
	}
	keyword, rest, _ = strings.Cut(line, " ")
	if len(keyword) == 0 || len(keyword) > 4 {
		return "", "", errBadKeyword
	}
	for i := range len(keyword) {
		if c := keyword[i] | 0x20; c < 'a' || c > 'z' {
			return "", "", errBadKeyword
		}
	}
	return strings.ToUpper(keyword), rest, nil
}

// fields splits a command's arguments at runs of spaces.
func fields(rest string) []string {
	return strings.FieldsFunc(rest, func(r rune) bool { return r == ' ' })
}

// parseNumber parses a message number or a line count: 1 to 9 decimal
// digits, no sign.
func parseNumber(s string) (int, bool) {
	if len(s) == 0 || len(s) > 9 {
		return 0, false
	}
	n := 0
	for i := range len(s) {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = 10*n + int(c-'0')
	}
	return n, true
}
