package msstore_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"os"
	"strings"

	"github.com/mailsys/mailsys/msstore"
)

// A message delivered to two local users is stored once, with two
// references; each mailbox releases its own.
func ExampleVolumes() {
	dir, err := os.MkdirTemp("", "msstore-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	ctx := context.Background()
	cfg := msstore.DefaultConfig(dir)
	cfg.Logger = slog.New(slog.DiscardHandler)
	store, err := msstore.OpenVolumes(ctx, cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()

	msg := "From: carol@example.net\r\nSubject: lunch\r\n\r\nNoon?\r\n"
	ref, err := store.Put(ctx, strings.NewReader(msg), msstore.Meta{
		MessageID: "<lunch@example.net>",
		Owners: []msstore.Owner{
			{User: "alice@example.com", Mailbox: "INBOX"},
			{User: "bob@example.com", Mailbox: "INBOX"},
		},
	})
	if err != nil {
		log.Fatal(err)
	}

	body, err := store.Open(ctx, ref)
	if err != nil {
		log.Fatal(err)
	}
	subject := make([]byte, 14)
	body.ReadAt(subject, 25) // byte ranges without reading the rest
	fmt.Printf("%d bytes, %q\n", body.Size(), subject)
	body.Close()

	store.Release(ctx, ref) // alice expunges
	b, err := store.Open(ctx, ref)
	if err != nil {
		log.Fatal(err)
	}
	all, _ := io.ReadAll(io.NewSectionReader(b, 0, b.Size()))
	b.Close()
	fmt.Printf("bob still reads %d bytes\n", len(all))

	store.Release(ctx, ref) // bob too
	_, err = store.Open(ctx, ref)
	fmt.Println(err != nil, store.Stats().Bodies)
	// Output:
	// 50 bytes, "Subject: lunch"
	// bob still reads 50 bytes
	// true 0
}
