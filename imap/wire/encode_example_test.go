package wire_test

import (
	"bytes"
	"fmt"
	"strings"

	goimap "github.com/emersion/go-imap/v2"

	"github.com/mailsys/mailsys/imap/wire"
)

// A SELECT answered, then a FETCH with a body section: the responses wait
// in the Writer's buffer and reach the connection (here a bytes.Buffer,
// printed with LF for CRLF) in one write, on Flush.
func ExampleWriter() {
	var conn bytes.Buffer
	w := wire.NewWriter(&conn, 0)
	w.MailboxFlags([]goimap.Flag{goimap.FlagAnswered, goimap.FlagFlagged, goimap.FlagDeleted, goimap.FlagSeen, goimap.FlagDraft})
	w.Exists(172)
	w.StatusCode("", "OK", "UIDVALIDITY", func(w *wire.Writer) { w.Number(3857529045) }, "UIDs valid")
	w.StatusCode("", "OK", "UIDNEXT", func(w *wire.Writer) { w.Number(4392) }, "Predicted next UID")
	w.PermanentFlags([]goimap.Flag{goimap.FlagDeleted, goimap.FlagSeen, goimap.FlagWildcard}, "Limited")
	w.Status("A142", "OK", "READ-WRITE", "SELECT completed")

	body := "Subject: hi\r\n\r\n"
	f := w.Fetch(12)
	f.UID(4392)
	f.Flags([]goimap.Flag{goimap.FlagSeen})
	_ = f.Section(&goimap.FetchItemBodySection{Specifier: goimap.PartSpecifierHeader}, "", int64(len(body)), strings.NewReader(body))
	f.End()
	w.Status("A143", "OK", "", "FETCH completed")
	if err := w.Flush(); err != nil {
		panic(err)
	}
	fmt.Print(strings.ReplaceAll(conn.String(), "\r\n", "\n"))
	// Output:
	// * FLAGS (\Answered \Flagged \Deleted \Seen \Draft)
	// * 172 EXISTS
	// * OK [UIDVALIDITY 3857529045] UIDs valid
	// * OK [UIDNEXT 4392] Predicted next UID
	// * OK [PERMANENTFLAGS (\Deleted \Seen \*)] Limited
	// A142 OK [READ-WRITE] SELECT completed
	// * 12 FETCH (UID 4392 FLAGS (\Seen) BODY[HEADER] {15}
	// Subject: hi
	//
	// )
	// A143 OK FETCH completed
}
