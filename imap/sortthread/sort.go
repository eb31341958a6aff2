package sortthread

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Address is what the sort keys use of an address: its display name
// (decoded from encoded-words), its mailbox (local part) and host.
type Address struct {
	Name, Mailbox, Host string
}

// Message is what sorting and threading need of one message.
type Message struct {
	// Num is the number returned for the message: its sequence number or
	// its UID, as the command asked. Messages equal by every key keep
	// the order of Num.
	Num uint32
	// Arrival is the message's internal date (ARRIVAL).
	Arrival time.Time
	// Date is the Date header's time; zero when it is missing or cannot
	// be parsed, and then Arrival stands for it (RFC 5256 §2.2).
	Date time.Time
	// Size is the message's RFC822.SIZE.
	Size int64
	// Subject is the Subject header, decoded from encoded-words.
	Subject string
	// From, To and Cc are the first address of each header; zero when
	// the header is missing or empty.
	From, To, Cc Address
	// MessageID, InReplyTo and References are the message ids of those
	// headers, without their angle brackets, References in the header's
	// order. They matter only to the REFERENCES thread algorithm.
	MessageID  string
	InReplyTo  string
	References []string
}

// sentDate is the message's sent date, in UTC: Date, or Arrival without
// one.
func (m *Message) sentDate() time.Time {
	if m.Date.IsZero() {
		return m.Arrival.UTC()
	}
	return m.Date.UTC()
}

// Key is a sort key.
type Key int

// The sort keys of RFC 5256 §3 and RFC 5957.
const (
	Arrival     Key = iota + 1 // the internal date
	Cc                         // the mailbox of the first Cc address
	Date                       // the sent date (the internal date without a Date header)
	From                       // the mailbox of the first From address
	Size                       // the size
	Subject                    // the base subject
	To                         // the mailbox of the first To address
	DisplayFrom                // the display name of the first From address, or its address
	DisplayTo                  // the display name of the first To address, or its address
)

var keyNames = map[Key]string{Arrival: "ARRIVAL", Cc: "CC", Date: "DATE", From: "FROM", Size: "SIZE",
	Subject: "SUBJECT", To: "TO", DisplayFrom: "DISPLAYFROM", DisplayTo: "DISPLAYTO"}

// String returns the key's name in the SORT command.
func (k Key) String() string {
	if n, ok := keyNames[k]; ok {
		return n
	}
	return fmt.Sprintf("Key(%d)", int(k))
}

// ParseKey returns the key named name (any case), or false.
func ParseKey(name string) (Key, bool) {
	for k, n := range keyNames {
		if strings.EqualFold(n, name) {
			return k, true
		}
	}
	return 0, false
}

// Criterion is one sort key, in reverse order if Reverse.
type Criterion struct {
	Key     Key
	Reverse bool
}

// display is an address's display sort value (RFC 5957 §3): its name if
// not empty, else "mailbox@host", else the mailbox, else "".
func (a Address) display() string {
	switch {
	case a.Name != "":
		return a.Name
	case a.Mailbox != "" && a.Host != "":
		return a.Mailbox + "@" + a.Host
	}
	return a.Mailbox
}

// key is one sort key's value for a message: a number (dates as Unix
// nanoseconds, sizes) or a string folded to upper case, so that the
// comparisons of the sort are plain ones.
type key struct {
	n int64
	s string
}

// keyed is a message's number with its keys, computed once.
type keyed struct {
	num  uint32
	keys []key // one per criterion
}

// Sort returns the messages' numbers in the order of the criteria (RFC
// 5256 §3): each criterion orders what the ones before leave equal, and
// messages equal by all of them keep the order of Num (which should be
// unique). An empty criteria list is an error, as is an unknown key.
func Sort(msgs []Message, criteria []Criterion) ([]uint32, error) {
	if len(criteria) == 0 {
		return nil, fmt.Errorf("sortthread: no sort criteria")
	}
	for _, c := range criteria {
		if _, ok := keyNames[c.Key]; !ok {
			return nil, fmt.Errorf("sortthread: unknown sort key %v", c.Key)
		}
	}
	ks := make([]keyed, len(msgs))
	all := make([]key, len(msgs)*len(criteria))
	for i := range msgs {
		m := &msgs[i]
		k := keyed{num: m.Num, keys: all[i*len(criteria) : (i+1)*len(criteria) : (i+1)*len(criteria)]}
		for j, c := range criteria {
			v := &k.keys[j]
			switch c.Key {
			case Arrival:
				v.n = m.Arrival.UnixNano()
			case Date:
				v.n = m.sentDate().UnixNano()
			case Size:
				v.n = m.Size
			case Cc:
				v.s = foldKey(m.Cc.Mailbox)
			case From:
				v.s = foldKey(m.From.Mailbox)
			case To:
				v.s = foldKey(m.To.Mailbox)
			case Subject:
				base, _ := BaseSubject(m.Subject)
				v.s = foldKey(base)
			case DisplayFrom:
				v.s = foldKey(m.From.display())
			case DisplayTo:
				v.s = foldKey(m.To.display())
			}
		}
		ks[i] = k
	}
	slices.SortFunc(ks, func(a, b keyed) int {
		for j, c := range criteria {
			r := cmp.Compare(a.keys[j].n, b.keys[j].n)
			if r == 0 {
				r = strings.Compare(a.keys[j].s, b.keys[j].s)
			}
			if c.Reverse {
				r = -r
			}
			if r != 0 {
				return r
			}
		}
		return cmp.Compare(a.num, b.num)
	})
	out := make([]uint32, len(ks))
	for i, k := range ks {
		out[i] = k.num
	}
	return out, nil
}
