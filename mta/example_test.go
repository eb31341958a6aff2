package mta_test

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/mailsys/mailsys/msstore"
	"github.com/mailsys/mailsys/mta"
	"github.com/mailsys/mailsys/txlog"
	"github.com/mailsys/mailsys/userdata"
)

// A message for two local users, one of them over quota: it is stored
// once, indexed for the other, and the refused reference is given back.
func ExampleDeliverer() {
	dir, err := os.MkdirTemp("", "mta-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	ctx := context.Background()
	quiet := slog.New(slog.DiscardHandler)

	tl, err := txlog.Open(ctx, txlog.Config{Dir: filepath.Join(dir, "txlog"), Logger: quiet})
	if err != nil {
		log.Fatal(err)
	}
	defer tl.Close()
	store := msstore.NewMemory(1)
	db, err := userdata.Open(ctx, userdata.Config{Dir: filepath.Join(dir, "ud"), Bodies: store,
		Argon2: userdata.Argon2Params{Time: 1, Memory: 64, Threads: 1}, Logger: quiet})
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	db.CreateDomain(ctx, userdata.Domain{Name: "example.com"})
	alice, _ := db.CreateUser(ctx, userdata.NewUser{Address: "alice@example.com"})
	bob, _ := db.CreateUser(ctx, userdata.NewUser{Address: "bob@example.com", Quota: 10})

	tx, err := tl.Accept(ctx, txlog.Envelope{From: "carol@example.net", To: []string{"alice@example.com", "bob@example.com"}, Received: time.Now()},
		strings.NewReader("Subject: lunch\r\n\r\nNoon?\r\n"))
	if err != nil {
		log.Fatal(err)
	}
	d := &mta.Deliverer{Log: tl, Store: store, Users: db, Logger: quiet}
	if err := d.Deliver(ctx, tx); err != nil {
		log.Fatal(err)
	}
	for _, u := range []userdata.User{alice, bob} {
		inbox, _ := db.Folder(ctx, u.ID, userdata.Inbox)
		fmt.Printf("%s: %d message(s)\n", u.Address, inbox.Messages)
	}
	// Alice expunges it: the body's last reference goes with it.
	inbox, _ := db.Folder(ctx, alice.ID, userdata.Inbox)
	var ref msstore.Ref
	db.Messages(ctx, alice.ID, inbox.ID, nil, func(m *userdata.Message) error { ref = m.Ref; return nil })
	db.StoreFlags(ctx, alice.ID, inbox.ID, nil, userdata.FlagUpdate{Op: userdata.FlagsAdd, Flags: userdata.FlagDeleted})
	db.Expunge(ctx, alice.ID, inbox.ID, nil)
	_, err = store.Open(ctx, ref)
	fmt.Println("body gone:", err != nil)
	// Output:
	// alice@example.com: 1 message(s)
	// bob@example.com: 0 message(s)
	// body gone: true
}
