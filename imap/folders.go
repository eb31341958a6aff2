package imap

import (
	"errors"
	"strings"

	goimap "github.com/emersion/go-imap/v2"

	"github.com/mailsys/mailsys/userdata"
)

// Namespace implements imapserver.SessionNamespace: one personal
// namespace, "/" between levels.
func (s *session) Namespace() (*goimap.NamespaceData, error) {
	return &goimap.NamespaceData{Personal: []goimap.NamespaceDescriptor{{Prefix: "", Delim: userdata.Delimiter}}}, nil
}

// folderName normalizes a mailbox name from a client: no trailing
// delimiter, INBOX in any case is INBOX.
func folderName(name string) string {
	name = strings.TrimSuffix(name, string(userdata.Delimiter))
	if strings.EqualFold(name, userdata.Inbox) {
		return userdata.Inbox
	}
	if len(name) > len(userdata.Inbox) && strings.EqualFold(name[:len(userdata.Inbox)+1], userdata.Inbox+string(userdata.Delimiter)) {
		return userdata.Inbox + name[len(userdata.Inbox):]
	}
	return name
}

// folder finds a folder by name.
func (s *session) folder(name string) (userdata.Folder, error) {
	return s.srv.users.Folder(s.ctx(), s.user.ID, folderName(name))
}

// Create implements imapserver.Session. Missing parents are created too
// (RFC 3501 6.3.3).
func (s *session) Create(name string, options *goimap.CreateOptions) error {
	name = folderName(name)
	if name == "" || name == userdata.Inbox {
		return errExists
	}
	special := ""
	if options != nil && len(options.SpecialUse) > 0 {
		if len(options.SpecialUse) > 1 {
			return &goimap.Error{Type: goimap.StatusResponseTypeNo, Code: goimap.ResponseCode("USEATTR"), Text: "One special use per mailbox"}
		}
		special = string(options.SpecialUse[0])
	}
	parts := strings.Split(name, string(userdata.Delimiter))
	for i := 1; i < len(parts); i++ {
		parent := strings.Join(parts[:i], string(userdata.Delimiter))
		_, err := s.srv.users.CreateFolder(s.ctx(), s.user.ID, parent, "")
		if err != nil && !errors.Is(err, userdata.ErrExists) {
			return s.fail("create", err)
		}
	}
	if _, err := s.srv.users.CreateFolder(s.ctx(), s.user.ID, name, special); err != nil {
		if errors.Is(err, userdata.ErrInvalid) && special != "" {
			return &goimap.Error{Type: goimap.StatusResponseTypeNo, Code: goimap.ResponseCode("USEATTR"), Text: err.Error()}
		}
		return s.fail("create", err)
	}
	return nil
}

// Delete implements imapserver.Session.
func (s *session) Delete(name string) error {
	name = folderName(name)
	if name == userdata.Inbox {
		return errInboxDelete
	}
	if err := s.srv.users.DeleteFolder(s.ctx(), s.user.ID, name); err != nil {
		if errors.Is(err, userdata.ErrNotEmpty) {
			return &goimap.Error{Type: goimap.StatusResponseTypeNo, Code: goimap.ResponseCodeInUse, Text: "Mailbox has children; delete them first"}
		}
		return s.fail("delete", err)
	}
	return nil
}

// Rename implements imapserver.Session.
func (s *session) Rename(from, to string, options *goimap.RenameOptions) error {
	from, to = folderName(from), folderName(to)
	if to == userdata.Inbox {
		return errExists
	}
	if err := s.srv.users.RenameFolder(s.ctx(), s.user.ID, from, to); err != nil {
		return s.fail("rename", err)
	}
	return nil
}

// Subscribe implements imapserver.Session.
func (s *session) Subscribe(name string) error {
	if err := s.srv.users.Subscribe(s.ctx(), s.user.ID, folderName(name), true); err != nil {
		return s.fail("subscribe", err)
	}
	return nil
}

// Unsubscribe implements imapserver.Session.
func (s *session) Unsubscribe(name string) error {
	if err := s.srv.users.Subscribe(s.ctx(), s.user.ID, folderName(name), false); err != nil {
		return s.fail("unsubscribe", err)
	}
	return nil
}
