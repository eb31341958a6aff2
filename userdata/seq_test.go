package userdata

import (
	"slices"
	"testing"
)

func TestSeqToUIDs(t *testing.T) {
	uids := []UID{3, 4, 9, 10, 11, 40}
	for _, tc := range []struct {
		ranges []SeqRange
		want   []UID
	}{
		{[]SeqRange{{1, 0}}, uids},
		{[]SeqRange{{2, 2}}, []UID{4}},
		{[]SeqRange{{5, 3}}, []UID{9, 10, 11}},
		{[]SeqRange{{0, 0}}, []UID{40}},
		{[]SeqRange{{6, 9}}, []UID{40}},
		{[]SeqRange{{7, 9}}, nil},
		{[]SeqRange{{5, 6}, {1, 1}}, []UID{3, 11, 40}},
	} {
		set := SeqToUIDs(uids, tc.ranges)
		var got []UID
		for _, u := range uids {
			if set.Contains(u) {
				got = append(got, u)
			}
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%v: got %v (set %v), want %v", tc.ranges, got, set, tc.want)
		}
	}
	if set := SeqToUIDs(nil, []SeqRange{{1, 0}}); len(set) != 0 {
		t.Errorf("empty folder: %v", set)
	}
}
