package imap

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	goimap "github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-message/textproto"
)

// corpus returns the test messages: the files of testdata/messages and a
// few made here because they are large or repetitive.
func corpus(t testing.TB) map[string][]byte {
	t.Helper()
	files, err := filepath.Glob("testdata/messages/*.eml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no corpus: %v", err)
	}
	msgs := make(map[string][]byte)
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		msgs[filepath.Base(f)] = b
	}
	msgs["gen:huge-header"] = hugeHeaderMessage()
	msgs["gen:big-text"] = []byte("Subject: big\r\nContent-Type: text/plain\r\n\r\n" +
		strings.Repeat(strings.Repeat("0123456789abcdef", 4)+"\r\n", 16384))
	msgs["gen:nested-40"] = nestedMessage(40, "multipart/mixed")
	msgs["gen:nested-rfc822-30"] = nestedMessage(30, "message/rfc822")
	return msgs
}

// hugeHeaderMessage has a 160 KB subject on one line, 2000 folded
// recipients and a 200 KB field.
func hugeHeaderMessage() []byte {
	var b bytes.Buffer
	b.WriteString("From: big@example.org\r\nTo: ")
	for i := range 2000 {
		if i > 0 {
			b.WriteString(",\r\n ")
		}
		fmt.Fprintf(&b, "user%d@example.com", i)
	}
	b.WriteString("\r\nSubject: ")
	for i := range 20000 {
		fmt.Fprintf(&b, "word%d ", i)
	}
	b.WriteString("\r\nX-Long: " + strings.Repeat("x", 200000) + "\r\n")
	b.WriteString("Content-Type: text/plain\r\n\r\nsmall body\r\n")
	return b.Bytes()
}

// nestedMessage nests depth levels of kind ("multipart/mixed" or
// "message/rfc822") around a text part.
func nestedMessage(depth int, kind string) []byte {
	var b bytes.Buffer
	var closers []string
	b.WriteString("Subject: nested\r\n")
	for i := range depth {
		if kind == "message/rfc822" {
			b.WriteString("Content-Type: message/rfc822\r\n\r\n")
			fmt.Fprintf(&b, "Subject: level %d\r\n", i)
			continue
		}
		fmt.Fprintf(&b, "Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n", i, i)
		closers = append(closers, fmt.Sprintf("\r\n--b%d--\r\n", i))
	}
	b.WriteString("Content-Type: text/plain\r\n\r\ninnermost\r\n")
	for i := len(closers) - 1; i >= 0; i-- {
		b.WriteString(closers[i])
	}
	return b.Bytes()
}

// goimapSummary is what go-imap extracts from msg.
func goimapSummary(msg []byte) (*goimap.Envelope, goimap.BodyStructure) {
	h, _ := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(msg)))
	return imapserver.ExtractEnvelope(h), imapserver.ExtractBodyStructure(bytes.NewReader(msg))
}

// summarize runs Summarize and decodes the result.
func summarize(t testing.TB, msg []byte) (*goimap.Envelope, goimap.BodyStructure, []byte, []byte) {
	t.Helper()
	envb, bsb, err := Summarize(bytes.NewReader(msg))
	if err != nil {
		t.Fatalf("Summarize: %v", err)
	}
	env, err := DecodeEnvelope(envb)
	if err != nil {
		t.Fatalf("DecodeEnvelope: %v", err)
	}
	bs, err := DecodeStructure(bsb)
	if err != nil {
		t.Fatalf("DecodeStructure: %v", err)
	}
	return env, bs, envb, bsb
}

// wireDate is what the encoding keeps of a date: the second and the zone
// offset to the minute, in a location without a name.
func wireDate(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	_, offset := t.Zone()
	return time.Unix(t.Unix(), 0).In(time.FixedZone("", offset/60*60))
}

// normalize replaces every envelope date in v (an *Envelope or a
// BodyStructure) with its wireDate, in place.
func normalize(v any) {
	switch v := v.(type) {
	case *goimap.Envelope:
		if v != nil {
			v.Date = wireDate(v.Date)
		}
	case *goimap.BodyStructureSinglePart:
		if v != nil && v.MessageRFC822 != nil {
			normalize(v.MessageRFC822.Envelope)
			normalize(v.MessageRFC822.BodyStructure)
		}
	case *goimap.BodyStructureMultiPart:
		if v != nil {
			for _, c := range v.Children {
				normalize(c)
			}
		}
	}
}

// sameSummary reports how a summary differs from go-imap's: the
// structures must be equal but for the envelopes of message/rfc822 parts,
// and every envelope must agree with go-imap's (envelopeAgrees, with
// names when strict), dates normalized.
func sameSummary(gotEnv, wantEnv *goimap.Envelope, got, want goimap.BodyStructure, strict bool) error {
	if !gotEnv.Date.Equal(wantEnv.Date) {
		return fmt.Errorf("date %v, want %v", gotEnv.Date, wantEnv.Date)
	}
	normalize(gotEnv)
	normalize(wantEnv)
	normalize(got)
	normalize(want)
	if err := envelopeAgrees(gotEnv, wantEnv, strict); err != nil {
		return fmt.Errorf("envelope: %v\n got %#v\nwant %#v", err, gotEnv, wantEnv)
	}
	gotEnvs, wantEnvs := takeEnvelopes(got), takeEnvelopes(want)
	if !reflect.DeepEqual(got, want) {
		return fmt.Errorf("structure\n got %s\nwant %s", dump(got), dump(want))
	}
	for i := range gotEnvs {
		if (gotEnvs[i] == nil) != (wantEnvs[i] == nil) {
			return fmt.Errorf("envelope of message part %d: %v, want %v", i, gotEnvs[i], wantEnvs[i])
		}
		if gotEnvs[i] == nil {
			continue
		}
		if err := envelopeAgrees(gotEnvs[i], wantEnvs[i], strict); err != nil {
			return fmt.Errorf("envelope of message part %d: %v\n got %#v\nwant %#v", i, err, gotEnvs[i], wantEnvs[i])
		}
	}
	return nil
}

// takeEnvelopes returns the envelopes of bs's message/rfc822 parts, depth
// first, and sets them to nil in bs.
func takeEnvelopes(bs goimap.BodyStructure) []*goimap.Envelope {
	var l []*goimap.Envelope
	var walk func(bs goimap.BodyStructure)
	walk = func(bs goimap.BodyStructure) {
		switch bs := bs.(type) {
		case *goimap.BodyStructureMultiPart:
			for _, c := range bs.Children {
				walk(c)
			}
		case *goimap.BodyStructureSinglePart:
			if m := bs.MessageRFC822; m != nil {
				l = append(l, m.Envelope)
				m.Envelope = nil
				walk(m.BodyStructure)
			}
		}
	}
	walk(bs)
	return l
}

// envelopeAgrees reports how an envelope of extractEnvelope's disagrees
// with go-imap's ExtractEnvelope's for the same header. They agree on the
// date. Where go-imap has addresses (net/mail parsed the field), got has
// the same, once group markers and placeholders are set aside. With
// names, the subject and display names, decoded, are go-imap's but for
// white space, and so are the message ID and In-Reply-To where go-imap
// has them (In-Reply-To may hold more: the whole value in brackets);
// without, go-message's parser of those may differ on odd input (encoded
// words in quoted strings, comments in message IDs).
func envelopeAgrees(got, want *goimap.Envelope, names bool) error {
	if !got.Date.Equal(want.Date) {
		return fmt.Errorf("date %v, want %v", got.Date, want.Date)
	}
	if names && collapse(decodeWords(got.Subject)) != collapse(want.Subject) {
		return fmt.Errorf("subject %q, want %q", got.Subject, want.Subject)
	}
	gotLists, wantLists := envelopeLists(got), envelopeLists(want)
	for i := range wantLists {
		if wantLists[i] == nil {
			continue
		}
		var plain []goimap.Address
		for _, a := range gotLists[i] {
			if !a.IsGroupStart() && !a.IsGroupEnd() && a.Mailbox != missingMailbox && a.Host != missingDomain {
				plain = append(plain, a)
			}
		}
		if len(plain) != len(wantLists[i]) {
			return fmt.Errorf("list %d: %v, want %v", i, gotLists[i], wantLists[i])
		}
		for j, a := range plain {
			w := wantLists[i][j]
			if a.Mailbox+"@"+a.Host != w.Mailbox+"@"+w.Host {
				return fmt.Errorf("list %d address %d: %+v, want %+v", i, j, a, w)
			}
			if names && collapse(decodeWords(a.Name)) != collapse(w.Name) {
				return fmt.Errorf("list %d address %d: name %q, want %q", i, j, a.Name, w.Name)
			}
		}
	}
	if names && want.MessageID != "" && collapse(got.MessageID) != want.MessageID {
		return fmt.Errorf("message ID %q, want %q", got.MessageID, want.MessageID)
	}
	// got may have more: the whole value when it is in brackets.
	for _, id := range want.InReplyTo {
		if names && !strings.Contains(strings.Join(got.InReplyTo, "> <"), id) {
			return fmt.Errorf("in-reply-to %q, want %q in it", got.InReplyTo, id)
		}
	}
	return nil
}

// collapse makes every run of white space one space, and trims it.
func collapse(s string) string { return strings.Join(strings.Fields(s), " ") }

// dump prints a body structure for failure messages.
func dump(bs goimap.BodyStructure) string {
	var b strings.Builder
	var walk func(bs goimap.BodyStructure, indent string)
	walk = func(bs goimap.BodyStructure, indent string) {
		switch bs := bs.(type) {
		case *goimap.BodyStructureSinglePart:
			fmt.Fprintf(&b, "\n%s%#v", indent, *bs)
			if bs.Text != nil {
				fmt.Fprintf(&b, " text=%#v", *bs.Text)
			}
			if bs.Extended != nil {
				fmt.Fprintf(&b, " ext=%#v", *bs.Extended)
				if bs.Extended.Disposition != nil {
					fmt.Fprintf(&b, " disp=%#v", *bs.Extended.Disposition)
				}
			}
			if m := bs.MessageRFC822; m != nil {
				fmt.Fprintf(&b, " lines=%d env=%#v", m.NumLines, m.Envelope)
				walk(m.BodyStructure, indent+"  ")
			}
		case *goimap.BodyStructureMultiPart:
			fmt.Fprintf(&b, "\n%smultipart/%s ext=%#v", indent, bs.Subtype, bs.Extended)
			for _, c := range bs.Children {
				walk(c, indent+"  ")
			}
		default:
			fmt.Fprintf(&b, "\n%s%#v", indent, bs)
		}
	}
	walk(bs, "")
	return b.String()
}

// TestSummarizeMatchesGoIMAP: the structure is go-imap's, the envelopes
// agree with go-imap's where go-imap has something to say.
func TestSummarizeMatchesGoIMAP(t *testing.T) {
	for name, msg := range corpus(t) {
		t.Run(name, func(t *testing.T) {
			env, bs, _, _ := summarize(t, msg)
			wantEnv, wantBS := goimapSummary(msg)
			if err := sameSummary(env, wantEnv, bs, wantBS, true); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestSummarizeCorpusSpotChecks pins a few values, so that the corpus
// exercises what it is meant to (charsets decoded, streaming counts).
func TestSummarizeCorpusSpotChecks(t *testing.T) {
	msgs := corpus(t)
	// Envelopes hold the header's words as they are; decoded, they are
	// the text.
	env, _, _, _ := summarize(t, msgs["gbk.eml"])
	if decodeWords(env.Subject) != "您的月度账单" || len(env.From) != 1 || decodeWords(env.From[0].Name) != "中国移动" {
		t.Errorf("gbk.eml: subject %q, from %+v", env.Subject, env.From)
	}
	env, _, _, _ = summarize(t, msgs["latin1.eml"])
	if decodeWords(env.Subject) != "Réunion de l'équipe à 9h" {
		t.Errorf("latin1.eml: subject %q", env.Subject)
	}
	env, _, _, _ = summarize(t, msgs["encoded-utf8.eml"])
	if env.Subject != "=?UTF-8?B?5a2j5bqm5oql5ZGK77ya?= =?utf-8?Q?r=C3=A9sum=C3=A9_ready?=" {
		t.Errorf("encoded-utf8.eml: subject %q", env.Subject)
	}
	_, bs, _, _ := summarize(t, msgs["gen:big-text"])
	if sp := bs.(*goimap.BodyStructureSinglePart); sp.Size != 16384*66 || sp.Text.NumLines != 16384 {
		t.Errorf("big text: size %d, lines %d", sp.Size, sp.Text.NumLines)
	}
	_, bs, _, _ = summarize(t, msgs["rfc822-attachment.eml"])
	msg := bs.(*goimap.BodyStructureMultiPart).Children[1].(*goimap.BodyStructureSinglePart).MessageRFC822
	if msg == nil || msg.Envelope.Subject != "the original" || len(msg.BodyStructure.(*goimap.BodyStructureMultiPart).Children) != 2 {
		t.Errorf("rfc822 attachment: %+v", msg)
	}
}

// TestSummarizeDepthLimit: beyond maxDepth, containers become leaves;
// above it, the result is go-imap's.
func TestSummarizeDepthLimit(t *testing.T) {
	for _, kind := range []string{"multipart/mixed", "message/rfc822"} {
		msg := nestedMessage(200, kind)
		_, bs, _, _ := summarize(t, msg)
		depth, leaf := 1, bs
		for {
			var next goimap.BodyStructure
			switch p := leaf.(type) {
			case *goimap.BodyStructureMultiPart:
				next = p.Children[0]
			case *goimap.BodyStructureSinglePart:
				if p.MessageRFC822 != nil {
					next = p.MessageRFC822.BodyStructure
				}
			}
			if next == nil {
				break
			}
			leaf = next
			depth++
		}
		if depth != maxDepth || leaf.MediaType() != "application/octet-stream" {
			t.Errorf("%s: deepest part %s at depth %d, want application/octet-stream at %d", kind, leaf.MediaType(), depth, maxDepth)
		}
		// At maxDepth-1 levels nothing is cut.
		msg = nestedMessage(maxDepth-1, kind)
		env, bs, _, _ := summarize(t, msg)
		wantEnv, wantBS := goimapSummary(msg)
		if err := sameSummary(env, wantEnv, bs, wantBS, true); err != nil {
			t.Errorf("%s at %d levels: %v", kind, maxDepth-1, err)
		}
	}
}

// TestSummarizeStreams checks that a large part is not held in memory.
func TestSummarizeStreams(t *testing.T) {
	const size = 64 << 20
	head := "Subject: large\r\nContent-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\n" +
		"Content-Type: message/rfc822\r\n\r\nSubject: inner\r\nContent-Type: application/octet-stream\r\n\r\n"
	tail := "\r\n--x--\r\n"
	body := io.LimitReader(repeatReader('a'), size)
	r := io.MultiReader(strings.NewReader(head), body, strings.NewReader(tail))

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, bsb, err := Summarize(r)
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 1<<20 {
		t.Errorf("Summarize allocated %d bytes for a %d-byte part", alloc, size)
	}
	bs, err := DecodeStructure(bsb)
	if err != nil {
		t.Fatal(err)
	}
	inner := bs.(*goimap.BodyStructureMultiPart).Children[0].(*goimap.BodyStructureSinglePart).MessageRFC822.BodyStructure
	if got := inner.(*goimap.BodyStructureSinglePart).Size; got != size {
		t.Errorf("inner size %d, want %d", got, size)
	}
}

// repeatReader reads an endless run of one byte.
type repeatReader byte

func (r repeatReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(r)
	}
	return len(p), nil
}

// TestSummarizeReadError: a failing source is an error, not a short
// summary, wherever the failure happens.
func TestSummarizeReadError(t *testing.T) {
	errDisk := errors.New("disk on fire")
	msg := corpus(t)["rfc822-attachment.eml"]
	for n := 0; n < len(msg); n += 37 {
		r := io.MultiReader(bytes.NewReader(msg[:n]), iotestErrReader{errDisk})
		if _, _, err := Summarize(r); !errors.Is(err, errDisk) {
			t.Fatalf("failing after %d bytes: err = %v, want %v", n, err, errDisk)
		}
	}
}

type iotestErrReader struct{ err error }

func (r iotestErrReader) Read([]byte) (int, error) { return 0, r.err }

// TestRoundTrip encodes values made by hand, with every nil/empty
// distinction, and decodes them back.
func TestRoundTrip(t *testing.T) {
	date := time.Date(2025, 2, 3, 4, 5, 6, 0, time.FixedZone("", -(3*3600+30*60)))
	envs := []*goimap.Envelope{
		{},
		{Date: date, Subject: "s", From: []goimap.Address{{Name: "n", Mailbox: "m", Host: "h"}}, Sender: []goimap.Address{},
			ReplyTo: []goimap.Address{{}}, To: []goimap.Address{{Mailbox: "group"}, {Mailbox: "a", Host: "b"}, {}},
			InReplyTo: []string{}, MessageID: "id@x"},
		{InReplyTo: []string{"a@b", "", "text"}, Cc: []goimap.Address{}, Bcc: []goimap.Address{{Host: "only"}}},
		{Date: time.Date(1, 1, 1, 0, 0, 1, 0, time.FixedZone("", 0)), Subject: strings.Repeat("長", 5000)},
	}
	refs := [][]string{nil, {"root@x"}, {"a@b", "c@d"}, nil}
	for i, env := range envs {
		b := appendEnvelopeSummary(nil, env, refs[i])
		got, gotRefs, err := DecodeThreading(b)
		if err != nil {
			t.Fatalf("envelope %d: %v", i, err)
		}
		if !reflect.DeepEqual(got, env) || !reflect.DeepEqual(gotRefs, refs[i]) {
			t.Errorf("envelope %d:\n got %#v %q\nwant %#v %q", i, got, gotRefs, env, refs[i])
		}
	}

	leaf := &goimap.BodyStructureSinglePart{Type: "text", Subtype: "plain"}
	structures := []goimap.BodyStructure{
		leaf,
		&goimap.BodyStructureSinglePart{Type: "", Subtype: "", Params: map[string]string{}, Size: 1<<32 - 1,
			Text: &goimap.BodyStructureText{NumLines: -1}, Extended: &goimap.BodyStructureSinglePartExt{}},
		&goimap.BodyStructureSinglePart{Type: "Application", Subtype: "x", Params: map[string]string{"name": "", "": "v", "charset": "utf-8"},
			ID: "<id>", Description: "d", Encoding: "base64", Size: 7,
			Extended: &goimap.BodyStructureSinglePartExt{
				Disposition: &goimap.BodyStructureDisposition{Value: "attachment", Params: map[string]string{}},
				Language:    []string{}, Location: "loc"}},
		&goimap.BodyStructureSinglePart{Type: "message", Subtype: "rfc822", MessageRFC822: &goimap.BodyStructureMessageRFC822{}},
		&goimap.BodyStructureSinglePart{Type: "message", Subtype: "rfc822", MessageRFC822: &goimap.BodyStructureMessageRFC822{
			Envelope: envs[1], BodyStructure: leaf, NumLines: 12}},
		&goimap.BodyStructureMultiPart{},
		&goimap.BodyStructureMultiPart{Subtype: "mixed", Children: []goimap.BodyStructure{}, Extended: &goimap.BodyStructureMultiPartExt{}},
		&goimap.BodyStructureMultiPart{Subtype: "mixed", Children: []goimap.BodyStructure{leaf, &goimap.BodyStructureMultiPart{Subtype: "x"}},
			Extended: &goimap.BodyStructureMultiPartExt{Params: map[string]string{"boundary": "b"},
				Disposition: &goimap.BodyStructureDisposition{Value: "inline"}, Language: []string{"en", ""}, Location: "l"}},
	}
	for i, bs := range structures {
		b, err := appendStructureSummary(nil, bs)
		if err != nil {
			t.Fatalf("structure %d: %v", i, err)
		}
		got, err := DecodeStructure(b)
		if err != nil {
			t.Fatalf("structure %d: %v", i, err)
		}
		if !reflect.DeepEqual(got, bs) {
			t.Errorf("structure %d:\n got %s\nwant %s", i, dump(got), dump(bs))
		}
	}

	if _, err := appendStructureSummary(nil, nil); err == nil {
		t.Error("encoding a nil structure succeeded")
	}
	if _, err := appendStructureSummary(nil, (*goimap.BodyStructureSinglePart)(nil)); err == nil {
		t.Error("encoding a nil *BodyStructureSinglePart succeeded")
	}
	var deep goimap.BodyStructure = leaf
	for range maxDepth {
		deep = &goimap.BodyStructureMultiPart{Subtype: "mixed", Children: []goimap.BodyStructure{deep}}
	}
	if _, err := appendStructureSummary(nil, deep); !errors.Is(err, errTooDeep) {
		t.Errorf("encoding %d levels: err = %v, want errTooDeep", maxDepth+1, err)
	}
}

// TestDecodeBad: damaged summaries are errors wrapping ErrBadSummary.
func TestDecodeBad(t *testing.T) {
	msg := corpus(t)["rfc822-attachment.eml"]
	envb, bsb, err := Summarize(bytes.NewReader(msg))
	if err != nil {
		t.Fatal(err)
	}
	deep := []byte{summaryVersion}
	for range maxDepth + 1 {
		deep = append(deep, partMulti|multiChildren, 0, 1) // multipart "", 1 child
	}
	deep = append(deep, make([]byte, 7)...)
	bad := map[string]struct {
		b         []byte
		structure bool
	}{
		"empty":              {nil, false},
		"version":            {[]byte{summaryVersion + 1, 0, 0, 0}, false},
		"version 0":          {[]byte{0, 0, 0, 0}, false},
		"truncated env":      {envb[:len(envb)-1], false},
		"trailing env":       {append(bytes.Clone(envb), 0), false},
		"truncated bs":       {bsb[:len(bsb)-1], true},
		"trailing bs":        {append(bytes.Clone(bsb), 0), true},
		"bad uvarint":        {[]byte{1, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, false},
		"string too long":    {[]byte{1, 0, 200}, false},
		"dictionary":         {[]byte{1, 0, 0xff, 0x7f}, false},
		"huge count":         {[]byte{1, envFrom, 0, 0xff, 0xff, 0xff, 0xff, 0x0f}, false},
		"zone":               {[]byte{1, envDate, 0, 0xff, 0xff, 0x03, 0, 0}, false},
		"zero date":          {append(append([]byte{1, envDate}, zigzag(time.Time{}.Unix())...), 0, 0, 0), false},
		"multipart bit 7":    {[]byte{1, partMulti | multiUnused, 0}, true},
		"disp without ext":   {[]byte{1, singleDisp, 0, 0, 0, 0, 0, 0}, true},
		"params without ext": {[]byte{1, partMulti | multiParams, 0, 0}, true},
		"message flags":      {[]byte{1, singleMessage, 0, 0, 0, 0, 0, 0, 4}, true},
		"size over 32 bits":  {[]byte{1, 0, 0, 0, 0, 0, 0, 0x80, 0x80, 0x80, 0x80, 0x10}, true},
		"too deep":           {deep, true},
		"children count":     {[]byte{1, partMulti | multiChildren, 0, 0x40}, true},
	}
	for name, c := range bad {
		var err error
		if c.structure {
			_, err = DecodeStructure(c.b)
		} else {
			_, err = DecodeEnvelope(c.b)
		}
		if !errors.Is(err, ErrBadSummary) {
			t.Errorf("%s: err = %v, want ErrBadSummary", name, err)
		}
	}
}

func zigzag(v int64) []byte {
	u := uint64(v) << 1
	if v < 0 {
		u = ^u
	}
	var b []byte
	for u >= 0x80 {
		b = append(b, byte(u)|0x80)
		u >>= 7
	}
	return append(b, byte(u))
}

func TestDictionary(t *testing.T) {
	seen := make(map[string]bool)
	for _, w := range dictionary {
		if seen[w] {
			t.Errorf("%q appears twice", w)
		}
		seen[w] = true
	}
	if len(dictionaryIndex) != len(dictionary) {
		t.Errorf("index has %d words, dictionary %d", len(dictionaryIndex), len(dictionary))
	}
}

// TestSummarySizes reports (go test -v) and bounds the encoded sizes.
func TestSummarySizes(t *testing.T) {
	msgs := corpus(t)
	for _, c := range []struct {
		name         string
		maxEnv, maxS int
	}{
		// The envelopes have no References field: one byte says so.
		{"plain-4k.eml", 155, 16},
		{"alternative-attachment.eml", 123, 144},
		{"mixed-attachments.eml", 113, 198},
	} {
		env, bs, err := Summarize(bytes.NewReader(msgs[c.name]))
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s (%d bytes): envelope %d bytes, structure %d bytes", c.name, len(msgs[c.name]), len(env), len(bs))
		if len(env) > c.maxEnv || len(bs) > c.maxS {
			t.Errorf("%s: envelope %d bytes (max %d), structure %d bytes (max %d)", c.name, len(env), c.maxEnv, len(bs), c.maxS)
		}
	}
}

func BenchmarkSummarize(b *testing.B) {
	msg := corpus(b)["plain-4k.eml"]
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := Summarize(bytes.NewReader(msg)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkExtractGoIMAP is go-imap's own extraction of the same message,
// for comparison.
func BenchmarkExtractGoIMAP(b *testing.B) {
	msg := corpus(b)["plain-4k.eml"]
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		goimapSummary(msg)
	}
}

func BenchmarkDecodeStructure(b *testing.B) {
	for _, name := range []string{"plain-4k.eml", "alternative-attachment.eml"} {
		_, bsb, err := Summarize(bytes.NewReader(corpus(b)[name]))
		if err != nil {
			b.Fatal(err)
		}
		b.Run(strings.TrimSuffix(name, ".eml"), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := DecodeStructure(bsb); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkDecodeEnvelope(b *testing.B) {
	envb, _, err := Summarize(bytes.NewReader(corpus(b)["plain-4k.eml"]))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeEnvelope(envb); err != nil {
			b.Fatal(err)
		}
	}
}

// TestReferences: the References field's message ids are kept for
// threading, malformed ones left out, a long field trimmed to its first
// and last ids; version 2 summaries have none.
func TestReferences(t *testing.T) {
	var long strings.Builder
	long.WriteString("References:")
	for i := range 5000 {
		fmt.Fprintf(&long, " <id%d@x>", i)
	}
	for _, tc := range []struct {
		field string
		want  []string
	}{
		{"", nil},
		{"References: <a@x>\r\n", []string{"a@x"}},
		{"References: <a@x>\r\n <b@y>\t<c@z>\r\n", []string{"a@x", "b@y", "c@z"}},
		{"References: <a@x> (a comment) <b @y> <> <c<d@z> junk <e@w\r\n", []string{"a@x", "d@z"}},
		{long.String() + "\r\n", append([]string{"id0@x"}, func() []string {
			var l []string
			for i := 5000 - maxReferences + 1; i < 5000; i++ {
				l = append(l, fmt.Sprintf("id%d@x", i))
			}
			return l
		}()...)},
	} {
		envb, _, err := Summarize(strings.NewReader(tc.field + "Subject: s\r\nMessage-Id: <m@x>\r\n\r\nbody\r\n"))
		if err != nil {
			t.Fatal(err)
		}
		env, refs, err := DecodeThreading(envb)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(refs, tc.want) || env.MessageID != "m@x" {
			t.Errorf("%.60q: references %q, message id %q; want %q", tc.field, refs, env.MessageID, tc.want)
		}
	}
	// A version 2 summary: the same bytes without the references.
	envb, _, err := Summarize(strings.NewReader("References: <a@x>\r\nSubject: s\r\n\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	v2 := bytes.Clone(envb[:len(envb)-len("\x01\x06a@x")])
	v2[0] = 2
	env, refs, err := DecodeThreading(v2)
	if err != nil || refs != nil || env.Subject != "s" {
		t.Fatalf("version 2: %+v %q %v", env, refs, err)
	}
	if !OutdatedSummary(v2) {
		t.Error("a version 2 envelope summary is not outdated")
	}
}
