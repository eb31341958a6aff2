package txlog_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/mailsys/mailsys/txlog"
)

func Example() {
	dir, err := os.MkdirTemp("", "txlog-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	ctx := context.Background()
	cfg := txlog.Config{Dir: dir, Logger: slog.New(slog.DiscardHandler)}

	l, err := txlog.Open(ctx, cfg)
	if err != nil {
		log.Fatal(err)
	}
	env := txlog.Envelope{From: "carol@example.net", To: []string{"alice@example.com"}, Received: time.Now()}
	tx, err := l.Accept(ctx, env, strings.NewReader("Subject: hi\r\n\r\nhello\r\n"))
	if err != nil {
		log.Fatal(err)
	}
	// Here the SMTP server answers 250. The delivery agent stores the
	// body and records it; then the process crashes before Done.
	l.Record(ctx, tx, "stored", []byte("ref-of-the-body"))
	l.Close()

	l, err = txlog.Open(ctx, cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer l.Close()
	for _, tx := range l.Pending() {
		ref, stored := tx.Step("stored")
		body, _ := io.ReadAll(tx.Body())
		fmt.Printf("pending %d to %v: %d bytes, stored=%v (%s)\n", tx.ID, tx.Envelope.To, len(body), stored, ref)
		l.Done(ctx, tx)
	}
	// Output:
	// pending 1 to [alice@example.com]: 22 bytes, stored=true (ref-of-the-body)
}
