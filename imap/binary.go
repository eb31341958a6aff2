package imap

import (
	"bufio"
	"fmt"
	"io"
	"mime/quotedprintable"
	"strings"

	goimap "github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	gomessage "github.com/emersion/go-message"
	"github.com/emersion/go-message/textproto"
)

// BINARY[part] and BINARY.SIZE[part] (RFC 3516, RFC 9051 section 6.4.5)
// are the part's content with its Content-Transfer-Encoding undone and
// nothing else: go-imap's ExtractBinarySection would also convert a text
// part's charset to UTF-8 (it decodes through go-message's Entity), and
// read the section into memory. Here the part is decoded twice, streaming:
// once to count its bytes for the literal8's size, once to write them.
//
// A partial BINARY[part]<origin.length> is refused: go-imap's
// FetchResponseWriter.WriteBinarySection (v2.0.0-beta.8) cannot write the
// "<origin>" that RFC 3516 section 4.2 and RFC 9051's msg-att-static put
// in the response, and a response without it would tell the client that
// the range is the whole part. This is why BINARY is not advertised (see
// caps in server.go), though IMAP4rev2 has the items.

// errUnknownCTE answers BINARY on a part in a transfer encoding the
// server cannot decode (RFC 3516 section 4.2).
var errUnknownCTE = &goimap.Error{Type: goimap.StatusResponseTypeNo, Code: goimap.ResponseCodeUnknownCTE, Text: "Unknown Content-Transfer-Encoding"}

// errBinaryPartial answers a partial BINARY fetch (see above).
var errBinaryPartial = &goimap.Error{Type: goimap.StatusResponseTypeNo, Code: goimap.ResponseCodeCannot, Text: "BINARY with a partial range is not supported"}

// checkBinaryOptions returns the error a FETCH with options gets before
// any message is looked at: errBinaryPartial for a partial BINARY. Fetch
// may call it first, so that such a FETCH answers nothing but NO;
// writeBinary checks again.
func checkBinaryOptions(options *goimap.FetchOptions) error {
	for _, section := range options.BinarySection {
		if section.Partial != nil {
			return errBinaryPartial
		}
	}
	return nil
}

// writeBinary writes the BINARY[...] and BINARY.SIZE[...] items of one
// message (RFC 3516).
func writeBinary(w *imapserver.FetchResponseWriter, body *lazyBody, options *goimap.FetchOptions) error {
	if err := checkBinaryOptions(options); err != nil {
		return err
	}
	for _, section := range options.BinarySection {
		n, err := binarySize(body, section.Part)
		if err != nil {
			return err
		}
		r, err := binarySection(body, section.Part)
		if err != nil {
			return err
		}
		wc := w.WriteBinarySection(section, n)
		// The second decoding gives what the first counted; should it
		// not, the literal is padded or cut to its size all the same.
		m, err := io.Copy(wc, io.LimitReader(r, n))
		if err == nil && m < n {
			_, err = io.CopyN(wc, zeros{}, n-m)
		}
		if cerr := wc.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	}
	for _, item := range options.BinarySectionSize {
		n, err := binarySize(body, item.Part)
		if err != nil {
			return err
		}
		w.WriteBinarySectionSize(item, uint32(min(n, 1<<32-1)))
	}
	return nil
}

// binarySize counts the bytes of a BINARY section.
func binarySize(body *lazyBody, part []int) (int64, error) {
	r, err := binarySection(body, part)
	if err != nil {
		return 0, err
	}
	n, _ := io.Copy(io.Discard, r) // a decoding error ends the section
	return n, nil
}

// binarySection returns a reader of a BINARY section: for the whole
// message, its header as it is and its body decoded; for a part, its
// content decoded. A part that does not exist is empty. A decoding error
// (bad base64, bad quoted-printable) ends the section where it is.
func binarySection(body *lazyBody, part []int) (io.Reader, error) {
	raw, err := body.reader()
	if err != nil {
		return nil, err
	}
	cr := &countingReader{r: raw}
	br := bufio.NewReader(cr)
	h, err := textproto.ReadHeader(br)
	if err != nil {
		return strings.NewReader(""), nil
	}
	if len(part) == 0 {
		headerLen := cr.n - int64(br.Buffered())
		decoded, err := decodeTransfer(gomessage.Header{Header: h}, br)
		if err != nil {
			return nil, err
		}
		whole, err := body.reader()
		if err != nil {
			return nil, err
		}
		return io.MultiReader(io.LimitReader(whole, headerLen), decoded), nil
	}
	_, h, r := findPart(h, br, part)
	if r == nil {
		return strings.NewReader(""), nil
	}
	return decodeTransfer(gomessage.Header{Header: h}, r)
}

// decodeTransfer undoes the Content-Transfer-Encoding of a part whose
// header is h (RFC 2045 section 6): none for 7bit, 8bit, binary, no
// field, and multiparts whatever they say; errUnknownCTE for a value it
// does not know.
func decodeTransfer(h gomessage.Header, r io.Reader) (io.Reader, error) {
	if mediaType, _, _ := h.ContentType(); strings.HasPrefix(mediaType, "multipart/") {
		return r, nil
	}
	cte := strings.TrimSpace(h.Get("Content-Transfer-Encoding"))
	if i := strings.IndexAny(cte, " \t("); i >= 0 {
		cte = cte[:i]
	}
	switch strings.ToLower(cte) {
	case "", "7bit", "8bit", "binary":
		return r, nil
	case "base64":
		return &base64Reader{r: r}, nil
	case "quoted-printable":
		return quotedprintable.NewReader(r), nil
	}
	return nil, errUnknownCTE
}

// base64Reader decodes base64 leniently, as mail needs: characters
// outside the alphabet (line breaks, white space, garbage) are skipped,
// and "=" or the end finishes a quantum early, so that text padded line
// by line and text missing its padding both decode.
type base64Reader struct {
	r    io.Reader
	in   [4096]byte
	dec  [4096]byte // 4096 characters decode to 3072 bytes, and a quantum left over to 3 more
	out  []byte     // of dec, decoded, not yet read
	q    uint32     // the quantum so far, 6 bits a character
	nq   int        // characters in q
	done bool
	err  error
}

func (b *base64Reader) Read(p []byte) (int, error) {
	for len(b.out) == 0 {
		if b.done {
			return 0, b.err
		}
		n, err := b.r.Read(b.in[:])
		out := b.dec[:0]
		for _, c := range b.in[:n] {
			var v byte
			switch {
			case c >= 'A' && c <= 'Z':
				v = c - 'A'
			case c >= 'a' && c <= 'z':
				v = c - 'a' + 26
			case c >= '0' && c <= '9':
				v = c - '0' + 52
			case c == '+':
				v = 62
			case c == '/':
				v = 63
			case c == '=':
				out = b.flush(out)
				continue
			default:
				continue
			}
			b.q = b.q<<6 | uint32(v)
			if b.nq++; b.nq == 4 {
				out = append(out, byte(b.q>>16), byte(b.q>>8), byte(b.q))
				b.q, b.nq = 0, 0
			}
		}
		if err != nil {
			out = b.flush(out)
			b.done = true
			b.err = err
			if err != io.EOF {
				b.err = fmt.Errorf("imap: base64 part: %w", err)
			}
		}
		b.out = out
	}
	n := copy(p, b.out)
	b.out = b.out[n:]
	return n, nil
}

// flush appends what a partial quantum holds (a lone character holds
// nothing) and starts a new one.
func (b *base64Reader) flush(out []byte) []byte {
	switch b.nq {
	case 2:
		out = append(out, byte(b.q>>4))
	case 3:
		out = append(out, byte(b.q>>10), byte(b.q>>2))
	}
	b.q, b.nq = 0, 0
	return out
}

// zeros reads NUL bytes without end.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}
