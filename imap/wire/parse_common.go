package wire

import (
	"strings"
	"time"
	"unicode/utf8"

	goimap "github.com/emersion/go-imap/v2"
)

// mailbox reads a mailbox name: an astring decoded from modified UTF-7
// (or UTF-8 after SetUTF8), INBOX in any case made "INBOX".
func (r *Reader) mailbox() string {
	raw := r.astring("a mailbox name")
	return r.mailboxName(raw)
}

func (r *Reader) mailboxName(raw string) string {
	name := raw
	if r.utf8 {
		if err := checkUTF8Name(raw); err != nil {
			r.fail("%s", capitalize(err.Error()))
		}
	} else {
		var err error
		if name, err = DecodeMailbox(raw); err != nil {
			r.fail("%s", capitalize(err.Error()))
		}
	}
	if strings.EqualFold(name, "INBOX") {
		return "INBOX"
	}
	return name
}

// checkUTF8Name checks a UTF-8 mailbox name: valid UTF-8 without control
// characters.
func checkUTF8Name(s string) error {
	if !utf8.ValidString(s) {
		return nameError("not UTF-8")
	}
	for _, c := range s {
		if c < 0x20 || c == 0x7F || c >= 0x80 && c < 0xA0 {
			return nameError("control character")
		}
	}
	return nil
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// pattern reads a LIST pattern: list-mailbox (atom of list-chars, which
// include "%" and "*") or a string, decoded as a mailbox name is.
func (r *Reader) pattern() string {
	var raw string
	switch r.peek() {
	case '"', '{':
		raw = r.str("a LIST pattern")
	default:
		raw = r.token("a LIST pattern", func(c byte) bool { return isAStringChar(c) || c == '%' || c == '*' })
	}
	return r.mailboxName(raw)
}

// flag reads a flag: \System, a keyword, and \* if wildcard.
func (r *Reader) flag(wildcard bool) goimap.Flag {
	defer func() { r.last = "the flag" }()
	if r.maybe('\\') {
		if wildcard && r.maybe('*') {
			return goimap.FlagWildcard
		}
		return goimap.Flag(`\` + r.atom("a flag name after \\"))
	}
	return goimap.Flag(r.atom("a flag"))
}

// flagList reads a parenthesized list of flags, possibly empty.
func (r *Reader) flagList() []goimap.Flag {
	flags := []goimap.Flag{}
	r.list("a flag list", true, func() { flags = append(flags, r.flag(false)) })
	return flags
}

// seqSet reads a sequence set, or "$" (SEARCHRES) if dollar.
func (r *Reader) numSet(uid, dollar bool) goimap.NumSet {
	defer func() { r.last = "the sequence set" }()
	if dollar && r.maybe('$') {
		return goimap.SearchRes()
	}
	var seq goimap.SeqSet
	var uids goimap.UIDSet
	n := 0
	for {
		lo := r.seqNumber()
		hi := lo
		if r.maybe(':') {
			hi = r.seqNumber()
		}
		if n++; n > r.lim.MaxSetRanges {
			r.failCode("BAD", "LIMIT", "More than %d ranges in a sequence set", r.lim.MaxSetRanges)
		}
		// "*" is 0 here, and 4:2 means 2:4 (RFC 9051 section 9).
		if lo != 0 && (hi != 0 && hi < lo) {
			lo, hi = hi, lo
		}
		if lo == 0 && hi != 0 {
			lo, hi = hi, 0
		}
		if uid {
			uids = append(uids, goimap.UIDRange{Start: goimap.UID(lo), Stop: goimap.UID(hi)})
		} else {
			seq = append(seq, goimap.SeqRange{Start: lo, Stop: hi})
		}
		if !r.maybe(',') {
			break
		}
	}
	if uid {
		return uids
	}
	return seq
}

// seqNumber reads a seq-number: a non-zero number, or "*" (0).
func (r *Reader) seqNumber() uint32 {
	if r.maybe('*') {
		return 0
	}
	n := r.number("a sequence number")
	if n == 0 {
		r.fail("Sequence number 0")
	}
	return n
}

// uidSet reads a UID set, without "$".
func (r *Reader) uidSet() goimap.UIDSet {
	return r.numSet(true, false).(goimap.UIDSet)
}

var months = [...]string{"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"}

// date reads a date (d-mmm-yyyy, quoted or not), for SEARCH.
func (r *Reader) date() time.Time {
	var s string
	if r.peek() == '"' {
		r.next()
		s = r.quoted()
	} else {
		s = r.atom("a date")
	}
	t, ok := parseDate(s)
	if !ok {
		r.fail("Invalid date %q (want d-Mon-yyyy)", s)
	}
	return t
}

// parseDate parses d-Mon-yyyy (one or two day digits, the month's name
// in any case).
func parseDate(s string) (time.Time, bool) {
	day, rest, ok := strings.Cut(s, "-")
	if !ok || len(day) < 1 || len(day) > 2 {
		return time.Time{}, false
	}
	mon, year, ok := strings.Cut(rest, "-")
	if !ok || len(year) != 4 {
		return time.Time{}, false
	}
	d, ok1 := atoi(day)
	y, ok2 := atoi(year)
	m := 0
	for i, name := range months {
		if strings.EqualFold(name, mon) {
			m = i + 1
		}
	}
	if !ok1 || !ok2 || m == 0 || d < 1 || d > 31 {
		return time.Time{}, false
	}
	t := time.Date(y, time.Month(m), d, 0, 0, 0, 0, time.UTC)
	if t.Day() != d {
		return time.Time{}, false // 31-Feb
	}
	return t, true
}

func atoi(s string) (int, bool) {
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		n = n*10 + int(s[i]-'0')
	}
	return n, s != ""
}

// dateTime reads an APPEND date-time: "dd-Mon-yyyy hh:mm:ss +zzzz"
// quoted, the day's first digit possibly a space.
func (r *Reader) dateTime() time.Time {
	r.expect('"', "a quoted date-time")
	s := r.quoted()
	t, ok := parseDateTime(s)
	if !ok {
		r.fail("Invalid date-time %q (want \"dd-Mon-yyyy hh:mm:ss +zzzz\")", s)
	}
	return t
}

func parseDateTime(s string) (time.Time, bool) {
	if len(s) == 25 {
		s = " " + s // a one-digit day without its space, as some clients send
	}
	if len(s) != 26 || s[11] != ' ' || s[14] != ':' || s[17] != ':' || s[20] != ' ' {
		return time.Time{}, false
	}
	d, ok := parseDate(strings.TrimLeft(s[:11], " "))
	if !ok {
		return time.Time{}, false
	}
	hh, ok1 := atoi(s[12:14])
	mm, ok2 := atoi(s[15:17])
	ss, ok3 := atoi(s[18:20])
	zh, ok4 := atoi(s[22:24])
	zm, ok5 := atoi(s[24:26])
	if !ok1 || !ok2 || !ok3 || !ok4 || !ok5 || hh > 23 || mm > 59 || ss > 60 || zm > 59 || s[21] != '+' && s[21] != '-' {
		return time.Time{}, false
	}
	off := zh*3600 + zm*60
	if s[21] == '-' {
		off = -off
	}
	return time.Date(d.Year(), d.Month(), d.Day(), hh, mm, ss, 0, time.FixedZone("", off)), true
}
