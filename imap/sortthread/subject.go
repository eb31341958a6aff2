// Package sortthread orders messages as IMAP's SORT and THREAD commands
// do (RFC 5256, with the DISPLAYFROM and DISPLAYTO keys of RFC 5957): the
// base subject, the sort keys and their comparison, and the ORDEREDSUBJECT
// and REFERENCES threading algorithms.
//
// It works on what a mail index keeps of each message (Message: dates,
// size, subject, first addresses, Message-ID, In-Reply-To, References),
// so that sorting or threading a large folder opens no message body. The
// strings compare with the i;ascii-casemap collation, RFC 5256's default:
// octet by octet, ASCII letters folded to upper case.
package sortthread

import "strings"

// BaseSubject returns the base subject of subject (RFC 5256 §2.1), and
// whether the message is a reply or a forward by its subject (a "Re:",
// "Fw:", "Fwd:" leader, a "(fwd)" trailer or a "[fwd: ...]" wrapper was
// removed), as the
// REFERENCES algorithm needs. subject must already be decoded from RFC
// 2047 encoded-words; invalid UTF-8 is kept as it is.
func BaseSubject(subject string) (base string, replyOrForward bool) {
	// Step 1: white space folded to single spaces (tabs and
	// continuation lines included).
	s := foldSpace(subject)
	for {
		// Step 2: trailers ("(fwd)" and white space) removed.
		for {
			t := strings.TrimRight(s, " ")
			if l := len(t); l >= 5 && strings.EqualFold(t[l-5:], "(fwd)") {
				t, replyOrForward = t[:l-5], true
			}
			if t == s {
				break
			}
			s = t
		}
		// Steps 3 to 5: leaders ("Re:", "[blob] Fwd:", white space)
		// and blobs removed while something remains.
		var refwd bool
		s, refwd = trimLeaders(s)
		replyOrForward = replyOrForward || refwd
		// Step 6: a "[fwd: ...]" wrapper removed, then again from step 2.
		if len(s) >= 6 && strings.EqualFold(s[:5], "[fwd:") && s[len(s)-1] == ']' {
			s, replyOrForward = s[5:len(s)-1], true
			continue
		}
		return s, replyOrForward
	}
}

// foldSpace turns every run of white space (SP, HTAB, CR, LF) into one SP.
func foldSpace(s string) string {
	var b strings.Builder
	space := false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case ' ', '\t', '\r', '\n':
			space = true
		default:
			if space {
				b.WriteByte(' ')
				space = false
			}
			b.WriteByte(c)
		}
	}
	if space {
		b.WriteByte(' ')
	}
	return b.String()
}

// trimLeaders removes subj-leaders and subj-blobs from the front of s
// (RFC 5256 §2.1 steps 3 to 5), a blob only when something remains after
// it, and reports whether a subj-refwd was among them:
//
//	subj-leader = (*subj-blob subj-refwd) / WSP
//	subj-refwd  = ("re" / ("fw" ["d"])) *WSP [subj-blob] ":"
//
// It takes time linear in what it removes: each pass removes all that it
// reads. Blobs not followed by a subj-refwd are still not followed by one
// when the first of them is gone, so they are removed together.
func trimLeaders(s string) (string, bool) {
	refwd := false
	for {
		s = strings.TrimLeft(s, " ")
		blobs := 0
		last := 0 // where the last blob starts
		rest := s
		for {
			t := trimBlob(rest)
			if t == rest {
				break
			}
			last = len(s) - len(rest)
			blobs++
			rest = t
		}
		if t, ok := trimRefwd(rest); ok {
			s, refwd = t, true
			continue
		}
		switch {
		case blobs == 0:
			return s, refwd
		case rest != "":
			s = rest // rest starts with neither a blob nor a leader
		default:
			return s[last:], refwd // the last blob is all there is
		}
	}
}

// trimRefwd removes a subj-refwd from the front of s, or returns false.
func trimRefwd(s string) (string, bool) {
	var rest string
	switch {
	case hasPrefixFold(s, "re"):
		rest = s[2:]
	case hasPrefixFold(s, "fwd"):
		rest = s[3:]
	case hasPrefixFold(s, "fw"):
		rest = s[2:]
	default:
		return s, false
	}
	rest = trimBlob(strings.TrimLeft(rest, " "))
	if !strings.HasPrefix(rest, ":") {
		return s, false
	}
	return rest[1:], true
}

// trimBlob removes one subj-blob ("[" *BLOBCHAR "]" *WSP, BLOBCHAR being
// any octet but "[" and "]") from the front of s, or returns s.
func trimBlob(s string) string {
	if !strings.HasPrefix(s, "[") {
		return s
	}
	for i := 1; i < len(s); i++ {
		switch s[i] {
		case '[':
			return s
		case ']':
			return strings.TrimLeft(s[i+1:], " ")
		}
	}
	return s
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

func upper(c byte) byte {
	if 'a' <= c && c <= 'z' {
		return c - 'a' + 'A'
	}
	return c
}

// foldKey is s with its ASCII letters in upper case: strings compare with
// the i;ascii-casemap collation as their foldKeys compare octet by octet.
// It allocates only when s has a lower-case letter.
func foldKey(s string) string {
	i := 0
	for i < len(s) && !('a' <= s[i] && s[i] <= 'z') {
		i++
	}
	if i == len(s) {
		return s
	}
	b := []byte(s)
	for ; i < len(b); i++ {
		b[i] = upper(b[i])
	}
	return string(b)
}
