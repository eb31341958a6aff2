package imap

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	goimap "github.com/emersion/go-imap/v2"
	gomessage "github.com/emersion/go-message"
	"github.com/emersion/go-message/textproto"
	"golang.org/x/text/cases"
	"golang.org/x/text/transform"
)

// Text search (BODY and TEXT): a message's text is its MIME-decoded
// content. The body is walked part by part, streaming:
//
//   - text/* parts are decoded (base64, quoted-printable) and converted
//     from their charset to UTF-8 (GBK, GB2312, ISO-8859-1... through
//     go-message/charset); with an unknown encoding or charset, the bytes
//     are searched as they are;
//   - message/rfc822 and message/global parts contribute their header
//     fields ("Name: decoded value") and their own text, recursively;
//   - multipart parts contribute their parts' text (the parts of a
//     multipart/digest without a Content-Type are message/rfc822);
//   - other parts (images, application/*...) are not searched.
//
// Matching is substring matching after Unicode case folding (x/text/cases
// Fold) of both the text and the term, so "ß" matches "SS" and Chinese
// terms match as they are. A term never matches across two parts or two
// header fields. TEXT also matches the message's own header fields.
//
// All the BODY and TEXT terms of a search are looked for in one pass over
// the body, which stops when every term is found, at the end of the
// message, or after maxSearchText bytes of decoded text: a term that
// appears only beyond that is not found.

// maxSearchText bounds the decoded text examined per message.
const maxSearchText = 10 << 20

// errScanDone stops a scan: every term found, or maxSearchText reached.
var errScanDone = errors.New("imap: search: scan done")

// foldString case-folds s for matching.
func foldString(s string) string {
	return cases.Fold().String(s)
}

// searchTerms returns the BODY and TEXT terms of c and its subcriteria,
// case-folded, without duplicates or empty terms.
func searchTerms(c *goimap.SearchCriteria, terms []string) []string {
	for _, l := range [][]string{c.Body, c.Text} {
		for _, t := range l {
			if t == "" {
				continue
			}
			if t = foldString(t); !containsString(terms, t) {
				terms = append(terms, t)
			}
		}
	}
	for i := range c.Not {
		terms = searchTerms(&c.Not[i], terms)
	}
	for i := range c.Or {
		terms = searchTerms(&c.Or[i][0], terms)
		terms = searchTerms(&c.Or[i][1], terms)
	}
	return terms
}

func containsString(l []string, s string) bool {
	for _, t := range l {
		if t == s {
			return true
		}
	}
	return false
}

// bodyContains reports whether the message's body text contains term. The
// first call scans the body for all the search's terms at once.
func (s *searchState) bodyContains(term string) (bool, error) {
	if term == "" {
		return true, nil
	}
	if s.found == nil {
		h, err := s.readHeader()
		if err != nil {
			return false, err
		}
		s.found = scanText(h, s.br, searchTerms(s.root, nil))
		if s.src.err != nil {
			s.err = fmt.Errorf("imap: search: read message UID %d: %w", s.m.UID, s.src.err)
			return false, s.err
		}
	}
	return s.found[foldString(term)], nil
}

// scanText walks a message's body (h is its header) and returns which of
// terms (case-folded) its text contains.
func scanText(h textproto.Header, body io.Reader, terms []string) map[string]bool {
	sc := newTermScanner(terms)
	if len(terms) > 0 {
		w := &textWalker{sc: sc, buf: make([]byte, 32<<10)}
		w.entity(h, body, "", 1)
	}
	found := make(map[string]bool, len(terms))
	for i, t := range sc.terms {
		found[string(t)] = sc.found[i]
	}
	return found
}

// textWalker feeds the text of a message's parts to a termScanner.
type textWalker struct {
	sc  *termScanner
	buf []byte // for io.CopyBuffer
}

// entity scans one part (the message itself at depth 1) and reports
// whether to go on.
func (w *textWalker) entity(h textproto.Header, body io.Reader, parentType string, depth int) bool {
	if depth > maxDepth {
		return true
	}
	mh := gomessage.Header{Header: h}
	mediaType, params, _ := mh.ContentType()
	if parentType == "multipart/digest" && !mh.Has("Content-Type") {
		mediaType = "message/rfc822"
	}
	switch {
	case strings.HasPrefix(mediaType, "multipart/"):
		mr := textproto.NewMultipartReader(body, params["boundary"])
		for {
			p, err := mr.NextPart()
			if err != nil {
				return true
			}
			if !w.entity(p.Header, p, mediaType, depth+1) {
				return false
			}
		}
	case mediaType == "message/rfc822" || mediaType == "message/global":
		e, _ := gomessage.New(mh, body) // undoes a transfer encoding, if any
		br := bufio.NewReader(e.Body)
		inner, _ := textproto.ReadHeader(br)
		if !w.header(inner) {
			return false
		}
		return w.entity(inner, br, "", depth+1)
	case strings.HasPrefix(mediaType, "text/"):
		e, _ := gomessage.New(mh, body) // with an unknown charset, the raw text
		return w.text(e.Body)
	}
	return true
}

// header scans the fields of an embedded message's header.
func (w *textWalker) header(h textproto.Header) bool {
	mh := gomessage.Header{Header: h}
	for fields := mh.Fields(); fields.Next(); {
		v, _ := fields.Text()
		if !w.text(strings.NewReader(fields.Key() + ": " + v)) {
			return false
		}
	}
	return true
}

// text scans one run of text, case-folding it, and reports whether to go
// on. A decoding error ends the run only.
func (w *textWalker) text(r io.Reader) bool {
	w.sc.boundary()
	fw := transform.NewWriter(w.sc, cases.Fold())
	_, err := io.CopyBuffer(fw, r, w.buf)
	if cerr := fw.Close(); err == nil {
		err = cerr
	}
	return !errors.Is(err, errScanDone)
}

// termScanner is an io.Writer that looks for several terms in what is
// written to it, remembering the end of the last write so that a term cut
// across two writes is found.
type termScanner struct {
	terms   [][]byte
	found   []bool
	missing int
	maxLen  int    // of the terms
	tail    []byte // the last maxLen-1 bytes written since the last boundary
	join    []byte // scratch: tail and the start of a write
	n       int64  // bytes written
}

// newTermScanner looks for terms, which are distinct and not empty.
func newTermScanner(terms []string) *termScanner {
	sc := &termScanner{found: make([]bool, len(terms)), missing: len(terms)}
	for _, t := range terms {
		sc.terms = append(sc.terms, []byte(t))
		sc.maxLen = max(sc.maxLen, len(t))
	}
	return sc
}

// boundary starts a new run of text: no term matches across it.
func (sc *termScanner) boundary() {
	sc.tail = sc.tail[:0]
}

func (sc *termScanner) Write(p []byte) (int, error) {
	if sc.missing == 0 || sc.n >= maxSearchText {
		return 0, errScanDone
	}
	written := len(p)
	if rest := maxSearchText - sc.n; int64(len(p)) > rest {
		p = p[:rest]
	}
	sc.n += int64(len(p))

	if len(sc.tail) > 0 {
		sc.join = append(append(sc.join[:0], sc.tail...), p[:min(len(p), sc.maxLen-1)]...)
		sc.look(sc.join)
	}
	sc.look(p)

	keep := sc.maxLen - 1
	if len(p) >= keep {
		sc.tail = append(sc.tail[:0], p[len(p)-keep:]...)
	} else {
		sc.tail = append(sc.tail, p...)
		sc.tail = sc.tail[len(sc.tail)-min(len(sc.tail), keep):]
	}

	if sc.missing == 0 || sc.n >= maxSearchText {
		return len(p), errScanDone
	}
	return written, nil
}

// look marks the terms that b contains.
func (sc *termScanner) look(b []byte) {
	for i, t := range sc.terms {
		if !sc.found[i] && bytes.Contains(b, t) {
			sc.found[i] = true
			sc.missing--
		}
	}
}
