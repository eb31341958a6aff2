package imap

import (
	"bytes"
	"fmt"
	"io"
	"runtime"
	"slices"
	"strings"
	"testing"

	goimap "github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
)

// readSection is a section's bytes as writeSection sends them: openSection's,
// with the partial range applied.
func readSection(msg []byte, section *goimap.FetchItemBodySection) []byte {
	data, content, isHeader := openSection(bytes.NewReader(msg), section)
	if !isHeader {
		data, _ = io.ReadAll(content)
	}
	off, n := partialRange(section.Partial, int64(len(data)))
	return data[off : off+n]
}

// TestSections checks the body sections of the test corpus against
// go-imap's ExtractBodySection, which the server used before: the same
// bytes for every kind of section, part paths into multiparts and
// message/rfc822 parts, parts that do not exist and partial ranges.
func TestSections(t *testing.T) {
	var sections []*goimap.FetchItemBodySection
	paths := [][]int{nil, {1}, {2}, {3}, {1, 1}, {1, 2}, {2, 1}, {2, 2}, {2, 1, 1}, {3, 1}, {9}, {1, 9}}
	for _, p := range paths {
		for _, spec := range []goimap.PartSpecifier{goimap.PartSpecifierNone, goimap.PartSpecifierHeader, goimap.PartSpecifierText, goimap.PartSpecifierMIME} {
			if spec == goimap.PartSpecifierMIME && len(p) == 0 || spec == goimap.PartSpecifierNone && len(p) == 0 {
				continue // BODY[] streams from the store; MIME needs a part
			}
			sections = append(sections, &goimap.FetchItemBodySection{Part: p, Specifier: spec})
		}
		sections = append(sections,
			&goimap.FetchItemBodySection{Part: p, Specifier: goimap.PartSpecifierHeader, HeaderFields: []string{"subject", "FROM", "x-none"}},
			&goimap.FetchItemBodySection{Part: p, Specifier: goimap.PartSpecifierHeader, HeaderFieldsNot: []string{"Subject", "content-type"}},
			&goimap.FetchItemBodySection{Part: p, Specifier: goimap.PartSpecifierText, Partial: &goimap.SectionPartial{Offset: 10, Size: 100}},
			&goimap.FetchItemBodySection{Part: p, Partial: &goimap.SectionPartial{Offset: 1 << 40, Size: 5}},
		)
	}
	for name, msg := range corpus(t) {
		for _, sec := range sections {
			if len(sec.Part) == 0 && sec.Specifier == goimap.PartSpecifierNone {
				continue
			}
			if name == "truncated-multipart.eml" && len(sec.Part) > 0 && sec.Part[0] == 2 || name == "malformed-headers.eml" {
				// go-imap gives nothing for a part its message cuts
				// short or a message whose header breaks; here they
				// end where they break, as their BODYSTRUCTURE counts
				// them (TestSectionSizes).
				continue
			}
			want := imapserver.ExtractBodySection(bytes.NewReader(msg), sec)
			got := readSection(msg, sec)
			if !bytes.Equal(got, want) {
				t.Errorf("%s %s: got %d bytes %.80q, want %d bytes %.80q", name, sectionName(sec), len(got), got, len(want), want)
			}
		}
	}
}

func sectionName(s *goimap.FetchItemBodySection) string {
	var b strings.Builder
	for i, p := range s.Part {
		if i > 0 {
			b.WriteByte('.')
		}
		fmt.Fprint(&b, p)
	}
	if s.Specifier != goimap.PartSpecifierNone {
		fmt.Fprintf(&b, ".%s", s.Specifier)
	}
	if len(s.HeaderFields) > 0 {
		fmt.Fprintf(&b, ".FIELDS %v", s.HeaderFields)
	}
	if len(s.HeaderFieldsNot) > 0 {
		fmt.Fprintf(&b, ".FIELDS.NOT %v", s.HeaderFieldsNot)
	}
	if s.Partial != nil {
		fmt.Fprintf(&b, "<%d.%d>", s.Partial.Offset, s.Partial.Size)
	}
	return "BODY[" + b.String() + "]"
}

// TestSectionStreams: a part's content is read from the message as it is
// written, not gathered first: 64 MiB of a part go through with a few
// buffers' worth of allocation.
func TestSectionStreams(t *testing.T) {
	const size = 64 << 20
	head := "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nsmall\r\n--b\r\nContent-Type: application/octet-stream\r\n\r\n"
	tail := "\r\n--b--\r\n"
	msg := io.MultiReader(strings.NewReader(head), io.LimitReader(zeros{}, size), strings.NewReader(tail))
	var before, after runtimeMem
	before.read()
	_, content, isHeader := openSection(msg, &goimap.FetchItemBodySection{Part: []int{2}})
	if isHeader {
		t.Fatal("part 2 taken for a header section")
	}
	n, err := io.Copy(io.Discard, content)
	after.read()
	if err != nil || n != size {
		t.Fatalf("part 2: %d bytes, %v; want %d", n, err, size)
	}
	if grew := after.total - before.total; grew > 4<<20 {
		t.Errorf("reading a 64 MiB part allocated %d bytes", grew)
	}
}

// runtimeMem is the bytes allocated so far.
type runtimeMem struct{ total uint64 }

func (m *runtimeMem) read() {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	m.total = ms.TotalAlloc
}

// TestSectionSizes: every leaf part's BODY[part] has the size its
// BODYSTRUCTURE gives, malformed and truncated messages included.
func TestSectionSizes(t *testing.T) {
	for name, msg := range corpus(t) {
		_, bsb, err := Summarize(bytes.NewReader(msg))
		if err != nil {
			t.Fatal(err)
		}
		bs, err := DecodeStructure(bsb)
		if err != nil {
			t.Fatal(err)
		}
		var walk func(bs goimap.BodyStructure, path []int)
		walk = func(bs goimap.BodyStructure, path []int) {
			switch p := bs.(type) {
			case *goimap.BodyStructureMultiPart:
				for i, c := range p.Children {
					walk(c, append(slices.Clone(path), i+1))
				}
			case *goimap.BodyStructureSinglePart:
				part := path
				if len(part) == 0 {
					part = []int{1}
				}
				got := readSection(msg, &goimap.FetchItemBodySection{Part: part})
				if uint32(len(got)) != p.Size {
					t.Errorf("%s BODY%v: %d bytes, BODYSTRUCTURE says %d", name, part, len(got), p.Size)
				}
			}
		}
		walk(bs, nil)
	}
}
