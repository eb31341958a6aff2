package node

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/mailsys/mailsys"
	"github.com/mailsys/mailsys/cluster"
	"github.com/mailsys/mailsys/msstore"
	"github.com/mailsys/mailsys/userdata"
)

// Config says what one node of a cluster runs. A deployment writes one per
// machine (see examples/node for its TOML form).
type Config struct {
	// ID and Num name the node in the registry (see cluster.Node).
	ID  string
	Num uint32
	// Roles are what the node runs: front (the protocol servers), ud (a
	// UserDB), ms (a message store), any together.
	Roles cluster.Role
	// Weight is the node's weight when it first registers; later
	// changes are the Directory's (cluster admin), and a restart keeps
	// them. Zero means 10 for UD and MS nodes.
	Weight int
	// DataDir holds the node's files: ud/ (the UserDB), ms/ (the volume
	// store), directory/ (the embedded directory, on the node that holds
	// it) and front/ (the front's transaction log and outbound queue).
	DataDir string

	// Listen is the gRPC listener's address (host:port). UD and MS nodes
	// and the node that holds the embedded directory need one.
	Listen string
	// Advertise is the address the other nodes reach Listen at, as the
	// registry records it. Empty means Listen.
	Advertise string
	// Gossip is the address (host:port) of the heartbeat's memberlist
	// listener, UDP and TCP. Every node needs one.
	Gossip string
	// Seeds are the gossip addresses of other nodes to join at start;
	// one that answers is enough.
	Seeds []string
	// Peers are the ids of the UD and MS nodes a front waits for (each
	// registered and answering its heartbeat, for at most 20 seconds)
	// before it opens, so that a cluster whose nodes start together
	// places its first users over all of them. Without it a front waits
	// for one UD and one MS node.
	Peers []string
	// GossipKey, when set (16, 24 or 32 bytes), encrypts the gossip
	// (AES-GCM). A production cluster sets it.
	GossipKey []byte

	// Cert, Key and CA are PEM files: the node's certificate and key,
	// issued by the cluster CA (cluster.CA.IssueFiles), and the CA's
	// certificate. Every gRPC connection is mutual TLS with them.
	Cert, Key, CA string

	// Postgres is the DSN of the PostgreSQL directory. When it is empty
	// the cluster uses the embedded directory: held by this node when
	// HoldDirectory is set, else reached over gRPC at DirectoryAddr on
	// node DirectoryNode.
	Postgres      string
	HoldDirectory bool
	DirectoryNode string
	DirectoryAddr string

	// Store configures the MS role's volume store. Empty Dirs means
	// DataDir/ms; its Node is the node's Num, a nil Logger the node's.
	Store msstore.Config
	// UserDB configures the UD role's database. Empty Dir means
	// DataDir/ud; its Node is the node's ID, its Bodies the cluster's
	// Storage (references are counted on the MS nodes), a nil Logger the
	// node's, a nil PasswordLimiter one made from Passwords.
	UserDB userdata.Config
	// Passwords bounds the UD role's password checks.
	Passwords userdata.PasswordLimiterConfig
	// Group, on a UD node, names its replication group (cluster.Group):
	// the two UD nodes with the same Group keep one database, the primary
	// serving it and sending every change to the other, a synchronous hot
	// standby that takes over when the heartbeat declares the primary
	// dead. The first of the two to start is the primary. Empty means no
	// standby.
	Group string
	// Replication tunes a group's replication: how long the primary
	// waits for the standby (Timeout) before going on without it, or
	// whether it refuses writes instead (RequireStandby), and the log of
	// recent batches kept for a standby briefly away (LogSize). Its
	// Alone and InStep are the node's own.
	Replication userdata.ReplicationConfig
	// Replicas is how many copies of each new message body the front
	// writes, on distinct MS nodes: 1 (the default) or 2.
	Replicas int

	// Front is the front role's System: its listeners, TLS, limits and
	// outbound settings. Its Storage, UserDB and DataDir are the node's
	// (the cluster's routers, and DataDir/front).
	Front mailsys.Config
	// EventLog is the supervisor's event log (cluster.SupervisorConfig's
	// EventLog) that a front's administration API serves at
	// /api/v1/events; empty serves none. The front's API (Front.AdminAddr)
	// also serves the cluster's nodes, from the directory.
	EventLog string

	// CallTimeout bounds each call to a peer that sets no earlier
	// deadline; a peer that does not answer in time counts as failing.
	// Zero means 5 seconds.
	CallTimeout time.Duration
	// Logger receives the node's logs. Nil means slog.Default().
	Logger *slog.Logger
}

// defaultWeight is a node's weight when Config.Weight is 0.
const defaultWeight = 10

func (c *Config) advertise() string {
	if c.Advertise != "" {
		return c.Advertise
	}
	return c.Listen
}

func (c *Config) callTimeout() time.Duration {
	if c.CallTimeout > 0 {
		return c.CallTimeout
	}
	return 5 * time.Second
}

func (c *Config) logger() *slog.Logger {
	l := c.Logger
	if l == nil {
		l = slog.Default()
	}
	return l.With("node", c.ID)
}

// Validate reports every problem of c at once.
func (c *Config) Validate() error {
	var errs []error
	n := cluster.Node{ID: c.ID, Num: c.Num, Roles: c.Roles, Addr: c.advertise(), Weight: c.Weight}
	if err := n.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.DataDir == "" {
		errs = append(errs, errors.New("node: no DataDir"))
	}
	if c.Gossip == "" {
		errs = append(errs, errors.New("node: no Gossip address"))
	} else if _, _, err := net.SplitHostPort(c.Gossip); err != nil {
		errs = append(errs, fmt.Errorf("node: Gossip: %w", err))
	}
	if c.Listen == "" && (c.Roles&(cluster.RoleUD|cluster.RoleMS) != 0 || c.HoldDirectory) {
		errs = append(errs, errors.New("node: a UD or MS node, or the directory's, needs a Listen address"))
	}
	if c.Cert == "" || c.Key == "" || c.CA == "" {
		errs = append(errs, errors.New("node: Cert, Key and CA are needed (mutual TLS between nodes)"))
	}
	switch {
	case c.Postgres != "" && c.HoldDirectory:
		errs = append(errs, errors.New("node: Postgres and HoldDirectory: one directory, not both"))
	case c.Postgres == "" && !c.HoldDirectory && (c.DirectoryAddr == "" || c.DirectoryNode == ""):
		errs = append(errs, errors.New("node: no directory: set Postgres, HoldDirectory, or DirectoryNode and DirectoryAddr"))
	}
	if c.Group != "" {
		if c.Roles&cluster.RoleUD == 0 {
			errs = append(errs, errors.New("node: Group is for UD nodes"))
		}
		if err := (cluster.Group{ID: c.Group, Primary: c.ID, Epoch: 1}).Validate(); err != nil {
			errs = append(errs, fmt.Errorf("node: Group: %w", err))
		}
	}
	if c.Replicas < 0 || c.Replicas > cluster.MaxReplicas {
		errs = append(errs, fmt.Errorf("node: Replicas %d, want 1 to %d", c.Replicas, cluster.MaxReplicas))
	}
	if c.CallTimeout < 0 {
		errs = append(errs, errors.New("node: negative CallTimeout"))
	}
	return errors.Join(errs...)
}
