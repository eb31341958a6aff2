package imap_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mailsys/mailsys/imap"
	"github.com/mailsys/mailsys/msstore"
	"github.com/mailsys/mailsys/userdata"
)

// orChain is a SEARCH program of n keys chained with OR (OR k1 OR k2 ...
// kn), of header, text, body and number keys that match nothing but the
// last, which is SUBJECT want. 4,000 keys make 41 KB, within a command's
// bound.
func orChain(n int, want string) string {
	var b strings.Builder
	for i := 0; i < n-1; i++ {
		b.WriteString("OR ")
		switch i % 5 {
		case 0:
			fmt.Fprintf(&b, "BODY q%x ", i)
		case 1:
			fmt.Fprintf(&b, "TO q%x ", i)
		case 2:
			fmt.Fprintf(&b, "%d ", 100+i)
		case 3:
			fmt.Fprintf(&b, "TEXT q%x ", i)
		default:
			fmt.Fprintf(&b, "CC q%x ", i)
		}
	}
	b.WriteString("SUBJECT " + want)
	return b.String()
}

// fill delivers n messages to ann's INBOX, the subject of the i-th being
// "m<i>".
func (e *env) fill(n int) {
	e.t.Helper()
	ctx := e.t.Context()
	inbox, err := e.db.Folder(ctx, e.user.ID, userdata.Inbox)
	if err != nil {
		e.t.Fatal(err)
	}
	for i := range n {
		msg := message(fmt.Sprintf("m%d", i), strings.Repeat("some body text\r\n", 20))
		env, bs, _ := imap.Summarize(strings.NewReader(msg))
		ref, err := e.store.Put(ctx, strings.NewReader(msg), msstore.Meta{})
		if err != nil {
			e.t.Fatal(err)
		}
		if _, err := e.db.Append(ctx, e.user.ID, inbox.ID, userdata.NewMessage{Ref: ref, Size: ref.Size, InternalDate: time.Now(), Envelope: env, Structure: bs}); err != nil {
			e.t.Fatal(err)
		}
	}
}

// session logs ann in over a raw connection and selects INBOX.
func (e *env) rawSession(addr string) (net.Conn, *bufio.Reader) {
	e.t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(60 * time.Second))
	r := bufio.NewReader(c)
	r.ReadString('\n')
	io.WriteString(c, "l LOGIN ann@example.test pw\r\ns SELECT INBOX\r\n")
	if _, err := readUntil(r, "s "); err != nil {
		e.t.Fatalf("login and select: %v", err)
	}
	return c, r
}

// readUntil reads lines until one starts with prefix and returns them.
func readUntil(r *bufio.Reader, prefix string) (string, error) {
	var out strings.Builder
	for {
		line, err := r.ReadString('\n')
		out.WriteString(line)
		if err != nil {
			return out.String(), err
		}
		if strings.HasPrefix(line, prefix) {
			return out.String(), nil
		}
	}
}

// TestSearchOrChain: a chain of 4,000 keys joined by OR, over 80
// messages, answers well under a second.
func TestSearchOrChain(t *testing.T) {
	e := newEnv(t)
	e.fill(80)
	c, r := e.rawSession(e.addr)
	prog := orChain(4000, "m42")
	start := time.Now()
	io.WriteString(c, "a SEARCH "+prog+"\r\n")
	out, err := readUntil(r, "a ")
	took := time.Since(start)
	if err != nil || !strings.Contains(out, "* SEARCH 43\r\n") || !strings.Contains(out, "a OK") {
		t.Fatalf("SEARCH of 4,000 keys: %q, %v", out, err)
	}
	t.Logf("4,000 keys over 80 messages: %v", took)
	if took > time.Second {
		t.Errorf("SEARCH of 4,000 keys over 80 messages took %v", took)
	}
}

// TestSearchLimits: a search of more than 4,000 keys, or nested more than
// 100 levels deep, is refused with BAD, and the session goes on.
func TestSearchLimits(t *testing.T) {
	e := newEnv(t)
	e.fill(3)
	c, r := e.rawSession(e.addr)
	for _, tc := range []struct {
		prog string
		want string
	}{
		{orChain(4000, "m1"), "a OK"},
		{orChain(4001, "m1"), "a BAD [LIMIT]"},
		{strings.Repeat("NOT ", 100) + "ALL", "a OK"},
		{strings.Repeat("NOT ", 101) + "ALL", "a BAD [LIMIT]"},
		{strings.Repeat("NOT ", 5000) + "ALL", "a BAD [LIMIT]"},
		{strings.Repeat("OR SEEN NOT ", 60) + "ALL", "a BAD [LIMIT]"},
	} {
		io.WriteString(c, "a SEARCH "+tc.prog+"\r\n")
		out, err := readUntil(r, "a ")
		if err != nil || !strings.Contains(out, tc.want) {
			t.Errorf("SEARCH %.40s... (%d bytes): %q, %v; want %q", tc.prog, len(tc.prog), out, err, tc.want)
		}
	}
	io.WriteString(c, "n NOOP\r\n")
	if out, err := readUntil(r, "n "); err != nil || !strings.Contains(out, "n OK") {
		t.Fatalf("NOOP after refused searches: %q, %v", out, err)
	}
}

// slowStore opens bodies slowly, counting them.
type slowStore struct {
	imap.Bodies
	delay time.Duration
	opens atomic.Int64
}

func (s *slowStore) Open(ctx context.Context, ref msstore.Ref) (msstore.Body, error) {
	s.opens.Add(1)
	time.Sleep(s.delay)
	return s.Bodies.Open(ctx, ref)
}

// TestSearchStopsWhenClientGone: a long SEARCH stops soon after its
// client hangs up, over plain IMAP and over TLS (whose close_notify stays
// unread in the socket).
func TestSearchStopsWhenClientGone(t *testing.T) {
	e := newEnv(t)
	const n = 400
	e.fill(n)
	store := &slowStore{Bodies: e.store, delay: 5 * time.Millisecond}
	srv, addr := serveWith(t, imap.Config{TLS: testTLS}, e.db, store)
	tl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.ServeTLS(tl)
	for _, useTLS := range []bool{false, true} {
		var c net.Conn
		if useTLS {
			c, err = tls.Dial("tcp", tl.Addr().String(), clientTLS)
		} else {
			c, err = net.Dial("tcp", addr)
		}
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(30 * time.Second))
		r := bufio.NewReader(c)
		r.ReadString('\n')
		io.WriteString(c, "l LOGIN ann@example.test pw\r\ns SELECT INBOX\r\n")
		if _, err := readUntil(r, "s "); err != nil {
			t.Fatal(err)
		}
		store.opens.Store(0)
		io.WriteString(c, "a SEARCH BODY nowhere\r\n")
		time.Sleep(200 * time.Millisecond)
		c.Close()
		time.Sleep(500 * time.Millisecond)
		opened := store.opens.Load()
		time.Sleep(500 * time.Millisecond)
		if later := store.opens.Load(); later != opened || opened >= n {
			t.Errorf("TLS %v: the search read %d messages by 0.5 s after the client left, %d by 1 s, of %d", useTLS, opened, later, n)
		}
	}
}

// TestManyRanges: a number set of many overlapping ranges costs its size
// and the messages it names, not their product.
func TestManyRanges(t *testing.T) {
	e := newEnv(t)
	e.fill(1000)
	c, r := e.rawSession(e.addr)
	set := strings.TrimSuffix(strings.Repeat("1:*,", 10_000), ",")
	half := set[:len(set)/2]
	for _, cmd := range []string{"FETCH " + set + " (UID)", "UID FETCH " + set + " (FLAGS)", "SEARCH " + set, "UID SEARCH UID " + half + " NOT " + half} {
		start := time.Now()
		io.WriteString(c, "a "+cmd+"\r\n")
		out, err := readUntil(r, "a ")
		took := time.Since(start)
		if err != nil || !strings.Contains(out, "a OK") {
			t.Fatalf("%.30s...: %.200q, %v", cmd, out, err)
		}
		if n := strings.Count(out, " FETCH ("); strings.Contains(cmd, "FETCH") && n != 1000 {
			t.Errorf("%.30s...: %d FETCH responses, want 1000", cmd, n)
		}
		if took > 2*time.Second {
			t.Errorf("%.30s... with 10,000 ranges over 1,000 messages took %v", cmd, took)
		}
	}
}
