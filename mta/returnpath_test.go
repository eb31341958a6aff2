package mta

import (
	"bufio"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

// TestHeaderFilter takes Return-Path fields out of headers read through
// bufio's smallest buffer, so that lines longer than it are passed or
// dropped in pieces, and read a byte at a time.
func TestHeaderFilter(t *testing.T) {
	long := strings.Repeat("y", 100)
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"Subject: x\r\n\r\nbody\r\n", "Subject: x\r\n\r\nbody\r\n"},
		{"Return-Path: <a@b>\r\nSubject: x\r\n\r\nReturn-Path: <kept>\r\n", "Subject: x\r\n\r\nReturn-Path: <kept>\r\n"},
		{"Subject: x\r\nreturn-path \t: <a@b>\r\n " + long + "\r\n\t" + long + "\r\nTo: y\r\n\r\n", "Subject: x\r\nTo: y\r\n\r\n"},
		{"X-" + long + ": " + long + "\r\n\t" + long + "\r\n\r\n" + long, "X-" + long + ": " + long + "\r\n\t" + long + "\r\n\r\n" + long},
		{"Return-Path: <" + long + ">\r\n", ""}, // header only, no body
		{"Return-Path: <a@b>", ""},              // no line end
		{"Return-Pathology: x\r\nReturn-Path\r\n", "Return-Pathology: x\r\nReturn-Path\r\n"}, // not the field
		{"Subject: bare LF\n\nReturn-Path: <kept>\n", "Subject: bare LF\n\nReturn-Path: <kept>\n"},
		{"Return-Path: <a@b>\n\n", "\n"},
	} {
		f := &headerFilter{r: bufio.NewReaderSize(strings.NewReader(tc.in), 16), drop: isReturnPath}
		got, err := io.ReadAll(iotest.OneByteReader(f))
		if err != nil || string(got) != tc.want {
			t.Errorf("%q:\n got %q, %v\nwant %q", tc.in, got, err, tc.want)
		}
	}
}
