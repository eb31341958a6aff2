package sortthread

import (
	"slices"
	"testing"
	"time"
)

var day = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

func TestSort(t *testing.T) {
	plus2 := time.FixedZone("+0200", 2*3600)
	msgs := []Message{
		{Num: 1, Arrival: day.Add(3 * time.Hour), Date: day.Add(2 * time.Hour), Size: 300, Subject: "Re: beta",
			From: Address{Name: "Zed", Mailbox: "alice", Host: "a.example"}, To: Address{Mailbox: "bob", Host: "b.example"}},
		{Num: 2, Arrival: day.Add(1 * time.Hour), Date: time.Date(2026, 12, 1, 15, 0, 0, 0, plus2), Size: 100, Subject: "alpha",
			From: Address{Mailbox: "Carol", Host: "c.example"}, Cc: Address{Mailbox: "dave"}},
		{Num: 3, Arrival: day.Add(2 * time.Hour), Size: 200, Subject: "[list] Beta",
			From: Address{Mailbox: "bob", Host: "b.example"}, To: Address{Name: "Alice", Mailbox: "alice"}},
		{Num: 4, Arrival: day.Add(2 * time.Hour), Size: 200, Subject: "ALPHA (fwd)"},
	}
	for _, tc := range []struct {
		criteria []Criterion
		want     []uint32
	}{
		{[]Criterion{{Key: Arrival}}, []uint32{2, 3, 4, 1}},
		{[]Criterion{{Key: Arrival, Reverse: true}}, []uint32{1, 3, 4, 2}},
		// Dates compare as instants: 2's 15:00 +0200 is before 1's
		// 14:00 UTC. Without a Date header the arrival stands in.
		{[]Criterion{{Key: Date}}, []uint32{2, 1, 3, 4}},
		{[]Criterion{{Key: Size}}, []uint32{2, 3, 4, 1}},
		{[]Criterion{{Key: Size, Reverse: true}, {Key: Arrival}}, []uint32{1, 3, 4, 2}},
		// Equal by every key: the mailbox order.
		{[]Criterion{{Key: Size}, {Key: Arrival}}, []uint32{2, 3, 4, 1}},
		// Base subjects, without case: alpha alpha beta beta.
		{[]Criterion{{Key: Subject}}, []uint32{2, 4, 1, 3}},
		{[]Criterion{{Key: Subject, Reverse: true}, {Key: Size}}, []uint32{3, 1, 2, 4}},
		// Mailboxes without case; an empty one first.
		{[]Criterion{{Key: From}}, []uint32{4, 1, 3, 2}},
		{[]Criterion{{Key: To}}, []uint32{2, 4, 3, 1}},
		{[]Criterion{{Key: Cc}}, []uint32{1, 3, 4, 2}},
		// The display name when there is one, else the address:
		// "", "bob@b.example", "Carol@c.example", "Zed".
		{[]Criterion{{Key: DisplayFrom}}, []uint32{4, 3, 2, 1}},
		// "", "", "Alice", "bob@b.example".
		{[]Criterion{{Key: DisplayTo}}, []uint32{2, 4, 3, 1}},
	} {
		got, err := Sort(slices.Clone(msgs), tc.criteria)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("Sort(%v) = %v, want %v", tc.criteria, got, tc.want)
		}
	}
	if _, err := Sort(msgs, nil); err == nil {
		t.Error("Sort with no criteria: no error")
	}
	if _, err := Sort(msgs, []Criterion{{Key: 99}}); err == nil {
		t.Error("Sort with an unknown key: no error")
	}
	if got, err := Sort(nil, []Criterion{{Key: Date}}); err != nil || len(got) != 0 {
		t.Errorf("Sort of nothing = %v, %v", got, err)
	}
}

func TestParseKey(t *testing.T) {
	for k := Arrival; k <= DisplayTo; k++ {
		for _, name := range []string{k.String(), toLower(k.String())} {
			if got, ok := ParseKey(name); !ok || got != k {
				t.Errorf("ParseKey(%q) = %v, %v", name, got, ok)
			}
		}
	}
	for _, name := range []string{"", "REVERSE", "ARRIVALX", "Key(1)"} {
		if k, ok := ParseKey(name); ok {
			t.Errorf("ParseKey(%q) = %v", name, k)
		}
	}
}

func toLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}
