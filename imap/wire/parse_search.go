package wire

import (
	"strings"
	"time"

	goimap "github.com/emersion/go-imap/v2"
)

// flagRecent is IMAP4rev1's \Recent, which RECENT, NEW and OLD search.
const flagRecent goimap.Flag = `\Recent`

// keyword reads a search key's name in upper case if one is next (a
// letter), else returns "". Reading the word instead of peeking ahead for
// "CHARSET " or "RETURN " never waits for bytes the client has not sent.
func (r *Reader) keyword() string {
	if c := r.peek() | 0x20; c < 'a' || c > 'z' {
		return ""
	}
	return strings.ToUpper(r.atom("a search key"))
}

// returnOptions reads the list of SEARCH's or SORT's RETURN (RFC 4731,
// RFC 5267); RETURN () means ALL.
func (r *Reader) returnOptions() *goimap.SearchOptions {
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
	return o
}

// searchArgs reads SEARCH's arguments after "SEARCH ":
// [RETURN (...) SP] [CHARSET x SP] keys.
func (r *Reader) searchArgs() *SearchArgs {
	a := &SearchArgs{}
	key := r.keyword()
	if key == "RETURN" {
		r.last = "RETURN"
		r.sp()
		a.Return = r.returnOptions()
		r.sp()
		key = r.keyword()
	}
	if key == "CHARSET" {
		r.last = "CHARSET"
		r.sp()
		a.Charset = strings.ToUpper(r.astring("a charset"))
		r.sp()
		key = r.keyword()
	}
	a.Criteria = r.searchKeys(key)
	return a
}

// searchKeys reads search keys to the end of the command, ANDed; first
// is the name of the first one if it has been read.
func (r *Reader) searchKeys(first string) *goimap.SearchCriteria {
	c := &goimap.SearchCriteria{}
	r.searchKey(c, first)
	for r.maybe(' ') {
		r.searchKey(c, "")
	}
	return c
}

// searchKey reads one search key into c; key is its name if it has been
// read.
func (r *Reader) searchKey(c *goimap.SearchCriteria, key string) {
	if r.keys++; r.keys > r.lim.MaxSearchKeys {
		r.failCode("BAD", "LIMIT", "More than %d search keys", r.lim.MaxSearchKeys)
	}
	if key == "" {
		key = r.searchKeyName(c)
		if key == "" {
			return
		}
	}
	r.searchKeyArgs(c, key)
}

// searchKeyName reads a key's name, or a whole key that has none (a
// sequence set, a parenthesized list) and returns "".
func (r *Reader) searchKeyName(c *goimap.SearchCriteria) string {
	switch r.peek() {
	case '(':
		r.listOpen("a search key list")
		r.searchKey(c, "")
		for r.maybe(' ') {
			r.searchKey(c, "")
		}
		r.expect(')', `")"`)
		r.depth--
		return ""
	case '*', '$', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		set := r.numSet(false, true)
		if goimap.IsSearchRes(set) {
			c.UID = append(c.UID, set.(goimap.UIDSet))
		} else {
			c.SeqNum = append(c.SeqNum, set.(goimap.SeqSet))
		}
		return ""
	}
	return strings.ToUpper(r.atom("a search key"))
}

// searchKeyArgs reads the arguments of the search key called key.
func (r *Reader) searchKeyArgs(c *goimap.SearchCriteria, key string) {
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
		r.searchKey(&not, "")
		r.depth--
		c.Not = append(c.Not, not)
	case "OR":
		r.sp()
		r.nest()
		var or [2]goimap.SearchCriteria
		r.searchKey(&or[0], "")
		r.sp()
		r.searchKey(&or[1], "")
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
