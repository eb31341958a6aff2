package mta

import (
	"bufio"
	"bytes"
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

// FuzzAppendDelivery checks that the in-memory delivery body, made for a
// message kept from its acceptance, is byte for byte what deliveryBody
// streams from the log, so that a replay stores the same bytes.
func FuzzAppendDelivery(f *testing.F) {
	long := strings.Repeat("y", 5000)
	for _, s := range []string{
		"", "\r", "\n", "\r\n", "Subject: x\r\n\r\nbody\r\n",
		"Return-Path: <a@b>\r\nSubject: x\r\n\r\nReturn-Path: <kept>\r\n",
		"Subject: x\r\nreturn-path \t: <a@b>\r\n " + long + "\r\n\t" + long + "\r\nTo: y\r\n\r\n",
		"X-" + long + ": " + long + "\r\n\t" + long + "\r\n\r\n" + long,
		"Return-Path: <a@b>", "Return-Path\r\n: x\r\n", "return-path" + strings.Repeat(" ", 40) + ": x\r\n",
		"Return-Pathology: x\r\nReturn-Path\r\n", "Subject: bare LF\n\nReturn-Path: <kept>\n",
		"Return-Path: <a@b>\n\n", " leading continuation\r\nReturn-Path: x\r\n\tmore\r\nA: b\r\n\r", "A: b\r\n\rx",
	} {
		f.Add("sender@example.net", []byte(s))
	}
	f.Fuzz(func(t *testing.T, from string, msg []byte) {
		want, err := io.ReadAll(deliveryReader(from, bytes.NewReader(msg)))
		if err != nil {
			t.Fatal(err)
		}
		if got := appendDelivery(nil, from, msg); !bytes.Equal(got, want) {
			t.Fatalf("%q:\n got %q\nwant %q", msg, got, want)
		}
		// Without a Return-Path field to take out, the field and the
		// message as they are.
		plain := append([]byte("Return-Path: <"+from+">\r\n"), msg...)
		if got := !hasReturnPath(msg); got != bytes.Equal(plain, want) {
			t.Fatalf("%q: hasReturnPath %v, but the delivery body is %q", msg, !got, want)
		}
	})
}
