package imap

import (
	"errors"
	"io"
	"slices"
	"time"

	goimap "github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"github.com/mailsys/mailsys/userdata"
)

// selected is a session's selected folder.
type selected struct {
	sess     *session
	mb       *mailbox
	view     *view
	folder   userdata.Folder // as of SELECT: its ID, name and UIDVALIDITY
	readOnly bool
	saved    goimap.UIDSet // the last SEARCH RETURN (SAVE) result, for "$"
}

// systemFlagList is the system flags, in FLAGS and PERMANENTFLAGS.
var systemFlagList = []goimap.Flag{goimap.FlagSeen, goimap.FlagAnswered, goimap.FlagFlagged, goimap.FlagDeleted, goimap.FlagDraft}

// Select implements imapserver.Session. FLAGS lists the folder's keywords
// too; PERMANENTFLAGS has \* while the folder may take new ones. An
// IMAP4rev1 client is told how many messages are \Recent, in this session
// only, and the first unseen one.
func (s *session) Select(name string, options *goimap.SelectOptions) (*goimap.SelectData, error) {
	if options != nil && options.ReadOnly {
		defer s.took("EXAMINE", time.Now())
	} else {
		defer s.took("SELECT", time.Now())
	}
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
	readOnly := options != nil && options.ReadOnly
	v := &view{mb: mb, readOnly: readOnly, rev2: s.conn.EnabledCaps().Has(goimap.CapIMAP4rev2), notify: make(chan struct{}, 1),
		overflow: func() {
			s.srv.log.Warn("session dropped: it read none of its folder's changes", "user", s.address(), "remote", s.ip, "queued", maxQueue)
			s.conn.NetConn().Close()
		}}
	sel := &selected{sess: s, mb: mb, view: v, folder: f, readOnly: readOnly}
	mb.mu.Lock()
	mb.views[v] = struct{}{}
	v.announced = len(mb.keywords)
	claim := false
	if !readOnly && mb.claimer == nil {
		mb.claimer, claim = v, true
	}
	mb.mu.Unlock()
	// The counts and UIDNEXT read after the view joined are at least as
	// new as the messages it starts with.
	if f, err = s.srv.users.FolderByID(s.ctx(), s.user.ID, f.ID); err != nil {
		sel.close()
		return nil, s.fail("select", err)
	}
	sel.folder = f
	from, to := f.RecentUID, userdata.UID(0)
	if rc, ok := s.srv.users.(userdata.RecentClaimer); ok && claim {
		if from, to, err = rc.ClaimRecent(s.ctx(), s.user.ID, f.ID, 0); err != nil {
			sel.close()
			return nil, s.fail("select", err)
		}
	}
	mb.mu.Lock()
	// The folder was read after the view joined: a message it counts may
	// have been committed with its event not yet applied. Wait for those
	// (microseconds), then answer with everything the view has so far,
	// so that EXISTS and UIDNEXT agree with each other and with a STATUS
	// the client made before. Only a message committed and expunged
	// while the mailbox was being opened never comes: after 100 ms the
	// mailbox's own UIDNEXT is used.
	for deadline := time.Now().Add(100 * time.Millisecond); mb.uidNext < f.UIDNext && time.Now().Before(deadline); {
		mb.mu.Unlock()
		time.Sleep(time.Millisecond)
		mb.mu.Lock()
	}
	v.added = nil // in SELECT's EXISTS: their queued EXISTS go unsaid
	uidNext := mb.uidNext
	// The messages from the watermark on are recent here (those claimed
	// now, or for EXAMINE those nobody claimed yet), with those that came
	// since the view joined.
	from = max(from, mb.recentTo)
	if claim || mb.claimer == nil {
		lo, _ := slices.BinarySearch(mb.uids, from)
		hi := len(mb.uids)
		if to != 0 {
			hi, _ = slices.BinarySearch(mb.uids, to)
		}
		recent := slices.Clone(mb.uids[lo:max(lo, hi)])
		for _, uid := range v.recent {
			if len(recent) == 0 || uid > recent[len(recent)-1] {
				recent = append(recent, uid)
			}
		}
		v.recent = recent
	}
	if claim {
		mb.recentTo = max(mb.recentTo, to)
	}
	n := v.count()
	numRecent := v.numRecent()
	kws := v.mb.keywords[:v.announced]
	flags := v.mailboxFlags(v.announced)
	mb.mu.Unlock()
	s.sel = sel
	perm := append(slices.Clone(flags), goimap.FlagWildcard)
	if len(kws) >= userdata.MaxFolderKeywords {
		perm = perm[:len(perm)-1]
	}
	if sel.readOnly {
		perm = []goimap.Flag{}
	}
	data := &goimap.SelectData{
		Flags:          flags,
		PermanentFlags: perm,
		NumMessages:    n,
		NumRecent:      numRecent,
		UIDNext:        goimap.UID(uidNext),
		UIDValidity:    f.UIDValidity,
		HighestModSeq:  f.HighestModSeq,
	}
	if v.rev2 {
		// RFC 9051 6.3.2: the mailbox's LIST response.
		data.List = &goimap.ListData{Mailbox: f.Name, Delim: userdata.Delimiter}
		if f.SpecialUse != "" {
			data.List.Attrs = []goimap.MailboxAttr{goimap.MailboxAttr(f.SpecialUse)}
		}
	}
	if !v.rev2 && f.Unseen > 0 {
		if data.FirstUnseenSeqNum, err = sel.firstUnseen(); err != nil {
			return nil, s.fail("select", err)
		}
	}
	return data, nil
}

// firstUnseen is the sequence number of the first message without \Seen,
// 0 if none.
func (sel *selected) firstUnseen() (uint32, error) {
	s := sel.sess
	var uid userdata.UID
	err := s.srv.users.Messages(s.ctx(), s.user.ID, sel.folder.ID, userdata.UIDSet{{Start: 1}}, func(m *userdata.Message) error {
		if m.Flags&userdata.FlagSeen == 0 {
			uid = m.UID
			return errStop
		}
		return nil
	})
	if err != nil && !errors.Is(err, errStop) {
		return 0, err
	}
	if uid == 0 {
		return 0, nil
	}
	sel.mb.mu.Lock()
	defer sel.mb.mu.Unlock()
	return sel.view.seqOf(uid), nil
}

// errStop ends an iteration early.
var errStop = errors.New("imap: stop")

// Unselect implements imapserver.Session.
func (s *session) Unselect() error {
	defer s.took("UNSELECT", time.Now())
	if s.sel != nil {
		s.sel.close()
		s.sel = nil
	}
	return nil
}

// close leaves the folder: the view goes, with its holds on bodies, and
// the claim on new messages passes to another read-write session.
func (sel *selected) close() {
	mb, v := sel.mb, sel.view
	mb.mu.Lock()
	delete(mb.views, v)
	mb.passClaim(v)
	done := v.drop()
	mb.mu.Unlock()
	for _, d := range done {
		d()
	}
	sel.sess.srv.open.release(sel.sess.ctx(), mb)
}

// poll writes the changes the client may be told now (no EXPUNGE unless
// allowExpunge), and saves the \Recent claims made meanwhile.
func (sel *selected) poll(w *imapserver.UpdateWriter, allowExpunge bool) error {
	mb := sel.mb
	mb.mu.Lock()
	out, done := sel.view.take(allowExpunge)
	save := mb.claimer == sel.view && !mb.saved
	mb.mu.Unlock()
	err := write(w, out)
	for _, d := range done {
		d()
	}
	if save {
		mb.saveRecent(sel.sess.ctx(), sel.sess.srv.users)
	}
	return err
}

// seqUID is a message as the client knows it.
type seqUID struct {
	seq uint32 // in the client's numbering
	uid userdata.UID
}

// resolve returns the messages of set that the client knows, in order.
// Sequence numbers are the client's: messages expunged since it was last
// told are in, messages it has not been told of yet are not.
func (sel *selected) resolve(set goimap.NumSet) ([]seqUID, error) {
	if goimap.IsSearchRes(set) {
		set = sel.saved
	}
	mb, v := sel.mb, sel.view
	mb.mu.Lock()
	defer mb.mu.Unlock()
	known := v.count()
	// The ranges are resolved, sorted and merged first, so that a set of
	// many ranges, overlapping or not, costs its size and the messages it
	// names, not their product.
	var out []seqUID
	collect := func(seq uint32, uid userdata.UID) bool {
		out = append(out, seqUID{seq, uid})
		return true
	}
	switch set := set.(type) {
	case goimap.SeqSet:
		rs := make([]numRange, 0, len(set))
		for _, r := range set {
			if start, stop := staticRange(r.Start, r.Stop, known); start != 0 && start <= known {
				rs = append(rs, numRange{start, min(stop, known)})
			}
		}
		for _, r := range normalizeRanges(rs) {
			v.walk(r.lo, r.hi, collect)
		}
	case goimap.UIDSet:
		if known == 0 {
			return nil, nil
		}
		var maxUID userdata.UID
		v.walk(known, known, func(_ uint32, uid userdata.UID) bool { maxUID = uid; return false })
		rs := make([]numRange, 0, len(set))
		for _, r := range set {
			if start, stop := staticRange(uint32(r.Start), uint32(r.Stop), uint32(maxUID)); start != 0 {
				rs = append(rs, numRange{start, stop})
			}
		}
		for _, r := range normalizeRanges(rs) {
			lo := v.firstFrom(userdata.UID(r.lo))
			if lo == 0 {
				continue
			}
			v.walk(lo, known, func(seq uint32, uid userdata.UID) bool {
				if uint32(uid) > r.hi {
					return false
				}
				return collect(seq, uid)
			})
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
// The EXPUNGE responses reach the client through its view, like those of
// any other session's expunge.
func (s *session) Expunge(w *imapserver.ExpungeWriter, uids *goimap.UIDSet) error {
	defer s.took("EXPUNGE", time.Now())
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
	if _, err := s.srv.users.Expunge(s.ctx(), s.user.ID, sel.folder.ID, set); err != nil {
		return s.fail("expunge", err)
	}
	return nil
}

// Search implements imapserver.Session, with searchMessages.
func (s *session) Search(kind imapserver.NumKind, criteria *goimap.SearchCriteria, options *goimap.SearchOptions) (*goimap.SearchData, error) {
	defer s.took("SEARCH", time.Now())
	sel := s.sel
	all, err := sel.resolve(goimap.SeqSet{{Start: 1, Stop: 0}})
	if err != nil {
		return nil, err
	}
	var found []seqUID
	err = s.searchMessages(all, criteria, func(m seqUID, _ *userdata.Message) error {
		found = append(found, m)
		return nil
	})
	if err != nil {
		return nil, err
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

// searchMessages calls fn, in UID order, for each of the messages all
// (the client's, from resolve) that criteria match, with its index entry,
// valid during the call. The criteria are compiled once (compileSearch);
// flags, dates, sizes and numbers are matched from the index, and a body
// is read only for a criterion on the header or text, one message at a
// time. A search of more than maxSearchKeys keys or maxSearchDepth levels
// is refused with BAD. If the client hangs up meanwhile, the search stops
// and the connection is closed.
func (s *session) searchMessages(all []seqUID, criteria *goimap.SearchCriteria, fn func(seqUID, *userdata.Message) error) error {
	sel := s.sel
	nums := &searchNumbers{Saved: sel.saved}
	if n := len(all); n > 0 {
		nums.MaxSeq, nums.MaxUID = all[n-1].seq, uint32(all[n-1].uid)
	}
	sc, err := compileSearch(criteria, nums)
	if err != nil {
		return err
	}
	sel.mb.mu.Lock()
	recent := slices.Clone(sel.view.recent)
	sel.mb.mu.Unlock()
	watch := peerWatch{conn: s.conn.NetConn()}
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
		if _, ok := slices.BinarySearch(recent, m.UID); ok {
			sm.Flags = append(sm.Flags, flagRecent) // for RECENT, NEW and OLD
		}
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
		if err != nil || !ok {
			return err
		}
		return fn(all[i], m)
	})
	if errors.Is(err, errPeerGone) {
		return s.hangUp("search")
	}
	if err != nil {
		return s.fail("search", err)
	}
	return nil
}

// readCloser reads from one thing and closes another.
type readCloser struct {
	io.Reader
	io.Closer
}

// flagger is the view's flagger for a command that runs outside mb.mu.
func (sel *selected) flagger() *flagger {
	sel.mb.mu.Lock()
	defer sel.mb.mu.Unlock()
	fl := sel.view.flagger()
	fl.recent = slices.Clone(fl.recent)
	return &fl
}
