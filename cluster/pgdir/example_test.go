package pgdir_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/mailsys/mailsys/cluster"
	"github.com/mailsys/mailsys/cluster/pgdir"
	"github.com/mailsys/mailsys/userdata"
)

// A node opens the cluster's Directory on the shared database, registers
// itself, places a user, and follows the registry as other nodes change
// it. (It needs a PostgreSQL server: it is compiled, not run, by go test.)
func Example() {
	ctx := context.Background()
	// MAILSYS_DIRECTORY, say "postgres://mailsys@db.internal/mailsys".
	dir, err := pgdir.Open(ctx, os.Getenv("MAILSYS_DIRECTORY"), pgdir.Config{})
	if err != nil {
		log.Fatal(err) // cluster.IsUnavailable(err) if the server is down
	}
	defer dir.Close()

	err = dir.PutNode(ctx, cluster.Node{ID: "ud1", Num: 1, Roles: cluster.RoleUD, Addr: "10.0.0.11:7443", Weight: 100})
	if err != nil {
		log.Fatal(err)
	}
	id, err := dir.NextID(ctx, "user")
	if err != nil {
		log.Fatal(err)
	}
	if err := dir.PlaceUser(ctx, userdata.UserID(id), "Alice@Example.org", "ud1"); err != nil {
		log.Fatal(err)
	}
	p, err := dir.LookupAddress(ctx, "alice@example.org")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("user %d lives on %s\n", p.User, p.Node)

	// Follow the registry for a minute: fn runs at once, then after each
	// change made by any node.
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	_ = dir.WatchRegistry(wctx, func(r cluster.Registry) {
		fmt.Printf("registry version %d: %d nodes\n", r.Version, len(r.Nodes))
	})
}
