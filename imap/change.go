package imap

import (
	"errors"
	"slices"
	"time"

	goimap "github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"github.com/mailsys/mailsys/userdata"
)

// Store implements imapserver.Session. The FETCH responses of a STORE
// without .SILENT reach the client through its view, as other sessions'
// do, so that a FLAGS naming a new keyword goes out before them; the
// messages the STORE left as they were are queued there too, so that the
// client hears of every message it named.
func (s *session) Store(w *imapserver.FetchWriter, numSet goimap.NumSet, flags *goimap.StoreFlags, options *goimap.StoreOptions) error {
	defer s.took("STORE", time.Now())
	sel := s.sel
	if sel.readOnly {
		return errReadOnly
	}
	msgs, err := sel.resolve(numSet)
	if err != nil || len(msgs) == 0 {
		return err
	}
	bits, kws, err := indexFlags(flags.Flags)
	if err != nil {
		return err
	}
	u := userdata.FlagUpdate{Flags: bits, Keywords: kws}
	switch flags.Op {
	case goimap.StoreFlagsSet:
		u.Op = userdata.FlagsSet
	case goimap.StoreFlagsAdd:
		u.Op = userdata.FlagsAdd
	case goimap.StoreFlagsDel:
		u.Op = userdata.FlagsRemove
	}
	// go-imap beta.8 parses no UNCHANGEDSINCE (CONDSTORE): options
	// carries nothing.
	ctx := s.ctx()
	if flags.Silent {
		ctx = userdata.WithOrigin(ctx, sel.view) // not told of its own change
	}
	res, err := s.srv.users.StoreFlags(ctx, s.user.ID, sel.folder.ID, uidSet(msgs), u)
	if err != nil {
		return s.fail("store", err)
	}
	if flags.Silent {
		return nil
	}
	told := make(map[userdata.UID]bool, len(res.Changed))
	for _, m := range res.Changed {
		told[m.UID] = true
	}
	var rest []seqUID
	for _, m := range msgs {
		if !told[m.uid] {
			rest = append(rest, m)
		}
	}
	if len(rest) == 0 {
		return nil
	}
	var ups []update
	err = s.srv.users.Messages(s.ctx(), s.user.ID, sel.folder.ID, uidSet(rest), func(m *userdata.Message) error {
		ups = append(ups, update{kind: updateFlags, uid: m.UID, flags: m.Flags, keywords: slices.Clone(m.Keywords)})
		return nil
	})
	if err != nil {
		return s.fail("store", err)
	}
	sel.mb.mu.Lock()
	sel.view.queue = append(sel.view.queue, ups...)
	sel.mb.mu.Unlock()
	if len(ups) < len(rest) {
		return errExpungeIssued // the others' flags are set; these are gone
	}
	return nil
}

// Copy implements imapserver.Session. The destination may be the selected
// folder (RFC 3501 6.4.7).
func (s *session) Copy(numSet goimap.NumSet, dest string) (*goimap.CopyData, error) {
	defer s.took("COPY", time.Now())
	sel := s.sel
	to, err := s.folder(dest)
	if errors.Is(err, userdata.ErrNotFound) {
		return nil, errTryCreate
	}
	if err != nil {
		return nil, s.fail("copy", err)
	}
	msgs, err := sel.resolve(numSet)
	if err != nil {
		return nil, err
	}
	if len(msgs) == 0 {
		return nil, nil // nothing copied: no COPYUID
	}
	res, err := s.srv.users.Copy(s.ctx(), s.user.ID, sel.folder.ID, uidSet(msgs), to.ID)
	if err != nil {
		return nil, s.fail("copy", err)
	}
	if len(res.Source) == 0 {
		return nil, nil
	}
	return &goimap.CopyData{UIDValidity: res.UIDValidity, SourceUIDs: imapUIDSet(res.Source), DestUIDs: imapUIDSet(res.Dest)}, nil
}

// Move implements imapserver.SessionMove. The COPYUID goes out here, the
// EXPUNGE responses through the view once the command ends. The
// destination may be the selected folder (RFC 6851 3.3): the messages
// then get new UIDs in it.
func (s *session) Move(w *imapserver.MoveWriter, numSet goimap.NumSet, dest string) error {
	defer s.took("MOVE", time.Now())
	sel := s.sel
	if sel.readOnly {
		return errReadOnly
	}
	to, err := s.folder(dest)
	if errors.Is(err, userdata.ErrNotFound) {
		return errTryCreate
	}
	if err != nil {
		return s.fail("move", err)
	}
	msgs, err := sel.resolve(numSet)
	if err != nil || len(msgs) == 0 {
		return err
	}
	res, err := s.srv.users.Move(s.ctx(), s.user.ID, sel.folder.ID, uidSet(msgs), to.ID)
	if err != nil {
		return s.fail("move", err)
	}
	if len(res.Source) == 0 {
		return nil
	}
	return w.WriteCopyData(&goimap.CopyData{UIDValidity: res.UIDValidity, SourceUIDs: imapUIDSet(res.Source), DestUIDs: imapUIDSet(res.Dest)})
}
