package wire

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"testing"
	"time"

	goimap "github.com/emersion/go-imap/v2"
)

// BenchmarkFetchFlags encodes "* n FETCH (UID u FLAGS (\Seen))" for
// 100,000 messages to io.Discard with the Writer, against fmt.Fprintf of
// the same bytes into a bufio.Writer of the same size, both timed in the
// same loop: ns/msg is the Writer's, baseline-ns/msg fmt's, and
// ratio_to_baseline the first over the second (below 1 is faster).
func BenchmarkFetchFlags(b *testing.B) {
	const n = 100_000
	flags := []goimap.Flag{goimap.FlagSeen}
	writeWire := func(w *Writer) {
		for i := range uint32(n) {
			f := w.Fetch(i + 1)
			f.UID(i + 1001)
			f.Flags(flags)
			f.End()
		}
		w.Flush()
	}
	writeFmt := func(bw *bufio.Writer) {
		for i := range n {
			fmt.Fprintf(bw, "* %d FETCH (UID %d FLAGS (\\Seen))\r\n", i+1, i+1001)
		}
		bw.Flush()
	}
	// The same bytes.
	var a, c bytes.Buffer
	writeWire(NewWriter(&a, 0))
	writeFmt(bufio.NewWriterSize(&c, DefaultBufferSize))
	if !bytes.Equal(a.Bytes(), c.Bytes()) {
		b.Fatalf("the Writer and fmt differ: %.80q vs %.80q", a.Bytes(), c.Bytes())
	}
	w := NewWriter(io.Discard, 0)
	bw := bufio.NewWriterSize(io.Discard, DefaultBufferSize)
	var wire, base time.Duration
	b.SetBytes(int64(a.Len()))
	for b.Loop() {
		t0 := time.Now()
		writeWire(w)
		t1 := time.Now()
		writeFmt(bw)
		wire += t1.Sub(t0)
		base += time.Since(t1)
	}
	msgs := float64(b.N) * n
	b.ReportMetric(float64(wire.Nanoseconds())/msgs, "ns/msg")
	b.ReportMetric(float64(base.Nanoseconds())/msgs, "baseline-ns/msg")
	b.ReportMetric(float64(wire)/float64(base), "ratio_to_baseline")
}

// encPlainReader is an io.Reader over a byte slice with no WriteTo, so
// that a literal goes through the Writer's buffer.
type encPlainReader struct {
	b   []byte
	off int
}

func (r *encPlainReader) Read(p []byte) (int, error) {
	if r.off >= len(r.b) {
		return 0, io.EOF
	}
	n := copy(p, r.b[r.off:])
	r.off += n
	return n, nil
}

// BenchmarkLiteral writes a 1 MiB literal to io.Discard: from a
// bytes.Reader (which writes itself) and from a plain reader (through
// the Writer's buffer), each against io.Copy of the same source in the
// same loop. MB/s is the Writer's; ratio_to_baseline is the Writer's time
// over io.Copy's.
func BenchmarkLiteral(b *testing.B) {
	body := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	for _, src := range []struct {
		name string
		new  func() io.Reader
	}{
		{"bytes.Reader", func() io.Reader { return bytes.NewReader(body) }},
		{"plain", func() io.Reader { return &encPlainReader{b: body} }},
	} {
		b.Run(src.name, func(b *testing.B) {
			// io.Discard without its ReadFrom (which would skip the
			// copy), for both: as a connection with TLS or COMPRESS is.
			dst := struct{ io.Writer }{io.Discard}
			w := NewWriter(dst, 0)
			var wire, base time.Duration
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				r := src.new()
				t0 := time.Now()
				if err := w.Literal(int64(len(body)), r); err != nil {
					b.Fatal(err)
				}
				w.Flush()
				t1 := time.Now()
				if _, err := io.Copy(dst, src.new()); err != nil {
					b.Fatal(err)
				}
				wire += t1.Sub(t0)
				base += time.Since(t1)
			}
			b.ReportMetric(float64(len(body))*float64(b.N)/wire.Seconds()/1e6, "wire-MB/s")
			b.ReportMetric(float64(len(body))*float64(b.N)/base.Seconds()/1e6, "baseline-MB/s")
			b.ReportMetric(float64(wire)/float64(base), "ratio_to_baseline")
		})
	}
}
