package imap

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	goimap "github.com/emersion/go-imap/v2"
)

// crlf turns a message written with \n into one with \r\n.
func crlf(s string) string { return strings.ReplaceAll(s, "\n", "\r\n") }

// The messages searched below.
var (
	// A Chinese carrier's bill: GBK everywhere, base64 body.
	searchGBK = crlf(`From: =?GBK?B?1tC5+tLGtq8=?= <10086@139.com>
To: user@139.com
Subject: =?GB2312?B?xPq1xNTCtsjVy7Wl?=
Date: Tue, 14 Jan 2025 23:59:59 -1200
Message-ID: <bill@139.com>
Content-Type: text/plain; charset="gb2312"
Content-Transfer-Encoding: base64

xPq6w6Ohsb7UwtXLtaXS0cn6s8mjrMfrtcfCvM34yc/TqtK1zPyy6dGvoaM=
`)

	// multipart/mixed: a UTF-8 base64 part, a Latin-1 quoted-printable
	// part, a binary attachment holding a word, and a forwarded message.
	searchMixed = crlf(`From: Alice <alice@example.org>
To: Bob <bob@example.com>
Cc: Carol <carol@example.net>
Subject: Quarterly report
Date: Wed, 15 Jan 2025 00:00:30 +1400
X-Priority: 1
Content-Type: multipart/mixed; boundary=b

--b
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: base64

5a2j5bqm5oql5ZGK5bey57uP5YeG5aSH5aW95LqG44CCU3RyYcOfZQ==
--b
Content-Type: text/plain; charset=iso-8859-1
Content-Transfer-Encoding: quoted-printable

La r=E9union de l'=E9quipe aura lieu =E0 9h.
--b
Content-Type: application/octet-stream
Content-Disposition: attachment; filename=secret.bin

attachmentonlyword
--b
Content-Type: message/rfc822

From: Dave <dave@example.net>
Subject: inner subject zebra

inner body giraffe
--b--
`)

	// No Date, an unparsable one, and a plain ASCII message.
	searchNoDate  = crlf("From: x@example.org\nSubject: no date\n\nbody\n")
	searchBadDate = crlf("From: x@example.org\nSubject: bad date\nDate: yesterday-ish\n\nbody\n")
)

// date is a SEARCH date, as go-imap decodes it.
func date(s string) time.Time {
	t, err := time.Parse("2-Jan-2006", s)
	if err != nil {
		panic(err)
	}
	return t
}

// on is SEARCH ON d (SENTON with sent), as go-imap decodes it.
func on(d string) goimap.SearchCriteria {
	return goimap.SearchCriteria{Since: date(d), Before: date(d).Add(24 * time.Hour)}
}

func senton(d string) goimap.SearchCriteria {
	return goimap.SearchCriteria{SentSince: date(d), SentBefore: date(d).Add(24 * time.Hour)}
}

func seqSet(nums ...uint32) goimap.SeqSet { return goimap.SeqSetNum(nums...) }

func uidRange(start, stop goimap.UID) goimap.UIDSet {
	var s goimap.UIDSet
	s.AddRange(start, stop)
	return s
}

func header(key, value string) goimap.SearchCriteria {
	return goimap.SearchCriteria{Header: []goimap.SearchCriteriaHeaderField{{Key: key, Value: value}}}
}

func not(c goimap.SearchCriteria) goimap.SearchCriteria {
	return goimap.SearchCriteria{Not: []goimap.SearchCriteria{c}}
}

func or(a, b goimap.SearchCriteria) goimap.SearchCriteria {
	return goimap.SearchCriteria{Or: [][2]goimap.SearchCriteria{{a, b}}}
}

func and(cs ...goimap.SearchCriteria) goimap.SearchCriteria {
	var c goimap.SearchCriteria
	for i := range cs {
		c.And(&cs[i])
	}
	return c
}

// newSearchMessage makes a message whose Open returns raw, counting calls.
func newSearchMessage(raw string, opens *int) *searchMessage {
	return &searchMessage{
		SeqNum: 7,
		UID:    42,
		Flags:  []goimap.Flag{goimap.FlagSeen, "$Forwarded", "\\Recent"},
		// 23:30 at UTC-5 is already the 15th in UTC.
		InternalDate: time.Date(2025, 1, 14, 23, 30, 0, 0, time.FixedZone("", -5*3600)),
		Size:         int64(len(raw)),
		ModSeq:       100,
		Open: func() (io.ReadCloser, error) {
			*opens++
			return io.NopCloser(strings.NewReader(raw)), nil
		},
	}
}

func TestMatchSearch(t *testing.T) {
	mixedSize := int64(len(searchMixed))
	tests := []struct {
		name string
		msg  string
		c    goimap.SearchCriteria
		want bool
	}{
		{"ALL", searchMixed, goimap.SearchCriteria{}, true},

		// Sequence numbers and UIDs (already resolved).
		{"seq in", searchMixed, goimap.SearchCriteria{SeqNum: []goimap.SeqSet{seqSet(1, 7, 9)}}, true},
		{"seq out", searchMixed, goimap.SearchCriteria{SeqNum: []goimap.SeqSet{seqSet(1, 8)}}, false},
		{"seq all sets", searchMixed, goimap.SearchCriteria{SeqNum: []goimap.SeqSet{seqSet(7), seqSet(8)}}, false},
		{"uid range", searchMixed, goimap.SearchCriteria{UID: []goimap.UIDSet{uidRange(40, 50)}}, true},
		{"uid out", searchMixed, goimap.SearchCriteria{UID: []goimap.UIDSet{uidRange(43, 50)}}, false},

		// INTERNALDATE: 2025-01-14 23:30 -0500, the 14th in its own zone.
		{"since same day", searchMixed, goimap.SearchCriteria{Since: date("14-Jan-2025")}, true},
		{"since next day", searchMixed, goimap.SearchCriteria{Since: date("15-Jan-2025")}, false},
		{"before same day", searchMixed, goimap.SearchCriteria{Before: date("14-Jan-2025")}, false},
		{"before next day", searchMixed, goimap.SearchCriteria{Before: date("15-Jan-2025")}, true},
		{"on", searchMixed, on("14-Jan-2025"), true},
		{"on UTC day", searchMixed, on("15-Jan-2025"), false},
		{"on day before", searchMixed, on("13-Jan-2025"), false},

		// Date: header. searchGBK: 23:59:59 -1200 on the 14th (the 15th in
		// UTC); searchMixed: 00:00:30 +1400 on the 15th (the 14th in UTC).
		{"senton -1200", searchGBK, senton("14-Jan-2025"), true},
		{"senton -1200 UTC day", searchGBK, senton("15-Jan-2025"), false},
		{"sentsince -1200", searchGBK, goimap.SearchCriteria{SentSince: date("15-Jan-2025")}, false},
		{"sentbefore -1200", searchGBK, goimap.SearchCriteria{SentBefore: date("15-Jan-2025")}, true},
		{"senton +1400", searchMixed, senton("15-Jan-2025"), true},
		{"sentbefore +1400", searchMixed, goimap.SearchCriteria{SentBefore: date("15-Jan-2025")}, false},
		{"sentsince +1400", searchMixed, goimap.SearchCriteria{SentSince: date("15-Jan-2025")}, true},
		{"sent* without Date", searchNoDate, goimap.SearchCriteria{SentBefore: date("1-Jan-3000")}, false},
		{"sent* without Date 2", searchNoDate, goimap.SearchCriteria{SentSince: date("1-Jan-1970")}, false},
		{"not sent* without Date", searchNoDate, not(goimap.SearchCriteria{SentBefore: date("1-Jan-3000")}), true},
		{"sent* bad Date", searchBadDate, goimap.SearchCriteria{SentSince: date("1-Jan-1970")}, false},

		// Header fields, names in any case, values decoded and folded.
		{"subject GB2312", searchGBK, header("Subject", "月度账单"), true},
		{"from name GBK", searchGBK, header("From", "中国移动"), true},
		{"from address", searchGBK, header("FROM", "10086@139"), true},
		{"subject case", searchMixed, header("subject", "QUARTERLY"), true},
		{"subject miss", searchMixed, header("Subject", "annual"), false},
		{"cc", searchMixed, header("Cc", "carol"), true},
		{"bcc absent", searchMixed, header("Bcc", "carol"), false},
		{"header present", searchMixed, header("x-priority", ""), true},
		{"header absent", searchMixed, header("X-Spam", ""), false},
		{"header not its value", searchMixed, header("X-Priority", "2"), false},
		{"header of a part", searchMixed, header("Content-Disposition", "secret"), false},

		// BODY: decoded, converted, folded; never binary attachments.
		{"body GBK base64", searchGBK, goimap.SearchCriteria{Body: []string{"本月账单"}}, true},
		{"body GBK miss", searchGBK, goimap.SearchCriteria{Body: []string{"话费"}}, false},
		{"body UTF-8 base64", searchMixed, goimap.SearchCriteria{Body: []string{"季度报告"}}, true},
		{"body folding ß", searchMixed, goimap.SearchCriteria{Body: []string{"STRASSE"}}, true},
		{"body Latin-1 qp", searchMixed, goimap.SearchCriteria{Body: []string{"RÉUNION DE L'ÉQUIPE"}}, true},
		{"body attachment", searchMixed, goimap.SearchCriteria{Body: []string{"attachmentonlyword"}}, false},
		{"body inner body", searchMixed, goimap.SearchCriteria{Body: []string{"GIRAFFE"}}, true},
		{"body inner header", searchMixed, goimap.SearchCriteria{Body: []string{"zebra"}}, true},
		{"body not outer header", searchMixed, goimap.SearchCriteria{Body: []string{"Quarterly"}}, false},
		{"body across parts", searchMixed, goimap.SearchCriteria{Body: []string{"9h.\r\nStra"}}, false},
		{"body empty", searchMixed, goimap.SearchCriteria{Body: []string{""}}, true},
		{"body all terms", searchMixed, goimap.SearchCriteria{Body: []string{"giraffe", "9h"}}, true},
		{"body one missing", searchMixed, goimap.SearchCriteria{Body: []string{"giraffe", "elephant"}}, false},

		// TEXT: header or body.
		{"text in header", searchMixed, goimap.SearchCriteria{Text: []string{"quarterly REPORT"}}, true},
		{"text in header name", searchMixed, goimap.SearchCriteria{Text: []string{"x-priority: 1"}}, true},
		{"text in body", searchMixed, goimap.SearchCriteria{Text: []string{"giraffe"}}, true},
		{"text GBK subject", searchGBK, goimap.SearchCriteria{Text: []string{"您的月度"}}, true},
		{"text GBK body", searchGBK, goimap.SearchCriteria{Text: []string{"网上营业厅"}}, true},
		{"text miss", searchMixed, goimap.SearchCriteria{Text: []string{"elephant"}}, false},

		// Flags and keywords.
		{"seen", searchMixed, goimap.SearchCriteria{Flag: []goimap.Flag{goimap.FlagSeen}}, true},
		{"seen any case", searchMixed, goimap.SearchCriteria{Flag: []goimap.Flag{"\\SEEN"}}, true},
		{"unseen", searchMixed, goimap.SearchCriteria{NotFlag: []goimap.Flag{goimap.FlagSeen}}, false},
		{"flagged", searchMixed, goimap.SearchCriteria{Flag: []goimap.Flag{goimap.FlagFlagged}}, false},
		{"undeleted", searchMixed, goimap.SearchCriteria{NotFlag: []goimap.Flag{goimap.FlagDeleted}}, true},
		{"keyword", searchMixed, goimap.SearchCriteria{Flag: []goimap.Flag{"$forwarded"}}, true},
		{"unkeyword", searchMixed, goimap.SearchCriteria{NotFlag: []goimap.Flag{"$FORWARDED"}}, false},
		{"keyword absent", searchMixed, goimap.SearchCriteria{Flag: []goimap.Flag{"$Junk"}}, false},
		{"new", searchMixed, goimap.SearchCriteria{Flag: []goimap.Flag{"\\Recent"}, NotFlag: []goimap.Flag{goimap.FlagSeen}}, false},
		{"old", searchMixed, goimap.SearchCriteria{NotFlag: []goimap.Flag{"\\Recent"}}, false},

		// Sizes: LARGER n is size > n, SMALLER n is size < n.
		{"larger", searchMixed, goimap.SearchCriteria{Larger: mixedSize - 1}, true},
		{"larger equal", searchMixed, goimap.SearchCriteria{Larger: mixedSize}, false},
		{"smaller", searchMixed, goimap.SearchCriteria{Smaller: mixedSize + 1}, true},
		{"smaller equal", searchMixed, goimap.SearchCriteria{Smaller: mixedSize}, false},

		// MODSEQ: at least the given value; the entry is ignored.
		{"modseq equal", searchMixed, goimap.SearchCriteria{ModSeq: &goimap.SearchCriteriaModSeq{ModSeq: 100}}, true},
		{"modseq above", searchMixed, goimap.SearchCriteria{ModSeq: &goimap.SearchCriteriaModSeq{ModSeq: 101}}, false},
		{"modseq entry", searchMixed, goimap.SearchCriteria{ModSeq: &goimap.SearchCriteriaModSeq{
			ModSeq: 50, MetadataName: "/flags/\\draft", MetadataType: goimap.SearchCriteriaMetadataPrivate}}, true},

		// Not and Or, nested.
		{"not", searchMixed, not(goimap.SearchCriteria{Body: []string{"giraffe"}}), false},
		{"not not", searchMixed, not(not(goimap.SearchCriteria{Body: []string{"giraffe"}})), true},
		{"or first", searchMixed, or(header("Subject", "quarterly"), goimap.SearchCriteria{Body: []string{"elephant"}}), true},
		{"or second", searchMixed, or(header("Subject", "annual"), goimap.SearchCriteria{Body: []string{"giraffe"}}), true},
		{"or neither", searchMixed, or(header("Subject", "annual"), goimap.SearchCriteria{Body: []string{"elephant"}}), false},
		{"or of nots", searchMixed, or(not(goimap.SearchCriteria{Flag: []goimap.Flag{goimap.FlagSeen}}),
			not(goimap.SearchCriteria{Text: []string{"zebra"}})), false},
		{"deep nesting", searchGBK, and(
			goimap.SearchCriteria{NotFlag: []goimap.Flag{goimap.FlagDeleted}},
			or(not(or(header("Subject", "账单"), goimap.SearchCriteria{Larger: 1 << 30})),
				and(not(goimap.SearchCriteria{Body: []string{"话费"}}), senton("14-Jan-2025"))),
		), true},
		{"and of everything", searchMixed, and(
			goimap.SearchCriteria{SeqNum: []goimap.SeqSet{seqSet(7)}, UID: []goimap.UIDSet{uidRange(1, 100)}},
			on("14-Jan-2025"), senton("15-Jan-2025"), header("To", "bob"),
			goimap.SearchCriteria{Body: []string{"giraffe"}, Text: []string{"alice"}, Flag: []goimap.Flag{"$Forwarded"}},
			goimap.SearchCriteria{Larger: 100, Smaller: 1 << 20},
			not(or(goimap.SearchCriteria{Body: []string{"elephant"}}, header("Subject", "annual"))),
		), true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			opens := 0
			m := newSearchMessage(tc.msg, &opens)
			got, err := matchSearch(m, &tc.c)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("matchSearch = %v, want %v", got, tc.want)
			}
			if opens > 1 {
				t.Errorf("Open called %d times", opens)
			}
			if !needsBody(&tc.c) && opens > 0 {
				t.Errorf("Open called though needsBody is false")
			}
		})
	}
}

func TestNeedsBody(t *testing.T) {
	index := []goimap.SearchCriteria{
		{},
		{SeqNum: []goimap.SeqSet{seqSet(1)}, Since: date("1-Jan-2025"), Flag: []goimap.Flag{"x"}, Larger: 3},
		not(or(goimap.SearchCriteria{Smaller: 4}, not(goimap.SearchCriteria{NotFlag: []goimap.Flag{"y"}}))),
	}
	message := []goimap.SearchCriteria{
		header("Subject", ""),
		{Body: []string{"x"}},
		{Text: []string{""}},
		{SentSince: date("1-Jan-2025")},
		{SentBefore: date("1-Jan-2025")},
		not(or(goimap.SearchCriteria{Smaller: 4}, not(goimap.SearchCriteria{Body: []string{"y"}}))),
	}
	for i := range index {
		if needsBody(&index[i]) {
			t.Errorf("needsBody(index[%d]) = true", i)
		}
	}
	for i := range message {
		if !needsBody(&message[i]) {
			t.Errorf("needsBody(message[%d]) = false", i)
		}
	}
}

// readCounter counts what is read through it.
type readCounter struct {
	r io.Reader
	n *int
}

func (c readCounter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	*c.n += n
	return n, err
}

func (readCounter) Close() error { return nil }

// TestSearchReadsLittle: index keys open nothing, header keys read the
// header only, text keys stop once every term is found.
func TestSearchReadsLittle(t *testing.T) {
	raw := "Subject: big\r\nContent-Type: text/plain\r\n\r\nneedle at the start\r\n" +
		strings.Repeat("hay hay hay hay\r\n", 1<<16) + "needle2 at the end\r\n"
	var read, opens int
	m := &searchMessage{Size: int64(len(raw)), Open: func() (io.ReadCloser, error) {
		opens++
		return readCounter{strings.NewReader(raw), &read}, nil
	}}
	check := func(c goimap.SearchCriteria, want bool, maxRead int) {
		t.Helper()
		read, opens = 0, 0
		got, err := matchSearch(m, &c)
		if err != nil || got != want {
			t.Fatalf("matchSearch = %v, %v; want %v", got, err, want)
		}
		if opens > 1 || read > maxRead {
			t.Errorf("%d opens, %d bytes read (max %d)", opens, read, maxRead)
		}
	}
	check(goimap.SearchCriteria{Larger: 10}, true, 0)
	check(header("Subject", "big"), true, 64<<10)
	check(goimap.SearchCriteria{Body: []string{"needle"}}, true, 64<<10)
	check(goimap.SearchCriteria{Body: []string{"needle", "needle2"}}, true, len(raw))
	// A failed index key spares the header key.
	check(and(goimap.SearchCriteria{Larger: 1 << 30}, header("Subject", "big")), false, 0)
}

// TestSearchStreamingEdges: terms across write boundaries are found; text
// beyond maxSearchText is not examined.
func TestSearchStreamingEdges(t *testing.T) {
	for _, off := range []int{0, 1, 4095, 4096, 32<<10 - 3, 32 << 10, 64<<10 - 1} {
		raw := "Content-Type: text/plain\r\n\r\n" + strings.Repeat("a", off) + "NéEDLE" + strings.Repeat("b", 70<<10)
		opens := 0
		m := newSearchMessage(raw, &opens)
		c := goimap.SearchCriteria{Body: []string{"needle"}}
		if ok, err := matchSearch(m, &c); err != nil || ok {
			t.Errorf("offset %d: 'needle' matched 'NéEDLE': %v, %v", off, ok, err)
		}
		c = goimap.SearchCriteria{Body: []string{"nÉedle"}}
		if ok, err := matchSearch(m, &c); err != nil || !ok {
			t.Errorf("offset %d: 'nÉedle' = %v, %v", off, ok, err)
		}
	}

	head := "Content-Type: text/plain\r\n\r\n"
	early := head + strings.Repeat("x", maxSearchText-10) + "early" + strings.Repeat("y", 100)
	late := head + strings.Repeat("x", maxSearchText) + "late"
	for _, tc := range []struct {
		raw, term string
		want      bool
	}{{early, "early", true}, {late, "late", false}} {
		opens := 0
		c := goimap.SearchCriteria{Body: []string{tc.term}}
		if ok, err := matchSearch(newSearchMessage(tc.raw, &opens), &c); err != nil || ok != tc.want {
			t.Errorf("%q: %v, %v; want %v", tc.term, ok, err, tc.want)
		}
	}
}

// TestSearchCorpus searches every test message, to see that malformed
// ones are no errors.
func TestSearchCorpus(t *testing.T) {
	c := and(header("Subject", "x"), goimap.SearchCriteria{Text: []string{"zz"}}, senton("1-Jan-2025"))
	c = or(c, goimap.SearchCriteria{Body: []string{"the"}})
	for name, raw := range corpus(t) {
		opens := 0
		if _, err := matchSearch(newSearchMessage(string(raw), &opens), &c); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	raw, err := os.ReadFile("testdata/messages/gbk-8bit-attachment.eml")
	if err != nil {
		t.Fatal(err)
	}
	opens := 0
	c = goimap.SearchCriteria{Body: []string{"请查收发票"}}
	if ok, err := matchSearch(newSearchMessage(string(raw), &opens), &c); err != nil || !ok {
		t.Errorf("8-bit GBK body: %v, %v", ok, err)
	}
}

func TestSearchErrors(t *testing.T) {
	errDisk := errors.New("disk on fire")
	m := &searchMessage{Open: func() (io.ReadCloser, error) { return nil, errDisk }}
	c := goimap.SearchCriteria{Body: []string{"x"}}
	if _, err := matchSearch(m, &c); !errors.Is(err, errDisk) {
		t.Errorf("Open failing: err = %v", err)
	}

	// Failing in the header fails any search that opens the message;
	// failing in the body fails only those that read it.
	raw := searchMixed
	headerLen := strings.Index(raw, "\r\n\r\n")
	for _, n := range []int{10, headerLen, len(raw) / 2, len(raw) - 5} {
		m = &searchMessage{Open: func() (io.ReadCloser, error) {
			return io.NopCloser(io.MultiReader(strings.NewReader(raw[:n]), iotestErrReader{errDisk})), nil
		}}
		c := goimap.SearchCriteria{Body: []string{"nothing"}}
		if _, err := matchSearch(m, &c); !errors.Is(err, errDisk) {
			t.Errorf("BODY, reading failing after %d bytes: err = %v", n, err)
		}
		c = header("X-None", "x")
		if _, err := matchSearch(m, &c); (n <= headerLen) != errors.Is(err, errDisk) {
			t.Errorf("HEADER, reading failing after %d bytes: err = %v", n, err)
		}
	}

	var dyn goimap.SeqSet
	dyn.AddRange(3, 0) // 3:*
	opens := 0
	for _, c := range []goimap.SearchCriteria{
		{SeqNum: []goimap.SeqSet{dyn}},
		{UID: []goimap.UIDSet{{goimap.UIDRange{Start: 1, Stop: 0}}}},
		not(goimap.SearchCriteria{SeqNum: []goimap.SeqSet{dyn}}),
		{UID: []goimap.UIDSet{goimap.SearchRes()}},
	} {
		if _, err := matchSearch(newSearchMessage(searchMixed, &opens), &c); !errors.Is(err, errDynamicSet) {
			t.Errorf("dynamic set: err = %v", err)
		}
	}
}

func TestTermScanner(t *testing.T) {
	sc := newTermScanner([]string{"abc", "x", "long-term"})
	for _, w := range []string{"..a", "b", "c..lo", "ng-", "te", "rm"} {
		sc.Write([]byte(w))
	}
	if !sc.found[0] || sc.found[1] || !sc.found[2] {
		t.Errorf("found %v, want [true false true]", sc.found)
	}
	sc.boundary()
	if _, err := sc.Write([]byte("x")); !errors.Is(err, errScanDone) {
		t.Errorf("last term found: err = %v", err)
	}
	sc = newTermScanner([]string{"ab"})
	sc.Write([]byte("a"))
	sc.boundary()
	sc.Write([]byte("b"))
	if sc.found[0] {
		t.Error("a term matched across a boundary")
	}
}

// TestTermScannerMatchesNaive: the automaton finds what strings.Contains
// finds, whatever the terms (prefixes and suffixes of one another) and
// however the text is cut into writes and runs.
func TestTermScannerMatchesNaive(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	word := func(n int) string {
		b := make([]byte, 1+rng.IntN(n))
		for i := range b {
			b[i] = "abc"[rng.IntN(3)]
		}
		return string(b)
	}
	for round := range 2000 {
		var terms []string
		for range 1 + rng.IntN(8) {
			if w := word(5); !slices.Contains(terms, w) {
				terms = append(terms, w)
			}
		}
		runs := make([]string, 1+rng.IntN(3))
		for i := range runs {
			runs[i] = word(30)
		}
		sc := newTermScanner(terms)
		for pass := range 2 { // the second after reset, as for the next message
			sc.reset()
			for _, run := range runs {
				sc.boundary()
				for rest := run; rest != ""; {
					n := 1 + rng.IntN(len(rest))
					sc.Write([]byte(rest[:n]))
					rest = rest[n:]
				}
			}
			for i, term := range terms {
				want := false
				for _, run := range runs {
					want = want || strings.Contains(run, term)
				}
				if sc.found[i] != want {
					t.Fatalf("round %d pass %d: terms %q, runs %q: found[%q] = %v", round, pass, terms, runs, term, sc.found[i])
				}
			}
		}
	}
}

// TestCompileSearch: chains of OR are one level, the bounds on keys and
// depth hold, and number sets are sorted and merged.
func TestCompileSearch(t *testing.T) {
	chain := func(n int) goimap.SearchCriteria {
		c := goimap.SearchCriteria{Flag: []goimap.Flag{"k0"}}
		for i := 1; i < n; i++ {
			c = or(goimap.SearchCriteria{Flag: []goimap.Flag{goimap.Flag(fmt.Sprint("k", i))}}, c)
		}
		return c
	}
	nots := func(n int) goimap.SearchCriteria {
		c := goimap.SearchCriteria{}
		for range n {
			c = not(c)
		}
		return c
	}
	for _, tc := range []struct {
		name string
		c    goimap.SearchCriteria
		err  error
	}{
		{"4000 keys", chain(4000), nil},
		{"4001 keys", chain(4001), errSearchTooBig},
		{"100 NOTs", nots(100), nil},
		{"101 NOTs", nots(101), errSearchTooDeep},
		{"10000 NOTs", nots(10000), errSearchTooDeep},
		{"left-nested OR", or(or(or(header("a", "1"), header("b", "2")), header("c", "3")), header("d", "4")), nil},
	} {
		s, err := compileSearch(&tc.c, nil)
		if err != tc.err {
			t.Errorf("%s: err = %v, want %v", tc.name, err, tc.err)
			continue
		}
		if err == nil && tc.name != "100 NOTs" && (s.root.kind != kOr || searchDepth(s.root, 0) != 1) {
			t.Errorf("%s: root %v, depth %d; want one OR", tc.name, s.root.kind, searchDepth(s.root, 0))
		}
	}
	rs := normalizeRanges([]numRange{{9, 12}, {1, 3}, {4, 4}, {20, 20}, {11, 15}, {1, 2}, {4294967295, 4294967295}})
	want := numRanges{{1, 4}, {9, 15}, {20, 20}, {4294967295, 4294967295}}
	if !slices.Equal(rs, want) {
		t.Errorf("normalizeRanges = %v, want %v", rs, want)
	}
	for n, in := range map[uint32]bool{0: false, 1: true, 4: true, 5: false, 9: true, 15: true, 16: false, 20: true, 4294967295: true, 4294967294: false} {
		if want.contains(n) != in {
			t.Errorf("contains(%d) = %v", n, !in)
		}
	}
}
