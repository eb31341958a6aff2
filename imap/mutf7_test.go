package imap

import (
	"encoding/base64"
	"strings"
	"testing"
	"unicode/utf16"
	"unicode/utf8"
)

// checkName checks a whole name, as the commandReader's nameCheck does a
// byte at a time.
func checkName(name string, utf8 bool) error {
	c := nameCheck{utf8: utf8}
	for i := 0; i < len(name); i++ {
		c.feed(name[i])
	}
	return c.end()
}

// TestNameCheck: names that are modified UTF-7 (RFC 3501 5.1.3) pass, and
// each way of not being it is refused with its reason; after UTF8=ACCEPT
// a name is UTF-8 and "&" is a character.
func TestNameCheck(t *testing.T) {
	for _, tc := range []struct {
		name string
		utf8 bool
		want error
	}{
		{"", false, nil},
		{"INBOX", false, nil},
		{"Work/Sub %*]~", false, nil},
		{"&-", false, nil},
		{"R&-D", false, nil},
		{"&AOQ-", false, nil},
		{"&AOQA5A-", false, nil},     // ää
		{"Caf&AOk-", false, nil},     // Café
		{"&ZeVnLIqe-", false, nil},   // 日本語
		{"&2D3eAA-", false, nil},     // 😀, a surrogate pair
		{"&AIA-", false, nil},        // U+0080, no CTL
		{"&AOQ-&-&AOQ-", false, nil}, // "&" between two
		{"&AOQ-x&AOQ-", false, nil},  // a character between two
		{"&,,0-", false, nil},        // U+FFFD
		{"z&AOQA5A", false, errNameUnclosed},
		{"&", false, errNameUnclosed},
		{"&AOQ", false, errNameUnclosed},
		{"&AOQ*-", false, errNameBase64},
		{"&AOQ=-", false, errNameBase64},
		{"&AO/-", false, errNameBase64}, // "/" is ","
		{"&&-", false, errNameBase64},
		{"&AGEAYgBj-", false, errNameASCII}, // "abc"
		{"&ACY-", false, errNameASCII},      // "&" itself
		{"&AOQ-&AOQ-", false, errNameAdjacent},
		{"&2D0-", false, errNameUTF16},  // a high surrogate alone
		{"&3gA-", false, errNameUTF16},  // a low one
		{"&AOQA-", false, errNameUTF16}, // three bytes
		{"&AOR-", false, errNameUTF16},  // bits left over
		{"&A-", false, errNameUTF16},    // six bits
		{"&2D0A5A-", false, errNameUTF16},
		{"a\tb", false, errNameCTL},
		{"a\x7fb", false, errNameCTL},
		{"\r\n", false, errNameCTL},
		{"&AAE-", false, errNameCTL}, // U+0001 encoded
		{"&AH8-", false, errNameCTL},
		{"B\xc3\xbccher", false, errName8Bit},
		{"B\xc3\xbccher", true, nil},
		{"R&D", true, nil}, // RFC 6855: "&" is a character
		{"z&AOQA5A", true, nil},
		{"日本語/😀", true, nil},
		{"a\x01", true, errNameCTL},
		{"\xff", true, errNameUTF8},
		{"\xc3", true, errNameUTF8},
		{"\xc0\xaf", true, errNameUTF8},     // overlong
		{"\xed\xa0\x80", true, errNameUTF8}, // a surrogate
		{"\xf4\x90\x80\x80", true, errNameUTF8},
		{"B\xc3\xbc\x80", true, errNameUTF8},
	} {
		if got := checkName(tc.name, tc.utf8); got != tc.want {
			t.Errorf("checkName(%q, utf8 %v) = %v, want %v", tc.name, tc.utf8, got, tc.want)
		}
	}
}

// FuzzMailboxUTF7 checks nameCheck against a plain decoder and encoder of
// modified UTF-7: a name is valid if it decodes, has no control
// character, and encodes back to itself (so no printable US-ASCII in
// base64, no two shift sequences in a row, no bits left over); after
// UTF8=ACCEPT if it is UTF-8 without control characters. And whatever
// name has no control character, its modified UTF-7 is valid.
func FuzzMailboxUTF7(f *testing.F) {
	f.Fuzz(func(t *testing.T, name string, isUTF8 bool) {
		got := checkName(name, isUTF8)
		if want := refValid(name, isUTF8); (got == nil) != want {
			t.Fatalf("checkName(%q, utf8 %v) = %v, want valid %v", name, isUTF8, got, want)
		}
		if !utf8.ValidString(name) || strings.ContainsFunc(name, isCTL) {
			return
		}
		if enc := refEncode([]rune(name)); checkName(enc, false) != nil {
			t.Fatalf("checkName(%q) of %q = %v", enc, name, checkName(enc, false))
		}
	})
}

var mbase64 = base64.NewEncoding("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,").WithPadding(base64.NoPadding).Strict()

func isCTL(r rune) bool { return r < 0x20 || r == 0x7f }

func refValid(name string, isUTF8 bool) bool {
	if isUTF8 {
		return utf8.ValidString(name) && !strings.ContainsFunc(name, isCTL)
	}
	runes, ok := refDecode(name)
	return ok && !strings.ContainsFunc(string(runes), isCTL) && refEncode(runes) == name
}

// refDecode decodes modified UTF-7, leniently but for what cannot be
// decoded at all.
func refDecode(s string) ([]rune, bool) {
	var out []rune
	for s != "" {
		c := s[0]
		if c != '&' {
			if c < 0x20 || c > 0x7e {
				return nil, false
			}
			out, s = append(out, rune(c)), s[1:]
			continue
		}
		b64, rest, ok := strings.Cut(s[1:], "-")
		if !ok {
			return nil, false
		}
		s = rest
		if b64 == "" {
			out = append(out, '&')
			continue
		}
		raw, err := mbase64.DecodeString(b64)
		if err != nil || len(raw)%2 != 0 {
			return nil, false
		}
		units := make([]uint16, len(raw)/2)
		for i := range units {
			units[i] = uint16(raw[2*i])<<8 | uint16(raw[2*i+1])
		}
		for i := 0; i < len(units); i++ {
			r := rune(units[i])
			if utf16.IsSurrogate(r) {
				if i+1 == len(units) {
					return nil, false
				}
				i++
				if r = utf16.DecodeRune(r, rune(units[i])); r == utf8.RuneError {
					return nil, false
				}
			}
			out = append(out, r)
		}
	}
	return out, true
}

// refEncode encodes runes as modified UTF-7.
func refEncode(runes []rune) string {
	var b strings.Builder
	for i := 0; i < len(runes); {
		r := runes[i]
		switch {
		case r == '&':
			b.WriteString("&-")
			i++
		case 0x20 <= r && r <= 0x7e:
			b.WriteRune(r)
			i++
		default:
			j := i
			for j < len(runes) && (runes[j] < 0x20 || runes[j] > 0x7e) {
				j++
			}
			var raw []byte
			for _, u := range utf16.Encode(runes[i:j]) {
				raw = append(raw, byte(u>>8), byte(u))
			}
			b.WriteString("&" + mbase64.EncodeToString(raw) + "-")
			i = j
		}
	}
	return b.String()
}
