package wire

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	goimap "github.com/emersion/go-imap/v2"
)

// encContinuer lets a Reader read synchronizing literals and refuses
// none: the strings written here are all under the Reader's limits.
type encContinuer struct{}

func (encContinuer) Continue(string) error { return nil }

func (encContinuer) Refuse(tag string, err *Error) error { return err }

// readBack parses cmd with the package's Reader.
func readBack(t *testing.T, cmd string, utf8Mode bool) (*Command, error) {
	t.Helper()
	r := NewReader(bufio.NewReader(strings.NewReader(cmd)), Limits{}, encContinuer{})
	r.SetUTF8(utf8Mode)
	return r.ReadCommand()
}

// hasCTL reports whether s holds a control character (C0, DEL or C1),
// which no mailbox name may (DecodeMailbox refuses them).
func hasCTL(s string) bool {
	for _, r := range s {
		if unicode.IsControl(r) {
			return true
		}
	}
	return false
}

// FuzzWriteString: whatever String, AString and Mailbox are given, what
// they write is a valid string, astring and mailbox by the grammar (a
// strict reader of the test's own), it reads back as what was written,
// and the package's Reader reads it back as a command's arguments.
func FuzzWriteString(f *testing.F) {
	for _, s := range []string{"", "INBOX", "inbox", "NIL", "nil", "Sent Items", "[Gmail]/All Mail", "Entwürfe", "&", "a&b-", `"\`, "a\r\nb", "\x00", "\xff"} {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, s string, utf8Mode bool) {
		if len(s) > 4096 {
			return
		}
		// String.
		out := encOut(t, utf8Mode, func(w *Writer) { w.String(s) })
		if strings.IndexByte(s, 0) >= 0 {
			if !strings.HasPrefix(out, "{") {
				t.Fatalf("String(%q) with NUL = %q, not a literal", s, out)
			}
		} else if got, rest, err := grammarString([]byte(out), utf8Mode); err != nil || len(rest) > 0 || got != s {
			t.Fatalf("String(%q) = %q: read %q, %v, %q left", s, out, got, err, rest)
		}
		// AString.
		aout := encOut(t, utf8Mode, func(w *Writer) { w.AString(s) })
		if strings.IndexByte(s, 0) < 0 {
			got, rest, err := grammarAString([]byte(aout), utf8Mode)
			if err != nil || len(rest) > 0 || got != s {
				t.Fatalf("AString(%q) = %q: read %q, %v, %q left", s, aout, got, err, rest)
			}
			if aout[0] != '"' && aout[0] != '{' && strings.EqualFold(aout, "NIL") {
				t.Fatalf("AString(%q) = NIL", s)
			}
		}
		// Mailbox: a name is valid UTF-8 without controls.
		if utf8.ValidString(s) && !hasCTL(s) {
			mout := encOut(t, utf8Mode, func(w *Writer) { w.Mailbox(s) })
			raw, rest, err := grammarAString([]byte(mout), utf8Mode)
			if err != nil || len(rest) > 0 {
				t.Fatalf("Mailbox(%q) = %q: %v, %q left", s, mout, err, rest)
			}
			want, got := s, raw
			if strings.EqualFold(s, "INBOX") {
				want = "INBOX"
			}
			if !utf8Mode {
				if got, err = DecodeMailbox(raw); err != nil {
					t.Fatalf("Mailbox(%q) = %q: %v", s, mout, err)
				}
			}
			if got != want {
				t.Fatalf("Mailbox(%q) = %q, read back as %q", s, mout, got)
			}
			// The Reader reads it as SELECT's mailbox.
			cmd, err := readBack(t, "a SELECT "+mout+"\r\n", utf8Mode)
			if err != nil {
				t.Fatalf("SELECT %q: %v", mout, err)
			}
			if got := cmd.Args.(*SelectArgs).Mailbox; got != want {
				t.Fatalf("SELECT %q read as %q, want %q", mout, got, want)
			}
		}
		// The Reader reads the astring and the string back as LOGIN's.
		if strings.IndexByte(s, 0) < 0 {
			cmd, err := readBack(t, "a LOGIN "+aout+" "+out+"\r\n", utf8Mode)
			if err != nil {
				t.Fatalf("LOGIN %q %q: %v", aout, out, err)
			}
			if a := cmd.Args.(*LoginArgs); a.User != s || a.Password != s {
				t.Fatalf("LOGIN %q %q read as %q %q", aout, out, a.User, a.Password)
			}
		}
	})
}

// FuzzWriteStatus: a status response or continuation request is one line
// whatever its text, and its code and text come back out of it.
func FuzzWriteStatus(f *testing.F) {
	f.Add("a1", "UIDVALIDITY", "UIDs valid")
	f.Add("", "", "")
	f.Add("x", "TRYCREATE", "no\r\nsuch")
	f.Add("x", "", "[ALERT] fake code")
	f.Fuzz(func(t *testing.T, tag, code, text string) {
		if !isAtomString(tag) && tag != "" || !isAtomString(code) && code != "" {
			return // the caller's tags and codes are atoms
		}
		out := encOut(t, false, func(w *Writer) { w.StatusCode(tag, "NO", code, nil, text) })
		line, ok := strings.CutSuffix(out, "\r\n")
		if !ok || strings.ContainsAny(line, "\r\n\x00") {
			t.Fatalf("%q: not one line", out)
		}
		wantTag := tag
		if tag == "" {
			wantTag = "*"
		}
		rest, ok := strings.CutPrefix(line, wantTag+" NO ")
		if !ok {
			t.Fatalf("%q: no %q", line, wantTag+" NO ")
		}
		if code != "" {
			if rest, ok = strings.CutPrefix(rest, "["+code+"] "); !ok {
				t.Fatalf("%q: no code %q", line, code)
			}
		} else if strings.HasPrefix(rest, "[") {
			t.Fatalf("%q: text reads as a response code", line)
		}
		if rest == "" {
			t.Fatalf("%q: no text", line)
		}
		cout := encOut(t, false, func(w *Writer) { w.Continue(text) })
		if l, ok := strings.CutSuffix(cout, "\r\n"); !ok || !strings.HasPrefix(l, "+ ") || strings.ContainsAny(l, "\r\n\x00") {
			t.Fatalf("Continue(%q) = %q", text, cout)
		}
	})
}

// frameCheck checks that b is one FETCH-like response line: "* " then
// elements spaced by exactly one SP (none after "(" or before ")"),
// atoms, quoted strings and literals valid by the grammar, a section's
// "[...]" with its own elements, parentheses balanced, and CRLF only at
// the very end.
func frameCheck(b []byte, utf8Mode bool) error {
	rest, err := frameLine(b, utf8Mode)
	if err == nil && len(rest) > 0 {
		err = fmt.Errorf("%.30q after the response", rest)
	}
	return err
}

// frameLine checks one untagged response line at the start of b, as
// frameCheck does, and returns what follows its CRLF.
func frameLine(b []byte, utf8Mode bool) ([]byte, error) {
	rest, ok := bytes.CutPrefix(b, []byte("* "))
	if !ok {
		return b, fmt.Errorf(`no "* " at %.20q`, b)
	}
	where := inOther
	if i := bytes.IndexByte(rest, ' '); i > 0 && bytes.HasPrefix(rest[i:], []byte(" FETCH (")) {
		where = inResponse
	}
	rest, err := frameElems(rest, utf8Mode, 0, where, 0)
	if err != nil {
		return rest, err
	}
	rest, ok = bytes.CutPrefix(rest, []byte("\r\n"))
	if !ok {
		return rest, errors.New("no CRLF")
	}
	return rest, nil
}

// Where frameElems is: in the response, at a section's top ("BODY[" to
// "]"), or in a list in a section (a header list, whose astrings may hold
// "[" and "]").
const (
	inResponse = iota // a FETCH response, where "BODY[" opens a section
	inSectionSpec
	inSectionList
	inOther // another response: "[" and "]" are atom characters
)

// frameElems reads SP-separated elements until close (')' or ']', or 0
// for the end of the line), which it does not take. A list may follow a
// list without SP: address lists and a multipart's bodies, "(...)(...)".
func frameElems(b []byte, utf8Mode bool, close byte, where, depth int) ([]byte, error) {
	if depth > 200 {
		return b, errors.New("too deep")
	}
	first, afterList := true, false
	for {
		if len(b) == 0 {
			return b, errors.New("cut short")
		}
		if close != 0 && b[0] == close || close == 0 && b[0] == '\r' {
			return b, nil
		}
		switch {
		case first, afterList && b[0] == '(':
		case b[0] != ' ':
			return b, fmt.Errorf("no SP at %.20q", b)
		default:
			b = b[1:]
		}
		first = false
		afterList = len(b) > 0 && b[0] == '('
		var err error
		if b, err = frameElem(b, utf8Mode, where, depth); err != nil {
			return b, err
		}
	}
}

func frameElem(b []byte, utf8Mode bool, where, depth int) ([]byte, error) {
	if len(b) == 0 {
		return b, errors.New("cut short")
	}
	switch b[0] {
	case '(':
		inner := where
		if where == inSectionSpec {
			inner = inSectionList
		}
		rest, err := frameElems(b[1:], utf8Mode, ')', inner, depth+1)
		if err != nil {
			return rest, err
		}
		return rest[1:], nil
	case '"', '{':
		_, rest, err := grammarString(b, utf8Mode)
		return rest, err
	case '~':
		if len(b) < 2 || b[1] != '{' {
			break // an atom
		}
		b = b[1:]
		end := bytes.Index(b, []byte("}\r\n"))
		if len(b) == 0 || b[0] != '{' || end < 2 {
			return b, errors.New("bad literal8")
		}
		var n int
		fmt.Sscan(string(b[1:end]), &n)
		if len(b) < end+3+n {
			return b, errors.New("literal8 cut short")
		}
		return b[end+3+n:], nil
	}
	i, took := 0, false
	for i < len(b) && b[i] > ' ' && b[i] < 0x7F && b[i] != '(' && b[i] != ')' && b[i] != '"' && b[i] != '{' {
		if b[i] == ']' && where == inSectionSpec {
			break // the section's end
		}
		if b[i] == '[' && where == inResponse {
			// A section: "BODY[" ... "]".
			rest, err := frameElems(b[i+1:], utf8Mode, ']', inSectionSpec, depth+1)
			if err != nil {
				return rest, err
			}
			b, i, took = rest[1:], 0, true
			continue
		}
		i++
	}
	if i == 0 && !took {
		return b, fmt.Errorf("not an element at %.20q", b)
	}
	return b[i:], nil
}

// FuzzWriteFetch: a FETCH response with an ENVELOPE, a BODYSTRUCTURE and
// a section made of any strings is one well-framed response line.
func FuzzWriteFetch(f *testing.F) {
	f.Add("Re: meeting", "Terry Gray", "gray", "cac.washington.edu", "us-ascii", "FROM", "hello", false)
	f.Add("Grüße", "Jürgen", "j", "example.de", "utf-8", "X Y", "a\r\nb", true)
	f.Add("", "", "undisclosed-recipients", "", "", "", "", false)
	f.Add("a\r\n* OK", "\"", "\\", "{3}", ")", "]", "x)", false)
	f.Fuzz(func(t *testing.T, subject, name, mailbox, host, param, field, body string, utf8Mode bool) {
		if strings.ContainsRune(subject+name+mailbox+host+param+field+body, 0) {
			return // no string may hold NUL: the caller's to keep out
		}
		leaf := &goimap.BodyStructureSinglePart{Type: "text", Subtype: "plain", Params: map[string]string{"charset": param, param: name},
			ID: name, Description: subject, Encoding: param, Size: uint32(len(body)), Text: &goimap.BodyStructureText{NumLines: 1},
			Extended: &goimap.BodyStructureSinglePartExt{Disposition: &goimap.BodyStructureDisposition{Value: param, Params: map[string]string{"filename": name}},
				Language: []string{param, host}, Location: host}}
		env := &goimap.Envelope{Subject: subject,
			From:      []goimap.Address{{Name: name, Mailbox: mailbox, Host: host}},
			To:        []goimap.Address{{Mailbox: name}, {Name: name, Mailbox: mailbox, Host: host}, {}},
			InReplyTo: []string{mailbox}, MessageID: host}
		msg := &goimap.BodyStructureSinglePart{Type: "message", Subtype: "rfc822", Size: 10,
			MessageRFC822: &goimap.BodyStructureMessageRFC822{Envelope: env, BodyStructure: leaf, NumLines: 2}}
		bs := &goimap.BodyStructureMultiPart{Subtype: param, Children: []goimap.BodyStructure{leaf, msg},
			Extended: &goimap.BodyStructureMultiPartExt{Params: map[string]string{"boundary": param}, Language: []string{name}, Location: subject}}
		for _, extended := range []bool{false, true} {
			out := encOut(t, utf8Mode, func(w *Writer) {
				fw := w.Fetch(1)
				fw.Envelope(env)
				fw.BodyStructure(bs, extended)
				_ = fw.Section(&goimap.FetchItemBodySection{Part: []int{1}, Specifier: goimap.PartSpecifierHeader, HeaderFields: []string{field, "To"},
					Partial: &goimap.SectionPartial{Offset: 3, Size: 9}}, "", int64(len(body)), strings.NewReader(body))
				fw.End()
			})
			if err := frameCheck([]byte(out), utf8Mode); err != nil {
				t.Fatalf("%v in %q", err, out)
			}
		}
	})
}

// TestFrameCheck: the framing check of FuzzWriteFetch refuses what is
// broken.
func TestFrameCheck(t *testing.T) {
	good := "* 1 FETCH (UID 1 BODY[HEADER.FIELDS (] \"a b\")]<0> {2}\r\nab ENVELOPE ((NIL NIL \"a\" NIL)(NIL NIL NIL NIL)) BINARY[1] ~{1}\r\n\x00)\r\n"
	if err := frameCheck([]byte(good), false); err != nil {
		t.Fatalf("%q: %v", good, err)
	}
	for _, bad := range []string{
		"* 1 FETCH (UID  1)\r\n",
		"* 1 FETCH ( UID 1)\r\n",
		"* 1 FETCH (UID 1\r\n",
		"* 1 FETCH (UID 1))\r\n",
		"* 1 FETCH (BODY[] {3}\r\nab)\r\n",
		"* 1 FETCH (X \"a\r\nb\")\r\n",
		"* 1 FETCH (X \"caf\xc3\xa9\")\r\n",
		"* 1 FETCH (X \"a\"\"b\")\r\n",
		"* 1 FETCH (X \"a\\b\")\r\n",
		"* 1 FETCH (X {1}\r\n\x00)\r\n",
		"* 1 FETCH (X 1)\r\n\r\n",
	} {
		if err := frameCheck([]byte(bad), false); err == nil {
			t.Errorf("%q passed", bad)
		}
	}
}

// FuzzWriteResponses: LIST, LSUB, STATUS, NAMESPACE, QUOTA and QUOTAROOT
// responses of any mailbox name (and name as any other string in them)
// are well-framed lines, as FuzzWriteFetch checks them.
func FuzzWriteResponses(f *testing.F) {
	for _, s := range []string{"INBOX", "[Gmail]/Sent Mail", "Entwürfe", "a\r\nb", "", "NIL", "~peter/mail/台北", "#news.comp"} {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, name string, utf8Mode bool) {
		if strings.IndexByte(name, 0) >= 0 {
			return // no string may hold NUL
		}
		n := uint32(len(name))
		out := encOut(t, utf8Mode, func(w *Writer) {
			for _, delim := range []rune{0, '/', '"', '\\'} {
				w.List(&goimap.ListData{Attrs: []goimap.MailboxAttr{goimap.MailboxAttrHasNoChildren}, Delim: delim, Mailbox: name,
					ChildInfo: &goimap.ListDataChildInfo{Subscribed: true}, OldName: name,
					Status: &goimap.StatusData{Mailbox: name, NumMessages: &n, UIDNext: 7, HighestModSeq: 9}}, false)
				w.Lsub(&goimap.ListData{Delim: delim, Mailbox: name})
			}
			w.Namespace(&goimap.NamespaceData{Personal: []goimap.NamespaceDescriptor{{Prefix: name, Delim: '/'}, {Prefix: name}}, Shared: []goimap.NamespaceDescriptor{{Prefix: name, Delim: '.'}}})
			w.Quota(name, []QuotaResource{{"STORAGE", 1, 2}, {"MESSAGE", 3, 4}})
			w.Quota(name, nil)
			w.QuotaRoot(name, []string{name, ""})
			w.ESearch(&ESearch{Tag: name, HasCount: true})
			w.IDData(&goimap.IDData{Name: name, Version: name})
			w.ID(map[string]string{name: name})
		})
		rest := []byte(out)
		for len(rest) > 0 {
			var err error
			if rest, err = frameLine(rest, utf8Mode); err != nil {
				t.Fatalf("%v at %.60q in %q", err, rest, out)
			}
		}
	})
}
