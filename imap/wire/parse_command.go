package wire

import (
	"encoding/base64"
	"errors"
	"strings"

	goimap "github.com/emersion/go-imap/v2"
)

// isSortKey reports whether k is a key SORT takes (RFC 5256, RFC 5957).
func isSortKey(k string) bool {
	switch k {
	case "ARRIVAL", "CC", "DATE", "FROM", "SIZE", "SUBJECT", "TO", "DISPLAYFROM", "DISPLAYTO":
		return true
	}
	return false
}

// ReadCommand reads the next command: its tag, its name and its
// arguments, parsed into Command.Args. A command that breaks the grammar
// or a limit is an *Error, after which the stream is at the next command
// (the rest of the refused one read and dropped); a command whose
// synchronizing literal is over its limit is refused through
// Continuer.Refuse and not returned (ReadCommand reads the next one). Any
// other error is fatal: the connection's (io.ErrUnexpectedEOF in the
// middle of a command, io.EOF between commands), ErrTooBig, or a
// Continuer's; the server then answers BYE if it can and closes.
//
// For APPEND, ReadCommand returns once it has read the mailbox name: the
// server reads the messages with NextAppend. What the server leaves of
// an APPEND, the next ReadCommand drops.
func (r *Reader) ReadCommand() (*Command, error) {
	if r.inAppend {
		if err := r.finishAppend(); err != nil {
			return nil, err
		}
	}
	for {
		cmd, err := r.readCommand()
		if errors.Is(err, errSkipped) {
			continue // refused through the Continuer, and answered
		}
		return cmd, err
	}
}

// readCommand reads one command.
func (r *Reader) readCommand() (*Command, error) {
	r.tag, r.line, r.literals, r.discarded, r.depth, r.keys, r.atEnd, r.last = "", 0, 0, 0, 0, 0, false, ""
	r.appended, r.appendParen, r.body = false, false, nil
	if _, err := r.br.Peek(1); err != nil {
		return nil, err // io.EOF: the client closed between commands
	}
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
			cmd.Name = strings.ToUpper(r.atom("a command name"))
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
			cmd.Args = &ExpungeArgs{UIDs: r.numSet(true, true).(goimap.UIDSet)}
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
			a.Caps = append(a.Caps, goimap.Cap(strings.ToUpper(r.atom("a capability"))))
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
		a := &SelectArgs{Mailbox: r.mailbox(), Options: goimap.SelectOptions{ReadOnly: cmd.Name == "EXAMINE"}}
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
		r.sp()
		cmd.Args = r.searchArgs()
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
		if r.peek() != '(' {
			if kw := strings.ToUpper(r.atom("RETURN or the sort criteria")); kw != "RETURN" {
				r.fail("Expected RETURN or the sort criteria, got %s", kw)
			}
			r.sp()
			a.Return = r.returnOptions()
			r.sp()
		}
		r.list("the sort criteria", false, func() {
			k := strings.ToUpper(r.atom("a sort key"))
			rev := k == "REVERSE"
			if rev {
				r.sp()
				k = strings.ToUpper(r.atom("a sort key after REVERSE"))
			}
			if !isSortKey(k) {
				r.fail("Unknown sort key %s", k)
			}
			a.Keys = append(a.Keys, SortKey{Key: k, Reverse: rev})
		})
		r.sp()
		a.Charset = r.astring("a charset")
		r.sp()
		a.Criteria = r.searchKeys("")
		cmd.Args = a
	case "THREAD":
		r.sp()
		a := &ThreadArgs{Algorithm: goimap.ThreadAlgorithm(strings.ToUpper(r.atom("a thread algorithm")))}
		r.sp()
		a.Charset = r.astring("a charset")
		r.sp()
		a.Criteria = r.searchKeys("")
		cmd.Args = a
	case "GETQUOTA":
		r.sp()
		cmd.Args = &QuotaArgs{Root: r.astring("a quota root")}
	case "SETQUOTA":
		r.sp()
		a := &SetQuotaArgs{Root: r.astring("a quota root"), Limits: map[goimap.QuotaResourceType]int64{}}
		r.sp()
		r.list("the quota limits", true, func() {
			name := goimap.QuotaResourceType(strings.ToUpper(r.atom("a resource name")))
			r.sp()
			a.Limits[name] = int64(r.number64("a resource limit"))
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
	pairs := 0
	r.list("the ID parameters", true, func() {
		if pairs++; pairs > 30 {
			r.fail("More than 30 ID fields")
		}
		k := r.str("an ID field")
		r.sp()
		v, _ := r.nstring("an ID value")
		switch {
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
		a.Options.CondStore = true
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
		a.Options = &goimap.StoreOptions{UnchangedSince: r.number64("a mod-sequence")}
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
