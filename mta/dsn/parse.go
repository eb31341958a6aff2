package dsn

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"
)

// The bounds of Parse.
const (
	// MaxParseSize is the largest notification Parse reads.
	MaxParseSize = 16 << 20
	// maxStatusSize bounds the delivery-status part.
	maxStatusSize = 1 << 20
	// maxTextSize bounds the text kept of the part for a person.
	maxTextSize = 1 << 20
	// maxParts bounds the parts of the report.
	maxParts = 64
	// maxRecipients bounds the recipients' blocks of fields.
	maxRecipients = 10000
)

// Parsed is a notification read back by Parse.
type Parsed struct {
	// Header is the notification's own header: From, To, Subject,
	// Auto-Submitted, Content-Type…
	Header mail.Header
	// Global is set when the fields came as
	// message/global-delivery-status (RFC 6533).
	Global bool
	// Text is the part for a person (the first, when it is text), its
	// transfer encoding undone; at most 1 MiB of it.
	Text string
	// PerMessage holds the per-message fields: Reporting-MTA,
	// Original-Envelope-Id, Arrival-Date…
	PerMessage Fields
	// Recipients holds each recipient's fields (Final-Recipient,
	// Action, Status…), in order: at least one.
	Recipients []Fields
	// OriginalType is the media type, in lower case and without
	// parameters, of the part after the fields that returns the
	// original (message/rfc822, text/rfc822-headers, message/global,
	// message/global-headers…); "" when there is none.
	OriginalType string
	// Original is that part's content, its transfer encoding undone.
	Original []byte
}

// Fields is one block of delivery-status fields (RFC 3464 §2.2, §2.3),
// keyed by field name in lower case, each value unfolded and without the
// spaces at its ends. A field that is repeated keeps its first value.
type Fields map[string]string

// Get returns the value of the field name, whatever its case; "" when
// there is none.
func (f Fields) Get(name string) string { return f[strings.ToLower(name)] }

// Typed splits a field of the form "type; value" (Reporting-MTA,
// Final-Recipient, Original-Recipient, Remote-MTA, Diagnostic-Code) into
// its type, in lower case, and its value. ok is false when the field is
// absent or has no type.
func (f Fields) Typed(name string) (typ, value string, ok bool) {
	typ, value, ok = strings.Cut(f.Get(name), ";")
	if !ok {
		return "", "", false
	}
	return strings.ToLower(strings.TrimSpace(typ)), strings.TrimSpace(value), true
}

// Parse reads a delivery status notification: a multipart/report whose
// report-type is delivery-status (or global-delivery-status), with a
// message/delivery-status or message/global-delivery-status part. It
// checks the fields RFC 3464 requires (Reporting-MTA; Final-Recipient,
// Action and Status for each recipient) but not their values.
//
// Parse reads at most MaxParseSize bytes, 1 MiB of fields, 64 parts and
// 10,000 recipients; anything more, and anything it cannot read as a
// notification, is an error wrapping ErrMalformed. It only returns
// other errors for a failure of r.
func Parse(r io.Reader) (*Parsed, error) {
	lr := &limitReader{r: r, n: MaxParseSize}
	p, err := parse(lr)
	switch {
	case lr.over:
		return nil, fmt.Errorf("%w: larger than %d bytes", ErrMalformed, MaxParseSize)
	case lr.err != nil:
		return nil, fmt.Errorf("dsn: reading the notification: %w", lr.err)
	}
	return p, err
}

func parse(r io.Reader) (*Parsed, error) {
	e, err := message.Read(r)
	if err != nil && !tolerable(err) {
		return nil, fmt.Errorf("%w: header: %v", ErrMalformed, err)
	}
	mt, params, err := e.Header.ContentType()
	if err != nil || mt != "multipart/report" {
		return nil, fmt.Errorf("%w: Content-Type %q is not multipart/report", ErrMalformed, e.Header.Get("Content-Type"))
	}
	if rt := strings.ToLower(params["report-type"]); rt != "delivery-status" && rt != "global-delivery-status" {
		return nil, fmt.Errorf("%w: report-type %q is not delivery-status", ErrMalformed, params["report-type"])
	}
	p := &Parsed{Header: mail.Header{Header: e.Header}}
	mr := e.MultipartReader()
	status := false
	for i := 0; ; i++ {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil && !tolerable(err) {
			return nil, fmt.Errorf("%w: part %d: %v", ErrMalformed, i+1, err)
		}
		if i == maxParts {
			return nil, fmt.Errorf("%w: more than %d parts", ErrMalformed, maxParts)
		}
		ct, _, err := part.Header.ContentType()
		if err != nil {
			ct = ""
		}
		switch {
		case !status && (ct == "message/delivery-status" || ct == "message/global-delivery-status"):
			body, err := readAtMost(part.Body, maxStatusSize)
			if err != nil {
				return nil, fmt.Errorf("%w: the %s part: %v", ErrMalformed, ct, err)
			}
			if p.PerMessage, p.Recipients, err = parseStatus(body); err != nil {
				return nil, err
			}
			p.Global, status = ct == "message/global-delivery-status", true
		case i == 0 && strings.HasPrefix(ct, "text/"):
			b, err := io.ReadAll(io.LimitReader(part.Body, maxTextSize))
			if err != nil {
				return nil, fmt.Errorf("%w: the text part: %v", ErrMalformed, err)
			}
			p.Text = string(b)
		case status && p.OriginalType == "":
			if p.Original, err = io.ReadAll(part.Body); err != nil {
				return nil, fmt.Errorf("%w: the %s part: %v", ErrMalformed, ct, err)
			}
			p.OriginalType = strings.ToLower(ct)
			if p.OriginalType == "" {
				p.OriginalType = "application/octet-stream"
			}
		}
	}
	if !status {
		return nil, fmt.Errorf("%w: no message/delivery-status part", ErrMalformed)
	}
	return p, nil
}

// tolerable reports whether err from go-message leaves an entity that
// can still be read: an unknown charset or transfer encoding, which
// leaves the body as it came.
func tolerable(err error) bool {
	return message.IsUnknownCharset(err) || message.IsUnknownEncoding(err)
}

// readAtMost reads all of r, failing if it holds more than max bytes.
func readAtMost(r io.Reader, max int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, max+1))
	if err == nil && int64(len(b)) > max {
		err = fmt.Errorf("larger than %d bytes", max)
	}
	return b, err
}

// parseStatus reads the body of a delivery-status part: blocks of fields
// separated by blank lines (lines of spaces count as blank), the first
// per-message, each next one a recipient's.
func parseStatus(body []byte) (Fields, []Fields, error) {
	var blocks []Fields
	for block := range blocksOf(body) {
		if len(blocks) > maxRecipients {
			return nil, nil, fmt.Errorf("%w: more than %d recipients", ErrMalformed, maxRecipients)
		}
		h, err := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(block)))
		if err != nil {
			return nil, nil, fmt.Errorf("%w: block %d of fields: %v", ErrMalformed, len(blocks)+1, err)
		}
		f := Fields{}
		for fs := h.Fields(); fs.Next(); {
			k := strings.ToLower(fs.Key())
			if _, dup := f[k]; !dup {
				f[k] = fs.Value()
			}
		}
		blocks = append(blocks, f)
	}
	if len(blocks) < 2 {
		return nil, nil, fmt.Errorf("%w: no per-recipient fields", ErrMalformed)
	}
	if blocks[0].Get("Reporting-MTA") == "" {
		return nil, nil, fmt.Errorf("%w: no Reporting-MTA field", ErrMalformed)
	}
	for i, f := range blocks[1:] {
		for _, name := range []string{"Final-Recipient", "Action", "Status"} {
			if f.Get(name) == "" {
				return nil, nil, fmt.Errorf("%w: recipient %d: no %s field", ErrMalformed, i+1, name)
			}
		}
	}
	return blocks[0], blocks[1:], nil
}

// blocksOf yields the blocks of lines of body that blank lines separate,
// each with its line ends and a blank line after it (the end of a
// header, for textproto.ReadHeader).
func blocksOf(body []byte) func(yield func([]byte) bool) {
	return func(yield func([]byte) bool) {
		start := -1 // of the block being read
		for pos := 0; pos < len(body); {
			end := bytes.IndexByte(body[pos:], '\n')
			if end < 0 {
				end = len(body)
			} else {
				end += pos + 1
			}
			if blank := len(bytes.Trim(body[pos:end], " \t\r\n")) == 0; blank && start >= 0 {
				if !yield(appendBlank(body[start:pos])) {
					return
				}
				start = -1
			} else if !blank && start < 0 {
				start = pos
			}
			pos = end
		}
		if start >= 0 {
			yield(appendBlank(body[start:]))
		}
	}
}

// appendBlank returns a copy of block ending with a line end and a blank
// line.
func appendBlank(block []byte) []byte {
	b := bytes.Clone(block)
	if !bytes.HasSuffix(b, []byte("\n")) {
		b = append(b, "\r\n"...)
	}
	return append(b, "\r\n"...)
}

// limitReader reads at most n bytes of r, and notes whether r held more
// (over) and any error of r's own (err).
type limitReader struct {
	r    io.Reader
	n    int64
	over bool
	err  error
}

// errTooLarge ends the reading of a notification larger than
// MaxParseSize.
var errTooLarge = errors.New("dsn: notification too large")

func (l *limitReader) Read(p []byte) (int, error) {
	if l.over {
		return 0, errTooLarge
	}
	if l.n <= 0 {
		// Anything past the limit?
		var one [1]byte
		n, err := l.r.Read(one[:])
		if n > 0 {
			l.over = true
			return 0, errTooLarge
		}
		return 0, l.note(err)
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, err := l.r.Read(p)
	l.n -= int64(n)
	return n, l.note(err)
}

// note records err if it is r's failure rather than its end.
func (l *limitReader) note(err error) error {
	if err != nil && !errors.Is(err, io.EOF) {
		l.err = err
	}
	return err
}
