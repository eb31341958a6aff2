package imap

import (
	"strings"

	goimap "github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"github.com/mailsys/mailsys/userdata"
)

// List implements imapserver.Session: LIST (with the LIST-EXTENDED
// selection and return options, LIST-STATUS and SPECIAL-USE) and LSUB.
func (s *session) List(w *imapserver.ListWriter, ref string, patterns []string, options *goimap.ListOptions) error {
	if options == nil {
		options = &goimap.ListOptions{}
	}
	if len(patterns) == 1 && patterns[0] == "" {
		// The hierarchy delimiter and root (RFC 3501 6.3.8).
		return w.WriteList(&goimap.ListData{Attrs: []goimap.MailboxAttr{goimap.MailboxAttrNoSelect}, Delim: userdata.Delimiter})
	}
	var folders []userdata.Folder
	err := s.srv.users.ListFolders(s.ctx(), s.user.ID, func(f userdata.Folder) error {
		folders = append(folders, f)
		return nil
	})
	if err != nil {
		return s.fail("list", err)
	}
	// Folders come in name order, so a folder's children follow it.
	hasChildren := func(i int) bool {
		return i+1 < len(folders) && strings.HasPrefix(folders[i+1].Name, folders[i].Name+string(userdata.Delimiter))
	}
	subscribedChild := func(i int) bool {
		prefix := folders[i].Name + string(userdata.Delimiter)
		for _, f := range folders[i+1:] {
			if !strings.HasPrefix(f.Name, prefix) {
				break
			}
			if f.Subscribed {
				return true
			}
		}
		return false
	}
	for i, f := range folders {
		matched := false
		for _, p := range patterns {
			if matchPattern(f.Name, ref, p) {
				matched = true
				break
			}
		}
		if !matched {
			continue
		}
		var childInfo *goimap.ListDataChildInfo
		switch {
		case options.SelectSpecialUse && f.SpecialUse == "":
			continue
		case options.SelectSubscribed && !f.Subscribed:
			// RECURSIVEMATCH lists a parent whose child is subscribed.
			if !options.SelectRecursiveMatch || !subscribedChild(i) {
				continue
			}
			childInfo = &goimap.ListDataChildInfo{Subscribed: true}
		case options.SelectSubscribed && options.SelectRecursiveMatch && subscribedChild(i):
			childInfo = &goimap.ListDataChildInfo{Subscribed: true}
		}
		d := &goimap.ListData{Delim: userdata.Delimiter, Mailbox: f.Name, ChildInfo: childInfo}
		if hasChildren(i) {
			d.Attrs = append(d.Attrs, goimap.MailboxAttrHasChildren)
		} else {
			d.Attrs = append(d.Attrs, goimap.MailboxAttrHasNoChildren)
		}
		if f.Subscribed && (options.ReturnSubscribed || options.SelectSubscribed) {
			d.Attrs = append(d.Attrs, goimap.MailboxAttrSubscribed)
		}
		if f.SpecialUse != "" {
			d.Attrs = append(d.Attrs, goimap.MailboxAttr(f.SpecialUse))
		}
		if options.ReturnStatus != nil {
			if d.Status, err = s.status(f, options.ReturnStatus); err != nil {
				return err
			}
		}
		if err := w.WriteList(d); err != nil {
			return err
		}
	}
	return nil
}

// matchPattern reports whether name matches a LIST reference and pattern
// (RFC 3501 6.3.8): "*" matches anything, "%" anything but the delimiter.
// INBOX matches in any case. It runs in O(len(name)·len(pattern)), so no
// pattern can make it slow (go-imap's own matcher backtracks).
func matchPattern(name, ref, pattern string) bool {
	const delim = string(userdata.Delimiter)
	if strings.HasPrefix(pattern, delim) {
		ref, pattern = "", pattern[1:]
	} else if ref != "" && !strings.HasSuffix(ref, delim) {
		ref += delim
	}
	pattern = ref + pattern
	if name == userdata.Inbox || strings.HasPrefix(name, userdata.Inbox+delim) {
		// The pattern's INBOX may be in any case.
		if len(pattern) >= len(userdata.Inbox) && strings.EqualFold(pattern[:len(userdata.Inbox)], userdata.Inbox) {
			pattern = userdata.Inbox + pattern[len(userdata.Inbox):]
		}
	}
	return wildMatch(name, pattern, userdata.Delimiter)
}

// wildMatch matches name against pattern's "*" and "%" wildcards by
// dynamic programming over the pattern: at[j] says whether the part of
// name read so far can end where pattern[:j] does.
func wildMatch(name, pattern string, delim byte) bool {
	at := make([]bool, len(pattern)+1)
	next := make([]bool, len(pattern)+1)
	at[0] = true
	// close extends at over wildcards, which may match nothing.
	closeOver := func(v []bool) {
		for j := 0; j < len(pattern); j++ {
			if v[j] && (pattern[j] == '*' || pattern[j] == '%') {
				v[j+1] = true
			}
		}
	}
	closeOver(at)
	for i := 0; i < len(name); i++ {
		c := name[i]
		clear(next)
		for j := 0; j < len(pattern); j++ {
			if !at[j] {
				continue
			}
			switch p := pattern[j]; {
			case p == '*' || (p == '%' && c != delim):
				next[j] = true // the wildcard takes c and may take more
			case p == c:
				next[j+1] = true
			}
		}
		closeOver(next)
		at, next = next, at
	}
	return at[len(pattern)]
}
