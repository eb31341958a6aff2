package wire

import (
	"errors"
	"reflect"
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
		{"a ENABLE CONDSTORE qresync\r\n", "ENABLE", false, &EnableArgs{Caps: []string{"CONDSTORE", "QRESYNC"}}},
		{"2 ID (\"name\" \"Thunderbird\" \"version\" \"128.0\" \"os\" NIL)\r\n", "ID", false, &IDArgs{Fields: map[string]string{"name": "Thunderbird", "version": "128.0", "os": ""}}},
		{"a ID NIL\r\n", "ID", false, &IDArgs{}},
		{"3 select \"INBOX\" (CONDSTORE)\r\n", "SELECT", false, &SelectArgs{Mailbox: "INBOX", CondStore: true}},
		{"a EXAMINE inbox\r\n", "EXAMINE", false, &SelectArgs{Mailbox: "INBOX", ReadOnly: true}},
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
		{"a UID STORE 7 (UNCHANGEDSINCE 320162338) -FLAGS \\Deleted\r\n", "STORE", true, &StoreArgs{Set: goimap.UIDSet{{Start: 7, Stop: 7}}, UnchangedSince: 320162338, HasUnchanged: true,
			Flags: goimap.StoreFlags{Op: goimap.StoreFlagsDel, Flags: []goimap.Flag{goimap.FlagDeleted}}}},
		{"a UID MOVE 4:2 Trash\r\n", "MOVE", true, &CopyArgs{Set: goimap.UIDSet{{Start: 2, Stop: 4}}, Mailbox: "Trash"}},
		{"a COPY *:3 Archive\r\n", "COPY", false, &CopyArgs{Set: goimap.SeqSet{{Start: 3, Stop: 0}}, Mailbox: "Archive"}},
		{"a UID SORT (REVERSE DATE subject) UTF-8 ALL\r\n", "SORT", true, &SortArgs{Keys: []SortKey{{Key: "DATE", Reverse: true}, {Key: "SUBJECT"}}, Charset: "UTF-8", Criteria: &goimap.SearchCriteria{}}},
		{"a SORT RETURN (COUNT) (ARRIVAL) US-ASCII SEEN\r\n", "SORT", false, &SortArgs{Return: &goimap.SearchOptions{ReturnCount: true}, Keys: []SortKey{{Key: "ARRIVAL"}}, Charset: "US-ASCII",
			Criteria: &goimap.SearchCriteria{Flag: []goimap.Flag{goimap.FlagSeen}}}},
		{"a THREAD REFERENCES UTF-8 SINCE 5-MAR-2000\r\n", "THREAD", false, &ThreadArgs{Algorithm: "REFERENCES", Charset: "UTF-8", Criteria: &goimap.SearchCriteria{Since: time.Date(2000, 3, 5, 0, 0, 0, 0, time.UTC)}}},
		{"a GETQUOTAROOT INBOX\r\n", "GETQUOTAROOT", false, &MailboxArgs{Mailbox: "INBOX"}},
		{"a GETQUOTA \"\"\r\n", "GETQUOTA", false, &QuotaArgs{Root: ""}},
		{"a SETQUOTA \"\" (STORAGE 512)\r\n", "SETQUOTA", false, &SetQuotaArgs{Root: "", Limits: map[string]uint64{"STORAGE": 512}}},
		{"a COMPRESS DEFLATE\r\n", "COMPRESS", false, &CompressArgs{Mechanism: "DEFLATE"}},
		{"a IDLE\r\n", "IDLE", false, nil},
		{"a APPEND Drafts (\\Draft) {5}\r\nhello\r\n", "APPEND", false, &MailboxArgs{Mailbox: "Drafts"}},
	} {
		cmd := readOne(t, tc.in)
		if cmd.Name != tc.name || cmd.UID != tc.uid || !reflect.DeepEqual(cmd.Args, tc.args) {
			t.Errorf("%q:\n got %s uid=%v %#v\nwant %s uid=%v %#v", tc.in, cmd.Name, cmd.UID, cmd.Args, tc.name, tc.uid, tc.args)
		}
	}
}

// TestReadErrors: each bad command is a BAD (or NO) naming the problem,
// and the command after it reads.
func TestReadErrors(t *testing.T) {
	for _, tc := range []struct {
		in, text string
	}{
		{"\r\n", "Empty command line"},
		{"a\r\n", "Expected SP"},
		{"a FOO\r\n", "Unknown command FOO"},
		{"a UID NOOP\r\n", "Unknown command UID NOOP"},
		{"a SELECT\r\n", "Expected SP"},
		{"a LOGIN \"a\rb\" c\r\n", "CR or LF in a quoted string"},
		{"a LOGIN \"a\\qb\" c\r\n", `Invalid escape "\q"`},
		{"a LOGIN \"é\" c\r\n", "8-bit characters in a quoted string"},
		{"a SELECT &Jjo\r\n", `"&" not closed by "-"`},
		{"a SELECT &AGE-\r\n", "printable US-ASCII"},
		{"a SELECT a\x01b\r\n", "Expected CRLF"},
		{"a FETCH 0 FLAGS\r\n", "Sequence number 0"},
		{"a FETCH 1 (FLAGS\r\n", "Expected SP"},
		{"a FETCH 1 BODY[4.NOPE]\r\n", "Unknown section NOPE"},
		{"a FETCH 1 (FLAGS) (VANISHED)\r\n", "VANISHED without UID FETCH"},
		{"a UID FETCH 1 (FLAGS) (VANISHED)\r\n", "VANISHED without CHANGEDSINCE"},
		{"a SEARCH FOO\r\n", "Unknown search key FOO"},
		{"a SEARCH SINCE 31-Feb-2026\r\n", "Invalid date"},
		{"a STORE 1 FLAGS.LOUD (\\Seen)\r\n", "Unknown store item FLAGS.LOUD"},
		{"a SORT (NAME) UTF-8 ALL\r\n", "Unknown sort key NAME"},
		{"a ID (\"k\" \"" + strings.Repeat("v", 1025) + "\")\r\n", "ID value longer than 1024 bytes"},
		{"a LIST (RECURSIVEMATCH) \"\" *\r\n", "RECURSIVEMATCH without SUBSCRIBED"},
		{"a SEARCH " + strings.Repeat("(", 101) + "ALL" + strings.Repeat(")", 101) + "\r\n", "Nested more than 100"},
		{"a SEARCH " + strings.Repeat("NOT ", 200) + "ALL\r\n", "Nested more than 100"},
		{"a LOGIN {3+}\r\na\x00b c\r\n", "NUL in a literal"},
	} {
		r, _ := newReader(tc.in + "b NOOP\r\n")
		_, err := r.ReadCommand()
		var e *Error
		if !errors.As(err, &e) || !strings.Contains(e.Text, tc.text) {
			t.Errorf("%.60q: %v, want a BAD with %q", tc.in, err, tc.text)
			continue
		}
		cmd, err := r.ReadCommand()
		if err != nil || cmd.Tag != "b" || cmd.Name != "NOOP" {
			t.Errorf("%.60q: the next command: %v, %v", tc.in, cmd, err)
		}
	}
}
