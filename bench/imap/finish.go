package main

// The checks made when a command completes: its tagged response, and
// what its responses brought against what it asked for.

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
)

// finish checks a command's tagged response and what the command brought.
func (s *session) finish(r *response) {
	c := s.cmd
	if r.code == "EXPUNGEISSUED" {
		s.rep.allow("EXPUNGEISSUED")
	}
	if r.code == "CAPABILITY" {
		s.setCaps(r.codeList)
	}
	if r.kind != "OK" {
		s.failed(c, r)
		return
	}
	if c.box == missingFolder && (c.kind == "APPEND" || strings.HasSuffix(c.kind, "COPY") || strings.HasSuffix(c.kind, "MOVE") || c.kind == "SELECT" || c.kind == "EXAMINE" || c.kind == "STATUS") {
		s.fail("tagged", r, "%s of a mailbox that does not exist succeeded", c.kind)
	}
	if c.writeRO {
		s.fail("readonly", r, "%s succeeded in a mailbox opened with EXAMINE (RFC 9051 §6.3.3)", c.kind)
	}
	switch c.kind {
	case "SELECT", "EXAMINE":
		s.selected(c, r)
	case "APPEND":
		s.appended(c, r)
	case "COPY", "UID COPY", "MOVE", "UID MOVE":
		s.copied(c, r)
	case "FETCH", "UID FETCH":
		s.fetched(c, r)
	case "STORE", "UID STORE":
		s.stored(c, r)
	case "SEARCH", "UID SEARCH":
		if !c.searchGot && !c.broken {
			s.fail("search", r, "SEARCH completed with no SEARCH or ESEARCH response")
		}
	case "STATUS":
		s.statused(c, r)
	case "LIST":
		for _, f := range s.set {
			if !c.listed[f] {
				s.fail("status", r, "LIST \"\" \"*\" did not list %s", f)
			}
		}
	}
}

func (s *session) failed(c *command, r *response) {
	switch {
	case r.code == "SERVERBUG":
		s.fail("serverbug", r, "%s failed with [SERVERBUG]", c.kind)
	case r.code == "EXPUNGEISSUED" && r.kind == "NO":
	case c.kind == "CREATE" && r.code == "ALREADYEXISTS":
	case c.box == missingFolder && r.kind == "NO" && (c.kind == "SELECT" || c.kind == "EXAMINE" || c.kind == "STATUS"):
		s.rep.allow("missing-mailbox")
	case c.box == missingFolder && r.code == "TRYCREATE":
		s.rep.allow("TRYCREATE")
	case c.box == missingFolder && r.kind == "NO":
		s.fail("trycreate", r, "NO to %s into a missing mailbox, without [TRYCREATE]", c.kind)
	case c.writeRO:
		s.rep.allow("readonly-refused")
	case (c.kind == "MOVE" || c.kind == "UID MOVE") && s.sel != nil && c.box == s.sel.name:
		s.fail("move-same", r, "%s into the selected mailbox refused", c.kind)
	case c.newKeyword && s.sel != nil && !s.sel.permStar && r.kind == "NO":
		s.rep.allow("no-new-keyword")
	default:
		s.fail("tagged", r, "%s failed", c.kind)
	}
	if c.selecting != nil { // RFC 3501 §6.3.1: a failed SELECT leaves none selected
		s.sel = nil
	}
}

func (s *session) selected(c *command, r *response) {
	m := c.selecting
	prev := !c.switched // still the old mailbox: no [CLOSED], no data
	if prev && s.rev2 && s.sel != nil {
		s.fail("select", r, "no * OK [CLOSED] for the mailbox selected before (RFC 9051 §6.3.2)")
	}
	need := []string{"FLAGS", "EXISTS", "UIDVALIDITY", "UIDNEXT", "PERMANENTFLAGS"}
	if s.rev2 {
		need = append(need, "LIST") // RFC 9051 §6.3.2
	} else {
		need = append(need, "RECENT") // RFC 3501 §6.3.1
	}
	var missing []string
	for _, k := range need {
		if !c.saw[k] {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		s.fail("select", r, "%s without %s", c.kind, strings.Join(missing, ", "))
	}
	switch {
	case c.kind == "EXAMINE" && r.code != "READ-ONLY":
		s.fail("select", r, "EXAMINE's OK without [READ-ONLY] (RFC 3501 §6.3.2)")
	case r.code == "READ-ONLY":
		m.readOnly = true
	}
	if m.sawRecent && int(m.recent) > len(m.uids) {
		s.fail("select", r, "%d RECENT of %d EXISTS", m.recent, len(m.uids))
	}
	s.checkPerm(m, r)
	f := s.folder(m.name)
	if f.uidValidity != 0 && m.uidValid != 0 && f.uidValidity != m.uidValid {
		s.fail("uid", r, "UIDVALIDITY of %s went from %d to %d", m.name, f.uidValidity, m.uidValid)
	}
	if m.uidValid != 0 {
		f.uidValidity = m.uidValid
	}
	s.sel = m
}

func (s *session) appended(c *command, r *response) {
	if r.code != "APPENDUID" {
		return
	}
	if len(r.codeDst) != 1 {
		s.fail("uid", r, "APPENDUID with %d UIDs for one message", len(r.codeDst))
		return
	}
	s.newUIDs(c.box, r, r.codeNum, r.codeDst)
	s.reg.set(uidKey{c.box, r.codeNum, r.codeDst[0]}, c.appendedID)
}

// newUIDs checks the UIDs APPENDUID or COPYUID says a folder gave.
func (s *session) newUIDs(box string, r *response, validity uint32, uids []uint32) {
	f := s.folder(box)
	if f.uidValidity != 0 && validity != f.uidValidity {
		s.fail("uid", r, "[%s] gives UIDVALIDITY %d, %s has %d", r.code, validity, box, f.uidValidity)
	}
	for _, u := range uids {
		if u < f.uidNext {
			s.fail("uid", r, "[%s] UID %d is below the UIDNEXT %d of %s seen before", r.code, u, f.uidNext, box)
			break
		}
	}
	if mx := slices.Max(uids); mx >= f.uidNext {
		f.uidNext = mx + 1
	}
}

func (s *session) copied(c *command, r *response) {
	cu := r
	if cu.code != "COPYUID" && c.copyUID != nil {
		cu = c.copyUID
	}
	if cu.code != "COPYUID" {
		return
	}
	if len(cu.codeSrc) != len(cu.codeDst) || len(cu.codeSrc) == 0 {
		s.fail("uid", cu, "COPYUID with %d source and %d destination UIDs", len(cu.codeSrc), len(cu.codeDst))
		return
	}
	for _, u := range cu.codeSrc {
		if c.uid && !inRanges(c.uidRanges, u) || !c.uid && c.allKnown && !slices.Contains(c.startUIDs, u) {
			s.fail("uid", cu, "COPYUID names source UID %d, not one of the messages %s", u, c.set)
			break
		}
	}
	s.newUIDs(c.box, cu, cu.codeNum, cu.codeDst)
	if s.sel != nil {
		for i, u := range cu.codeSrc {
			if id, ok := s.reg.get(uidKey{s.sel.name, s.sel.uidValid, u}); ok {
				s.reg.set(uidKey{c.box, cu.codeNum, cu.codeDst[i]}, id)
			}
		}
	}
	if (c.kind == "MOVE" || c.kind == "UID MOVE") && s.sel != nil {
		for _, u := range cu.codeSrc {
			if s.sel.seqOf(u) != 0 && !c.expunged[u] {
				s.fail("move", r, "%s moved UID %d, still in the mailbox with no EXPUNGE", c.kind, u)
				break
			}
		}
	}
}

// targets are the messages a FETCH or STORE was for, as keys of
// c.fetched; nil when they are not known, or when a response that did
// not parse or a forbidden EXPUNGE leaves them in doubt.
func (s *session) targets(c *command) []uint32 {
	if c.broken {
		return nil
	}
	if !c.uid {
		if c.nExpunged > 0 {
			return nil
		}
		return c.seqs
	}
	var out []uint32
	for _, u := range c.startUIDs {
		if !c.expunged[u] {
			out = append(out, u)
		}
	}
	return out
}

func (s *session) fetched(c *command, r *response) {
	if r.code == "EXPUNGEISSUED" {
		return
	}
	for _, k := range s.targets(c) {
		e := c.fetched[k]
		if e == nil {
			s.fail("fetch-missing", r, "no FETCH response for message %s, and no [EXPUNGEISSUED] to say why", c.which(k))
			continue
		}
		var missing []string
		for _, it := range c.items {
			if it.key == "UID" && c.uid && !e.data.hasUID {
				if e.noUID {
					continue
				}
				s.fail("uid", &response{raw: e.raw}, "no FETCH for message %s answering %s had the UID (RFC 3501 §6.4.8)", c.which(k), c.kind)
				continue
			}
			if !e.has(it) {
				missing = append(missing, it.key)
			}
		}
		if len(missing) > 0 {
			s.fail("fetch-missing", &response{raw: e.raw}, "FETCH for message %s lacks %s", c.which(k), strings.Join(missing, " "))
		}
		s.checkContent(c, e)
	}
}

func (c *command) which(k uint32) string {
	if c.uid {
		return fmt.Sprintf("UID %d", k)
	}
	return fmt.Sprint(k)
}

func (e *fetchEntry) has(it fetchItem) bool {
	d := e.data
	switch it.key {
	case "FLAGS":
		return d.hasFlags
	case "UID":
		return d.hasUID
	case "RFC822.SIZE":
		return d.hasSize
	case "INTERNALDATE":
		return d.date != ""
	case "ENVELOPE":
		return d.envelope != nil
	case "BODYSTRUCTURE", "BODY":
		return d.body != nil
	}
	_, ok := d.sections[it.key]
	return ok
}

// checkContent compares what a FETCH returned of a message with the
// bytes the message was appended with, when it is one of ours.
func (s *session) checkContent(c *command, e *fetchEntry) {
	d := e.data
	r := &response{raw: e.raw}
	if b, ok := d.sections["BODY[]"]; ok && d.hasSize && b.origin < 0 && !b.isNil && uint64(len(b.data)) != d.size {
		s.fail("content", r, "RFC822.SIZE %d, BODY[] of %d bytes", d.size, len(b.data))
	}
	id := envelopeMessageID(d.envelope)
	if m := s.sel; m != nil {
		uid := d.uid
		if !d.hasUID && e.seq >= 1 && int(e.seq) <= len(m.uids) {
			uid = m.uids[e.seq-1]
		}
		if known, ok := s.reg.get(uidKey{m.name, m.uidValid, uid}); ok && uid != 0 {
			if d.envelope != nil && id != known {
				s.fail("content", r, "ENVELOPE of UID %d has Message-ID %q; the message appended with that UID has %s", uid, id, known)
			}
			id = known
		}
	}
	want, single, ok := stressContent(id)
	if !ok {
		return
	}
	if d.body != nil {
		if _, one := bodyIsSinglePart(d.body); one != single {
			s.fail("content", r, "BODYSTRUCTURE of %s says single part %v; the message appended is the other way", id, one)
		}
	}
	for _, it := range c.items {
		sec, ok := d.sections[it.key]
		if !ok {
			continue
		}
		var exp []byte
		switch it.key {
		case "BODY[]":
			exp = want
		case "BODY[HEADER]":
			exp = headerOf(want)
		case "BODY[TEXT]":
			exp = want[len(headerOf(want)):]
		default:
			continue
		}
		if it.partial {
			if sec.origin != int64(it.off) {
				s.fail("content", r, "%s<%d.%d> answered with origin <%d>", it.key, it.off, it.n, sec.origin)
				continue
			}
			lo := min(it.off, uint64(len(exp)))
			hi := min(it.off+it.n, uint64(len(exp)))
			exp = exp[lo:hi]
		} else if sec.origin >= 0 {
			s.fail("content", r, "%s answered with an origin <%d> not asked for", it.key, sec.origin)
			continue
		}
		if !bytes.Equal(sec.data, exp) {
			s.fail("content", r, "%s of %s differs from what was appended: %s", it.key, envelopeMessageID(d.envelope), firstDiff(sec.data, exp))
		}
	}
	if d.hasSize && d.size != uint64(len(want)) {
		s.fail("content", r, "RFC822.SIZE %d of %s, appended %d bytes", d.size, envelopeMessageID(d.envelope), len(want))
	}
	if n, ok := bodyIsSinglePart(d.body); ok && single {
		if body := len(want) - len(headerOf(want)); n != uint64(body) {
			s.fail("content", r, "BODYSTRUCTURE size %d of %s, its body has %d bytes", n, envelopeMessageID(d.envelope), body)
		}
	}
}

// headerOf returns a message's header with the blank line after it.
func headerOf(msg []byte) []byte {
	if i := bytes.Index(msg, []byte("\r\n\r\n")); i >= 0 {
		return msg[:i+4]
	}
	return msg
}

func firstDiff(got, want []byte) string {
	i := 0
	for i < len(got) && i < len(want) && got[i] == want[i] {
		i++
	}
	return fmt.Sprintf("%d bytes, want %d, first difference at byte %d", len(got), len(want), i)
}

func (s *session) stored(c *command, r *response) {
	if c.silent || r.code == "EXPUNGEISSUED" {
		return
	}
	// What the flags are is not judged: another session's STORE may
	// come between this one and its FETCH, and the server may show both.
	for _, k := range s.targets(c) {
		e := c.fetched[k]
		if e == nil || !e.data.hasFlags {
			s.fail("store", r, "%s without .SILENT returned no FLAGS for message %s (RFC 3501 §6.4.6)", c.kind, c.which(k))
			continue
		}
		if c.uid && !e.data.hasUID && !e.noUID {
			s.fail("uid", &response{raw: e.raw}, "no FETCH for message %s answering %s had the UID (RFC 3501 §6.4.8)", c.which(k), c.kind)
		}
	}
}

func (s *session) statused(c *command, r *response) {
	st := c.status
	if st == nil && c.broken {
		return
	}
	if st == nil {
		s.fail("status", r, "STATUS completed with no STATUS response")
		return
	}
	for _, it := range c.statusOf {
		if _, ok := st.items[it]; !ok {
			s.fail("status", r, "STATUS without %s", it)
		}
	}
	f := s.folder(c.box)
	if v, ok := st.items["UIDVALIDITY"]; ok {
		if f.uidValidity != 0 && uint32(v) != f.uidValidity {
			s.fail("uid", r, "UIDVALIDITY of %s went from %d to %d", c.box, f.uidValidity, v)
		}
		f.uidValidity = uint32(v)
	}
	if v, ok := st.items["UIDNEXT"]; ok {
		if uint32(v) < f.uidNext {
			s.fail("status", r, "UIDNEXT %d of %s is below the %d this connection saw before", v, c.box, f.uidNext)
		} else {
			f.uidNext = uint32(v)
		}
	}
}
