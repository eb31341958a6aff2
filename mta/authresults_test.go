package mta

import (
	"strings"
	"testing"
)

// TestStripAuthResults: only Authentication-Results fields of the
// header whose authserv-id is ours, in any case and however the field is
// written (folded, with comments, quoted), go, with their continuation
// lines; the rest of the header and the body stay byte for byte.
func TestStripAuthResults(t *testing.T) {
	const id = "mx.example.test"
	long := strings.Repeat("x", 100)
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"Subject: x\r\n\r\nbody\r\n", "Subject: x\r\n\r\nbody\r\n"},
		{"Authentication-Results: mx.example.test; spf=pass\r\nSubject: x\r\n\r\nbody\r\n", "Subject: x\r\n\r\nbody\r\n"},
		{"Subject: x\r\nauthentication-results: MX.Example.TEST; dkim=pass\r\n\r\n", "Subject: x\r\n\r\n"},
		// Folded, with comments before the id, and a version after it.
		{"A: 1\r\nAuthentication-Results:\r\n (a (nested) comment \\) )\r\n\tmx.example.test 1;\r\n  dmarc=pass\r\nB: 2\r\n\r\n", "A: 1\r\nB: 2\r\n\r\n"},
		{"Authentication-Results : \"mx.example.test\"; none\r\nB: 2\r\n\r\n", "B: 2\r\n\r\n"}, // obsolete space before the colon; quoted
		{"Authentication-Results: \"mx.exam\\ple.test\"; none\r\n\r\n", "\r\n"},                // a quoted pair
		{"Authentication-Results: mx.example.test;spf=pass", ""},                               // header only, no line end
		{"Authentication-Results: mx.example.test; x\n\nbody\n", "\nbody\n"},                   // bare LF
		// Several, between others.
		{"Authentication-Results: mx.example.test; a\r\nAuthentication-Results: other.example; b\r\nAuthentication-Results: mx.example.test; c\r\n " + long + "\r\nX: y\r\n\r\n",
			"Authentication-Results: other.example; b\r\nX: y\r\n\r\n"},
		// Not ours, or not the field.
		{"Authentication-Results: other.example; spf=pass\r\n\r\n", "Authentication-Results: other.example; spf=pass\r\n\r\n"},
		{"Authentication-Results: mx.example.test.evil; spf=pass\r\n\r\n", "Authentication-Results: mx.example.test.evil; spf=pass\r\n\r\n"},
		{"Authentication-Results: sub.mx.example.test; spf=pass\r\n\r\n", "Authentication-Results: sub.mx.example.test; spf=pass\r\n\r\n"},
		{"Authentication-Results: (mx.example.test) other.example; x\r\n\r\n", "Authentication-Results: (mx.example.test) other.example; x\r\n\r\n"},
		{"Authentication-Results: (unclosed mx.example.test; x\r\n\r\n", "Authentication-Results: (unclosed mx.example.test; x\r\n\r\n"},
		{"Authentication-Results:\r\n\r\n", "Authentication-Results:\r\n\r\n"},
		{"ARC-Authentication-Results: i=1; mx.example.test; spf=pass\r\n\r\n", "ARC-Authentication-Results: i=1; mx.example.test; spf=pass\r\n\r\n"},
		{"X-Authentication-Results: mx.example.test; spf=pass\r\n\r\n", "X-Authentication-Results: mx.example.test; spf=pass\r\n\r\n"},
		{"Authentication-Results-X: mx.example.test; spf=pass\r\n\r\n", "Authentication-Results-X: mx.example.test; spf=pass\r\n\r\n"},
		{"Subject: x\r\n Authentication-Results: mx.example.test; a continuation\r\n\r\n", "Subject: x\r\n Authentication-Results: mx.example.test; a continuation\r\n\r\n"},
		// In the body: left alone.
		{"Subject: x\r\n\r\nAuthentication-Results: mx.example.test; spf=pass\r\n", "Subject: x\r\n\r\nAuthentication-Results: mx.example.test; spf=pass\r\n"},
		{"\r\nAuthentication-Results: mx.example.test; spf=pass\r\n", "\r\nAuthentication-Results: mx.example.test; spf=pass\r\n"},
	} {
		if got := stripAuthResults([]byte(tc.in), id); string(got) != tc.want {
			t.Errorf("%q:\n got %q\nwant %q", tc.in, got, tc.want)
		}
	}
}
