package mailsys

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"

	"github.com/mailsys/mailsys/admin"
	"github.com/mailsys/mailsys/imap"
	"github.com/mailsys/mailsys/metrics"
	"github.com/mailsys/mailsys/msstore"
	"github.com/mailsys/mailsys/mta"
	"github.com/mailsys/mailsys/mta/mailauth"
	"github.com/mailsys/mailsys/mta/queue"
	"github.com/mailsys/mailsys/mta/resolve"
	"github.com/mailsys/mailsys/pop3"
	"github.com/mailsys/mailsys/txlog"
	"github.com/mailsys/mailsys/userdata"
)

// Config says what a System runs. Its zero value is not enough: DataDir
// (or all three backends) must be set. Every other zero field means its
// default, so a host program sets only what it changes; [DefaultConfig]
// spells the defaults out.
type Config struct {
	// DataDir holds the files of the embedded backends (store/, userdb/
	// and txlog/ below it) and the System's own. It is required unless
	// Storage, UserDB and TxLog are all given.
	DataDir string
	// Hostname is the name the servers announce and the UserDB records as
	// this node's. Zero means "localhost".
	Hostname string

	// Storage holds the message bodies. Nil means the embedded volume
	// store (msstore.Volumes) under DataDir/store, configured by
	// StoreConfig. A Storage given here is the host program's: the System
	// uses it but does not close it.
	Storage msstore.Storage
	// UserDB holds the accounts, folders and message index. Nil means the
	// embedded Pebble database (userdata.DB) under DataDir/userdb,
	// configured by UserDBConfig, with AutoRepair on against the Storage.
	// A UserDB given here keeps its own body reference counting (it should
	// count against Storage) and is not closed by the System.
	UserDB UserDB
	// TxLog is the delivery transaction log: an SMTP 250 is sent once a
	// message is in it. Nil means the embedded log (txlog.Log) under
	// DataDir/txlog, configured by TxLogConfig. A TxLog given here is not
	// closed by the System.
	TxLog mta.TxLog

	// StoreConfig configures the embedded Storage: data directories with
	// their weights and masks, volume size, body size limit. Empty Dirs
	// means the one directory DataDir/store; a nil Logger means Logger.
	// It is not used when Storage is given.
	StoreConfig msstore.Config
	// UserDBConfig configures the embedded UserDB: Pebble's cache, the
	// login cache, the password hashing cost, the hot-standby Mirror
	// directory, the disk reserve. Empty Dir means DataDir/userdb, empty
	// Node means Hostname, a nil Logger means Logger; its Bodies and
	// PasswordLimiter are the System's. It is not used when UserDB is
	// given.
	UserDBConfig userdata.Config
	// TxLogConfig configures the embedded TxLog. Empty Dir means
	// DataDir/txlog; a nil Logger means Logger. It is not used when TxLog
	// is given.
	TxLogConfig txlog.Config

	// SMTPAddr is the inbound (MX) SMTP listener's address, such as
	// "127.0.0.1:2525"; empty turns it off.
	SMTPAddr string
	// SubmissionAddr is the submission listener's address, such as
	// "127.0.0.1:2587" (authentication over STARTTLS); empty turns it off.
	SubmissionAddr string
	// SubmissionTLSAddr is the implicit-TLS submission listener's address
	// (RFC 8314, "submissions", usually port 465); it needs TLS. Empty
	// turns it off.
	SubmissionTLSAddr string
	// IMAPAddr is the IMAP listener's address, such as "127.0.0.1:1143"
	// (STARTTLS when TLS is set; it needs TLS or InsecureAuth, or nobody
	// could log in); empty turns it off.
	IMAPAddr string
	// IMAPTLSAddr is the implicit-TLS IMAP listener's address (usually
	// port 993); it needs TLS. Empty turns it off.
	IMAPTLSAddr string
	// POP3Addr is the POP3 listener's address, such as "127.0.0.1:1110"
	// (STLS when TLS is set; it needs TLS or InsecureAuth, or nobody could
	// log in); empty turns it off.
	POP3Addr string
	// POP3TLSAddr is the implicit-TLS POP3 listener's address (usually port
	// 995); it needs TLS. Empty turns it off.
	POP3TLSAddr string
	// AdminAddr is the administration API's listener (package admin:
	// JSON under /api/v1/, the web admin under /admin/, /metrics,
	// /debug/pprof/), such as "127.0.0.1:8080": plain HTTP on a loopback
	// address, HTTPS with TLS on any other (which then needs TLS). Empty
	// turns it off. The API keeps its own database in DataDir/admin,
	// counts the deliveries, submissions and active users of each domain
	// and unit (it is the Observer and Logins when they are nil), and
	// serves Metrics, made when Metrics is nil. It
	// needs a UserDB that can list (userdata.Lister), as the embedded one
	// and cluster.Users can.
	AdminAddr string
	// Admin configures the API beyond its listener. The System fills
	// what is zero: DataDir (DataDir/admin), Users, TLS (Config.TLS,
	// hardened, off loopback), Metrics, Queue (the outbound queue), DKIM
	// (the signer) and Logger. Cluster and Events are the host's: a
	// cluster's front node sets them.
	Admin admin.Config
	// TLS, if set, enables STARTTLS (STLS in POP3) and the implicit-TLS
	// listeners, for every listener. The System hardens a copy of it
	// (TLS 1.2 or later, AEAD suites only).
	TLS *tls.Config
	// InsecureAuth lets IMAP and POP3 clients log in with a plain-text
	// password before TLS; for tests and loopback-only setups.
	InsecureAuth bool
	// Access holds the allow and deny lists, the bounds on connections
	// (over all listeners, per listener, per address on a listener) and the
	// rules for failed logins, shared by every listener. The zero value
	// means mta's defaults (see mta.GuardConfig).
	Access mta.GuardConfig
	// Passwords bounds the password checks (argon2id) that logins on every
	// listener make at once, by count and by memory; past a short queue a
	// login is answered with its protocol's "try again later". Logins the
	// login cache answers never wait. The zero value means userdata's
	// defaults (see userdata.PasswordLimiterConfig). It bounds the
	// embedded UserDB; a UserDB given in Config brings its own bound.
	Passwords userdata.PasswordLimiterConfig
	// SMTP holds the SMTP listeners' limits and timeouts (sizes, recipients,
	// deadlines, AnyFrom); zero fields mean mta's defaults. Its Hostname,
	// TLS, Guard, Filter and Logger are the System's and are ignored.
	SMTP mta.InboundConfig
	// IMAP holds the IMAP server's limits and timeouts; zero fields mean
	// imap's defaults. Its TLS, InsecureAuth, Guard and Logger are the
	// System's and are ignored.
	IMAP imap.Config
	// POP3 holds the POP3 server's limits and timeouts; zero fields mean
	// pop3's defaults. Its Hostname, TLS, InsecureAuth, Guard and Logger
	// are the System's and are ignored.
	POP3 pop3.Config
	// RunAs, as "user" or "user:group", is who the System serves as once
	// its listeners are bound, when started as root (so it may bind ports
	// below 1024): Start makes DataDir that user's, then drops root for
	// every thread (setgroups, setgid, setuid). The user needs to reach
	// DataDir (search permission on its parents). Empty means no change.
	RunAs string
	// AllowRoot lets the System serve as root. Without it (and without
	// RunAs) Start refuses to serve as root on any address that is not a
	// loopback one.
	AllowRoot bool
	// Resolver is the DNS of outbound delivery (MX, address and TLSA
	// lookups) and of the MX listener's checks (SPF, DKIM, DMARC). Nil
	// means the system's: resolve.System, the name servers of
	// /etc/resolv.conf (a validating resolver there makes DANE work).
	Resolver resolve.Resolver
	// Outbound configures the outbound queue, which takes the submitted
	// mail for other domains and sends it to their MX hosts (or the
	// routes it names: a transport map, a smart host). Empty Dir means
	// DataDir/queue; empty Hostname means Hostname; nil Resolver,
	// Bounces, Signer and Logger mean the System's (its Resolver, its
	// Deliverer, its DKIM signer, Logger). DisableOutbound turns the
	// queue off: submission then refuses recipients of other domains. The
	// queue needs a directory: without DataDir and Outbound.Dir it is off.
	Outbound        queue.Config
	DisableOutbound bool
	// DKIM configures the signing of mail sent from the local domains
	// (ed25519 and RSA keys per domain, made on first use). Empty Dir
	// means DataDir/dkim; nil Domains means the UserDB's domains; nil
	// Logger means Logger. DisableDKIM turns signing off, as does a
	// missing directory (no DataDir, no DKIM.Dir).
	DKIM        mailauth.SignerConfig
	DisableDKIM bool
	// Verify configures the MX listener's checks of incoming mail (SPF,
	// DKIM, DMARC, and the Authentication-Results field). Its zero value
	// means mailauth.DefaultVerifierConfig (DMARC's reject refused,
	// quarantine filed in Junk); a Verify with any field set is taken as
	// it is, its booleans included, so start from DefaultConfig's (or
	// mailauth.DefaultVerifierConfig) to change one field. Nil Resolver
	// means the System's, empty Hostname means Hostname, nil Logger means
	// Logger. DisableVerify turns the checks off.
	Verify        mailauth.VerifierConfig
	DisableVerify bool
	// Filter, if set, sees every message before it is accepted (antispam,
	// antivirus): it can reject it, file it into Junk or add headers.
	Filter mta.Filter
	// Logger receives every component's logs. Nil means slog.Default().
	Logger *slog.Logger
	// Metrics, if set, receives every component's events and collects
	// the backends' figures at scrape time: the System passes its
	// implementations into the components' configs (where they have none
	// of their own) and points it at its queue, store and login cache.
	// Serve its Handler (System.Metrics) on the admin listener. Nil
	// turns metrics off.
	Metrics *metrics.Metrics
	// Observer, if set, is told of every message delivered to a local
	// user and every message a user submits (see mta.Observer), for
	// statistics per domain and unit.
	Observer mta.Observer
	// Logins, if set, is told of every login on the IMAP, POP3 and
	// submission listeners (where their configs have none of their
	// own), for statistics of active users.
	Logins userdata.LoginObserver
}

// DefaultConfig returns the configuration of an all-in-one System keeping
// its data in dataDir, with no listener: the embedded backends and the
// servers with every default of their packages spelled out (their
// DefaultConfig), but for the fields the System sets itself. Set the listeners' addresses (and
// TLS) before Open.
func DefaultConfig(dataDir string) Config {
	smtp := mta.DefaultInboundConfig()
	smtp.Hostname = "" // the System's: Config.Hostname
	outbound := queue.DefaultConfig(filepath.Join(dataDir, "queue"))
	outbound.Hostname = "" // the System's
	dkim := mailauth.DefaultSignerConfig(filepath.Join(dataDir, "dkim"))
	dkim.Logger = nil // the System's
	verify := mailauth.DefaultVerifierConfig()
	verify.Logger = nil // the System's
	return Config{
		DataDir:      dataDir,
		Hostname:     "localhost",
		StoreConfig:  msstore.DefaultConfig(filepath.Join(dataDir, "store")),
		UserDBConfig: userdata.DefaultConfig(filepath.Join(dataDir, "userdb")),
		TxLogConfig:  txlog.DefaultConfig(filepath.Join(dataDir, "txlog")),
		Passwords:    userdata.DefaultPasswordLimiterConfig(),
		SMTP:         smtp,
		IMAP:         imap.DefaultConfig(),
		POP3:         pop3.DefaultConfig(),
		Outbound:     outbound,
		DKIM:         dkim,
		Verify:       verify,
	}
}

// Validate reports every problem with c at once, each naming the field,
// the components' own configurations included. Open calls it before it
// touches the disk.
func (c Config) Validate() error {
	var errs []error
	add := func(field string, err error) {
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", field, err))
		}
	}
	if c.DataDir == "" && (c.Storage == nil || c.UserDB == nil || c.TxLog == nil) {
		errs = append(errs, errors.New("DataDir: required unless Storage, UserDB and TxLog are all given"))
	}
	if c.RunAs != "" && c.DataDir == "" {
		errs = append(errs, errors.New("RunAs: needs a DataDir to hand over"))
	}
	if c.Storage == nil {
		add("StoreConfig", c.storeConfig().Validate())
	}
	if c.UserDB == nil {
		add("UserDBConfig", c.userDBConfig(nil, nil).Validate())
		add("Passwords", c.Passwords.Validate())
	}
	if c.TxLog == nil {
		add("TxLogConfig", c.txLogConfig().Validate())
	}
	if c.serves(kindSMTP) || c.serves(kindSubmission) {
		add("SMTP", c.inboundConfig(c.TLS, nil).Validate())
	}
	add("Access", c.Access.Validate())
	if c.outbound() {
		add("Outbound", c.outboundConfig(nil).Validate())
	}
	if c.serves(kindIMAP) {
		add("IMAP", c.imapConfig(c.TLS, nil).Validate()) // it refuses an IMAP nobody could log in to
	}
	if c.serves(kindPOP3) {
		p := c.pop3Config(c.TLS, nil)
		add("POP3", p.Validate()) // it refuses a POP3 nobody could log in to
	}
	if c.RunAs != "" {
		name, group, _ := strings.Cut(c.RunAs, ":")
		if name == "" || strings.Contains(group, ":") {
			errs = append(errs, fmt.Errorf("RunAs: %q is not user or user:group", c.RunAs))
		}
	}
	// Listeners: each address valid, none twice, TLS where it is needed.
	seen := map[string]string{}
	for _, l := range c.listenerAddrs() {
		if l.addr == "" {
			continue
		}
		if _, port, err := net.SplitHostPort(l.addr); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", l.field, err))
		} else if other, dup := seen[l.addr]; dup && port != "0" {
			errs = append(errs, fmt.Errorf("%s: %s is %s's address too", l.field, l.addr, other))
		}
		seen[l.addr] = l.field
		if l.tls && c.TLS == nil {
			errs = append(errs, fmt.Errorf("%s: an implicit-TLS listener needs TLS", l.field))
		}
	}
	if c.AdminAddr != "" && !loopback(c.AdminAddr) && c.TLS == nil {
		errs = append(errs, errors.New("AdminAddr: not a loopback address: the API needs TLS there"))
	}
	if c.AdminAddr != "" && c.DataDir == "" && c.Admin.DataDir == "" {
		errs = append(errs, errors.New("AdminAddr: the API keeps its database in DataDir, which is empty"))
	}
	if c.SubmissionAddr != "" && c.TLS == nil {
		errs = append(errs, errors.New("SubmissionAddr: without TLS nobody could log in (AUTH is offered only over TLS)"))
	}
	if len(errs) > 0 {
		return fmt.Errorf("mailsys: invalid config: %w", errors.Join(errs...))
	}
	return nil
}

// serverKind is the protocol server a listener belongs to.
type serverKind int

const (
	kindSMTP serverKind = iota
	kindSubmission
	kindIMAP
	kindPOP3
	kindAdmin
)

// listenerAddr is one of Config's listener fields.
type listenerAddr struct {
	field, addr string
	tls         bool
	kind        serverKind
}

// listenerAddrs lists the listener fields in their order in Config, which
// is the order Start binds them in and Addrs reports them.
func (c *Config) listenerAddrs() []listenerAddr {
	return []listenerAddr{
		{"SMTPAddr", c.SMTPAddr, false, kindSMTP},
		{"SubmissionAddr", c.SubmissionAddr, false, kindSubmission},
		{"SubmissionTLSAddr", c.SubmissionTLSAddr, true, kindSubmission},
		{"IMAPAddr", c.IMAPAddr, false, kindIMAP},
		{"IMAPTLSAddr", c.IMAPTLSAddr, true, kindIMAP},
		{"POP3Addr", c.POP3Addr, false, kindPOP3},
		{"POP3TLSAddr", c.POP3TLSAddr, true, kindPOP3},
		{"AdminAddr", c.AdminAddr, false, kindAdmin},
	}
}

// loopback reports whether addr (host:port) is on a loopback address,
// "localhost" included.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// serves reports whether a listener of kind k is configured.
func (c *Config) serves(k serverKind) bool {
	return slices.ContainsFunc(c.listenerAddrs(), func(l listenerAddr) bool { return l.kind == k && l.addr != "" })
}

func (c *Config) logger() *slog.Logger {
	if c.Logger == nil {
		return slog.Default()
	}
	return c.Logger
}

func (c *Config) hostname() string {
	if c.Hostname == "" {
		return "localhost"
	}
	return c.Hostname
}

// storeConfig is the embedded Storage's config.
func (c *Config) storeConfig() msstore.Config {
	sc := c.StoreConfig
	if len(sc.Dirs) == 0 {
		sc.Dirs = []msstore.Dir{{Path: filepath.Join(c.DataDir, "store")}}
	}
	if sc.Logger == nil {
		sc.Logger = c.logger()
	}
	return sc
}

// userDBConfig is the embedded UserDB's config.
func (c *Config) userDBConfig(bodies userdata.BodyRefs, limiter *userdata.PasswordLimiter) userdata.Config {
	uc := c.UserDBConfig
	if uc.Dir == "" {
		uc.Dir = filepath.Join(c.DataDir, "userdb")
	}
	if uc.Node == "" {
		uc.Node = c.hostname()
	}
	if uc.Logger == nil {
		uc.Logger = c.logger()
	}
	uc.Bodies, uc.PasswordLimiter = bodies, limiter
	return uc
}

// txLogConfig is the embedded TxLog's config.
func (c *Config) txLogConfig() txlog.Config {
	tc := c.TxLogConfig
	if tc.Dir == "" {
		tc.Dir = filepath.Join(c.DataDir, "txlog")
	}
	if tc.Logger == nil {
		tc.Logger = c.logger()
	}
	if tc.Metrics == nil && c.Metrics != nil {
		tc.Metrics = c.Metrics.TxLog()
	}
	return tc
}

func (c *Config) inboundConfig(tlsConfig *tls.Config, guard *mta.Guard) mta.InboundConfig {
	ic := c.SMTP
	ic.Hostname, ic.TLS, ic.Guard, ic.Filter, ic.Logger = c.hostname(), tlsConfig, guard, c.Filter, c.logger()
	if ic.Metrics == nil && c.Metrics != nil {
		ic.Metrics = c.Metrics.SMTP()
	}
	if ic.Logins == nil {
		ic.Logins = c.Logins
	}
	return ic
}

func (c *Config) imapConfig(tlsConfig *tls.Config, guard *mta.Guard) imap.Config {
	ic := c.IMAP
	ic.TLS, ic.InsecureAuth, ic.Guard, ic.Logger = tlsConfig, c.InsecureAuth, guard, c.logger()
	if ic.Metrics == nil && c.Metrics != nil {
		ic.Metrics = c.Metrics.IMAP()
	}
	if ic.Logins == nil {
		ic.Logins = c.Logins
	}
	return ic
}

func (c *Config) pop3Config(tlsConfig *tls.Config, guard *mta.Guard) pop3.Config {
	pc := c.POP3
	pc.Hostname, pc.TLS, pc.InsecureAuth, pc.Guard, pc.Logger = c.hostname(), tlsConfig, c.InsecureAuth, guard, c.logger()
	if pc.Metrics == nil && c.Metrics != nil {
		pc.Metrics = c.Metrics.POP3()
	}
	if pc.Logins == nil {
		pc.Logins = c.Logins
	}
	return pc
}

// outboundConfig is the outbound queue's config; res is the System's
// resolver.
func (c *Config) outboundConfig(res resolve.Resolver) queue.Config {
	oc := c.Outbound
	if oc.Dir == "" && c.DataDir != "" {
		oc.Dir = filepath.Join(c.DataDir, "queue")
	}
	if oc.Hostname == "" {
		oc.Hostname = c.hostname()
	}
	if oc.Resolver == nil {
		oc.Resolver = res
	}
	if oc.Logger == nil {
		oc.Logger = c.logger()
	}
	return oc
}

// dkimConfig is the DKIM signer's config; users is the System's UserDB.
func (c *Config) dkimConfig(users userdata.UserDB) mailauth.SignerConfig {
	dc := c.DKIM
	if dc.Dir == "" {
		dc.Dir = filepath.Join(c.DataDir, "dkim")
	}
	if dc.Domains == nil && users != nil {
		dc.Domains = func(ctx context.Context, domain string) (bool, error) {
			_, err := users.Domain(ctx, domain)
			if errors.Is(err, userdata.ErrNotFound) || errors.Is(err, userdata.ErrInvalid) {
				return false, nil
			}
			return err == nil, err
		}
	}
	if dc.Logger == nil {
		dc.Logger = c.logger()
	}
	return dc
}

// verifyConfig is the MX listener's checks' config; res is the System's
// resolver.
func (c *Config) verifyConfig(res resolve.Resolver) mailauth.VerifierConfig {
	vc := c.Verify
	if vc == (mailauth.VerifierConfig{}) {
		vc = mailauth.DefaultVerifierConfig()
		vc.Logger = nil
	}
	if vc.Resolver == nil {
		vc.Resolver = res
	}
	if vc.Hostname == "" {
		vc.Hostname = c.hostname()
	}
	if vc.Logger == nil {
		vc.Logger = c.logger()
	}
	return vc
}

// outbound reports whether the System runs an outbound queue.
func (c *Config) outbound() bool {
	return !c.DisableOutbound && (c.DataDir != "" || c.Outbound.Dir != "")
}

// signs reports whether the System signs outbound mail with DKIM.
func (c *Config) signs() bool {
	return c.outbound() && !c.DisableDKIM && (c.DataDir != "" || c.DKIM.Dir != "")
}
