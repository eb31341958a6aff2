package sortthread

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
)

// Algorithm is a THREAD algorithm.
type Algorithm string

// The algorithms of RFC 5256.
const (
	OrderedSubject Algorithm = "ORDEREDSUBJECT"
	References     Algorithm = "REFERENCES"
)

// Node is a message in a thread, with its replies. Num 0 stands for a
// message that is not there (a dummy: referenced, but not in the set
// threaded), whose children are siblings in the response.
type Node struct {
	Num      uint32
	Children []Node
}

// Thread groups the messages into threads by algorithm and returns the
// threads in order (RFC 5256 §3): for ORDEREDSUBJECT, by base subject,
// each thread's first message by sent date the parent of the others; for
// REFERENCES, by the Message-ID, In-Reply-To and References headers, then
// merged by base subject. Siblings and threads are in the order of their
// sent dates (a dummy's is its first child's), then of Num.
func Thread(alg Algorithm, msgs []Message) ([]Node, error) {
	switch alg {
	case OrderedSubject:
		return orderedSubject(msgs), nil
	case References:
		return references(msgs), nil
	}
	return nil, &UnknownAlgorithmError{alg}
}

// UnknownAlgorithmError is Thread's error for an algorithm it does not
// have.
type UnknownAlgorithmError struct{ Algorithm Algorithm }

func (e *UnknownAlgorithmError) Error() string {
	return "sortthread: unknown thread algorithm " + strconv.Quote(string(e.Algorithm))
}

// item is a message with what threading compares of it, computed once:
// its sent date in Unix nanoseconds, its base subject folded to upper
// case, and whether the subject made it a reply or forward.
type item struct {
	m     *Message
	sent  int64
	base  string
	reply bool
}

func items(msgs []Message) []item {
	its := make([]item, len(msgs))
	for i := range msgs {
		m := &msgs[i]
		base, reply := BaseSubject(m.Subject)
		its[i] = item{m: m, sent: m.sentDate().UnixNano(), base: foldKey(base), reply: reply}
	}
	return its
}

// before orders messages by sent date, then Num.
func before(a, b *item) int {
	if c := cmp.Compare(a.sent, b.sent); c != 0 {
		return c
	}
	return cmp.Compare(a.m.Num, b.m.Num)
}

func orderedSubject(msgs []Message) []Node {
	its := items(msgs)
	ss := make([]*item, len(its))
	for i := range its {
		ss[i] = &its[i]
	}
	slices.SortFunc(ss, func(a, b *item) int {
		if c := strings.Compare(a.base, b.base); c != 0 {
			return c
		}
		return before(a, b)
	})
	type thread struct {
		first *item
		node  Node
	}
	var threads []thread
	for i := 0; i < len(ss); {
		j := i + 1
		for j < len(ss) && ss[j].base == ss[i].base {
			j++
		}
		t := thread{first: ss[i], node: Node{Num: ss[i].m.Num}}
		if j > i+1 {
			t.node.Children = make([]Node, 0, j-i-1)
		}
		for _, it := range ss[i+1 : j] {
			t.node.Children = append(t.node.Children, Node{Num: it.m.Num})
		}
		threads = append(threads, t)
		i = j
	}
	slices.SortFunc(threads, func(a, b thread) int { return before(a.first, b.first) })
	out := make([]Node, len(threads))
	for i, t := range threads {
		out[i] = t.node
	}
	return out
}

// container is a node of the REFERENCES algorithm: a message, or a dummy
// (msg nil) for a message id referenced but not in the set.
type container struct {
	msg      *item
	parent   *container
	children []*container
}

// ancestorOf reports whether c is d or above it.
func (c *container) ancestorOf(d *container) bool {
	for ; d != nil; d = d.parent {
		if d == c {
			return true
		}
	}
	return false
}

func (c *container) unlink() {
	if p := c.parent; p != nil {
		p.children = slices.DeleteFunc(p.children, func(x *container) bool { return x == c })
		c.parent = nil
	}
}

// link makes c a child of p, unless that would make a loop.
func link(p, c *container) {
	if c.ancestorOf(p) {
		return
	}
	c.unlink()
	c.parent = p
	p.children = append(p.children, c)
}

// first is the message that stands for c in orderings: its own, or its
// first child's for a dummy (children sorted first).
func (c *container) first() *item {
	for c.msg == nil {
		if len(c.children) == 0 {
			return nil
		}
		c = c.children[0]
	}
	return c.msg
}

func compareContainers(a, b *container) int {
	ma, mb := a.first(), b.first()
	switch {
	case ma == nil && mb == nil:
		return 0
	case ma == nil:
		return -1
	case mb == nil:
		return 1
	}
	return before(ma, mb)
}

// sortTree sorts each set of siblings below c, depth first.
func sortTree(cs []*container) {
	for _, c := range cs {
		sortTree(c.children)
	}
	slices.SortFunc(cs, compareContainers)
}

func references(msgs []Message) []Node {
	// Step 1: the id table, and the links References make.
	ids := make(map[string]*container, len(msgs))
	unique := 0
	get := func(id string) *container {
		c := ids[id]
		if c == nil {
			c = &container{}
			ids[id] = c
		}
		return c
	}
	// A message without an id, or with one an earlier message has, gets
	// one of its own (taken in Num order: the lowest keeps the id).
	its := items(msgs)
	order := make([]*item, len(its))
	for i := range its {
		order[i] = &its[i]
	}
	slices.SortFunc(order, func(a, b *item) int { return cmp.Compare(a.m.Num, b.m.Num) })
	for _, it := range order {
		m := it.m
		id := m.MessageID
		if c := ids[id]; id == "" || c != nil && c.msg != nil {
			unique++
			id = "\x00" + strconv.Itoa(unique) // no header id has a NUL
		}
		refs := m.References
		if len(refs) == 0 && m.InReplyTo != "" {
			refs = []string{m.InReplyTo}
		}
		var prev *container
		for _, r := range refs {
			if r == "" {
				continue
			}
			c := get(r)
			if prev != nil && c.parent == nil {
				link(prev, c)
			}
			prev = c
		}
		self := get(id)
		self.msg = it
		if prev != nil && prev != self {
			link(prev, self) // breaks a link a truncated References made
		} else if prev == nil {
			self.unlink()
		}
	}
	// Step 2: the root set.
	root := &container{}
	for _, c := range ids {
		if c.parent == nil {
			root.children = append(root.children, c)
			c.parent = root
		}
	}
	// Step 4: dummies pruned.
	prune(root)
	// Step 5: the threads sorted (a dummy's children first).
	sortTree(root.children)
	// Step 6: threads merged by base subject.
	mergeSubjects(root)
	// Step 7: every set of siblings sorted.
	sortTree(root.children)
	out := make([]Node, 0, len(root.children))
	for _, c := range root.children {
		out = append(out, toNode(c))
	}
	return out
}

// prune removes the dummies without children below c and splices those
// with children into their parent's children, but for a dummy at the top
// with more than one child, which stays.
func prune(c *container) {
	var kept []*container
	for _, ch := range c.children {
		prune(ch)
		switch {
		case ch.msg != nil:
			kept = append(kept, ch)
		case len(ch.children) == 0:
			// Step 4.A: an empty dummy goes.
		case c.parent != nil || len(ch.children) == 1:
			// Step 4.B: its children take its place (at the top only
			// when there is one).
			for _, g := range ch.children {
				g.parent = c
				kept = append(kept, g)
			}
		default:
			kept = append(kept, ch)
		}
	}
	c.children = kept
}

// mergeSubjects merges the threads whose roots have one base subject
// (RFC 5256 §3 step 6).
func mergeSubjects(root *container) {
	type entry struct {
		c     *container
		reply bool
	}
	subjectOf := func(c *container) (string, bool) {
		it := c.msg
		if it == nil {
			it = c.children[0].msg // a dummy at the top has children with messages
			if it == nil {
				return "", false
			}
		}
		return it.base, it.reply
	}
	table := map[string]entry{}
	for _, c := range root.children {
		s, reply := subjectOf(c)
		if s == "" {
			continue
		}
		old, ok := table[s]
		if !ok || c.msg == nil && old.c.msg != nil || old.reply && !reply && old.c.msg != nil && c.msg != nil {
			table[s] = entry{c, reply}
		}
	}
	var kept []*container
	standIn := map[*container]*container{} // a thread root not reached yet, and the dummy that took its place
	for _, c := range slices.Clone(root.children) {
		if d, ok := standIn[c]; ok {
			kept = append(kept, d)
			continue
		}
		if c.parent != root {
			continue // merged into another thread already
		}
		s, reply := subjectOf(c)
		e, ok := table[s]
		if s == "" || !ok || e.c == c {
			kept = append(kept, c)
			continue
		}
		t := e.c
		switch {
		case t.msg == nil && c.msg == nil:
			for _, g := range c.children {
				g.parent = t
				t.children = append(t.children, g)
			}
			c.parent, c.children = nil, nil
		case t.msg == nil, !e.reply && reply:
			c.parent = t
			t.children = append(t.children, c)
		default:
			// Neither prevails: a new dummy holds both, where the
			// table's thread is.
			d := &container{parent: root, children: []*container{t, c}}
			t.parent, c.parent = d, d
			if i := slices.Index(kept, t); i >= 0 {
				kept[i] = d
			} else {
				standIn[t] = d
			}
			table[s] = entry{d, false}
		}
	}
	root.children = kept
}

func toNode(c *container) Node {
	n := Node{}
	if c.msg != nil {
		n.Num = c.msg.m.Num
	}
	for _, ch := range c.children {
		n.Children = append(n.Children, toNode(ch))
	}
	return n
}
