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
// STLS, and 127.0.0.1:1995 with implicit TLS). On a new data directory without
// -user it creates a demo user and prints its address and password. It
// logs a line with "ready" once it accepts connections, and shuts down
// cleanly on SIGINT or SIGTERM.
//
// Started as root, it binds its listeners and then serves as the user
// -run-as names, to whom the data directory then belongs; without -run-as it
// serves as root only on loopback addresses, unless -allow-root. Every
// limit of the servers has a flag (-help lists them), with the defaults
// of the packages.
package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/mailsys/mailsys/internal/selfsigned"

	"github.com/mailsys/mailsys"
	"github.com/mailsys/mailsys/imap"
	"github.com/mailsys/mailsys/mta"
	"github.com/mailsys/mailsys/pop3"
	"github.com/mailsys/mailsys/userdata"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], slog.New(slog.NewTextHandler(os.Stderr, nil))); err != nil {
		fmt.Fprintln(os.Stderr, "allinone:", err)
		os.Exit(1)
	}
}

type userFlags []string

func (u *userFlags) String() string     { return strings.Join(*u, ",") }
func (u *userFlags) Set(v string) error { *u = append(*u, v); return nil }

// run is the program; it returns when ctx ends (a signal) or on error.
func run(ctx context.Context, args []string, log *slog.Logger) error {
	fs := flag.NewFlagSet("allinone", flag.ContinueOnError)
	data := fs.String("data", "./mailsys-data", "data directory")
	hostname := fs.String("hostname", "localhost", "host name the servers announce")
	smtpAddr := fs.String("smtp", "127.0.0.1:2525", "inbound SMTP listener address (empty: off)")
	subAddr := fs.String("submission", "127.0.0.1:2587", "submission listener address, authentication after STARTTLS (empty: off)")
	subTLSAddr := fs.String("submissions", "127.0.0.1:2465", "implicit-TLS submission listener address (empty: off)")
	imapAddr := fs.String("imap", "127.0.0.1:1143", "IMAP listener address, STARTTLS (empty: off)")
	imapTLSAddr := fs.String("imaps", "127.0.0.1:1993", "implicit-TLS IMAP listener address (empty: off)")
	pop3Addr := fs.String("pop3", "127.0.0.1:1110", "POP3 listener address, STLS (empty: off)")
	pop3TLSAddr := fs.String("pop3s", "127.0.0.1:1995", "implicit-TLS POP3 listener address (empty: off)")
	insecureAuth := fs.Bool("insecure-auth", false, "let IMAP and POP3 clients log in with plain-text passwords before TLS (testing only)")
	certFile := fs.String("tls-cert", "", "TLS certificate (PEM); without it a self-signed one is made in the data directory")
	keyFile := fs.String("tls-key", "", "TLS key (PEM)")
	var users, anyFrom userFlags
	fs.Var(&users, "user", "EMAIL:PASSWORD to create or update; repeatable")
	runAs := fs.String("run-as", "", "USER[:GROUP] to serve as once the listeners are bound, when started as root")
	allowRoot := fs.Bool("allow-root", false, "serve as root on non-loopback addresses (without -run-as)")
	var access mta.GuardConfig
	fs.IntVar(&access.MaxConns, "max-conns", 0, "connections open at once over every listener (0: below the open-file limit)")
	fs.IntVar(&access.MaxConnsPerListener, "max-conns-per-listener", 0, "connections open at once on one listener (0: no bound of its own)")
	fs.IntVar(&access.MaxConnsPerIP, "max-conns-per-ip", 0, "connections open at once from one address on one listener (0: 20)")
	fs.IntVar(&access.AuthFailures, "auth-failures", 0, "failed logins from one address for one account that lock that address out of it (0: 5)")
	fs.IntVar(&access.AddrAuthFailures, "addr-auth-failures", 0, "failed logins from one address for any accounts that lock it out of all (0: 20)")
	fs.IntVar(&access.AccountFailures, "account-failures", 0, "failed logins for one account, from anywhere, before its failures are answered slowly (0: 10)")
	fs.DurationVar(&access.Lockout, "lockout", 0, "how long a lockout lasts (0: 15m)")
	var passwords userdata.PasswordLimiterConfig
	fs.IntVar(&passwords.MaxChecks, "password-checks", 0, "password checks (argon2id) running at once (0: the number of CPUs)")
	passwordMiB := fs.Int64("password-memory", 0, "MiB the running password checks may use together (0: 512)")
	var smtpCfg mta.InboundConfig
	fs.DurationVar(&smtpCfg.MaxSession, "smtp-max-session", 0, "longest SMTP session (0: 30m)")
	fs.DurationVar(&smtpCfg.DataTimeout, "smtp-data-timeout", 0, "longest transfer of one message (0: 10m)")
	fs.DurationVar(&smtpCfg.LoginTimeout, "submission-login-timeout", 0, "time a submission client has to log in (0: 1m)")
	fs.IntVar(&smtpCfg.MaxUnknownRecipients, "max-unknown-recipients", 0, "unknown recipients after which a session is closed (0: 20)")
	var imapCfg imap.Config
	fs.DurationVar(&imapCfg.IdleTimeout, "imap-idle-timeout", 0, "autologout of a logged-in IMAP session without a command (0: 30m)")
	fs.DurationVar(&imapCfg.IdleCommandTimeout, "imap-idle-command-timeout", 0, "longest IMAP IDLE (0: 30m)")
	var pop3Cfg pop3.Config
	fs.DurationVar(&pop3Cfg.CommandTimeout, "pop3-command-timeout", 0, "time a logged-in POP3 client has for each command (0: 10m)")
	fs.DurationVar(&pop3Cfg.MaxSession, "pop3-max-session", 0, "longest POP3 session (0: 1h)")
	fs.Var(&anyFrom, "any-from", "user address, or @domain, that may submit mail with any From:; repeatable")
	if err := fs.Parse(args); err != nil {
		return err
	}
	passwords.MaxMemory = *passwordMiB << 20
	smtpCfg.AnyFrom = anyFrom
	fresh := false
	if _, err := os.Stat(filepath.Join(*data, "userdb")); errors.Is(err, os.ErrNotExist) {
		fresh = true
	}
	if err := os.MkdirAll(*data, 0o700); err != nil {
		return err
	}
	cert, err := loadOrMakeCert(*data, *certFile, *keyFile, *hostname)
	if err != nil {
		return err
	}
	sys, err := mailsys.Open(ctx, mailsys.Config{
		DataDir:           *data,
		Hostname:          *hostname,
		SMTPAddr:          *smtpAddr,
		SubmissionAddr:    *subAddr,
		SubmissionTLSAddr: *subTLSAddr,
		IMAPAddr:          *imapAddr,
		IMAPTLSAddr:       *imapTLSAddr,
		POP3Addr:          *pop3Addr,
		POP3TLSAddr:       *pop3TLSAddr,
		TLS:               &tls.Config{Certificates: []tls.Certificate{cert}},
		InsecureAuth:      *insecureAuth,
		Access:            access,
		Passwords:         passwords,
		SMTP:              smtpCfg,
		IMAP:              imapCfg,
		POP3:              pop3Cfg,
		RunAs:             *runAs,
		AllowRoot:         *allowRoot,
		Logger:            log,
	})
	if err != nil {
		return err
	}
	shutdown := func() error {
		c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		return sys.Shutdown(c)
	}
	for _, u := range users {
		addr, pw, ok := strings.Cut(u, ":")
		if !ok || pw == "" {
			shutdown()
			return fmt.Errorf("-user %q: want EMAIL:PASSWORD", u)
		}
		created, err := sys.EnsureUser(ctx, addr, pw)
		if err != nil {
			shutdown()
			return fmt.Errorf("-user %s: %w", addr, err)
		}
		log.Info("user", "address", addr, "created", created)
	}
	if fresh && len(users) == 0 {
		pw := randomPassword()
		if _, err := sys.EnsureUser(ctx, "demo@"+*hostname, pw); err != nil {
			shutdown()
			return err
		}
		fmt.Printf("demo user: demo@%s password: %s\n", *hostname, pw)
	}
	if err := sys.Start(ctx); err != nil {
		shutdown()
		return err
	}
	var addrs []string
	for _, a := range sys.Addrs() {
		addrs = append(addrs, a.String())
	}
	log.Info("mailsys ready", "listeners", strings.Join(addrs, ","), "data", *data)
	<-ctx.Done()
	log.Info("shutting down")
	return shutdown()
}

func randomPassword() string {
	b := make([]byte, 9)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// loadOrMakeCert loads the given certificate, or the self-signed one in the
// data directory, making it on first use.
func loadOrMakeCert(data, certFile, keyFile, host string) (tls.Certificate, error) {
	if certFile != "" || keyFile != "" {
		return tls.LoadX509KeyPair(certFile, keyFile)
	}
	certFile, keyFile = filepath.Join(data, "tls-cert.pem"), filepath.Join(data, "tls-key.pem")
	if c, err := tls.LoadX509KeyPair(certFile, keyFile); err == nil {
		return c, nil
	}
	cert, err := selfsigned.New(host, 5*365*24*time.Hour)
	if err != nil {
		return tls.Certificate{}, err
	}
	der := cert.Certificate[0]
	kb, err := x509.MarshalECPrivateKey(cert.PrivateKey.(*ecdsa.PrivateKey))
	if err != nil {
		return tls.Certificate{}, err
	}
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		return tls.Certificate{}, err
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		return tls.Certificate{}, err
	}
	return tls.LoadX509KeyPair(certFile, keyFile)
}
