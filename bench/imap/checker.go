package main

// The protocol checker: per connection, the state a correct client must
// be able to keep (the selected mailbox's count, UIDs and flags, the
// folders' UIDVALIDITY and UIDNEXT), and every response checked against
// it and against the command in progress. Each departure from RFC 3501
// or RFC 9051 is counted in a category of the report.

import (
	"fmt"
	"slices"
	"strings"
)

// mbox is the selected mailbox as the client knows it.
type mbox struct {
	name           string
	readOnly       bool
	uids           []uint32 // by seq-1; 0 for not known yet
	flags          map[string]bool
	flagList       []string
	perm           []string
	permStar       bool
	uidValid       uint32
	uidNext        uint32 // at SELECT
	old            int    // seqs 1..old were there at SELECT (so their UIDs are below uidNext)
	recent         uint32
	sawRecent      bool
	againstUIDNext map[uint32]bool // UIDs counted against UIDNEXT already
}

func (m *mbox) setFlags(flags []string) {
	m.flags = map[string]bool{}
	for _, f := range flags {
		m.flags[strings.ToLower(f)] = true
	}
	m.flagList = flags
}

// complete says whether every message's UID is known.
func (m *mbox) complete() bool { return !slices.Contains(m.uids, 0) }

func (m *mbox) seqOf(uid uint32) int {
	for i, u := range m.uids {
		if u == uid {
			return i + 1
		}
	}
	return 0
}

// folderSeen is what one connection last learned of a folder.
type folderSeen struct {
	uidValidity uint32
	uidNext     uint32
}

var systemFlags = map[string]bool{`\seen`: true, `\answered`: true, `\flagged`: true, `\deleted`: true, `\draft`: true}

// session checks one connection. It is not safe for concurrent use: one
// goroutine feeds it the commands it sends and the responses it reads.
type session struct {
	rep   *report
	reg   *registry // nil: messages are known by their ENVELOPE only
	who   string
	rev2  bool
	caps  map[string]bool
	sel   *mbox
	cmd   *command
	seen  map[string]*folderSeen
	set   []string // the folder set, which LIST must show
	byeOK bool
}

func newSession(rep *report, who string, folderSet []string) *session {
	return &session{rep: rep, who: who, caps: map[string]bool{}, seen: map[string]*folderSeen{}, set: folderSet}
}

func (s *session) folder(name string) *folderSeen {
	f := s.seen[name]
	if f == nil {
		f = &folderSeen{}
		s.seen[name] = f
	}
	return f
}

// fail counts a protocol error with what shows it.
func (s *session) fail(cat string, r *response, format string, args ...any) {
	var b strings.Builder
	rev := "IMAP4rev1"
	if s.rev2 {
		rev = "IMAP4rev2"
	}
	fmt.Fprintf(&b, "%s %s", s.who, rev)
	if s.sel != nil {
		fmt.Fprintf(&b, " in %s", s.sel.name)
	}
	b.WriteString(": ")
	fmt.Fprintf(&b, format, args...)
	if s.cmd != nil {
		fmt.Fprintf(&b, "\nC: %s", s.cmd.text)
	} else {
		b.WriteString("\n(no command in progress)")
	}
	if r != nil {
		fmt.Fprintf(&b, "\nS: %s", shown(r.raw, 400))
	}
	s.rep.fail(cat, b.String())
}

// begin starts a command: call it before the command is written.
func (s *session) begin(c *command) {
	s.cmd = c
	c.fetched = map[uint32]*fetchEntry{}
	c.expunged = map[uint32]bool{}
	c.listed = map[string]bool{}
	m := s.sel
	switch c.kind {
	case "SELECT", "EXAMINE":
		c.selecting = &mbox{name: c.box, readOnly: c.kind == "EXAMINE"}
		c.switched = m == nil
		if m == nil {
			s.sel = nil
		}
	case "LOGOUT":
		s.byeOK = true
	}
	if m == nil {
		return
	}
	if c.set != "" {
		if c.uid {
			c.uidRanges, _ = uidRanges(c.set)
			for _, u := range m.uids {
				if u != 0 && inRanges(c.uidRanges, u) {
					c.startUIDs = append(c.startUIDs, u)
				}
			}
		} else {
			c.seqs, _ = expandSeq(c.set, len(m.uids))
			c.allKnown = true
			for _, n := range c.seqs {
				if u := m.uids[n-1]; u != 0 {
					c.startUIDs = append(c.startUIDs, u)
				} else {
					c.allKnown = false
				}
			}
		}
	}
	c.writeRO = m.readOnly && c.isWrite()
	isStore := c.kind == "STORE" || c.kind == "UID STORE"
	if isStore && c.storeOp != "-FLAGS" || c.kind == "APPEND" && c.box == m.name {
		for _, f := range c.flags {
			if !strings.HasPrefix(f, `\`) && !m.flags[strings.ToLower(f)] {
				c.newKeyword = true
			}
		}
	}
}

// target is the mailbox an untagged response is about. During SELECT
// and EXAMINE that is the old one until [CLOSED] (or, without it, the
// first of the new mailbox's data).
func (s *session) target(r *response, selectData bool) *mbox {
	c := s.cmd
	if c == nil || c.selecting == nil {
		return s.sel
	}
	if c.switched {
		return c.selecting
	}
	if selectData {
		if s.rev2 {
			s.fail("select", r, "the new mailbox's data came without * OK [CLOSED] for the one selected before (RFC 9051 §6.3.2)")
		}
		c.switched = true
		s.sel = nil
		return c.selecting
	}
	return s.sel
}

// handle checks one response and applies it to the state.
func (s *session) handle(r *response) {
	if r.err != nil {
		s.fail("syntax", r, "%v", r.err)
		if s.cmd != nil {
			s.cmd.broken = true
		}
		switch r.kind { // what parsed of a count change is still applied, lest every later check fail
		case "EXISTS", "EXPUNGE":
			if r.num == 0 {
				return
			}
		default:
			if r.tag != "*" && r.tag != "+" && s.cmd != nil && r.tag == s.cmd.tag {
				s.cmd = nil
			}
			return
		}
	}
	switch r.tag {
	case "+":
		c := s.cmd
		if c == nil || c.sawCont || !(c.kind == "APPEND" && c.syncLit || c.kind == "IDLE") {
			s.fail("unexpected", r, "a continuation request with no literal or IDLE waiting for one")
			return
		}
		c.sawCont = true
	case "*":
		s.untagged(r)
	default:
		if s.cmd == nil || r.tag != s.cmd.tag {
			s.fail("unexpected", r, "a tagged response for no command in progress")
			return
		}
		s.finish(r)
		s.cmd = nil
	}
}

func (s *session) untagged(r *response) {
	c := s.cmd
	switch r.kind {
	case "EXISTS":
		s.exists(r)
	case "RECENT":
		m := s.target(r, true)
		if m == nil {
			s.fail("unexpected", r, "RECENT with no mailbox selected")
			return
		}
		m.recent, m.sawRecent = r.num, true
		if c != nil && m == c.selecting {
			c.saw["RECENT"] = true
		}
	case "EXPUNGE":
		s.expunge(r)
	case "FETCH":
		s.fetch(r)
	case "FLAGS":
		m := s.target(r, true)
		if m == nil {
			s.fail("unexpected", r, "FLAGS with no mailbox selected")
			return
		}
		for _, f := range r.flags {
			if lf := strings.ToLower(f); strings.HasPrefix(lf, `\`) && !systemFlags[lf] && lf != `\recent` {
				s.fail("flags-invalid", r, "FLAGS lists %s, not a system flag", f)
			}
		}
		m.setFlags(r.flags)
		if c != nil && m == c.selecting {
			c.saw["FLAGS"] = true
		}
	case "OK", "NO", "BAD", "BYE", "PREAUTH":
		s.untaggedStatus(r)
	case "LIST", "LSUB":
		switch {
		case c != nil && c.kind == "LIST":
			c.listed[normBox(r.list.name)] = true
		case c != nil && c.selecting != nil:
			if s.target(r, true) == c.selecting {
				c.saw["LIST"] = true
				if normBox(r.list.name) != c.box {
					s.fail("select", r, "SELECT's LIST names %q, not %q", r.list.name, c.box)
				}
			}
		default:
			s.fail("unexpected", r, "a LIST response outside LIST and SELECT")
		}
	case "STATUS":
		if c == nil || c.kind != "STATUS" {
			s.fail("unexpected", r, "a STATUS response outside STATUS")
			return
		}
		if normBox(r.stat.name) != c.box {
			s.fail("status", r, "STATUS of %q answered for %q", c.box, r.stat.name)
			return
		}
		c.status = r.stat
	case "SEARCH", "ESEARCH":
		s.search(r)
	case "CAPABILITY":
		s.setCaps(r.caps)
	case "ENABLED":
		if c == nil || c.kind != "ENABLE" {
			s.fail("unexpected", r, "ENABLED outside ENABLE")
			return
		}
		for _, e := range r.caps {
			if !slices.Contains(c.enable, e) {
				s.fail("unexpected", r, "ENABLED %s, which was not asked for", e)
			}
			if e == "IMAP4REV2" {
				s.rev2 = true
			}
		}
	}
}

func (s *session) setCaps(caps []string) {
	s.caps = map[string]bool{}
	for _, c := range caps {
		s.caps[c] = true
	}
}

func (s *session) exists(r *response) {
	m := s.target(r, true)
	if m == nil {
		s.fail("unexpected", r, "EXISTS with no mailbox selected")
		return
	}
	n := int(r.num)
	if c := s.cmd; c != nil && m == c.selecting && !c.saw["EXISTS"] {
		c.saw["EXISTS"] = true
		m.uids = make([]uint32, n)
		m.old = n
		return
	}
	if n < len(m.uids) {
		s.fail("exists", r, "* %d EXISTS, but the mailbox has %d messages and no EXPUNGE said one went", n, len(m.uids))
		return
	}
	m.uids = append(m.uids, make([]uint32, n-len(m.uids))...)
}

func (s *session) expunge(r *response) {
	m := s.target(r, false)
	if m == nil {
		s.fail("unexpected", r, "EXPUNGE with no mailbox selected")
		return
	}
	n := int(r.num)
	if n > len(m.uids) {
		s.fail("expunge-range", r, "* %d EXPUNGE in a mailbox of %d messages", n, len(m.uids))
		return
	}
	c := s.cmd
	switch {
	case c == nil:
		s.fail("expunge-forbidden", r, "EXPUNGE with no command in progress")
	case c.noExpunge():
		s.fail("expunge-forbidden", r, "EXPUNGE during %s", c.kind)
	}
	uid := m.uids[n-1]
	m.uids = slices.Delete(m.uids, n-1, n)
	if n <= m.old {
		m.old--
	}
	if c != nil {
		c.nExpunged++
		if uid != 0 {
			c.expunged[uid] = true
		}
	}
}

func (s *session) fetch(r *response) {
	m := s.target(r, false)
	if m == nil {
		s.fail("unexpected", r, "FETCH with no mailbox selected")
		return
	}
	n := int(r.num)
	if n > len(m.uids) {
		s.fail("fetch-range", r, "* %d FETCH in a mailbox of %d messages", n, len(m.uids))
		return
	}
	f := r.fetch
	if f.hasFlags {
		s.checkFlags(m, r, f.flags)
	}
	known := m.uids[n-1]
	if f.hasUID {
		s.checkUID(m, r, n, f.uid)
		known = f.uid
	}
	c := s.cmd
	if c == nil {
		return
	}
	// A FETCH of only FLAGS may be another session's change; one with
	// more answers this command. Those of only FLAGS are checked when
	// the command ends: one of them at least must have had the UID.
	noUID := (c.kind == "UID FETCH" || c.kind == "UID STORE") && !f.hasUID && !(len(f.names) == 1 && f.hasFlags)
	if noUID {
		s.fail("uid", r, "a FETCH answering %s without UID (RFC 3501 §6.4.8)", c.kind)
	}
	switch c.kind {
	case "FETCH", "STORE":
		s.record(c, uint32(n), uint32(n), f, r, noUID)
	case "UID FETCH", "UID STORE":
		if known != 0 {
			s.record(c, known, uint32(n), f, r, noUID)
		}
	}
}

func (s *session) record(c *command, key, seq uint32, f *fetchData, r *response, noUID bool) {
	e := c.fetched[key]
	if e == nil {
		e = &fetchEntry{data: &fetchData{}}
		c.fetched[key] = e
	}
	e.data.merge(f)
	e.raw, e.seq = r.raw, seq
	e.noUID = e.noUID || noUID
}

// checkFlags checks a FETCH's flags against the mailbox's FLAGS.
func (s *session) checkFlags(m *mbox, r *response, flags []string) {
	for _, fl := range flags {
		lf := strings.ToLower(fl)
		switch {
		case lf == `\recent`: // IMAP4rev1; obsolete-flag-recent in RFC 9051's grammar
		case strings.HasPrefix(lf, `\`) && !systemFlags[lf]:
			s.fail("flags-invalid", r, "FETCH FLAGS holds %s, not a system flag", fl)
		case !m.flags[lf]:
			what := "keyword"
			if strings.HasPrefix(lf, `\`) {
				what = "system flag"
			}
			s.fail("flags-unannounced", r, "%s %s was not in the mailbox's FLAGS %s", what, fl, flagString(m.flagList))
		}
	}
}

func flagString(f []string) string { return "(" + strings.Join(f, " ") + ")" }

// checkUID checks the UID a FETCH gives message seq against what the
// client knows, and learns it.
func (s *session) checkUID(m *mbox, r *response, seq int, uid uint32) {
	i := seq - 1
	if k := m.uids[i]; k != 0 && k != uid {
		s.fail("uid", r, "message %d had UID %d, now %d", seq, k, uid)
	}
	for j := i - 1; j >= 0; j-- {
		if m.uids[j] != 0 {
			if m.uids[j] >= uid {
				s.fail("uid", r, "UID %d of message %d is not above UID %d of message %d", uid, seq, m.uids[j], j+1)
			}
			break
		}
	}
	for j := i + 1; j < len(m.uids); j++ {
		if m.uids[j] != 0 {
			if m.uids[j] <= uid {
				s.fail("uid", r, "UID %d of message %d is not below UID %d of message %d", uid, seq, m.uids[j], j+1)
			}
			break
		}
	}
	if m.uidNext != 0 && !m.againstUIDNext[uid] {
		bad := true
		switch {
		case seq <= m.old && uid >= m.uidNext:
			s.fail("uidnext", r, "message %d, counted in SELECT's EXISTS, has UID %d, not below that SELECT's UIDNEXT %d", seq, uid, m.uidNext)
		case seq > m.old && uid < m.uidNext:
			s.fail("uidnext", r, "message %d, announced after SELECT, has UID %d, below that SELECT's UIDNEXT %d: SELECT's EXISTS and UIDNEXT disagree, and a client fetching UIDNEXT:* for new mail misses it", seq, uid, m.uidNext)
		default:
			bad = false
		}
		if bad {
			if m.againstUIDNext == nil {
				m.againstUIDNext = map[uint32]bool{}
			}
			m.againstUIDNext[uid] = true
		}
	}
	m.uids[i] = uid
}

func (s *session) untaggedStatus(r *response) {
	c := s.cmd
	switch r.kind {
	case "BYE":
		if !s.byeOK {
			s.fail("unexpected", r, "BYE")
		}
		return
	case "BAD":
		s.fail("unexpected", r, "an untagged BAD")
		return
	case "NO":
		s.rep.allow("untagged-NO")
	case "PREAUTH":
		if c != nil {
			s.fail("unexpected", r, "PREAUTH after the greeting")
		}
	}
	switch r.code {
	case "CAPABILITY":
		s.setCaps(r.codeList)
	case "CLOSED":
		if c == nil || c.selecting == nil {
			s.fail("unexpected", r, "[CLOSED] outside SELECT and EXAMINE")
			return
		}
		if c.switched {
			s.fail("select", r, "[CLOSED] with no mailbox selected before, or twice")
		}
		c.switched = true
		s.sel = nil
	case "UIDVALIDITY", "UIDNEXT", "PERMANENTFLAGS", "UNSEEN":
		m := s.target(r, true)
		if m == nil {
			s.fail("unexpected", r, "[%s] with no mailbox selected", r.code)
			return
		}
		isNew := c != nil && m == c.selecting
		switch r.code {
		case "UIDVALIDITY":
			m.uidValid = r.codeNum
		case "UIDNEXT":
			if isNew {
				m.uidNext = r.codeNum
			}
			if f := s.folder(m.name); r.codeNum < f.uidNext {
				s.fail("uid", r, "UIDNEXT %d of %s is below the %d this connection saw before", r.codeNum, m.name, f.uidNext)
			} else {
				f.uidNext = r.codeNum
			}
		case "PERMANENTFLAGS":
			m.perm = r.codeList
			m.permStar = slices.Contains(r.codeList, `\*`)
			if !isNew {
				s.checkPerm(m, r)
			}
		case "UNSEEN":
			if int(r.codeNum) > len(m.uids) {
				s.fail("select", r, "[UNSEEN %d] in a mailbox of %d messages", r.codeNum, len(m.uids))
			}
		}
		if isNew {
			c.saw[r.code] = true
		}
	case "COPYUID":
		if c == nil || c.kind != "MOVE" && c.kind != "UID MOVE" {
			s.fail("unexpected", r, "an untagged [COPYUID] outside MOVE")
			return
		}
		c.copyUID = r
	}
}

func (s *session) checkPerm(m *mbox, r *response) {
	for _, f := range m.perm {
		if lf := strings.ToLower(f); lf != `\*` && !m.flags[lf] {
			s.fail("flags-invalid", r, "PERMANENTFLAGS holds %s, which FLAGS %s does not (RFC 9051 §7.1: of the known flags)", f, flagString(m.flagList))
		}
		if strings.EqualFold(f, `\Recent`) {
			s.fail("flags-invalid", r, `PERMANENTFLAGS holds \Recent, which no client can set`)
		}
	}
}

func (s *session) search(r *response) {
	c := s.cmd
	if c == nil || c.kind != "SEARCH" && c.kind != "UID SEARCH" {
		s.fail("unexpected", r, "a %s response outside SEARCH", r.kind)
		return
	}
	m := s.sel
	if m == nil {
		s.fail("unexpected", r, "%s with no mailbox selected", r.kind)
		return
	}
	if c.searchGot {
		s.fail("search", r, "a second %s response for one SEARCH", r.kind)
	}
	c.searchGot = true
	if r.kind == "ESEARCH" && !s.rev2 {
		s.fail("search", r, "ESEARCH to an IMAP4rev1 SEARCH without RETURN (RFC 4731 §3.1)")
	}
	if r.kind == "ESEARCH" {
		if !r.esHasTag || r.esTag != c.tag {
			s.fail("search", r, "ESEARCH without (TAG %q) (RFC 4731 §3.1)", c.tag)
		}
		if r.esUID != c.uid {
			s.fail("search", r, "ESEARCH's UID indicator %v for %s", r.esUID, c.kind)
		}
	}
	dup := map[uint32]bool{}
	for _, n := range r.search {
		if dup[n] {
			s.fail("search", r, "%d listed twice", n)
			return
		}
		dup[n] = true
		if !c.uid && int(n) > len(m.uids) {
			s.fail("search", r, "message %d found in a mailbox of %d messages", n, len(m.uids))
			return
		}
		if c.uid && m.complete() && m.seqOf(n) == 0 {
			s.fail("search", r, "UID %d found, which no message in the mailbox has", n)
			return
		}
	}
}
