package imap

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

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
// the body, with an Aho-Corasick automaton, so the pass costs the same
// however many terms there are; it stops when every term is found, at the
// end of the message, or after maxSearchText bytes of decoded text: a term
// that appears only beyond that is not found.

// maxSearchText bounds the decoded text examined per message.
const maxSearchText = 10 << 20

// errScanDone stops a scan: every term found, or maxSearchText reached.
var errScanDone = errors.New("imap: search: scan done")

// foldString case-folds s for matching.
func foldString(s string) string {
	return cases.Fold().String(s)
}

// bodyContains reports whether the message's body text contains
// terms[i]. The first call scans the body for all the search's terms at
// once.
func (s *search) bodyContains(i int) (bool, error) {
	if !s.scanned {
		h, err := s.readHeader()
		if err != nil {
			return false, err
		}
		s.scanned = true
		if s.scanner == nil {
			s.scanner = newTermScanner(s.terms)
		}
		s.scanner.reset()
		s.found = scanText(h, s.br, s.scanner)
		if s.src.err != nil {
			s.err = fmt.Errorf("imap: search: read message UID %d: %w", s.m.UID, s.src.err)
		}
	}
	if s.err != nil {
		return false, s.err
	}
	return s.found[i], nil
}

// scanText walks a message's body (h is its header) with sc, which is
// reset, and returns which of its terms the text contains.
func scanText(h textproto.Header, body io.Reader, sc *termScanner) []bool {
	if sc.missing > 0 {
		w := &textWalker{sc: sc, buf: make([]byte, 32<<10)}
		w.entity(h, body, "", 1)
	}
	return sc.found
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
// written to it, with an Aho-Corasick automaton over bytes, built once for
// all the messages of a search: each byte written costs a step of the
// automaton, amortized constant, whatever the number of terms, and a term
// cut across two writes is found.
type termScanner struct {
	nodes []acNode
	root  [256]int32 // the root's edges, -1 for none

	found   []bool // per term
	done    []bool // per node: its term and those down its out chain are found
	missing int
	state   int32 // the node matched so far since the last boundary
	n       int64 // bytes written
}

// acNode is a node of the automaton: the terms' common prefixes form a
// trie, and fail leads to the node of the longest proper suffix of this
// node's string that is also in the trie.
type acNode struct {
	edges []acEdge // sorted by byte
	fail  int32
	term  int32 // the term this node's string is, or -1
	out   int32 // the nearest node down the fail links that is a term, or -1
}

type acEdge struct {
	b    byte
	next int32
}

// child returns the node an edge on b leads to from node x, or -1.
func (sc *termScanner) child(x int32, b byte) int32 {
	if x == 0 {
		return sc.root[b]
	}
	e := sc.nodes[x].edges
	for lo, hi := 0, len(e); lo < hi; {
		mid := int(uint(lo+hi) >> 1)
		switch {
		case e[mid].b < b:
			lo = mid + 1
		case e[mid].b > b:
			hi = mid
		default:
			return e[mid].next
		}
	}
	return -1
}

// newTermScanner looks for terms, which are distinct and not empty.
func newTermScanner(terms []string) *termScanner {
	sc := &termScanner{nodes: []acNode{{term: -1, out: -1}}, found: make([]bool, len(terms)), missing: len(terms)}
	for i := range sc.root {
		sc.root[i] = -1
	}
	for ti, t := range terms {
		cur := int32(0)
		for i := 0; i < len(t); i++ {
			next := sc.child(cur, t[i])
			if next < 0 {
				next = int32(len(sc.nodes))
				sc.nodes = append(sc.nodes, acNode{term: -1, out: -1})
				if cur == 0 {
					sc.root[t[i]] = next
				}
				e := sc.nodes[cur].edges
				j, _ := slices.BinarySearchFunc(e, t[i], func(e acEdge, b byte) int { return int(e.b) - int(b) })
				sc.nodes[cur].edges = slices.Insert(e, j, acEdge{t[i], next})
			}
			cur = next
		}
		sc.nodes[cur].term = int32(ti)
	}
	// Fail and out links, breadth first: a node's fail is shallower.
	queue := []int32{}
	for _, e := range sc.nodes[0].edges {
		queue = append(queue, e.next)
	}
	for len(queue) > 0 {
		cur := queue[0]
		queue = queue[1:]
		for _, e := range sc.nodes[cur].edges {
			for f := sc.nodes[cur].fail; ; f = sc.nodes[f].fail {
				if next := sc.child(f, e.b); next >= 0 {
					sc.nodes[e.next].fail = next
					break
				}
				if f == 0 {
					break // fail stays at the root
				}
			}
			if ff := sc.nodes[e.next].fail; sc.nodes[ff].term >= 0 {
				sc.nodes[e.next].out = ff
			} else {
				sc.nodes[e.next].out = sc.nodes[ff].out
			}
			queue = append(queue, e.next)
		}
	}
	sc.done = make([]bool, len(sc.nodes))
	return sc
}

// reset readies sc for another message.
func (sc *termScanner) reset() {
	clear(sc.found)
	clear(sc.done)
	sc.missing, sc.state, sc.n = len(sc.found), 0, 0
}

// boundary starts a new run of text: no term matches across it.
func (sc *termScanner) boundary() {
	sc.state = 0
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
	state := sc.state
	for _, b := range p {
		for {
			if next := sc.child(state, b); next >= 0 {
				state = next
				break
			}
			if state == 0 {
				break
			}
			state = sc.nodes[state].fail
		}
		if x := &sc.nodes[state]; !sc.done[state] && (x.term >= 0 || x.out >= 0) {
			sc.report(state)
			if sc.missing == 0 {
				break
			}
		}
	}
	sc.state = state
	if sc.missing == 0 || sc.n >= maxSearchText {
		return len(p), errScanDone
	}
	return written, nil
}

// report marks the terms that end at node x: its own and those down its
// out chain. Each node is walked until it is done, so the walks of a
// message cost at most the number of nodes.
func (sc *termScanner) report(x int32) {
	for y := x; y >= 0 && !sc.done[y]; y = sc.nodes[y].out {
		if t := sc.nodes[y].term; t >= 0 && !sc.found[t] {
			sc.found[t] = true
			sc.missing--
		}
	}
	for y := x; y >= 0 && !sc.done[y]; y = sc.nodes[y].out {
		sc.done[y] = true
	}
}
