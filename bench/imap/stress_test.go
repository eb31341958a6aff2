package main

import (
	"bytes"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
)

// TestStress runs the stress mode briefly against the server: it must
// complete and report. The protocol errors it finds are logged, not
// failed on: the server is being mended as this is written.
func TestStress(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a server process")
	}
	var out bytes.Buffer
	code := run([]string{"-stress", "-clients", "3", "-duration", "2s", "-per-folder", "10", "-examples", "2", "-allow-errors", "-dir", t.TempDir()}, &out)
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, out.String())
	}
	for _, want := range []string{"commands: ", "protocol errors: ", "stress_errors="} {
		if !strings.Contains(out.String(), want) {
			t.Fatalf("no %q in the output:\n%s", want, out.String())
		}
	}
	t.Log(out.String())
}

// TestStressAddr runs the stress mode against a server already running,
// by -addr, -user and -pass.
func TestStressAddr(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a server process")
	}
	dir := t.TempDir()
	if err := fill(dir, 0, 0); err != nil {
		t.Fatal(err)
	}
	srv, err := startServer(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.stop()
	var out bytes.Buffer
	code := run([]string{"-stress", "-addr", srv.addr, "-user", user, "-pass", password, "-clients", "2", "-duration", "1s", "-per-folder", "5", "-allow-errors"}, &out)
	if code != 0 || !strings.Contains(out.String(), "stress_errors=") {
		t.Fatalf("exit %d:\n%s", code, out.String())
	}
}

// transcript feeds a session the lines of a conversation: "C: " lines
// begin commands, "S: " lines are what the server sent (joined with
// CRLF, literals and all). It returns the report.
func transcript(t *testing.T, rev2 bool, lines string) *report {
	t.Helper()
	rep := newReport(10)
	s := newSession(rep, "test", stressFolders)
	s.rev2 = rev2
	var server []byte
	pending := false // an S: line is open: a line of no C: or S: continues it
	flush := func() {
		if pending {
			server = append(server, "\r\n"...)
			pending = false
		}
		rr := newRespReader(bytes.NewReader(server))
		for {
			b, err := rr.frame()
			if err != nil {
				break
			}
			s.handle(parseResponse(b))
		}
		server = nil
	}
	for _, line := range strings.Split(lines, "\n") {
		switch {
		case strings.HasPrefix(line, "C: "):
			flush()
			c, err := parseCommand(line[3:])
			if err != nil {
				t.Fatal(err)
			}
			s.begin(c)
		case strings.HasPrefix(line, "S: "):
			if pending {
				server = append(server, "\r\n"...)
			}
			server = append(server, line[3:]...)
			pending = true
		case pending && line != "":
			server = append(server, "\n"+line...) // a literal's lines: they end in \r
		case line == "":
		default:
			t.Fatalf("transcript line %q", line)
		}
	}
	flush()
	return rep
}

// expect checks that a report counted exactly the errors named.
func expect(t *testing.T, rep *report, want map[string]int) {
	t.Helper()
	got := map[string]int{}
	for k, v := range rep.errors {
		if v != 0 {
			got[k] = v
		}
	}
	if !maps.Equal(got, want) {
		var ex []string
		for _, k := range slices.Sorted(maps.Keys(rep.examples)) {
			for _, e := range rep.examples[k] {
				ex = append(ex, k+": "+e)
			}
		}
		t.Errorf("errors %v, want %v\n%s", got, want, strings.Join(ex, "\n"))
	}
}

const greeting = `S: * OK [CAPABILITY IMAP4rev1 IMAP4rev2 UIDPLUS MOVE IDLE LITERAL+] ready`

// selectInbox is an IMAP4rev1 SELECT of INBOX: 3 messages, UIDs below 10.
const selectInbox = `
C: A1 SELECT "INBOX"
S: * 3 EXISTS
S: * 1 RECENT
S: * OK [UIDVALIDITY 7] UIDs valid
S: * OK [UIDNEXT 10] Predicted next UID
S: * FLAGS (\Seen \Answered \Flagged \Deleted \Draft $Label1)
S: * OK [PERMANENTFLAGS (\Seen \Answered \Flagged \Deleted \Draft $Label1 \*)] Permanent flags
S: A1 OK [READ-WRITE] SELECT completed
`

// TestCheckerClean is a correct conversation: the checker finds nothing.
func TestCheckerClean(t *testing.T) {
	msg, _ := stressMessage(3, 7)
	id := stressMessageID(3, 7)
	env := fmt.Sprintf(`("Mon, 02 Jan 2006 15:04:05 +0000" "stress" (("Bob" NIL "bob" "example.net")) NIL NIL NIL NIL NIL NIL "%s")`, id)
	rep := transcript(t, false, greeting+selectInbox+`
C: A2 FETCH 1:* (UID FLAGS)
S: * 1 FETCH (UID 4 FLAGS (\Seen))
S: * 2 FETCH (UID 6 FLAGS ($Label1))
S: * 3 FETCH (UID 9 FLAGS (\Recent))
S: A2 OK FETCH completed
C: A3 STORE 2 +FLAGS ($Label7)
S: * FLAGS (\Seen \Answered \Flagged \Deleted \Draft $Label1 $Label7)
S: * 2 FETCH (FLAGS ($Label1 $Label7))
S: A3 OK STORE completed
C: A4 UID EXPUNGE 4
S: * 1 EXPUNGE
S: A4 OK done
C: A5 APPEND "INBOX" ($Label1) {12+}
S: * 3 EXISTS
S: A5 OK [APPENDUID 7 10] APPEND completed
C: A6 UID FETCH 1:* (FLAGS)
S: * 1 FETCH (UID 6 FLAGS ($Label1 $Label7))
S: * 2 FETCH (FLAGS () UID 9)
S: * 3 FETCH (UID 10 FLAGS ($Label1))
S: A6 OK done
C: A7 SEARCH ALL
S: * SEARCH 1 2 3
S: A7 OK done
C: A8 MOVE 1 "Work"
S: * OK [COPYUID 3 6 1] moved
S: * 1 EXPUNGE
S: A8 OK done
C: A9 IDLE
S: + idling
S: * 3 EXISTS
S: * 3 FETCH (FLAGS (\Seen))
S: A9 OK IDLE done
C: A10 FETCH 3 (ENVELOPE RFC822.SIZE BODY.PEEK[] BODY.PEEK[HEADER]<0.10>)
S: * 3 FETCH (ENVELOPE `+env+fmt.Sprintf(` RFC822.SIZE %d BODY[] {%d}`, len(msg), len(msg))+`
S: `+string(msg)+` BODY[HEADER]<0> {10}`+`
S: `+string(msg[:10])+`)
S: A10 OK done
C: A11 STATUS "Work" (MESSAGES UIDNEXT UIDVALIDITY)
S: * STATUS Work (MESSAGES 31 UIDNEXT 40 UIDVALIDITY 3)
S: A11 OK done
C: A12 LIST "" "*"
S: * LIST (\HasNoChildren) "/" INBOX
S: * LIST (\HasNoChildren) "/" Work
S: * LIST (\HasNoChildren) "/" "Archive"
S: * LIST (\HasNoChildren \Trash) "/" {5}
S: Trash
S: A12 OK done
C: A13 COPY 1 "Stress-Missing"
S: A13 NO [TRYCREATE] no such mailbox
C: A14 SELECT "Work"
S: * OK [CLOSED] Previous mailbox is now closed
S: * 0 EXISTS
S: * 0 RECENT
S: * OK [UIDVALIDITY 3] UIDs valid
S: * OK [UIDNEXT 40] Predicted next UID
S: * FLAGS (\Seen \Answered \Flagged \Deleted \Draft)
S: * OK [PERMANENTFLAGS ()] Permanent flags
S: A14 OK [READ-WRITE] SELECT completed
C: A15 LOGOUT
S: * BYE bye
S: A15 OK done
`)
	expect(t, rep, map[string]int{})
	if rep.allowed["TRYCREATE"] != 1 {
		t.Errorf("allowed %v, want TRYCREATE 1", rep.allowed)
	}
}

// TestCheckerFlags: a keyword in FETCH FLAGS before FLAGS announced it.
func TestCheckerFlags(t *testing.T) {
	rep := transcript(t, false, greeting+selectInbox+`
C: A2 STORE 1 +FLAGS ($Label7)
S: * 1 FETCH (FLAGS (\Seen $Label7))
S: * FLAGS (\Seen \Answered \Flagged \Deleted \Draft $Label1 $Label7)
S: A2 OK STORE completed
C: A3 FETCH 2 (FLAGS)
S: * 2 FETCH (FLAGS ($Label7))
S: A3 OK done
`)
	expect(t, rep, map[string]int{"flags-unannounced": 1})
}

// TestCheckerExpungeDuringFetch: EXPUNGE while answering FETCH, and
// then one with no command in progress.
func TestCheckerExpungeDuringFetch(t *testing.T) {
	rep := transcript(t, false, greeting+selectInbox+`
C: A2 FETCH 1:* (FLAGS)
S: * 1 FETCH (FLAGS (\Seen))
S: * 2 EXPUNGE
S: * 2 FETCH (FLAGS ())
S: A2 OK done
C: A3 UID FETCH 1:* (FLAGS)
S: * 2 EXPUNGE
S: A3 OK done
`)
	expect(t, rep, map[string]int{"expunge-forbidden": 1})
}

// TestCheckerServerbug: a NO [SERVERBUG] and a BAD nobody asked for.
func TestCheckerServerbug(t *testing.T) {
	rep := transcript(t, false, greeting+selectInbox+`
C: A2 STORE 1 +FLAGS.SILENT (\Seen)
S: A2 NO [SERVERBUG] internal error
C: A3 MOVE 1 "INBOX"
S: A3 NO [CANNOT] same mailbox
C: A4 FETCH 1 (FLAGS)
S: A4 NO [EXPUNGEISSUED] gone
`)
	expect(t, rep, map[string]int{"serverbug": 1, "move-same": 1})
	if rep.allowed["EXPUNGEISSUED"] != 1 {
		t.Errorf("allowed %v, want EXPUNGEISSUED 1", rep.allowed)
	}
}

// TestCheckerCounts: EXISTS going down, EXPUNGE and FETCH past the end.
func TestCheckerCounts(t *testing.T) {
	rep := transcript(t, false, greeting+selectInbox+`
C: A2 NOOP
S: * 2 EXISTS
S: * 4 EXPUNGE
S: * 5 FETCH (FLAGS ())
S: A2 OK done
`)
	expect(t, rep, map[string]int{"exists": 1, "expunge-range": 1, "fetch-range": 1})
}

// TestCheckerUIDs: a UID that changes, and one out of order.
func TestCheckerUIDs(t *testing.T) {
	rep := transcript(t, false, greeting+selectInbox+`
C: A2 FETCH 1:2 (UID)
S: * 1 FETCH (UID 5)
S: * 2 FETCH (UID 4)
S: A2 OK done
C: A3 UID FETCH 5 (FLAGS RFC822.SIZE)
S: * 1 FETCH (FLAGS () RFC822.SIZE 10)
S: A3 OK done
`)
	expect(t, rep, map[string]int{"uid": 2})
}

// TestCheckerSyntax: NUL in a literal, a bare LF, junk.
func TestCheckerSyntax(t *testing.T) {
	rep := transcript(t, false, greeting+selectInbox+`
C: A2 FETCH 1 (BODY.PEEK[])
S: * 1 FETCH (BODY[] {3}
S: a`+"\x00"+`b)
S: A2 OK done
C: A3 NOOP
S: * 3 FETCH (FLAGS (\Seen)
S: * NONSENSE here
S: A3 OK done
`)
	expect(t, rep, map[string]int{"syntax": 3})
}

// TestCheckerContent: BODY[] that is not what was appended.
func TestCheckerContent(t *testing.T) {
	msg, _ := stressMessage(1, 2)
	bad := bytes.Replace(msg, []byte("line 0"), []byte("line X"), 1)
	env := fmt.Sprintf(`(NIL NIL NIL NIL NIL NIL NIL NIL NIL "%s")`, stressMessageID(1, 2))
	rep := transcript(t, false, greeting+selectInbox+`
C: A2 FETCH 1 (ENVELOPE BODY.PEEK[])
S: * 1 FETCH (ENVELOPE `+env+fmt.Sprintf(` BODY[] {%d}`, len(bad))+`
S: `+string(bad)+`)
S: A2 OK done
`)
	expect(t, rep, map[string]int{"content": 1})
}

// TestCheckerRev2Select: IMAP4rev2 wants [CLOSED] and LIST.
func TestCheckerRev2Select(t *testing.T) {
	rep := transcript(t, true, greeting+`
C: A1 SELECT "INBOX"
S: * 1 EXISTS
S: * OK [UIDVALIDITY 7] UIDs valid
S: * OK [UIDNEXT 10] Predicted next UID
S: * FLAGS (\Seen \Answered \Flagged \Deleted \Draft)
S: * OK [PERMANENTFLAGS (\Seen \*)] Permanent flags
S: * LIST () "/" INBOX
S: A1 OK [READ-WRITE] SELECT completed
C: A2 EXAMINE "Work"
S: * 0 EXISTS
S: * OK [UIDVALIDITY 3] UIDs valid
S: * OK [UIDNEXT 40] Predicted next UID
S: * FLAGS (\Seen \Answered \Flagged \Deleted \Draft)
S: * OK [PERMANENTFLAGS ()] Permanent flags
S: A2 OK [READ-ONLY] EXAMINE completed
`)
	expect(t, rep, map[string]int{"select": 2}) // no CLOSED, no LIST
}

// TestParseResponse: the reader takes what the grammar allows and
// refuses what it does not.
func TestParseResponse(t *testing.T) {
	good := []string{
		"* 12 FETCH (FLAGS (\\Seen $Label1) UID 7 RFC822.SIZE 44 INTERNALDATE \" 2-Jan-2006 15:04:05 +0000\")\r\n",
		"* 1 FETCH (BODYSTRUCTURE ((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"us-ascii\") NIL NIL \"7BIT\" 12 1 NIL NIL NIL NIL)(\"TEXT\" \"HTML\" NIL NIL NIL \"7BIT\" 5 1) \"ALTERNATIVE\" (\"BOUNDARY\" \"b1\") NIL NIL NIL))\r\n",
		"* 1 FETCH (BODY[HEADER.FIELDS (FROM TO)] {2}\r\nab BODY[1.MIME] NIL BINARY[1] ~{1}\r\n\x00)\r\n",
		"* OK [COPYUID 3 1:3,7 10:13] done\r\n",
		"* ESEARCH (TAG \"A5\") UID ALL 1:3,5\r\n",
		"* STATUS \"Work\" (MESSAGES 3 UIDNEXT 9)\r\n",
		"* LIST (\\HasNoChildren) NIL INBOX (\"CHILDINFO\" (\"SUBSCRIBED\"))\r\n",
		"A1 OK [READ-WRITE]\r\n",
		"+ go ahead\r\n",
	}
	for _, s := range good {
		if r := parseResponse([]byte(s)); r.err != nil {
			t.Errorf("%q: %v", s, r.err)
		}
	}
	bad := []string{
		"* 1 FETCH (FLAGS (\\Seen)\r\n",
		"* 1 FETCH (UID 0)\r\n",
		"* 1 FETCH (BODY[] {2}\r\na\x00)\r\n",
		"* 3 EXISTS\n",
		"* 3 EXISTS \r\n",
		"* STATUS Work (MESSAGES 3 )\r\n",
		"* 1 FETCH (ENVELOPE (NIL NIL))\r\n",
		"* 1 FETCH (BODY[HEADER.NONSENSE] NIL)\r\n",
		"* OK [UIDNEXT 0] x\r\n",
		"A1 WHAT now\r\n",
	}
	for _, s := range bad {
		if r := parseResponse([]byte(s)); r.err == nil {
			t.Errorf("%q parsed", s)
		}
	}
}

// TestCheckerCategories: one departure of each remaining kind, each
// flagged in its category and nowhere else.
func TestCheckerCategories(t *testing.T) {
	for _, tc := range []struct {
		name  string
		lines string
		want  map[string]int
	}{
		{"uidnext", `
C: A2 NOOP
S: * 4 EXISTS
S: A2 OK done
C: A3 FETCH 4 (UID)
S: * 4 FETCH (UID 8)
S: A3 OK done`, map[string]int{"uidnext": 1}},
		{"store", `
C: A2 STORE 1:2 +FLAGS (\Flagged)
S: * 1 FETCH (FLAGS (\Flagged))
S: A2 OK done`, map[string]int{"store": 1}},
		{"fetch-missing", `
C: A2 FETCH 1:2 (FLAGS ENVELOPE)
S: * 1 FETCH (FLAGS ())
S: A2 OK done`, map[string]int{"fetch-missing": 2}},
		{"move", `
C: A2 FETCH 1 (UID)
S: * 1 FETCH (UID 4)
S: A2 OK done
C: A3 UID MOVE 4 "Work"
S: * OK [COPYUID 3 4 20] moved
S: A3 OK done`, map[string]int{"move": 1}},
		{"trycreate", `
C: A2 COPY 1 "Stress-Missing"
S: A2 NO no such mailbox`, map[string]int{"trycreate": 1}},
		{"search", `
C: A2 SEARCH ALL
S: * SEARCH 1 2 3 4
S: A2 OK done
C: A3 SEARCH UNSEEN
S: A3 OK done`, map[string]int{"search": 2}},
		{"status", `
C: A2 STATUS "Work" (MESSAGES UIDNEXT)
S: * STATUS Archive (MESSAGES 1 UIDNEXT 2)
S: A2 OK done
C: A3 STATUS "Work" (MESSAGES UIDNEXT)
S: * STATUS Work (MESSAGES 1)
S: A3 OK done`, map[string]int{"status": 3}},
		{"unexpected", `
C: A2 NOOP
S: A9 OK done
S: * BYE going away
S: A2 OK done`, map[string]int{"unexpected": 2}},
		{"flags-invalid", `
C: A2 NOOP
S: * OK [PERMANENTFLAGS (\Seen $Other)] flags
S: * 1 FETCH (FLAGS (\Seen \Bogus))
S: A2 OK done`, map[string]int{"flags-invalid": 2}},
		{"readonly", `
C: A2 EXAMINE "INBOX"
S: * OK [CLOSED] closed
S: * 3 EXISTS
S: * 0 RECENT
S: * OK [UIDVALIDITY 7] UIDs valid
S: * OK [UIDNEXT 10] next
S: * FLAGS (\Seen \Answered \Flagged \Deleted \Draft)
S: * OK [PERMANENTFLAGS ()] none
S: A2 OK [READ-ONLY] done
C: A3 STORE 1 +FLAGS.SILENT (\Seen)
S: A3 OK done`, map[string]int{"readonly": 1}},
		{"uid", `
C: A2 APPEND "Work" {12+}
S: A2 OK [APPENDUID 3 1:2] done
C: A3 STATUS "Work" (UIDVALIDITY)
S: * STATUS Work (UIDVALIDITY 3)
S: A3 OK done
C: A4 STATUS "Work" (UIDVALIDITY)
S: * STATUS Work (UIDVALIDITY 4)
S: A4 OK done`, map[string]int{"uid": 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			expect(t, transcript(t, false, greeting+selectInbox+tc.lines), tc.want)
		})
	}
}
