package main

// A strict reader of IMAP server responses: the grammar of RFC 9051
// section 9 (which takes in RFC 3501's) with the extensions the stress
// mode meets (UIDPLUS, ESEARCH, LIST-EXTENDED, ENABLE, BINARY). Anything
// that does not parse is a syntax error, reported with the bytes.

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

const (
	maxLine     = 1 << 20  // bytes of one line outside literals
	maxLiteral  = 64 << 20 // bytes of one literal
	maxResponse = 96 << 20 // bytes of one response, literals included
	maxDepth    = 64       // nesting of parenthesized lists
	maxSetSize  = 1 << 20  // numbers a sequence set may expand to
)

// respReader frames responses: a line, and when it ends in a literal's
// {n} or ~{n}, the n bytes and the rest of the response after them.
type respReader struct {
	br *bufio.Reader
}

func newRespReader(r io.Reader) *respReader {
	return &respReader{br: bufio.NewReaderSize(r, 64<<10)}
}

// frame returns one whole response, as sent. An error is the stream's
// (or a bound passed): the connection cannot be read further.
func (rr *respReader) frame() ([]byte, error) {
	var buf []byte
	for {
		start := len(buf)
		for {
			chunk, err := rr.br.ReadSlice('\n')
			buf = append(buf, chunk...)
			if err == nil {
				break
			}
			if !errors.Is(err, bufio.ErrBufferFull) {
				if err == io.EOF && len(buf) > 0 {
					err = io.ErrUnexpectedEOF
				}
				return nil, err
			}
			if len(buf)-start > maxLine {
				return nil, fmt.Errorf("a line of more than %d bytes", maxLine)
			}
		}
		n, ok := literalAtEnd(buf[start:])
		if !ok {
			return buf, nil
		}
		if n > maxLiteral || int64(len(buf))+n > maxResponse {
			return nil, fmt.Errorf("a literal of %d bytes", n)
		}
		lit := make([]byte, n)
		if _, err := io.ReadFull(rr.br, lit); err != nil {
			return nil, fmt.Errorf("literal: %w", err)
		}
		buf = append(buf, lit...)
	}
}

// literalAtEnd reports the size of the literal a line announces at its
// end: {n}, ~{n} or (wrongly, from a server) {n+}.
func literalAtEnd(line []byte) (int64, bool) {
	line = bytes.TrimSuffix(line, []byte("\n"))
	line = bytes.TrimSuffix(line, []byte("\r"))
	if !bytes.HasSuffix(line, []byte("}")) {
		return 0, false
	}
	open := bytes.LastIndexByte(line, '{')
	if open < 0 {
		return 0, false
	}
	digits := strings.TrimSuffix(string(line[open+1:len(line)-1]), "+")
	n, err := strconv.ParseInt(digits, 10, 64)
	if err != nil || n < 0 || digits == "" || digits[0] == '+' {
		return 0, false
	}
	return n, true
}

// vkind is the kind of a generic value.
type vkind uint8

const (
	vAtom vkind = iota
	vNumber
	vString // quoted or literal
	vNil
	vList
)

// value is a generic parsed item: ENVELOPE and BODYSTRUCTURE are checked
// as trees of these.
type value struct {
	kind  vkind
	s     string // atom text or string contents
	n     uint64
	list  []value
	lit8  bool // a ~{n} literal
	octet bool // a literal (not quoted)
}

// response is one parsed server response.
type response struct {
	raw  []byte
	tag  string // "*" untagged, "+" continuation, else a command's tag
	kind string // OK NO BAD BYE PREAUTH EXISTS RECENT EXPUNGE FETCH FLAGS LIST LSUB STATUS SEARCH ESEARCH CAPABILITY ENABLED NAMESPACE ID, or +
	num  uint32 // EXISTS RECENT EXPUNGE FETCH
	err  error  // the syntax error, if any; kind may then be partial

	// Status responses.
	code     string // the response code's atom, upper case
	codeNum  uint32 // UIDNEXT UIDVALIDITY UNSEEN, the UIDVALIDITY of APPENDUID and COPYUID
	codeSrc  []uint32
	codeDst  []uint32 // APPENDUID's UIDs, COPYUID's destination UIDs
	codeList []string // PERMANENTFLAGS, CAPABILITY
	text     string

	flags []string // FLAGS
	fetch *fetchData
	list  *listData
	stat  *statusData
	// SEARCH and ESEARCH: the numbers.
	search    []uint32
	esTag     string
	esHasTag  bool
	esUID     bool
	caps      []string // CAPABILITY, ENABLED
	extraVals []value  // NAMESPACE, ID
}

type listData struct {
	attrs []string
	delim string // "" for NIL
	name  string
}

type statusData struct {
	name  string
	items map[string]uint64
	order []string
}

// fetchData is one FETCH response's items (or several, merged).
type fetchData struct {
	flags    []string
	hasFlags bool
	uid      uint32
	hasUID   bool
	size     uint64
	hasSize  bool
	date     string
	envelope *value
	body     *value // BODYSTRUCTURE or BODY
	// sections: "BODY[]", "BODY[HEADER]", "BINARY[1]" and so on, with the
	// origin of a partial answer, -1 for none.
	sections map[string]section
	names    []string // items, as they came
}

type section struct {
	data   []byte
	isNil  bool
	origin int64
	lit8   bool
}

func (f *fetchData) merge(g *fetchData) {
	if g.hasFlags {
		f.flags, f.hasFlags = g.flags, true
	}
	if g.hasUID {
		f.uid, f.hasUID = g.uid, true
	}
	if g.hasSize {
		f.size, f.hasSize = g.size, true
	}
	if g.date != "" {
		f.date = g.date
	}
	if g.envelope != nil {
		f.envelope = g.envelope
	}
	if g.body != nil {
		f.body = g.body
	}
	for k, v := range g.sections {
		if f.sections == nil {
			f.sections = map[string]section{}
		}
		f.sections[k] = v
	}
	f.names = append(f.names, g.names...)
}

// shown quotes a response for a report, cut to n bytes.
func shown(b []byte, n int) string {
	b = bytes.TrimSuffix(b, []byte("\r\n"))
	if len(b) > n {
		return strconv.Quote(string(b[:n])) + fmt.Sprintf("... (%d bytes)", len(b))
	}
	return strconv.Quote(string(b))
}
