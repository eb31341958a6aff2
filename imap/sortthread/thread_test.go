package sortthread

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"
)

// format writes threads as the THREAD response does (RFC 5256 §4).
func format(threads []Node) string {
	var b strings.Builder
	for _, n := range threads {
		b.WriteByte('(')
		writeNode(&b, n)
		b.WriteByte(')')
	}
	return b.String()
}

func writeNode(b *strings.Builder, n Node) {
	if n.Num != 0 {
		b.WriteString(strconv.FormatUint(uint64(n.Num), 10))
		if len(n.Children) == 1 {
			b.WriteByte(' ')
			writeNode(b, n.Children[0])
			return
		}
		if len(n.Children) > 1 {
			b.WriteByte(' ')
		}
	}
	for _, c := range n.Children {
		b.WriteByte('(')
		writeNode(b, c)
		b.WriteByte(')')
	}
}

// msg is a message for the thread tests: its Num, its sent date as hours
// after day, its subject, its Message-ID and its References.
func msg(num uint32, hour int, subject, id string, refs ...string) Message {
	return Message{Num: num, Date: day.Add(time.Duration(hour) * time.Hour), Subject: subject, MessageID: id, References: refs}
}

func TestThreadOrderedSubject(t *testing.T) {
	msgs := []Message{
		msg(1, 1, "hello", "a"),
		msg(2, 3, "Re: hello", "b"),
		msg(3, 2, "other", "c"),
		msg(4, 0, "Re: HELLO", "d"),
		msg(5, 5, "[list] other", "e"),
		msg(6, 4, "", "f"),
	}
	got, err := Thread(OrderedSubject, msgs)
	if err != nil {
		t.Fatal(err)
	}
	// Each base subject is a thread whose earliest message is the parent
	// of the others, threads in the order of their first messages.
	if want := "(4 (1)(2))(3 5)(6)"; format(got) != want {
		t.Errorf("ORDEREDSUBJECT = %s, want %s", format(got), want)
	}
}

func TestThreadReferences(t *testing.T) {
	for _, tc := range []struct {
		name string
		msgs []Message
		want string
	}{
		{"chain", []Message{msg(1, 0, "x", "a"), msg(2, 1, "Re: x", "b", "a"), msg(3, 2, "Re: x", "c", "a", "b")}, "(1 2 3)"},
		{"siblings by date", []Message{msg(1, 0, "x", "a"), msg(2, 3, "Re: x", "b", "a"), msg(3, 2, "Re: x", "c", "a")}, "(1 (3)(2))"},
		// A missing parent with two replies stays as a dummy at the top.
		{"missing root", []Message{msg(2, 1, "Re: x", "b", "gone"), msg(3, 2, "Re: x", "c", "gone")}, "((2)(3))"},
		// With one reply the dummy goes and the reply is the thread.
		{"missing root, one child", []Message{msg(2, 1, "Re: x", "b", "gone"), msg(3, 0, "y", "c")}, "(3)(2)"},
		// A missing message in the middle is spliced out.
		{"missing middle", []Message{msg(1, 0, "x", "a"), msg(3, 2, "Re: x", "c", "a", "gone")}, "(1 3)"},
		{"in-reply-to", []Message{msg(1, 0, "x", "a"), {Num: 2, Date: day.Add(time.Hour), Subject: "y", MessageID: "b", InReplyTo: "a"}}, "(1 2)"},
		// References win over In-Reply-To.
		{"references first", []Message{msg(1, 0, "x", "a"), msg(2, 1, "y", "b"),
			{Num: 3, Date: day.Add(2 * time.Hour), Subject: "z", MessageID: "c", InReplyTo: "a", References: []string{"b"}}}, "(1)(2 3)"},
		// A truncated References: the message's own header decides.
		{"reparented", []Message{msg(1, 0, "x", "a"), msg(2, 1, "y", "b"), msg(3, 2, "z", "d", "a", "c"), msg(4, 3, "w", "c", "b")}, "(1)(2 4 3)"},
		{"loop", []Message{msg(1, 0, "x", "a", "b"), msg(2, 1, "y", "b", "a")}, "(2 1)"},
		{"self", []Message{msg(1, 0, "x", "a", "a")}, "(1)"},
		{"loop in references", []Message{msg(1, 0, "x", "a", "b", "c", "b"), msg(2, 1, "y", "b")}, "(2 1)"},
		// The first of two messages with one id keeps it.
		{"duplicate id", []Message{msg(1, 0, "x", "a"), msg(2, 1, "y", "a"), msg(3, 2, "z", "c", "a")}, "(1 3)(2)"},
		{"no id", []Message{msg(1, 0, "x", ""), msg(2, 1, "y", ""), msg(3, 2, "z", "c", "")}, "(1)(2)(3)"},
		// Step 6: threads merged by base subject.
		{"reply joins", []Message{msg(1, 0, "topic", "a"), msg(2, 1, "Re: topic", "b")}, "(1 2)"},
		{"reply first", []Message{msg(1, 0, "Re: topic", "a"), msg(2, 1, "topic", "b")}, "(2 1)"},
		{"two originals", []Message{msg(1, 0, "topic", "a"), msg(2, 1, "Topic", "b")}, "((1)(2))"},
		{"two replies", []Message{msg(1, 0, "Re: topic", "a"), msg(2, 1, "re: topic", "b")}, "((1)(2))"},
		{"empty subjects", []Message{msg(1, 0, "", "a"), msg(2, 1, "Re:", "b")}, "(1)(2)"},
		{"into a dummy", []Message{msg(2, 1, "Re: x", "b", "gone"), msg(3, 2, "Re: x", "c", "gone"), msg(4, 0, "x", "d")},
			"((4)(2)(3))"},
		{"dummies merged", []Message{msg(2, 1, "Re: x", "b", "g1"), msg(3, 2, "Re: x", "c", "g1"),
			msg(4, 3, "Re: x", "d", "g2"), msg(5, 4, "Re: x", "e", "g2")}, "((2)(3)(4)(5))"},
		// A merged thread keeps its replies below its root.
		{"merged with children", []Message{msg(1, 0, "topic", "a"), msg(2, 1, "Re: topic", "b"), msg(3, 2, "Re: topic", "c", "b")},
			"(1 2 3)"},
		{"third original", []Message{msg(1, 0, "topic", "a"), msg(2, 1, "topic", "b"), msg(3, 2, "topic", "c")}, "((1)(2)(3))"},
	} {
		got, err := Thread(References, tc.msgs)
		if err != nil {
			t.Fatal(err)
		}
		if format(got) != tc.want {
			t.Errorf("%s: REFERENCES = %s, want %s", tc.name, format(got), tc.want)
		}
		checkThreads(t, tc.name, tc.msgs, got, true)
	}
}

func TestThreadUnknown(t *testing.T) {
	_, err := Thread("SUBJECT", nil)
	var e *UnknownAlgorithmError
	if !errors.As(err, &e) || e.Algorithm != "SUBJECT" {
		t.Fatalf("Thread(SUBJECT) = %v", err)
	}
	for _, alg := range []Algorithm{OrderedSubject, References} {
		if got, err := Thread(alg, nil); err != nil || len(got) != 0 {
			t.Errorf("Thread(%s) of nothing = %v, %v", alg, got, err)
		}
	}
}

// checkThreads checks what every thread response must be: each message
// once, and a dummy only at the top with two or more children (none at
// all if !dummies).
func checkThreads(t *testing.T, name string, msgs []Message, threads []Node, dummies bool) {
	t.Helper()
	seen := map[uint32]int{}
	var walk func(n Node, top bool)
	walk = func(n Node, top bool) {
		if n.Num == 0 {
			if !dummies || !top || len(n.Children) < 2 {
				t.Errorf("%s: a dummy with %d children (top %v) in %s", name, len(n.Children), top, format(threads))
			}
		} else {
			seen[n.Num]++
		}
		for _, c := range n.Children {
			walk(c, false)
		}
	}
	for _, n := range threads {
		walk(n, true)
	}
	for _, m := range msgs {
		if seen[m.Num] != 1 {
			t.Errorf("%s: message %d is %d times in %s", name, m.Num, seen[m.Num], format(threads))
		}
	}
	if len(seen) != len(msgs) {
		t.Errorf("%s: %d messages threaded, %d given: %s", name, len(seen), len(msgs), format(threads))
	}
}

// FuzzThread threads messages made from the input (ids, references and
// subjects from small sets, so that they meet) and checks the response's
// shape.
func FuzzThread(f *testing.F) {
	f.Add([]byte("\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c"))
	f.Add([]byte("\x00\x00\x00\x00\x11\x11\x11\x11\x22\x22\x22\x22\x33\x33\x33\x33"))
	f.Add([]byte("\xff\x10\x20\x30\x40\x50\x60\x70\x80\x90\xa0\xb0\xc0\xd0\xe0\xf0"))
	subjects := []string{"", "x", "Re: x", "y", "Fwd: y", "[l] x", "x (fwd)", "re: re: y"}
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > 400 {
			b = b[:400]
		}
		var msgs []Message
		for i := 0; i+3 < len(b); i += 4 {
			m := Message{Num: uint32(len(msgs) + 1), Date: day.Add(time.Duration(b[i]%8) * time.Hour),
				Subject: subjects[b[i+1]%8], MessageID: "m" + strconv.Itoa(int(b[i+2]%12))}
			if b[i+2]%12 == 11 {
				m.MessageID = ""
			}
			for r := b[i+3]; r != 0; r >>= 3 {
				m.References = append(m.References, "m"+strconv.Itoa(int(r%8)))
			}
			if b[i]&0x80 != 0 && len(m.References) > 0 {
				m.InReplyTo, m.References = m.References[0], nil
			}
			msgs = append(msgs, m)
		}
		for _, alg := range []Algorithm{OrderedSubject, References} {
			got, err := Thread(alg, msgs)
			if err != nil {
				t.Fatal(err)
			}
			checkThreads(t, string(alg), msgs, got, alg == References)
		}
	})
}
