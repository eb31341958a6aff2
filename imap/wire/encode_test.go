package wire

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	goimap "github.com/emersion/go-imap/v2"
)

// encOut runs f on a Writer to a buffer and returns what it wrote.
func encOut(t testing.TB, utf8 bool, f func(w *Writer)) string {
	t.Helper()
	var b bytes.Buffer
	w := NewWriter(&b, 0)
	w.SetUTF8(utf8)
	f(w)
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

type encCase struct {
	name string
	f    func(w *Writer)
	want string
}

func runEncCases(t *testing.T, cases []encCase) {
	t.Helper()
	for _, tc := range cases {
		if got := encOut(t, false, tc.f); got != tc.want {
			t.Errorf("%s:\n got %q\nwant %q", tc.name, got, tc.want)
		}
	}
}

// TestEncodeSpacing: the Writer puts one SP between elements, none after
// "(" or at the start of a line, and never doubles an explicit SP.
func TestEncodeSpacing(t *testing.T) {
	date := time.Date(1996, 7, 7, 2, 44, 25, 0, time.FixedZone("", -7*3600))
	runEncCases(t, []encCase{
		{"exists", func(w *Writer) { w.Untagged(); w.Number(3); w.Atom("EXISTS"); w.CRLF() }, "* 3 EXISTS\r\n"},
		{"explicit SP", func(w *Writer) { w.Untagged(); w.Number(3); w.SP(); w.Atom("EXISTS"); w.CRLF() }, "* 3 EXISTS\r\n"},
		{"lists", func(w *Writer) {
			w.BeginList()
			w.Atom("a")
			w.BeginList()
			w.EndList()
			w.NIL()
			w.BeginList()
			w.Number64(1 << 40)
			w.String("x y")
			w.EndList()
			w.EndList()
			w.CRLF()
		}, "(a () NIL (1099511627776 \"x y\"))\r\n"},
		{"lines restart", func(w *Writer) { w.Atom("a"); w.CRLF(); w.Atom("b"); w.CRLF() }, "a\r\nb\r\n"},
		{"after raw", func(w *Writer) {
			w.Raw("BODY[")
			w.Raw("1]<")
			w.Number(0)
			w.Raw(">")
			w.String("x")
			w.Raw(" (")
			w.NIL()
			w.EndList()
		}, `BODY[1]<0> "x" (NIL)`},
		{"after literal", func(w *Writer) {
			w.BeginList()
			_ = w.Literal(2, strings.NewReader("a("))
			w.Atom("X")
			w.EndList()
		}, "({2}\r\na( X)"},
		{"flags", func(w *Writer) { w.Flags([]goimap.Flag{goimap.FlagSeen, goimap.FlagDeleted, "$Junk"}); w.Flags(nil) }, `(\Seen \Deleted $Junk) ()`},
		{"numset", func(w *Writer) {
			w.NumSet(goimap.SeqSet{{Start: 1, Stop: 3}, {Start: 7, Stop: 0}})
			w.NumSet(goimap.UIDSet{{Start: 9, Stop: 9}})
			w.NumSet(goimap.UIDSet{})
			w.Number(1)
		}, "1:3,7:* 9 1"},
		{"dates", func(w *Writer) { w.DateTime(date); w.Date(date) }, `" 7-Jul-1996 02:44:25 -0700" 7-Jul-1996`},
		{"nstring", func(w *Writer) { w.NString(""); w.NStringOK("", true); w.NString("a") }, `NIL "" "a"`},
	})
}

// TestEncodeStatus: status responses with codes, from RFC 9051 sections
// 7.1 and 8, RFC 4315, RFC 7162 and RFC 5530.
func TestEncodeStatus(t *testing.T) {
	num := func(n uint32) func(*Writer) { return func(w *Writer) { w.Number(n) } }
	runEncCases(t, []encCase{
		{"UIDVALIDITY", func(w *Writer) { w.StatusCode("", "OK", "UIDVALIDITY", num(3857529045), "UIDs valid") }, "* OK [UIDVALIDITY 3857529045] UIDs valid\r\n"},
		{"UIDNEXT", func(w *Writer) { w.StatusCode("", "OK", "UIDNEXT", num(4392), "Predicted next UID") }, "* OK [UIDNEXT 4392] Predicted next UID\r\n"},
		{"PERMANENTFLAGS", func(w *Writer) {
			w.PermanentFlags([]goimap.Flag{goimap.FlagDeleted, goimap.FlagSeen, goimap.FlagWildcard}, "Limited")
		}, "* OK [PERMANENTFLAGS (\\Deleted \\Seen \\*)] Limited\r\n"},
		{"READ-WRITE", func(w *Writer) { w.StatusCode("A142", "OK", "READ-WRITE", nil, "SELECT completed") }, "A142 OK [READ-WRITE] SELECT completed\r\n"},
		{"TRYCREATE", func(w *Writer) {
			w.StatusCode("A003", "NO", "TRYCREATE", nil, "Mailbox doesn't exist: owatagusiam")
		}, "A003 NO [TRYCREATE] Mailbox doesn't exist: owatagusiam\r\n"},
		{"APPENDUID", func(w *Writer) {
			w.StatusCode("A003", "OK", "APPENDUID", func(w *Writer) { w.Number(38505); w.Number(3955) }, "APPEND completed")
		}, "A003 OK [APPENDUID 38505 3955] APPEND completed\r\n"},
		{"COPYUID", func(w *Writer) {
			w.StatusCode("A004", "OK", "COPYUID", func(w *Writer) {
				w.Number(38505)
				w.NumSet(goimap.UIDSet{{Start: 304, Stop: 304}, {Start: 319, Stop: 320}})
				w.NumSet(goimap.UIDSet{{Start: 3956, Stop: 3958}})
			}, "Done")
		}, "A004 OK [COPYUID 38505 304,319:320 3956:3958] Done\r\n"},
		{"CAPABILITY", func(w *Writer) {
			w.StatusCode("", "OK", "CAPABILITY", func(w *Writer) {
				for _, c := range []string{"IMAP4rev2", "STARTTLS", "AUTH=GSSAPI"} {
					w.Atom(c)
				}
			}, "IMAP4rev2 server ready")
		}, "* OK [CAPABILITY IMAP4rev2 STARTTLS AUTH=GSSAPI] IMAP4rev2 server ready\r\n"},
		{"HIGHESTMODSEQ", func(w *Writer) {
			w.StatusCode("", "OK", "HIGHESTMODSEQ", func(w *Writer) { w.Number64(715194045007) }, "Highest")
		}, "* OK [HIGHESTMODSEQ 715194045007] Highest\r\n"},
		{"MODIFIED", func(w *Writer) {
			w.StatusCode("d105", "OK", "MODIFIED", func(w *Writer) { w.NumSet(goimap.SeqSet{{Start: 7, Stop: 7}, {Start: 9, Stop: 9}}) }, "Conditional STORE failed")
		}, "d105 OK [MODIFIED 7,9] Conditional STORE failed\r\n"},
		{"CLOSED", func(w *Writer) { w.StatusCode("", "OK", "CLOSED", nil, "") }, "* OK [CLOSED] OK\r\n"},
		{"BYE", func(w *Writer) { w.StatusCode("", "BYE", "", nil, "IMAP4rev2 Server logging out") }, "* BYE IMAP4rev2 Server logging out\r\n"},
		{"no CRLF in text", func(w *Writer) { w.StatusCode("a", "BAD", "", nil, "x\r\n* OK y") }, "a BAD x  * OK y\r\n"},
	})
}

// TestEncodeResponses: untagged data from RFC 9051 section 7, RFC 2342,
// RFC 4731, RFC 5256, RFC 5258, RFC 7162, RFC 9208 and RFC 2971, byte for
// byte.
func TestEncodeResponses(t *testing.T) {
	u32 := func(n uint32) *uint32 { return &n }
	runEncCases(t, []encCase{
		{"CAPABILITY", func(w *Writer) { w.Capability([]string{"IMAP4rev2", "STARTTLS", "AUTH=GSSAPI", "XPIG-LATIN"}) }, "* CAPABILITY IMAP4rev2 STARTTLS AUTH=GSSAPI XPIG-LATIN\r\n"},
		{"EXISTS", func(w *Writer) { w.Exists(23) }, "* 23 EXISTS\r\n"},
		{"RECENT", func(w *Writer) { w.Recent(5) }, "* 5 RECENT\r\n"},
		{"EXPUNGE", func(w *Writer) { w.Expunge(44) }, "* 44 EXPUNGE\r\n"},
		{"FLAGS", func(w *Writer) {
			w.MailboxFlags([]goimap.Flag{goimap.FlagAnswered, goimap.FlagFlagged, goimap.FlagDeleted, goimap.FlagSeen, goimap.FlagDraft})
		}, "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n"},
		{"LIST", func(w *Writer) { w.List(&goimap.ListData{Delim: '/', Mailbox: "blurdybloop"}, false) }, "* LIST () \"/\" blurdybloop\r\n"},
		{"LIST Noselect", func(w *Writer) {
			w.List(&goimap.ListData{Attrs: []goimap.MailboxAttr{goimap.MailboxAttrNoSelect}, Delim: '/', Mailbox: "foo"}, false)
		}, "* LIST (\\Noselect) \"/\" foo\r\n"},
		{"LIST no delimiter", func(w *Writer) { w.List(&goimap.ListData{Mailbox: "INBOX"}, false) }, "* LIST () NIL INBOX\r\n"},
		{"LIST OLDNAME", func(w *Writer) {
			w.List(&goimap.ListData{Delim: '/', Mailbox: "NewMailbox", OldName: "OldMailbox"}, false)
		}, "* LIST () \"/\" NewMailbox (\"OLDNAME\" (OldMailbox))\r\n"},
		{"LIST quoted", func(w *Writer) { w.List(&goimap.ListData{Delim: '.', Mailbox: "Sent Items"}, false) }, "* LIST () \".\" \"Sent Items\"\r\n"},
		{"LSUB", func(w *Writer) { w.Lsub(&goimap.ListData{Delim: '/', Mailbox: "#news.comp.mail.misc"}) }, "* LSUB () \"/\" #news.comp.mail.misc\r\n"},
		{"LIST-STATUS", func(w *Writer) {
			w.List(&goimap.ListData{Delim: '/', Mailbox: "INBOX", Status: &goimap.StatusData{Mailbox: "INBOX", NumMessages: u32(17), NumUnseen: u32(16)}}, false)
		}, "* LIST () \"/\" INBOX\r\n* STATUS INBOX (MESSAGES 17 UNSEEN 16)\r\n"},
		{"STATUS", func(w *Writer) {
			w.StatusData(&goimap.StatusData{Mailbox: "blurdybloop", NumMessages: u32(231), UIDNext: 44292})
		}, "* STATUS blurdybloop (MESSAGES 231 UIDNEXT 44292)\r\n"},
		{"NAMESPACE", func(w *Writer) {
			w.Namespace(&goimap.NamespaceData{Personal: []goimap.NamespaceDescriptor{{Prefix: "", Delim: '/'}}})
		}, "* NAMESPACE ((\"\" \"/\")) NIL NIL\r\n"},
		{"NAMESPACE all", func(w *Writer) {
			w.Namespace(&goimap.NamespaceData{
				Personal: []goimap.NamespaceDescriptor{{Prefix: "", Delim: '/'}},
				Other:    []goimap.NamespaceDescriptor{{Prefix: "~", Delim: '/'}},
				Shared:   []goimap.NamespaceDescriptor{{Prefix: "#shared/", Delim: '/'}, {Prefix: "#public/", Delim: '/'}, {Prefix: "#ftp/", Delim: '/'}, {Prefix: "#news.", Delim: '.'}},
			})
		}, "* NAMESPACE ((\"\" \"/\")) ((\"~\" \"/\")) ((\"#shared/\" \"/\")(\"#public/\" \"/\")(\"#ftp/\" \"/\")(\"#news.\" \".\"))\r\n"},
		{"NAMESPACE nil", func(w *Writer) { w.Namespace(nil) }, "* NAMESPACE NIL NIL NIL\r\n"},
		{"SEARCH", func(w *Writer) { w.Search("SEARCH", []uint32{2, 84, 882}, 0) }, "* SEARCH 2 84 882\r\n"},
		{"SEARCH MODSEQ", func(w *Writer) {
			w.Search("SEARCH", []uint32{2, 5, 6, 7, 11, 12, 18, 19, 20, 23}, 917162500)
		}, "* SEARCH 2 5 6 7 11 12 18 19 20 23 (MODSEQ 917162500)\r\n"},
		{"SORT", func(w *Writer) { w.Sort([]uint32{2, 84, 882}, 0) }, "* SORT 2 84 882\r\n"},
		{"SORT empty", func(w *Writer) { w.Sort(nil, 0) }, "* SORT\r\n"},
		{"ESEARCH MIN COUNT", func(w *Writer) { w.ESearch(&ESearch{Tag: "A282", HasMin: true, Min: 2, HasCount: true, Count: 3}) }, "* ESEARCH (TAG \"A282\") MIN 2 COUNT 3\r\n"},
		{"ESEARCH ALL", func(w *Writer) {
			w.ESearch(&ESearch{Tag: "A283", All: goimap.SeqSet{{Start: 2, Stop: 2}, {Start: 10, Stop: 11}}})
		}, "* ESEARCH (TAG \"A283\") ALL 2,10:11\r\n"},
		{"ESEARCH UID MIN MAX", func(w *Writer) {
			w.ESearch(&ESearch{Tag: "A285", UID: true, HasMin: true, Min: 7, HasMax: true, Max: 3800})
		}, "* ESEARCH (TAG \"A285\") UID MIN 7 MAX 3800\r\n"},
		{"ESEARCH empty", func(w *Writer) { w.ESearch(&ESearch{Tag: "A283"}) }, "* ESEARCH (TAG \"A283\")\r\n"},
		{"ESEARCH MODSEQ", func(w *Writer) {
			w.ESearch(&ESearch{Tag: "a", All: goimap.SeqSet{{Start: 1, Stop: 3}, {Start: 5, Stop: 5}}, ModSeq: 1236})
		}, "* ESEARCH (TAG \"a\") ALL 1:3,5 MODSEQ 1236\r\n"},
		{"VANISHED", func(w *Writer) {
			w.Vanished(false, goimap.UIDSet{{Start: 405, Stop: 405}, {Start: 407, Stop: 407}, {Start: 410, Stop: 410}, {Start: 425, Stop: 425}})
		}, "* VANISHED 405,407,410,425\r\n"},
		{"VANISHED EARLIER", func(w *Writer) {
			w.Vanished(true, goimap.UIDSet{{Start: 300, Stop: 310}, {Start: 405, Stop: 405}, {Start: 411, Stop: 411}})
		}, "* VANISHED (EARLIER) 300:310,405,411\r\n"},
		{"ENABLED", func(w *Writer) { w.Enabled([]string{"CONDSTORE", "QRESYNC"}) }, "* ENABLED CONDSTORE QRESYNC\r\n"},
		{"QUOTA", func(w *Writer) { w.Quota("", []QuotaResource{{"STORAGE", 10, 512}}) }, "* QUOTA \"\" (STORAGE 10 512)\r\n"},
		{"QUOTAROOT", func(w *Writer) { w.QuotaRoot("INBOX", []string{""}) }, "* QUOTAROOT INBOX \"\"\r\n"},
		{"QUOTAROOT none", func(w *Writer) { w.QuotaRoot("comp.mail.mime", nil) }, "* QUOTAROOT comp.mail.mime\r\n"},
		{"ID NIL", func(w *Writer) { w.ID(nil) }, "* ID NIL\r\n"},
		{"ID", func(w *Writer) { w.ID(map[string]string{"name": "mailsys"}) }, "* ID (\"name\" \"mailsys\")\r\n"},
		{"continue", func(w *Writer) { w.Continue("Ready for literal data") }, "+ Ready for literal data\r\n"},
		{"ID RFC 2971", func(w *Writer) {
			w.IDData(&goimap.IDData{Name: "Cyrus", Version: "1.5", OS: "sunos", OSVersion: "5.5", SupportURL: "mailto:cyrus-bugs+@andrew.cmu.edu"})
		}, "* ID (\"name\" \"Cyrus\" \"version\" \"1.5\" \"os\" \"sunos\" \"os-version\" \"5.5\" \"support-url\" \"mailto:cyrus-bugs+@andrew.cmu.edu\")\r\n"},
		{"ID data nil", func(w *Writer) { w.IDData(nil) }, "* ID NIL\r\n"},
		{"ESearchData MIN COUNT", func(w *Writer) {
			w.ESearchData("A282", false, &goimap.SearchOptions{ReturnMin: true, ReturnCount: true}, &goimap.SearchData{Min: 2, Max: 9, Count: 3})
		}, "* ESEARCH (TAG \"A282\") MIN 2 COUNT 3\r\n"},
		{"ESearchData RETURN ()", func(w *Writer) {
			w.ESearchData("A283", false, &goimap.SearchOptions{}, &goimap.SearchData{All: goimap.SeqSet{{Start: 2, Stop: 2}, {Start: 10, Stop: 11}}, Min: 2, Max: 11, Count: 3})
		}, "* ESEARCH (TAG \"A283\") ALL 2,10:11\r\n"},
		{"ESearchData none found", func(w *Writer) {
			w.ESearchData("A284", true, &goimap.SearchOptions{ReturnMin: true, ReturnMax: true, ReturnCount: true, ReturnAll: true}, &goimap.SearchData{})
		}, "* ESEARCH (TAG \"A284\") UID COUNT 0\r\n"},
		{"ESearchData UID", func(w *Writer) {
			w.ESearchData("A285", true, &goimap.SearchOptions{ReturnMin: true, ReturnMax: true}, &goimap.SearchData{Min: 7, Max: 3800, Count: 150})
		}, "* ESEARCH (TAG \"A285\") UID MIN 7 MAX 3800\r\n"},
		{"ESearchData COUNT", func(w *Writer) {
			w.ESearchData("A286", false, &goimap.SearchOptions{ReturnCount: true}, &goimap.SearchData{Count: 15, ModSeq: 90060115205545359})
		}, "* ESEARCH (TAG \"A286\") COUNT 15 MODSEQ 90060115205545359\r\n"},
	})
}

// TestEncodeThread: the RFC 5256 section 4 examples, read into a tree by
// a small parser of the test's own and written back, byte for byte.
func TestEncodeThread(t *testing.T) {
	for _, want := range []string{
		"* THREAD (2)(3 6 (4 23)(44 7 96))\r\n",
		"* THREAD ((3)(5))\r\n",
		"* THREAD (166)(167)(168)(169)(172)(170)(171)(173)(174 (175)(176)(178)(181)(180))(179)(177 (183)(182)(188)(184)(185)(186)(187)(189))(190)(191)(192)(193)(194 195)(196 (197)(198))(199)(200 202)(201)(203)(204)(205)(206 207)(208)\r\n",
		"* THREAD (1 (2)(3 4 5))(6 (7)(8))\r\n",
		"* THREAD\r\n",
	} {
		body := strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(want, "* THREAD"), " "), "\r\n")
		threads, rest, err := parseThreads(body)
		if err != nil || rest != "" {
			t.Fatalf("%q: %v (%q left)", want, err, rest)
		}
		if got := encOut(t, false, func(w *Writer) { w.Thread(threads) }); got != want {
			t.Errorf("\n got %q\nwant %q", got, want)
		}
	}
	// A long chain: no recursion per message.
	var chain ThreadNode
	n := &chain
	for i := range 100_000 {
		n.Num = uint32(i + 1)
		if i < 99_999 {
			n.Children = []ThreadNode{{}}
			n = &n.Children[0]
		}
	}
	out := encOut(t, false, func(w *Writer) { w.Thread([]ThreadNode{chain}) })
	if !strings.HasPrefix(out, "* THREAD (1 2 3 ") || !strings.HasSuffix(out, " 99999 100000)\r\n") {
		t.Errorf("chain: %.40q...%q", out, out[len(out)-30:])
	}
}

// parseThreads reads thread-lists (RFC 5256 section 4) into nodes: a
// thread-list is "(" members ")", members a chain of numbers that may
// end in thread-lists, or only thread-lists (a missing parent).
func parseThreads(s string) ([]ThreadNode, string, error) {
	var out []ThreadNode
	for strings.HasPrefix(s, "(") {
		var n ThreadNode
		var err error
		n, s, err = parseMembers(s[1:])
		if err != nil {
			return nil, s, err
		}
		if !strings.HasPrefix(s, ")") {
			return nil, s, errors.New("no )")
		}
		s = s[1:]
		out = append(out, n)
	}
	return out, s, nil
}

func parseMembers(s string) (ThreadNode, string, error) {
	var n ThreadNode
	if strings.HasPrefix(s, "(") {
		kids, rest, err := parseThreads(s)
		n.Children = kids
		return n, rest, err
	}
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	if i == 0 {
		return n, s, fmt.Errorf("no number at %q", s)
	}
	fmt.Sscan(s[:i], &n.Num)
	s = s[i:]
	if !strings.HasPrefix(s, " ") {
		return n, s, nil
	}
	s = s[1:]
	if strings.HasPrefix(s, "(") {
		kids, rest, err := parseThreads(s)
		n.Children = kids
		return n, rest, err
	}
	child, rest, err := parseMembers(s)
	n.Children = []ThreadNode{child}
	return n, rest, err
}

// TestEncodeFetch: FETCH responses item by item (RFC 9051 sections
// 6.4.5 and 7.5.2, RFC 7162 section 3.1.4.1, RFC 3516).
func TestEncodeFetch(t *testing.T) {
	date := time.Date(1996, 7, 17, 2, 44, 25, 0, time.FixedZone("", -7*3600))
	hdr := "Date: Wed, 17 Jul 1996 02:23:25 -0700 (PDT)\r\nFrom: Terry Gray <gray@cac.washington.edu>\r\n\r\n"
	runEncCases(t, []encCase{
		{"flags uid", func(w *Writer) {
			f := w.Fetch(23)
			f.Flags([]goimap.Flag{goimap.FlagSeen})
			f.UID(4827313)
			f.End()
		}, "* 23 FETCH (FLAGS (\\Seen) UID 4827313)\r\n"},
		{"modseq", func(w *Writer) {
			f := w.Fetch(1)
			f.UID(4)
			f.ModSeq(65402)
			f.Flags([]goimap.Flag{goimap.FlagSeen})
			f.End()
		}, "* 1 FETCH (UID 4 MODSEQ (65402) FLAGS (\\Seen))\r\n"},
		{"fast", func(w *Writer) {
			f := w.Fetch(12)
			f.Flags([]goimap.Flag{goimap.FlagSeen})
			f.InternalDate(date)
			f.RFC822Size(4286)
			f.End()
		}, "* 12 FETCH (FLAGS (\\Seen) INTERNALDATE \"17-Jul-1996 02:44:25 -0700\" RFC822.SIZE 4286)\r\n"},
		{"header fields", func(w *Writer) {
			f := w.Fetch(2)
			_ = f.Section(&goimap.FetchItemBodySection{Specifier: goimap.PartSpecifierHeader, HeaderFields: []string{"DATE", "FROM"}, Peek: true},
				"", int64(len(hdr)), strings.NewReader(hdr))
			f.End()
		}, fmt.Sprintf("* 2 FETCH (BODY[HEADER.FIELDS (DATE FROM)] {%d}\r\n%s)\r\n", len(hdr), hdr)},
		{"partial and not", func(w *Writer) {
			f := w.Fetch(3)
			_ = f.Section(&goimap.FetchItemBodySection{Partial: &goimap.SectionPartial{Offset: 0, Size: 10}}, "", 4, strings.NewReader("Date"))
			_ = f.Section(&goimap.FetchItemBodySection{Part: []int{4, 2}, Specifier: goimap.PartSpecifierHeader, HeaderFieldsNot: []string{"Received"}},
				"", 2, strings.NewReader("\r\n"))
			_ = f.Section(&goimap.FetchItemBodySection{Part: []int{1}, Specifier: goimap.PartSpecifierMIME}, "", 0, nil)
			f.NilSection(&goimap.FetchItemBodySection{Part: []int{9}})
			f.End()
		}, "* 3 FETCH (BODY[]<0> {4}\r\nDate BODY[4.2.HEADER.FIELDS.NOT (Received)] {2}\r\n\r\n BODY[1.MIME] {0}\r\n BODY[9] NIL)\r\n"},
		{"rfc822 names", func(w *Writer) {
			f := w.Fetch(4)
			_ = f.Section(&goimap.FetchItemBodySection{Specifier: goimap.PartSpecifierText}, "RFC822.TEXT", 3, strings.NewReader("abc"))
			f.RFC822Size(3)
			f.End()
		}, "* 4 FETCH (RFC822.TEXT {3}\r\nabc RFC822.SIZE 3)\r\n"},
		{"binary", func(w *Writer) {
			f := w.Fetch(5)
			_ = f.Binary([]int{1, 2}, nil, 3, strings.NewReader("a\x00b"))
			f.BinarySize([]int{1, 2}, 3)
			f.End()
		}, "* 5 FETCH (BINARY[1.2] ~{3}\r\na\x00b BINARY.SIZE[1.2] 3)\r\n"},
		{"envelope group", func(w *Writer) {
			f := w.Fetch(6)
			f.Envelope(&goimap.Envelope{Subject: "x",
				From: []goimap.Address{{Mailbox: "a", Host: "b.example"}},
				To:   []goimap.Address{{Mailbox: "undisclosed-recipients"}, {}},
			})
			f.End()
		}, "* 6 FETCH (ENVELOPE (NIL \"x\" ((NIL NIL \"a\" \"b.example\")) ((NIL NIL \"a\" \"b.example\")) ((NIL NIL \"a\" \"b.example\")) " +
			"((NIL NIL \"undisclosed-recipients\" NIL)(NIL NIL NIL NIL)) NIL NIL NIL NIL))\r\n"},
		{"message/rfc822", func(w *Writer) {
			inner := &goimap.BodyStructureSinglePart{Type: "TEXT", Subtype: "PLAIN", Size: 10, Text: &goimap.BodyStructureText{NumLines: 1}}
			f := w.Fetch(7)
			f.BodyStructure(&goimap.BodyStructureSinglePart{Type: "MESSAGE", Subtype: "RFC822", Size: 100,
				MessageRFC822: &goimap.BodyStructureMessageRFC822{Envelope: &goimap.Envelope{}, BodyStructure: inner, NumLines: 5}}, false)
			f.End()
		}, "* 7 FETCH (BODY (\"MESSAGE\" \"RFC822\" NIL NIL NIL \"7bit\" 100 (NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL) " +
			"(\"TEXT\" \"PLAIN\" NIL NIL NIL \"7bit\" 10 1) 5))\r\n"},
	})
}

// grammarString reads one string (quoted or literal) from the start of
// b, strictly by RFC 9051's grammar (with utf8, quoted strings may hold
// UTF-8; without, only 7-bit characters): it returns the string and
// what follows it.
func grammarString(b []byte, utf8Mode bool) (string, []byte, error) {
	if len(b) == 0 {
		return "", b, errors.New("empty")
	}
	switch b[0] {
	case '"':
		var out []byte
		for i := 1; i < len(b); i++ {
			switch c := b[i]; {
			case c == '"':
				if !utf8Mode && !isASCIIBytes(out) || utf8Mode && !utf8Valid(out) {
					return "", b, errors.New("8-bit quoted")
				}
				return string(out), b[i+1:], nil
			case c == '\\':
				if i+1 >= len(b) || b[i+1] != '"' && b[i+1] != '\\' {
					return "", b, fmt.Errorf("bad escape at %d", i)
				}
				out = append(out, b[i+1])
				i++
			case c == '\r' || c == '\n' || c == 0:
				return "", b, fmt.Errorf("%q in a quoted string", c)
			default:
				out = append(out, c)
			}
		}
		return "", b, errors.New("unclosed quoted string")
	case '{':
		end := bytes.Index(b, []byte("}\r\n"))
		if end < 2 {
			return "", b, errors.New("bad literal header")
		}
		var n int
		for _, c := range b[1:end] {
			if c < '0' || c > '9' || n > 1<<30 {
				return "", b, errors.New("bad literal size")
			}
			n = n*10 + int(c-'0')
		}
		body := b[end+3:]
		if len(body) < n {
			return "", b, errors.New("literal cut short")
		}
		if bytes.IndexByte(body[:n], 0) >= 0 {
			return "", b, errors.New("NUL in a literal")
		}
		return string(body[:n]), body[n:], nil
	}
	return "", b, fmt.Errorf("not a string: %q", b[0])
}

// grammarAString reads an astring: 1*ASTRING-CHAR or a string.
func grammarAString(b []byte, utf8Mode bool) (string, []byte, error) {
	i := 0
	for i < len(b) && isAStringChar(b[i]) {
		i++
	}
	if i > 0 {
		return string(b[:i]), b[i:], nil
	}
	return grammarString(b, utf8Mode)
}

func isASCIIBytes(b []byte) bool {
	for _, c := range b {
		if c >= 0x80 {
			return false
		}
	}
	return true
}

func utf8Valid(b []byte) bool { return strings.ToValidUTF8(string(b), "\uFFFD") == string(b) }

// TestEncodeStringChoice: every byte value in a string is written quoted
// or as a literal as the grammar needs, with and without UTF-8 mode, and
// reads back as itself.
func TestEncodeStringChoice(t *testing.T) {
	for _, utf8Mode := range []bool{false, true} {
		for c := range 256 {
			s := "a" + string([]byte{byte(c)}) + "b"
			out := encOut(t, utf8Mode, func(w *Writer) { w.String(s) })
			wantQuoted := c != '\r' && c != '\n' && c != 0 && c < 0x80
			if got := out[0] == '"'; got != wantQuoted {
				t.Errorf("utf8 %v, byte %#x: %q", utf8Mode, c, out)
			}
			if c == 0 {
				continue // no string may hold NUL
			}
			got, rest, err := grammarString([]byte(out), utf8Mode)
			if err != nil || len(rest) != 0 || got != s {
				t.Errorf("utf8 %v, byte %#x: %q read as %q, %v (%q left)", utf8Mode, c, out, got, err, rest)
			}
		}
	}
	for _, tc := range []struct {
		s          string
		utf8Mode   bool
		want       string
		wantAtomic string // AString's, if not want
	}{
		{"", false, `""`, ""},
		{"NIL", false, `"NIL"`, ""},
		{"Nil", false, `"Nil"`, ""},
		{"NILS", false, `"NILS"`, "NILS"},
		{`"\`, false, `"\"\\"`, ""},
		{"a]b", false, `"a]b"`, "a]b"},
		{"a{b", false, `"a{b"`, ""},
		{"a%b*", false, `"a%b*"`, ""},
		{"Grüße", false, "{7}\r\nGrüße", ""},
		{"Grüße", true, `"Grüße"`, ""},
		{"\xc3", true, "{1}\r\n\xc3", ""},
		{strings.Repeat("x", 1024), false, `"` + strings.Repeat("x", 1024) + `"`, strings.Repeat("x", 1024)},
		{strings.Repeat("x", 1025), false, "{1025}\r\n" + strings.Repeat("x", 1025), strings.Repeat("x", 1025)},
	} {
		if got := encOut(t, tc.utf8Mode, func(w *Writer) { w.String(tc.s) }); got != tc.want {
			t.Errorf("String(%.20q) = %.40q, want %.40q", tc.s, got, tc.want)
		}
		want := tc.want
		if tc.wantAtomic != "" {
			want = tc.wantAtomic
		}
		if got := encOut(t, tc.utf8Mode, func(w *Writer) { w.AString(tc.s) }); got != want {
			t.Errorf("AString(%.20q) = %.40q, want %.40q", tc.s, got, want)
		}
	}
}

// TestEncodeMailbox: names in modified UTF-7 that DecodeMailbox reads
// back, INBOX in any case as INBOX, UTF-8 in UTF-8 mode.
func TestEncodeMailbox(t *testing.T) {
	for _, tc := range []struct {
		name     string
		utf8Mode bool
		want     string
	}{
		{"INBOX", false, "INBOX"},
		{"inbox", false, "INBOX"},
		{"INBOX.Sent", false, "INBOX.Sent"},
		{"a&b", false, "a&-b"},
		{"&", false, "&-"},
		{"Sent Items", false, `"Sent Items"`},
		{"NIL", false, `"NIL"`},
		{"~peter/mail/台北/日本語", false, "~peter/mail/&U,BTFw-/&ZeVnLIqe-"},
		{"Entwürfe", false, "Entw&APw-rfe"},
		{"Entwürfe", true, `"Entwürfe"`},
		{"a&b", true, "a&b"},
		{"😀 x", false, `"&2D3eAA- x"`},
	} {
		out := encOut(t, tc.utf8Mode, func(w *Writer) { w.Mailbox(tc.name) })
		if out != tc.want {
			t.Errorf("Mailbox(%q) utf8 %v = %q, want %q", tc.name, tc.utf8Mode, out, tc.want)
			continue
		}
		raw, rest, err := grammarAString([]byte(out), tc.utf8Mode)
		if err != nil || len(rest) != 0 {
			t.Errorf("%q: %v", out, err)
			continue
		}
		got := raw
		if !tc.utf8Mode {
			if got, err = DecodeMailbox(raw); err != nil {
				t.Errorf("DecodeMailbox(%q): %v", raw, err)
				continue
			}
		}
		if want := tc.name; got != want && !strings.EqualFold(want, "INBOX") {
			t.Errorf("%q read back as %q", tc.name, got)
		}
	}
}

// encCounter counts the writes it gets and the largest; it is not an
// io.ReaderFrom.
type encCounter struct {
	writes, bytes, largest int
}

func (c *encCounter) Write(p []byte) (int, error) {
	c.writes++
	c.bytes += len(p)
	c.largest = max(c.largest, len(p))
	return len(p), nil
}

// encReaderFrom is an io.ReaderFrom that counts what it read.
type encReaderFrom struct {
	encCounter
	readFrom int64
}

func (c *encReaderFrom) ReadFrom(r io.Reader) (int64, error) {
	n, err := io.Copy(&c.encCounter, r)
	c.readFrom += n
	return n, err
}

// encSource is a plain io.Reader of n bytes of 'x', failing with err
// after fail bytes if err is not nil.
type encSource struct {
	n, fail int64
	err     error
}

func (s *encSource) Read(p []byte) (int, error) {
	if s.err != nil && s.fail <= 0 {
		return 0, s.err
	}
	if s.n <= 0 {
		return 0, io.EOF
	}
	k := int64(len(p))
	k = min(k, s.n)
	if s.err != nil {
		k = min(k, s.fail)
		s.fail -= k
	}
	for i := range p[:k] {
		p[i] = 'x'
	}
	s.n -= k
	return int(k), nil
}

// TestEncodeLiteralStream: a 64 MiB literal goes out in blocks of the
// buffer's size, with allocations that do not grow with it, and the
// Writer never holds more than its buffer.
func TestEncodeLiteralStream(t *testing.T) {
	const size = 64 << 20
	c := &encCounter{}
	w := NewWriter(c, 0)
	src := &encSource{}
	allocs := testing.AllocsPerRun(2, func() {
		*src = encSource{n: size}
		if err := w.Literal(size, src); err != nil {
			t.Fatal(err)
		}
		if w.Buffered() > DefaultBufferSize {
			t.Fatalf("%d bytes buffered", w.Buffered())
		}
	})
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if allocs > 0 {
		t.Errorf("%v allocations a 64 MiB literal", allocs)
	}
	if c.largest > DefaultBufferSize {
		t.Errorf("a write of %d bytes", c.largest)
	}
	if perLiteral := c.writes / 3; perLiteral > size/DefaultBufferSize+2 {
		t.Errorf("%d writes a literal", perLiteral)
	}

	// A file past the buffer's size goes straight to an io.ReaderFrom;
	// another reader through the buffer.
	file := filepath.Join(t.TempDir(), "body")
	if err := os.WriteFile(file, bytes.Repeat([]byte("0123456789abcdef"), 1<<16), 0o600); err != nil {
		t.Fatal(err)
	}
	fh, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	rf := &encReaderFrom{}
	w = NewWriter(rf, 0)
	w.Raw("* 1 FETCH (BODY[] ")
	if err := w.Literal(1<<20, fh); err != nil {
		t.Fatal(err)
	}
	w.Raw(")\r\n")
	if err := w.Literal(1<<20, &encSource{n: 1 << 20}); err != nil {
		t.Fatal(err)
	}
	w.Flush()
	if rf.readFrom != 1<<20 || rf.bytes != 2<<20+len("* 1 FETCH (BODY[] {1048576}\r\n)\r\n{1048576}\r\n") {
		t.Errorf("ReaderFrom got %d of %d bytes", rf.readFrom, rf.bytes)
	}
	// And from an io.WriterTo that knows its size: one write.
	c = &encCounter{}
	w = NewWriter(c, 0)
	if err := w.Literal(1<<20, bytes.NewReader(make([]byte, 1<<20))); err != nil {
		t.Fatal(err)
	}
	w.Flush()
	if c.writes != 2 || c.bytes != 1<<20+len("{1048576}\r\n") {
		t.Errorf("WriterTo: %d writes, %d bytes", c.writes, c.bytes)
	}
}

// TestEncodeLiteralErrors: a source that fails or ends early is padded to
// the literal's size and reported without failing the Writer; a failed
// connection fails it.
func TestEncodeLiteralErrors(t *testing.T) {
	boom := errors.New("disk on fire")
	for _, size := range []int64{10, 200 << 10} {
		for _, into := range []string{"plain", "ReaderFrom"} {
			var out bytes.Buffer
			var dst io.Writer = &out
			if into == "ReaderFrom" {
				dst = struct {
					io.Writer
					io.ReaderFrom
				}{&out, &out}
			}
			w := NewWriter(dst, 0)
			err := w.Literal(size, &encSource{n: size, fail: 3, err: boom})
			w.Atom("X")
			if !errors.Is(err, boom) || w.Flush() != nil {
				t.Errorf("%d %s: %v, %v", size, into, err, w.Err())
			}
			head := fmt.Sprintf("{%d}\r\nxxx", size)
			if b := out.Bytes(); int64(len(b)) != int64(len(head))+size-3+2 || !bytes.HasPrefix(b, []byte(head)) || !bytes.HasSuffix(b, []byte("\x00 X")) {
				t.Errorf("%d %s: %d bytes, %.20q", size, into, len(b), b)
			}
			out.Reset()
			w = NewWriter(dst, 0)
			err = w.Literal(size, &encSource{n: 5})
			w.Flush()
			if !errors.Is(err, io.ErrUnexpectedEOF) || int64(out.Len()) != int64(len(fmt.Sprint(size)))+4+size {
				t.Errorf("%d %s short: %v, %d bytes", size, into, err, out.Len())
			}
		}
	}
	var out bytes.Buffer
	w := NewWriter(&out, 0)
	if err := w.Literal(-1, nil); !errors.Is(err, ErrLiteralSize) || w.Flush() != nil || out.Len() != 0 {
		t.Errorf("negative size: %v, %q", err, out.String())
	}
	// The connection fails: the error sticks.
	w = NewWriter(encFailing{}, 0)
	if err := w.Literal(1<<20, &encSource{n: 1 << 20}); err == nil || w.Err() == nil {
		t.Errorf("a failed connection: %v", err)
	}
	w.Exists(1)
	if err := w.Flush(); err == nil || !strings.Contains(err.Error(), "connection reset") {
		t.Errorf("after the failure: %v", err)
	}
}

type encFailing struct{}

func (encFailing) Write([]byte) (int, error) { return 0, errors.New("connection reset") }

// TestEncodeBlocks: the FLAGS of 100,000 messages and the command's end
// reach the connection in whole buffers, not a write each.
func TestEncodeBlocks(t *testing.T) {
	c := &encCounter{}
	w := NewWriter(c, 0)
	for i := range uint32(100_000) {
		f := w.Fetch(i + 1)
		f.UID(i + 1)
		f.Flags([]goimap.Flag{goimap.FlagSeen})
		f.End()
	}
	w.Status("a1", "OK", "", "FETCH completed")
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if want := c.bytes/DefaultBufferSize + 1; c.writes > want {
		t.Errorf("%d writes for %d bytes, want at most %d", c.writes, c.bytes, want)
	}
	c = &encCounter{}
	w = NewWriter(c, 0)
	for i := range uint32(1000) {
		f := w.Fetch(i + 1)
		f.Flags(nil)
		f.End()
	}
	if c.writes != 0 {
		t.Errorf("%d writes before Flush", c.writes)
	}
	w.Flush()
	if c.writes != 1 {
		t.Errorf("%d writes", c.writes)
	}
}

// TestEncodeReset: Reset sends what is buffered to the old writer first.
func TestEncodeReset(t *testing.T) {
	var a, b bytes.Buffer
	w := NewWriter(&a, 0)
	w.StatusCode("a", "OK", "", nil, "DEFLATE active")
	if err := w.Reset(&b); err != nil {
		t.Fatal(err)
	}
	w.Exists(1)
	w.Flush()
	if a.String() != "a OK DEFLATE active\r\n" || b.String() != "* 1 EXISTS\r\n" {
		t.Errorf("%q %q", a.String(), b.String())
	}
}

// TestEncodeLiteralLoopback: a FETCH with a 4 MiB body from a file over a
// real loopback TCP connection (where the file goes with sendfile) and
// one from a plain reader arrive whole and in order.
func TestEncodeLiteralLoopback(t *testing.T) {
	const size = 4 << 20
	body := bytes.Repeat([]byte("mailsys\r\n"), size/9+1)[:size]
	file := filepath.Join(t.TempDir(), "body")
	if err := os.WriteFile(file, body, 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	got := make(chan []byte, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			got <- nil
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(20 * time.Second))
		b, _ := io.ReadAll(c)
		got <- b
	}()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	fh, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	w := NewWriter(c, 0)
	f := w.Fetch(1)
	if err := f.Section(&goimap.FetchItemBodySection{}, "", size, fh); err != nil {
		t.Fatal(err)
	}
	f.End()
	f = w.Fetch(2)
	if err := f.Section(&goimap.FetchItemBodySection{}, "", size, &encPlainReader{b: body}); err != nil {
		t.Fatal(err)
	}
	f.End()
	w.Status("a1", "OK", "", "FETCH completed")
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	c.Close()
	want := fmt.Sprintf("* 1 FETCH (BODY[] {%d}\r\n%s)\r\n* 2 FETCH (BODY[] {%d}\r\n%s)\r\na1 OK FETCH completed\r\n", size, body, size, body)
	if b := <-got; string(b) != want {
		t.Errorf("got %d bytes, want %d", len(b), len(want))
	}
}
