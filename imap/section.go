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

// A body section (RFC 9051 section 6.4.5: BODY[1.2.HEADER.FIELDS (...)],
// BODY[3.TEXT], BODY[2]...) is found in a message by reading it through
// go-message's header and multipart readers, as Summarize does, so that a
// part's bytes here are the bytes its BODYSTRUCTURE counts.
//
// The header sections (HEADER, HEADER.FIELDS, HEADER.FIELDS.NOT, MIME)
// are a header's fields, as they are in the message, and the blank line
// that ends it: small, they are returned as bytes. A part's content and
// TEXT stream from the message: a section of a 20 MiB attachment is never
// held in memory. The whole message (BODY[]) does not come here: it
// streams from the store as it is.
//
// Part 1 of a message that is not multipart is its body. Part N of a
// message/rfc822 (or message/global) part is part N of the message inside,
// and its HEADER and TEXT are that message's. A part of a multipart/digest
// without a Content-Type is a message/rfc822 (RFC 2046 section 5.1.5). A
// part that does not exist is an empty section. A header that breaks
// ends where it breaks, and a part where its message does, as Summarize
// reads them.

// openSection reads the message from r down to the section and returns
// it: a header section's bytes (header true), or a reader of its content
// that reads on from r (header false). It does not apply section.Partial.
func openSection(r io.Reader, section *goimap.FetchItemBodySection) (data []byte, content io.Reader, header bool) {
	if len(section.Part) > maxDepth {
		return nil, strings.NewReader(""), false
	}
	br := bufio.NewReader(r)
	h, _ := textproto.ReadHeader(br) // as in Summarize: a bad header is a short one
	parent, h, body := findPart(h, br, section.Part)
	if body == nil {
		return nil, strings.NewReader(""), false
	}
	spec := section.Specifier
	if len(section.Part) > 0 && (spec == goimap.PartSpecifierHeader || spec == goimap.PartSpecifierText) {
		// The header and text of the message in a message/rfc822 part;
		// of another part, the part's own header and body.
		h, body = openEmbedded(h, body, parent)
	}
	switch spec {
	case goimap.PartSpecifierNone, goimap.PartSpecifierText:
		return nil, body, false
	}
	return headerSection(h, section), nil, true
}

// headerSection is a header section of h: its fields, those named in
// HEADER.FIELDS or all but those of HEADER.FIELDS.NOT (names without
// case), in their order, then the blank line.
func headerSection(h textproto.Header, section *goimap.FetchItemBodySection) []byte {
	if len(section.HeaderFields) > 0 || len(section.HeaderFieldsNot) > 0 {
		keep := make(map[string]bool, len(section.HeaderFields))
		for _, k := range section.HeaderFields {
			keep[strings.ToLower(k)] = true
		}
		drop := make(map[string]bool, len(section.HeaderFieldsNot))
		for _, k := range section.HeaderFieldsNot {
			drop[strings.ToLower(k)] = true
		}
		h = h.Copy()
		for f := h.Fields(); f.Next(); {
			k := strings.ToLower(f.Key())
			if len(keep) > 0 && !keep[k] || drop[k] {
				f.Del()
			}
		}
	}
	var b bytes.Buffer
	textproto.WriteHeader(&b, h) // a bytes.Buffer does not fail
	return b.Bytes()
}

// findPart finds the part at path in a message whose header is h and
// body r, and returns its header and content with the media type of the
// multipart holding it, or a nil reader if there is no such part (see
// above for how parts are numbered).
func findPart(h textproto.Header, r io.Reader, path []int) (parentType string, _ textproto.Header, _ io.Reader) {
	if len(path) == 0 {
		return "", h, r
	}
	if mediaType, _, _ := mediaTypeOf(h); !strings.HasPrefix(mediaType, "multipart/") && path[0] == 1 {
		path = path[1:]
	}
	for _, num := range path {
		h, r = openEmbedded(h, r, parentType)
		mediaType, params, _ := mediaTypeOf(h)
		if !strings.HasPrefix(mediaType, "multipart/") {
			if num != 1 {
				return "", h, nil
			}
			continue
		}
		mr := textproto.NewMultipartReader(r, params["boundary"])
		for j := 1; ; j++ {
			p, err := mr.NextPart()
			if err != nil {
				return "", h, nil
			}
			if j == num {
				parentType, h, r = mediaType, p.Header, p
				break
			}
		}
	}
	return parentType, h, r
}

func mediaTypeOf(h textproto.Header) (string, map[string]string, error) {
	mh := gomessage.Header{Header: h}
	return mh.ContentType()
}

// openEmbedded returns the header and body of the message a
// message/rfc822 or message/global part (or a part of a multipart/digest
// without a Content-Type) holds, or h and r as they are for any other
// part.
func openEmbedded(h textproto.Header, r io.Reader, parentType string) (textproto.Header, io.Reader) {
	mh := gomessage.Header{Header: h}
	mediaType, _, _ := mh.ContentType()
	if !mh.Has("Content-Type") && parentType == "multipart/digest" {
		mediaType = "message/rfc822"
	}
	if mediaType == "message/rfc822" || mediaType == "message/global" {
		br := bufio.NewReader(r)
		inner, _ := textproto.ReadHeader(br)
		return inner, br
	}
	return h, r
}

// partialRange is the offset and length of a section's partial range
// <offset.size> in a section of n bytes: the whole section if partial is
// nil, nothing past its end.
func partialRange(partial *goimap.SectionPartial, n int64) (off, size int64) {
	if partial == nil {
		return 0, n
	}
	off = min(partial.Offset, n)
	return off, min(partial.Size, n-off)
}
