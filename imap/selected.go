package imap

import (
	"errors"
	"io"
	"slices"

	goimap "github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"github.com/mailsys/mailsys/userdata"
)

// selected is a session's view of its selected folder.
type selected struct {
	sess     *session
	mb       *mailbox
	folder   userdata.Folder // as of SELECT: its ID, name and UIDVALIDITY
	tracker  *imapserver.SessionTracker
	readOnly bool
	saved    goimap.UIDSet // the last SEARCH RETURN (SAVE) result, for "$"
}

// Select implements imapserver.Session.
func (s *session) Select(name string, options *goimap.SelectOptions) (*goimap.SelectData, error) {
	if s.sel != nil {
		s.sel.close()
		s.sel = nil
	}
	f, err := s.folder(name)
	if err != nil {
		return nil, s.fail("select", err)
	}
	mb, err := s.srv.open.acquire(s.ctx(), s.user.ID, f.ID)
	if err != nil {
		return nil, s.fail("select", err)
	}
	sel := &selected{sess: s, mb: mb, folder: f, readOnly: options != nil && options.ReadOnly}
	mb.mu.Lock()
	sel.tracker = mb.tracker.NewSession()
	n := uint32(len(mb.uids))
	mb.mu.Unlock()
	// The counts and UIDNEXT read after the tracker joined are at least as
	// new as the sequence numbers it starts from.
	if f, err = s.srv.users.FolderByID(s.ctx(), s.user.ID, f.ID); err != nil {
		sel.close()
		return nil, s.fail("select", err)
	}
	sel.folder = f
	s.sel = sel
	flags := []goimap.Flag{goimap.FlagSeen, goimap.FlagAnswered, goimap.FlagFlagged, goimap.FlagDeleted, goimap.FlagDraft}
	perm := append(slices.Clone(flags), goimap.FlagWildcard)
	if sel.readOnly {
		perm = []goimap.Flag{}
	}
	return &goimap.SelectData{
		Flags:          flags,
		PermanentFlags: perm,
		NumMessages:    n,
		UIDNext:        goimap.UID(f.UIDNext),
		UIDValidity:    f.UIDValidity,
		HighestModSeq:  f.HighestModSeq,
	}, nil
}

// Unselect implements imapserver.Session.
func (s *session) Unselect() error {
	if s.sel != nil {
		s.sel.close()
		s.sel = nil
	}
	return nil
}

func (sel *selected) close() {
	sel.tracker.Close()
	sel.sess.srv.open.release(sel.mb)
}

// seqUID is a message as the client knows it.
type seqUID struct {
	seq uint32 // in the client's numbering
	uid userdata.UID
}

// resolve returns the messages of set that the client knows, in order.
// Sequence numbers are the client's: messages expunged since it was last
// told are left out, and so are messages it has not been told of yet.
func (sel *selected) resolve(set goimap.NumSet) ([]seqUID, error) {
	if goimap.IsSearchRes(set) {
		set = sel.saved
	}
	mb := sel.mb
	mb.mu.Lock()
	defer mb.mu.Unlock()
	n := uint32(len(mb.uids))
	// The client's count: the server's, less what it has not been told.
	known := uint32(0)
	for ss := n; ss > 0; ss-- {
		if cs := sel.tracker.EncodeSeqNum(ss); cs != 0 {
			known = cs
			break
		}
	}
	// The ranges are resolved, sorted and merged first, so that a set of
	// many ranges, overlapping or not, costs its size and the messages it
	// names, not their product.
	var out []seqUID
	switch set := set.(type) {
	case goimap.SeqSet:
		rs := make([]numRange, 0, len(set))
		for _, r := range set {
			if start, stop := staticRange(r.Start, r.Stop, known); start != 0 && start <= known {
				rs = append(rs, numRange{start, min(stop, known)})
			}
		}
		for _, r := range normalizeRanges(rs) {
			for cs := uint64(r.lo); cs <= uint64(r.hi); cs++ {
				ss := sel.tracker.DecodeSeqNum(uint32(cs))
				if ss == 0 || ss > n {
					continue
				}
				out = append(out, seqUID{uint32(cs), mb.uids[ss-1]})
			}
		}
	case goimap.UIDSet:
		var maxUID uint32
		for ss := n; ss > 0; ss-- {
			if sel.tracker.EncodeSeqNum(ss) != 0 {
				maxUID = uint32(mb.uids[ss-1])
				break
			}
		}
		rs := make([]numRange, 0, len(set))
		for _, r := range set {
			if start, stop := staticRange(uint32(r.Start), uint32(r.Stop), maxUID); start != 0 {
				rs = append(rs, numRange{start, stop})
			}
		}
		i := 0
		for _, r := range normalizeRanges(rs) {
			j, _ := slices.BinarySearch(mb.uids[i:], userdata.UID(r.lo))
			for i += j; i < len(mb.uids) && uint32(mb.uids[i]) <= r.hi; i++ {
				if cs := sel.tracker.EncodeSeqNum(uint32(i) + 1); cs != 0 {
					out = append(out, seqUID{cs, mb.uids[i]})
				}
			}
		}
	case nil:
	default:
		return nil, errors.New("imap: unknown number set")
	}
	return out, nil
}

// staticRange resolves "*" (0) in a range to max and orders its ends. A
// range of "*" in an empty folder resolves to 0, nothing.
func staticRange(start, stop, max uint32) (uint32, uint32) {
	if start == 0 {
		start = max
	}
	if stop == 0 {
		stop = max
	}
	if start > stop {
		start, stop = stop, start
	}
	return start, stop
}

// uidSet is the index's form of the UIDs of msgs.
func uidSet(msgs []seqUID) userdata.UIDSet {
	var set userdata.UIDSet
	for _, m := range msgs {
		if n := len(set); n > 0 && set[n-1].Stop+1 == m.uid {
			set[n-1].Stop = m.uid
			continue
		}
		set = append(set, userdata.UIDRange{Start: m.uid, Stop: m.uid})
	}
	return set
}

// imapUIDSet is go-imap's form of uids.
func imapUIDSet(uids []userdata.UID) goimap.UIDSet {
	var set goimap.UIDSet
	for _, u := range uids {
		set.AddNum(goimap.UID(u))
	}
	return set
}

// Expunge implements imapserver.Session: EXPUNGE, UID EXPUNGE and CLOSE.
// The EXPUNGE responses reach the client through the tracker, like those
// of any other session's expunge.
func (s *session) Expunge(w *imapserver.ExpungeWriter, uids *goimap.UIDSet) error {
	sel := s.sel
	if sel.readOnly {
		if *w == (imapserver.ExpungeWriter{}) {
			return nil // CLOSE of an EXAMINEd folder expunges nothing
		}
		return errReadOnly
	}
	var set userdata.UIDSet
	if uids != nil {
		msgs, err := sel.resolve(*uids)
		if err != nil {
			return err
		}
		if len(msgs) == 0 {
			return nil
		}
		set = uidSet(msgs)
	}
	if _, err := s.srv.users.Expunge(userdata.WithOrigin(s.ctx(), sel.tracker), s.user.ID, sel.folder.ID, set); err != nil {
		return s.fail("expunge", err)
	}
	return nil
}

// Search implements imapserver.Session. The criteria are compiled once
// (compileSearch); flags, dates, sizes and numbers are matched from the
// index, and a body is read only for a criterion on the header or text,
// one message at a time. A search of more than maxSearchKeys keys or
// maxSearchDepth levels is refused with BAD. If the client hangs up while
// a search runs, the search stops and the connection is closed.
func (s *session) Search(kind imapserver.NumKind, criteria *goimap.SearchCriteria, options *goimap.SearchOptions) (*goimap.SearchData, error) {
	sel := s.sel
	all, err := sel.resolve(goimap.SeqSet{{Start: 1, Stop: 0}})
	if err != nil {
		return nil, err
	}
	nums := &searchNumbers{Saved: sel.saved}
	if n := len(all); n > 0 {
		nums.MaxSeq, nums.MaxUID = all[n-1].seq, uint32(all[n-1].uid)
	}
	sc, err := compileSearch(criteria, nums)
	if err != nil {
		return nil, err
	}
	watch := peerWatch{conn: s.conn.NetConn()}
	var found []seqUID
	i := 0
	err = s.srv.users.Messages(s.ctx(), s.user.ID, sel.folder.ID, uidSet(all), func(m *userdata.Message) error {
		if watch.gone() {
			return errPeerGone
		}
		for i < len(all) && all[i].uid < m.UID {
			i++
		}
		if i == len(all) || all[i].uid != m.UID {
			return nil
		}
		sm := searchMessage{SeqNum: all[i].seq, UID: goimap.UID(m.UID), Flags: imapFlags(m.Flags, m.Keywords), InternalDate: m.InternalDate, Size: m.Size, ModSeq: m.ModSeq}
		if sc.body {
			ref := m.Ref
			sm.Open = func() (io.ReadCloser, error) {
				b, err := s.srv.store.Open(s.ctx(), ref)
				if err != nil {
					return nil, err
				}
				return readCloser{io.NewSectionReader(b, 0, b.Size()), b}, nil
			}
		}
		ok, err := sc.match(&sm)
		if err != nil {
			return err
		}
		if ok {
			found = append(found, all[i])
		}
		return nil
	})
	if errors.Is(err, errPeerGone) {
		return nil, s.hangUp("search")
	}
	if err != nil {
		return nil, s.fail("search", err)
	}
	d := &goimap.SearchData{}
	var seqs goimap.SeqSet
	var uids goimap.UIDSet
	for _, m := range found {
		seqs.AddNum(m.seq)
		uids.AddNum(goimap.UID(m.uid))
	}
	if kind == imapserver.NumKindUID {
		d.All = uids
	} else {
		d.All = seqs
	}
	if len(found) > 0 {
		d.Count = uint32(len(found))
		if kind == imapserver.NumKindUID {
			d.Min, d.Max = uint32(found[0].uid), uint32(found[len(found)-1].uid)
		} else {
			d.Min, d.Max = found[0].seq, found[len(found)-1].seq
		}
	}
	if options != nil && options.ReturnSave {
		sel.saved = uids
	}
	return d, nil
}

// readCloser reads from one thing and closes another.
type readCloser struct {
	io.Reader
	io.Closer
}
