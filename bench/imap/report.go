package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"
)

// The categories of protocol errors the checker counts, in report order,
// with what each means.
var categories = []struct{ name, desc string }{
	{"serverbug", "tagged NO or BAD with [SERVERBUG]"},
	{"tagged", "a tagged NO or BAD the command did not call for (or an OK it should not have had)"},
	{"move-same", "NO to MOVE into the mailbox it is in (RFC 6851 allows it; NO [CANNOT] is wrong)"},
	{"trycreate", "NO to APPEND, COPY or MOVE into a missing mailbox without [TRYCREATE] (RFC 3501 §6.3.11, §6.4.7)"},
	{"readonly", "STORE, EXPUNGE or MOVE done in a mailbox opened with EXAMINE"},
	{"exists", "* n EXISTS below the count the client holds (RFC 3501 §7.3.1; only EXPUNGE lowers it)"},
	{"expunge-range", "* n EXPUNGE for n above the count"},
	{"expunge-forbidden", "EXPUNGE during FETCH, STORE or SEARCH, or with no command in progress (RFC 3501 §7.4.1)"},
	{"fetch-range", "* n FETCH for n above the count"},
	{"flags-unannounced", "a flag in FETCH FLAGS that the mailbox's FLAGS had not announced before it (RFC 3501 §7.2.6)"},
	{"flags-invalid", `a flag that cannot be there: \* or an unknown \system flag in FETCH, PERMANENTFLAGS outside FLAGS`},
	{"uid", "UIDs: a message's UID changed, UIDs not ascending with sequence numbers, no UID in a UID command's FETCH, bad APPENDUID/COPYUID (RFC 4315), UIDVALIDITY changed, UIDNEXT went back"},
	{"uidnext", "SELECT's EXISTS and UIDNEXT disagree: a message announced later has a UID below that UIDNEXT, or one counted has one above it (RFC 9051 §2.3.1.1)"},
	{"select", "SELECT/EXAMINE: a required response missing (RFC 3501 §6.3.1, RFC 9051 §6.3.2), no [CLOSED] in IMAP4rev2, no [READ-ONLY] after EXAMINE, RECENT above EXISTS"},
	{"search", "SEARCH/ESEARCH: a number not in the mailbox, twice, a wrong TAG, UID missing or extra"},
	{"status", "STATUS/LIST: an item or folder missing, another mailbox's name, UIDNEXT went back"},
	{"move", "MOVE completed OK but a message it moved was not EXPUNGEd (RFC 6851 §3.3)"},
	{"store", "STORE without .SILENT completed OK with no FETCH FLAGS for a message (RFC 3501 §6.4.6)"},
	{"fetch-missing", "FETCH completed OK without an item asked for"},
	{"content", "BODY[], BODY[HEADER], a partial, RFC822.SIZE or a part size that differs from the message appended"},
	{"syntax", "a response that does not parse (RFC 9051 §9), NUL in a literal, a bare LF"},
	{"unexpected", "a response with no place: an unknown tag, + with no literal or IDLE waiting, BYE, untagged BAD, data for no mailbox"},
	{"connection", "the connection broke or a command timed out"},
}

// allowedKinds are departures the RFCs permit, counted apart.
var allowedKinds = []struct{ name, desc string }{
	{"EXPUNGEISSUED", "[EXPUNGEISSUED] on a FETCH, STORE or SEARCH (RFC 9051 §7.1)"},
	{"TRYCREATE", "NO [TRYCREATE] for APPEND, COPY or MOVE into a missing mailbox"},
	{"missing-mailbox", "NO to SELECT, EXAMINE or STATUS of a missing mailbox"},
	{"readonly-refused", "NO or BAD to a write command in a mailbox opened with EXAMINE"},
	{"no-new-keyword", "NO to a new keyword when PERMANENTFLAGS has no \\*"},
	{"untagged-NO", "an untagged NO (a warning)"},
}

// report gathers what every connection saw. It is safe for concurrent use.
type report struct {
	mu       sync.Mutex
	maxEx    int
	errors   map[string]int
	allowed  map[string]int
	examples map[string][]string
	cmds     map[string][]time.Duration
	w        io.Writer // when not nil, each example is written as it happens
}

func newReport(maxExamples int) *report {
	return &report{maxEx: maxExamples, errors: map[string]int{}, allowed: map[string]int{}, examples: map[string][]string{}, cmds: map[string][]time.Duration{}}
}

func (r *report) fail(cat, example string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errors[cat]++
	if len(r.examples[cat]) < r.maxEx {
		r.examples[cat] = append(r.examples[cat], example)
		if r.w != nil {
			fmt.Fprintf(r.w, "protocol error %s: %s\n", cat, example)
		}
	}
}

func (r *report) allow(kind string) {
	r.mu.Lock()
	r.allowed[kind]++
	r.mu.Unlock()
}

func (r *report) addCommands(m map[string][]time.Duration) {
	r.mu.Lock()
	for k, d := range m {
		r.cmds[k] = append(r.cmds[k], d...)
	}
	r.mu.Unlock()
}

func (r *report) total() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, c := range r.errors {
		n += c
	}
	return n
}

// print writes the command rates, the allowed departures and the errors
// with their first examples.
func (r *report) print(w io.Writer, elapsed time.Duration) (commands int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	secs := elapsed.Seconds()
	kinds := make([]string, 0, len(r.cmds))
	for k, d := range r.cmds {
		kinds = append(kinds, k)
		commands += len(d)
	}
	slices.Sort(kinds)
	fmt.Fprintf(w, "  commands: %d in %v, %.0f/s\n", commands, elapsed.Round(time.Millisecond), float64(commands)/secs)
	for _, k := range kinds {
		d := r.cmds[k]
		slices.Sort(d)
		fmt.Fprintf(w, "    %-12s %7d %8.1f/s  p50 %9v  p99 %9v\n", k, len(d), float64(len(d))/secs, d[len(d)/2].Round(time.Microsecond), d[len(d)*99/100].Round(time.Microsecond))
	}
	fmt.Fprintf(w, "  allowed by the RFCs (not errors):")
	some := false
	for _, a := range allowedKinds {
		if n := r.allowed[a.name]; n > 0 {
			fmt.Fprintf(w, " %s %d", a.name, n)
			some = true
		}
	}
	if !some {
		fmt.Fprint(w, " none")
	}
	fmt.Fprintln(w)
	total := 0
	for _, c := range r.errors {
		total += c
	}
	fmt.Fprintf(w, "  protocol errors: %d\n", total)
	for _, c := range categories {
		n := r.errors[c.name]
		if n == 0 {
			continue
		}
		fmt.Fprintf(w, "    %-17s %7d  %s\n", c.name, n, c.desc)
		for _, ex := range r.examples[c.name] {
			fmt.Fprintf(w, "      - %s\n", strings.ReplaceAll(ex, "\n", "\n        "))
		}
	}
	return commands
}
