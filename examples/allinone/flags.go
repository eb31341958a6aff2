package main

import (
	"cmp"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"net"
	"strings"
	"time"
	"unicode"

	"github.com/mailsys/mailsys"
	"github.com/mailsys/mailsys/userdata"
)

// options is the command line and the configuration file, parsed and
// checked.
type options struct {
	cfg               mailsys.Config // without TLS and Logger
	certFile, keyFile string
	users             userFlags     // -user, after the file's
	fileUsers         []userEntry   // [[users]]
	domains           []domainEntry // [[domains]]
	listeners         []listenerFlag

	configFile  string
	inFile      map[string]bool // the keys the file has
	refused     map[string]bool // the file's keys refused, as its problems name them
	set         map[string]bool // the flags the command line gives
	passwordMiB int64
	anyFrom     fromFlags

	outbound, dkim, verify bool           // -outbound, -dkim, -verify: false turns each off
	transports             transportFlags // -transport, replacing the file's outbound.transports
	smartHost              smartHost      // -smarthost..., over the file's [outbound.smarthost]
}

// listenerFlag is a listener's flag: its name, which is also the
// service's in the ready line and its key in the file's [listen], and
// the address it was given.
type listenerFlag struct {
	name string
	addr *string
}

// usageError is a command line or a configuration file refused before
// anything was done, its problems (and the usage, for a command line)
// printed: the flag package's exit status 2.
type usageError struct{ error }

func (e usageError) Unwrap() error { return e.error }

// parseFlags parses and checks the command line, and the configuration
// file -config names, and reads the smart host's password file, without
// writing anything. The command line's flags override the file, whose
// keys override the flags' defaults. It returns flag.ErrHelp for -h or
// -help, and a usageError, once the problems are printed, for a command
// line or file it refuses.
func parseFlags(args []string) (*options, error) {
	o, fs := newOptions()
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		return nil, usageError{err} // the flag package said it, with the usage
	}
	var fileProblems []string
	if file := o.configFile; file != "" {
		// Again, in order: the flags' defaults, the file over them, then
		// the command line (parsed without error above) over the file.
		o, fs = newOptions()
		fileProblems = o.loadFile(file)
		fs.Parse(args)
	}
	fs.Visit(func(f *flag.Flag) { o.set[f.Name] = true })
	c := &o.cfg
	if o.set["password-memory"] {
		c.Passwords.MaxMemory = o.passwordMiB << 20
	}
	if o.set["any-from"] {
		c.SMTP.AnyFrom = o.anyFrom
	}
	if o.set["transport"] {
		c.Outbound.Transports = o.transports
	}
	c.DisableOutbound, c.DisableDKIM, c.DisableVerify = !o.outbound, !o.dkim, !o.verify
	if a := &c.UserDBConfig.Argon2; *a != (userdata.Argon2Params{}) {
		// Set in part by the file: the rest keeps its default.
		d := userdata.DefaultArgon2()
		a.Time, a.Memory, a.Threads = cmp.Or(a.Time, d.Time), cmp.Or(a.Memory, d.Memory), cmp.Or(a.Threads, d.Threads)
	}
	if err := o.check(fs, fileProblems); err != nil {
		fmt.Fprintln(fs.Output(), err)
		if o.configFile == "" {
			fs.Usage()
		}
		return nil, usageError{err}
	}
	return o, nil
}

// newOptions returns options holding the flags' defaults, and the flags,
// bound to them.
func newOptions() (*options, *flag.FlagSet) {
	o := &options{inFile: map[string]bool{}, refused: map[string]bool{}, set: map[string]bool{}}
	o.outbound, o.dkim, o.verify, o.smartHost.tls = true, true, true, tlsSTARTTLS
	c := &o.cfg
	fs := flag.NewFlagSet("allinone", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage of allinone:
  allinone [-config FILE] [flag ...]
The flags given override the -config file's keys (TOML: see mailsys.toml
beside allinone's source), which override the flags' defaults.
The users' mail for other domains goes out through the outbound queue
(DATA/queue), signed with DKIM (keys in DATA/dkim; the TXT records to
publish are printed at start): to the domain's MX hosts, or to the host
-transport names for it, or to the -smarthost.
`)
		fs.PrintDefaults()
	}
	fs.StringVar(&o.configFile, "config", "", "configuration `file` (TOML) under the flags given")
	fs.StringVar(&c.DataDir, "data", "./mailsys-data", "data directory")
	fs.StringVar(&c.Hostname, "hostname", "localhost", "host name the servers announce")
	fs.StringVar(&c.SMTPAddr, "smtp", "127.0.0.1:2525", "inbound SMTP listener address (empty: off)")
	fs.StringVar(&c.SubmissionAddr, "submission", "127.0.0.1:2587", "submission listener address, authentication after STARTTLS (empty: off)")
	fs.StringVar(&c.SubmissionTLSAddr, "submissions", "127.0.0.1:2465", "implicit-TLS submission listener address (empty: off)")
	fs.StringVar(&c.IMAPAddr, "imap", "127.0.0.1:1143", "IMAP listener address, STARTTLS (empty: off)")
	fs.StringVar(&c.IMAPTLSAddr, "imaps", "127.0.0.1:1993", "implicit-TLS IMAP listener address (empty: off)")
	fs.StringVar(&c.POP3Addr, "pop3", "127.0.0.1:1110", "POP3 listener address, STLS (empty: off)")
	fs.StringVar(&c.POP3TLSAddr, "pop3s", "127.0.0.1:1995", "implicit-TLS POP3 listener address (empty: off)")
	fs.StringVar(&c.AdminAddr, "admin", "", "administration API listener address, e.g. 127.0.0.1:8080 (HTTPS off loopback; empty: off)")
	// In the order mailsys.System binds them, which is that of its Addrs.
	o.listeners = []listenerFlag{{"smtp", &c.SMTPAddr}, {"submission", &c.SubmissionAddr}, {"submissions", &c.SubmissionTLSAddr},
		{"imap", &c.IMAPAddr}, {"imaps", &c.IMAPTLSAddr}, {"pop3", &c.POP3Addr}, {"pop3s", &c.POP3TLSAddr}, {"admin", &c.AdminAddr}}
	fs.BoolVar(&c.InsecureAuth, "insecure-auth", false, "let IMAP and POP3 clients log in with plain-text passwords before TLS (testing only)")
	fs.StringVar(&o.certFile, "tls-cert", "", "TLS certificate (PEM); without it a self-signed one is made in the data directory, as "+certFileName)
	fs.StringVar(&o.keyFile, "tls-key", "", "TLS key (PEM)")
	fs.Var(&o.users, "user", "EMAIL:PASSWORD to create or update; repeatable, after the file's [[users]]")
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
	fs.Int64Var(&o.passwordMiB, "password-memory", 0, "MiB the running password checks may use together (0: 512)")
	fs.DurationVar(&c.SMTP.MaxSession, "smtp-max-session", 0, "longest SMTP session (0: 30m)")
	fs.DurationVar(&c.SMTP.DataTimeout, "smtp-data-timeout", 0, "longest transfer of one message (0: 10m)")
	fs.DurationVar(&c.SMTP.LoginTimeout, "submission-login-timeout", 0, "time a submission client has to log in (0: 1m)")
	fs.IntVar(&c.SMTP.MaxUnknownRecipients, "max-unknown-recipients", 0, "unknown recipients after which a session is closed (0: 20)")
	fs.DurationVar(&c.IMAP.IdleTimeout, "imap-idle-timeout", 0, "autologout of a logged-in IMAP session without a command (0: 30m)")
	fs.DurationVar(&c.IMAP.IdleCommandTimeout, "imap-idle-command-timeout", 0, "longest IMAP IDLE (0: 30m)")
	fs.DurationVar(&c.POP3.CommandTimeout, "pop3-command-timeout", 0, "time a logged-in POP3 client has for each command (0: 10m)")
	fs.DurationVar(&c.POP3.MaxSession, "pop3-max-session", 0, "longest POP3 session (0: 1h)")
	fs.Var(&o.anyFrom, "any-from", "user address, or @domain, that may submit mail with any From:; repeatable, replacing the file's any_from")
	fs.BoolVar(&o.outbound, "outbound", true, "send the users' mail for other domains through the outbound queue (false: submission refuses them)")
	fs.BoolVar(&o.dkim, "dkim", true, "sign outbound mail with DKIM")
	fs.BoolVar(&o.verify, "verify", true, "check incoming mail's SPF, DKIM and DMARC on the smtp listener")
	fs.Var(&o.transports, "transport", "a route: `DOMAIN=HOST:PORT` sends DOMAIN's mail to HOST:PORT, not to its MX hosts; repeatable, replacing the file's outbound.transports")
	sh := &o.smartHost
	fs.Var(hostPort{&sh.addr}, "smarthost", "`HOST:PORT` to send the mail of other domains to (those of -smarthost-domains only, if set), but for -transport's")
	fs.StringVar(&sh.user, "smarthost-user", "", "user name to log in to the smart host with (AUTH PLAIN, over TLS verified for its name), with -smarthost-password-file")
	fs.StringVar(&sh.passwordFile, "smarthost-password-file", "", "`file` holding the smart host's password, one line")
	fs.Var(tlsMode{&sh.tls}, "smarthost-tls", "TLS `mode` with the smart host: starttls, or implicit (at once, as on port 465)")
	fs.Var(domainList{&sh.domains}, "smarthost-domains", "comma-separated `domains` whose mail goes to the smart host (empty: all)")
	return o, fs
}

// check reports every problem of the parsed command line and file that
// their own parsing does not see, after fileProblems, those of the
// file's parsing. Each names the flag or the file's key that says it. It
// sets the smart host in o.cfg (setSmartHost) when it has no problem.
func (o *options) check(fs *flag.FlagSet, fileProblems []string) error {
	var errs []error
	for _, p := range fileProblems {
		errs = append(errs, errors.New(p))
	}
	if fs.NArg() > 0 {
		errs = append(errs, fmt.Errorf("unexpected argument %q (flags only)", fs.Arg(0)))
	}
	if o.cfg.DataDir == "" {
		errs = append(errs, fmt.Errorf("%s: empty", o.origin("data", "data_dir")))
	}
	if h := o.cfg.Hostname; h == "" || strings.IndexFunc(h, badRune) >= 0 {
		errs = append(errs, fmt.Errorf("%s %q: want a host name", o.origin("hostname", "hostname"), h))
	}
	if (o.certFile == "") != (o.keyFile == "") {
		errs = append(errs, fmt.Errorf("%s and %s go together", o.origin("tls-cert", "tls.cert"), o.origin("tls-key", "tls.key")))
	}
	if o.passwordMiB < 0 {
		errs = append(errs, fmt.Errorf("-password-memory %d: negative", o.passwordMiB))
	}
	for _, l := range o.listeners {
		if *l.addr == "" {
			continue
		}
		if _, port, err := net.SplitHostPort(*l.addr); err != nil || port == "" {
			errs = append(errs, fmt.Errorf("%s %q: want HOST:PORT, or empty for none", o.origin(l.name, "listen."+l.name), *l.addr))
		}
	}
	fs.VisitAll(func(f *flag.Flag) {
		if g, ok := f.Value.(flag.Getter); ok {
			if d, ok := g.Get().(time.Duration); ok && d < 0 {
				errs = append(errs, fmt.Errorf("-%s %v: negative", f.Name, d))
			}
		}
	})
	errs = append(errs, o.checkEntries()...)
	errs = append(errs, o.setSmartHost()...)
	if len(errs) == 0 {
		// What only the whole configuration shows (an address given
		// twice, a store's sizes that do not fit together), as Open will
		// see it: with TLS, which allinone always has.
		cfg := o.cfg
		cfg.TLS = &tls.Config{}
		if err := cfg.Validate(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// checkEntries checks the file's [[domains]] and [[users]].
func (o *options) checkEntries() []error {
	var errs []error
	// A key refused already is not said again.
	bad := func(key string, ok bool) bool { return !ok && !o.refused[key] }
	for i, d := range o.domains {
		key := fmt.Sprintf("domains[%d].", i+1)
		if bad(key+"name", d.Name != "" && checkAddress("postmaster@"+d.Name) == nil) {
			errs = append(errs, fmt.Errorf("%s: %sname %q: want a domain name", o.configFile, key, d.Name))
		}
		if bad(key+"quota", d.Quota >= 0) {
			errs = append(errs, fmt.Errorf("%s: %squota %d: negative", o.configFile, key, d.Quota))
		}
	}
	for i, u := range o.fileUsers {
		key := fmt.Sprintf("users[%d].", i+1)
		if err := checkAddress(u.Address); bad(key+"address", err == nil) {
			if u.Address == "" {
				err = errors.New("empty or missing")
			}
			errs = append(errs, fmt.Errorf("%s: %saddress: %w", o.configFile, key, err))
		}
		if bad(key+"password", u.Password != "") {
			errs = append(errs, fmt.Errorf("%s: %spassword: empty or missing", o.configFile, key))
		}
	}
	return errs
}

// origin names a setting as it was given: as the flag, unless the file
// gave it and the command line did not.
func (o *options) origin(flagName, key string) string {
	if o.inFile[key] && !o.set[flagName] {
		return o.configFile + ": " + key
	}
	return "-" + flagName
}

// userFlags collects -user EMAIL:PASSWORD values, checked as they are set.
type userFlags []userEntry

func (u *userFlags) String() string {
	var addrs []string
	for _, e := range *u {
		addrs = append(addrs, e.Address)
	}
	return strings.Join(addrs, ",")
}

func (u *userFlags) Set(v string) error {
	addr, pw, ok := strings.Cut(v, ":")
	if !ok || pw == "" {
		return errors.New("want EMAIL:PASSWORD")
	}
	if err := checkAddress(addr); err != nil {
		return err
	}
	*u = append(*u, userEntry{addr, pw})
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
