package imap

import (
	"reflect"
	"slices"
	"strings"
	"time"

	goimap "github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"github.com/mailsys/mailsys/userdata"
)

// List implements imapserver.Session: LIST (with the LIST-EXTENDED
// selection and return options, LIST-STATUS and SPECIAL-USE) and LSUB,
// which go-imap passes as a LIST (SUBSCRIBED) that only its writer tells
// apart (see isLSUB). Subscriptions are names, not folders (RFC 3501
// 6.3.6): LIST (SUBSCRIBED) shows a subscribed name without a folder with
// \NonExistent (RFC 5258 3), LSUB with \Noselect.
func (s *session) List(w *imapserver.ListWriter, ref string, patterns []string, options *goimap.ListOptions) error {
	defer s.took("LIST", time.Now())
	if options == nil {
		options = &goimap.ListOptions{}
	}
	lsub := isLSUB(w)
	if len(patterns) == 0 {
		// go-imap drops empty patterns, so LIST ref "" comes without
		// any: it asks for the delimiter and the root name of ref
		// (RFC 3501 6.3.8, RFC 9051 6.3.9). With selection options it
		// is an extended LIST, whose "" matches nothing.
		if lsub || options.SelectSubscribed || options.SelectSpecialUse {
			return nil
		}
		return w.WriteList(&goimap.ListData{Attrs: []goimap.MailboxAttr{goimap.MailboxAttrNoSelect}, Delim: userdata.Delimiter, Mailbox: listRoot(ref)})
	}
	v := &listView{ref: ref, patterns: patterns, opts: options}
	err := s.srv.users.ListFolders(s.ctx(), s.user.ID, func(f userdata.Folder) error {
		v.folders = append(v.folders, f)
		return nil
	})
	if err != nil {
		return s.fail("list", err)
	}
	if lsub || options.SelectSubscribed || options.ReturnSubscribed {
		err := s.srv.users.Subscriptions(s.ctx(), s.user.ID, func(name string) error {
			v.subs = append(v.subs, name)
			return nil
		})
		if err != nil {
			return s.fail("list", err)
		}
	}
	switch {
	case lsub:
		return v.writeLSUB(w)
	case options.SelectSubscribed:
		return v.writeSubscribed(s, w)
	}
	for _, f := range v.folders {
		if !v.matches(f.Name) || (options.SelectSpecialUse && f.SpecialUse == "") {
			continue
		}
		if err := v.write(s, w, f.Name, nil); err != nil {
			return err
		}
	}
	return nil
}

// isLSUB reports whether w answers an LSUB command: go-imap makes LSUB a
// List call with the SUBSCRIBED selection option, as LIST (SUBSCRIBED)
// is, and only marks it in the writer, which then writes LSUB responses
// without LIST-EXTENDED's extended data. Were the mark gone from go-imap,
// LSUB would be answered as LIST (SUBSCRIBED) is.
func isLSUB(w *imapserver.ListWriter) bool {
	if w == nil {
		return false
	}
	f := reflect.ValueOf(w).Elem().FieldByName("lsub")
	return f.IsValid() && f.Kind() == reflect.Bool && f.Bool()
}

// listRoot is the root name LIST ref "" answers: ref up to its first
// delimiter, delimiter included, or "" for a ref without one, as UW-IMAP
// and Dovecot answer for a namespace without a prefix.
func listRoot(ref string) string {
	if i := strings.IndexByte(ref, userdata.Delimiter); i >= 0 {
		return ref[:i+1]
	}
	return ""
}

// listView is what one LIST or LSUB lists from.
type listView struct {
	ref      string
	patterns []string
	opts     *goimap.ListOptions
	folders  []userdata.Folder // in name order
	subs     []string          // subscribed names, in name order; nil unless asked for
}

// matches reports whether name matches the reference and one of the
// patterns.
func (v *listView) matches(name string) bool {
	for _, p := range v.patterns {
		if matchPattern(name, v.ref, p) {
			return true
		}
	}
	return false
}

// folder finds the folder called name.
func (v *listView) folder(name string) (userdata.Folder, bool) {
	i, ok := slices.BinarySearchFunc(v.folders, name, func(f userdata.Folder, name string) int { return strings.Compare(f.Name, name) })
	if !ok {
		return userdata.Folder{}, false
	}
	return v.folders[i], true
}

// hasChildren reports whether a folder is below name.
func (v *listView) hasChildren(name string) bool {
	prefix := name + string(userdata.Delimiter)
	i, _ := slices.BinarySearchFunc(v.folders, prefix, func(f userdata.Folder, name string) int { return strings.Compare(f.Name, name) })
	return i < len(v.folders) && strings.HasPrefix(v.folders[i].Name, prefix)
}

// subscribed reports whether name is subscribed.
func (v *listView) subscribed(name string) bool {
	_, ok := slices.BinarySearch(v.subs, name)
	return ok
}

// below returns the subscribed names below name.
func (v *listView) below(name string) []string {
	prefix := name + string(userdata.Delimiter)
	i, _ := slices.BinarySearch(v.subs, prefix)
	j := i
	for j < len(v.subs) && strings.HasPrefix(v.subs[j], prefix) {
		j++
	}
	return v.subs[i:j]
}

// withParents returns the subscribed names and every superior level of
// them, in name order: what a listing of subscriptions may show.
func (v *listView) withParents() []string {
	var names []string
	for _, name := range v.subs {
		for i := range len(name) {
			if name[i] == userdata.Delimiter {
				names = append(names, name[:i])
			}
		}
		names = append(names, name)
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// selected reports whether name meets LIST (SUBSCRIBED)'s selection
// criteria: subscribed and, with SPECIAL-USE, a special-use folder.
func (v *listView) selected(name string) bool {
	if !v.subscribed(name) {
		return false
	}
	if v.opts.SelectSpecialUse {
		f, ok := v.folder(name)
		return ok && f.SpecialUse != ""
	}
	return true
}

// writeSubscribed answers LIST (SUBSCRIBED): the subscribed names that
// match, \NonExistent when no folder has the name; with RECURSIVEMATCH
// also a matching name that is not selected itself but has a selected
// name below it that does not match, with CHILDINFO (RFC 5258 3.5: a
// selected name, or one whose selected children are listed anyway, has
// none).
func (v *listView) writeSubscribed(s *session, w *imapserver.ListWriter) error {
	names := v.subs
	if v.opts.SelectRecursiveMatch {
		names = v.withParents()
	}
	for _, name := range names {
		if !v.matches(name) {
			continue
		}
		if v.selected(name) {
			if err := v.write(s, w, name, nil); err != nil {
				return err
			}
			continue
		}
		if !v.opts.SelectRecursiveMatch {
			continue
		}
		if slices.ContainsFunc(v.below(name), func(c string) bool { return v.selected(c) && !v.matches(c) }) {
			if err := v.write(s, w, name, &goimap.ListDataChildInfo{Subscribed: true}); err != nil {
				return err
			}
		}
	}
	return nil
}

// write writes the LIST response for name, and its STATUS when asked for
// and there is a folder of that name.
func (v *listView) write(s *session, w *imapserver.ListWriter, name string, childInfo *goimap.ListDataChildInfo) error {
	d := &goimap.ListData{Delim: userdata.Delimiter, Mailbox: name, ChildInfo: childInfo}
	f, exists := v.folder(name)
	if !exists {
		d.Attrs = append(d.Attrs, goimap.MailboxAttrNonExistent)
	}
	if exists || v.opts.ReturnChildren {
		if v.hasChildren(name) {
			d.Attrs = append(d.Attrs, goimap.MailboxAttrHasChildren)
		} else {
			d.Attrs = append(d.Attrs, goimap.MailboxAttrHasNoChildren)
		}
	}
	if (v.opts.ReturnSubscribed || v.opts.SelectSubscribed) && v.subscribed(name) {
		d.Attrs = append(d.Attrs, goimap.MailboxAttrSubscribed)
	}
	if exists && f.SpecialUse != "" {
		d.Attrs = append(d.Attrs, goimap.MailboxAttr(f.SpecialUse))
	}
	if exists && v.opts.ReturnStatus != nil {
		var err error
		if d.Status, err = s.status(f, v.opts.ReturnStatus); err != nil {
			return err
		}
	}
	return w.WriteList(d)
}

// writeLSUB answers LSUB (RFC 3501 6.3.9) with LSUB's attributes only: a
// subscribed name that matches, \Noselect when no folder has it; and,
// for a pattern ending in "%", an unsubscribed name that matches and has
// a subscribed name below it that does not, with \Noselect (as Dovecot
// does; the pattern then stops short of the subscribed name).
func (v *listView) writeLSUB(w *imapserver.ListWriter) error {
	short := strings.HasSuffix(v.patterns[0], "%")
	for _, name := range v.withParents() {
		if !v.matches(name) {
			continue
		}
		d := &goimap.ListData{Delim: userdata.Delimiter, Mailbox: name}
		_, exists := v.folder(name)
		switch {
		case v.subscribed(name):
			if !exists {
				d.Attrs = []goimap.MailboxAttr{goimap.MailboxAttrNoSelect}
			}
		case short && slices.ContainsFunc(v.below(name), func(c string) bool { return !v.matches(c) }):
			d.Attrs = []goimap.MailboxAttr{goimap.MailboxAttrNoSelect}
		default:
			continue
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
