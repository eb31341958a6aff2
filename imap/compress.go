package imap

import (
	"errors"
	"io"

	"github.com/klauspost/compress/flate"
)

// deflateStream is a connection's byte stream after COMPRESS DEFLATE (RFC
// 4978): raw DEFLATE (RFC 1951) both ways, no zlib or gzip framing.
//
// Each Write is compressed on its own and ends byte-aligned (a sync
// flush), so that what the server writes reaches the client whole, and no
// compressor state outlives it: the Writer above writes a block per flush
// (a command's responses, up to 64 KiB), which compresses well alone, and
// an idle connection holds no compressor. Go's own compressor would hold
// 0.8 to 1.2 MiB per connection; klauspost/compress's stateless one holds
// nothing between writes. The decompressor keeps the 32 KiB window
// DEFLATE needs (about 35 KiB in all).
type deflateStream struct {
	zr io.ReadCloser
	zw io.Writer
}

// newDeflateStream compresses what is written to w and decompresses what
// is read from r.
func newDeflateStream(r io.Reader, w io.Writer) *deflateStream {
	return &deflateStream{zr: flate.NewReader(r), zw: flate.NewStatelessWriter(w)}
}

// errCompressedInput is the error reading a DEFLATE stream the client
// sent damaged: the connection cannot go on.
var errCompressedInput = errors.New("imap: invalid compressed input")

func (d *deflateStream) Read(p []byte) (int, error) {
	n, err := d.zr.Read(p)
	if err != nil && err != io.EOF {
		var ce flate.CorruptInputError
		if errors.As(err, &ce) {
			err = errors.Join(errCompressedInput, err)
		}
	}
	return n, err
}

func (d *deflateStream) Write(p []byte) (int, error) {
	return d.zw.Write(p)
}

// Close releases the decompressor; the connection under it is closed by
// its owner.
func (d *deflateStream) Close() error { return d.zr.Close() }
