package wire

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"

	goimap "github.com/emersion/go-imap/v2"
)

// continuer counts the continuation requests a Reader asks for and
// keeps the refusals it is told to answer.
type continuer struct {
	n       int
	refused []*Error
}

func (c *continuer) Continue(text string) error {
	if text != "Ready" {
		return errors.New("continuation text " + text)
	}
	c.n++
	return nil
}

func (c *continuer) Refuse(tag string, err *Error) error {
	if err.Tag != tag {
		return errors.New("refusal of " + err.Tag + " for tag " + tag)
	}
	c.refused = append(c.refused, err)
	return nil
}

func newReader(s string) (*Reader, *continuer) {
	c := &continuer{}
	return NewReader(bufio.NewReader(strings.NewReader(s)), Limits{}, c), c
}

func TestLimitsValidate(t *testing.T) {
	if err := DefaultLimits().Validate(); err != nil {
		t.Fatal(err)
	}
	if err := (Limits{}).Validate(); err != nil {
		t.Fatal(err)
	}
	err := Limits{MaxLine: -1, MaxSetRanges: -2}.Validate()
	if !errors.Is(err, ErrInvalidLimits) || !strings.Contains(err.Error(), "MaxLine") || !strings.Contains(err.Error(), "MaxSetRanges") {
		t.Fatalf("both negative limits: %v", err)
	}
	r := NewReader(bufio.NewReader(strings.NewReader("")), Limits{}, &continuer{})
	if r.lim != DefaultLimits() {
		t.Fatalf("zero limits: %+v", r.lim)
	}
}

// TestLimits: an overlong line, a set of too many ranges, literals over
// their limits, each refused and the stream kept in step.
func TestLimits(t *testing.T) {
	lim := Limits{MaxLine: 100, MaxLiteral: 10, MaxSetRanges: 3, MaxNesting: 5, MaxSearchKeys: 10}
	for _, tc := range []struct {
		in, typ, code, text string
	}{
		{"a LOGIN " + strings.Repeat("x", 200) + " y\r\n", "BAD", "LIMIT", "Command longer than 100 bytes"},
		{"a SELECT " + strings.Repeat("x", 100_000) + "\r\n", "BAD", "LIMIT", "Command longer than 100 bytes"},
		{"a FETCH 1,2,3,4 FLAGS\r\n", "BAD", "LIMIT", "More than 3 ranges in a sequence set"},
		{"a UID SEARCH UID 1:2,4,6,8\r\n", "BAD", "LIMIT", "More than 3 ranges in a sequence set"},
		{"a SEARCH ((((((ALL))))))\r\n", "BAD", "LIMIT", "Nested more than 5 levels deep"},
		{"a SEARCH NOT NOT NOT NOT NOT NOT ALL\r\n", "BAD", "LIMIT", "Nested more than 5 levels deep"},
		{"a FETCH 1 BODY[1.2.3.4.5.6]\r\n", "BAD", "LIMIT", "Part path deeper than 5"},
		{"a SEARCH " + strings.Repeat("OR 1 1 ", 4) + "ALL\r\n", "BAD", "LIMIT", "More than 10 search keys"},
		{"a UID SORT (DATE) UTF-8 " + strings.Repeat("NOT 1 ", 6) + "\r\n", "BAD", "LIMIT", "More than 10 search keys"},
		// A non-synchronizing literal over the limit is read and
		// dropped, with the rest of the command.
		{"a LOGIN {11+}\r\nhello world {3+}\r\nabc\r\n", "NO", "TOOBIG", "Literal of 11 bytes over the limit of 10"},
		{"a LOGIN x {5000+}\r\n" + strings.Repeat("y", 5000) + "\r\n", "NO", "TOOBIG", "Literal of 5000 bytes over the limit of 10"},
		// LITERAL- allows no more than 4096 bytes.
		{"a LOGIN {4097-}\r\n" + strings.Repeat("x", 4097) + "\r\n", "BAD", "", "A non-synchronizing literal over 4096 bytes (LITERAL-)"},
	} {
		c := &continuer{}
		r := NewReader(bufio.NewReader(strings.NewReader(tc.in+"b NOOP\r\n")), lim, c)
		_, err := r.ReadCommand()
		var e *Error
		if !errors.As(err, &e) || e.Tag != "a" || e.Type != tc.typ || e.Code != tc.code || e.Text != tc.text {
			t.Errorf("%.40q: %v, want %s [%s] %s", tc.in, err, tc.typ, tc.code, tc.text)
			continue
		}
		if c.n != 0 || len(c.refused) != 0 {
			t.Errorf("%.40q: %d continuations, %d refusals", tc.in, c.n, len(c.refused))
		}
		if cmd, err := r.ReadCommand(); err != nil || cmd.Tag != "b" || cmd.Name != "NOOP" {
			t.Errorf("%.40q: the next command: %v, %v", tc.in, cmd, err)
		}
	}
}

// TestDiscardLimit: past DiscardLimit bytes to drop, a refused command
// is fatal.
func TestDiscardLimit(t *testing.T) {
	lim := Limits{MaxLine: 100, MaxLiteral: 10}
	for name, in := range map[string]string{
		"literal+":         "a LOGIN {2000000+}\r\n" + strings.Repeat("x", 2000000),
		"line":             "a NOOP " + strings.Repeat("x", 2000000) + "\r\n",
		"several literal+": "a LOGIN {600000+}\r\n" + strings.Repeat("x", 600000) + " {600000+}\r\n" + strings.Repeat("x", 600000) + "\r\n",
		"skipped literals": "a FOO {600000+}\r\n" + strings.Repeat("x", 600000) + " {600000+}\r\n" + strings.Repeat("x", 600000) + "\r\n",
	} {
		r := NewReader(bufio.NewReader(strings.NewReader(in+"b NOOP\r\n")), lim, &continuer{})
		if _, err := r.ReadCommand(); !errors.Is(err, ErrTooBig) {
			t.Errorf("%s past DiscardLimit: %v", name, err)
		}
	}
	// Within it, all is dropped and the next command reads.
	r := NewReader(bufio.NewReader(strings.NewReader("a FOO {900000+}\r\n"+strings.Repeat("x", 900000)+"\r\nb NOOP\r\n")), lim, &continuer{})
	var e *Error
	if _, err := r.ReadCommand(); !errors.As(err, &e) || e.Text != "Unknown command FOO" {
		t.Fatalf("unknown command with a literal: %v", err)
	}
	if cmd, err := r.ReadCommand(); err != nil || cmd.Tag != "b" {
		t.Fatalf("the next command: %v, %v", cmd, err)
	}
}

// TestLiteralsTotal: many literals each within MaxLiteral, together past
// the command's bound, are refused.
func TestLiteralsTotal(t *testing.T) {
	lim := Limits{MaxLiteral: 64 << 10}
	var b strings.Builder
	b.WriteString("a SEARCH")
	lit := strings.Repeat("z", 64<<10)
	for range 20 {
		b.WriteString(" TEXT {65536+}\r\n" + lit)
	}
	b.WriteString("\r\nb NOOP\r\n")
	r := NewReader(bufio.NewReader(strings.NewReader(b.String())), lim, &continuer{})
	_, err := r.ReadCommand()
	var e *Error
	if !errors.As(err, &e) && !errors.Is(err, ErrTooBig) {
		t.Fatalf("20 literals of 64 KiB: %v", err)
	}
	if e != nil && (e.Code != "TOOBIG" || !strings.Contains(e.Text, "literals over")) {
		t.Fatalf("20 literals of 64 KiB: %v", e)
	}
}

// TestSyncLiteral: a synchronizing literal within its limit is asked for
// with a continuation before it is read.
func TestSyncLiteral(t *testing.T) {
	r, c := newReader("a LOGIN {5}\r\nalice {2}\r\npw\r\n")
	cmd, err := r.ReadCommand()
	if err != nil || c.n != 2 || cmd.Args.(*LoginArgs).Password != "pw" {
		t.Fatalf("%v %v, %d continuations", cmd, err, c.n)
	}
}

// TestSyncLiteralRefused: a synchronizing literal over its limit is
// refused through the Continuer, never asked for; the client abandons
// the command and its next one reads.
func TestSyncLiteralRefused(t *testing.T) {
	for _, in := range []string{
		"a LOGIN {11}\r\n",
		"a LOGIN alice {11}\r\n",
		"a SEARCH CHARSET UTF-8 TEXT {100000}\r\n",
		"a LOGIN {5}\r\nalice {11}\r\n", // the second literal is the one refused
	} {
		c := &continuer{}
		r := NewReader(bufio.NewReader(strings.NewReader(in+"b NOOP\r\n")), Limits{MaxLiteral: 10}, c)
		cmd, err := r.ReadCommand()
		if err != nil || cmd.Tag != "b" || cmd.Name != "NOOP" {
			t.Errorf("%q: the next command: %v, %v", in, cmd, err)
			continue
		}
		if len(c.refused) != 1 {
			t.Errorf("%q: %d refusals", in, len(c.refused))
			continue
		}
		if e := c.refused[0]; e.Tag != "a" || e.Type != "NO" || e.Code != "TOOBIG" || !strings.Contains(e.Text, "over the limit of 10") {
			t.Errorf("%q: refused with %v", in, e)
		}
	}
	// A Continuer's error is fatal.
	r := NewReader(bufio.NewReader(strings.NewReader("a LOGIN {3}\r\nabc x\r\n")), Limits{}, failingContinuer{})
	if _, err := r.ReadCommand(); !errors.Is(err, errConn) {
		t.Fatalf("failing Continue: %v", err)
	}
	r = NewReader(bufio.NewReader(strings.NewReader("a LOGIN {300000}\r\n")), Limits{}, failingContinuer{})
	if _, err := r.ReadCommand(); !errors.Is(err, errConn) {
		t.Fatalf("failing Refuse: %v", err)
	}
}

var errConn = errors.New("connection broken")

type failingContinuer struct{}

func (failingContinuer) Continue(string) error       { return errConn }
func (failingContinuer) Refuse(string, *Error) error { return errConn }

// TestEOF: the client closing between commands is io.EOF, in the middle
// of one io.ErrUnexpectedEOF.
func TestEOF(t *testing.T) {
	r, _ := newReader("a NOOP\r\n")
	if _, err := r.ReadCommand(); err != nil {
		t.Fatal(err)
	}
	if _, err := r.ReadCommand(); err != io.EOF {
		t.Fatalf("between commands: %v", err)
	}
	for _, in := range []string{"a NO", "a LOGIN {5}\r\nab", "a LOGIN \"x", "a FOO bar"} {
		r, _ := newReader(in)
		if _, err := r.ReadCommand(); !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("%q: %v", in, err)
		}
	}
}

// TestAppend reads MULTIAPPEND messages, streaming each literal.
func TestAppend(t *testing.T) {
	big := strings.Repeat("x", 1<<20)
	in := "a APPEND INBOX (\\Seen) \" 3-Dec-2026 10:00:00 +0200\" {5}\r\nhello {" + "1048576+}\r\n" + big + " UTF8 (~{3}\r\na\x00b) ~{2}\r\n\x00\x00\r\nb NOOP\r\n"
	r, c := newReader(in)
	r.AppendLimit = 2 << 20
	cmd, err := r.ReadCommand()
	if err != nil || cmd.Name != "APPEND" || cmd.Args.(*MailboxArgs).Mailbox != "INBOX" {
		t.Fatalf("%v %v", cmd, err)
	}
	m, err := r.NextAppend()
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(m.Body)
	want := time.Date(2026, 12, 3, 10, 0, 0, 0, time.FixedZone("", 7200))
	if string(body) != "hello" || !m.Date.Equal(want) || !reflect.DeepEqual(m.Flags, []goimap.Flag{goimap.FlagSeen}) || c.n != 1 || m.Binary || m.UTF8 {
		t.Fatalf("first message %q %v %v, %d continuations", body, m.Date, m.Flags, c.n)
	}
	m, err = r.NextAppend()
	if err != nil || m.Size != 1<<20 || m.Flags != nil || !m.Date.IsZero() {
		t.Fatalf("second: %+v %v", m, err)
	}
	// Left unread: the Reader drops it.
	m, err = r.NextAppend()
	if err != nil || !m.UTF8 || !m.Binary || c.n != 2 {
		t.Fatalf("third: %+v %v", m, err)
	}
	if body, _ := io.ReadAll(m.Body); string(body) != "a\x00b" {
		t.Fatalf("literal8 %q", body)
	}
	m, err = r.NextAppend()
	if err != nil || m.UTF8 || !m.Binary || m.Size != 2 {
		t.Fatalf("fourth: %+v %v", m, err)
	}
	if m, err := r.NextAppend(); m != nil || err != nil {
		t.Fatalf("end: %v %v", m, err)
	}
	if cmd, err := r.ReadCommand(); err != nil || cmd.Tag != "b" {
		t.Fatalf("next: %v %v", cmd, err)
	}
}

// TestAppendStreams: a 10 MiB message streams through the bufio.Reader's
// buffer: reading it allocates a small constant, not its size.
func TestAppendStreams(t *testing.T) {
	const size = 10 << 20
	in := io.MultiReader(strings.NewReader("a APPEND INBOX {10485760}\r\n"), io.LimitReader(zeros{}, size), strings.NewReader("\r\nb NOOP\r\n"))
	br := bufio.NewReaderSize(in, 4096)
	r := NewReader(br, Limits{}, &continuer{})
	if _, err := r.ReadCommand(); err != nil {
		t.Fatal(err)
	}
	m, err := r.NextAppend()
	if err != nil || m.Size != size {
		t.Fatal(m, err)
	}
	// AllocsPerRun runs the function twice: each reads half the body.
	var n int64
	allocs := testing.AllocsPerRun(1, func() {
		buf := make([]byte, 512) // stays on the stack
		for half := n + size/2; n < half; {
			k, err := m.Body.Read(buf)
			n += int64(k)
			if err != nil {
				t.Fatal(err)
			}
		}
	})
	if _, err := m.Body.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("past the end: %v", err)
	}
	if n != size {
		t.Fatalf("read %d bytes", n)
	}
	if allocs > 10 {
		t.Fatalf("%v allocations reading a 10 MiB message", allocs)
	}
	if br.Size() != 4096 {
		t.Fatalf("buffer grew to %d", br.Size())
	}
	if m, err := r.NextAppend(); m != nil || err != nil {
		t.Fatalf("end: %v %v", m, err)
	}
	if cmd, err := r.ReadCommand(); err != nil || cmd.Tag != "b" {
		t.Fatalf("next: %v %v", cmd, err)
	}
}

// zeros is an endless stream of "0".
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = '0'
	}
	return len(p), nil
}

// TestAppendRefused: over the limit, a synchronizing literal is refused
// through the Continuer and a non-synchronizing one dropped; a command
// the server refuses before reading its message is dropped by the next
// ReadCommand; a NUL in a literal is BAD.
func TestAppendRefused(t *testing.T) {
	r, c := newReader("a APPEND INBOX {50}\r\nb NOOP\r\n")
	r.AppendLimit = 10
	r.ReadCommand()
	if _, err := r.NextAppend(); !errors.Is(err, ErrRefused) {
		t.Fatalf("over the limit: %v", err)
	}
	if c.n != 0 || len(c.refused) != 1 || c.refused[0].Type != "NO" || c.refused[0].Code != "TOOBIG" || c.refused[0].Text != "Message of 50 bytes over the limit of 10" {
		t.Fatalf("over the limit: %d continuations, refused %v", c.n, c.refused)
	}
	if cmd, err := r.ReadCommand(); err != nil || cmd.Tag != "b" {
		t.Fatalf("next: %v %v", cmd, err)
	}

	// MULTIAPPEND, the second message over the limit, non-synchronizing.
	r, c = newReader("a APPEND INBOX {3+}\r\nabc {50+}\r\n" + strings.Repeat("z", 50) + " {3+}\r\nxyz\r\nb NOOP\r\n")
	r.AppendLimit = 10
	r.ReadCommand()
	if m, err := r.NextAppend(); err != nil || m.Size != 3 {
		t.Fatalf("first: %v %v", m, err)
	}
	var e *Error
	if _, err := r.NextAppend(); !errors.As(err, &e) || e.Type != "NO" || e.Code != "TOOBIG" {
		t.Fatalf("second over the limit: %v", err)
	}
	if cmd, err := r.ReadCommand(); err != nil || cmd.Tag != "b" || len(c.refused) != 0 {
		t.Fatalf("next: %v %v", cmd, err)
	}

	for _, in := range []string{
		"a APPEND Nowhere {5}\r\n",
		"a APPEND Nowhere (\\Seen) {5+}\r\nhello {3}\r\n",
		"a APPEND Nowhere ~{5+}\r\nhello UTF8 (~{3+}\r\nabc)\r\n",
	} {
		r, c = newReader(in + "b NOOP\r\n")
		r.ReadCommand()
		if cmd, err := r.ReadCommand(); err != nil || cmd.Tag != "b" || c.n != 0 || len(c.refused) != 0 {
			t.Fatalf("%q unread: %v %v, %d continuations, %d refusals", in, cmd, err, c.n, len(c.refused))
		}
	}

	r, _ = newReader("a APPEND INBOX {5+}\r\nab\x00cd {3+}\r\nxyz\r\nb NOOP\r\n")
	r.ReadCommand()
	m, err := r.NextAppend()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(m.Body); !errors.As(err, &e) {
		t.Fatalf("NUL: %v", err)
	}
	if _, err := r.NextAppend(); !errors.As(err, &e) {
		t.Fatalf("after the NUL: %v", err)
	}
	if cmd, err := r.ReadCommand(); err != nil || cmd.Tag != "b" {
		t.Fatalf("next: %v %v", cmd, err)
	}

	for in, text := range map[string]string{
		"a APPEND INBOX\r\n":                          "Expected SP after the mailbox name, got the end of the line",
		"a APPEND INBOX (\\Seen)\r\n":                 "Expected SP after the flags, got the end of the line",
		"a APPEND INBOX \"1-Jan-2026\" {1+}\r\nx\r\n": `Invalid date-time "1-Jan-2026" (want "dd-Mon-yyyy hh:mm:ss +zzzz")`,
		"a APPEND INBOX UTF8 ({1+}\r\nx)\r\n":         `Expected "~{" in UTF8 (...)`,
		"a APPEND INBOX UTF9 {1+}\r\nx\r\n":           "Expected UTF8 or a literal, got UTF9",
		"a APPEND INBOX {1+}\r\nx{1+}\r\ny\r\n":       "Expected SP or CRLF after the message, got \"{\"",
	} {
		r, _ = newReader(in + "b NOOP\r\n")
		r.ReadCommand()
		var err error
		for range 3 {
			if _, err = r.NextAppend(); err != nil {
				break
			}
		}
		if !errors.As(err, &e) || e.Text != text {
			t.Errorf("%q: %v, want %q", in, err, text)
		}
		if cmd, err := r.ReadCommand(); err != nil || cmd.Tag != "b" {
			t.Errorf("%q: next: %v %v", in, cmd, err)
		}
	}
}

func TestIdleAndAuthLines(t *testing.T) {
	r, _ := newReader("done\r\nDONE?\r\nAGE=\r\n=\r\n*\r\n!!\r\n" + strings.Repeat("A", 70000) + "\r\nb NOOP\r\n")
	if err := r.ReadIdleDone(); err != nil {
		t.Fatal(err)
	}
	var e *Error
	if err := r.ReadIdleDone(); !errors.As(err, &e) || e.Text != "Expected DONE to end IDLE" {
		t.Fatalf("not DONE: %v", err)
	}
	if s, err := r.ReadAuthLine(); err != nil || s != "\x00a" {
		t.Fatalf("auth line %q %v", s, err)
	}
	if s, err := r.ReadAuthLine(); err != nil || s != "" {
		t.Fatalf("empty auth line %q %v", s, err)
	}
	if _, err := r.ReadAuthLine(); !errors.Is(err, ErrAuthCancelled) {
		t.Fatalf("cancel: %v", err)
	}
	if _, err := r.ReadAuthLine(); !errors.As(err, &e) || e.Text != "Invalid base64 in the SASL response" {
		t.Fatalf("bad base64: %v", err)
	}
	if _, err := r.ReadAuthLine(); !errors.As(err, &e) || e.Code != "LIMIT" {
		t.Fatalf("overlong: %v", err)
	}
	if cmd, err := r.ReadCommand(); err != nil || cmd.Tag != "b" {
		t.Fatalf("next: %v %v", cmd, err)
	}
}

func TestUTF8Mode(t *testing.T) {
	r, _ := newReader("a SELECT \"Entwürfe\"\r\nb SELECT \"\xff\"\r\nc SELECT Entw&APw-rfe\r\nd LOGIN \"Grüße\" x\r\n")
	r.SetUTF8(true)
	cmd, err := r.ReadCommand()
	if err != nil || cmd.Args.(*SelectArgs).Mailbox != "Entwürfe" {
		t.Fatalf("%v %v", cmd, err)
	}
	var e *Error
	if _, err := r.ReadCommand(); !errors.As(err, &e) || e.Text != "Invalid UTF-8 in a quoted string" {
		t.Fatalf("invalid UTF-8: %v", err)
	}
	// Modified UTF-7 is not decoded in UTF-8 mode.
	if cmd, err := r.ReadCommand(); err != nil || cmd.Args.(*SelectArgs).Mailbox != "Entw&APw-rfe" {
		t.Fatalf("%v %v", cmd, err)
	}
	if cmd, err := r.ReadCommand(); err != nil || cmd.Args.(*LoginArgs).User != "Grüße" {
		t.Fatalf("%v %v", cmd, err)
	}
}

// fetchCommand is a Thunderbird-like UID FETCH of the headers it lists.
const fetchCommand = "a UID FETCH 1:* (UID FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[HEADER.FIELDS (FROM TO CC BCC SUBJECT DATE MESSAGE-ID PRIORITY X-PRIORITY REFERENCES NEWSGROUPS IN-REPLY-TO CONTENT-TYPE REPLY-TO)])\r\n"

// BenchmarkReadFetch parses fetchCommand with ReadCommand against the
// baseline of bufio.Reader.ReadSlice of the same line, and reports the
// ratio.
func BenchmarkReadFetch(b *testing.B) {
	const batch = 1000
	stream := []byte(strings.Repeat(fetchCommand, batch))
	src := bytes.NewReader(stream)
	measure := func(b *testing.B, one func(br *bufio.Reader) error) float64 {
		br := bufio.NewReader(src)
		b.SetBytes(int64(len(fetchCommand)))
		b.ReportAllocs()
		b.ResetTimer()
		for i := range b.N {
			if i%batch == 0 {
				src.Reset(stream)
				br.Reset(src)
			}
			if err := one(br); err != nil {
				b.Fatal(err)
			}
		}
		return float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	}
	var base, parse float64
	b.Run("ReadSlice", func(b *testing.B) {
		base = measure(b, func(br *bufio.Reader) error {
			_, err := br.ReadSlice('\n')
			return err
		})
	})
	b.Run("ReadCommand", func(b *testing.B) {
		var r *Reader
		var last *bufio.Reader
		parse = measure(b, func(br *bufio.Reader) error {
			if br != last {
				r, last = NewReader(br, Limits{}, &continuer{}), br
			}
			cmd, err := r.ReadCommand()
			if err == nil && cmd.Name != "FETCH" {
				err = errors.New("not a FETCH")
			}
			return err
		})
		if base > 0 {
			b.ReportMetric(parse/base, "ratio_to_readslice")
		}
	})
}

// signalContinuer tells of each continuation request on a channel.
type signalContinuer chan string

func (c signalContinuer) Continue(text string) error  { c <- text; return nil }
func (c signalContinuer) Refuse(string, *Error) error { c <- "refused"; return nil }

// TestNoReadAhead: the Reader asks for a synchronizing literal having
// read no byte past its announcement, whatever comes before it (a client
// sends nothing more until the continuation): no look-ahead for CHARSET,
// RETURN or UTF8 waits for bytes that will not come.
func TestNoReadAhead(t *testing.T) {
	for _, tc := range []struct{ before, after string }{
		{"a SEARCH CC {5}\n", "a@b.c\r\n"},
		{"a SEARCH C {5}\n", "a@b.c\r\n"}, // not a key, but the BAD must come
		{"a SEARCH R {5}\n", "a@b.c\r\n"},
		{"a SORT (DATE) UTF-8 CC {1}\n", "x\r\n"},
		{"a APPEND INBOX {3}\n", "abc\r\n"},
		{"a APPEND INBOX (\\Seen) {3}\r\n", "abc\r\n"},
		{"a LOGIN {1}\n", "x y\r\n"},
	} {
		pr, pw := io.Pipe()
		c := make(signalContinuer, 4)
		r := NewReader(bufio.NewReader(pr), Limits{}, c)
		done := make(chan error, 1)
		go func() {
			cmd, err := r.ReadCommand()
			if err == nil && cmd.Name == "APPEND" {
				var m *AppendMessage
				if m, err = r.NextAppend(); err == nil {
					_, err = io.Copy(io.Discard, m.Body)
				}
			}
			done <- err
		}()
		go pw.Write([]byte(tc.before))
		select {
		case <-c:
		case err := <-done:
			var e *Error
			if !errors.As(err, &e) {
				t.Errorf("%q: %v", tc.before, err)
			}
			pw.Close()
			continue
		case <-time.After(2 * time.Second):
			t.Errorf("%q: no continuation: the Reader waits for more", tc.before)
			pw.Close()
			continue
		}
		go pw.Write([]byte(tc.after))
		select {
		case err := <-done:
			var e *Error
			if err != nil && !errors.As(err, &e) {
				t.Errorf("%q: %v", tc.before, err)
			}
		case <-time.After(2 * time.Second):
			t.Errorf("%q: the command never ends", tc.before)
		}
		pw.Close()
	}
}

// TestSmallBuffer: tokens, quoted strings and literals longer than the
// bufio.Reader's buffer read whole, and the line limit holds across it.
func TestSmallBuffer(t *testing.T) {
	long := strings.Repeat("abcdefghij", 10)
	in := "a LOGIN " + long + " \"" + long + `\"\\` + long + "\"\r\n" +
		"b LOGIN \"" + long + "\" {100+}\r\n" + long + "\r\n" +
		"c SELECT \"" + strings.Repeat("x", 500) + "\"\r\n" +
		"d NOOP\r\n"
	r := NewReader(bufio.NewReaderSize(strings.NewReader(in), 16), Limits{MaxLine: 400}, &continuer{})
	cmd, err := r.ReadCommand()
	if err != nil || cmd.Args.(*LoginArgs).User != long || cmd.Args.(*LoginArgs).Password != long+`"\`+long {
		t.Fatalf("a: %v %v", cmd, err)
	}
	cmd, err = r.ReadCommand()
	if err != nil || cmd.Args.(*LoginArgs).User != long || cmd.Args.(*LoginArgs).Password != long {
		t.Fatalf("b: %v %v", cmd, err)
	}
	var e *Error
	if _, err := r.ReadCommand(); !errors.As(err, &e) || e.Code != "LIMIT" {
		t.Fatalf("c: %v", err)
	}
	if cmd, err := r.ReadCommand(); err != nil || cmd.Tag != "d" {
		t.Fatalf("d: %v %v", cmd, err)
	}
}

// TestAppendDates: an APPEND's date-time with its day as two digits, a
// space and a digit (RFC 9051), or a lone digit (as some clients send).
func TestAppendDates(t *testing.T) {
	want := time.Date(1994, 2, 7, 21, 52, 25, 0, time.FixedZone("", -8*3600))
	for _, d := range []string{"07-Feb-1994 21:52:25 -0800", " 7-Feb-1994 21:52:25 -0800", "7-feb-1994 21:52:25 -0800"} {
		r, _ := newReader("a APPEND INBOX \"" + d + "\" {1+}\r\nx\r\n")
		if _, err := r.ReadCommand(); err != nil {
			t.Fatal(err)
		}
		m, err := r.NextAppend()
		if err != nil || !m.Date.Equal(want) {
			t.Errorf("%q: %v, %v", d, m, err)
		}
	}
	for _, d := range []string{"7-Feb-1994 21:52:25", "07-Feb-1994 24:00:00 -0800", "07-Feb-1994 21:52:25 0800", "30-Feb-1994 21:52:25 -0800"} {
		r, _ := newReader("a APPEND INBOX \"" + d + "\" {1+}\r\nx\r\nb NOOP\r\n")
		r.ReadCommand()
		var e *Error
		if _, err := r.NextAppend(); !errors.As(err, &e) || !strings.HasPrefix(e.Text, "Invalid date-time") {
			t.Errorf("%q: %v", d, err)
		}
		if cmd, err := r.ReadCommand(); err != nil || cmd.Tag != "b" {
			t.Errorf("%q: next %v %v", d, cmd, err)
		}
	}
}

// TestReset: after STARTTLS the server checks that nothing is buffered
// (a client that pipelines past it is refused), then reads the new
// stream.
func TestReset(t *testing.T) {
	r, _ := newReader("a STARTTLS\r\nb NOOP\r\n")
	if _, err := r.ReadCommand(); err != nil {
		t.Fatal(err)
	}
	if r.Buffered() == 0 {
		t.Fatal("the pipelined NOOP is not seen as buffered")
	}
	r, _ = newReader("a STARTTLS\r\n")
	if _, err := r.ReadCommand(); err != nil || r.Buffered() != 0 {
		t.Fatalf("%v, %d buffered", err, r.Buffered())
	}
	r.Reset(bufio.NewReader(strings.NewReader("c CAPABILITY\r\n")))
	if cmd, err := r.ReadCommand(); err != nil || cmd.Tag != "c" {
		t.Fatalf("after Reset: %v %v", cmd, err)
	}
	// An APPEND cut by Reset leaves nothing behind.
	r, _ = newReader("a APPEND INBOX {3}\r\n")
	r.ReadCommand()
	r.Reset(bufio.NewReader(strings.NewReader("d NOOP\r\n")))
	if cmd, err := r.ReadCommand(); err != nil || cmd.Tag != "d" {
		t.Fatalf("after Reset in an APPEND: %v %v", cmd, err)
	}
}
