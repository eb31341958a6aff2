package imap

import (
	"errors"
	"strings"
	"time"

	goimap "github.com/emersion/go-imap/v2"

	"github.com/mailsys/mailsys/userdata"
)

// Namespace implements imapserver.SessionNamespace: one personal
// namespace, "/" between levels.
func (s *session) Namespace() (*goimap.NamespaceData, error) {
	defer s.took("NAMESPACE", time.Now())
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

// errBadName answers a mailbox name that the UserDB refuses as no folder
// name (userdata.ErrInvalid).
var errBadName = &goimap.Error{Type: goimap.StatusResponseTypeNo, Code: goimap.ResponseCodeCannot,
	Text: `Invalid mailbox name: no empty levels, no "*", "%" or control characters, and not too long`}

// nameFail is s.fail for a command on mailbox names: a name the UserDB
// refuses is answered errBadName.
func (s *session) nameFail(what string, err error) error {
	if errors.Is(err, userdata.ErrInvalid) {
		return errBadName
	}
	return s.fail(what, err)
}

// folder finds a folder by name. A name that can be no folder's is
// errBadName.
func (s *session) folder(name string) (userdata.Folder, error) {
	f, err := s.srv.users.Folder(s.ctx(), s.user.ID, folderName(name))
	if errors.Is(err, userdata.ErrInvalid) {
		return userdata.Folder{}, errBadName
	}
	return f, err
}

// Create implements imapserver.Session. Missing parents are created too,
// in the same step (RFC 3501 6.3.3), unsubscribed as the new folder is.
func (s *session) Create(name string, options *goimap.CreateOptions) error {
	defer s.took("CREATE", time.Now())
	name = folderName(name)
	if name == userdata.Inbox {
		return errExists
	}
	special := ""
	if options != nil && len(options.SpecialUse) > 0 {
		if len(options.SpecialUse) > 1 {
			return &goimap.Error{Type: goimap.StatusResponseTypeNo, Code: goimap.ResponseCode("USEATTR"), Text: "One special use per mailbox"}
		}
		special = string(options.SpecialUse[0])
		switch special {
		case userdata.SpecialSent, userdata.SpecialDrafts, userdata.SpecialTrash, userdata.SpecialJunk, userdata.SpecialArchive:
		default:
			return &goimap.Error{Type: goimap.StatusResponseTypeNo, Code: goimap.ResponseCode("USEATTR"), Text: "Unsupported special use " + special}
		}
	}
	if _, err := s.srv.users.CreateFolder(s.ctx(), s.user.ID, name, special); err != nil {
		return s.nameFail("create", err)
	}
	return nil
}

// Delete implements imapserver.Session. The name stays subscribed if it
// was (RFC 3501 6.3.6: a deleted mailbox is not unsubscribed).
func (s *session) Delete(name string) error {
	defer s.took("DELETE", time.Now())
	name = folderName(name)
	if name == userdata.Inbox {
		return errInboxDelete
	}
	if err := s.srv.users.DeleteFolder(s.ctx(), s.user.ID, name); err != nil {
		if errors.Is(err, userdata.ErrNotEmpty) {
			return &goimap.Error{Type: goimap.StatusResponseTypeNo, Code: goimap.ResponseCodeInUse, Text: "Mailbox has children; delete them first"}
		}
		return s.nameFail("delete", err)
	}
	return nil
}

// Rename implements imapserver.Session. The subscriptions of the folder
// and of the names below it move to the new names, as Cyrus moves them
// (RFC 3501 and RFC 9051 leave it open): a client that subscribed a folder
// keeps seeing it under its new name. Renaming INBOX makes a new,
// unsubscribed folder and leaves INBOX subscribed if it was.
func (s *session) Rename(from, to string, options *goimap.RenameOptions) error {
	defer s.took("RENAME", time.Now())
	from, to = folderName(from), folderName(to)
	if to == userdata.Inbox {
		return errExists
	}
	if from != userdata.Inbox && strings.HasPrefix(to, from+string(userdata.Delimiter)) {
		return &goimap.Error{Type: goimap.StatusResponseTypeNo, Code: goimap.ResponseCodeCannot, Text: "A mailbox cannot be renamed into itself"}
	}
	if err := s.srv.users.RenameFolder(s.ctx(), s.user.ID, from, to); err != nil {
		return s.nameFail("rename", err)
	}
	return nil
}

// Subscribe implements imapserver.Session. Only an existing mailbox can
// be subscribed (NO [NONEXISTENT] otherwise, as Dovecot answers; RFC 3501
// 6.3.6 lets a server check).
func (s *session) Subscribe(name string) error {
	defer s.took("SUBSCRIBE", time.Now())
	if err := s.srv.users.Subscribe(s.ctx(), s.user.ID, folderName(name), true); err != nil {
		return s.nameFail("subscribe", err)
	}
	return nil
}

// Unsubscribe implements imapserver.Session. Any name can be
// unsubscribed, that of a deleted mailbox too, and a name that is not
// subscribed is no error.
func (s *session) Unsubscribe(name string) error {
	defer s.took("UNSUBSCRIBE", time.Now())
	if err := s.srv.users.Subscribe(s.ctx(), s.user.ID, folderName(name), false); err != nil {
		return s.nameFail("unsubscribe", err)
	}
	return nil
}
