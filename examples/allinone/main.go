// Command allinone runs a whole mailsys mail server on one machine, with
// embedded storage and nothing else to install:
//
//	go run ./examples/allinone
//
// It receives mail for its users over SMTP (default 127.0.0.1:2525), and
// from them on the submission port (default 127.0.0.1:2587, authentication
// after STARTTLS), into a data directory (default ./mailsys-data), and
// serves it over IMAP (default 127.0.0.1:1143 with STARTTLS, and
// 127.0.0.1:1993 with implicit TLS) and POP3 (default 127.0.0.1:1110 with
// STLS, and 127.0.0.1:1995 with implicit TLS). When its UserDB has no user
// and no -user is given, it creates a demo user and prints its address and
// password. It logs a line with "ready", naming each listener's address,
// once it accepts connections, and shuts down cleanly on SIGINT or
// SIGTERM.
//
// Without -tls-cert it makes a self-signed certificate for localhost,
// 127.0.0.1, ::1 and the -hostname, in the data directory as
// tls-cert.pem, which clients that verify certificates can be told to
// trust.
//
// Every flag is checked before anything is written: a command line it
// refuses exits with status 2, as -help exits with 0 after the usage.
//
// Started as root, it binds its listeners and then serves as the user
// -run-as names, to whom the data directory then belongs; without -run-as it
// serves as root only on loopback addresses, unless -allow-root. Every
// limit of the servers has a flag (-help lists them), with the defaults
// of the packages.
package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/mailsys/mailsys"
	"github.com/mailsys/mailsys/userdata"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], slog.New(slog.NewTextHandler(os.Stderr, nil)))
	var ue usageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
	case errors.As(err, &ue):
		os.Exit(2) // said with the usage already
	default:
		fmt.Fprintln(os.Stderr, "allinone:", err)
		os.Exit(1)
	}
}

// run is the program; it returns when ctx ends (a signal) or on error.
func run(ctx context.Context, args []string, log *slog.Logger) error {
	o, err := parseFlags(args)
	if err != nil {
		return err
	}
	cfg := o.cfg
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return err
	}
	cert, err := loadOrMakeCert(cfg.DataDir, o.certFile, o.keyFile, cfg.Hostname, log)
	if err != nil {
		return err
	}
	cfg.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	cfg.Logger = log
	sys, err := mailsys.Open(ctx, cfg)
	if err != nil {
		return err
	}
	shutdown := func() error {
		c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		return sys.Shutdown(c)
	}
	for _, u := range o.users {
		addr, pw, _ := strings.Cut(u, ":") // checked by Set
		created, err := sys.EnsureUser(ctx, addr, pw)
		if err != nil {
			shutdown()
			return fmt.Errorf("-user %s: %w", addr, err)
		}
		log.Info("user", "address", addr, "created", created)
	}
	if len(o.users) == 0 {
		if err := ensureDemoUser(ctx, sys, cfg.Hostname, log); err != nil {
			shutdown()
			return err
		}
	}
	if err := sys.Start(ctx); err != nil {
		shutdown()
		return err
	}
	log.Info("mailsys ready", readyAttrs(sys, o.listeners, cfg.DataDir)...)
	<-ctx.Done()
	log.Info("shutting down")
	return shutdown()
}

// readyAttrs are the attributes of the ready line: each listener's
// address under its service's name, and the data directory.
func readyAttrs(sys *mailsys.System, listeners []listenerFlag, data string) []any {
	var attrs []any
	addrs := sys.Addrs()
	for _, l := range listeners {
		if *l.addr != "" && len(addrs) > 0 {
			attrs = append(attrs, l.name, addrs[0].String())
			addrs = addrs[1:]
		}
	}
	if len(addrs) > 0 { // not the order assumed: say them unnamed
		attrs = nil
		for _, a := range sys.Addrs() {
			attrs = append(attrs, "listener", a.String())
		}
	}
	return append(attrs, "data", data)
}

// ensureDemoUser makes demo@hostname with a random password, and prints
// them, when the UserDB has no user at all. When the demo user is there
// from an earlier start it says how to give it a new password, the one
// printed then being lost.
func ensureDemoUser(ctx context.Context, sys *mailsys.System, hostname string, log *slog.Logger) error {
	demo := "demo@" + hostname
	// User ids start at 1 and are never reused, and the UserDB cannot
	// delete a user: it has none if it has no user 1. (It has no way to
	// list or count users yet.)
	_, err := sys.UserDB().User(ctx, 1)
	switch {
	case errors.Is(err, userdata.ErrNotFound):
		pw := randomPassword()
		if _, err := sys.EnsureUser(ctx, demo, pw); err != nil {
			return fmt.Errorf("demo user: %w", err)
		}
		fmt.Printf("demo user: %s password: %s\n", demo, pw)
		return nil
	case err != nil:
		return fmt.Errorf("looking for users: %w", err)
	}
	if _, err := sys.UserDB().LookupAddress(ctx, demo); err == nil {
		log.Info("the demo user is there from an earlier start; -user "+demo+":PASSWORD sets its password", "address", demo)
	}
	return nil
}

func randomPassword() string {
	b := make([]byte, 9)
	rand.Read(b)
	return hex.EncodeToString(b)
}
