package imap

import (
	goimap "github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
)

// writeBinary writes the BINARY[...] and BINARY.SIZE[...] items of one
// message (RFC 3516).
func writeBinary(w *imapserver.FetchResponseWriter, body *lazyBody, options *goimap.FetchOptions) error {
	for _, section := range options.BinarySection {
		r, err := body.reader()
		if err != nil {
			return err
		}
		b := imapserver.ExtractBinarySection(r, section)
		wc := w.WriteBinarySection(section, int64(len(b)))
		wc.Write(b)
		if err := wc.Close(); err != nil {
			return err
		}
	}
	for _, item := range options.BinarySectionSize {
		r, err := body.reader()
		if err != nil {
			return err
		}
		w.WriteBinarySectionSize(item, imapserver.ExtractBinarySectionSize(r, item))
	}
	return nil
}
