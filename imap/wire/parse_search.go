package wire

import (
	"strings"
	"time"

	goimap "github.com/emersion/go-imap/v2"
)

// flagRecent is IMAP4rev1's \Recent, which RECENT, NEW and OLD search.
const flagRecent goimap.Flag = `\Recent`

// searchReturn reads SEARCH's or SORT's "RETURN (...) " if there is one:
// nil without it; RETURN () means ALL (RFC 4731).
func (r *Reader) searchReturn() *goimap.SearchOptions {
	if c := r.peek(); c != 'R' && c != 'r' {
		return nil
	}
	b, err := r.br.Peek(7)
	if err != nil || !strings.EqualFold(string(b), "RETURN ") {
		return nil
	}
	r.atom("RETURN")
	r.sp()
	o := &goimap.SearchOptions{}
	r.list("the return options", true, func() {
		switch opt := strings.ToUpper(r.atom("a return option")); opt {
		case "MIN":
			o.ReturnMin = true
		case "MAX":
			o.ReturnMax = true
		case "ALL":
			o.ReturnAll = true
		case "COUNT":
			o.ReturnCount = true
		case "SAVE":
			o.ReturnSave = true
		default:
			r.fail("Unknown search return option %s", opt)
		}
	})
	if !o.ReturnMin && !o.ReturnMax && !o.ReturnAll && !o.ReturnCount && !o.ReturnSave {
		o.ReturnAll = true
	}
	r.sp()
	return o
}

// searchProgram reads [CHARSET x SP] (if charset is allowed) and the
// search keys to the end of the command, ANDed.
func (r *Reader) searchProgram(charset bool) (string, *goimap.SearchCriteria) {
	cs := ""
	if charset {
		if b, err := r.br.Peek(8); err == nil && strings.EqualFold(string(b), "CHARSET ") {
			r.atom("CHARSET")
			r.sp()
			cs = strings.ToUpper(r.astring("a charset"))
			r.sp()
		}
	}
	c := &goimap.SearchCriteria{}
	r.searchKey(c)
	for r.maybe(' ') {
		r.searchKey(c)
	}
	return cs, c
}

// searchKey reads one search key into c.
func (r *Reader) searchKey(c *goimap.SearchCriteria) {
	switch r.peek() {
	case '(':
		r.listOpen("a search key list")
		r.searchKey(c)
		for r.maybe(' ') {
			r.searchKey(c)
		}
		r.expect(')', `")"`)
		r.depth--
		return
	case '*', '$', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		set := r.numSet(false, true)
		if goimap.IsSearchRes(set) {
			c.UID = append(c.UID, set.(goimap.UIDSet))
		} else {
			c.SeqNum = append(c.SeqNum, set.(goimap.SeqSet))
		}
		return
	}
	key := strings.ToUpper(r.atom("a search key"))
	switch key {
	case "ALL":
	case "ANSWERED", "DELETED", "DRAFT", "FLAGGED", "SEEN":
		c.Flag = append(c.Flag, goimap.Flag(`\`+key[:1]+strings.ToLower(key[1:])))
	case "UNANSWERED", "UNDELETED", "UNDRAFT", "UNFLAGGED", "UNSEEN":
		c.NotFlag = append(c.NotFlag, goimap.Flag(`\`+key[2:3]+strings.ToLower(key[3:])))
	case "RECENT":
		c.Flag = append(c.Flag, flagRecent)
	case "NEW":
		c.Flag = append(c.Flag, flagRecent)
		c.NotFlag = append(c.NotFlag, goimap.FlagSeen)
	case "OLD":
		c.NotFlag = append(c.NotFlag, flagRecent)
	case "KEYWORD", "UNKEYWORD":
		r.sp()
		f := goimap.Flag(r.atom("a keyword"))
		if key == "KEYWORD" {
			c.Flag = append(c.Flag, f)
		} else {
			c.NotFlag = append(c.NotFlag, f)
		}
	case "BCC", "CC", "FROM", "SUBJECT", "TO":
		r.sp()
		c.Header = append(c.Header, goimap.SearchCriteriaHeaderField{Key: key[:1] + strings.ToLower(key[1:]), Value: r.astring("a search string")})
	case "HEADER":
		r.sp()
		k := r.astring("a header field name")
		r.sp()
		c.Header = append(c.Header, goimap.SearchCriteriaHeaderField{Key: k, Value: r.astring("a search string")})
	case "BODY":
		r.sp()
		c.Body = append(c.Body, r.astring("a search string"))
	case "TEXT":
		r.sp()
		c.Text = append(c.Text, r.astring("a search string"))
	case "BEFORE", "ON", "SINCE", "SENTBEFORE", "SENTON", "SENTSINCE":
		r.sp()
		d := r.date()
		switch key {
		case "BEFORE":
			c.Before = earlier(c.Before, d)
		case "SINCE":
			c.Since = later(c.Since, d)
		case "ON":
			c.Since, c.Before = later(c.Since, d), earlier(c.Before, d.AddDate(0, 0, 1))
		case "SENTBEFORE":
			c.SentBefore = earlier(c.SentBefore, d)
		case "SENTSINCE":
			c.SentSince = later(c.SentSince, d)
		case "SENTON":
			c.SentSince, c.SentBefore = later(c.SentSince, d), earlier(c.SentBefore, d.AddDate(0, 0, 1))
		}
	case "LARGER":
		r.sp()
		n := int64(r.number64("a size"))
		if n > c.Larger {
			c.Larger = n
		}
	case "SMALLER":
		r.sp()
		n := int64(r.number64("a size"))
		if c.Smaller == 0 || n < c.Smaller {
			c.Smaller = n
		}
	case "UID":
		r.sp()
		c.UID = append(c.UID, r.numSet(true, true).(goimap.UIDSet))
	case "NOT":
		r.sp()
		r.nest()
		var not goimap.SearchCriteria
		r.searchKey(&not)
		r.depth--
		c.Not = append(c.Not, not)
	case "OR":
		r.sp()
		r.nest()
		var or [2]goimap.SearchCriteria
		r.searchKey(&or[0])
		r.sp()
		r.searchKey(&or[1])
		r.depth--
		c.Or = append(c.Or, or)
	case "MODSEQ":
		r.sp()
		m := &goimap.SearchCriteriaModSeq{}
		if r.peek() == '"' {
			// An entry name and type (RFC 7162 section 3.1.5).
			m.MetadataName = r.str("an entry name")
			r.sp()
			switch t := strings.ToLower(r.atom("an entry type")); t {
			case "all", "priv", "shared":
				m.MetadataType = goimap.SearchCriteriaMetadataType(t)
			default:
				r.fail("Unknown entry type %s", t)
			}
			r.sp()
		}
		m.ModSeq = r.number64("a mod-sequence")
		if c.ModSeq == nil || m.ModSeq > c.ModSeq.ModSeq {
			c.ModSeq = m
		}
	default:
		r.fail("Unknown search key %s", key)
	}
}

// earlier and later intersect date bounds (a zero time is no bound).
func earlier(a, b time.Time) time.Time {
	if a.IsZero() || b.Before(a) {
		return b
	}
	return a
}

func later(a, b time.Time) time.Time {
	if a.IsZero() || b.After(a) {
		return b
	}
	return a
}
