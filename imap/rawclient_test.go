package imap_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// rawClient speaks IMAP as text, so that tests see every response and its
// order, which imapclient hides.
type rawClient struct {
	t   *testing.T
	c   net.Conn
	r   *bufio.Reader
	tag int
}

// raw logs ann in over the plain listener.
func (e *env) raw() *rawClient {
	e.t.Helper()
	t := e.t.(*testing.T)
	c, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(60 * time.Second))
	rc := &rawClient{t: t, c: c, r: bufio.NewReaderSize(c, 1<<16)}
	if line := rc.line(); !strings.HasPrefix(line, "* OK") {
		t.Fatalf("greeting %q", line)
	}
	rc.ok("LOGIN ann@example.test pw")
	return rc
}

var literalAtEnd = regexp.MustCompile(`~?\{(\d+)\+?\}$`)

// line reads one response, its literals inline.
func (rc *rawClient) line() string {
	rc.t.Helper()
	var b strings.Builder
	for {
		l, err := rc.r.ReadString('\n')
		if err != nil {
			rc.t.Fatalf("reading a response: %v (so far %q)", err, b.String())
		}
		l = strings.TrimSuffix(l, "\r\n")
		b.WriteString(l)
		m := literalAtEnd.FindStringSubmatch(l)
		if m == nil {
			return b.String()
		}
		n, _ := strconv.Atoi(m[1])
		lit := make([]byte, n)
		if _, err := io.ReadFull(rc.r, lit); err != nil {
			rc.t.Fatalf("reading a literal of %d bytes: %v", n, err)
		}
		b.Write(lit)
	}
}

// send sends a command and returns its tag, without reading.
func (rc *rawClient) send(format string, args ...any) string {
	rc.t.Helper()
	rc.tag++
	tag := fmt.Sprintf("x%d", rc.tag)
	if _, err := fmt.Fprintf(rc.c, tag+" "+format+"\r\n", args...); err != nil {
		rc.t.Fatal(err)
	}
	return tag
}

// wait reads the responses to the command tagged tag: the untagged ones,
// and the tagged status line without its tag.
func (rc *rawClient) wait(tag string) (untagged []string, status string) {
	rc.t.Helper()
	for {
		l := rc.line()
		if rest, ok := strings.CutPrefix(l, tag+" "); ok {
			return untagged, rest
		}
		untagged = append(untagged, l)
	}
}

// cmd runs a command and returns its untagged responses and status.
func (rc *rawClient) cmd(format string, args ...any) ([]string, string) {
	rc.t.Helper()
	return rc.wait(rc.send(format, args...))
}

// ok runs a command that must succeed and returns its untagged responses.
func (rc *rawClient) ok(format string, args ...any) []string {
	rc.t.Helper()
	u, status := rc.cmd(format, args...)
	if !strings.HasPrefix(status, "OK") {
		rc.t.Fatalf("%s: %s (after %q)", fmt.Sprintf(format, args...), status, u)
	}
	return u
}

// find returns the responses matching pattern.
func find(lines []string, pattern string) []string {
	re := regexp.MustCompile(pattern)
	var out []string
	for _, l := range lines {
		if re.MatchString(l) {
			out = append(out, l)
		}
	}
	return out
}

// index is the position of the first response matching pattern, -1 if none.
func index(lines []string, pattern string) int {
	re := regexp.MustCompile(pattern)
	for i, l := range lines {
		if re.MatchString(l) {
			return i
		}
	}
	return -1
}
