package imap

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	goimap "github.com/emersion/go-imap/v2"
	gomessage "github.com/emersion/go-message"
	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"
)

// SEARCH (RFC 3501 section 6.4.4, RFC 9051 section 6.4.4, and MODSEQ from
// RFC 7162 section 3.1.5), evaluated one message at a time: the server
// walks the folder's index and calls matchSearch for each message, with the
// criteria go-imap decoded.
//
// Keys on the index (sequence numbers, UIDs, flags, INTERNALDATE, size,
// MODSEQ) are checked first; the message is opened only when a key needs
// its header (HEADER, FROM, TO, CC, BCC, SUBJECT, SENTSINCE, SENTBEFORE,
// SENTON) or its text (BODY, TEXT), and read only as far as needed: the
// header alone for header keys, the body once for all text keys together.
// See searchtext.go for how text is matched.

// searchMessage is what matchSearch knows of one message.
type searchMessage struct {
	SeqNum uint32
	UID    goimap.UID
	// Flags are the message's flags and keywords, with \Recent when the
	// session counts the message as recent.
	Flags []goimap.Flag
	// InternalDate is compared by its date in its own location: pass it in
	// the location the server writes INTERNALDATE in.
	InternalDate time.Time
	Size         int64  // RFC822.SIZE
	ModSeq       uint64 // the message's MODSEQ (CONDSTORE)
	// Open returns the raw RFC 5322 message. matchSearch calls it at most
	// once, only when a key needs the header or the text, and closes what
	// it returns before returning.
	Open func() (io.ReadCloser, error)
}

// errDynamicSet reports a sequence or UID set that still holds "*".
var errDynamicSet = errors.New("imap: search: number set with * not resolved")

// matchSearch reports whether m satisfies c.
//
// The server resolves number sets before the search: "*" in c.SeqNum and
// c.UID (at any depth, in Not and Or too) must be replaced by the number
// of messages or the highest UID of the mailbox ("n:*" by "n:max", or
// "max:n" when n > max, RFC 3501 section 9), or matchSearch fails with
// errDynamicSet. The SEARCHRES marker "$" (goimap.SearchRes) counts as
// dynamic: replace it with the saved result (an empty set when nothing was
// saved, RFC 5182).
//
// go-imap gives LARGER 0 and SMALLER 0 as 0, meaning no limit, so SMALLER
// 0 matches every message instead of none.
//
// Errors are those of m.Open and of reading the message; a malformed
// message is never an error (it is searched as well as it can be parsed).
func matchSearch(m *searchMessage, c *goimap.SearchCriteria) (bool, error) {
	s := &searchState{m: m, root: c}
	defer s.close()
	return s.match(c)
}

// needsBody reports whether evaluating c may need the message itself (its
// header or its text) and not only what the index holds. When it is false,
// matchSearch never calls Open.
func needsBody(c *goimap.SearchCriteria) bool {
	if len(c.Header) > 0 || len(c.Body) > 0 || len(c.Text) > 0 ||
		!c.SentSince.IsZero() || !c.SentBefore.IsZero() {
		return true
	}
	for i := range c.Not {
		if needsBody(&c.Not[i]) {
			return true
		}
	}
	for i := range c.Or {
		if needsBody(&c.Or[i][0]) || needsBody(&c.Or[i][1]) {
			return true
		}
	}
	return false
}

// searchState is one matchSearch: the message, opened at most once.
type searchState struct {
	m *searchMessage

	opened bool
	rc     io.ReadCloser
	src    *sourceReader
	br     *bufio.Reader // the message after its header
	header textproto.Header
	err    error // of opening or reading the header, returned every time

	root  *goimap.SearchCriteria // whose terms a body scan looks for
	found map[string]bool        // the folded terms found in the body, once scanned
}

func (s *searchState) close() {
	if s.rc != nil {
		s.rc.Close()
	}
}

// match evaluates c: the keys on the index first, then the subcriteria
// that need only the index, then the header keys, the text keys and the
// remaining subcriteria.
func (s *searchState) match(c *goimap.SearchCriteria) (bool, error) {
	if ok, err := s.matchIndex(c); !ok || err != nil {
		return false, err
	}
	if ok, err := s.matchSub(c, false); !ok || err != nil {
		return false, err
	}
	if ok, err := s.matchHeader(c); !ok || err != nil {
		return false, err
	}
	if ok, err := s.matchText(c); !ok || err != nil {
		return false, err
	}
	return s.matchSub(c, true)
}

// matchIndex checks the keys that need only what the index holds.
func (s *searchState) matchIndex(c *goimap.SearchCriteria) (bool, error) {
	m := s.m
	for _, set := range c.SeqNum {
		if set.Dynamic() {
			return false, errDynamicSet
		}
		if !set.Contains(m.SeqNum) {
			return false, nil
		}
	}
	for _, set := range c.UID {
		if set.Dynamic() {
			return false, errDynamicSet
		}
		if !set.Contains(m.UID) {
			return false, nil
		}
	}
	if !matchDates(m.InternalDate, c.Since, c.Before) {
		return false, nil
	}
	for _, f := range c.Flag {
		if !hasFlag(m.Flags, f) {
			return false, nil
		}
	}
	for _, f := range c.NotFlag {
		if hasFlag(m.Flags, f) {
			return false, nil
		}
	}
	if c.Larger != 0 && m.Size <= c.Larger {
		return false, nil
	}
	if c.Smaller != 0 && m.Size >= c.Smaller {
		return false, nil
	}
	// One MODSEQ per message: RFC 7162 says to ignore the entry name and
	// type then.
	if c.ModSeq != nil && m.ModSeq < c.ModSeq.ModSeq {
		return false, nil
	}
	return true, nil
}

// matchSub checks c.Not and c.Or: those that need the message when
// withBody is set, the others when it is not.
func (s *searchState) matchSub(c *goimap.SearchCriteria, withBody bool) (bool, error) {
	for i := range c.Not {
		if needsBody(&c.Not[i]) != withBody {
			continue
		}
		ok, err := s.match(&c.Not[i])
		if err != nil || ok {
			return false, err
		}
	}
	for i := range c.Or {
		or := &c.Or[i]
		if (needsBody(&or[0]) || needsBody(&or[1])) != withBody {
			continue
		}
		ok, err := s.match(&or[0])
		if err == nil && !ok {
			ok, err = s.match(&or[1])
		}
		if err != nil || !ok {
			return false, err
		}
	}
	return true, nil
}

// matchHeader checks HEADER (FROM, TO... are HEADER keys in go-imap) and
// SENTSINCE/SENTBEFORE.
func (s *searchState) matchHeader(c *goimap.SearchCriteria) (bool, error) {
	if len(c.Header) == 0 && c.SentSince.IsZero() && c.SentBefore.IsZero() {
		return true, nil
	}
	h, err := s.readHeader()
	if err != nil {
		return false, err
	}
	for _, hc := range c.Header {
		if !matchHeaderField(h, hc.Key, hc.Value) {
			return false, nil
		}
	}
	if !c.SentSince.IsZero() || !c.SentBefore.IsZero() {
		mh := mail.Header{Header: gomessage.Header{Header: h}}
		sent, err := mh.Date()
		if err != nil || sent.IsZero() {
			return false, nil // no usable Date: never matches SENT*
		}
		if !matchDates(sent, c.SentSince, c.SentBefore) {
			return false, nil
		}
	}
	return true, nil
}

// matchText checks BODY and TEXT.
func (s *searchState) matchText(c *goimap.SearchCriteria) (bool, error) {
	for _, term := range c.Text {
		h, err := s.readHeader()
		if err != nil {
			return false, err
		}
		if headerContains(h, term) {
			continue
		}
		if ok, err := s.bodyContains(term); err != nil || !ok {
			return false, err
		}
	}
	for _, term := range c.Body {
		if ok, err := s.bodyContains(term); err != nil || !ok {
			return false, err
		}
	}
	return true, nil
}

// readHeader opens the message, if not yet done, and reads its header.
func (s *searchState) readHeader() (textproto.Header, error) {
	if s.opened {
		return s.header, s.err
	}
	s.opened = true
	rc, err := s.m.Open()
	if err != nil {
		s.err = fmt.Errorf("imap: search: open message UID %d: %w", s.m.UID, err)
		return s.header, s.err
	}
	s.rc = rc
	s.src = &sourceReader{r: rc}
	s.br = bufio.NewReader(s.src)
	s.header, _ = textproto.ReadHeader(s.br) // a bad header is a short one
	if s.src.err != nil {
		s.err = fmt.Errorf("imap: search: read message UID %d: %w", s.m.UID, s.src.err)
	}
	return s.header, s.err
}

// matchDates reports whether t's date is on or after since's date and
// before before's date, a zero value meaning no limit. Each date is taken
// in its own time's location, disregarding time and timezone (RFC 3501).
// go-imap decodes SINCE d as Since d, BEFORE d as Before d, and ON d as
// Since d and Before d+24h, all at midnight UTC.
func matchDates(t, since, before time.Time) bool {
	d := day(t)
	if !since.IsZero() && d.Before(day(since)) {
		return false
	}
	if !before.IsZero() && !d.Before(day(before)) {
		return false
	}
	return true
}

// day is t's calendar date, in t's location, as midnight UTC.
func day(t time.Time) time.Time {
	y, m, d := t.Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// hasFlag reports whether flags holds f. Flags and keywords compare case
// insensitively (IMAP atoms).
func hasFlag(flags []goimap.Flag, f goimap.Flag) bool {
	for _, g := range flags {
		if strings.EqualFold(string(g), string(f)) {
			return true
		}
	}
	return false
}

// matchHeaderField reports whether h has a field named key (in any case)
// whose value, MIME-decoded, contains value, case-insensitively; an empty
// value matches any field of that name (RFC 9051).
func matchHeaderField(h textproto.Header, key, value string) bool {
	mh := gomessage.Header{Header: h}
	fields := mh.FieldsByKey(key)
	if value == "" {
		return fields.Len() > 0
	}
	term := foldString(value)
	for fields.Next() {
		v, _ := fields.Text() // on a decoding error, the raw value
		if strings.Contains(foldString(v), term) {
			return true
		}
	}
	return false
}

// headerContains reports whether a field of h, as "Name: value" with the
// value MIME-decoded, contains term, case-insensitively.
func headerContains(h textproto.Header, term string) bool {
	if term == "" {
		return true
	}
	term = foldString(term)
	mh := gomessage.Header{Header: h}
	for fields := mh.Fields(); fields.Next(); {
		v, _ := fields.Text()
		if strings.Contains(foldString(fields.Key()+": "+v), term) {
			return true
		}
	}
	return false
}
