package pop3

import (
	"context"
	"fmt"
	"strconv"

	"github.com/mailsys/mailsys/msstore"
	"github.com/mailsys/mailsys/userdata"
)

// maildrop is a session's view of the user's INBOX: a snapshot taken at
// login, numbered 1 to n in UID order, with the marks of DELE. Messages
// that arrive later are not in it; messages that an IMAP session expunges
// meanwhile stay in it, and RETR of one fails once its body is gone.
type maildrop struct {
	user     userdata.UserID
	folder   userdata.FolderID
	validity uint32
	msgs     []message // message n is msgs[n-1]
	count    int       // messages not marked deleted
	size     int64     // their size
}

// message is one message of a maildrop.
type message struct {
	uid     userdata.UID
	size    int64 // the index's RFC822 size: the stored body's, CRLF line endings included
	ref     msstore.Ref
	deleted bool
}

// openMaildrop takes the snapshot of user's INBOX.
func openMaildrop(ctx context.Context, users UserDB, user userdata.UserID) (*maildrop, error) {
	inbox, err := users.Folder(ctx, user, userdata.Inbox)
	if err != nil {
		return nil, fmt.Errorf("pop3: INBOX of user %d: %w", user, err)
	}
	d := &maildrop{user: user, folder: inbox.ID, validity: inbox.UIDValidity,
		msgs: make([]message, 0, inbox.Messages)}
	err = users.Messages(ctx, user, inbox.ID, nil, func(m *userdata.Message) error {
		d.msgs = append(d.msgs, message{uid: m.UID, size: m.Size, ref: m.Ref})
		d.size += m.Size
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("pop3: messages of user %d: %w", user, err)
	}
	d.count = len(d.msgs)
	return d, nil
}

// get returns message n, given as a command argument, if it exists and is
// not marked deleted.
func (d *maildrop) get(arg string) (int, *message, error) {
	n, ok := parseNumber(arg)
	if !ok {
		return 0, nil, errSyntax
	}
	if n < 1 || n > len(d.msgs) {
		return 0, nil, errNoSuchMsg
	}
	m := &d.msgs[n-1]
	if m.deleted {
		return 0, nil, &reply{text: fmt.Sprintf("Message %d already deleted", n)}
	}
	return n, m, nil
}

// mark marks m deleted.
func (d *maildrop) mark(m *message) {
	m.deleted = true
	d.count--
	d.size -= m.size
}

// reset unmarks every message.
func (d *maildrop) reset() {
	for i := range d.msgs {
		if m := &d.msgs[i]; m.deleted {
			m.deleted = false
			d.count++
			d.size += m.size
		}
	}
}

// marked returns the UIDs of the messages marked deleted, as ranges.
func (d *maildrop) marked() userdata.UIDSet {
	var set userdata.UIDSet
	for i := range d.msgs {
		m := &d.msgs[i]
		if !m.deleted {
			continue
		}
		// Runs of marked neighbours make one range: the snapshot has no
		// UID between two neighbours.
		if n := len(set); n > 0 && i > 0 && d.msgs[i-1].deleted {
			set[n-1].Stop = m.uid
			continue
		}
		set = append(set, userdata.UIDRange{Start: m.uid, Stop: m.uid})
	}
	return set
}

// uidl is m's unique id (RFC 1939, section 7): the INBOX's UIDVALIDITY and
// the UID, such as "1718000000.42", which no other message of the mailbox
// ever has (UIDs are never reused under one UIDVALIDITY) and which stays
// the same across sessions and restarts. It is at most 21 characters, all
// in 0x21-0x7E as the RFC requires.
func (d *maildrop) uidl(m *message) string {
	return strconv.FormatUint(uint64(d.validity), 10) + "." + strconv.FormatUint(uint64(m.uid), 10)
}

// update is the UPDATE state: it removes the messages marked deleted in
// one atomic step, and returns how many messages are left in the
// snapshot. Messages that an IMAP session expunged meanwhile are simply no
// longer there; messages that an IMAP session flagged \Deleted are left
// alone unless this session deleted them too.
func (ss *session) update() (left int, err error) {
	d := ss.drop
	set := d.marked()
	if len(set) == 0 {
		return d.count, nil
	}
	gone, err := ss.srv.users.Remove(ss.srv.ctx, d.user, d.folder, set)
	if err != nil {
		ss.log.Error("UPDATE: deleting the marked messages", "err", err)
		return 0, &reply{"SYS/TEMP", "Some deleted messages not removed"}
	}
	ss.log.Info("UPDATE", "deleted", len(gone), "marked", len(d.msgs)-d.count)
	return d.count, nil
}
