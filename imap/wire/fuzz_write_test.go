package wire

import (
	"bufio"
	"strings"
	"testing"
	"unicode/utf8"
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

// hasCTL reports whether s holds a control character or DEL.
func hasCTL(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] == 0x7F {
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
