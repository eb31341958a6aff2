package imap

import (
	"slices"
	"strings"

	goimap "github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"github.com/mailsys/mailsys/userdata"
)

// view is a session's view of its open mailbox: the messages its client
// knows, numbered as the client numbers them. Its fields are guarded by
// the mailbox's mu.
//
// The client knows the server's UIDs (mailbox.uids), plus those removed
// since that it has not been told of (gone), less those added since that
// it has not been told of (added). UIDs only grow and changes are told in
// order, so added are the highest of the lot, and the client's messages
// are the first count() of the server's and gone's UIDs merged in order:
// its sequence number n is the n-th of them.
type view struct {
	mb       *mailbox
	readOnly bool
	rev2     bool // IMAP4rev2: no \Recent

	queue  []update       // changes not yet told, in order
	added  []userdata.UID // ascending: the server has them, the client not yet
	gone   []userdata.UID // ascending: the client has them, the server no more
	recent []userdata.UID // ascending: \Recent in this session
	// announced is how many of the folder's keywords the client has been
	// given in FLAGS: the keywords only grow, in order, so those are the
	// first announced of mailbox.keywords.
	announced int
	notify    chan struct{} // has a value when the queue may have grown
	// overflow is called, once, in a goroutine of its own, when the queue
	// passes maxQueue: a client that reads no updates is dropped rather
	// than let its queue grow without bound.
	overflow func()
}

// maxQueue bounds the changes queued on a view: 100,000 updates are a few
// megabytes, far more than a client that polls at all ever leaves.
const maxQueue = 100_000

type updateKind uint8

const (
	updateExpunge  updateKind = iota + 1 // uid left
	updateExists                         // uid came
	updateFlags                          // uid's flags are flags and keywords
	updateKeywords                       // the folder's keywords are keywords
)

// update is one change a view has not told its client yet.
type update struct {
	kind     updateKind
	uid      userdata.UID
	flags    userdata.Flags
	keywords []string
	done     func() // ends the hold on the body of an expunged message
}

// removed queues the removal of uids (which the server's view no longer
// has). Those the client was not told of yet simply vanish; each of the
// others stays addressable, its body held (hold, if not nil), until the
// client is told. mb.mu is held.
func (v *view) removed(uids []userdata.UID, hold func() func()) {
	last := -1
	for _, uid := range uids {
		if i, ok := slices.BinarySearch(v.added, uid); ok {
			v.added = slices.Delete(v.added, i, i+1)
			if j, ok := slices.BinarySearch(v.recent, uid); ok {
				v.recent = slices.Delete(v.recent, j, j+1)
			}
			continue
		}
		i, _ := slices.BinarySearch(v.gone, uid)
		v.gone = slices.Insert(v.gone, i, uid)
		v.queue = append(v.queue, update{kind: updateExpunge, uid: uid})
		last = len(v.queue) - 1
	}
	if last >= 0 && hold != nil {
		// One hold for the whole change, ended once the client has been
		// told of its last expunge: updates are told in order.
		v.queue[last].done = hold()
	}
}

// count is the number of messages the client knows.
func (v *view) count() uint32 {
	return uint32(len(v.mb.uids) + len(v.gone) - len(v.added))
}

// seqOf is the client's sequence number of uid, 0 if it does not know it.
func (v *view) seqOf(uid userdata.UID) uint32 {
	if _, ok := slices.BinarySearch(v.added, uid); ok {
		return 0
	}
	i, inServer := slices.BinarySearch(v.mb.uids, uid)
	j, inGone := slices.BinarySearch(v.gone, uid)
	if !inServer && !inGone {
		return 0
	}
	return uint32(i + j + 1)
}

// walk calls fn for the client's messages from sequence number lo to hi
// (1 <= lo, hi <= count()), in order, until fn returns false.
func (v *view) walk(lo, hi uint32, fn func(seq uint32, uid userdata.UID) bool) {
	s, g := v.mb.uids, v.gone
	// Find where the lo-th message is: the gone ones before it, then the
	// server's.
	j := 0
	for j < len(g) {
		i, _ := slices.BinarySearch(s, g[j])
		if uint32(i+j) >= lo-1 {
			break
		}
		j++
	}
	i := int(lo-1) - j
	for seq := lo; seq <= hi; seq++ {
		var uid userdata.UID
		if j < len(g) && (i >= len(s) || g[j] < s[i]) {
			uid = g[j]
			j++
		} else {
			uid = s[i]
			i++
		}
		if !fn(seq, uid) {
			return
		}
	}
}

// numRecent is how many of the client's messages are \Recent in this
// session.
// Every recent UID is the client's or yet to be told (added).
func (v *view) numRecent() uint32 {
	n := len(v.recent)
	for _, uid := range v.added {
		if _, ok := slices.BinarySearch(v.recent, uid); ok {
			n--
		}
	}
	return uint32(n)
}

// flags is the FLAGS a FETCH shows for a message (see flagger). mb.mu is
// held.
func (v *view) flags(uid userdata.UID, f userdata.Flags, keywords []string) []goimap.Flag {
	fl := v.flagger()
	return fl.flags(uid, f, keywords)
}

// flagger is what a view's FLAGS depend on, taken under mb.mu: valid while
// it is held, or for a FETCH once recent is a copy.
type flagger struct {
	rev2   bool
	recent []userdata.UID // ascending
	known  []string       // the keywords the client has been told of
}

func (v *view) flagger() flagger {
	return flagger{rev2: v.rev2, recent: v.recent, known: v.mb.keywords[:v.announced]}
}

// flags is the FLAGS a FETCH shows for a message: its flags, \Recent
// when it is recent here (IMAP4rev1 only), and of its keywords those the
// client has been told of; the others show once the FLAGS naming them
// has gone out, in the FETCH queued with them.
func (fl *flagger) flags(uid userdata.UID, f userdata.Flags, keywords []string) []goimap.Flag {
	out := imapFlags(f, nil)
	if !fl.rev2 {
		if _, ok := slices.BinarySearch(fl.recent, uid); ok {
			out = append(out, flagRecent)
		}
	}
	for _, k := range keywords {
		if hasKeyword(fl.known, k) {
			out = append(out, goimap.Flag(k))
		}
	}
	return out
}

// mailboxFlags is the FLAGS of the folder with the first n of its keywords.
func (v *view) mailboxFlags(n int) []goimap.Flag {
	out := slices.Clone(systemFlagList)
	for _, k := range v.mb.keywords[:n] {
		out = append(out, goimap.Flag(k))
	}
	return out
}

// response is one untagged response a poll writes: of its kind,
// updateExpunge is * seq EXPUNGE, updateExists * count EXISTS and
// * recent RECENT, updateFlags * seq FETCH (UID uid FLAGS (flags)), and
// updateKeywords * FLAGS (flags).
type response struct {
	kind   updateKind
	seq    uint32
	count  uint32
	recent uint32
	uid    userdata.UID
	flags  []goimap.Flag
}

// take dequeues what the client may be told now (no expunge unless
// allowExpunge: during FETCH, STORE and SEARCH, RFC 3501 7.4.1) and
// returns the responses, and the holds to end once they are written. The
// view's state moves on as if they were written. mb.mu is held.
func (v *view) take(allowExpunge bool) (out []response, done []func()) {
	if len(v.queue) == 0 {
		return nil, nil
	}
	rest := v.queue[:0]
	exists := false
	flush := func() {
		if exists {
			out = append(out, response{kind: updateExists, count: v.count(), recent: v.numRecent()})
			exists = false
		}
	}
	for _, u := range v.queue {
		switch u.kind {
		case updateExpunge:
			if !allowExpunge {
				rest = append(rest, u)
				continue
			}
			flush()
			seq := v.seqOf(u.uid)
			i, ok := slices.BinarySearch(v.gone, u.uid)
			if ok {
				v.gone = slices.Delete(v.gone, i, i+1)
				out = append(out, response{kind: updateExpunge, seq: seq})
			}
			if i, ok := slices.BinarySearch(v.recent, u.uid); ok {
				v.recent = slices.Delete(v.recent, i, i+1)
			}
			if u.done != nil {
				done = append(done, u.done)
			}
		case updateExists:
			i, ok := slices.BinarySearch(v.added, u.uid)
			if !ok {
				continue // gone before the client was told
			}
			v.added = slices.Delete(v.added, i, i+1)
			exists = true
		case updateKeywords:
			if len(u.keywords) > v.announced {
				flush()
				v.announced = len(u.keywords)
				out = append(out, response{kind: updateKeywords, flags: v.mailboxFlags(v.announced)})
			}
		case updateFlags:
			seq := v.seqOf(u.uid)
			if seq == 0 {
				continue // not told of yet: the client will fetch it
			}
			flush()
			out = append(out, response{kind: updateFlags, seq: seq, uid: u.uid, flags: v.flags(u.uid, u.flags, u.keywords)})
		}
	}
	flush()
	clear(v.queue[len(rest):])
	v.queue = rest
	return out, done
}

// write writes responses taken from the view.
func write(w *imapserver.UpdateWriter, out []response) error {
	for _, r := range out {
		var err error
		switch r.kind {
		case updateExpunge:
			err = w.WriteExpunge(r.seq)
		case updateExists:
			if err = w.WriteNumMessages(r.count); err == nil {
				err = w.WriteNumRecent(r.recent)
			}
		case updateFlags:
			err = w.WriteMessageFlags(r.seq, goimap.UID(r.uid), r.flags)
		case updateKeywords:
			err = w.WriteMailboxFlags(r.flags)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// drop ends the view: the holds on bodies its client was never told were
// expunged end. mb.mu is held.
func (v *view) drop() (done []func()) {
	for _, u := range v.queue {
		if u.done != nil {
			done = append(done, u.done)
		}
	}
	v.queue = nil
	return done
}

// hasKeyword reports whether kws holds k, without regard to case.
func hasKeyword(kws []string, k string) bool {
	return slices.ContainsFunc(kws, func(x string) bool { return strings.EqualFold(x, k) })
}

// firstFrom is the client's sequence number of its first message with a
// UID of uid or more, 0 if none.
func (v *view) firstFrom(uid userdata.UID) uint32 {
	i, _ := slices.BinarySearch(v.mb.uids, uid)
	j, _ := slices.BinarySearch(v.gone, uid)
	if seq := uint32(i + j + 1); seq <= v.count() {
		return seq
	}
	return 0
}

// flagRecent is IMAP4rev1's \Recent, which go-imap v2 does not name.
const flagRecent goimap.Flag = `\Recent`
