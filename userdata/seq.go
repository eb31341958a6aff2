package userdata

import "sort"

// SeqRange is the message sequence numbers from Start to Stop inclusive
// (1-based, as in IMAP); Stop 0 means the last message ("*").
type SeqRange struct{ Start, Stop uint32 }

// SeqToUIDs turns sequence ranges into the UIDs they name, given the
// folder's UIDs in order (from Index.UIDs, or a session's own copy of them,
// which is what sequence numbers are relative to). Numbers past the end are
// ignored; a range given backwards (5:3) means 3:5. The result covers
// consecutive UIDs with one range each, so it stays small for 1:*.
func SeqToUIDs(uids []UID, ranges []SeqRange) UIDSet {
	n := uint32(len(uids))
	var set UIDSet
	for _, r := range ranges {
		lo, hi := r.Start, r.Stop
		if lo == 0 {
			lo = n
		}
		if hi == 0 {
			hi = n
		}
		if lo > hi {
			lo, hi = hi, lo
		}
		if lo == 0 || lo > n {
			continue
		}
		hi = min(hi, n)
		// uids is strictly increasing: a run of sequence numbers is one
		// UID range.
		set = append(set, UIDRange{Start: uids[lo-1], Stop: uids[hi-1]})
	}
	sort.Slice(set, func(i, j int) bool { return set[i].Start < set[j].Start })
	return set
}
