package main

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// What a stress client does: one random step after another, weighted
// like a busy client's day, each a command the checker judges.

// op is a kind of step, with its weight now.
type op struct {
	w  int
	do func() error
}

// step does one random thing, as a client would.
func (c *client) step() error {
	m := c.s.sel
	if m == nil {
		return c.selectSome("SELECT")
	}
	n := len(m.uids)
	rw := !m.readOnly
	grow, shrink := 6, 3
	switch {
	case n > 4*c.o.perFolder+20:
		grow, shrink = 1, 12
	case n < c.o.perFolder/2:
		grow, shrink = 10, 1
	}
	ops := []op{
		{6, func() error { return c.selectSome("SELECT") }},
		{2, func() error { return c.selectSome("EXAMINE") }},
		{3, c.noop},
		{2, c.idle},
		{4, c.status},
		{1, c.list},
		{grow, func() error { return c.appendTo(c.pick(stressFolders)) }},
		{grow / 2, func() error { return c.appendTo(m.name) }},
	}
	if c.rng.IntN(200) == 0 {
		ops = append(ops, op{100, c.missing}, op{100, c.logout})
	}
	if n > 0 {
		ops = append(ops,
			op{8, c.fetchFlags},
			op{6, c.fetchMeta},
			op{6, c.fetchBody},
			op{3, c.fetchHeader},
			op{3, c.fetchPartial},
			op{6, c.uidFetch},
			op{6, c.search},
			op{3, c.uidSearch},
			op{3, c.copy},
		)
		if rw {
			ops = append(ops,
				op{10, c.store},
				op{5, c.uidStore},
				op{shrink, c.expunge},
				op{shrink, c.uidExpunge},
				op{shrink, func() error { return c.move(false) }},
				op{1, func() error { return c.move(true) }},
				op{1, c.fetchRead},
			)
		} else {
			ops = append(ops, op{1, c.store})
		}
	}
	total := 0
	for _, o := range ops {
		total += o.w
	}
	r := c.rng.IntN(total)
	for _, o := range ops {
		if r < o.w {
			return o.do()
		}
		r -= o.w
	}
	return nil
}

func (c *client) pick(list []string) string { return list[c.rng.IntN(len(list))] }

// run1 executes a command whose outcome the checker judges alone.
func (c *client) run1(line string) error {
	_, _, err := c.exec(line, nil, 0)
	return err
}

func (c *client) selectSome(verb string) error {
	return c.run1(verb + " " + quoteBox(c.pick(stressFolders)))
}

func (c *client) noop() error { return c.run1("NOOP") }

func (c *client) idle() error {
	if !c.s.caps["IDLE"] {
		return c.noop()
	}
	_, _, err := c.exec("IDLE", nil, time.Duration(50+c.rng.IntN(350))*time.Millisecond)
	return err
}

func (c *client) status() error {
	var others []string
	for _, f := range stressFolders {
		if c.s.sel == nil || f != c.s.sel.name {
			others = append(others, f)
		}
	}
	items := []string{"MESSAGES", "UIDNEXT", "UIDVALIDITY", "UNSEEN"}
	if !c.s.rev2 {
		items = append(items, "RECENT")
	} else if c.rng.IntN(2) == 0 {
		items = append(items, "DELETED") // RFC 9051 §6.3.11
	}
	if c.s.caps["STATUS=SIZE"] && c.rng.IntN(2) == 0 {
		items = append(items, "SIZE")
	}
	c.rng.Shuffle(len(items), func(i, j int) { items[i], items[j] = items[j], items[i] })
	return c.run1("STATUS " + quoteBox(c.pick(others)) + " (" + strings.Join(items, " ") + ")")
}

func (c *client) list() error { return c.run1(`LIST "" "*"`) }

func (c *client) logout() error {
	_, _, err := c.exec("LOGOUT", nil, 0)
	c.hangUp()
	return err
}

// missing does a command on the folder that does not exist.
func (c *client) missing() error {
	switch c.rng.IntN(4) {
	case 0:
		return c.appendTo(missingFolder)
	case 1:
		return c.run1("STATUS " + quoteBox(missingFolder) + " (MESSAGES)")
	case 2:
		if c.s.sel != nil && len(c.s.sel.uids) > 0 {
			return c.run1("COPY 1 " + quoteBox(missingFolder))
		}
	}
	return c.run1("EXAMINE " + quoteBox(missingFolder))
}

// Keywords: ones the seed gives every folder, and ones new to it.
var (
	sysFlags     = []string{`\Seen`, `\Answered`, `\Flagged`, `\Draft`}
	baseKeywords = []string{"$Forwarded", "$MDNSent", "$Junk", "$NotJunk", "$Label1", "$Label2", "$Label3", "$Label4", "$Label5"}
)

// flags picks up to max flags: system flags, known keywords, keywords
// new to a folder ($Label6 to $Label40) and, now and then, new to all.
func (c *client) flags(max int) []string {
	var out []string
	for range c.rng.IntN(max + 1) {
		var f string
		switch x := c.rng.IntN(20); {
		case x < 8:
			f = c.pick(sysFlags)
		case x < 14:
			f = c.pick(baseKeywords)
		case x < 19:
			f = fmt.Sprintf("$Label%d", 6+c.rng.IntN(35))
		default:
			var ok bool
			if f, ok = c.pool.fresh(); !ok {
				f = "$Label6"
			}
		}
		if !slices.Contains(out, f) {
			out = append(out, f)
		}
	}
	return out
}

func (c *client) appendTo(box string) error {
	c.msgN++
	msg, _ := stressMessage(c.id, c.msgN)
	var b strings.Builder
	b.WriteString("APPEND " + quoteBox(box))
	flags := c.flags(3)
	if c.id == 0 { // the seed: every folder gets the base keywords
		flags = append(flags, baseKeywords[c.msgN%len(baseKeywords)])
	}
	if len(flags) > 0 || c.rng.IntN(2) == 0 {
		b.WriteString(" (" + strings.Join(flags, " ") + ")")
	}
	if c.rng.IntN(3) == 0 {
		b.WriteString(` "02-Jan-2006 15:04:05 +0000"`)
	}
	if c.s.caps["LITERAL+"] && c.rng.IntN(4) != 0 {
		fmt.Fprintf(&b, " {%d+}", len(msg))
	} else {
		fmt.Fprintf(&b, " {%d}", len(msg))
	}
	_, _, err := c.exec(b.String(), msg, 0)
	return err
}

// seqSet picks a set of messages of a mailbox of n.
func (c *client) seqSet(n, span int) string {
	a := 1 + c.rng.IntN(n)
	switch c.rng.IntN(5) {
	case 0, 1:
		return fmt.Sprint(a)
	case 2:
		return fmt.Sprintf("%d:%d", a, min(n, a+c.rng.IntN(span)))
	case 3:
		if a > n-span {
			return fmt.Sprintf("%d:*", a)
		}
		return fmt.Sprint(a)
	}
	b, d := 1+c.rng.IntN(n), 1+c.rng.IntN(n)
	if a == b || b == d || a == d {
		return fmt.Sprint(a)
	}
	return fmt.Sprintf("%d,%d,%d", a, b, d)
}

// uidSet picks a set of UIDs the client knows, or 1:*; with star false,
// never a set that runs to *.
func (c *client) uidSet(span int, star bool) string {
	var known []uint32
	for _, u := range c.s.sel.uids {
		if u != 0 {
			known = append(known, u)
		}
	}
	if len(known) == 0 || star && c.rng.IntN(8) == 0 {
		return "1:*"
	}
	i := c.rng.IntN(len(known))
	switch c.rng.IntN(3) {
	case 0:
		return fmt.Sprint(known[i])
	case 1:
		return fmt.Sprintf("%d:%d", known[i], known[min(len(known)-1, i+c.rng.IntN(span))])
	}
	if !star {
		return fmt.Sprint(known[i])
	}
	return fmt.Sprintf("%d:*", known[i])
}

func (c *client) n() int { return len(c.s.sel.uids) }

func (c *client) fetchFlags() error {
	items := c.pick([]string{"(FLAGS)", "(UID FLAGS)", "(FLAGS UID RFC822.SIZE)", "FLAGS", "FAST"})
	set := "1:*"
	if c.rng.IntN(3) == 0 {
		set = c.seqSet(c.n(), 20)
	}
	return c.run1("FETCH " + set + " " + items)
}

func (c *client) fetchMeta() error {
	items := c.pick([]string{"(UID ENVELOPE BODYSTRUCTURE)", "(ENVELOPE BODY INTERNALDATE)", "ALL", "(UID FLAGS ENVELOPE RFC822.SIZE BODYSTRUCTURE)"})
	return c.run1("FETCH " + c.seqSet(c.n(), 20) + " " + items)
}

func (c *client) fetchBody() error {
	return c.run1("FETCH " + c.seqSet(c.n(), 3) + " (UID RFC822.SIZE ENVELOPE BODYSTRUCTURE BODY.PEEK[])")
}

func (c *client) fetchHeader() error {
	items := c.pick([]string{"(ENVELOPE BODY.PEEK[HEADER])", "(UID ENVELOPE BODY.PEEK[HEADER] BODY.PEEK[TEXT])"})
	return c.run1("FETCH " + c.seqSet(c.n(), 5) + " " + items)
}

func (c *client) fetchPartial() error {
	off, n := c.rng.IntN(600), 1+c.rng.IntN(400)
	if c.rng.IntN(4) == 0 {
		off = 0
	}
	return c.run1(fmt.Sprintf("FETCH %s (ENVELOPE BODY.PEEK[]<%d.%d> RFC822.SIZE)", c.seqSet(c.n(), 5), off, n))
}

// fetchRead fetches without PEEK, which sets \Seen.
func (c *client) fetchRead() error {
	return c.run1("FETCH " + c.seqSet(c.n(), 2) + " (ENVELOPE BODY[])")
}

func (c *client) uidFetch() error {
	items := c.pick([]string{"(FLAGS)", "(UID FLAGS)", "(RFC822.SIZE ENVELOPE)", "(FLAGS BODY.PEEK[HEADER] ENVELOPE)"})
	set := c.uidSet(20, true)
	if c.rng.IntN(3) == 0 {
		set, items = "1:*", "(UID FLAGS)"
	}
	return c.run1("UID FETCH " + set + " " + items)
}

func (c *client) storeArgs() string {
	op := c.pick([]string{"+FLAGS", "+FLAGS", "-FLAGS", "-FLAGS", "FLAGS"})
	if c.rng.IntN(2) == 0 {
		op += ".SILENT"
	}
	return op + " (" + strings.Join(c.flags(3), " ") + ")"
}

func (c *client) store() error {
	return c.run1("STORE " + c.seqSet(c.n(), 5) + " " + c.storeArgs())
}

func (c *client) uidStore() error {
	return c.run1("UID STORE " + c.uidSet(5, true) + " " + c.storeArgs())
}

func (c *client) search() error {
	return c.run1("SEARCH " + c.searchKey())
}

func (c *client) uidSearch() error {
	return c.run1("UID SEARCH " + c.searchKey())
}

func (c *client) searchKey() string {
	keys := []string{"ALL", "UNSEEN", "SEEN", "FLAGGED", "DELETED", "ANSWERED",
		fmt.Sprintf("KEYWORD $Label%d", 1+c.rng.IntN(40)), "UNKEYWORD $Label1",
		`FROM "bob"`, `FROM "example.org"`, `SUBJECT "stress"`, "LARGER 2000", "OR FLAGGED UNSEEN", "NOT SEEN",
		fmt.Sprintf("%s UNSEEN", c.seqSet(c.n(), 20)), `BODY "needle7"`}
	if !c.s.rev2 {
		keys = append(keys, "RECENT", "NEW", "OLD") // gone from RFC 9051
	}
	return c.pick(keys)
}

func (c *client) expunge() error {
	if err := c.run1("STORE " + c.seqSet(c.n(), 2) + ` +FLAGS.SILENT (\Deleted)`); err != nil {
		return err
	}
	return c.run1("EXPUNGE")
}

func (c *client) uidExpunge() error {
	if !c.s.caps["UIDPLUS"] {
		return c.expunge()
	}
	set := c.uidSet(2, false)
	if set == "1:*" {
		return c.expunge()
	}
	if err := c.run1("UID STORE " + set + ` +FLAGS.SILENT (\Deleted)`); err != nil {
		return err
	}
	if c.s.sel == nil {
		return nil
	}
	return c.run1("UID EXPUNGE " + set)
}

// other picks a folder of the set other than the selected one.
func (c *client) other() string {
	var others []string
	for _, f := range stressFolders {
		if f != c.s.sel.name {
			others = append(others, f)
		}
	}
	return c.pick(others)
}

func (c *client) copy() error {
	if c.rng.IntN(3) == 0 {
		return c.run1("UID COPY " + c.uidSet(5, true) + " " + quoteBox(c.other()))
	}
	return c.run1("COPY " + c.seqSet(c.n(), 5) + " " + quoteBox(c.other()))
}

func (c *client) move(same bool) error {
	if !c.s.caps["MOVE"] {
		return c.copy()
	}
	to := c.other()
	if same {
		to = c.s.sel.name
	}
	if c.rng.IntN(3) == 0 {
		return c.run1("UID MOVE " + c.uidSet(3, false) + " " + quoteBox(to))
	}
	return c.run1("MOVE " + c.seqSet(c.n(), 3) + " " + quoteBox(to))
}
