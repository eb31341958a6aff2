package node

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/mailsys/mailsys"
	"github.com/mailsys/mailsys/admin"
	"github.com/mailsys/mailsys/cluster"
	"github.com/mailsys/mailsys/internal/selfsigned"
	"github.com/mailsys/mailsys/userdata"
)

// File is a node's configuration file, in TOML:
//
//	id = "ms1"                      # the node's id and number in the registry
//	num = 4
//	roles = "ms"                    # front, ud, ms, comma-separated
//	weight = 10                     # weight when first registered (0: 10)
//	data_dir = "/var/lib/mailsys"
//	listen = "10.0.0.5:7001"        # gRPC (UD, MS and the directory's node)
//	advertise = ""                  # the address others dial (empty: listen)
//	gossip = "10.0.0.5:7946"        # heartbeat (memberlist), UDP and TCP
//	seeds = ["10.0.0.2:7946"]       # gossip addresses of other nodes
//	peers = ["ud1", "ms1"]          # a front waits for these at start
//	gossip_key_file = ""            # 32 random bytes: encrypts the gossip
//	cert = "certs/ms1.pem"          # issued by the cluster CA
//	key = "certs/ms1.key"
//	ca = "certs/ca.pem"
//	call_timeout = "5s"
//	group = "g1"                    # a UD node's replication group (two nodes: primary and standby)
//	replicas = 1                    # a front's copies of each new body, on distinct MS nodes (1 or 2)
//
//	[replication]                   # a UD group's replication
//	timeout = "2s"                  # the primary's wait for the standby before going on without it
//	require_standby = false         # refuse writes instead of going on without a standby
//	log_size = 67108864             # recent changes kept for a standby briefly away (bytes)
//
//	[directory]                     # one of:
//	postgres = "postgres://..."     #   the PostgreSQL directory
//	hold = false                    #   this node holds the embedded one
//	node = "front"                  #   the node that holds it, and its
//	addr = "10.0.0.2:7001"          #   gRPC address
//
//	[front]                         # the front role's listeners (empty: off)
//	hostname = "mail.example.org"
//	smtp = "0.0.0.0:25"
//	submission = "0.0.0.0:587"
//	submissions = ""
//	imap = "0.0.0.0:143"
//	imaps = ""
//	pop3 = "0.0.0.0:110"
//	pop3s = ""
//	insecure_auth = false
//	tls_cert = ""                   # empty: a self-signed certificate
//	tls_key = ""
//	outbound = true                 # the outbound queue (mail to other domains)
//	dkim = true                     # DKIM-sign outbound mail
//	verify = true                   # SPF, DKIM, DMARC checks on the smtp listener
//	run_as = ""                     # "user" or "user:group" to serve as, once bound, when started as root
//	allow_root = false              # serve as root on non-loopback addresses without run_as
//	admin = "127.0.0.1:8080"        # the administration API and web admin (HTTPS off loopback)
//	events = ""                     # the supervisor's event log the API serves
//
//	[[users]]                       # accounts a front creates at start
//	address = "ann@example.org"
//	password = "..."
//	admin = false                   # a system administrator of the API
//
// Relative paths are taken from the file's directory.
type File struct {
	ID            string     `toml:"id"`
	Num           uint32     `toml:"num"`
	Roles         string     `toml:"roles"`
	Weight        int        `toml:"weight"`
	DataDir       string     `toml:"data_dir"`
	Listen        string     `toml:"listen"`
	Advertise     string     `toml:"advertise"`
	Gossip        string     `toml:"gossip"`
	Seeds         []string   `toml:"seeds"`
	Peers         []string   `toml:"peers"`
	GossipKeyFile string     `toml:"gossip_key_file"`
	Cert          string     `toml:"cert"`
	Key           string     `toml:"key"`
	CA            string     `toml:"ca"`
	CallTimeout   string     `toml:"call_timeout"`
	Group         string     `toml:"group"`
	Replicas      int        `toml:"replicas"`
	Replication   FileRepl   `toml:"replication"`
	Directory     FileDir    `toml:"directory"`
	Front         FileFront  `toml:"front"`
	Users         []FileUser `toml:"users"`
}

// FileRepl is the [replication] table of a File.
type FileRepl struct {
	Timeout        string `toml:"timeout"`
	RequireStandby bool   `toml:"require_standby"`
	LogSize        int    `toml:"log_size"`
}

// FileDir is the [directory] table of a File.
type FileDir struct {
	Postgres string `toml:"postgres"`
	Hold     bool   `toml:"hold"`
	Node     string `toml:"node"`
	Addr     string `toml:"addr"`
}

// FileFront is the [front] table of a File.
type FileFront struct {
	Hostname     string `toml:"hostname"`
	SMTP         string `toml:"smtp"`
	Submission   string `toml:"submission"`
	Submissions  string `toml:"submissions"`
	IMAP         string `toml:"imap"`
	IMAPS        string `toml:"imaps"`
	POP3         string `toml:"pop3"`
	POP3S        string `toml:"pop3s"`
	InsecureAuth bool   `toml:"insecure_auth"`
	TLSCert      string `toml:"tls_cert"`
	TLSKey       string `toml:"tls_key"`
	Outbound     *bool  `toml:"outbound"`
	DKIM         *bool  `toml:"dkim"`
	Verify       *bool  `toml:"verify"`
	// RunAs and AllowRoot are mailsys.Config's: a front started as root
	// (to bind port 25, say) refuses to serve on addresses other than
	// loopback ones unless it drops to RunAs or AllowRoot is set.
	RunAs     string `toml:"run_as"`
	AllowRoot bool   `toml:"allow_root"`
	// Admin is the administration API's listener (mailsys.Config's
	// AdminAddr), Events the supervisor's event log it serves.
	Admin  string `toml:"admin"`
	Events string `toml:"events"`
}

func off(b *bool) bool { return b != nil && !*b }

// FileUser is one [[users]] entry of a File.
type FileUser struct {
	Address  string `toml:"address"`
	Password string `toml:"password"`
	// Admin makes the user a system administrator of the front's API.
	Admin bool `toml:"admin"`
}

// LoadFile reads a node's configuration file. Unknown keys are an error.
func LoadFile(path string) (*File, error) {
	var f File
	md, err := toml.DecodeFile(path, &f)
	if err != nil {
		return nil, fmt.Errorf("node: %s: %w", path, err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		keys := make([]string, len(und))
		for i, k := range und {
			keys[i] = k.String()
		}
		return nil, fmt.Errorf("node: %s: unknown keys: %s", path, strings.Join(keys, ", "))
	}
	base := filepath.Dir(path)
	for _, p := range []*string{&f.DataDir, &f.GossipKeyFile, &f.Cert, &f.Key, &f.CA, &f.Front.TLSCert, &f.Front.TLSKey, &f.Front.Events} {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(base, *p)
		}
	}
	return &f, nil
}

// Config turns the file into a Config (reading the gossip key and, for
// the front, its TLS certificate or a self-signed one).
func (f *File) Config() (Config, error) {
	var errs []error
	roles, err := cluster.ParseRole(f.Roles)
	if err != nil {
		errs = append(errs, err)
	}
	c := Config{
		ID: f.ID, Num: f.Num, Roles: roles, Weight: f.Weight, DataDir: f.DataDir,
		Listen: f.Listen, Advertise: f.Advertise, Gossip: f.Gossip, Seeds: f.Seeds, Peers: f.Peers,
		Cert: f.Cert, Key: f.Key, CA: f.CA,
		Postgres: f.Directory.Postgres, HoldDirectory: f.Directory.Hold,
		DirectoryNode: f.Directory.Node, DirectoryAddr: f.Directory.Addr,
		Group: f.Group, Replicas: f.Replicas,
		Replication: userdata.ReplicationConfig{RequireStandby: f.Replication.RequireStandby, LogSize: f.Replication.LogSize},
	}
	if f.Replication.Timeout != "" {
		d, err := time.ParseDuration(f.Replication.Timeout)
		if err != nil || d < 0 {
			errs = append(errs, fmt.Errorf("node: replication.timeout %q: want a positive duration", f.Replication.Timeout))
		}
		c.Replication.Timeout = d
	}
	if f.GossipKeyFile != "" {
		k, err := os.ReadFile(f.GossipKeyFile)
		if err != nil {
			errs = append(errs, fmt.Errorf("node: gossip key: %w", err))
		}
		c.GossipKey = k
	}
	if f.CallTimeout != "" {
		d, err := time.ParseDuration(f.CallTimeout)
		if err != nil {
			errs = append(errs, fmt.Errorf("node: call_timeout: %w", err))
		}
		c.CallTimeout = d
	}
	if roles&cluster.RoleFront != 0 {
		fr := f.Front
		fc := mailsys.Config{
			Hostname: fr.Hostname, SMTPAddr: fr.SMTP, SubmissionAddr: fr.Submission, SubmissionTLSAddr: fr.Submissions,
			IMAPAddr: fr.IMAP, IMAPTLSAddr: fr.IMAPS, POP3Addr: fr.POP3, POP3TLSAddr: fr.POP3S, InsecureAuth: fr.InsecureAuth,
			DisableOutbound: off(fr.Outbound), DisableDKIM: off(fr.DKIM), DisableVerify: off(fr.Verify),
			RunAs: fr.RunAs, AllowRoot: fr.AllowRoot, AdminAddr: fr.Admin,
		}
		c.EventLog = fr.Events
		var cert tls.Certificate
		var err error
		if fr.TLSCert != "" || fr.TLSKey != "" {
			cert, err = tls.LoadX509KeyPair(fr.TLSCert, fr.TLSKey)
		} else {
			host := fr.Hostname
			if host == "" {
				host = "localhost"
			}
			cert, err = selfsigned.New(host, 365*24*time.Hour)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("node: front TLS certificate: %w", err))
		}
		fc.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
		c.Front = fc
	}
	if err := errors.Join(errs...); err != nil {
		return Config{}, err
	}
	return c, c.Validate()
}

// Run runs the node f describes until ctx ends: it starts it (within a
// minute), creates or updates the file's users on a front (retrying
// for 30 seconds while their UD node is unavailable), calls ready
// (which may be nil) and waits; then it shuts the node down, giving it 10
// seconds to finish. logger may be nil.
func Run(ctx context.Context, f *File, logger *slog.Logger, ready func(*Node) error) error {
	cfg, err := f.Config()
	if err != nil {
		return err
	}
	cfg.Logger = logger
	startCtx, cancel := context.WithTimeout(ctx, time.Minute)
	n, err := Start(startCtx, cfg)
	cancel()
	if err != nil {
		return err
	}
	stop := func() error {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return n.Shutdown(sctx)
	}
	if sys := n.System(); sys != nil {
		for _, u := range f.Users {
			// A UD node answering its heartbeat may not serve yet (a
			// group's primary opening its database): retry for a while.
			deadline := time.Now().Add(30 * time.Second)
			for {
				_, err := sys.EnsureUser(ctx, u.Address, u.Password)
				if err == nil && u.Admin && sys.Admin() != nil {
					err = sys.Admin().SetGrant(ctx, admin.Grant{User: u.Address, Role: admin.RoleSystem})
				}
				if err == nil {
					break
				}
				if !cluster.IsUnavailable(err) || time.Now().After(deadline) || ctx.Err() != nil {
					return errors.Join(fmt.Errorf("node: user %s: %w", u.Address, err), stop())
				}
				time.Sleep(100 * time.Millisecond)
			}
		}
	}
	if ready != nil {
		if err := ready(n); err != nil {
			return errors.Join(err, stop())
		}
	}
	<-ctx.Done()
	return stop()
}
