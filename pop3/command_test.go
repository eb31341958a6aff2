package pop3

import (
	"strconv"
	"strings"
	"testing"
)

func TestParseCommand(t *testing.T) {
	for _, tc := range []struct {
		line, keyword, rest string
		bad                 bool
	}{
		{line: "STAT", keyword: "STAT"},
		{line: "stat", keyword: "STAT"},
		{line: "rEtR 1", keyword: "RETR", rest: "1"},
		{line: "TOP 1 10", keyword: "TOP", rest: "1 10"},
		{line: "PASS  two  spaces ", keyword: "PASS", rest: " two  spaces "},
		{line: "PASS caf\xc3\xa9", keyword: "PASS", rest: "caf\xc3\xa9"},
		{line: "QUIT ", keyword: "QUIT", rest: ""},
		{line: "", bad: true},
		{line: " STAT", bad: true},
		{line: "STATS", bad: true},
		{line: "ST4T", bad: true},
		{line: "RETR\x001", bad: true},
		{line: "RETR 1\r", bad: true},
		{line: "USER\tann", bad: true},
		{line: "NOOP\x7f", bad: true},
		{line: "\xffSTAT", bad: true},
	} {
		k, r, err := parseCommand(tc.line)
		if tc.bad {
			if err == nil {
				t.Errorf("parseCommand(%q) = %q, %q; want an error", tc.line, k, r)
			}
			continue
		}
		if err != nil || k != tc.keyword || r != tc.rest {
			t.Errorf("parseCommand(%q) = %q, %q, %v; want %q, %q", tc.line, k, r, err, tc.keyword, tc.rest)
		}
	}
	for _, tc := range []struct {
		s  string
		n  int
		ok bool
	}{
		{"1", 1, true}, {"0", 0, true}, {"007", 7, true}, {"999999999", 999999999, true},
		{"", 0, false}, {"-1", 0, false}, {"+1", 0, false}, {"1a", 0, false}, {"1000000000", 0, false}, {" 1", 0, false},
	} {
		if n, ok := parseNumber(tc.s); n != tc.n || ok != tc.ok {
			t.Errorf("parseNumber(%q) = %d, %v; want %d, %v", tc.s, n, ok, tc.n, tc.ok)
		}
	}
}

// FuzzParseCommand checks that any line either is refused or splits into
// an upper-case keyword of 1 to 4 letters and the rest of the line, and
// that the arguments parse without a panic. The seed corpus is in
// testdata/fuzz/FuzzParseCommand.
func FuzzParseCommand(f *testing.F) {
	for _, s := range []string{"STAT", "LIST 1", "TOP 1 10", "PASS with spaces", "AUTH PLAIN AGFubgBzZWNyZXQ=", "UIDL", "retr 99999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		keyword, rest, err := parseCommand(line)
		if err != nil {
			return
		}
		if n := len(keyword); n < 1 || n > 4 || strings.ToUpper(keyword) != keyword {
			t.Fatalf("keyword %q", keyword)
		}
		for i := range len(keyword) {
			if c := keyword[i]; c < 'A' || c > 'Z' {
				t.Fatalf("keyword %q has %q", keyword, c)
			}
		}
		if !strings.EqualFold(line[:len(keyword)], keyword) {
			t.Fatalf("keyword %q is not the start of %q", keyword, line)
		}
		if len(line) > len(keyword) && (line[len(keyword)] != ' ' || rest != line[len(keyword)+1:]) {
			t.Fatalf("line %q split into %q and %q", line, keyword, rest)
		}
		if strings.ContainsFunc(line, func(r rune) bool { return r < ' ' || r == 0x7f }) {
			t.Fatalf("line %q with a control character accepted", line)
		}
		for _, a := range fields(rest) {
			if a == "" || strings.Contains(a, " ") {
				t.Fatalf("argument %q of %q", a, rest)
			}
			if n, ok := parseNumber(a); ok {
				if n < 0 || strings.TrimLeft(a, "0") != strings.TrimLeft(strconv.Itoa(n), "0") {
					t.Fatalf("parseNumber(%q) = %d", a, n)
				}
			}
		}
	})
}
