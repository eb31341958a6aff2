package mailsys_test

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"os"

	"github.com/mailsys/mailsys"
)

// A host program composes its own server from a Config.
func Example() {
	dir, err := os.MkdirTemp("", "mailsys-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	ctx := context.Background()
	sys, err := mailsys.Open(ctx, mailsys.Config{
		DataDir:  dir,
		Hostname: "mail.example.com",
		SMTPAddr: "127.0.0.1:0",
		Logger:   slog.New(slog.DiscardHandler),
	})
	if err != nil {
		log.Fatal(err)
	}
	created, err := sys.EnsureUser(ctx, "alice@example.com", "correct horse")
	if err != nil {
		log.Fatal(err)
	}
	if err := sys.Start(ctx); err != nil {
		log.Fatal(err)
	}
	fmt.Println("user created:", created, "listeners:", len(sys.Addrs()))
	if err := sys.Shutdown(ctx); err != nil {
		log.Fatal(err)
	}
	// Output:
	// user created: true listeners: 1
}
