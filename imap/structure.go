package imap

import (
	"bufio"
	"bytes"
	"io"
	"strings"

	goimap "github.com/emersion/go-imap/v2"
	gomessage "github.com/emersion/go-message"
	"github.com/emersion/go-message/textproto"
)

// extractStructure is go-imap's extractBodyStructure (imapserver/message.go,
// v2.0.0-beta.8) made to stream, with extractEnvelope for the envelopes of
// message/rfc822 parts: go-imap reads each leaf part into memory
// with io.ReadAll to measure it and, for message/rfc822, to parse it again;
// here the bytes go through a counter instead, and the embedded message is
// parsed as it is counted. Every other step is go-imap's, in go-imap's
// order, so the results are equal (summary_test.go checks it on a corpus
// and FuzzSummarize on random input).
//
// depth is the nesting level of this part, 1 for the message itself; a
// multipart or message/rfc822 part at maxDepth becomes an
// application/octet-stream leaf, which go-imap does not do (it has no
// limit).
func extractStructure(rawHeader textproto.Header, r io.Reader, depth int) goimap.BodyStructure {
	header := gomessage.Header{Header: rawHeader}

	mediaType, typeParams, _ := header.ContentType()
	primaryType, subType, _ := strings.Cut(mediaType, "/")
	isMessage := mediaType == "message/rfc822" || mediaType == "message/global"

	if depth >= maxDepth && (primaryType == "multipart" || isMessage) {
		mediaType, primaryType, subType, typeParams = "application/octet-stream", "application", "octet-stream", nil
		isMessage = false
	}

	if primaryType == "multipart" {
		bs := &goimap.BodyStructureMultiPart{Subtype: subType}
		mr := textproto.NewMultipartReader(r, typeParams["boundary"])
		for {
			part, _ := mr.NextPart()
			if part == nil {
				break
			}
			bs.Children = append(bs.Children, extractStructure(part.Header, part, depth+1))
		}
		bs.Extended = &goimap.BodyStructureMultiPartExt{
			Params:      typeParams,
			Disposition: contentDisposition(header),
			Language:    contentLanguage(header),
			Location:    header.Get("Content-Location"),
		}
		return bs
	}

	// go-imap reads the body here; this counts it on the way instead.
	body := &countingReader{r: r}
	var msg *goimap.BodyStructureMessageRFC822
	if isMessage {
		br := bufio.NewReader(body)
		childHeader, _ := textproto.ReadHeader(br)
		msg = &goimap.BodyStructureMessageRFC822{
			Envelope:      extractEnvelope(childHeader),
			BodyStructure: extractStructure(childHeader, br, depth+1),
		}
	}
	io.Copy(io.Discard, body) // the rest; errors end the part, as in go-imap

	bs := &goimap.BodyStructureSinglePart{
		Type:        primaryType,
		Subtype:     subType,
		Params:      typeParams,
		ID:          header.Get("Content-Id"),
		Description: header.Get("Content-Description"),
		Encoding:    header.Get("Content-Transfer-Encoding"),
		Size:        uint32(body.n),
	}
	if msg != nil {
		msg.NumLines = body.lines
		bs.MessageRFC822 = msg
	}
	if primaryType == "text" {
		bs.Text = &goimap.BodyStructureText{NumLines: body.lines}
	}
	bs.Extended = &goimap.BodyStructureSinglePartExt{
		Disposition: contentDisposition(header),
		Language:    contentLanguage(header),
		Location:    header.Get("Content-Location"),
	}
	return bs
}

// countingReader counts the bytes and the line feeds read through it. It
// ends at the first error, reporting io.EOF for it: go-imap parses an
// embedded message from the bytes it managed to read, which end in a plain
// io.EOF whatever stopped the read.
type countingReader struct {
	r     io.Reader
	n     int64
	lines int64
	done  bool
}

func (c *countingReader) Read(p []byte) (int, error) {
	if c.done {
		return 0, io.EOF
	}
	n, err := c.r.Read(p)
	c.n += int64(n)
	c.lines += int64(bytes.Count(p[:n], []byte{'\n'}))
	if err != nil {
		c.done = true
		err = io.EOF
	}
	return n, err
}

// contentDisposition is go-imap's getContentDisposition.
func contentDisposition(header gomessage.Header) *goimap.BodyStructureDisposition {
	disp, dispParams, _ := header.ContentDisposition()
	if disp == "" {
		return nil
	}
	return &goimap.BodyStructureDisposition{
		Value:  disp,
		Params: dispParams,
	}
}

// contentLanguage is go-imap's getContentLanguage.
func contentLanguage(header gomessage.Header) []string {
	v := header.Get("Content-Language")
	if v == "" {
		return nil
	}
	l := strings.Split(v, ",")
	for i, lang := range l {
		l[i] = strings.TrimSpace(lang)
	}
	return l
}
