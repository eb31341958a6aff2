package queue_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/mailsys/mailsys/mta/queue"
	"github.com/mailsys/mailsys/mta/resolve"
)

// A message for bob@example.net goes to the MX host the resolver names:
// here a go-smtp server on 127.0.0.2, in a zone held in memory.
func Example() {
	dir, err := os.MkdirTemp("", "queue-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	got := make(chan string, 1)
	srv := smtp.NewServer(exampleMX{got})
	l, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		log.Fatal(err)
	}
	go srv.Serve(l)
	defer srv.Close()
	port := l.Addr().(*net.TCPAddr).Port

	zone := &resolve.Static{}
	zone.SetMX("example.net", "10 mx.example.net")
	zone.SetIP("mx.example.net", netip.MustParseAddr("127.0.0.2"))
	cfg := queue.DefaultConfig(dir)
	cfg.Hostname, cfg.Resolver, cfg.Port, cfg.DisableSTS = "mail.example.org", zone, port, true
	cfg.Logger = slog.New(slog.DiscardHandler)
	q, err := queue.Open(context.Background(), cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer q.Close()

	msg := "From: ann@example.org\r\nTo: bob@example.net\r\nSubject: hello\r\n\r\nHi Bob.\r\n"
	m := queue.Message{ID: "hello-1", From: "ann@example.org", Rcpts: []queue.Rcpt{{Addr: "bob@example.net"}}}
	if err := q.Enqueue(context.Background(), m, strings.NewReader(msg)); err != nil {
		log.Fatal(err)
	}
	select {
	case s := <-got:
		fmt.Println(s)
	case <-time.After(10 * time.Second):
		fmt.Println("not delivered")
	}
	// Output:
	// ann@example.org -> bob@example.net: Subject: hello
}

type exampleMX struct{ got chan string }

func (b exampleMX) NewSession(*smtp.Conn) (smtp.Session, error) {
	return &exampleSession{got: b.got}, nil
}

type exampleSession struct {
	got      chan string
	from, to string
}

func (s *exampleSession) Mail(from string, _ *smtp.MailOptions) error { s.from = from; return nil }
func (s *exampleSession) Rcpt(to string, _ *smtp.RcptOptions) error   { s.to = to; return nil }
func (s *exampleSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	for _, line := range strings.Split(string(b), "\r\n") {
		if strings.HasPrefix(line, "Subject:") {
			s.got <- s.from + " -> " + s.to + ": " + line
		}
	}
	return nil
}
func (s *exampleSession) Reset()        {}
func (s *exampleSession) Logout() error { return nil }
