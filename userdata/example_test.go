package userdata_test

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"os"
	"time"

	"github.com/mailsys/mailsys/msstore"
	"github.com/mailsys/mailsys/userdata"
)

// A domain with one user, who logs in and receives a message.
func ExampleOpen() {
	dir, err := os.MkdirTemp("", "userdata-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	ctx := context.Background()
	db, err := userdata.Open(ctx, userdata.Config{
		Dir:    dir,
		Node:   "ud1",
		Argon2: userdata.Argon2Params{Time: 1, Memory: 64, Threads: 1}, // cheap, for the example only
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()

	if err := db.CreateDomain(ctx, userdata.Domain{Name: "example.com"}); err != nil {
		log.Fatal(err)
	}
	if _, err := db.CreateUser(ctx, userdata.NewUser{Address: "Alice@Example.com", Password: "s3cret", Name: "Alice"}); err != nil {
		log.Fatal(err)
	}

	alice, err := db.Authenticate(ctx, "alice@example.com", "s3cret", userdata.ProtoIMAP)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("logged in:", alice.Address)
	_, err = db.Authenticate(ctx, "alice@example.com", "guess", userdata.ProtoIMAP)
	fmt.Println("wrong password:", err)

	inbox, err := db.Folder(ctx, alice.ID, userdata.Inbox)
	if err != nil {
		log.Fatal(err)
	}
	m, err := db.Append(ctx, alice.ID, inbox.ID, userdata.NewMessage{
		Ref:          msstore.Ref{Node: 1, ID: 1, Size: 5}, // where the body is stored
		InternalDate: time.Now(),
		Size:         5,
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("appended UID", m.UID)

	inbox, err = db.Folder(ctx, alice.ID, userdata.Inbox)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s: %d message(s), %d unseen, UIDNext %d\n", inbox.Name, inbox.Messages, inbox.Unseen, inbox.UIDNext)
	// Output:
	// logged in: alice@example.com
	// wrong password: userdata: authentication failed
	// appended UID 1
	// INBOX: 1 message(s), 1 unseen, UIDNext 2
}
