// Command node runs one node of a mailsys cluster, as a deployment runs it
// once per machine, from a configuration file naming its roles (front,
// ud, ms), its directory, its certificates and its peers:
//
//	go run ./examples/node -config /etc/mailsys/node.toml
//
// The file's format is cluster/node's File (see its documentation, or a
// file examples/cluster writes in DATA/nodes). Certificates come from the
// cluster's CA: `go run ./examples/node -make-ca DIR` makes one in DIR,
// and `-issue ID -hosts 10.0.0.5 -certs DIR` a node's certificate with it.
// The node logs to standard error, prints "ready" once it serves, and
// stops on SIGINT or SIGTERM.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/mailsys/mailsys/cluster"
	"github.com/mailsys/mailsys/cluster/node"
)

func main() {
	config := flag.String("config", "", "the node's configuration `file` (TOML)")
	makeCA := flag.String("make-ca", "", "make a cluster CA in `DIR` (ca.pem, ca.key) and exit")
	issue := flag.String("issue", "", "issue a certificate for node `ID` with the CA in -certs, and exit")
	hosts := flag.String("hosts", "", "comma-separated IP addresses or names the -issue certificate also covers")
	certs := flag.String("certs", ".", "directory of the CA and the certificates it issues")
	flag.Parse()
	var err error
	switch {
	case *makeCA != "":
		var ca *cluster.CA
		if ca, err = cluster.NewCA("mailsys cluster", 10*365*24*time.Hour); err == nil {
			err = ca.WriteFiles(*makeCA)
		}
	case *issue != "":
		var ca *cluster.CA
		if ca, err = cluster.LoadCA(*certs+"/ca.pem", *certs+"/ca.key"); err == nil {
			var hs []string
			if *hosts != "" {
				hs = strings.Split(*hosts, ",")
			}
			err = ca.IssueFiles(*certs, *issue, hs, 2*365*24*time.Hour)
		}
	case *config != "":
		err = run(*config)
	default:
		flag.Usage()
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "node:", err)
		os.Exit(1)
	}
}

func run(path string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	f, err := node.LoadFile(path)
	if err != nil {
		return err
	}
	return node.Run(ctx, f, slog.New(slog.NewTextHandler(os.Stderr, nil)), func(*node.Node) error {
		fmt.Println("ready")
		return nil
	})
}
