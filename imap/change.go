package imap

import (
	"errors"

	goimap "github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"github.com/mailsys/mailsys/userdata"
)

// Store implements imapserver.Session. Other sessions on the folder learn
// of the change through the tracker; this one gets the FETCH FLAGS
// responses here, unless .SILENT.
func (s *session) Store(w *imapserver.FetchWriter, numSet goimap.NumSet, flags *goimap.StoreFlags, options *goimap.StoreOptions) error {
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
	if options != nil {
		u.UnchangedSince = options.UnchangedSince
	}
	if _, err := s.srv.users.StoreFlags(userdata.WithOrigin(s.ctx(), sel.tracker), s.user.ID, sel.folder.ID, uidSet(msgs), u); err != nil {
		return s.fail("store", err)
	}
	if flags.Silent {
		return nil
	}
	_, byUID := numSet.(goimap.UIDSet)
	return s.Fetch(w, numSet, &goimap.FetchOptions{Flags: true, UID: byUID})
}

// Copy implements imapserver.Session.
func (s *session) Copy(numSet goimap.NumSet, dest string) (*goimap.CopyData, error) {
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
	var res userdata.CopyResult
	if to.ID == sel.folder.ID {
		res, err = s.copyWithin(sel, msgs)
	} else {
		res, err = s.srv.users.Copy(userdata.WithOrigin(s.ctx(), sel.tracker), s.user.ID, sel.folder.ID, uidSet(msgs), to.ID)
	}
	if err != nil {
		return nil, s.fail("copy", err)
	}
	if len(res.Source) == 0 {
		return nil, nil
	}
	return &goimap.CopyData{UIDValidity: res.UIDValidity, SourceUIDs: imapUIDSet(res.Source), DestUIDs: imapUIDSet(res.Dest)}, nil
}

// copyWithin copies messages into their own folder, which RFC 3501
// allows and the index's Copy does not: each is appended again, its body
// retained first.
func (s *session) copyWithin(sel *selected, msgs []seqUID) (userdata.CopyResult, error) {
	var news []userdata.NewMessage
	var from []userdata.UID
	err := s.srv.users.Messages(s.ctx(), s.user.ID, sel.folder.ID, uidSet(msgs), func(m *userdata.Message) error {
		from = append(from, m.UID)
		news = append(news, userdata.NewMessage{Ref: m.Ref, InternalDate: m.InternalDate, Size: m.Size, Flags: m.Flags,
			Keywords: append([]string(nil), m.Keywords...), Envelope: append([]byte(nil), m.Envelope...), Structure: append([]byte(nil), m.Structure...)})
		return nil
	})
	res := userdata.CopyResult{UIDValidity: sel.folder.UIDValidity}
	if err != nil {
		return res, err
	}
	for i, nm := range news {
		if err := s.srv.store.Retain(s.ctx(), nm.Ref, 1); err != nil {
			return res, err
		}
		m, err := s.srv.users.Append(s.ctx(), s.user.ID, sel.folder.ID, nm)
		if err != nil {
			s.srv.store.Release(s.ctx(), nm.Ref)
			return res, err
		}
		res.Source = append(res.Source, from[i])
		res.Dest = append(res.Dest, m.UID)
	}
	return res, nil
}

// Move implements imapserver.SessionMove. The COPYUID goes out here, the
// EXPUNGE responses through the tracker once the command ends.
func (s *session) Move(w *imapserver.MoveWriter, numSet goimap.NumSet, dest string) error {
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
	if to.ID == sel.folder.ID {
		return &goimap.Error{Type: goimap.StatusResponseTypeNo, Code: goimap.ResponseCodeCannot, Text: "Source and destination are the same mailbox"}
	}
	msgs, err := sel.resolve(numSet)
	if err != nil || len(msgs) == 0 {
		return err
	}
	res, err := s.srv.users.Move(userdata.WithOrigin(s.ctx(), sel.tracker), s.user.ID, sel.folder.ID, uidSet(msgs), to.ID)
	if err != nil {
		return s.fail("move", err)
	}
	if len(res.Source) == 0 {
		return nil
	}
	return w.WriteCopyData(&goimap.CopyData{UIDValidity: res.UIDValidity, SourceUIDs: imapUIDSet(res.Source), DestUIDs: imapUIDSet(res.Dest)})
}
