package queue_test

import (
	"bufio"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailsys/mailsys/mta/queue"
)

// rawRemote listens on ip:port and runs serve on each connection: a
// remote host that misbehaves as a test says.
func rawRemote(t *testing.T, ip string, port int, serve func(c net.Conn)) {
	t.Helper()
	l, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(port)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				serve(c)
			}()
		}
	}()
}

// untilData answers a session politely up to DATA's 354.
func untilData(c net.Conn) *bufio.Reader {
	r := bufio.NewReader(c)
	c.Write([]byte("220 bad.example ESMTP\r\n"))
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return nil
		}
		switch cmd := strings.ToUpper(strings.TrimSpace(line)); {
		case strings.HasPrefix(cmd, "EHLO"):
			c.Write([]byte("250-bad.example\r\n250 8BITMIME\r\n"))
		case cmd == "DATA":
			c.Write([]byte("354 go on\r\n"))
			return r
		case cmd == "QUIT":
			c.Write([]byte("221 bye\r\n"))
			return nil
		default:
			c.Write([]byte("250 ok\r\n"))
		}
	}
}

// A remote that sends garbage, hangs in the middle of a reply, answers
// with a 10 MB line, or closes during DATA: the recipient is deferred
// with the reason, and the queue goes on.
func TestMisbehavingRemotes(t *testing.T) {
	cases := []struct {
		name  string
		serve func(c net.Conn)
		want  string // in the deferral's reply
	}{
		{"garbage", func(c net.Conn) {
			c.Write([]byte("\x00\xffHELLO THERE this is not SMTP\r\n"))
			time.Sleep(100 * time.Millisecond)
		}, "4.4.2"},
		{"hang mid-reply", func(c net.Conn) {
			c.Write([]byte("220-bad.example still going"))
			time.Sleep(5 * time.Second)
		}, "4.4.2"},
		{"10 MB line", func(c net.Conn) {
			c.Write([]byte("220 bad.example\r\n"))
			bufio.NewReader(c).ReadString('\n')
			line := strings.Repeat("x", 10<<20)
			c.Write([]byte("250-" + line + "\r\n250 ok\r\n"))
		}, "4.4.2"},
		{"endless reply", func(c net.Conn) {
			c.Write([]byte("220 bad.example\r\n"))
			bufio.NewReader(c).ReadString('\n')
			for i := 0; i < 1<<20; i++ {
				if _, err := c.Write([]byte("250-" + strings.Repeat("y", 900) + "\r\n")); err != nil {
					return
				}
			}
		}, "4.4.2"},
		{"close during DATA", func(c net.Conn) {
			if r := untilData(c); r != nil {
				r.ReadString('\n')
			}
		}, "4.4.2"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, func(c *queue.Config) {
				c.RetryFirst, c.RetryMax = time.Hour, time.Hour
				c.CommandTimeout = 500 * time.Millisecond
			})
			rawRemote(t, "127.0.0.2", f.port, tc.serve)
			good := startRemote(t, "127.0.0.3", f.port, "")
			f.mx("bad.example", "mx.bad.example")
			f.host("mx.bad.example", "127.0.0.2")
			f.mx("good.example", "mx.good.example")
			f.host("mx.good.example", "127.0.0.3")
			start := time.Now()
			f.send("bad", "", "bob@bad.example")
			f.send("good", "", "bob@good.example")
			waitFor(t, "the good one delivered", func() bool { return len(good.messages()) == 1 })
			waitFor(t, "the bad one deferred", func() bool { return f.state("bad", "bob@bad.example") == queue.Deferred })
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("took %v", d)
			}
			e, err := f.q.Get(t.Context(), "bad")
			if err != nil {
				t.Fatal(err)
			}
			if r := e.Rcpts[0]; !strings.Contains(r.LastReply, tc.want) || r.Attempts != 1 {
				t.Errorf("deferred with %+v, want %q", r, tc.want)
			}
			if len(e.Rcpts[0].LastReply) > 2000 {
				t.Errorf("reply of %d bytes kept", len(e.Rcpts[0].LastReply))
			}
		})
	}
}

// scripted is a raw remote that takes one message: it offers PIPELINING
// or not, and notes, for each command after EHLO, whether the next was
// already there when it was read (in the same write).
type scripted struct {
	pipelining bool
	mu         sync.Mutex
	ahead      []bool
	got        int
}

func (s *scripted) serve(c net.Conn) {
	r := bufio.NewReader(c)
	c.Write([]byte("220 raw.example\r\n"))
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		cmd := strings.ToUpper(strings.Fields(line + " x")[0])
		if cmd == "MAIL" || cmd == "RCPT" {
			s.mu.Lock()
			s.ahead = append(s.ahead, r.Buffered() > 0)
			s.mu.Unlock()
		}
		switch cmd {
		case "EHLO":
			if s.pipelining {
				c.Write([]byte("250-raw.example\r\n250-8BITMIME\r\n250 PIPELINING\r\n"))
			} else {
				c.Write([]byte("250-raw.example\r\n250 8BITMIME\r\n"))
			}
		case "DATA":
			c.Write([]byte("354 go on\r\n"))
			for {
				l, err := r.ReadString('\n')
				if err != nil {
					return
				}
				if l == ".\r\n" {
					break
				}
			}
			s.mu.Lock()
			s.got++
			s.mu.Unlock()
			c.Write([]byte("250 2.0.0 taken\r\n"))
		case "QUIT":
			c.Write([]byte("221 bye\r\n"))
			return
		default:
			c.Write([]byte("250 ok\r\n"))
		}
	}
}

// With PIPELINING, MAIL, the RCPTs and DATA go in one write; without it,
// one command waits for the reply to the one before.
func TestPipelining(t *testing.T) {
	for _, offered := range []bool{true, false} {
		f := newFixture(t, nil)
		s := &scripted{pipelining: offered}
		rawRemote(t, "127.0.0.2", f.port, s.serve)
		f.mx("raw.example", "mx.raw.example")
		f.host("mx.raw.example", "127.0.0.2")
		f.send("m1", "", "a@raw.example", "b@raw.example")
		waitFor(t, "delivery", func() bool { s.mu.Lock(); defer s.mu.Unlock(); return s.got == 1 })
		waitFor(t, "queue empty", func() bool { return f.gone("m1") })
		s.mu.Lock()
		ahead := s.ahead
		s.mu.Unlock()
		want := []bool{offered, offered, offered}
		if !slices.Equal(ahead, want) {
			t.Errorf("PIPELINING offered %v: next command already sent after MAIL, RCPT, RCPT: %v, want %v", offered, ahead, want)
		}
	}
}
