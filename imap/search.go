package imap

import (
	"bufio"
	"cmp"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	goimap "github.com/emersion/go-imap/v2"
	gomessage "github.com/emersion/go-message"
	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"
)

// SEARCH (RFC 3501 section 6.4.4, RFC 9051 section 6.4.4, and MODSEQ from
// RFC 7162 section 3.1.5). The criteria go-imap decoded are compiled once
// per command (compileSearch) into a tree: chains of OR become one node of
// many alternatives, number sets are resolved and sorted, every node knows
// whether it needs the message itself, and the header and text terms of
// the whole search are gathered and case-folded. Then each message costs
// one walk of the tree (match).
//
// Keys on the index (sequence numbers, UIDs, flags, INTERNALDATE, size,
// MODSEQ) are checked first; the message is opened only when a key needs
// its header (HEADER, FROM, TO, CC, BCC, SUBJECT, SENTSINCE, SENTBEFORE,
// SENTON) or its text (BODY, TEXT), and read only as far as needed: the
// header alone for header keys, the body once for all text keys together.
// The header is parsed and each field MIME-decoded at most once per
// message, and each distinct header key evaluated once, however many keys
// of the search name it. See searchtext.go for how text is matched.
//
// A search may have at most maxSearchKeys keys and maxSearchDepth levels
// of NOT, OR and parenthesized lists inside one another (a chain of OR is
// one level); beyond, it is refused with BAD.

// Bounds of a search program.
const (
	maxSearchKeys  = 4000
	maxSearchDepth = 100
)

// searchMessage is what a search knows of one message.
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
	// Open returns the raw RFC 5322 message. match calls it at most
	// once, only when a key needs the header or the text, and closes what
	// it returns before returning.
	Open func() (io.ReadCloser, error)
}

// errDynamicSet reports a sequence or UID set that still holds "*".
var errDynamicSet = errors.New("imap: search: number set with * not resolved")

// errSearchTooBig and errSearchTooDeep refuse a search beyond the bounds.
var (
	errSearchTooBig  = &goimap.Error{Type: goimap.StatusResponseTypeBad, Code: goimap.ResponseCodeLimit, Text: fmt.Sprintf("Search has more than %d keys", maxSearchKeys)}
	errSearchTooDeep = &goimap.Error{Type: goimap.StatusResponseTypeBad, Code: goimap.ResponseCodeLimit, Text: fmt.Sprintf("Search nested more than %d levels deep", maxSearchDepth)}
)

// searchNumbers resolves the dynamic number sets of a search for the
// client's view of the folder: "*" is the number of messages (MaxSeq) or
// the highest UID (MaxUID), "n:*" is "n:max" or "max:n" when n > max (RFC
// 3501 section 9), and the SEARCHRES marker "$" is Saved (empty when
// nothing was saved, RFC 5182).
type searchNumbers struct {
	MaxSeq, MaxUID uint32
	Saved          goimap.UIDSet
}

// matchSearch reports whether m satisfies c, for a single message: it
// compiles c and matches m. Without searchNumbers, a set with "*" or "$"
// fails with errDynamicSet.
//
// go-imap gives LARGER 0 and SMALLER 0 as 0, meaning no limit, so SMALLER
// 0 matches every message instead of none.
func matchSearch(m *searchMessage, c *goimap.SearchCriteria) (bool, error) {
	s, err := compileSearch(c, nil)
	if err != nil {
		return false, err
	}
	return s.match(m)
}

// needsBody reports whether evaluating c may need the message itself (its
// header or its text) and not only what the index holds. When it is false,
// matching never calls Open.
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

// nodeKind is what a node of a compiled search checks.
type nodeKind uint8

const (
	kAnd     nodeKind = iota // every kid
	kOr                      // some kid
	kNot                     // not kids[0]
	kSeq                     // the sequence number is in set
	kUID                     // the UID is in set
	kDate                    // INTERNALDATE's date in [since, before)
	kFlag                    // has flag
	kNoFlag                  // has not flag
	kLarger                  // size > n
	kSmaller                 // size < n
	kModSeq                  // MODSEQ >= n
	kHeader                  // headers[n] matches
	kSent                    // the Date field's date in [since, before)
	kBody                    // the body text contains terms[n]
	kText                    // the header or the body text contains terms[n]
)

// Costs of a node: what evaluating it may read.
const (
	costIndex  = iota // the index only
	costHeader        // the message's header
	costText          // the message's body
)

// searchNode is one node of a compiled search.
type searchNode struct {
	kind          nodeKind
	cost          int           // the most a node may read: costIndex, costHeader or costText
	kids          []*searchNode // of kAnd, kOr and kNot, cheapest first
	set           numRanges     // of kSeq and kUID
	since, before time.Time     // of kDate and kSent; zero means no limit
	flag          goimap.Flag   // of kFlag and kNoFlag
	n             int64         // of kLarger, kSmaller, kModSeq (as uint64), kHeader, kBody, kText
}

// headerKey is a distinct HEADER key of a search: a field name and a
// case-folded value.
type headerKey struct{ name, value string }

// search is a compiled SEARCH, matched against one message at a time. It
// keeps what it learns of the current message, so it is not safe for
// concurrent use.
type search struct {
	root    *searchNode
	body    bool        // some key needs the message
	terms   []string    // the BODY and TEXT terms, case-folded, distinct, not empty
	headers []headerKey // the distinct HEADER keys

	m      *searchMessage
	opened bool
	rc     io.ReadCloser
	src    *sourceReader
	br     *bufio.Reader // the message after its header
	header textproto.Header
	err    error // of opening or reading the message, returned every time

	fields     []headerField // the header's fields, decoded, once needed
	haveFields bool
	headerMemo []int8       // per headers[i]: 0 not yet known, 1 no, 2 yes
	textMemo   []int8       // per terms[i], in the header: 0 not yet known, 1 no, 2 yes
	scanner    *termScanner // for terms, built for the first body scanned
	found      []bool       // per terms[i], in the body, once scanned
	scanned    bool
	sent       time.Time // the Date field's, zero if none or bad
	haveSent   bool
}

// headerField is one field of a message's header, MIME-decoded, with its
// case-folded forms made when first needed.
type headerField struct {
	key, value  string
	folded      string // value, case-folded
	foldedLine  string // "Key: value", case-folded
	fold, foldL bool

	// Of an address field (isAddressField): its raw value, unfolded, and
	// the case-folded addressStrings of its addresses, once parsed.
	raw       string
	addrs     []string
	haveAddrs bool
}

// isAddressField reports whether the field named key holds addresses, so
// that HEADER and FROM, TO, CC and BCC keys on it match its addresses and
// display names (decoded) as well as its text.
func isAddressField(key string) bool {
	switch strings.ToLower(key) {
	case "from", "sender", "reply-to", "to", "cc", "bcc":
		return true
	}
	return false
}

// addresses returns the case-folded addressStrings of an address field.
func (f *headerField) addresses() []string {
	if !f.haveAddrs {
		f.haveAddrs = true
		for _, a := range addressStrings(parseAddressList(f.raw)) {
			f.addrs = append(f.addrs, foldString(a))
		}
	}
	return f.addrs
}

// compileSearch compiles c. nums resolves "*" and "$"; without it, a set
// holding either fails with errDynamicSet. A search beyond maxSearchKeys
// or maxSearchDepth fails with a BAD *goimap.Error.
func compileSearch(c *goimap.SearchCriteria, nums *searchNumbers) (*search, error) {
	cp := &compiler{s: &search{}, nums: nums, terms: map[string]int{}, headers: map[headerKey]int{}}
	root, err := cp.and(c)
	if err != nil {
		return nil, err
	}
	if searchDepth(root, 0) > maxSearchDepth {
		return nil, errSearchTooDeep
	}
	s := cp.s
	s.root = root
	s.body = root.cost > costIndex
	s.headerMemo = make([]int8, len(s.headers))
	s.textMemo = make([]int8, len(s.terms))
	return s, nil
}

// searchDepth returns the levels of operators of n, counting from d; it stops
// counting past maxSearchDepth.
func searchDepth(n *searchNode, d int) int {
	if len(n.kids) == 0 || d > maxSearchDepth {
		return d
	}
	d++
	deepest := d
	for _, k := range n.kids {
		if deepest > maxSearchDepth {
			break
		}
		deepest = max(deepest, searchDepth(k, d))
	}
	return deepest
}

// compiler turns go-imap's criteria into a search.
type compiler struct {
	s       *search
	nums    *searchNumbers
	keys    int
	terms   map[string]int
	headers map[headerKey]int
}

// leaf adds a key to kids.
func (cp *compiler) leaf(kids []*searchNode, n *searchNode) ([]*searchNode, error) {
	cp.keys++
	if cp.keys > maxSearchKeys {
		return nil, errSearchTooBig
	}
	switch n.kind {
	case kHeader, kSent:
		n.cost = costHeader
	case kBody, kText:
		n.cost = costText
	}
	return append(kids, n), nil
}

// and compiles the keys of c, all of which must match. A single key is
// returned as it is.
func (cp *compiler) and(c *goimap.SearchCriteria) (*searchNode, error) {
	var kids []*searchNode
	var err error
	for _, set := range c.SeqNum {
		var n *searchNode
		if n, err = cp.numbers(set); err == nil {
			kids, err = cp.leaf(kids, n)
		}
		if err != nil {
			return nil, err
		}
	}
	for _, set := range c.UID {
		var n *searchNode
		if n, err = cp.numbers(set); err == nil {
			kids, err = cp.leaf(kids, n)
		}
		if err != nil {
			return nil, err
		}
	}
	add := func(n *searchNode) {
		if err == nil {
			kids, err = cp.leaf(kids, n)
		}
	}
	if !c.Since.IsZero() || !c.Before.IsZero() {
		add(&searchNode{kind: kDate, since: c.Since, before: c.Before})
	}
	for _, f := range c.Flag {
		add(&searchNode{kind: kFlag, flag: f})
	}
	for _, f := range c.NotFlag {
		add(&searchNode{kind: kNoFlag, flag: f})
	}
	if c.Larger != 0 {
		add(&searchNode{kind: kLarger, n: c.Larger})
	}
	if c.Smaller != 0 {
		add(&searchNode{kind: kSmaller, n: c.Smaller})
	}
	// One MODSEQ per message: RFC 7162 says to ignore the entry name and
	// type then.
	if c.ModSeq != nil {
		add(&searchNode{kind: kModSeq, n: int64(c.ModSeq.ModSeq)})
	}
	for _, h := range c.Header {
		k := headerKey{strings.ToLower(h.Key), foldString(h.Value)}
		i, ok := cp.headers[k]
		if !ok {
			i = len(cp.s.headers)
			cp.headers[k] = i
			cp.s.headers = append(cp.s.headers, k)
		}
		add(&searchNode{kind: kHeader, n: int64(i)})
	}
	if !c.SentSince.IsZero() || !c.SentBefore.IsZero() {
		add(&searchNode{kind: kSent, since: c.SentSince, before: c.SentBefore})
	}
	for _, l := range []struct {
		kind  nodeKind
		terms []string
	}{{kBody, c.Body}, {kText, c.Text}} {
		for _, t := range l.terms {
			if t == "" { // an empty term matches every message
				add(&searchNode{kind: kAnd})
				continue
			}
			add(&searchNode{kind: l.kind, n: int64(cp.term(t))})
		}
	}
	if err != nil {
		return nil, err
	}
	for i := range c.Not {
		n, err := cp.and(&c.Not[i])
		if err != nil {
			return nil, err
		}
		kids = append(kids, &searchNode{kind: kNot, kids: []*searchNode{n}, cost: n.cost})
	}
	for i := range c.Or {
		n, err := cp.or(&c.Or[i])
		if err != nil {
			return nil, err
		}
		kids = append(kids, n)
	}
	if len(kids) == 1 {
		return kids[0], nil
	}
	return node(kAnd, kids), nil
}

// or compiles an OR, and the ORs its operands are made of alone (OR a OR
// b c, or OR OR a b c), into one node: a chain of OR is one level however
// long, and compiling it takes no recursion.
func (cp *compiler) or(pair *[2]goimap.SearchCriteria) (*searchNode, error) {
	var kids []*searchNode
	todo := []*goimap.SearchCriteria{&pair[1], &pair[0]}
	for len(todo) > 0 {
		c := todo[len(todo)-1]
		todo = todo[:len(todo)-1]
		if onlyOr(c) {
			todo = append(todo, &c.Or[0][1], &c.Or[0][0])
			continue
		}
		n, err := cp.and(c)
		if err != nil {
			return nil, err
		}
		kids = append(kids, n)
	}
	return node(kOr, kids), nil
}

// onlyOr reports whether c is a single OR and nothing else.
func onlyOr(c *goimap.SearchCriteria) bool {
	return len(c.Or) == 1 && len(c.SeqNum) == 0 && len(c.UID) == 0 && c.Since.IsZero() && c.Before.IsZero() &&
		c.SentSince.IsZero() && c.SentBefore.IsZero() && len(c.Header) == 0 && len(c.Body) == 0 && len(c.Text) == 0 &&
		len(c.Flag) == 0 && len(c.NotFlag) == 0 && c.Larger == 0 && c.Smaller == 0 && len(c.Not) == 0 && c.ModSeq == nil
}

// node makes an AND or OR of kids, cheapest first, so that a message is
// opened only when the keys on the index leave the answer open.
func node(kind nodeKind, kids []*searchNode) *searchNode {
	n := &searchNode{kind: kind, kids: kids}
	slices.SortStableFunc(kids, func(a, b *searchNode) int { return cmp.Compare(a.cost, b.cost) })
	for _, k := range kids {
		n.cost = max(n.cost, k.cost)
	}
	return n
}

// term returns the index of t, case-folded, among the search's terms.
func (cp *compiler) term(t string) int {
	t = foldString(t)
	i, ok := cp.terms[t]
	if !ok {
		i = len(cp.s.terms)
		cp.terms[t] = i
		cp.s.terms = append(cp.s.terms, t)
	}
	return i
}

// numbers compiles a sequence or UID set.
func (cp *compiler) numbers(set goimap.NumSet) (*searchNode, error) {
	kind, maxNum := kSeq, uint32(0)
	if cp.nums != nil {
		maxNum = cp.nums.MaxSeq
	}
	if goimap.IsSearchRes(set) {
		if cp.nums == nil {
			return nil, errDynamicSet
		}
		set = cp.nums.Saved
	}
	var rs []numRange
	switch set := set.(type) {
	case goimap.SeqSet:
		rs = make([]numRange, 0, len(set))
		for _, r := range set {
			rs = append(rs, numRange{r.Start, r.Stop})
		}
	case goimap.UIDSet:
		kind = kUID
		if cp.nums != nil {
			maxNum = cp.nums.MaxUID
		}
		rs = make([]numRange, 0, len(set))
		for _, r := range set {
			rs = append(rs, numRange{uint32(r.Start), uint32(r.Stop)})
		}
	}
	for i, r := range rs {
		if (r.lo == 0 || r.hi == 0) && cp.nums == nil {
			return nil, errDynamicSet
		}
		rs[i].lo, rs[i].hi = staticRange(r.lo, r.hi, maxNum)
	}
	return &searchNode{kind: kind, set: normalizeRanges(rs)}, nil
}

// numRange is a range of numbers, lo <= hi.
type numRange struct{ lo, hi uint32 }

// numRanges is a set of numbers as sorted ranges that neither overlap nor
// touch.
type numRanges []numRange

// normalizeRanges sorts rs and merges the ranges that overlap or touch, in
// place: O(n log n) for n ranges.
func normalizeRanges(rs []numRange) numRanges {
	slices.SortFunc(rs, func(a, b numRange) int { return cmp.Compare(a.lo, b.lo) })
	out := rs[:0]
	for _, r := range rs {
		if n := len(out); n > 0 && uint64(r.lo) <= uint64(out[n-1].hi)+1 {
			out[n-1].hi = max(out[n-1].hi, r.hi)
			continue
		}
		out = append(out, r)
	}
	return out
}

// contains reports whether n is in s: O(log len(s)).
func (s numRanges) contains(n uint32) bool {
	i, _ := slices.BinarySearchFunc(s, n, func(r numRange, n uint32) int {
		if r.hi < n {
			return -1
		}
		if r.lo > n {
			return 1
		}
		return 0
	})
	return i < len(s) && s[i].lo <= n && n <= s[i].hi
}

// match reports whether m satisfies the search.
//
// Errors are those of m.Open and of reading the message; a malformed
// message is never an error (it is searched as well as it can be parsed).
func (s *search) match(m *searchMessage) (bool, error) {
	s.reset(m)
	defer s.closeMessage()
	return s.eval(s.root)
}

// reset forgets the previous message.
func (s *search) reset(m *searchMessage) {
	s.m = m
	s.opened, s.rc, s.src, s.br, s.header, s.err = false, nil, nil, nil, textproto.Header{}, nil
	s.fields, s.haveFields = s.fields[:0], false
	clear(s.headerMemo)
	clear(s.textMemo)
	s.found, s.scanned = nil, false
	s.sent, s.haveSent = time.Time{}, false
}

func (s *search) closeMessage() {
	if s.rc != nil {
		s.rc.Close()
		s.rc = nil
	}
}

// eval evaluates n on the current message.
func (s *search) eval(n *searchNode) (bool, error) {
	m := s.m
	switch n.kind {
	case kAnd:
		for _, k := range n.kids {
			if ok, err := s.eval(k); err != nil || !ok {
				return false, err
			}
		}
		return true, nil
	case kOr:
		for _, k := range n.kids {
			if ok, err := s.eval(k); err != nil || ok {
				return err == nil, err
			}
		}
		return false, nil
	case kNot:
		ok, err := s.eval(n.kids[0])
		return !ok && err == nil, err
	case kSeq:
		return n.set.contains(m.SeqNum), nil
	case kUID:
		return n.set.contains(uint32(m.UID)), nil
	case kDate:
		return matchDates(m.InternalDate, n.since, n.before), nil
	case kFlag:
		return hasFlag(m.Flags, n.flag), nil
	case kNoFlag:
		return !hasFlag(m.Flags, n.flag), nil
	case kLarger:
		return m.Size > n.n, nil
	case kSmaller:
		return m.Size < n.n, nil
	case kModSeq:
		return m.ModSeq >= uint64(n.n), nil
	case kHeader:
		return s.matchHeader(int(n.n))
	case kSent:
		return s.matchSent(n.since, n.before)
	case kBody:
		return s.bodyContains(int(n.n))
	case kText:
		if ok, err := s.headerContains(int(n.n)); err != nil || ok {
			return ok, err
		}
		return s.bodyContains(int(n.n))
	}
	return false, fmt.Errorf("imap: search: unknown node %d", n.kind)
}

// readHeader opens the message, if not yet done, and reads its header.
func (s *search) readHeader() (textproto.Header, error) {
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

// headerFields returns the fields of the message's header, decoded once.
func (s *search) headerFields() ([]headerField, error) {
	if s.haveFields {
		return s.fields, nil
	}
	h, err := s.readHeader()
	if err != nil {
		return nil, err
	}
	s.haveFields = true
	mh := gomessage.Header{Header: h}
	for fields := mh.Fields(); fields.Next(); {
		v, _ := fields.Text() // on a decoding error, the raw value
		f := headerField{key: fields.Key(), value: v}
		if isAddressField(f.key) {
			if raw, err := fields.Raw(); err == nil {
				f.raw = unfoldField(raw)
			}
		}
		s.fields = append(s.fields, f)
	}
	return s.fields, nil
}

// matchHeader reports whether the message has a field named as
// headers[i] (in any case) whose value, MIME-decoded, contains its value,
// case-insensitively; an empty value matches any field of that name (RFC
// 9051). In an address field, the value may also be in an address or a
// display name as parseAddressList reads them (RFC 3501: FROM, TO, CC and
// BCC match the field's addresses), so that "user@domain.org" matches
// "<user (comment)@ (comment) domain.org>" and a decoded name matches
// its encoded words split across a fold.
func (s *search) matchHeader(i int) (bool, error) {
	if v := s.headerMemo[i]; v != 0 {
		return v == 2, nil
	}
	fields, err := s.headerFields()
	if err != nil {
		return false, err
	}
	k := s.headers[i]
	ok := false
	for j := range fields {
		f := &fields[j]
		if !strings.EqualFold(f.key, k.name) {
			continue
		}
		if k.value == "" {
			ok = true
			break
		}
		if !f.fold {
			f.folded, f.fold = foldString(f.value), true
		}
		if strings.Contains(f.folded, k.value) {
			ok = true
			break
		}
		if isAddressField(f.key) && slices.ContainsFunc(f.addresses(), func(a string) bool { return strings.Contains(a, k.value) }) {
			ok = true
			break
		}
	}
	s.headerMemo[i] = memo(ok)
	return ok, nil
}

// headerContains reports whether a field of the message's header, as
// "Name: value" with the value MIME-decoded, contains terms[i],
// case-insensitively.
func (s *search) headerContains(i int) (bool, error) {
	if v := s.textMemo[i]; v != 0 {
		return v == 2, nil
	}
	fields, err := s.headerFields()
	if err != nil {
		return false, err
	}
	ok := false
	for j := range fields {
		f := &fields[j]
		if !f.foldL {
			f.foldedLine, f.foldL = foldString(f.key+": "+f.value), true
		}
		if strings.Contains(f.foldedLine, s.terms[i]) {
			ok = true
			break
		}
	}
	s.textMemo[i] = memo(ok)
	return ok, nil
}

func memo(ok bool) int8 {
	if ok {
		return 2
	}
	return 1
}

// matchSent reports whether the message's Date field's date is in
// [since, before); a message without a usable Date never matches.
func (s *search) matchSent(since, before time.Time) (bool, error) {
	if !s.haveSent {
		h, err := s.readHeader()
		if err != nil {
			return false, err
		}
		s.haveSent = true
		mh := mail.Header{Header: gomessage.Header{Header: h}}
		if sent, err := mh.Date(); err == nil {
			s.sent = sent
		}
	}
	if s.sent.IsZero() {
		return false, nil
	}
	return matchDates(s.sent, since, before), nil
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
