package pop3_test

import (
	"bufio"
	"context"
	"fmt"
	"log"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/mailsys/mailsys/msstore"
	"github.com/mailsys/mailsys/pop3"
	"github.com/mailsys/mailsys/userdata"
)

// A POP3 server over a UserDB and a store: a message is delivered, then
// fetched and deleted by a client.
func ExampleServer() {
	dir, err := os.MkdirTemp("", "pop3-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	ctx := context.Background()
	quiet := slog.New(slog.DiscardHandler)

	store := msstore.NewMemory(1)
	db, err := userdata.Open(ctx, userdata.Config{Dir: filepath.Join(dir, "ud"), Bodies: store,
		Argon2: userdata.Argon2Params{Time: 1, Memory: 64, Threads: 1}, Logger: quiet})
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	db.CreateDomain(ctx, userdata.Domain{Name: "example.com"})
	alice, _ := db.CreateUser(ctx, userdata.NewUser{Address: "alice@example.com", Password: "wonderland"})

	// Deliver a message: the body into the store, an entry into the INBOX.
	body := "Subject: lunch\r\n\r\nNoon?\r\n.. and bring the map.\r\n"
	ref, _ := store.Put(ctx, strings.NewReader(body), msstore.Meta{})
	inbox, _ := db.Folder(ctx, alice.ID, userdata.Inbox)
	db.Append(ctx, alice.ID, inbox.ID, userdata.NewMessage{Ref: ref, Size: ref.Size, InternalDate: time.Now()})

	// InsecureAuth allows passwords without TLS: for this example only.
	srv, err := pop3.NewServer(pop3.Config{Hostname: "pop.example.com", InsecureAuth: true, Logger: quiet}, db, store)
	if err != nil {
		log.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	go srv.Serve(l)
	defer srv.Shutdown(ctx)

	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	fmt.Fprint(c, "USER alice@example.com\r\nPASS wonderland\r\nRETR 1\r\nDELE 1\r\nQUIT\r\n")
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			break
		}
		fmt.Println(strings.TrimSuffix(line, "\r\n"))
	}
	inbox, _ = db.Folder(ctx, alice.ID, userdata.Inbox)
	fmt.Println("messages left:", inbox.Messages)
	// Output:
	// +OK pop.example.com POP3 server ready
	// +OK Send your password
	// +OK alice@example.com has 1 messages (48 octets)
	// +OK 48 octets
	// Subject: lunch
	//
	// Noon?
	// ... and bring the map.
	// .
	// +OK Message 1 deleted
	// +OK pop.example.com POP3 server signing off (0 messages left)
	// messages left: 0
}
