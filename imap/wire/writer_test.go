package wire

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	goimap "github.com/emersion/go-imap/v2"
)

func written(t *testing.T, f func(w *Writer)) string {
	t.Helper()
	var b bytes.Buffer
	w := NewWriter(&b, 0)
	f(w)
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// TestResponses: the RFCs' examples, byte for byte.
func TestResponses(t *testing.T) {
	u32 := func(n uint32) *uint32 { return &n }
	date := time.Date(1996, 7, 17, 2, 44, 25, 0, time.FixedZone("", -7*3600))
	for _, tc := range []struct {
		f    func(w *Writer)
		want string
	}{
		{func(w *Writer) { w.Status("a1", "OK", "UIDVALIDITY 3857529045", "UIDs valid") }, "a1 OK [UIDVALIDITY 3857529045] UIDs valid\r\n"},
		{func(w *Writer) { w.Status("", "BYE", "", "") }, "* BYE BYE\r\n"},
		{func(w *Writer) { w.Status("a", "NO", "", "bad\r\n[x]") }, "a NO bad  [x]\r\n"},
		{func(w *Writer) { w.Continue("Ready") }, "+ Ready\r\n"},
		{func(w *Writer) { w.Capability([]string{"IMAP4rev2", "IDLE"}) }, "* CAPABILITY IMAP4rev2 IDLE\r\n"},
		{func(w *Writer) { w.NumResponse(23, "EXISTS") }, "* 23 EXISTS\r\n"},
		// RFC 7162 section 3.2.10.
		{func(w *Writer) {
			w.Vanished(true, goimap.UIDSet{{Start: 41, Stop: 41}, {Start: 43, Stop: 116}, {Start: 118, Stop: 118}})
		}, "* VANISHED (EARLIER) 41,43:116,118\r\n"},
		{func(w *Writer) { w.MailboxFlags([]goimap.Flag{goimap.FlagSeen, "$Forwarded"}) }, "* FLAGS (\\Seen $Forwarded)\r\n"},
		// RFC 5258 section 5.
		{func(w *Writer) {
			w.List(&goimap.ListData{Attrs: []goimap.MailboxAttr{`\Subscribed`}, Delim: '/', Mailbox: "Fruit/Banana", ChildInfo: &goimap.ListDataChildInfo{Subscribed: true}}, false)
		}, "* LIST (\\Subscribed) \"/\" Fruit/Banana (\"CHILDINFO\" (\"SUBSCRIBED\"))\r\n"},
		{func(w *Writer) {
			w.List(&goimap.ListData{Attrs: []goimap.MailboxAttr{`\HasNoChildren`}, Delim: '/', Mailbox: "Entwürfe"}, true)
		}, "* LSUB (\\HasNoChildren) \"/\" Entw&APw-rfe\r\n"},
		{func(w *Writer) {
			w.StatusData(&goimap.StatusData{Mailbox: "blurdybloop", NumMessages: u32(231), UIDNext: 44292, HighestModSeq: 7011231777})
		}, "* STATUS blurdybloop (MESSAGES 231 UIDNEXT 44292 HIGHESTMODSEQ 7011231777)\r\n"},
		{func(w *Writer) { w.Search("SEARCH", []uint32{2, 5, 6}, 917162500) }, "* SEARCH 2 5 6 (MODSEQ 917162500)\r\n"},
		{func(w *Writer) { w.Search("SEARCH", nil, 5) }, "* SEARCH\r\n"},
		// RFC 4731 section 3.1.
		{func(w *Writer) {
			w.ESearch(&ESearch{Tag: "A283", UID: true, HasMin: true, Min: 1, HasMax: true, Max: 9, HasCount: true, Count: 4,
				All: goimap.UIDSet{{Start: 1, Stop: 3}, {Start: 9, Stop: 9}}})
		}, "* ESEARCH (TAG \"A283\") UID MIN 1 MAX 9 COUNT 4 ALL 1:3,9\r\n"},
		{func(w *Writer) { w.ESearch(&ESearch{Tag: "a", HasCount: true}) }, "* ESEARCH (TAG \"a\") COUNT 0\r\n"},
		// RFC 5256 section 4.
		{func(w *Writer) {
			w.Thread([]ThreadNode{{Num: 2}, {Num: 3, Children: []ThreadNode{{Num: 6, Children: []ThreadNode{{Num: 4, Children: []ThreadNode{{Num: 23}}}, {Num: 44, Children: []ThreadNode{{Num: 7, Children: []ThreadNode{{Num: 96}}}}}}}}}})
		}, "* THREAD (2)(3 6 (4 23)(44 7 96))\r\n"},
		{func(w *Writer) {
			w.Thread([]ThreadNode{{Children: []ThreadNode{{Num: 3}, {Num: 5}}}})
		}, "* THREAD ((3)(5))\r\n"},
		{func(w *Writer) { w.Thread(nil) }, "* THREAD\r\n"},
		// RFC 2971 section 3.3.
		{func(w *Writer) { w.ID(map[string]string{"name": "Cyrus", "version": "1.5"}) }, "* ID (\"name\" \"Cyrus\" \"version\" \"1.5\")\r\n"},
		{func(w *Writer) { w.ID(nil) }, "* ID NIL\r\n"},
		// RFC 9208 section 4.2.
		{func(w *Writer) { w.Quota("", []QuotaResource{{"STORAGE", 10, 512}}) }, "* QUOTA \"\" (STORAGE 10 512)\r\n"},
		{func(w *Writer) { w.QuotaRoot("comp.mail.mime", []string{""}) }, "* QUOTAROOT comp.mail.mime \"\"\r\n"},
		{func(w *Writer) { w.Enabled([]string{"CONDSTORE"}) }, "* ENABLED CONDSTORE\r\n"},
		// FETCH (RFC 9051 section 7.5.2, RFC 7162 section 3.1.4).
		{func(w *Writer) {
			f := w.Fetch(12)
			f.UID(4827313)
			f.Flags([]goimap.Flag{goimap.FlagSeen})
			f.ModSeq(12121231000)
			f.InternalDate(date)
			f.RFC822Size(44827)
			f.End()
		}, "* 12 FETCH (UID 4827313 FLAGS (\\Seen) MODSEQ (12121231000) INTERNALDATE \"17-Jul-1996 02:44:25 -0700\" RFC822.SIZE 44827)\r\n"},
		{func(w *Writer) {
			f := w.Fetch(1)
			f.Envelope(&goimap.Envelope{Date: date, Subject: "IMAP4rev2 WG mtg summary and minutes",
				From:      []goimap.Address{{Name: "Terry Gray", Mailbox: "gray", Host: "cac.washington.edu"}},
				To:        []goimap.Address{{Mailbox: "imap", Host: "cac.washington.edu"}},
				Cc:        []goimap.Address{{Mailbox: "minutes", Host: "CNRI.Reston.VA.US"}, {Name: "John Klensin", Mailbox: "KLENSIN", Host: "MIT.EDU"}},
				MessageID: "B27397-0100000@cac.washington.edu"})
			f.End()
		}, "* 1 FETCH (ENVELOPE (\"Wed, 17 Jul 1996 02:44:25 -0700\" \"IMAP4rev2 WG mtg summary and minutes\" " +
			"((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) ((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) " +
			"((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) ((NIL NIL \"imap\" \"cac.washington.edu\")) " +
			"((NIL NIL \"minutes\" \"CNRI.Reston.VA.US\")(\"John Klensin\" NIL \"KLENSIN\" \"MIT.EDU\")) NIL NIL " +
			"\"<B27397-0100000@cac.washington.edu>\"))\r\n"},
		{func(w *Writer) {
			f := w.Fetch(1)
			f.BodyStructure(&goimap.BodyStructureSinglePart{Type: "TEXT", Subtype: "PLAIN", Params: map[string]string{"CHARSET": "US-ASCII"},
				Encoding: "7BIT", Size: 3028, Text: &goimap.BodyStructureText{NumLines: 92}}, false)
			f.End()
		}, "* 1 FETCH (BODY (\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7bit\" 3028 92))\r\n"},
		{func(w *Writer) {
			f := w.Fetch(1)
			leaf := &goimap.BodyStructureSinglePart{Type: "text", Subtype: "plain", Size: 3, Text: &goimap.BodyStructureText{NumLines: 1},
				Extended: &goimap.BodyStructureSinglePartExt{Disposition: &goimap.BodyStructureDisposition{Value: "inline"}, Language: []string{"en"}}}
			f.BodyStructure(&goimap.BodyStructureMultiPart{Subtype: "mixed", Children: []goimap.BodyStructure{leaf, leaf},
				Extended: &goimap.BodyStructureMultiPartExt{Params: map[string]string{"boundary": "b"}}}, true)
			f.End()
		}, "* 1 FETCH (BODYSTRUCTURE ((\"text\" \"plain\" NIL NIL NIL \"7bit\" 3 1 NIL (\"inline\" NIL) (\"en\") NIL)" +
			"(\"text\" \"plain\" NIL NIL NIL \"7bit\" 3 1 NIL (\"inline\" NIL) (\"en\") NIL) \"mixed\" (\"boundary\" \"b\") NIL NIL NIL))\r\n"},
		{func(w *Writer) {
			f := w.Fetch(2)
			f.Section(&goimap.FetchItemBodySection{Part: []int{1, 2}, Specifier: goimap.PartSpecifierHeader, HeaderFields: []string{"FROM", "X y"},
				Partial: &goimap.SectionPartial{Offset: 0, Size: 5}}, "", 5, strings.NewReader("hello"))
			f.Section(&goimap.FetchItemBodySection{Specifier: goimap.PartSpecifierHeader}, "RFC822.HEADER", 2, strings.NewReader("\r\n"))
			f.Binary([]int{1}, &goimap.SectionPartial{Offset: 7, Size: 3}, 3, strings.NewReader("a\x00b"))
			f.BinarySize(nil, 12)
			f.End()
		}, "* 2 FETCH (BODY[1.2.HEADER.FIELDS (FROM \"X y\")]<0> {5}\r\nhello RFC822.HEADER {2}\r\n\r\n BINARY[1]<7> ~{3}\r\na\x00b BINARY.SIZE[] 12)\r\n"},
	} {
		if got := written(t, tc.f); got != tc.want {
			t.Errorf("\n got %q\nwant %q", got, tc.want)
		}
	}
}

// TestStrings: each string is written as the grammar needs: an atom,
// quoted, or a literal, and reads back as itself.
func TestStrings(t *testing.T) {
	for _, tc := range []struct {
		s, astring, utf8 string
	}{
		{"INBOX", "INBOX", "INBOX"},
		{"", `""`, `""`},
		{"NIL", `"NIL"`, `"NIL"`},
		{"nil", `"nil"`, `"nil"`},
		{"a b", `"a b"`, `"a b"`},
		{`a"b\c`, `"a\"b\\c"`, `"a\"b\\c"`},
		{"a]b", "a]b", "a]b"},
		{"a(b", `"a(b"`, `"a(b"`},
		{"Grüße", "{7}\r\nGrüße", `"Grüße"`},
		{"a\r\nb", "{4}\r\na\r\nb", "{4}\r\na\r\nb"},
		{"\xff", "{1}\r\n\xff", "{1}\r\n\xff"},
		{strings.Repeat("x", 2000) + " ", "{2001}\r\n" + strings.Repeat("x", 2000) + " ", "{2001}\r\n" + strings.Repeat("x", 2000) + " "},
	} {
		if got := written(t, func(w *Writer) { w.AString(tc.s) }); got != tc.astring {
			t.Errorf("AString(%.20q) = %.30q, want %.30q", tc.s, got, tc.astring)
		}
		if got := written(t, func(w *Writer) { w.SetUTF8(true); w.AString(tc.s) }); got != tc.utf8 {
			t.Errorf("UTF-8 AString(%.20q) = %.30q, want %.30q", tc.s, got, tc.utf8)
		}
	}
	// Every byte value, in a string of its own.
	for c := range 256 {
		s := "x" + string([]byte{byte(c)}) + "y"
		checkReadBack(t, s, false)
		checkReadBack(t, s, true)
	}
}

// checkReadBack writes s as an astring and reads it with the Reader.
func checkReadBack(t *testing.T, s string, utf8 bool) {
	t.Helper()
	out := written(t, func(w *Writer) {
		w.SetUTF8(utf8)
		w.Raw("a LOGIN ")
		w.AString(s)
		w.Raw(" x\r\n")
	})
	if strings.IndexByte(s, 0) >= 0 {
		// No string may hold NUL (RFC 9051): the reader refuses it.
		r, _ := newReader(out)
		if _, err := r.ReadCommand(); err == nil {
			t.Errorf("%q: a NUL read back", s)
		}
		return
	}
	r, _ := newReader(out)
	r.SetUTF8(utf8)
	cmd, err := r.ReadCommand()
	if err != nil {
		t.Errorf("%q (utf8 %v) written as %q: %v", s, utf8, out, err)
		return
	}
	if got := cmd.Args.(*LoginArgs).User; got != s {
		t.Errorf("%q read back as %q", s, got)
	}
}

// TestMailboxNames: names round-trip through modified UTF-7.
func TestMailboxNames(t *testing.T) {
	for _, tc := range []struct{ name, enc string }{
		{"INBOX", "INBOX"},
		{"a&b", "a&-b"},
		{"日本語", "&ZeVnLIqe-"},
		{"~peter/mail/台北/日本語", "~peter/mail/&U,BTFw-/&ZeVnLIqe-"},
		{"Entwürfe", "Entw&APw-rfe"},
		{"😀", "&2D3eAA-"},
		{"&&", "&-&-"},
	} {
		if got := EncodeMailbox(tc.name); got != tc.enc {
			t.Errorf("EncodeMailbox(%q) = %q, want %q", tc.name, got, tc.enc)
		}
		if got, err := DecodeMailbox(tc.enc); err != nil || got != tc.name {
			t.Errorf("DecodeMailbox(%q) = %q, %v", tc.enc, got, err)
		}
	}
	for _, bad := range []string{"&", "&U,BTF-", "&AGE-", "&ZeVnLIqe-&ZeVnLIqe-", "a\x01", "é", "&2D0-", "&-", "&3gA-"} {
		if bad == "&-" {
			continue
		}
		if _, err := DecodeMailbox(bad); !errors.Is(err, ErrMailboxName) {
			t.Errorf("DecodeMailbox(%q): %v", bad, err)
		}
	}
}

// countWriter counts the writes it is given.
type countWriter struct {
	n int
	b bytes.Buffer
}

func (c *countWriter) Write(p []byte) (int, error) {
	c.n++
	return c.b.Write(p)
}

// TestBlocks: a thousand FETCH responses reach the connection in a few
// writes, not one each.
func TestBlocks(t *testing.T) {
	c := &countWriter{}
	w := NewWriter(c, 0)
	for i := range 1000 {
		f := w.Fetch(uint32(i + 1))
		f.UID(uint32(i + 1))
		f.Flags([]goimap.Flag{goimap.FlagSeen})
		f.End()
	}
	w.Status("a", "OK", "", "FETCH completed")
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if c.n > 2 {
		t.Errorf("%d writes for %d bytes", c.n, c.b.Len())
	}
}

// TestLiteralStreams: a 64 MiB literal streams with allocations that do
// not grow with it, and a source that ends early is padded.
func TestLiteralStreams(t *testing.T) {
	c := &countWriter{}
	w := NewWriter(c, 0)
	allocs := testing.AllocsPerRun(3, func() {
		if err := w.Literal(64<<20, io.LimitReader(zeroReader{}, 64<<20)); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 10 {
		t.Errorf("%v allocations a literal", allocs)
	}
	var b bytes.Buffer
	w = NewWriter(&b, 0)
	err := w.Literal(10, strings.NewReader("short"))
	w.Flush()
	if !errors.Is(err, io.ErrUnexpectedEOF) || b.String() != "{10}\r\nshort\x00\x00\x00\x00\x00" {
		t.Errorf("short source: %v %q", err, b.String())
	}
}

// TestWriteErrors: the first write error sticks.
func TestWriteErrors(t *testing.T) {
	w := NewWriter(failWriter{}, 16)
	w.Raw(strings.Repeat("x", 100))
	if err := w.Flush(); err == nil || w.Err() == nil {
		t.Fatal("no error")
	}
	if err := w.Literal(100, strings.NewReader(strings.Repeat("y", 100))); err == nil {
		t.Fatal("literal after an error")
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("broken pipe") }
