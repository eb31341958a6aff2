package imap

import (
	"bufio"
	"bytes"
	"reflect"
	"strings"
	"testing"
	"time"

	goimap "github.com/emersion/go-imap/v2"
	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"
)

// a is an address for the tables below.
func a(name, mailbox, host string) goimap.Address {
	return goimap.Address{Name: name, Mailbox: mailbox, Host: host}
}

func TestParseAddressList(t *testing.T) {
	start, end := groupStart, groupEnd
	for _, c := range []struct {
		in   string
		want []goimap.Address
	}{
		{"", nil},
		{"  , ,", nil},
		{"ann@example.org", []goimap.Address{a("", "ann", "example.org")}},
		{"Ann <ann@example.org>", []goimap.Address{a("Ann", "ann", "example.org")}},
		// Groups (RFC 5322 section 3.4), empty ones too.
		{"group: a@b, c@d;, group2: e@f;", []goimap.Address{start("group"), a("", "a", "b"), a("", "c", "d"), end, start("group2"), a("", "e", "f"), end}},
		{"undisclosed-recipients:;", []goimap.Address{start("undisclosed-recipients"), end}},
		{"undisclosed-recipients: ;", []goimap.Address{start("undisclosed-recipients"), end}},
		{"list: a@b", []goimap.Address{start("list"), a("", "a", "b"), end}}, // ";" supplied
		{"x@y, list: ;, z@w", []goimap.Address{a("", "x", "y"), start("list"), end, a("", "z", "w")}},
		{"outer: inner: a@b;", []goimap.Address{start("outer"), a("", "a", "b"), end}},
		{":a@b;", []goimap.Address{a("", "a", "b")}}, // no name, no markers
		// obs-route, dropped.
		{"<@route:user@domain>", []goimap.Address{a("", "user", "domain")}},
		{"Joe <@a.example,@b.example:joe@c.example>", []goimap.Address{a("Joe", "joe", "c.example")}},
		{"<@a, ,@b:joe@c>", []goimap.Address{a("", "joe", "c")}},
		// CFWS anywhere (RFC 5322 section 4.4).
		{"<user (comment)@ (comment) domain.org>", []goimap.Address{a("", "user", "domain.org")}},
		{"john . doe @ example . org", []goimap.Address{a("", "john.doe", "example.org")}},
		{"Pete(A nice \\) chap) <pete(his account)@silly.test(his host)>", []goimap.Address{a("Pete", "pete", "silly.test")}},
		{"A Group(Some people):Chris Jones <c@(Chris's host.)public.example>, joe@example.org, John <jdoe@one.test> (my dear friend); (the end of the group)",
			[]goimap.Address{start("A Group"), a("Chris Jones", "c", "public.example"), a("", "joe", "example.org"), a("John", "jdoe", "one.test"), end}},
		// A comment names a bare addr-spec.
		{"ann@example.org (Ann Example)", []goimap.Address{a("Ann Example", "ann", "example.org")}},
		{"a@b (A), c@d", []goimap.Address{a("A", "a", "b"), a("", "c", "d")}},
		// Display names as sent: encoded words kept, quotes undone.
		{"=?utf-8?b?5byg5LiJ?= <zs@x.cn>", []goimap.Address{a("=?utf-8?b?5byg5LiJ?=", "zs", "x.cn")}},
		{`"Doe, John" <j@x>`, []goimap.Address{a("Doe, John", "j", "x")}},
		{`"a \"quoted\" name" <q@x>`, []goimap.Address{a(`a "quoted" name`, "q", "x")}},
		{"John Q. Public <jqp@x>", []goimap.Address{a("John Q. Public", "jqp", "x")}},
		{"John   (middle)  Smith <js@x>", []goimap.Address{a("John Smith", "js", "x")}},
		{"bob@example.com <bob@example.com>", []goimap.Address{a("bob@example.com", "bob", "example.com")}},
		{"Grüße <gr@x>", []goimap.Address{a("Grüße", "gr", "x")}},
		// Local parts and domains.
		{`"john doe"@example.org`, []goimap.Address{a("", "john doe", "example.org")}},
		{`"a@b"@c`, []goimap.Address{a("", "a@b", "c")}},
		{"a@[1.2.3.4]", []goimap.Address{a("", "a", "[1.2.3.4]")}},
		{"a@[IPv6: ::1 ]", []goimap.Address{a("", "a", "[IPv6:::1]")}},
		{"用户@例子.广告", []goimap.Address{a("", "用户", "例子.广告")}},
		// Damage: placeholders, missing commas, stray specials.
		{"root", []goimap.Address{a("", "root", missingDomain)}},
		{"bob@, @host", []goimap.Address{a("", "bob", missingDomain), a("", missingMailbox, "host")}},
		{"<>", nil},
		{`"Mail Delivery" <>`, []goimap.Address{a("Mail Delivery", missingMailbox, missingDomain)}},
		{"foo bar@baz.com", []goimap.Address{a("foo", "bar", "baz.com")}},
		{"a@b c@d", []goimap.Address{a("", "a", "b"), a("", "c", "d")}},
		{"<a@b> Foo <c@d>", []goimap.Address{a("", "a", "b"), a("Foo", "c", "d")}},
		{"Ann <ann@example.org, bob@example.org", []goimap.Address{a("Ann", "ann", "example.org"), a("", "bob", "example.org")}},
		{"<<double@example.org>>", []goimap.Address{a("", "double", "example.org")}},
		{`"unterminated <alice@example.org>`, []goimap.Address{a("", "unterminated <alice@example.org>", missingDomain)}},
		{"(((", nil},
		{"a\x00b@c\r\n d", []goimap.Address{a("a", "b", "c"), a("", "d", missingDomain)}},
		{"x:", []goimap.Address{start("x"), end}},
		{";;>>,,", nil},
	} {
		got := parseAddressList(c.in)
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("parseAddressList(%q)\n got %+v\nwant %+v", c.in, got, c.want)
		}
	}
}

func TestAddressStrings(t *testing.T) {
	addrs := parseAddressList("=?utf-8?b?5byg5LiJ?= <zs@x.cn>, team: root, @h;")
	got := addressStrings(addrs)
	want := []string{"张三 <zs@x.cn>", "team", "root", "@h"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("addressStrings = %q, want %q", got, want)
	}
}

// TestExtractEnvelopeRaw: the subject, message ID and In-Reply-To are
// the header's own text, unfolded.
func TestExtractEnvelopeRaw(t *testing.T) {
	hdr := "Subject: =?utf-8?b?5L2g5aW9?=\r\n =?utf-8?b?5LiW55WM?=  \r\n" +
		"Message-ID:  <a(b)@c>\r\n" +
		"In-Reply-To: <p1@x>\r\n\t<p2@x>\r\n" +
		"From: =?utf-8?q?J=C3=BCrgen?= <j@x>\r\n" +
		"Sender:\r\n" +
		"\r\n"
	h, err := textproto.ReadHeader(bufio.NewReader(strings.NewReader(hdr)))
	if err != nil {
		t.Fatal(err)
	}
	env := extractEnvelope(h)
	if want := "=?utf-8?b?5L2g5aW9?= =?utf-8?b?5LiW55WM?="; env.Subject != want {
		t.Errorf("subject %q, want %q", env.Subject, want)
	}
	if env.MessageID != "a(b)@c" {
		t.Errorf("message ID %q", env.MessageID)
	}
	if want := []string{"p1@x>\t<p2@x"}; !reflect.DeepEqual(env.InReplyTo, want) {
		t.Errorf("in-reply-to %q, want %q", env.InReplyTo, want)
	}
	if want := []goimap.Address{a("=?utf-8?q?J=C3=BCrgen?=", "j", "x")}; !reflect.DeepEqual(env.From, want) {
		t.Errorf("from %+v", env.From)
	}
	if env.Sender != nil || env.ReplyTo != nil {
		t.Errorf("empty Sender %+v, missing Reply-To %+v: want nil (written as From)", env.Sender, env.ReplyTo)
	}
	// In-Reply-To not in brackets as a whole: go-message's parse.
	h, _ = textproto.ReadHeader(bufio.NewReader(strings.NewReader("In-Reply-To: <a@b> (Ann's message)\r\nMessage-Id: junk\r\n\r\n")))
	env = extractEnvelope(h)
	if !reflect.DeepEqual(env.InReplyTo, []string{"a@b"}) || env.MessageID != "" {
		t.Errorf("in-reply-to %q, message ID %q", env.InReplyTo, env.MessageID)
	}
}

// TestDecodeVersion1: summaries made before version 2 still decode, as
// they were made, and OutdatedSummary tells them.
func TestDecodeVersion1(t *testing.T) {
	// Version 1 of "Subject: 您好" from go-imap's ExtractEnvelope: the
	// decoded text.
	v1 := []byte{1, 0, byte(len("您好") << 1)}
	v1 = append(v1, "您好"...)
	v1 = append(v1, 0)
	env, err := DecodeEnvelope(v1)
	if err != nil || env.Subject != "您好" {
		t.Fatalf("version 1: %+v, %v", env, err)
	}
	if !OutdatedSummary(v1) {
		t.Error("a version 1 summary is not outdated")
	}
	envb, bsb, err := Summarize(strings.NewReader("Subject: x\r\n\r\nbody\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	if OutdatedSummary(envb) || OutdatedSummary(bsb) || envb[0] != summaryVersion || bsb[0] != summaryVersion {
		t.Errorf("fresh summaries %v %v outdated", envb[:1], bsb[:1])
	}
	bs1 := bytes.Clone(bsb)
	bs1[0] = 1
	if _, err := DecodeStructure(bs1); err != nil {
		t.Errorf("version 1 structure: %v", err)
	}
}

// FuzzAddressList: any input parses, in bounded time, to addresses that
// go-imap writes as RFC 3501 means them (a host unless a group marker,
// markers paired, not nested), the same addresses as net/mail's when it
// accepts the input.
func FuzzAddressList(f *testing.F) {
	for _, s := range []string{
		"group: a@b, c@d;, group2: e@f;", "undisclosed-recipients:;", "<@route:user@domain>",
		"<user (comment)@ (comment) domain.org>", `"Doe, John" <j@x>, a@b (Ann)`, "=?utf-8?b?5byg5LiJ?= <zs@x.cn>",
		"a@[1.2.3.4]", "((((", `"\`, "x:y:z;;", "<@a,@b:c@d>, e@f",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := parseAddressList(s)
		inGroup := false
		for i, addr := range got {
			switch {
			case addr.IsGroupEnd():
				if !inGroup || addr.Name != "" {
					t.Fatalf("%q: address %d: stray end of group in %+v", s, i, got)
				}
				inGroup = false
			case addr.IsGroupStart():
				if inGroup || addr.Name != "" {
					t.Fatalf("%q: address %d: group in a group in %+v", s, i, got)
				}
				inGroup = true
			case addr.Mailbox == "":
				t.Fatalf("%q: address %d: no mailbox in %+v", s, i, got)
			}
		}
		if inGroup {
			t.Fatalf("%q: group not ended in %+v", s, got)
		}
		want, err := mail.ParseAddressList(s)
		if err != nil {
			return
		}
		var plain []string
		for _, addr := range got {
			if !addr.IsGroupStart() && !addr.IsGroupEnd() {
				plain = append(plain, addr.Mailbox+"@"+addr.Host)
			}
		}
		var wantPlain []string
		for _, w := range want {
			wantPlain = append(wantPlain, w.Address)
		}
		if !reflect.DeepEqual(plain, wantPlain) {
			t.Fatalf("%q: %q, net/mail %q", s, plain, wantPlain)
		}
	})
}

// TestParseAddressListLinear: big damaged fields parse in linear time.
func TestParseAddressListLinear(t *testing.T) {
	for _, unit := range []string{"a@b ", "<@a,", "x ", "(c) ", "\"q\" ", "a.", "g: ", "<a@b> ", "@"} {
		s := strings.Repeat(unit, 100000)
		start := time.Now()
		parseAddressList(s)
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("%d bytes of %q: %v", len(s), unit, d)
		}
	}
}
