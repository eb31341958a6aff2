package main

// What the checker knows of a command: parsed back from the text the
// client sends, so that a transcript in a test and a live client are
// checked by the same rules.

import (
	"fmt"
	"strconv"
	"strings"
)

// fetchItem is one item a FETCH asked for, named as the response names it.
type fetchItem struct {
	key     string // FLAGS, UID, ENVELOPE, BODYSTRUCTURE, RFC822.SIZE, INTERNALDATE, BODY, BODY[...]
	partial bool
	off, n  uint64
}

// command is a command in progress and what its responses brought.
type command struct {
	tag  string
	kind string // FETCH, UID FETCH, SELECT, ... (for the rules and the rates)
	text string // as sent, without its literal
	uid  bool

	box      string // SELECT, EXAMINE, STATUS, APPEND, COPY, MOVE: the mailbox, normalized
	set      string // the sequence or UID set as sent
	items    []fetchItem
	storeOp  string // FLAGS, +FLAGS or -FLAGS
	silent   bool
	flags    []string // STORE's and APPEND's flags
	statusOf []string // STATUS items asked for
	syncLit  bool     // APPEND with a synchronizing literal
	// appendedID is the Message-ID of the message an APPEND sends.
	appendedID string
	enable     []string

	// Filled in when it begins, from the session.
	seqs       []uint32 // seq commands: the set, against the count
	uidRanges  [][2]uint32
	startUIDs  []uint32 // the known UIDs of the messages in the set
	allKnown   bool     // seq commands: startUIDs has every message's
	writeRO    bool     // a write command in a read-only mailbox
	newKeyword bool     // flags with a keyword the mailbox has not announced
	selecting  *mbox    // SELECT/EXAMINE: the mailbox being opened
	switched   bool     // SELECT/EXAMINE: responses are now the new mailbox's
	saw        map[string]bool

	// Gathered from the responses.
	fetched   map[uint32]*fetchEntry // by seq (seq commands) or UID (UID commands)
	expunged  map[uint32]bool        // UIDs expunged during the command
	searchGot bool
	status    *statusData
	listed    map[string]bool
	copyUID   *response // MOVE's untagged OK [COPYUID]
	sawCont   bool
	idling    bool
	nExpunged int  // EXPUNGE responses during the command
	broken    bool // a response during it did not parse: its results are not judged
}

type fetchEntry struct {
	data *fetchData
	raw  []byte // the last FETCH response for it
	seq  uint32
	// noUID: a FETCH for it already counted as lacking the UID.
	noUID bool
}

// normBox normalizes a mailbox name: INBOX in any case is INBOX.
func normBox(name string) string {
	if strings.EqualFold(name, "INBOX") {
		return "INBOX"
	}
	return name
}

// quoteBox quotes a mailbox name for a command.
func quoteBox(name string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(name) + `"`
}

// splitTop splits a command on the spaces outside parentheses, brackets
// and quotes.
func splitTop(s string) []string {
	var out []string
	depth, start := 0, 0
	inQuote := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case inQuote && c == '\\':
			i++
		case c == '"':
			inQuote = !inQuote
		case inQuote:
		case c == '(' || c == '[':
			depth++
		case c == ')' || c == ']':
			depth--
		case c == ' ' && depth == 0:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

func unquote(s string) string {
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		return strings.NewReplacer(`\\`, `\`, `\"`, `"`).Replace(s[1 : len(s)-1])
	}
	return s
}

func unparen(s string) string {
	if len(s) >= 2 && s[0] == '(' && s[len(s)-1] == ')' {
		return s[1 : len(s)-1]
	}
	return s
}

// parseCommand reads back a command the client sends (its first line,
// up to a literal). It knows the commands the stress mode sends.
func parseCommand(line string) (*command, error) {
	tok := splitTop(line)
	if len(tok) < 2 {
		return nil, fmt.Errorf("command %q: no tag and name", line)
	}
	c := &command{tag: tok[0], text: line, saw: map[string]bool{}}
	name := strings.ToUpper(tok[1])
	args := tok[2:]
	if name == "UID" {
		if len(args) == 0 {
			return nil, fmt.Errorf("command %q: UID alone", line)
		}
		c.uid = true
		name = "UID " + strings.ToUpper(args[0])
		args = args[1:]
	}
	c.kind = name
	need := func(n int) error {
		if len(args) < n {
			return fmt.Errorf("command %q: %s takes %d arguments", line, name, n)
		}
		return nil
	}
	switch name {
	case "SELECT", "EXAMINE":
		if err := need(1); err != nil {
			return nil, err
		}
		c.box = normBox(unquote(args[0]))
	case "STATUS":
		if err := need(2); err != nil {
			return nil, err
		}
		c.box = normBox(unquote(args[0]))
		for _, it := range strings.Fields(unparen(args[1])) {
			c.statusOf = append(c.statusOf, strings.ToUpper(it))
		}
	case "APPEND":
		if err := need(2); err != nil {
			return nil, err
		}
		c.box = normBox(unquote(args[0]))
		for _, a := range args[1:] {
			if strings.HasPrefix(a, "(") {
				c.flags = strings.Fields(unparen(a))
			}
		}
		lit := args[len(args)-1]
		c.syncLit = strings.HasPrefix(lit, "{") && !strings.HasSuffix(lit, "+}")
	case "FETCH", "UID FETCH":
		if err := need(2); err != nil {
			return nil, err
		}
		c.set = args[0]
		items, err := parseFetchItems(strings.Join(args[1:], " "))
		if err != nil {
			return nil, fmt.Errorf("command %q: %v", line, err)
		}
		c.items = items
		if c.uid && !c.wants("UID") {
			c.items = append(c.items, fetchItem{key: "UID"}) // RFC 3501 §6.4.8
		}
	case "STORE", "UID STORE":
		if err := need(3); err != nil {
			return nil, err
		}
		c.set = args[0]
		op := strings.ToUpper(args[1])
		c.silent = strings.HasSuffix(op, ".SILENT")
		c.storeOp = strings.TrimSuffix(op, ".SILENT")
		c.flags = strings.Fields(unparen(strings.Join(args[2:], " ")))
	case "COPY", "UID COPY", "MOVE", "UID MOVE":
		if err := need(2); err != nil {
			return nil, err
		}
		c.set = args[0]
		c.box = normBox(unquote(args[1]))
	case "UID EXPUNGE":
		if err := need(1); err != nil {
			return nil, err
		}
		c.set = args[0]
	case "ENABLE":
		for _, a := range args {
			c.enable = append(c.enable, strings.ToUpper(a))
		}
	}
	return c, nil
}

// parseFetchItems reads FETCH's items: one, or a parenthesized list.
func parseFetchItems(s string) ([]fetchItem, error) {
	var out []fetchItem
	for _, it := range splitTop(unparen(s)) {
		u := strings.ToUpper(it)
		switch u {
		case "FAST":
			out = append(out, fetchItem{key: "FLAGS"}, fetchItem{key: "INTERNALDATE"}, fetchItem{key: "RFC822.SIZE"})
			continue
		case "ALL":
			out = append(out, fetchItem{key: "FLAGS"}, fetchItem{key: "INTERNALDATE"}, fetchItem{key: "RFC822.SIZE"}, fetchItem{key: "ENVELOPE"})
			continue
		case "FLAGS", "UID", "ENVELOPE", "BODYSTRUCTURE", "RFC822.SIZE", "INTERNALDATE", "BODY":
			out = append(out, fetchItem{key: u})
			continue
		}
		name, rest, ok := strings.Cut(u, "[")
		if !ok || (name != "BODY" && name != "BODY.PEEK") {
			return nil, fmt.Errorf("FETCH item %q not known to the checker", it)
		}
		sec, part, ok := strings.Cut(rest, "]")
		if !ok {
			return nil, fmt.Errorf("FETCH item %q: no ]", it)
		}
		fi := fetchItem{key: "BODY[" + sec + "]"}
		if part != "" {
			var o, n uint64
			if _, err := fmt.Sscanf(part, "<%d.%d>", &o, &n); err != nil {
				return nil, fmt.Errorf("FETCH item %q: partial %q", it, part)
			}
			fi.partial, fi.off, fi.n = true, o, n
		}
		out = append(out, fi)
	}
	return out, nil
}

func (c *command) wants(key string) bool {
	for _, it := range c.items {
		if it.key == key {
			return true
		}
	}
	return false
}

// isWrite says whether a command changes the mailbox it runs in.
func (c *command) isWrite() bool {
	switch c.kind {
	case "STORE", "UID STORE", "MOVE", "UID MOVE":
		return true
	}
	return false
}

// noExpunge says whether EXPUNGE responses are forbidden during it.
func (c *command) noExpunge() bool {
	switch c.kind {
	case "FETCH", "STORE", "SEARCH":
		return true
	}
	return false
}

// expandSeq expands a sequence set against a mailbox of n messages.
func expandSeq(set string, n int) ([]uint32, error) {
	var out []uint32
	for _, r := range strings.Split(set, ",") {
		lo, hi, isRange := strings.Cut(r, ":")
		if !isRange {
			hi = lo
		}
		a, err1 := seqNum(lo, uint32(n))
		b, err2 := seqNum(hi, uint32(n))
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("set %q", set)
		}
		if a > b {
			a, b = b, a
		}
		for i := uint64(a); i <= uint64(b) && len(out) < maxSetSize; i++ {
			if i >= 1 && i <= uint64(n) {
				out = append(out, uint32(i))
			}
		}
	}
	return out, nil
}

// uidRanges parses a UID set; * is the largest UID there can be.
func uidRanges(set string) ([][2]uint32, error) {
	var out [][2]uint32
	for _, r := range strings.Split(set, ",") {
		lo, hi, isRange := strings.Cut(r, ":")
		if !isRange {
			hi = lo
		}
		a, err1 := seqNum(lo, 1<<32-1)
		b, err2 := seqNum(hi, 1<<32-1)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("set %q", set)
		}
		if a > b {
			a, b = b, a
		}
		out = append(out, [2]uint32{a, b})
	}
	return out, nil
}

func seqNum(s string, star uint32) (uint32, error) {
	if s == "*" {
		return star, nil
	}
	n, err := strconv.ParseUint(s, 10, 32)
	return uint32(n), err
}

func inRanges(rs [][2]uint32, u uint32) bool {
	for _, r := range rs {
		if u >= r[0] && u <= r[1] {
			return true
		}
	}
	return false
}
