package sortthread

import (
	"strings"
	"testing"
)

func TestBaseSubject(t *testing.T) {
	for _, tc := range []struct {
		in, base string
		reply    bool
	}{
		{"", "", false},
		{"   ", "", false},
		{"hello", "hello", false},
		{"Re: hello", "hello", true},
		{"RE:hello", "hello", true},
		{"re:re: fw: hello", "hello", true},
		{"Fwd:  hello \t  world\r\n ", "hello world", true},
		{"Fw : hello", "hello", true},
		{"Re [list]: hello", "hello", true},
		{"[list] Re: hello", "hello", true},
		{"[a][b] Re: hello", "hello", true},
		{"[a] [b] hello", "hello", false},
		{"[list] hello (fwd)", "hello", true},
		{"hello (FWD) (fwd)  ", "hello", true},
		{"[list]", "[list]", false},
		{"[list] [x]", "[x]", false},
		{"[fwd: hello]", "hello", true},
		{"[Fwd: Re: hello]", "hello", true},
		{"Re: [fwd: hello] (fwd)", "hello", true},
		{"[fwd: [fwd: hello]]", "hello", true},
		{"Re", "Re", false},
		{"Reply to all", "Reply to all", false},
		{"Fwded: x", "Fwded: x", false},
		{"Re: (fwd)", "", true},
		{"[unclosed Re: x", "[unclosed Re: x", false},
		{"Re: \xff\xfe", "\xff\xfe", true},
		{"Re: Grüße", "Grüße", true},
	} {
		base, reply := BaseSubject(tc.in)
		if base != tc.base || reply != tc.reply {
			t.Errorf("BaseSubject(%q) = %q, %v; want %q, %v", tc.in, base, reply, tc.base, tc.reply)
		}
	}
}

func TestFoldKey(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"", "", 0},
		{"abc", "ABC", 0},
		{"a", "B", -1},
		{"B", "a", 1},
		{"ab", "abc", -1},
		{"_", "a", 1}, // folded to upper case: 'A' (0x41) < '_' (0x5F)
		{"é", "e", 1},
	} {
		if got := strings.Compare(foldKey(tc.a), foldKey(tc.b)); got != tc.want {
			t.Errorf("%q against %q = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}

func FuzzBaseSubject(f *testing.F) {
	for _, s := range []string{"Re: hello", "[fwd: Re: x] (fwd)", "[a][b] Fw [c]: y", "[", "]", "Re:", "\t\r\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		base, _ := BaseSubject(s)
		if len(base) > len(s)+1 {
			t.Fatalf("base %q longer than %q", base, s)
		}
		// The base subject is a fixed point: nothing more comes off.
		if again, reply := BaseSubject(base); again != base && !(reply && again == "") {
			t.Fatalf("BaseSubject(%q) = %q, but BaseSubject of that is %q", s, base, again)
		}
	})
}
