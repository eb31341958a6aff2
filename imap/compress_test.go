package imap

import (
	"bytes"
	"compress/flate"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// TestDeflateStream talks raw DEFLATE both ways over a real pipe with an
// independent compressor and decompressor on the other end (as a client
// such as Thunderbird has), each server write reaching the client whole.
func TestDeflateStream(t *testing.T) {
	server, client := net.Pipe()
	defer server.Close()
	defer client.Close()
	d := newDeflateStream(server, server)
	defer d.Close()

	// Server to client: every write arrives without waiting for more.
	zr := flate.NewReader(client)
	defer zr.Close()
	lines := []string{"* OK [CAPABILITY IMAP4rev2] ready\r\n", strings.Repeat("* 1 FETCH (FLAGS (\\Seen))\r\n", 500)}
	for _, l := range lines {
		done := make(chan error, 1)
		go func() { _, err := d.Write([]byte(l)); done <- err }()
		got := make([]byte, len(l))
		client.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadFull(zr, got); err != nil {
			t.Fatalf("client read: %v", err)
		}
		if string(got) != l {
			t.Fatalf("client got %.40q, want %.40q", got, l)
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}

	// Client to server.
	cmd := "a1 NOOP\r\n"
	go func() {
		zw, _ := flate.NewWriter(client, flate.DefaultCompression)
		zw.Write([]byte(cmd))
		zw.Flush()
	}()
	got := make([]byte, len(cmd))
	server.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(d, got); err != nil || string(got) != cmd {
		t.Fatalf("server read %q, %v", got, err)
	}
}

// TestDeflateStreamCorrupt: damaged input is errCompressedInput.
func TestDeflateStreamCorrupt(t *testing.T) {
	d := newDeflateStream(bytes.NewReader([]byte{0xff, 0xff, 0xff, 0xff, 0xff}), io.Discard)
	_, err := io.ReadAll(d)
	if !errors.Is(err, errCompressedInput) {
		t.Fatalf("corrupt input: %v", err)
	}
}
