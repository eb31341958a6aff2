package wire

import (
	"encoding/base64"
	"fmt"
	"strings"

	goimap "github.com/emersion/go-imap/v2"
)

// Command is one client command.
type Command struct {
	Tag string
	// Name is the command's name in upper case ("FETCH"), without the
	// UID prefix, which sets UID (for COPY, MOVE, FETCH, STORE, SEARCH,
	// SORT, THREAD and EXPUNGE).
	Name string
	UID  bool
	// Args holds the arguments, by Name: *LoginArgs (LOGIN),
	// *AuthenticateArgs (AUTHENTICATE), *EnableArgs (ENABLE), *IDArgs
	// (ID), *SelectArgs (SELECT, EXAMINE), *CreateArgs (CREATE),
	// *MailboxArgs (DELETE, SUBSCRIBE, UNSUBSCRIBE, GETQUOTAROOT, and
	// APPEND's mailbox), *RenameArgs (RENAME), *ListArgs (LIST, LSUB),
	// *StatusArgs (STATUS), *ExpungeArgs (UID EXPUNGE), *SearchArgs
	// (SEARCH), *FetchArgs (FETCH), *StoreArgs (STORE), *CopyArgs (COPY,
	// MOVE), *SortArgs (SORT), *ThreadArgs (THREAD), *QuotaArgs
	// (GETQUOTA), *SetQuotaArgs (SETQUOTA), *CompressArgs (COMPRESS);
	// nil for the commands without arguments (CAPABILITY, NOOP, LOGOUT,
	// STARTTLS, NAMESPACE, CHECK, CLOSE, UNSELECT, EXPUNGE, IDLE).
	Args any
}

// LoginArgs are LOGIN's.
type LoginArgs struct{ User, Password string }

// AuthenticateArgs are AUTHENTICATE's: the mechanism in upper case and
// the initial response (SASL-IR, RFC 4959), decoded; HasInitial tells an
// empty one ("=") from none.
type AuthenticateArgs struct {
	Mechanism       string
	InitialResponse []byte
	HasInitial      bool
}

// EnableArgs are ENABLE's capabilities, in upper case.
type EnableArgs struct{ Caps []string }

// IDArgs are ID's field-value pairs (RFC 2971), nil for ID NIL; a NIL
// value is "".
type IDArgs struct{ Fields map[string]string }

// SelectArgs are SELECT's and EXAMINE's (ReadOnly).
type SelectArgs struct {
	Mailbox   string
	ReadOnly  bool
	CondStore bool     // (CONDSTORE)
	QResync   *QResync // (QRESYNC (...)), RFC 7162 section 3.2.5
}

// QResync is the QRESYNC parameter of SELECT and EXAMINE: what the client
// knew of the mailbox.
type QResync struct {
	UIDValidity uint32
	ModSeq      uint64
	KnownUIDs   goimap.UIDSet // nil if not given
	// SeqMatch and UIDMatch pair sequence numbers with the UIDs the
	// client had for them; nil if not given.
	SeqMatch goimap.SeqSet
	UIDMatch goimap.UIDSet
}

// MailboxArgs name one mailbox.
type MailboxArgs struct{ Mailbox string }

// CreateArgs are CREATE's, with the special uses of CREATE-SPECIAL-USE
// (RFC 6154).
type CreateArgs struct {
	Mailbox    string
	SpecialUse []goimap.MailboxAttr
}

// RenameArgs are RENAME's.
type RenameArgs struct{ From, To string }

// ListArgs are LIST's (with LIST-EXTENDED, RFC 5258) and LSUB's.
type ListArgs struct {
	LSUB      bool
	Reference string
	Patterns  []string
	Options   goimap.ListOptions
	// Extended is set when the command used LIST-EXTENDED syntax
	// (selection options, several patterns, RETURN), whose responses
	// carry extended data (CHILDINFO).
	Extended bool
}

// StatusArgs are STATUS's.
type StatusArgs struct {
	Mailbox string
	Options goimap.StatusOptions
}

// ExpungeArgs are UID EXPUNGE's.
type ExpungeArgs struct{ UIDs goimap.UIDSet }

// SearchArgs are SEARCH's. Return is nil without RETURN (the SEARCH
// response of RFC 3501), else the ESEARCH options (RFC 4731; RETURN ()
// is ALL).
type SearchArgs struct {
	Charset  string
	Criteria *goimap.SearchCriteria
	Return   *goimap.SearchOptions
}

// FetchArgs are FETCH's.
type FetchArgs struct {
	Set     goimap.NumSet
	Options *goimap.FetchOptions // ChangedSince from (CHANGEDSINCE n)
	// Vanished is the VANISHED modifier of UID FETCH (RFC 7162 section
	// 3.2.6).
	Vanished bool
	// Macro is the macro the items were given as (ALL, FAST, FULL), or "".
	Macro string
	// RFC822 names the sections of Options asked as RFC822,
	// RFC822.HEADER or RFC822.TEXT, which are answered under those
	// names (RFC 3501 section 7.4.2).
	RFC822 map[*goimap.FetchItemBodySection]string
}

// StoreArgs are STORE's.
type StoreArgs struct {
	Set            goimap.NumSet
	Flags          goimap.StoreFlags
	UnchangedSince uint64 // (UNCHANGEDSINCE n); 0 if not given
	HasUnchanged   bool
}

// CopyArgs are COPY's and MOVE's.
type CopyArgs struct {
	Set     goimap.NumSet
	Mailbox string
}

// SortKey is a SORT criterion (RFC 5256, RFC 5957): ARRIVAL, CC, DATE,
// FROM, SIZE, SUBJECT, TO, DISPLAYFROM or DISPLAYTO, in upper case.
type SortKey struct {
	Key     string
	Reverse bool
}

// SortArgs are SORT's, with ESORT's RETURN (RFC 5267).
type SortArgs struct {
	Keys     []SortKey
	Charset  string
	Criteria *goimap.SearchCriteria
	Return   *goimap.SearchOptions
}

// ThreadArgs are THREAD's: the algorithm in upper case.
type ThreadArgs struct {
	Algorithm string
	Charset   string
	Criteria  *goimap.SearchCriteria
}

// QuotaArgs are GETQUOTA's.
type QuotaArgs struct{ Root string }

// SetQuotaArgs are SETQUOTA's: resource names in upper case.
type SetQuotaArgs struct {
	Root   string
	Limits map[string]uint64
}

// CompressArgs are COMPRESS's: the mechanism in upper case.
type CompressArgs struct{ Mechanism string }

// sortKeys are the keys SORT takes.
var sortKeys = map[string]bool{"ARRIVAL": true, "CC": true, "DATE": true, "FROM": true, "SIZE": true,
	"SUBJECT": true, "TO": true, "DISPLAYFROM": true, "DISPLAYTO": true}

// ReadCommand reads the next command. A command the grammar or a limit
// refuses is an *Error; another error is fatal. For APPEND, it returns
// after the mailbox name: read the messages with NextAppend.
func (r *Reader) ReadCommand() (*Command, error) {
	if r.inAppend {
		if err := r.finishAppend(); err != nil {
			return nil, err
		}
	}
	r.tag, r.line, r.literals, r.depth, r.atEnd = "", 0, 0, 0, false
	cmd := &Command{}
	err := r.run(func() {
		if r.atCRLF() {
			r.crlf()
			r.fail("Empty command line")
		}
		r.tag = r.token("a tag", func(c byte) bool { return isAStringChar(c) && c != '+' })
		cmd.Tag = r.tag
		r.sp()
		cmd.Name = strings.ToUpper(r.atom("a command name"))
		if cmd.Name == "UID" {
			r.sp()
			cmd.UID = true
			cmd.Name = strings.ToUpper(r.atom("a command name after UID"))
			switch cmd.Name {
			case "COPY", "MOVE", "FETCH", "STORE", "SEARCH", "SORT", "THREAD", "EXPUNGE":
			default:
				r.fail("Unknown command UID %s", cmd.Name)
			}
		}
		r.args(cmd)
		if cmd.Name == "APPEND" {
			r.inAppend = true
			return // the messages follow
		}
		r.crlf()
	})
	if err != nil {
		return nil, err
	}
	return cmd, nil
}

// args parses the arguments of cmd.
func (r *Reader) args(cmd *Command) {
	switch cmd.Name {
	case "CAPABILITY", "NOOP", "LOGOUT", "STARTTLS", "NAMESPACE", "CHECK", "CLOSE", "UNSELECT", "IDLE":
	case "EXPUNGE":
		if cmd.UID {
			r.sp()
			cmd.Args = &ExpungeArgs{UIDs: r.uidSet()}
		}
	case "LOGIN":
		r.sp()
		a := &LoginArgs{User: r.astring("a user name")}
		r.sp()
		a.Password = r.astring("a password")
		cmd.Args = a
	case "AUTHENTICATE":
		r.sp()
		a := &AuthenticateArgs{Mechanism: strings.ToUpper(r.atom("a SASL mechanism"))}
		if r.maybe(' ') {
			a.HasInitial = true
			if !r.maybe('=') {
				b64 := r.token("an initial response", isBase64Char)
				dec, err := base64.StdEncoding.DecodeString(b64)
				if err != nil {
					r.fail("Invalid base64 in the initial response")
				}
				a.InitialResponse = dec
			}
		}
		cmd.Args = a
	case "ENABLE":
		a := &EnableArgs{}
		for r.maybe(' ') {
			a.Caps = append(a.Caps, strings.ToUpper(r.atom("a capability")))
		}
		if len(a.Caps) == 0 {
			r.fail("Expected SP and a capability")
		}
		cmd.Args = a
	case "ID":
		r.sp()
		cmd.Args = r.idArgs()
	case "SELECT", "EXAMINE":
		r.sp()
		a := &SelectArgs{Mailbox: r.mailbox(), ReadOnly: cmd.Name == "EXAMINE"}
		if r.maybe(' ') {
			r.list("the select parameters", false, func() { r.selectParam(a) })
		}
		cmd.Args = a
	case "CREATE":
		r.sp()
		a := &CreateArgs{Mailbox: r.mailbox()}
		if r.maybe(' ') {
			r.list("the create parameters", false, func() {
				if p := strings.ToUpper(r.atom("a create parameter")); p != "USE" {
					r.fail("Unknown CREATE parameter %s", p)
				}
				r.sp()
				r.list("the special uses", false, func() {
					r.expect('\\', `"\" before a special use`)
					a.SpecialUse = append(a.SpecialUse, goimap.MailboxAttr(`\`+r.atom("a special use")))
				})
			})
		}
		cmd.Args = a
	case "DELETE", "SUBSCRIBE", "UNSUBSCRIBE", "GETQUOTAROOT", "APPEND":
		r.sp()
		cmd.Args = &MailboxArgs{Mailbox: r.mailbox()}
	case "RENAME":
		r.sp()
		a := &RenameArgs{From: r.mailbox()}
		r.sp()
		a.To = r.mailbox()
		cmd.Args = a
	case "LIST":
		r.sp()
		cmd.Args = r.listArgs()
	case "LSUB":
		r.sp()
		a := &ListArgs{LSUB: true, Reference: r.mailboxRef()}
		r.sp()
		a.Patterns = []string{r.pattern()}
		cmd.Args = a
	case "STATUS":
		r.sp()
		a := &StatusArgs{Mailbox: r.mailbox()}
		r.sp()
		a.Options = r.statusItems()
		cmd.Args = a
	case "SEARCH":
		a := &SearchArgs{}
		r.sp()
		a.Return = r.searchReturn()
		a.Charset, a.Criteria = r.searchProgram(true)
		cmd.Args = a
	case "FETCH":
		r.sp()
		cmd.Args = r.fetchArgs(cmd.UID)
	case "STORE":
		r.sp()
		cmd.Args = r.storeArgs(cmd.UID)
	case "COPY", "MOVE":
		r.sp()
		a := &CopyArgs{Set: r.numSet(cmd.UID, true)}
		r.sp()
		a.Mailbox = r.mailbox()
		cmd.Args = a
	case "SORT":
		r.sp()
		a := &SortArgs{}
		a.Return = r.searchReturn()
		r.list("the sort criteria", false, func() {
			k := strings.ToUpper(r.atom("a sort key"))
			rev := k == "REVERSE"
			if rev {
				r.sp()
				k = strings.ToUpper(r.atom("a sort key after REVERSE"))
			}
			if !sortKeys[k] {
				r.fail("Unknown sort key %s", k)
			}
			a.Keys = append(a.Keys, SortKey{Key: k, Reverse: rev})
		})
		r.sp()
		a.Charset = r.astring("a charset")
		r.sp()
		_, a.Criteria = r.searchProgram(false)
		cmd.Args = a
	case "THREAD":
		r.sp()
		a := &ThreadArgs{Algorithm: strings.ToUpper(r.atom("a thread algorithm"))}
		r.sp()
		a.Charset = r.astring("a charset")
		r.sp()
		_, a.Criteria = r.searchProgram(false)
		cmd.Args = a
	case "GETQUOTA":
		r.sp()
		cmd.Args = &QuotaArgs{Root: r.astring("a quota root")}
	case "SETQUOTA":
		r.sp()
		a := &SetQuotaArgs{Root: r.astring("a quota root"), Limits: map[string]uint64{}}
		r.sp()
		r.list("the quota limits", true, func() {
			name := strings.ToUpper(r.atom("a resource name"))
			r.sp()
			a.Limits[name] = r.number64("a resource limit")
		})
		cmd.Args = a
	case "COMPRESS":
		r.sp()
		cmd.Args = &CompressArgs{Mechanism: strings.ToUpper(r.atom("a compression mechanism"))}
	default:
		r.fail("Unknown command %s", cmd.Name)
	}
}

func isBase64Char(c byte) bool {
	return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '+' || c == '/' || c == '='
}

// mailboxRef reads LIST's reference name: a mailbox name, possibly empty.
func (r *Reader) mailboxRef() string {
	raw := r.astring("a reference name")
	if raw == "" {
		return ""
	}
	return r.mailboxName(raw)
}

// idArgs reads ID's parameter list (RFC 2971): NIL, or up to 30 pairs,
// fields of at most 30 bytes and values of at most 1024.
func (r *Reader) idArgs() *IDArgs {
	if r.peek() != '(' {
		if _, ok := r.nstring("an ID parameter list"); ok {
			r.fail("Expected an ID parameter list or NIL")
		}
		return &IDArgs{}
	}
	a := &IDArgs{Fields: map[string]string{}}
	r.list("the ID parameters", true, func() {
		k := r.str("an ID field")
		r.sp()
		v, _ := r.nstring("an ID value")
		switch {
		case len(a.Fields) >= 30:
			r.fail("More than 30 ID fields")
		case len(k) > 30:
			r.fail("ID field longer than 30 bytes")
		case len(v) > 1024:
			r.fail("ID value longer than 1024 bytes")
		}
		a.Fields[k] = v
	})
	return a
}

// selectParam reads one SELECT parameter: CONDSTORE or QRESYNC (...).
func (r *Reader) selectParam(a *SelectArgs) {
	switch p := strings.ToUpper(r.atom("a select parameter")); p {
	case "CONDSTORE":
		a.CondStore = true
	case "QRESYNC":
		r.sp()
		q := &QResync{}
		r.listOpen("the QRESYNC parameters")
		q.UIDValidity = r.number("the UIDVALIDITY")
		if q.UIDValidity == 0 {
			r.fail("UIDVALIDITY 0")
		}
		r.sp()
		q.ModSeq = r.number64("a mod-sequence")
		if q.ModSeq == 0 {
			r.fail("Mod-sequence 0")
		}
		if r.maybe(' ') {
			if r.peek() != '(' {
				q.KnownUIDs = r.uidSet()
				if !r.maybe(' ') {
					r.expect(')', `")"`)
					r.depth--
					a.QResync = q
					return
				}
			}
			r.listOpen("the sequence match data")
			seq := r.numSet(false, false).(goimap.SeqSet)
			for _, rg := range seq {
				if rg.Stop == 0 {
					r.fail(`"*" in the known sequence set`)
				}
			}
			q.SeqMatch = seq
			r.sp()
			q.UIDMatch = r.uidSet()
			r.expect(')', `")"`)
			r.depth--
		}
		r.expect(')', `")"`)
		r.depth--
		a.QResync = q
	default:
		r.fail("Unknown select parameter %s", p)
	}
}

// listArgs reads LIST's arguments after "LIST ".
func (r *Reader) listArgs() *ListArgs {
	a := &ListArgs{}
	if r.peek() == '(' {
		a.Extended = true
		r.list("the selection options", true, func() {
			switch o := strings.ToUpper(r.atom("a selection option")); o {
			case "SUBSCRIBED":
				a.Options.SelectSubscribed = true
			case "REMOTE":
				a.Options.SelectRemote = true
			case "RECURSIVEMATCH":
				a.Options.SelectRecursiveMatch = true
			case "SPECIAL-USE":
				a.Options.SelectSpecialUse = true
			default:
				r.fail("Unknown LIST selection option %s", o)
			}
		})
		if a.Options.SelectRecursiveMatch && !a.Options.SelectSubscribed {
			r.fail("RECURSIVEMATCH without SUBSCRIBED")
		}
		r.sp()
	}
	a.Reference = r.mailboxRef()
	r.sp()
	if r.peek() == '(' {
		a.Extended = true
		r.list("the patterns", false, func() { a.Patterns = append(a.Patterns, r.pattern()) })
	} else {
		a.Patterns = []string{r.pattern()}
	}
	if r.maybe(' ') {
		a.Extended = true
		if kw := strings.ToUpper(r.atom("RETURN")); kw != "RETURN" {
			r.fail("Expected RETURN, got %s", kw)
		}
		r.sp()
		r.list("the return options", true, func() {
			switch o := strings.ToUpper(r.atom("a return option")); o {
			case "SUBSCRIBED":
				a.Options.ReturnSubscribed = true
			case "CHILDREN":
				a.Options.ReturnChildren = true
			case "SPECIAL-USE":
				a.Options.ReturnSpecialUse = true
			case "STATUS":
				r.sp()
				st := r.statusItems()
				a.Options.ReturnStatus = &st
			default:
				r.fail("Unknown LIST return option %s", o)
			}
		})
	}
	return a
}

// statusItems reads STATUS's parenthesized items.
func (r *Reader) statusItems() goimap.StatusOptions {
	var o goimap.StatusOptions
	r.list("the status items", false, func() {
		switch it := strings.ToUpper(r.atom("a status item")); it {
		case "MESSAGES":
			o.NumMessages = true
		case "RECENT":
			o.NumRecent = true
		case "UIDNEXT":
			o.UIDNext = true
		case "UIDVALIDITY":
			o.UIDValidity = true
		case "UNSEEN":
			o.NumUnseen = true
		case "DELETED":
			o.NumDeleted = true
		case "SIZE":
			o.Size = true
		case "APPENDLIMIT":
			o.AppendLimit = true
		case "DELETED-STORAGE":
			o.DeletedStorage = true
		case "HIGHESTMODSEQ":
			o.HighestModSeq = true
		default:
			r.fail("Unknown status item %s", it)
		}
	})
	return o
}

// storeArgs reads STORE's arguments after "STORE ".
func (r *Reader) storeArgs(uid bool) *StoreArgs {
	a := &StoreArgs{Set: r.numSet(uid, true)}
	r.sp()
	if r.peek() == '(' {
		r.listOpen("the store modifiers")
		if m := strings.ToUpper(r.atom("a store modifier")); m != "UNCHANGEDSINCE" {
			r.fail("Unknown STORE modifier %s", m)
		}
		r.sp()
		a.UnchangedSince, a.HasUnchanged = r.number64("a mod-sequence"), true
		r.expect(')', `")"`)
		r.depth--
		r.sp()
	}
	item := strings.ToUpper(r.atom("a store item"))
	switch {
	case strings.HasPrefix(item, "+"):
		a.Flags.Op, item = goimap.StoreFlagsAdd, item[1:]
	case strings.HasPrefix(item, "-"):
		a.Flags.Op, item = goimap.StoreFlagsDel, item[1:]
	default:
		a.Flags.Op = goimap.StoreFlagsSet
	}
	switch item {
	case "FLAGS":
	case "FLAGS.SILENT":
		a.Flags.Silent = true
	default:
		r.fail("Unknown store item %s", item)
	}
	r.sp()
	if r.peek() == '(' {
		a.Flags.Flags = r.flagList()
	} else {
		a.Flags.Flags = []goimap.Flag{r.flag(false)}
		for r.maybe(' ') {
			a.Flags.Flags = append(a.Flags.Flags, r.flag(false))
		}
	}
	return a
}

// String returns the command as a short description for logs.
func (c *Command) String() string {
	if c.UID {
		return fmt.Sprintf("%s UID %s", c.Tag, c.Name)
	}
	return c.Tag + " " + c.Name
}
