// Command custom is a host program that builds its own mail server from
// the mailsys packages, as a vendor would, and shows what it takes:
//
//	go run ./examples/custom -accounts examples/custom/accounts.txt
//
// It brings its own parts and lets mailsys.System wire them:
//
//   - its own user source: the accounts are a static file of addresses and
//     argon2id password hashes (accounts.go), checked by an Authenticator
//     of its own, while the mailboxes, folders and message index live in a
//     userdata.Memory;
//   - its own content filter (filter.go), which refuses a message carrying
//     the EICAR test string, files "[SPAM]" subjects into Junk and marks
//     what it passes;
//   - the in-memory message store, msstore.Memory: bodies do not survive
//     the process, which suits a demo and a test. Only the delivery log
//     (txlog) is on disk, in -data (a temporary directory by default), so
//     that a 250 still means the message is safe.
//
// It serves SMTP (127.0.0.1:3525), submission (127.0.0.1:3587, STARTTLS),
// IMAP (127.0.0.1:3143, STARTTLS) and POP3 (127.0.0.1:3110, STLS), with a
// self-signed certificate made at start for localhost. The sample
// accounts file holds ann@example.org with the password
// "correct horse battery staple"; `go run ./examples/custom -hash` reads a
// password on standard input and prints the hash to put in the file.
//
// It imports none of the mailsys module's internal packages, so it can be
// copied out of the module as the start of a program of one's own.
package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/mailsys/mailsys"
	"github.com/mailsys/mailsys/msstore"
	"github.com/mailsys/mailsys/mta"
	"github.com/mailsys/mailsys/userdata"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, log, nil); err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "custom:", err)
		os.Exit(1)
	}
}

// run is the program. It returns when ctx ends, or at once with -hash. If
// ready is not nil, it is called with the System once it serves.
func run(ctx context.Context, args []string, stdin io.Reader, stdout io.Writer, log *slog.Logger, ready func(*mailsys.System)) error {
	fs := flag.NewFlagSet("custom", flag.ContinueOnError)
	accountsFile := fs.String("accounts", "accounts.txt", "accounts file: ADDRESS ARGON2ID-HASH [NAME] per line")
	hash := fs.Bool("hash", false, "read a password on standard input, print its argon2id hash for the accounts file, and exit")
	data := fs.String("data", "", "directory of the delivery log (default: a temporary one, removed at exit)")
	hostname := fs.String("hostname", "localhost", "host name the servers announce")
	smtpAddr := fs.String("smtp", "127.0.0.1:3525", "inbound SMTP address")
	submissionAddr := fs.String("submission", "127.0.0.1:3587", "submission address (STARTTLS)")
	imapAddr := fs.String("imap", "127.0.0.1:3143", "IMAP address (STARTTLS)")
	pop3Addr := fs.String("pop3", "127.0.0.1:3110", "POP3 address (STLS)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *hash {
		return printHash(stdin, stdout)
	}

	f, err := os.Open(*accountsFile)
	if err != nil {
		return err
	}
	accounts, err := parseAccounts(f)
	f.Close()
	if err != nil {
		return fmt.Errorf("%s: %w", *accountsFile, err)
	}
	if *data == "" {
		if *data, err = os.MkdirTemp("", "mailsys-custom-"); err != nil {
			return err
		}
		defer os.RemoveAll(*data)
	}
	cert, err := selfSigned(*hostname)
	if err != nil {
		return err
	}

	// The parts: an in-memory store, the mailboxes in memory behind the
	// accounts file's passwords, one bound on password checks.
	store := msstore.NewMemory(1)
	defer store.Close()
	mem, err := userdata.NewMemory(userdata.MemoryConfig{Node: *hostname, Bodies: store, Logger: log})
	if err != nil {
		return err
	}
	defer mem.Close()
	users, err := newDirectory(ctx, mem, accounts, userdata.NewPasswordLimiter(userdata.PasswordLimiterConfig{}))
	if err != nil {
		return err
	}

	// mailsys.System wires them to the protocol servers; the delivery log
	// is its embedded one, under DataDir.
	sys, err := mailsys.Open(ctx, mailsys.Config{
		DataDir:        *data,
		Hostname:       *hostname,
		Storage:        store,
		UserDB:         users,
		SMTPAddr:       *smtpAddr,
		SubmissionAddr: *submissionAddr,
		IMAPAddr:       *imapAddr,
		POP3Addr:       *pop3Addr,
		TLS:            &tls.Config{Certificates: []tls.Certificate{cert}},
		Filter:         mta.FilterFunc(contentFilter),
		Logger:         log,
	})
	if err != nil {
		return err
	}
	shutdown := func() error {
		c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		return sys.Shutdown(c)
	}
	if err := sys.Start(ctx); err != nil {
		return errors.Join(err, shutdown())
	}
	log.Info("custom mail server ready", "accounts", len(accounts), "addrs", fmt.Sprint(sys.Addrs()))
	if ready != nil {
		ready(sys)
	}
	<-ctx.Done()
	return shutdown()
}

// printHash reads a password (the first line of r) and writes its hash.
func printHash(r io.Reader, w io.Writer) error {
	line, err := bufio.NewReader(r).ReadString('\n')
	if err != nil && line == "" {
		return fmt.Errorf("reading the password: %w", err)
	}
	h, err := userdata.HashPassword(strings.TrimRight(line, "\r\n"), userdata.DefaultArgon2())
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(w, h)
	return err
}
