package main

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"strings"
	"time"
	"unicode"

	"github.com/mailsys/mailsys"
)

// options is the command line, parsed and checked.
type options struct {
	cfg               mailsys.Config // without TLS and Logger
	certFile, keyFile string
	users             userFlags
	listeners         []listenerFlag
}

// listenerFlag is a listener's flag: its name, which is also the
// service's in the ready line, and the address it was given.
type listenerFlag struct {
	name string
	addr *string
}

// usageError is a command line refused before anything was done, its
// problem and the usage printed: the flag package's exit status 2.
type usageError struct{ error }

func (e usageError) Unwrap() error { return e.error }

// parseFlags parses and checks the command line without touching the
// disk. It returns flag.ErrHelp for -h or -help, and a usageError, once
// the problem and the usage are printed, for a command line it refuses.
func parseFlags(args []string) (*options, error) {
	o := &options{}
	c := &o.cfg
	fs := flag.NewFlagSet("allinone", flag.ContinueOnError)
	fs.StringVar(&c.DataDir, "data", "./mailsys-data", "data directory")
	fs.StringVar(&c.Hostname, "hostname", "localhost", "host name the servers announce")
	fs.StringVar(&c.SMTPAddr, "smtp", "127.0.0.1:2525", "inbound SMTP listener address (empty: off)")
	fs.StringVar(&c.SubmissionAddr, "submission", "127.0.0.1:2587", "submission listener address, authentication after STARTTLS (empty: off)")
	fs.StringVar(&c.SubmissionTLSAddr, "submissions", "127.0.0.1:2465", "implicit-TLS submission listener address (empty: off)")
	fs.StringVar(&c.IMAPAddr, "imap", "127.0.0.1:1143", "IMAP listener address, STARTTLS (empty: off)")
	fs.StringVar(&c.IMAPTLSAddr, "imaps", "127.0.0.1:1993", "implicit-TLS IMAP listener address (empty: off)")
	fs.StringVar(&c.POP3Addr, "pop3", "127.0.0.1:1110", "POP3 listener address, STLS (empty: off)")
	fs.StringVar(&c.POP3TLSAddr, "pop3s", "127.0.0.1:1995", "implicit-TLS POP3 listener address (empty: off)")
	// In the order mailsys.System binds them, which is that of its Addrs.
	o.listeners = []listenerFlag{{"smtp", &c.SMTPAddr}, {"submission", &c.SubmissionAddr}, {"submissions", &c.SubmissionTLSAddr},
		{"imap", &c.IMAPAddr}, {"imaps", &c.IMAPTLSAddr}, {"pop3", &c.POP3Addr}, {"pop3s", &c.POP3TLSAddr}}
	fs.BoolVar(&c.InsecureAuth, "insecure-auth", false, "let IMAP and POP3 clients log in with plain-text passwords before TLS (testing only)")
	fs.StringVar(&o.certFile, "tls-cert", "", "TLS certificate (PEM); without it a self-signed one is made in the data directory, as "+certFileName)
	fs.StringVar(&o.keyFile, "tls-key", "", "TLS key (PEM)")
	fs.Var(&o.users, "user", "EMAIL:PASSWORD to create or update; repeatable")
	fs.StringVar(&c.RunAs, "run-as", "", "USER[:GROUP] to serve as once the listeners are bound, when started as root")
	fs.BoolVar(&c.AllowRoot, "allow-root", false, "serve as root on non-loopback addresses (without -run-as)")
	a := &c.Access
	fs.IntVar(&a.MaxConns, "max-conns", 0, "connections open at once over every listener (0: below the open-file limit)")
	fs.IntVar(&a.MaxConnsPerListener, "max-conns-per-listener", 0, "connections open at once on one listener (0: no bound of its own)")
	fs.IntVar(&a.MaxConnsPerIP, "max-conns-per-ip", 0, "connections open at once from one address on one listener (0: 20)")
	fs.IntVar(&a.AuthFailures, "auth-failures", 0, "failed logins from one address for one account that lock that address out of it (0: 5)")
	fs.IntVar(&a.AddrAuthFailures, "addr-auth-failures", 0, "failed logins from one address for any accounts that lock it out of all (0: 20)")
	fs.IntVar(&a.AccountFailures, "account-failures", 0, "failed logins for one account, from anywhere, before its failures are answered slowly (0: 10)")
	fs.DurationVar(&a.Lockout, "lockout", 0, "how long a lockout lasts (0: 15m)")
	fs.IntVar(&c.Passwords.MaxChecks, "password-checks", 0, "password checks (argon2id) running at once (0: the number of CPUs)")
	passwordMiB := fs.Int64("password-memory", 0, "MiB the running password checks may use together (0: 512)")
	fs.DurationVar(&c.SMTP.MaxSession, "smtp-max-session", 0, "longest SMTP session (0: 30m)")
	fs.DurationVar(&c.SMTP.DataTimeout, "smtp-data-timeout", 0, "longest transfer of one message (0: 10m)")
	fs.DurationVar(&c.SMTP.LoginTimeout, "submission-login-timeout", 0, "time a submission client has to log in (0: 1m)")
	fs.IntVar(&c.SMTP.MaxUnknownRecipients, "max-unknown-recipients", 0, "unknown recipients after which a session is closed (0: 20)")
	fs.DurationVar(&c.IMAP.IdleTimeout, "imap-idle-timeout", 0, "autologout of a logged-in IMAP session without a command (0: 30m)")
	fs.DurationVar(&c.IMAP.IdleCommandTimeout, "imap-idle-command-timeout", 0, "longest IMAP IDLE (0: 30m)")
	fs.DurationVar(&c.POP3.CommandTimeout, "pop3-command-timeout", 0, "time a logged-in POP3 client has for each command (0: 10m)")
	fs.DurationVar(&c.POP3.MaxSession, "pop3-max-session", 0, "longest POP3 session (0: 1h)")
	var anyFrom fromFlags
	fs.Var(&anyFrom, "any-from", "user address, or @domain, that may submit mail with any From:; repeatable")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		return nil, usageError{err} // the flag package said it, with the usage
	}
	if err := o.check(fs, *passwordMiB); err != nil {
		fmt.Fprintln(fs.Output(), err)
		fs.Usage()
		return nil, usageError{err}
	}
	c.Passwords.MaxMemory = *passwordMiB << 20
	c.SMTP.AnyFrom = anyFrom
	return o, nil
}

// check reports every problem of the parsed command line that the flags'
// own parsing does not see.
func (o *options) check(fs *flag.FlagSet, passwordMiB int64) error {
	var errs []error
	if fs.NArg() > 0 {
		errs = append(errs, fmt.Errorf("unexpected argument %q (flags only)", fs.Arg(0)))
	}
	if o.cfg.DataDir == "" {
		errs = append(errs, errors.New("-data: empty"))
	}
	if h := o.cfg.Hostname; h == "" || strings.IndexFunc(h, badRune) >= 0 {
		errs = append(errs, fmt.Errorf("-hostname %q: want a host name", h))
	}
	if (o.certFile == "") != (o.keyFile == "") {
		errs = append(errs, errors.New("-tls-cert and -tls-key go together"))
	}
	if passwordMiB < 0 {
		errs = append(errs, fmt.Errorf("-password-memory %d: negative", passwordMiB))
	}
	for _, l := range o.listeners {
		if *l.addr == "" {
			continue
		}
		if _, port, err := net.SplitHostPort(*l.addr); err != nil || port == "" {
			errs = append(errs, fmt.Errorf("-%s %q: want HOST:PORT, or empty for none", l.name, *l.addr))
		}
	}
	fs.VisitAll(func(f *flag.Flag) {
		if g, ok := f.Value.(flag.Getter); ok {
			if d, ok := g.Get().(time.Duration); ok && d < 0 {
				errs = append(errs, fmt.Errorf("-%s %v: negative", f.Name, d))
			}
		}
	})
	return errors.Join(errs...)
}

// userFlags collects -user EMAIL:PASSWORD values, checked as they are set.
type userFlags []string

func (u *userFlags) String() string { return strings.Join(*u, ",") }
func (u *userFlags) Set(v string) error {
	addr, pw, ok := strings.Cut(v, ":")
	if !ok || pw == "" {
		return errors.New("want EMAIL:PASSWORD")
	}
	if err := checkAddress(addr); err != nil {
		return err
	}
	*u = append(*u, v)
	return nil
}

// fromFlags collects -any-from values: addresses or @domain.
type fromFlags []string

func (f *fromFlags) String() string { return strings.Join(*f, ",") }
func (f *fromFlags) Set(v string) error {
	addr := v
	if d, ok := strings.CutPrefix(v, "@"); ok {
		addr = "x@" + d
	}
	if err := checkAddress(addr); err != nil {
		return fmt.Errorf("want an address or @domain: %w", err)
	}
	*f = append(*f, v)
	return nil
}

// checkAddress checks the shape of an email address: a local part and a
// domain, without white space or control characters. The UserDB has the
// last word on the rest.
func checkAddress(addr string) error {
	local, domain, ok := strings.Cut(addr, "@")
	switch {
	case !ok || local == "" || domain == "":
		return fmt.Errorf("%q is not an address (want NAME@DOMAIN)", addr)
	case strings.Contains(domain, "@") || strings.IndexFunc(addr, badRune) >= 0:
		return fmt.Errorf("%q is not an address", addr)
	}
	return nil
}

// badRune reports whether r has no place in a host name or an address.
func badRune(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }
