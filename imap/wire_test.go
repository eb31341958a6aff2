package imap_test

import (
	"bufio"
	"crypto/tls"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/mailsys/mailsys/imap"
)

// transport is a way of reaching the server: every attack below is tried
// over each, since under TLS go-imap reads what the TLS connection
// decrypts.
type transport struct {
	name string
	dial func(t *testing.T) net.Conn // returns a connection whose greeting is read
}

// transports serves cfg (insecure auth allowed, with TLS) on a plain and an
// implicit-TLS listener and returns the ways to reach it: plain, STARTTLS
// and implicit TLS.
func transports(t *testing.T, e *env, cfg imap.Config) []transport {
	t.Helper()
	cfg.TLS = testTLS
	srv, plain := serveWith(t, cfg, e.db, e.store)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.ServeTLS(l)
	implicit := l.Addr().String()
	greeted := func(t *testing.T, c net.Conn) net.Conn {
		t.Helper()
		t.Cleanup(func() { c.Close() })
		c.SetDeadline(time.Now().Add(20 * time.Second))
		if line, err := readLine(c); err != nil || !strings.HasPrefix(line, "* OK") {
			t.Fatalf("greeting: %q, %v", line, err)
		}
		return c
	}
	return []transport{
		{"plain", func(t *testing.T) net.Conn {
			c, err := net.Dial("tcp", plain)
			if err != nil {
				t.Fatal(err)
			}
			return greeted(t, c)
		}},
		{"STARTTLS", func(t *testing.T) net.Conn {
			c, err := net.Dial("tcp", plain)
			if err != nil {
				t.Fatal(err)
			}
			greeted(t, c)
			io.WriteString(c, "t STARTTLS\r\n")
			if line, err := readLine(c); err != nil || !strings.HasPrefix(line, "t OK") {
				t.Fatalf("STARTTLS: %q, %v", line, err)
			}
			tc := tls.Client(c, clientTLS)
			if err := tc.Handshake(); err != nil {
				t.Fatal(err)
			}
			return tc
		}},
		{"implicit TLS", func(t *testing.T) net.Conn {
			c, err := tls.Dial("tcp", implicit, clientTLS)
			if err != nil {
				t.Fatal(err)
			}
			return greeted(t, c)
		}},
	}
}

// readLine reads one line byte by byte, so that nothing after it is
// consumed (the STARTTLS handshake follows).
func readLine(c net.Conn) (string, error) {
	var b strings.Builder
	one := make([]byte, 1)
	for {
		if _, err := c.Read(one); err != nil {
			return b.String(), err
		}
		b.WriteByte(one[0])
		if one[0] == '\n' {
			return b.String(), nil
		}
	}
}

// login logs ann in on c, selects INBOX and returns a reader of c.
func login(t *testing.T, c net.Conn) *bufio.Reader {
	t.Helper()
	io.WriteString(c, "l LOGIN ann@example.test pw\r\ns SELECT INBOX\r\n")
	r := bufio.NewReader(c)
	out, err := readUntil(r, "s ")
	if err != nil || !strings.Contains(out, "l OK") || !strings.Contains(out, "s OK") {
		t.Fatalf("login and select: %q, %v", out, err)
	}
	return r
}

// smuggled is a line that must never run: it is inside a literal.
const smuggled = "zz CAPABILITY\r\n"

// checkNotRun fails if out shows the smuggled command answered.
func checkNotRun(t *testing.T, out string) {
	t.Helper()
	if strings.Contains(out, "zz ") || strings.Contains(out, "* CAPABILITY") {
		t.Errorf("the bytes of a refused literal ran as a command:\n%.2000s", out)
	}
}

// TestRefusedLiteral: the bytes of a literal that is refused are never run
// as commands: a small one is read and dropped and the session goes on,
// a large one ends the session with BYE. So for an APPEND over
// APPENDLIMIT, a literal over 4,096 bytes elsewhere, and a literal where
// the command takes none, with LITERAL+ or without, in the clear or under
// TLS.
func TestRefusedLiteral(t *testing.T) {
	e := newEnv(t)
	pad := func(s string, n int) string { return s + strings.Repeat("x", n-len(s)) }
	for _, tr := range transports(t, e, imap.Config{MaxAppendSize: 1000}) {
		t.Run(tr.name, func(t *testing.T) {
			for _, tc := range []struct {
				name, send string
				want       []string // in the answer, up to "b "
			}{
				{"APPEND over APPENDLIMIT",
					"A APPEND INBOX {5000+}\r\n" + pad("x\r\n"+smuggled, 5000) + "\r\nb NOOP\r\n",
					[]string{"A NO [TOOBIG]", "b OK"}},
				{"APPEND over APPENDLIMIT, synchronizing",
					"A APPEND INBOX {5000}\r\n",
					[]string{"A NO [TOOBIG]", "b OK"}},
				{"literal over 4096 bytes",
					"a SEARCH BODY {5000+}\r\n" + pad("x\r\n"+smuggled, 5000) + " SEEN\r\nb NOOP\r\n",
					[]string{"a NO [TOOBIG]", "b OK"}},
				{"literal over 4096 bytes, synchronizing",
					"a SEARCH BODY {5000}\r\n",
					[]string{"a NO [TOOBIG]", "b OK"}},
				{"mailbox literal over 4096 bytes",
					"a DELETE {5000+}\r\n" + pad("INBOX\r\n"+smuggled, 5000) + "\r\nb NOOP\r\n",
					[]string{"a NO [TOOBIG]", "b OK"}},
				{"literal where none goes",
					"a NOOP {15+}\r\n" + smuggled + "\r\nb NOOP\r\n",
					[]string{"a BAD", "b OK"}},
				{"second message of an APPEND",
					"A APPEND INBOX {3+}\r\nabc {15+}\r\n" + smuggled + "\r\nb NOOP\r\n",
					[]string{"b OK"}},
				{"accepted literals",
					"a SEARCH BODY {4+}\r\nbody SUBJECT {1}\r\n",
					[]string{"+ ", ""}},
			} {
				c := tr.dial(t)
				r := login(t, c)
				io.WriteString(c, tc.send)
				if strings.HasSuffix(tc.name, "synchronizing") {
					// A client waits for the "+" or the answer before it
					// goes on.
					first, err := r.ReadString('\n')
					if err != nil || strings.HasPrefix(first, "+") {
						t.Fatalf("%s: %q, %v", tc.name, first, err)
					}
					io.WriteString(c, "b NOOP\r\n")
					out, err := readUntil(r, "b ")
					out = first + out
					if err != nil || !strings.Contains(out, tc.want[0]) || !strings.Contains(out, "b OK") {
						t.Errorf("%s: %q, %v", tc.name, out, err)
					}
					c.Close()
					continue
				}
				if tc.name == "accepted literals" { // answer the "+"
					if line, err := r.ReadString('\n'); err != nil || !strings.HasPrefix(line, "+ ") {
						t.Fatalf("%s: %q, %v", tc.name, line, err)
					}
					io.WriteString(c, "x\r\nb NOOP\r\n")
					tc.want = []string{"a OK", "b OK"}
				}
				out, err := readUntil(r, "b ")
				if err != nil {
					t.Errorf("%s: %v after %q", tc.name, err, out)
				}
				for _, w := range tc.want {
					if !strings.Contains(out, w) {
						t.Errorf("%s: no %q in %q", tc.name, w, out)
					}
				}
				checkNotRun(t, out)
				c.Close()
			}

			// Too large to drop: the session ends.
			c := tr.dial(t)
			r := login(t, c)
			io.WriteString(c, "A APPEND INBOX {70000000+}\r\n"+smuggled+strings.Repeat("y", 4000))
			out, _ := io.ReadAll(r)
			if !strings.Contains(string(out), "A NO [TOOBIG]") || !strings.Contains(string(out), "* BYE") {
				t.Errorf("APPEND of 70 MB over APPENDLIMIT: %q, want NO [TOOBIG] and BYE", out)
			}
			checkNotRun(t, string(out))
		})
	}
}

// TestCommandBounds: a command too long (a set of 100,000 ranges) or
// nested too deep (10,000 parentheses) is answered BAD, nothing of it runs,
// and the session goes on; so for the line that ends an IDLE.
func TestCommandBounds(t *testing.T) {
	e := newEnv(t)
	e.deliver("one")
	var ranges strings.Builder
	for i := range 100_000 {
		if i > 0 {
			ranges.WriteByte(',')
		}
		ranges.WriteString(itoa(2*i + 1))
	}
	for _, tr := range transports(t, e, imap.Config{}) {
		t.Run(tr.name, func(t *testing.T) {
			for _, tc := range []struct {
				name, send string
				want       string
			}{
				{"100,000 ranges", "a FETCH " + ranges.String() + " (UID)\r\n", "a BAD [LIMIT]"},
				{"100,000 ranges in SEARCH", "a SEARCH UID " + ranges.String() + " " + smuggled, "a BAD [LIMIT]"},
				{"10,000 parentheses", "a SEARCH " + strings.Repeat("(", 10_000) + "ALL" + strings.Repeat(")", 10_000) + "\r\n", "a BAD [LIMIT]"},
				{"101 parentheses", "a SEARCH " + strings.Repeat("(", 101) + "ALL" + strings.Repeat(")", 101) + "\r\n", "a BAD [LIMIT]"},
				{"101 parentheses in FETCH", "a FETCH 1 " + strings.Repeat("(", 101) + "UID" + strings.Repeat(")", 101) + "\r\n", "a BAD"},
				{"long DONE", "a IDLE\r\n" + strings.Repeat("x", 5000) + "\r\n", "a BAD"},
			} {
				c := tr.dial(t)
				r := login(t, c)
				start := time.Now()
				io.WriteString(c, tc.send+"b NOOP\r\n")
				out, err := readUntil(r, "b ")
				if err != nil || !strings.Contains(out, tc.want) || !strings.Contains(out, "b OK") {
					t.Errorf("%s: %.300q, %v; want %q, then b OK", tc.name, out, err, tc.want)
				}
				if strings.Contains(out, "SERVERBUG") || strings.Count(out, "\r\na ")+strings.Count(out[:min(2, len(out))], "a ") > 1 {
					t.Errorf("%s: %.300q", tc.name, out)
				}
				checkNotRun(t, out)
				if d := time.Since(start); d > 5*time.Second {
					t.Errorf("%s: answered after %v", tc.name, d)
				}
				c.Close()
			}
		})
	}
}

func itoa(n int) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			return string(b[i:])
		}
	}
}

// TestRefusedMailboxName: a mailbox name or LIST pattern that is not
// modified UTF-7, sent in the clear or under TLS, pipelined or not, quoted,
// as an atom or as a literal (synchronizing or not), is answered BAD in
// go-imap's place, nothing of the rest of its command runs (literals
// included), and the session goes on; after an ENABLE UTF8=ACCEPT
// pipelined with them, names are UTF-8.
func TestRefusedMailboxName(t *testing.T) {
	e := newEnv(t)
	const bad = "BAD Invalid mailbox name: "
	for _, tr := range transports(t, e, imap.Config{}) {
		t.Run(tr.name, func(t *testing.T) {
			c := tr.dial(t)
			r := login(t, c)
			io.WriteString(c, "a1 CREATE \"z&AOQA5A\"\r\n"+
				"a2 RENAME INBOX \"z&\" {15+}\r\n"+smuggled+"\r\n"+
				"a3 CREATE {8+}\r\nz&AOQA5A {15+}\r\n"+smuggled+"\r\n"+
				"a4 LIST (SUBSCRIBED) \"\" (\"INBOX\" z&AOQ*)\r\n"+
				"a5 LIST \"\" \"B\xc3\xbccher\"\r\n"+
				"a6 ENABLE UTF8=ACCEPT\r\n"+
				"a7 LIST \"\" \"B\xc3\xbccher\"\r\n"+
				"a8 LIST \"\" \"B\xc3\"\r\n"+
				"b NOOP\r\n")
			out, err := readUntil(r, "b ")
			if err != nil {
				t.Fatalf("%v after %q", err, out)
			}
			for tag, want := range map[string]string{"a1": bad, "a2": bad, "a3": bad, "a4": bad, "a5": bad, "a6": "OK", "a7": "OK", "a8": bad, "b": "OK"} {
				if !strings.Contains(out, "\r\n"+tag+" "+want) && !strings.HasPrefix(out, tag+" "+want) {
					t.Errorf("%s: no %q in %q", tag, tag+" "+want, out)
				}
			}
			if strings.Contains(out, "SERVERBUG") {
				t.Errorf("SERVERBUG in %q", out)
			}
			checkNotRun(t, out)

			// A synchronizing literal: the "+", then the answer; after
			// UTF8=ACCEPT, and in a new session, before.
			syncLiteral := func(r *bufio.Reader, c net.Conn, name string) {
				t.Helper()
				io.WriteString(c, "c DELETE {"+itoa(len(name))+"}\r\n")
				if line, err := r.ReadString('\n'); err != nil || !strings.HasPrefix(line, "+ ") {
					t.Fatalf("DELETE {%d}: %q, %v", len(name), line, err)
				}
				io.WriteString(c, name+"\r\nb NOOP\r\n")
				out, err = readUntil(r, "b ")
				if err != nil || !strings.HasPrefix(out, "c "+bad) || !strings.Contains(out, "b OK") {
					t.Errorf("DELETE of the literal name %q: %q, %v", name, out, err)
				}
			}
			syncLiteral(r, c, "\xff")
			c = tr.dial(t)
			r = login(t, c)
			syncLiteral(r, c, "&A")
			io.WriteString(c, "d ENABLE IMAP4rev2\r\ne LIST \"\" \"B\xc3\xbccher\"\r\nb NOOP\r\n")
			if out, err := readUntil(r, "b "); err != nil || !strings.Contains(out, "\r\ne OK") {
				t.Errorf("LIST of a UTF-8 name after ENABLE IMAP4rev2: %q, %v", out, err)
			}

			// Pipelined with the LOGIN, which the command reader follows
			// anew.
			c = tr.dial(t)
			io.WriteString(c, "l LOGIN ann@example.test pw\r\nc CREATE \"z&\"\r\nd CREATE z&\r\nb NOOP\r\n")
			out, err = readUntil(bufio.NewReader(c), "b ")
			if err != nil || !strings.Contains(out, "l OK") || !strings.Contains(out, "\r\nc "+bad) || !strings.Contains(out, "\r\nd "+bad) || !strings.Contains(out, "\r\nb OK") {
				t.Errorf("pipelined after LOGIN: %q, %v", out, err)
			}
		})
	}
}
