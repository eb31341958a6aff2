package wire

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	goimap "github.com/emersion/go-imap/v2"
)

func TestReadCommands(t *testing.T) {
	date := time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		name string
		uid  bool
		args any
	}{
		{"a1 CAPABILITY\r\n", "CAPABILITY", false, nil},
		{"a1 noop\n", "NOOP", false, nil},
		{"a LOGIN alice \"pass word\"\r\n", "LOGIN", false, &LoginArgs{User: "alice", Password: "pass word"}},
		{"a LOGIN {5}\r\nal\"ce {3+}\r\np\\w\r\n", "LOGIN", false, &LoginArgs{User: `al"ce`, Password: `p\w`}},
		{"a AUTHENTICATE PLAIN AGFsaWNlAHB3\r\n", "AUTHENTICATE", false, &AuthenticateArgs{Mechanism: "PLAIN", InitialResponse: []byte("\x00alice\x00pw"), HasInitial: true}},
		{"a AUTHENTICATE plain =\r\n", "AUTHENTICATE", false, &AuthenticateArgs{Mechanism: "PLAIN", HasInitial: true}},
		{"a AUTHENTICATE PLAIN\r\n", "AUTHENTICATE", false, &AuthenticateArgs{Mechanism: "PLAIN"}},
		{"a ENABLE CONDSTORE qresync\r\n", "ENABLE", false, &EnableArgs{Caps: []goimap.Cap{goimap.CapCondStore, goimap.CapQResync}}},
		{"2 ID (\"name\" \"Thunderbird\" \"version\" \"128.0\" \"os\" NIL)\r\n", "ID", false, &IDArgs{Fields: map[string]string{"name": "Thunderbird", "version": "128.0", "os": ""}}},
		{"a ID NIL\r\n", "ID", false, &IDArgs{}},
		{"3 select \"INBOX\" (CONDSTORE)\r\n", "SELECT", false, &SelectArgs{Mailbox: "INBOX", Options: goimap.SelectOptions{CondStore: true}}},
		{"a EXAMINE inbox\r\n", "EXAMINE", false, &SelectArgs{Mailbox: "INBOX", Options: goimap.SelectOptions{ReadOnly: true}}},
		{"5 SELECT INBOX (QRESYNC (67890007 20050715194045000 41,43:211,214:541))\r\n", "SELECT", false, &SelectArgs{Mailbox: "INBOX",
			QResync: &QResync{UIDValidity: 67890007, ModSeq: 20050715194045000, KnownUIDs: goimap.UIDSet{{Start: 41, Stop: 41}, {Start: 43, Stop: 211}, {Start: 214, Stop: 541}}}}},
		{"A03 SELECT INBOX (QRESYNC (67890007 90060115194045000 41:211,214:541 (1:10 41:50)))\r\n", "SELECT", false, &SelectArgs{Mailbox: "INBOX",
			QResync: &QResync{UIDValidity: 67890007, ModSeq: 90060115194045000, KnownUIDs: goimap.UIDSet{{Start: 41, Stop: 211}, {Start: 214, Stop: 541}},
				SeqMatch: goimap.SeqSet{{Start: 1, Stop: 10}}, UIDMatch: goimap.UIDSet{{Start: 41, Stop: 50}}}}},
		{"a SELECT x (QRESYNC (1 2))\r\n", "SELECT", false, &SelectArgs{Mailbox: "x", QResync: &QResync{UIDValidity: 1, ModSeq: 2}}},
		{"a SELECT &ZeVnLIqe-\r\n", "SELECT", false, &SelectArgs{Mailbox: "日本語"}},
		{"a CREATE Archive (USE (\\Archive))\r\n", "CREATE", false, &CreateArgs{Mailbox: "Archive", SpecialUse: []goimap.MailboxAttr{`\Archive`}}},
		{"a DELETE \"a&-b\"\r\n", "DELETE", false, &MailboxArgs{Mailbox: "a&b"}},
		{"a RENAME old new\r\n", "RENAME", false, &RenameArgs{From: "old", To: "new"}},
		{"a LIST \"\" *\r\n", "LIST", false, &ListArgs{Patterns: []string{"*"}}},
		{"a LIST (SUBSCRIBED RECURSIVEMATCH) \"\" (\"%\" \"Work/*\") RETURN (CHILDREN STATUS (MESSAGES UNSEEN))\r\n", "LIST", false, &ListArgs{
			Reference: "", Patterns: []string{"%", "Work/*"}, Extended: true,
			Options: goimap.ListOptions{SelectSubscribed: true, SelectRecursiveMatch: true, ReturnChildren: true, ReturnStatus: &goimap.StatusOptions{NumMessages: true, NumUnseen: true}}}},
		{"a LSUB \"\" %\r\n", "LSUB", false, &ListArgs{LSUB: true, Patterns: []string{"%"}}},
		{"a STATUS Sent (MESSAGES UIDNEXT HIGHESTMODSEQ SIZE)\r\n", "STATUS", false, &StatusArgs{Mailbox: "Sent", Options: goimap.StatusOptions{NumMessages: true, UIDNext: true, HighestModSeq: true, Size: true}}},
		{"a UID EXPUNGE 3:5,9\r\n", "EXPUNGE", true, &ExpungeArgs{UIDs: goimap.UIDSet{{Start: 3, Stop: 5}, {Start: 9, Stop: 9}}}},
		{"a EXPUNGE\r\n", "EXPUNGE", false, nil},
		{"a SEARCH UNSEEN SINCE 1-Dec-2026\r\n", "SEARCH", false, &SearchArgs{Criteria: &goimap.SearchCriteria{NotFlag: []goimap.Flag{goimap.FlagSeen}, Since: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)}}},
		{"a UID SEARCH RETURN (MIN COUNT) CHARSET utf-8 OR FROM ann NOT HEADER X-Spam yes\r\n", "SEARCH", true, &SearchArgs{Charset: "UTF-8",
			Return: &goimap.SearchOptions{ReturnMin: true, ReturnCount: true},
			Criteria: &goimap.SearchCriteria{Or: [][2]goimap.SearchCriteria{{
				{Header: []goimap.SearchCriteriaHeaderField{{Key: "From", Value: "ann"}}},
				{Not: []goimap.SearchCriteria{{Header: []goimap.SearchCriteriaHeaderField{{Key: "X-Spam", Value: "yes"}}}}},
			}}}}},
		{"a SEARCH RETURN () 1:* (DELETED ON 3-Dec-2026) MODSEQ 620162338\r\n", "SEARCH", false, &SearchArgs{Return: &goimap.SearchOptions{ReturnAll: true},
			Criteria: &goimap.SearchCriteria{SeqNum: []goimap.SeqSet{{{Start: 1, Stop: 0}}}, Flag: []goimap.Flag{goimap.FlagDeleted},
				Since: date, Before: date.AddDate(0, 0, 1), ModSeq: &goimap.SearchCriteriaModSeq{ModSeq: 620162338}}}},
		{"a SEARCH $ KEYWORD $Junk UID 5:*\r\n", "SEARCH", false, &SearchArgs{Criteria: &goimap.SearchCriteria{UID: []goimap.UIDSet{goimap.SearchRes(), {{Start: 5, Stop: 0}}}, Flag: []goimap.Flag{"$Junk"}}}},
		{"a FETCH 1:* (FLAGS)\r\n", "FETCH", false, &FetchArgs{Set: goimap.SeqSet{{Start: 1, Stop: 0}}, Options: &goimap.FetchOptions{Flags: true}}},
		{"4 UID fetch 1:* (FLAGS) (CHANGEDSINCE 12345 VANISHED)\r\n", "FETCH", true, &FetchArgs{Set: goimap.UIDSet{{Start: 1, Stop: 0}},
			Options: &goimap.FetchOptions{Flags: true, ModSeq: true, ChangedSince: 12345}, Vanished: true}},
		{"6 UID FETCH 1:* (UID FLAGS BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])\r\n", "FETCH", true, &FetchArgs{Set: goimap.UIDSet{{Start: 1, Stop: 0}},
			Options: &goimap.FetchOptions{UID: true, Flags: true, BodySection: []*goimap.FetchItemBodySection{{Specifier: goimap.PartSpecifierHeader, HeaderFields: []string{"MESSAGE-ID"}, Peek: true}}}}},
		{"a FETCH 2 (BODY[1.2.MIME] BODY[3.HEADER.FIELDS.NOT (A B)]<0.100> BINARY.PEEK[1]<5.10> BINARY.SIZE[] BODY BODYSTRUCTURE)\r\n", "FETCH", false, &FetchArgs{Set: goimap.SeqSet{{Start: 2, Stop: 2}},
			Options: &goimap.FetchOptions{BodyStructure: &goimap.FetchItemBodyStructure{Extended: true},
				BodySection: []*goimap.FetchItemBodySection{
					{Part: []int{1, 2}, Specifier: goimap.PartSpecifierMIME},
					{Part: []int{3}, Specifier: goimap.PartSpecifierHeader, HeaderFieldsNot: []string{"A", "B"}, Partial: &goimap.SectionPartial{Offset: 0, Size: 100}},
				},
				BinarySection:     []*goimap.FetchItemBinarySection{{Part: []int{1}, Peek: true, Partial: &goimap.SectionPartial{Offset: 5, Size: 10}}},
				BinarySectionSize: []*goimap.FetchItemBinarySectionSize{{Part: nil}},
			}}},
		{"a FETCH 1 FAST\r\n", "FETCH", false, &FetchArgs{Set: goimap.SeqSet{{Start: 1, Stop: 1}}, Macro: "FAST", Options: &goimap.FetchOptions{Flags: true, InternalDate: true, RFC822Size: true}}},
		{"a STORE 1:3 +FLAGS.SILENT (\\Seen $Label)\r\n", "STORE", false, &StoreArgs{Set: goimap.SeqSet{{Start: 1, Stop: 3}}, Flags: goimap.StoreFlags{Op: goimap.StoreFlagsAdd, Silent: true, Flags: []goimap.Flag{goimap.FlagSeen, "$Label"}}}},
		{"a UID STORE 7 (UNCHANGEDSINCE 320162338) -FLAGS \\Deleted\r\n", "STORE", true, &StoreArgs{Set: goimap.UIDSet{{Start: 7, Stop: 7}}, Options: &goimap.StoreOptions{UnchangedSince: 320162338},
			Flags: goimap.StoreFlags{Op: goimap.StoreFlagsDel, Flags: []goimap.Flag{goimap.FlagDeleted}}}},
		{"a UID MOVE 4:2 Trash\r\n", "MOVE", true, &CopyArgs{Set: goimap.UIDSet{{Start: 2, Stop: 4}}, Mailbox: "Trash"}},
		{"a COPY *:3 Archive\r\n", "COPY", false, &CopyArgs{Set: goimap.SeqSet{{Start: 3, Stop: 0}}, Mailbox: "Archive"}},
		{"a UID SORT (REVERSE DATE subject) UTF-8 ALL\r\n", "SORT", true, &SortArgs{Keys: []SortKey{{Key: "DATE", Reverse: true}, {Key: "SUBJECT"}}, Charset: "UTF-8", Criteria: &goimap.SearchCriteria{}}},
		{"a SORT RETURN (COUNT) (ARRIVAL) US-ASCII SEEN\r\n", "SORT", false, &SortArgs{Return: &goimap.SearchOptions{ReturnCount: true}, Keys: []SortKey{{Key: "ARRIVAL"}}, Charset: "US-ASCII",
			Criteria: &goimap.SearchCriteria{Flag: []goimap.Flag{goimap.FlagSeen}}}},
		{"a THREAD REFERENCES UTF-8 SINCE 5-MAR-2000\r\n", "THREAD", false, &ThreadArgs{Algorithm: goimap.ThreadReferences, Charset: "UTF-8", Criteria: &goimap.SearchCriteria{Since: time.Date(2000, 3, 5, 0, 0, 0, 0, time.UTC)}}},
		{"a GETQUOTAROOT INBOX\r\n", "GETQUOTAROOT", false, &MailboxArgs{Mailbox: "INBOX"}},
		{"a GETQUOTA \"\"\r\n", "GETQUOTA", false, &QuotaArgs{Root: ""}},
		{"a SETQUOTA \"\" (STORAGE 512)\r\n", "SETQUOTA", false, &SetQuotaArgs{Root: "", Limits: map[goimap.QuotaResourceType]int64{goimap.QuotaResourceStorage: 512}}},
		{"a COMPRESS DEFLATE\r\n", "COMPRESS", false, &CompressArgs{Mechanism: "DEFLATE"}},
		{"a IDLE\r\n", "IDLE", false, nil},
		{"a APPEND Drafts (\\Draft) {5}\r\nhello\r\n", "APPEND", false, &MailboxArgs{Mailbox: "Drafts"}},
	} {
		checkCommand(t, tc.in, tc.name, tc.uid, tc.args)
	}
}

// checkCommand reads in and a NOOP after it: in reads as the command
// name with args, and the NOOP reads too.
func checkCommand(t *testing.T, in, name string, uid bool, args any) {
	t.Helper()
	r, _ := newReader(in + "zz NOOP\r\n")
	cmd, err := r.ReadCommand()
	if err != nil {
		t.Errorf("%q: %v", in, err)
		return
	}
	tag, _, _ := strings.Cut(in, " ")
	if cmd.Tag != tag || cmd.Name != name || cmd.UID != uid || !reflect.DeepEqual(cmd.Args, args) {
		t.Errorf("%q:\n got %s %s uid=%v %#v\nwant %s %s uid=%v %#v", in, cmd.Tag, cmd.Name, cmd.UID, cmd.Args, tag, name, uid, args)
		return
	}
	if name == "APPEND" {
		for {
			m, err := r.NextAppend()
			if err != nil {
				t.Errorf("%q: NextAppend: %v", in, err)
				return
			}
			if m == nil {
				break
			}
		}
	}
	if cmd, err := r.ReadCommand(); err != nil || cmd.Tag != "zz" || cmd.Name != "NOOP" {
		t.Errorf("%q: the NOOP after it: %v, %v", in, cmd, err)
	}

	// Literals may stand wherever a string may: the command with its
	// quoted strings sent as literals, synchronizing or not, reads the
	// same.
	for _, sync := range []bool{false, true} {
		lit, n := toLiterals(in, sync)
		if n == 0 {
			break
		}
		r, c := newReader(lit)
		cmd, err := r.ReadCommand()
		if err != nil || !reflect.DeepEqual(cmd.Args, args) {
			t.Errorf("%q as %q: %v %v", in, lit, cmd, err)
		} else if want := map[bool]int{true: n}[sync]; c.n != want {
			t.Errorf("%q as %q: %d continuations", in, lit, c.n)
		}
	}
}

// quotedOnly matches the quoted strings that the grammar keeps quoted:
// dates, date-times and MODSEQ's entry names (RFC 7162).
var quotedOnly = regexp.MustCompile(`^( ?[0-9]{1,2}-[A-Za-z]{3}-[0-9]{4}|/flags/)`)

// toLiterals rewrites the quoted strings of a command's first line as
// literals ({n+}, or {n} if sync) and returns how many; 0 if the command
// has other literals already.
func toLiterals(in string, sync bool) (string, int) {
	line, rest, _ := strings.Cut(in, "\n")
	if strings.ContainsAny(line, "{~") {
		return in, 0
	}
	var b strings.Builder
	n := 0
	for {
		i := strings.IndexByte(line, '"')
		if i < 0 {
			b.WriteString(line)
			break
		}
		b.WriteString(line[:i])
		var val strings.Builder
		j := i + 1
		for ; j < len(line) && line[j] != '"'; j++ {
			if line[j] == '\\' {
				j++
			}
			val.WriteByte(line[j])
		}
		if quotedOnly.MatchString(val.String()) {
			b.WriteString(line[i : j+1])
		} else {
			plus := "+"
			if sync {
				plus = ""
			}
			fmt.Fprintf(&b, "{%d%s}\r\n%s", val.Len(), plus, val.String())
			n++
		}
		line = line[j+1:]
	}
	return b.String() + "\n" + rest, n
}

func seqs(rs ...uint32) goimap.SeqSet {
	var s goimap.SeqSet
	for i := 0; i < len(rs); i += 2 {
		s = append(s, goimap.SeqRange{Start: rs[i], Stop: rs[i+1]})
	}
	return s
}

func uids(rs ...goimap.UID) goimap.UIDSet {
	var s goimap.UIDSet
	for i := 0; i < len(rs); i += 2 {
		s = append(s, goimap.UIDRange{Start: rs[i], Stop: rs[i+1]})
	}
	return s
}

func day(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }

func from(v string) []goimap.SearchCriteriaHeaderField {
	return []goimap.SearchCriteriaHeaderField{{Key: "From", Value: v}}
}

// TestRFCExamples reads the client commands of the RFCs' examples.
func TestRFCExamples(t *testing.T) {
	smith := &goimap.SearchCriteria{Flag: []goimap.Flag{goimap.FlagFlagged}, Since: day(1994, 2, 1), Not: []goimap.SearchCriteria{{Header: from("Smith")}}}
	dateFrom := []*goimap.FetchItemBodySection{{Specifier: goimap.PartSpecifierHeader, HeaderFields: []string{"DATE", "FROM"}}}
	for _, tc := range []struct {
		in   string
		name string
		uid  bool
		args any
	}{
		// RFC 9051 section 6.
		{"a002 CAPABILITY\r\n", "CAPABILITY", false, nil},
		{"a047 NOOP\r\n", "NOOP", false, nil},
		{"A023 LOGOUT\r\n", "LOGOUT", false, nil},
		{"a002 STARTTLS\r\n", "STARTTLS", false, nil},
		{"A001 AUTHENTICATE GSSAPI\r\n", "AUTHENTICATE", false, &AuthenticateArgs{Mechanism: "GSSAPI"}},
		{"a001 LOGIN SMITH SESAME\r\n", "LOGIN", false, &LoginArgs{User: "SMITH", Password: "SESAME"}},
		{"t1 ENABLE UTF8=ACCEPT\r\n", "ENABLE", false, &EnableArgs{Caps: []goimap.Cap{goimap.CapUTF8Accept}}},
		{"A142 SELECT INBOX\r\n", "SELECT", false, &SelectArgs{Mailbox: "INBOX"}},
		{"A932 EXAMINE blurdybloop\r\n", "EXAMINE", false, &SelectArgs{Mailbox: "blurdybloop", Options: goimap.SelectOptions{ReadOnly: true}}},
		{"A003 CREATE owatagusiam/\r\n", "CREATE", false, &CreateArgs{Mailbox: "owatagusiam/"}},
		{"A683 DELETE blurdybloop\r\n", "DELETE", false, &MailboxArgs{Mailbox: "blurdybloop"}},
		{"A683 RENAME blurdybloop sarasoop\r\n", "RENAME", false, &RenameArgs{From: "blurdybloop", To: "sarasoop"}},
		{"A002 SUBSCRIBE #news.comp.mail.mime\r\n", "SUBSCRIBE", false, &MailboxArgs{Mailbox: "#news.comp.mail.mime"}},
		{"A002 UNSUBSCRIBE #news.comp.mail.mime\r\n", "UNSUBSCRIBE", false, &MailboxArgs{Mailbox: "#news.comp.mail.mime"}},
		{"A101 LIST \"\" \"\"\r\n", "LIST", false, &ListArgs{Patterns: []string{""}}},
		{"A102 LIST #news.comp.mail.misc \"\"\r\n", "LIST", false, &ListArgs{Reference: "#news.comp.mail.misc", Patterns: []string{""}}},
		{"A202 LIST ~/Mail/ %\r\n", "LIST", false, &ListArgs{Reference: "~/Mail/", Patterns: []string{"%"}}},
		{"A02 LIST (SUBSCRIBED) \"\" \"*\"\r\n", "LIST", false, &ListArgs{Patterns: []string{"*"}, Extended: true, Options: goimap.ListOptions{SelectSubscribed: true}}},
		{"A03 LIST () \"\" \"%\" RETURN (CHILDREN)\r\n", "LIST", false, &ListArgs{Patterns: []string{"%"}, Extended: true, Options: goimap.ListOptions{ReturnChildren: true}}},
		{"A04 LIST (REMOTE) \"\" \"%\" RETURN (CHILDREN)\r\n", "LIST", false, &ListArgs{Patterns: []string{"%"}, Extended: true, Options: goimap.ListOptions{SelectRemote: true, ReturnChildren: true}}},
		{"A05 LIST \"\" (\"INBOX\" \"Drafts\" \"Sent/%\")\r\n", "LIST", false, &ListArgs{Patterns: []string{"INBOX", "Drafts", "Sent/%"}, Extended: true}},
		{"A001 NAMESPACE\r\n", "NAMESPACE", false, nil},
		{"A042 STATUS blurdybloop (UIDNEXT MESSAGES)\r\n", "STATUS", false, &StatusArgs{Mailbox: "blurdybloop", Options: goimap.StatusOptions{UIDNext: true, NumMessages: true}}},
		{"A002 IDLE\r\n", "IDLE", false, nil},
		{"FXXZ CHECK\r\n", "CHECK", false, nil},
		{"A341 CLOSE\r\n", "CLOSE", false, nil},
		{"A342 UNSELECT\r\n", "UNSELECT", false, nil},
		{"A202 EXPUNGE\r\n", "EXPUNGE", false, nil},
		{"A003 UID EXPUNGE 3000:3002\r\n", "EXPUNGE", true, &ExpungeArgs{UIDs: uids(3000, 3002)}},
		{"A282 SEARCH RETURN (MIN COUNT) FLAGGED SINCE 1-Feb-1994 NOT FROM \"Smith\"\r\n", "SEARCH", false, &SearchArgs{Return: &goimap.SearchOptions{ReturnMin: true, ReturnCount: true}, Criteria: smith}},
		{"A283 SEARCH RETURN () FLAGGED SINCE 1-Feb-1994 NOT FROM \"Smith\"\r\n", "SEARCH", false, &SearchArgs{Return: &goimap.SearchOptions{ReturnAll: true}, Criteria: smith}},
		{"A284 SEARCH TEXT \"string not in mailbox\"\r\n", "SEARCH", false, &SearchArgs{Criteria: &goimap.SearchCriteria{Text: []string{"string not in mailbox"}}}},
		{"A285 SEARCH CHARSET UTF-8 TEXT {12}\r\n\xd0\x9c\xd0\xb0\xd0\xba\xd0\xb4\xd0\xbe\xd0\xbd\r\n", "SEARCH", false, &SearchArgs{Charset: "UTF-8", Criteria: &goimap.SearchCriteria{Text: []string{"Макдон"}}}},
		{"A286 SEARCH CHARSET UTF-8 TEXT {12+}\r\n\xd0\x9c\xd0\xb0\xd0\xba\xd0\xb4\xd0\xbe\xd0\xbd\r\n", "SEARCH", false, &SearchArgs{Charset: "UTF-8", Criteria: &goimap.SearchCriteria{Text: []string{"Макдон"}}}},
		{"A654 FETCH 2:4 (FLAGS BODY[HEADER.FIELDS (DATE FROM)])\r\n", "FETCH", false, &FetchArgs{Set: seqs(2, 4), Options: &goimap.FetchOptions{Flags: true, BodySection: dateFrom}}},
		{"A003 STORE 2:4 +FLAGS (\\Deleted)\r\n", "STORE", false, &StoreArgs{Set: seqs(2, 4), Flags: goimap.StoreFlags{Op: goimap.StoreFlagsAdd, Flags: []goimap.Flag{goimap.FlagDeleted}}}},
		{"A003 COPY 2:4 MEETING\r\n", "COPY", false, &CopyArgs{Set: seqs(2, 4), Mailbox: "MEETING"}},
		{"A999 UID FETCH 4827313:4828442 FLAGS\r\n", "FETCH", true, &FetchArgs{Set: uids(4827313, 4828442), Options: &goimap.FetchOptions{Flags: true}}},
		{"A003 APPEND saved-messages (\\Seen) {3}\r\nabc\r\n", "APPEND", false, &MailboxArgs{Mailbox: "saved-messages"}},
		// RFC 3501 section 6.4.5: the legacy items.
		{"a FETCH 1 (RFC822.HEADER BODY[] RFC822 RFC822.TEXT)\r\n", "FETCH", false, &FetchArgs{Set: seqs(1, 1), RFC822: []string{"RFC822.HEADER", "", "RFC822", "RFC822.TEXT"},
			Options: &goimap.FetchOptions{BodySection: []*goimap.FetchItemBodySection{{Specifier: goimap.PartSpecifierHeader, Peek: true}, {}, {}, {Specifier: goimap.PartSpecifierText}}}}},
		{"a FETCH 1:* ALL\r\n", "FETCH", false, &FetchArgs{Set: seqs(1, 0), Macro: "ALL", Options: &goimap.FetchOptions{Flags: true, InternalDate: true, RFC822Size: true, Envelope: true}}},
		{"a FETCH 1 full\r\n", "FETCH", false, &FetchArgs{Set: seqs(1, 1), Macro: "FULL", Options: &goimap.FetchOptions{Flags: true, InternalDate: true, RFC822Size: true, Envelope: true, BodyStructure: &goimap.FetchItemBodyStructure{}}}},
		// RFC 6851 MOVE, RFC 4315 UIDPLUS.
		{"a UID MOVE 42:69 foo\r\n", "MOVE", true, &CopyArgs{Set: uids(42, 69), Mailbox: "foo"}},
		{"a MOVE 2:4 Trash\r\n", "MOVE", false, &CopyArgs{Set: seqs(2, 4), Mailbox: "Trash"}},
		// RFC 7162 CONDSTORE and QRESYNC.
		{"a103 UID STORE 6,4,8 (UNCHANGEDSINCE 12121230045) +FLAGS.SILENT (\\Deleted)\r\n", "STORE", true, &StoreArgs{Set: uids(6, 6, 4, 4, 8, 8), Options: &goimap.StoreOptions{UnchangedSince: 12121230045},
			Flags: goimap.StoreFlags{Op: goimap.StoreFlagsAdd, Silent: true, Flags: []goimap.Flag{goimap.FlagDeleted}}}},
		{"d105 STORE 7,5,9 (UNCHANGEDSINCE 0) +FLAGS.SILENT (\\Deleted)\r\n", "STORE", false, &StoreArgs{Set: seqs(7, 7, 5, 5, 9, 9), Options: &goimap.StoreOptions{UnchangedSince: 0},
			Flags: goimap.StoreFlags{Op: goimap.StoreFlagsAdd, Silent: true, Flags: []goimap.Flag{goimap.FlagDeleted}}}},
		{"a SEARCH MODSEQ \"/flags/\\\\draft\" all 620162338\r\n", "SEARCH", false, &SearchArgs{Criteria: &goimap.SearchCriteria{
			ModSeq: &goimap.SearchCriteriaModSeq{ModSeq: 620162338, MetadataName: `/flags/\draft`, MetadataType: "all"}}}},
		{"t SEARCH OR NOT MODSEQ 720162338 LARGER 50000\r\n", "SEARCH", false, &SearchArgs{Criteria: &goimap.SearchCriteria{Or: [][2]goimap.SearchCriteria{{
			{Not: []goimap.SearchCriteria{{ModSeq: &goimap.SearchCriteriaModSeq{ModSeq: 720162338}}}}, {Larger: 50000}}}}}},
		{"s100 UID FETCH 1:* (FLAGS) (CHANGEDSINCE 12345)\r\n", "FETCH", true, &FetchArgs{Set: uids(1, 0), Options: &goimap.FetchOptions{Flags: true, ModSeq: true, ChangedSince: 12345}}},
		{"a FETCH 1:* (FLAGS MODSEQ)\r\n", "FETCH", false, &FetchArgs{Set: seqs(1, 0), Options: &goimap.FetchOptions{Flags: true, ModSeq: true}}},
		{"A02 UID FETCH 300:500 (FLAGS) (CHANGEDSINCE 12345 VANISHED)\r\n", "FETCH", true, &FetchArgs{Set: uids(300, 500), Vanished: true, Options: &goimap.FetchOptions{Flags: true, ModSeq: true, ChangedSince: 12345}}},
		{"A03 SELECT INBOX (QRESYNC (67890007 90060115194045000 41:211,214:541))\r\n", "SELECT", false, &SelectArgs{Mailbox: "INBOX",
			QResync: &QResync{UIDValidity: 67890007, ModSeq: 90060115194045000, KnownUIDs: uids(41, 211, 214, 541)}}},
		{"B04 SELECT INBOX (QRESYNC (67890007 90060115194045000 1:29997 (5000,7500,9000,9990:9999 15000,22500,27000,29970,29973,29976,29979,29982,29985,29988,29991,29994,29997)))\r\n", "SELECT", false, &SelectArgs{Mailbox: "INBOX",
			QResync: &QResync{UIDValidity: 67890007, ModSeq: 90060115194045000, KnownUIDs: uids(1, 29997), SeqMatch: seqs(5000, 5000, 7500, 7500, 9000, 9000, 9990, 9999),
				UIDMatch: uids(15000, 15000, 22500, 22500, 27000, 27000, 29970, 29970, 29973, 29973, 29976, 29976, 29979, 29979, 29982, 29982, 29985, 29985, 29988, 29988, 29991, 29991, 29994, 29994, 29997, 29997)}}},
		{"A01 ENABLE QRESYNC\r\n", "ENABLE", false, &EnableArgs{Caps: []goimap.Cap{goimap.CapQResync}}},
		{"a STATUS INBOX (HIGHESTMODSEQ)\r\n", "STATUS", false, &StatusArgs{Mailbox: "INBOX", Options: goimap.StatusOptions{HighestModSeq: true}}},
		// RFC 5256 SORT and THREAD, RFC 5267 ESORT, RFC 5957.
		{"A282 SORT (SUBJECT) UTF-8 SINCE 1-Feb-1994\r\n", "SORT", false, &SortArgs{Keys: []SortKey{{Key: "SUBJECT"}}, Charset: "UTF-8", Criteria: &goimap.SearchCriteria{Since: day(1994, 2, 1)}}},
		{"A283 SORT (SUBJECT REVERSE DATE) UTF-8 ALL\r\n", "SORT", false, &SortArgs{Keys: []SortKey{{Key: "SUBJECT"}, {Key: "DATE", Reverse: true}}, Charset: "UTF-8", Criteria: &goimap.SearchCriteria{}}},
		{"A284 SORT (SUBJECT) US-ASCII TEXT \"not in mailbox\"\r\n", "SORT", false, &SortArgs{Keys: []SortKey{{Key: "SUBJECT"}}, Charset: "US-ASCII", Criteria: &goimap.SearchCriteria{Text: []string{"not in mailbox"}}}},
		{"A301 UID SORT RETURN (MIN MAX COUNT ALL) (DISPLAYFROM REVERSE DISPLAYTO CC FROM TO SIZE) UTF-8 UNDELETED\r\n", "SORT", true, &SortArgs{
			Return: &goimap.SearchOptions{ReturnMin: true, ReturnMax: true, ReturnCount: true, ReturnAll: true},
			Keys:   []SortKey{{Key: "DISPLAYFROM"}, {Key: "DISPLAYTO", Reverse: true}, {Key: "CC"}, {Key: "FROM"}, {Key: "TO"}, {Key: "SIZE"}}, Charset: "UTF-8",
			Criteria: &goimap.SearchCriteria{NotFlag: []goimap.Flag{goimap.FlagDeleted}}}},
		{"A283 THREAD ORDEREDSUBJECT UTF-8 SINCE 5-MAR-2000\r\n", "THREAD", false, &ThreadArgs{Algorithm: goimap.ThreadOrderedSubject, Charset: "UTF-8", Criteria: &goimap.SearchCriteria{Since: day(2000, 3, 5)}}},
		{"A284 UID THREAD REFERENCES US-ASCII TEXT \"gewp\"\r\n", "THREAD", true, &ThreadArgs{Algorithm: goimap.ThreadReferences, Charset: "US-ASCII", Criteria: &goimap.SearchCriteria{Text: []string{"gewp"}}}},
		// RFC 9208 QUOTA.
		{"G0001 GETQUOTA \"!partition/sda4\"\r\n", "GETQUOTA", false, &QuotaArgs{Root: "!partition/sda4"}},
		{"A003 GETQUOTAROOT INBOX\r\n", "GETQUOTAROOT", false, &MailboxArgs{Mailbox: "INBOX"}},
		{"S0001 SETQUOTA \"#user/alice\" (STORAGE 510 message 1000)\r\n", "SETQUOTA", false, &SetQuotaArgs{Root: "#user/alice",
			Limits: map[goimap.QuotaResourceType]int64{goimap.QuotaResourceStorage: 510, goimap.QuotaResourceMessage: 1000}}},
		{"S0002 SETQUOTA \"\" ()\r\n", "SETQUOTA", false, &SetQuotaArgs{Root: "", Limits: map[goimap.QuotaResourceType]int64{}}},
		// RFC 4978 COMPRESS, RFC 2971 ID.
		{"a COMPRESS DEFLATE\r\n", "COMPRESS", false, &CompressArgs{Mechanism: "DEFLATE"}},
		{"a023 ID (\"name\" \"sodr\" \"version\" \"19.34\" \"vendor\" \"Pink Floyd Music Limited\")\r\n", "ID", false, &IDArgs{Fields: map[string]string{"name": "sodr", "version": "19.34", "vendor": "Pink Floyd Music Limited"}}},
		{"a ID ()\r\n", "ID", false, &IDArgs{Fields: map[string]string{}}},
		// RFC 5258 LIST-EXTENDED, RFC 5819 LIST-STATUS, RFC 6154 SPECIAL-USE.
		{"A04 LIST (SUBSCRIBED RECURSIVEMATCH) \"\" \"%\" RETURN (CHILDREN)\r\n", "LIST", false, &ListArgs{Patterns: []string{"%"}, Extended: true,
			Options: goimap.ListOptions{SelectSubscribed: true, SelectRecursiveMatch: true, ReturnChildren: true}}},
		{"A01 LIST \"\" % RETURN (STATUS (MESSAGES UNSEEN))\r\n", "LIST", false, &ListArgs{Patterns: []string{"%"}, Extended: true,
			Options: goimap.ListOptions{ReturnStatus: &goimap.StatusOptions{NumMessages: true, NumUnseen: true}}}},
		{"t1 CREATE \"Everything\" (USE (\\All))\r\n", "CREATE", false, &CreateArgs{Mailbox: "Everything", SpecialUse: []goimap.MailboxAttr{goimap.MailboxAttrAll}}},
		{"t3 LIST (SPECIAL-USE) \"\" \"*\"\r\n", "LIST", false, &ListArgs{Patterns: []string{"*"}, Extended: true, Options: goimap.ListOptions{SelectSpecialUse: true}}},
		{"t4 LIST \"\" \"%\" RETURN (SPECIAL-USE SUBSCRIBED)\r\n", "LIST", false, &ListArgs{Patterns: []string{"%"}, Extended: true, Options: goimap.ListOptions{ReturnSpecialUse: true, ReturnSubscribed: true}}},
		{"a LSUB \"#news.\" \"comp.mail.*\"\r\n", "LSUB", false, &ListArgs{LSUB: true, Reference: "#news.", Patterns: []string{"comp.mail.*"}}},
		// RFC 5182 SEARCHRES.
		{"A282 SEARCH RETURN (SAVE) FLAGGED SINCE 1-Feb-1994 NOT FROM \"Smith\"\r\n", "SEARCH", false, &SearchArgs{Return: &goimap.SearchOptions{ReturnSave: true}, Criteria: smith}},
		{"A283 FETCH $ (UID INTERNALDATE FLAGS RFC822.HEADER)\r\n", "FETCH", false, &FetchArgs{Set: goimap.SearchRes(), RFC822: []string{"RFC822.HEADER"},
			Options: &goimap.FetchOptions{UID: true, InternalDate: true, Flags: true, BodySection: []*goimap.FetchItemBodySection{{Specifier: goimap.PartSpecifierHeader, Peek: true}}}}},
		{"A301 UID SEARCH UID $ SMALLER 4096\r\n", "SEARCH", true, &SearchArgs{Criteria: &goimap.SearchCriteria{UID: []goimap.UIDSet{goimap.SearchRes()}, Smaller: 4096}}},
		{"A303 UID COPY $ Trash\r\n", "COPY", true, &CopyArgs{Set: goimap.SearchRes(), Mailbox: "Trash"}},
		{"A304 UID EXPUNGE $\r\n", "EXPUNGE", true, &ExpungeArgs{UIDs: goimap.SearchRes()}},
		{"A305 STORE $ +FLAGS (\\Seen)\r\n", "STORE", false, &StoreArgs{Set: goimap.SearchRes(), Flags: goimap.StoreFlags{Op: goimap.StoreFlagsAdd, Flags: []goimap.Flag{goimap.FlagSeen}}}},
		// RFC 3516 BINARY, RFC 4959 SASL-IR, RFC 3502 MULTIAPPEND.
		{"t FETCH 1 (BINARY[1.1] BINARY.SIZE[1.1] BINARY.PEEK[]<0.100>)\r\n", "FETCH", false, &FetchArgs{Set: seqs(1, 1), Options: &goimap.FetchOptions{
			BinarySection:     []*goimap.FetchItemBinarySection{{Part: []int{1, 1}}, {Peek: true, Partial: &goimap.SectionPartial{Size: 100}}},
			BinarySectionSize: []*goimap.FetchItemBinarySectionSize{{Part: []int{1, 1}}}}}},
		{"a AUTHENTICATE PLAIN dGVzdAB0ZXN0AHRlc3Q=\r\n", "AUTHENTICATE", false, &AuthenticateArgs{Mechanism: "PLAIN", InitialResponse: []byte("test\x00test\x00test"), HasInitial: true}},
		{"A003 APPEND saved-messages (\\Seen) {3+}\r\nabc (\\Seen) \" 7-Feb-1994 21:52:25 -0800\" {3+}\r\ndef\r\n", "APPEND", false, &MailboxArgs{Mailbox: "saved-messages"}},
		// Search keys of RFC 9051 section 6.4.4 not met above.
		{"a SEARCH ANSWERED DELETED DRAFT SEEN UNANSWERED UNDELETED UNDRAFT UNFLAGGED UNSEEN KEYWORD $Forwarded UNKEYWORD $Junk\r\n", "SEARCH", false, &SearchArgs{Criteria: &goimap.SearchCriteria{
			Flag:    []goimap.Flag{goimap.FlagAnswered, goimap.FlagDeleted, goimap.FlagDraft, goimap.FlagSeen, "$Forwarded"},
			NotFlag: []goimap.Flag{goimap.FlagAnswered, goimap.FlagDeleted, goimap.FlagDraft, goimap.FlagFlagged, goimap.FlagSeen, "$Junk"}}}},
		{"a SEARCH BCC b CC c FROM f SUBJECT s TO t HEADER X-Y z BODY {3}\r\nb d\r\n", "SEARCH", false, &SearchArgs{Criteria: &goimap.SearchCriteria{
			Header: []goimap.SearchCriteriaHeaderField{{Key: "Bcc", Value: "b"}, {Key: "Cc", Value: "c"}, {Key: "From", Value: "f"}, {Key: "Subject", Value: "s"}, {Key: "To", Value: "t"}, {Key: "X-Y", Value: "z"}},
			Body:   []string{"b d"}}}},
		{"a SEARCH BEFORE 3-Dec-2026 SENTBEFORE 2-Dec-2026 SENTSINCE 1-Nov-2026 SENTON \"15-Nov-2026\"\r\n", "SEARCH", false, &SearchArgs{Criteria: &goimap.SearchCriteria{
			Before: day(2026, 12, 3), SentBefore: day(2026, 11, 16), SentSince: day(2026, 11, 15)}}},
		{"a SEARCH 2,4:* LARGER 10 SMALLER 100 NEW OLD RECENT\r\n", "SEARCH", false, &SearchArgs{Criteria: &goimap.SearchCriteria{
			SeqNum: []goimap.SeqSet{seqs(2, 2, 4, 0)}, Larger: 10, Smaller: 100, Flag: []goimap.Flag{flagRecent, flagRecent}, NotFlag: []goimap.Flag{goimap.FlagSeen, flagRecent}}}},
	} {
		checkCommand(t, tc.in, tc.name, tc.uid, tc.args)
	}
}

// TestReadErrors: each bad command is a BAD naming what was expected,
// for its tag, and the command after it reads.
func TestReadErrors(t *testing.T) {
	for _, tc := range []struct {
		in, want string
	}{
		{"\r\n", "BAD Empty command line"},
		{"a\r\n", "BAD Expected SP after the tag, got the end of the line"},
		{"a \r\n", "BAD Expected a command name, got the end of the line"},
		{"+ NOOP\r\n", "BAD Expected a tag, got \"+\""},
		{"a FOO\r\n", "BAD Unknown command FOO"},
		{"a UID NOOP\r\n", "BAD Unknown command UID NOOP"},
		{"a UID\r\n", "BAD Expected SP after the command name, got the end of the line"},
		{"a NOOP x\r\n", "BAD Expected CRLF after the command name, got SP"},
		{"a SELECT\r\n", "BAD Expected SP after the command name, got the end of the line"},
		{"a SELECT \r\n", "BAD Expected a mailbox name, got the end of the line"},
		{"a SELECT INBOX x\r\n", "BAD Expected \"(\" to open the select parameters, got \"x\""},
		{"a SELECT INBOX (FOO)\r\n", "BAD Unknown select parameter FOO"},
		{"a SELECT INBOX ()\r\n", "BAD Expected the select parameters, got an empty list"},
		{"a SELECT INBOX (QRESYNC (0 1))\r\n", "BAD UIDVALIDITY 0"},
		{"a SELECT INBOX (QRESYNC (1 0))\r\n", "BAD Mod-sequence 0"},
		{"a SELECT INBOX (QRESYNC (1 2 3 (1:* 4)))\r\n", "BAD \"*\" in the known sequence set"},
		{"a LOGIN\r\n", "BAD Expected SP after the command name, got the end of the line"},
		{"a LOGIN alice\r\n", "BAD Expected SP after the user name, got the end of the line"},
		{"a LOGIN \"a\rb\" c\r\n", "BAD CR or LF in a quoted string"},
		{"a LOGIN \"a\\qb\" c\r\n", "BAD Invalid escape \"q\" in a quoted string (only \\\" and \\\\)"},
		{"a LOGIN \"é\" c\r\n", "BAD 8-bit character in a quoted string without UTF8=ACCEPT"},
		{"a LOGIN \"a\x00\" c\r\n", "BAD NUL in a quoted string"},
		{"a LOGIN {3+}\r\na\x00b c\r\n", "BAD NUL in a literal"},
		{"a LOGIN {x}\r\n", "BAD Expected the literal's size"},
		{"a LOGIN {3\r\n", "BAD Expected \"}\", got the end of the line"},
		{"a LOGIN {3+}x\r\n", "BAD Expected CRLF after the literal's size, got \"x\""},
		{"a AUTHENTICATE\r\n", "BAD Expected SP after the command name, got the end of the line"},
		{"a AUTHENTICATE PLAIN !!\r\n", "BAD Expected an initial response, got \"!\""},
		{"a AUTHENTICATE PLAIN abc\r\n", "BAD Invalid base64 in the initial response"},
		{"a ENABLE\r\n", "BAD Expected SP and a capability"},
		{"a ID\r\n", "BAD Expected SP after the command name, got the end of the line"},
		{"a ID foo\r\n", "BAD Expected an ID parameter list (a string or NIL), got \"foo\""},
		{"a ID (\"k\")\r\n", "BAD Expected SP after the ID field, got \")\""},
		{"a ID (\"" + strings.Repeat("k", 31) + "\" NIL)\r\n", "BAD ID field longer than 30 bytes"},
		{"a ID (" + strings.Repeat("\"k\" \"v\" ", 30) + "\"k\" \"v\")\r\n", "BAD More than 30 ID fields"},
		{"a SELECT &Jjo\r\n", "BAD Invalid mailbox name: \"&\" not closed by \"-\""},
		{"a SELECT &AGE-\r\n", "BAD Invalid mailbox name: a shift sequence encoding printable US-ASCII"},
		{"a SELECT a\x01b\r\n", "BAD Expected CRLF after the mailbox name, got byte 0x01"},
		{"a SELECT \"a\x7fb\"\r\n", "BAD Invalid mailbox name: control character"},
		{"a CREATE x (USE (Archive))\r\n", "BAD Expected \"\\\" before a special use, got \"A\""},
		{"a CREATE x (FOO (\\All))\r\n", "BAD Unknown CREATE parameter FOO"},
		{"a RENAME a\r\n", "BAD Expected SP after the mailbox name, got the end of the line"},
		{"a LIST\r\n", "BAD Expected SP after the command name, got the end of the line"},
		{"a LIST \"\"\r\n", "BAD Expected SP after the reference name, got the end of the line"},
		{"a LIST (FOO) \"\" *\r\n", "BAD Unknown LIST selection option FOO"},
		{"a LIST \"\" * RETURN (FOO)\r\n", "BAD Unknown LIST return option FOO"},
		{"a LIST \"\" * FOO ()\r\n", "BAD Expected RETURN, got FOO"},
		{"a LIST \"\" ()\r\n", "BAD Expected the patterns, got an empty list"},
		{"a STATUS x\r\n", "BAD Expected SP after the mailbox name, got the end of the line"},
		{"a STATUS x (FOO)\r\n", "BAD Unknown status item FOO"},
		{"a STATUS x ()\r\n", "BAD Expected the status items, got an empty list"},
		{"a FETCH\r\n", "BAD Expected SP after the command name, got the end of the line"},
		{"a FETCH 1\r\n", "BAD Expected SP after the sequence set, got the end of the line"},
		{"a FETCH 0 FLAGS\r\n", "BAD Sequence number 0"},
		{"a FETCH 1: FLAGS\r\n", "BAD Expected a sequence number, got SP"},
		{"a FETCH 1 (FLAGS\r\n", "BAD Expected SP after the fetch item, got the end of the line"},
		{"a FETCH 1 FOO\r\n", "BAD Unknown fetch item FOO"},
		{"a FETCH 1 (ALL)\r\n", "BAD Unknown fetch item ALL"},
		{"a FETCH 1 BODY[4.NOPE]\r\n", "BAD Unknown section NOPE"},
		{"a FETCH 1 BODY[MIME]\r\n", "BAD MIME without a part number"},
		{"a FETCH 1 BODY[0]\r\n", "BAD Part number 0"},
		{"a FETCH 1 BODY[HEADER.FIELDS]\r\n", "BAD Expected SP after the section, got \"]\""},
		{"a FETCH 1 BODY[HEADER.FIELDS ()]\r\n", "BAD Expected the header field names, got an empty list"},
		{"a FETCH 1 BODY.PEEK\r\n", "BAD Expected \"[\" after BODY.PEEK"},
		{"a FETCH 1 BODY[]<1>\r\n", "BAD Expected \".\" in a partial range, got \">\""},
		{"a FETCH 1 BODY[]<1.0>\r\n", "BAD Partial length 0"},
		{"a FETCH 1 BINARY[TEXT]\r\n", "BAD Expected a part number, got \"T\""},
		{"a FETCH 1 BINARY.SIZE\r\n", "BAD Expected \"[\", got the end of the line"},
		{"a FETCH 1 (FLAGS) (VANISHED)\r\n", "BAD VANISHED without UID FETCH"},
		{"a UID FETCH 1 (FLAGS) (VANISHED)\r\n", "BAD VANISHED without CHANGEDSINCE"},
		{"a FETCH 1 (FLAGS) (FOO)\r\n", "BAD Unknown fetch modifier FOO"},
		{"a FETCH 99999999999 FLAGS\r\n", "BAD Expected a sequence number, got a number out of range"},
		{"a SEARCH\r\n", "BAD Expected SP after the command name, got the end of the line"},
		{"a SEARCH FOO\r\n", "BAD Unknown search key FOO"},
		{"a SEARCH SINCE 31-Feb-2026\r\n", "BAD Invalid date \"31-Feb-2026\" (want d-Mon-yyyy)"},
		{"a SEARCH SINCE 1-Foo-2026\r\n", "BAD Invalid date \"1-Foo-2026\" (want d-Mon-yyyy)"},
		{"a SEARCH OR SEEN\r\n", "BAD Expected SP after the search key, got the end of the line"},
		{"a SEARCH (SEEN\r\n", "BAD Expected \")\", got the end of the line"},
		{"a SEARCH ()\r\n", "BAD Expected a search key, got \")\""},
		{"a SEARCH RETURN (FOO) ALL\r\n", "BAD Unknown search return option FOO"},
		{"a SEARCH CHARSET\r\n", "BAD Expected SP after CHARSET, got the end of the line"},
		{"a SEARCH RETURN\r\n", "BAD Expected SP after RETURN, got the end of the line"},
		{"a SORT FOO (DATE) UTF-8 ALL\r\n", "BAD Expected RETURN or the sort criteria, got FOO"},
		{"a SEARCH LARGER x\r\n", "BAD Expected a size, got \"x\""},
		{"a SEARCH MODSEQ \"/flags/x\" foo 1\r\n", "BAD Unknown entry type foo"},
		{"a SEARCH HEADER X\r\n", "BAD Expected SP after the header field name, got the end of the line"},
		{"a STORE 1 FLAGS.LOUD (\\Seen)\r\n", "BAD Unknown store item FLAGS.LOUD"},
		{"a STORE 1 +FLAGS\r\n", "BAD Expected SP after the store item, got the end of the line"},
		{"a STORE 1 (FOO 1) FLAGS ()\r\n", "BAD Unknown STORE modifier FOO"},
		{"a STORE 1 FLAGS (\\*)\r\n", "BAD Expected a flag name after \\, got \"*\""},
		{"a COPY 1\r\n", "BAD Expected SP after the sequence set, got the end of the line"},
		{"a UID COPY x y\r\n", "BAD Expected a sequence number, got \"x\""},
		{"a SORT (NAME) UTF-8 ALL\r\n", "BAD Unknown sort key NAME"},
		{"a SORT () UTF-8 ALL\r\n", "BAD Expected the sort criteria, got an empty list"},
		{"a SORT (REVERSE) UTF-8 ALL\r\n", "BAD Expected SP after the sort key, got \")\""},
		{"a SORT (DATE)\r\n", "BAD Expected SP after the sort criteria, got the end of the line"},
		{"a THREAD\r\n", "BAD Expected SP after the command name, got the end of the line"},
		{"a THREAD REFERENCES\r\n", "BAD Expected SP after the thread algorithm, got the end of the line"},
		{"a GETQUOTA\r\n", "BAD Expected SP after the command name, got the end of the line"},
		{"a SETQUOTA x (STORAGE)\r\n", "BAD Expected SP after the resource name, got \")\""},
		{"a COMPRESS\r\n", "BAD Expected SP after the command name, got the end of the line"},
		{"a UID EXPUNGE\r\n", "BAD Expected SP after the command name, got the end of the line"},
		{"a UID EXPUNGE 0\r\n", "BAD Sequence number 0"},
		{"a LIST (RECURSIVEMATCH) \"\" *\r\n", "BAD RECURSIVEMATCH without SUBSCRIBED"},
		{"a SEARCH " + strings.Repeat("(", 101) + "ALL" + strings.Repeat(")", 101) + "\r\n", "BAD [LIMIT] Nested more than 100 levels deep"},
	} {
		r, _ := newReader(tc.in + "zz NOOP\r\n")
		_, err := r.ReadCommand()
		var e *Error
		if !errors.As(err, &e) || e.Error() != tc.want {
			t.Errorf("%.60q: %v, want %s", tc.in, err, tc.want)
			continue
		}
		if tag, _, _ := strings.Cut(tc.in, " "); e.Tag != tag && !strings.HasPrefix(tc.in, "+") && tc.in != "a\r\n" && tc.in != "\r\n" {
			t.Errorf("%.60q: tag %q", tc.in, e.Tag)
		}
		cmd, err := r.ReadCommand()
		if err != nil || cmd.Tag != "zz" || cmd.Name != "NOOP" {
			t.Errorf("%.60q: the next command: %v, %v", tc.in, cmd, err)
		}
	}
}

// TestMailboxCodec: modified UTF-7 (RFC 3501 section 5.1.3) decoded
// strictly and encoded as an encoder must.
func TestMailboxCodec(t *testing.T) {
	for _, tc := range []struct{ enc, dec string }{
		{"INBOX", "INBOX"},
		{"~peter/mail/&U,BTFw-/&ZeVnLIqe-", "~peter/mail/台北/日本語"},
		{"&-", "&"},
		{"a&-b&-", "a&b&"},
		{"Entw&APw-rfe", "Entwürfe"},
		{"&2D3eAA-", "😀"},
		{"&AOQA9gD8-", "äöü"},
		{"", ""},
	} {
		got, err := DecodeMailbox(tc.enc)
		if err != nil || got != tc.dec {
			t.Errorf("DecodeMailbox(%q) = %q, %v, want %q", tc.enc, got, err, tc.dec)
		}
		if enc := EncodeMailbox(tc.dec); enc != tc.enc {
			t.Errorf("EncodeMailbox(%q) = %q, want %q", tc.dec, enc, tc.enc)
		}
	}
	for _, bad := range []string{
		"&", "&U,BTFw", "&U,BTFw-&ZeVnLIqe-", "&AGE-", "&Jjo!-", "&Jj-", "&2D0-", "&3gA-", "a\x01b", "\x7f", "é", "&AAA-", "&AIA-",
	} {
		if got, err := DecodeMailbox(bad); !errors.Is(err, ErrMailboxName) {
			t.Errorf("DecodeMailbox(%q) = %q, %v: not refused", bad, got, err)
		}
	}
	// A name's round trip.
	for _, name := range []string{"Sent", "a&b", "日本語/Entwürfe & Co", "x😀y", "&&", "Привет мир"} {
		if got, err := DecodeMailbox(EncodeMailbox(name)); err != nil || got != name {
			t.Errorf("%q round trip: %q, %v", name, got, err)
		}
	}
}

// TestIntern: intern's words are the bytes they stand for.
func TestIntern(t *testing.T) {
	for _, w := range strings.Fields("UID FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK ENVELOPE BODYSTRUCTURE MODSEQ FROM TO CC BCC SUBJECT DATE MESSAGE-ID REFERENCES IN-REPLY-TO CONTENT-TYPE REPLY-TO PRIORITY X-PRIORITY NEWSGROUPS INBOX uid Inbox X-OTHER") {
		if got := intern([]byte(w)); got != w {
			t.Errorf("intern(%q) = %q", w, got)
		}
	}
}
