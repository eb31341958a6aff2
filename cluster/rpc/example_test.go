package rpc_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log"
	"net"
	"strings"
	"time"

	"github.com/mailsys/mailsys/cluster"
	"github.com/mailsys/mailsys/cluster/rpc"
	"github.com/mailsys/mailsys/msstore"
)

// An MS node serves its message store; a front node stores a body on it
// and reads it back, over mutual TLS with certificates of the cluster's CA.
func Example() {
	ca, err := cluster.NewCA("example cluster", time.Hour)
	if err != nil {
		log.Fatal(err)
	}
	creds := func(id string) cluster.Credentials {
		certPEM, keyPEM, err := ca.Issue(id, []string{"127.0.0.1"}, time.Hour)
		if err != nil {
			log.Fatal(err)
		}
		cert, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			log.Fatal(err)
		}
		c, err := cluster.NewCredentials(cert, ca.CertPEM())
		if err != nil {
			log.Fatal(err)
		}
		return c
	}

	// The MS node "ms1".
	store := msstore.NewMemory(1)
	defer store.Close()
	srv := rpc.NewServer(creds("ms1"))
	rpc.RegisterStorage(srv, store)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	go srv.Serve(l)
	defer srv.Stop()

	// The front node "fe1".
	conn, err := rpc.Dial(l.Addr().String(), "ms1", creds("fe1"))
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	ms1 := rpc.NewStorage(conn, "ms1")
	defer ms1.Close()

	ctx := context.Background()
	msg := "Subject: hello\r\n\r\nHello over the cluster.\r\n"
	ref, err := ms1.Put(ctx, strings.NewReader(msg), msstore.Meta{
		MessageID: "<1@example.org>",
		Owners:    []msstore.Owner{{User: "ann@example.org", Mailbox: "INBOX"}},
	})
	if err != nil {
		log.Fatal(err)
	}
	body, err := ms1.Open(ctx, ref)
	if err != nil {
		log.Fatal(err)
	}
	defer body.Close()
	b, err := io.ReadAll(io.NewSectionReader(body, 0, body.Size()))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("node %d, %d bytes\n%s", ref.Node, body.Size(), strings.ReplaceAll(string(b), "\r\n", "\n"))
	// Output:
	// node 1, 43 bytes
	// Subject: hello
	//
	// Hello over the cluster.
}
