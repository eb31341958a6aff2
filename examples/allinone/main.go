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
// and neither the configuration file nor -user gives one, it creates a
// demo user and prints its address and password. It logs a line with
// "ready", naming each listener's address, once it accepts connections,
// and shuts down cleanly on SIGINT or SIGTERM.
//
// With -admin ADDR it also serves the administration API (package
// admin) there: on its first start it makes a system administrator,
// postmaster@HOSTNAME, and prints its password.
//
// # Outbound mail
//
// The mail its users submit for other domains goes to the outbound queue
// (in the data directory, as queue; the log says where), which sends it to
// each domain's MX hosts; -transport DOMAIN=HOST:PORT (repeatable, as
// Postfix's transport_maps) sends a domain's mail to a host of its own
// instead, and -smarthost HOST:PORT the mail of every other domain, or of
// -smarthost-domains only, logging in with -smarthost-user and the one
// line of -smarthost-password-file (never a password on the command line,
// which ps shows) over TLS, STARTTLS or -smarthost-tls implicit. That
// mail is signed with DKIM, with keys per local domain made on first use
// in the data directory, as dkim: at each start it prints, for each
// domain it creates or gives users to, the TXT records to publish in that
// domain's DNS, as zone file lines. The mail the smtp listener receives
// is checked (SPF, DKIM, DMARC). -outbound=false turns the queue off
// (submission then refuses other domains' recipients), -dkim=false the
// signing, -verify=false the checks.
//
// # Configuration file
//
// With -config FILE it reads a TOML file that can say everything
// mailsys.Config can, and the domains and users to create:
//
//	go run ./examples/allinone -config examples/allinone/mailsys.toml
//
// mailsys.toml, beside this file, is the annotated sample: every key, with
// what it means and its default (so that, as it is, it changes nothing).
// Its layout:
//
//	data_dir, hostname, insecure_auth, run_as, allow_root
//	[listen]          smtp, submission, submissions, imap, imaps, pop3, pop3s, admin
//	[tls]             cert, key
//	[store]           volume_size, max_body_size, spool_memory, no_sync, compact_ratio, node
//	[[store.dirs]]    path, weight, masked
//	[userdb]          dir, node, cache_size, memtable_size, login_cache, login_cache_ttl,
//	                  no_sync, mirror, disk_reserve
//	[userdb.argon2]   time, memory, threads
//	[txlog]           dir, segment_size, max_body_size
//	[access]          allow, deny, max_conns, max_conns_per_listener, max_conns_per_ip,
//	                  auth_failures, addr_auth_failures, account_failures,
//	                  account_delay, auth_window, lockout, max_tracked
//	[passwords]       max_checks, max_memory, max_waiting, max_wait
//	[smtp]            max_message_size, max_recipients, max_unknown_recipients,
//	                  read_timeout, data_timeout, login_timeout, max_session,
//	                  write_timeout, any_from
//	[imap]            max_append_size, preauth_timeout, preauth_bytes, idle_timeout,
//	                  idle_command_timeout
//	[pop3]            login_timeout, command_timeout, max_session, write_timeout
//	[outbound]        enabled, dir, transports
//	[outbound.smarthost] address, user, password_file, tls, domains
//	[dkim]            enabled, dir
//	[verify]          enabled
//	[[domains]]       name, quota: created, or given this quota, at each start
//	[[users]]         address, password: created, or given this password, at each start
//
// Sizes are bytes, an integer or a string with a unit ("64MiB");
// durations are strings such as "5m". The flags given on the command line
// override the file (-any-from replaces smtp.any_from, -transport
// outbound.transports; -user adds to [[users]], its password winning for
// an address in both); a key the file leaves out keeps its flag's default.
//
// Without a certificate (-tls-cert and -tls-key, or [tls]) it makes a
// self-signed one for localhost, 127.0.0.1, ::1 and the host name, in the
// data directory as tls-cert.pem, which clients that verify certificates
// can be told to trust.
//
// Every flag and the whole file are checked before anything is written: a
// command line or a file it refuses exits with status 2, saying every
// problem it found (for the file each names the key, and its line where
// toml knows it: not inside [[...]] tables), as -help exits with 0 after
// the usage.
//
// Started as root, it binds its listeners and then serves as the user
// -run-as names, to whom the data directory then belongs; without -run-as it
// serves as root only on loopback addresses, unless -allow-root. Every
// limit of the servers has a key in the file, the common ones a flag too
// (-help lists them), with the defaults of the packages.
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
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/mailsys/mailsys"
	"github.com/mailsys/mailsys/admin"
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
	if len(o.fileUsers) > 0 {
		if fi, err := os.Stat(o.configFile); err == nil && fi.Mode().Perm()&0o077 != 0 {
			log.Warn("the configuration file holds passwords that others may read", "file", o.configFile, "mode", fi.Mode().Perm())
		}
	}
	if f := o.smartHost.passwordFile; f != "" {
		if fi, err := os.Stat(f); err == nil && fi.Mode().Perm()&0o077 != 0 {
			log.Warn("others may read the smart host's password file", "file", f, "mode", fi.Mode().Perm())
		}
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
	domains, err := ensureAccounts(ctx, sys, o, log)
	if err != nil {
		shutdown()
		return err
	}
	if err := ensureAdmin(ctx, sys, o.cfg.Hostname, log); err != nil {
		shutdown()
		return err
	}
	printDKIM(ctx, os.Stdout, sys, domains, log)
	logOutbound(sys, &cfg, log)
	if err := sys.Start(ctx); err != nil {
		shutdown()
		return err
	}
	log.Info("mailsys ready", readyAttrs(sys, o.listeners, cfg.DataDir)...)
	<-ctx.Done()
	log.Info("shutting down")
	return shutdown()
}

// ensureAccounts makes the file's domains, then its users and those of
// -user (so that one given twice ends with the command line's password),
// or, without any, the demo user. It returns the domains of them all, in
// lower case, each once, in that order: the local domains this start
// knows of (the UserDB cannot list its domains).
func ensureAccounts(ctx context.Context, sys *mailsys.System, o *options, log *slog.Logger) ([]string, error) {
	var domains []string
	add := func(d string) {
		if d = strings.ToLower(d); !slices.Contains(domains, d) {
			domains = append(domains, d)
		}
	}
	for _, d := range o.domains {
		created, err := ensureDomain(ctx, sys.UserDB(), d)
		if err != nil {
			return nil, fmt.Errorf("domain %s: %w", d.Name, err)
		}
		log.Info("domain", "name", d.Name, "quota", d.Quota, "created", created)
		add(d.Name)
	}
	users := slices.Concat(o.fileUsers, o.users)
	for _, u := range users {
		created, err := sys.EnsureUser(ctx, u.Address, u.Password)
		if err != nil {
			return nil, fmt.Errorf("user %s: %w", u.Address, err)
		}
		log.Info("user", "address", u.Address, "created", created)
		_, d, _ := strings.Cut(u.Address, "@")
		add(d)
	}
	if len(users) == 0 {
		demo, err := ensureDemoUser(ctx, sys, o.cfg.Hostname, log)
		if err != nil {
			return nil, err
		}
		if demo {
			add(o.cfg.Hostname)
		}
	}
	return domains, nil
}

// ensureDomain creates d, or gives it d's quota if it exists (its class
// and disabled state as they are). It reports whether it created it.
func ensureDomain(ctx context.Context, db userdata.UserDB, d domainEntry) (bool, error) {
	err := db.CreateDomain(ctx, userdata.Domain{Name: d.Name, Quota: d.Quota})
	if !errors.Is(err, userdata.ErrExists) {
		return err == nil, err
	}
	cur, err := db.Domain(ctx, d.Name)
	if err != nil || cur.Quota == d.Quota {
		return false, err
	}
	cur.Quota = d.Quota
	return false, db.UpdateDomain(ctx, cur)
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
// printed then being lost. It reports whether the demo user is there.
func ensureDemoUser(ctx context.Context, sys *mailsys.System, hostname string, log *slog.Logger) (bool, error) {
	demo := "demo@" + hostname
	// User ids start at 1 and are never reused, and the UserDB cannot
	// delete a user: it has none if it has no user 1. (It has no way to
	// list or count users yet.)
	_, err := sys.UserDB().User(ctx, 1)
	switch {
	case errors.Is(err, userdata.ErrNotFound):
		pw := randomPassword()
		if _, err := sys.EnsureUser(ctx, demo, pw); err != nil {
			return false, fmt.Errorf("demo user: %w", err)
		}
		fmt.Printf("demo user: %s password: %s\n", demo, pw)
		return true, nil
	case err != nil:
		return false, fmt.Errorf("looking for users: %w", err)
	}
	if _, err := sys.UserDB().LookupAddress(ctx, demo); err == nil {
		log.Info("the demo user is there from an earlier start; -user "+demo+":PASSWORD sets its password", "address", demo)
		return true, nil
	}
	return false, nil
}

// ensureAdmin makes postmaster@hostname a system administrator of the
// admin API, with a random password it prints, when the API is on and has
// none yet (its first start).
func ensureAdmin(ctx context.Context, sys *mailsys.System, hostname string, log *slog.Logger) error {
	a := sys.Admin()
	if a == nil {
		return nil
	}
	has, err := a.HasSystemAdmin()
	if err != nil || has {
		return err
	}
	addr := "postmaster@" + hostname
	pw := randomPassword()
	if _, err := sys.EnsureUser(ctx, addr, pw); err != nil {
		return fmt.Errorf("system administrator: %w", err)
	}
	if err := a.SetGrant(ctx, admin.Grant{User: addr, Role: admin.RoleSystem}); err != nil {
		return err
	}
	fmt.Printf("system administrator: %s password: %s\n", addr, pw)
	log.Info("administration API: log in as the system administrator printed above", "address", addr)
	return nil
}

func randomPassword() string {
	b := make([]byte, 9)
	rand.Read(b)
	return hex.EncodeToString(b)
}
