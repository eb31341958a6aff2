// Package pgdir is the cluster's Directory (cluster.Directory) on
// PostgreSQL: the node registry, the UD node of every user, the addresses
// that lead to users, domain aliases and id sequences, shared by every
// node of a cluster that opens the same database.
//
// # Schema
//
// Open applies the schema migrations embedded in the package
// (migrations/NNNN_name.sql, in order) that the database lacks, each in
// the one transaction that records it in mailsys_schema_migrations
// (component "pgdir"; not schema_migrations, which migration tools such as
// golang-migrate take for their own), under a transaction-level advisory
// lock: nodes that open an empty database at once migrate it once, and
// wait for each other. The tables are prefixed dir_ so that the database
// can hold other components' tables:
//
//   - dir_registry: one row, the registry's version.
//   - dir_nodes: the registered nodes (id, num unique, roles, addr,
//     weight, masked).
//   - dir_groups: the UD replication groups (id, primary_node,
//     standby_node or NULL, epoch, synced); members reference dir_nodes.
//   - dir_users: user id (the 64 bits of a userdata.UserID as a bigint),
//     its UD node and primary address.
//   - dir_addresses: every address (normal form) leading to a user, primary
//     or alias; unique, so that an address belongs to one user; removed
//     with its user.
//   - dir_domain_aliases: alias domain to domain.
//   - dir_sequences: the last number handed out by each named sequence.
//
// # Invariants
//
// Every change to dir_nodes or dir_groups happens in a transaction that
// first locks the dir_registry row (SELECT ... FOR UPDATE), then
// increments dir_registry.version and sends NOTIFY mailsys_registry with
// the new version as payload: registry changes are applied one at a time
// (so that SwapGroup's compare-and-set, and the checks that a group's
// members are UD nodes in no other group, read what no one else is
// changing), a reader that sees a version sees the nodes and groups as
// they were at it, and every change is announced once committed. WatchRegistry
// listens on a connection of its own and polls the version every
// PollInterval as well, so that a notification lost with a connection is
// made up for. NextID's numbers are taken by an INSERT ... ON CONFLICT DO
// UPDATE ... RETURNING that commits at once: a number is never handed out
// twice, even when what took it fails. A user and its primary address go
// in with one statement, so both or neither.
//
// # Errors
//
// Addresses and domains are stored in the form cluster.NormalAddress and
// cluster.NormalDomain give (lower case, no trailing dot), and every input
// is checked before it reaches the database: a bad one is
// cluster.ErrInvalid. A unique violation is cluster.ErrExists; a missing
// row cluster.ErrNotFound. A database that cannot answer (a refused or
// lost connection, a call past Config.CallTimeout or the caller's
// deadline, a server shutting down or out of connections) is a
// *cluster.Unavailable with Peer "directory"; a call whose context was
// canceled returns the context's error.
package pgdir

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math"
	"math/rand/v2"
	"net"
	"path"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mailsys/mailsys/cluster"
	"github.com/mailsys/mailsys/userdata"
)

// Channel is the PostgreSQL notification channel of registry changes; the
// payload is the registry's new version in decimal.
const Channel = "mailsys_registry"

// migrationLock is the advisory lock key under which Open migrates (the
// first 8 bytes of SHA-256("mailsys/cluster/pgdir migrations")).
const migrationLock int64 = 0x3b5f_6a1c_0d2e_4f71

// Reconnection backoff of WatchRegistry.
const (
	minBackoff = 100 * time.Millisecond
	maxBackoff = 5 * time.Second
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// Config configures a Directory. The zero value of each field means its
// default (DefaultConfig).
type Config struct {
	// Logger receives the Directory's events: migrations applied, lost
	// and regained connections. nil discards them.
	Logger *slog.Logger
	// PollInterval is how often WatchRegistry reads the registry's
	// version when no notification came, to catch a change whose
	// notification was lost. Default 5s.
	PollInterval time.Duration
	// CallTimeout bounds each call to the database, whatever the caller's
	// context says; a call that takes longer fails with a
	// *cluster.Unavailable. Default 10s.
	CallTimeout time.Duration
	// MaxConns is the size of the connection pool (WatchRegistry's
	// connections come on top, one per call in progress). Default 0 is
	// pgxpool's: 4 or the number of CPUs, whichever is more; a pool_max_conns
	// in the DSN counts when MaxConns is 0.
	MaxConns int32
}

// DefaultConfig returns the configuration the zero Config stands for.
func DefaultConfig() Config {
	return Config{PollInterval: 5 * time.Second, CallTimeout: 10 * time.Second}
}

// Validate reports every field out of bounds, wrapping cluster.ErrInvalid.
func (c Config) Validate() error {
	var errs []error
	if c.PollInterval < 0 {
		errs = append(errs, fmt.Errorf("%w: pgdir: PollInterval %v below 0", cluster.ErrInvalid, c.PollInterval))
	}
	if c.CallTimeout < 0 {
		errs = append(errs, fmt.Errorf("%w: pgdir: CallTimeout %v below 0", cluster.ErrInvalid, c.CallTimeout))
	}
	if c.MaxConns < 0 {
		errs = append(errs, fmt.Errorf("%w: pgdir: MaxConns %d below 0", cluster.ErrInvalid, c.MaxConns))
	}
	return errors.Join(errs...)
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.PollInterval == 0 {
		c.PollInterval = d.PollInterval
	}
	if c.CallTimeout == 0 {
		c.CallTimeout = d.CallTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Directory is a cluster.Directory on a PostgreSQL database. Its methods
// are safe for concurrent use; several Directories, in one process or
// many, may share a database.
type Directory struct {
	cfg    Config
	pool   *pgxpool.Pool
	log    *slog.Logger
	server string // host:port, for errors

	ctx    context.Context // canceled by Close: ends the watchers
	cancel context.CancelFunc

	mu     sync.RWMutex
	closed bool
}

var (
	_ cluster.Directory        = (*Directory)(nil)
	_ cluster.SequenceAdvancer = (*Directory)(nil)
)

// Open connects to the database dsn names (a PostgreSQL URL or key=value
// string, as pgx reads it), applies the migrations it lacks, and returns
// the Directory on it. A database that cannot be reached is a
// *cluster.Unavailable; a bad dsn or Config is cluster.ErrInvalid.
func Open(ctx context.Context, dsn string, cfg Config) (*Directory, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	pcfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("%w: pgdir: dsn: %v", cluster.ErrInvalid, err)
	}
	if cfg.MaxConns > 0 {
		pcfg.MaxConns = cfg.MaxConns
	}
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return nil, fmt.Errorf("%w: pgdir: %v", cluster.ErrInvalid, err)
	}
	d := &Directory{cfg: cfg, pool: pool, log: cfg.Logger,
		server: net.JoinHostPort(pcfg.ConnConfig.Host, strconv.Itoa(int(pcfg.ConnConfig.Port)))}
	d.ctx, d.cancel = context.WithCancel(context.Background())
	if err := d.migrate(ctx); err != nil {
		d.cancel()
		pool.Close()
		return nil, err
	}
	return d, nil
}

// Close closes the connection pool, once the calls in progress have
// returned, and makes the WatchRegistry calls in progress return
// cluster.ErrClosed. Later calls return cluster.ErrClosed; so does a
// second Close.
func (d *Directory) Close() error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return fmt.Errorf("pgdir: Close: %w", cluster.ErrClosed)
	}
	d.closed = true
	d.mu.Unlock()
	d.cancel()
	d.pool.Close()
	return nil
}

func (d *Directory) isClosed() bool {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.closed
}

// begin starts a call: it fails if d is closed or ctx done, and bounds
// ctx by CallTimeout.
func (d *Directory) begin(ctx context.Context, op string) (context.Context, context.CancelFunc, error) {
	if d.isClosed() {
		return nil, nil, fmt.Errorf("pgdir: %s: %w", op, cluster.ErrClosed)
	}
	if err := ctx.Err(); err != nil {
		return nil, nil, fmt.Errorf("pgdir: %s: %w", op, err)
	}
	ctx, cancel := context.WithTimeout(ctx, d.cfg.CallTimeout)
	return ctx, cancel, nil
}

// fail maps an error of a call op with context ctx to the Directory's
// errors: the cluster sentinels, the context's error when it was
// canceled, and *cluster.Unavailable for a database that could not answer
// (a lost or refused connection, a timeout, a server shutting down).
func (d *Directory) fail(ctx context.Context, op string, err error) error {
	var pgErr *pgconn.PgError
	switch {
	case err == nil:
		return nil
	case errors.Is(err, cluster.ErrNotFound), errors.Is(err, cluster.ErrExists),
		errors.Is(err, cluster.ErrInvalid), errors.Is(err, cluster.ErrClosed):
		return err
	case d.isClosed():
		return fmt.Errorf("pgdir: %s: %w", op, cluster.ErrClosed)
	case errors.Is(ctx.Err(), context.Canceled):
		return fmt.Errorf("pgdir: %s: %w", op, context.Canceled)
	case errors.As(err, &pgErr):
		switch {
		case pgErr.Code == "23505": // unique_violation
			return fmt.Errorf("pgdir: %s: %w (%s)", op, cluster.ErrExists, pgErr.ConstraintName)
		case pgErr.Code == "23503": // foreign_key_violation
			return fmt.Errorf("pgdir: %s: %w", op, cluster.ErrNotFound)
		case pgErr.Code == "23514", // check_violation: the checks here missed it
			strings.HasPrefix(pgErr.Code, "22"): // data exception: text PostgreSQL cannot store (a NUL, bad UTF-8), a number out of range
			return fmt.Errorf("pgdir: %s: %w: %v", op, cluster.ErrInvalid, pgErr)
		case transient(pgErr.Code):
			return &cluster.Unavailable{Peer: "directory", Err: fmt.Errorf("%s: %w", op, err)}
		}
		return fmt.Errorf("pgdir: %s: %w", op, err)
	}
	return &cluster.Unavailable{Peer: "directory", Err: fmt.Errorf("%s: %w", op, err)}
}

// transient reports whether a PostgreSQL error code says the server could
// not do the work now but might later.
func transient(code string) bool {
	switch {
	case strings.HasPrefix(code, "08"), // connection exception
		strings.HasPrefix(code, "53"),    // insufficient resources
		strings.HasPrefix(code, "57"),    // operator intervention: shutdown, cancel, cannot connect now
		strings.HasPrefix(code, "58"),    // system error
		code == "40001", code == "40P01", // serialization failure, deadlock
		code == "55P03": // lock not available
		return true
	}
	return false
}

// migrate applies the migrations the database lacks.
func (d *Directory) migrate(ctx context.Context) error {
	migs, err := migrations()
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return &cluster.Unavailable{Peer: "directory", Err: fmt.Errorf("open %s: %w", d.server, err)}
	}
	var applied []string
	err = pgx.BeginFunc(ctx, d.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", migrationLock); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS mailsys_schema_migrations (
			component  text        NOT NULL,
			version    integer     NOT NULL,
			name       text        NOT NULL,
			applied_at timestamptz NOT NULL DEFAULT now(),
			PRIMARY KEY (component, version))`); err != nil {
			return err
		}
		var have int
		if err := tx.QueryRow(ctx, "SELECT coalesce(max(version), 0) FROM mailsys_schema_migrations WHERE component = 'pgdir'").Scan(&have); err != nil {
			return err
		}
		if have > len(migs) {
			d.log.Warn("pgdir: the database's schema is newer than this program's", "database", have, "program", len(migs))
		}
		for _, m := range migs[min(have, len(migs)):] {
			if _, err := tx.Exec(ctx, m.sql); err != nil {
				return fmt.Errorf("migration %s: %w", m.name, err)
			}
			if _, err := tx.Exec(ctx, "INSERT INTO mailsys_schema_migrations (component, version, name) VALUES ('pgdir', $1, $2)", m.version, m.name); err != nil {
				return err
			}
			applied = append(applied, m.name)
		}
		return nil
	})
	if err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && !transient(pgErr.Code) {
			return fmt.Errorf("pgdir: migrate: %w", err)
		}
		return &cluster.Unavailable{Peer: "directory", Err: fmt.Errorf("open %s: %w", d.server, err)}
	}
	if len(applied) > 0 {
		d.log.Info("pgdir: schema migrated", "applied", applied)
	}
	return nil
}

type migration struct {
	version int
	name    string
	sql     string
}

// migrations returns the embedded migrations in order, checking that they
// are numbered 1, 2, 3...
func migrations() ([]migration, error) {
	names, err := fs.Glob(migrationFS, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	var migs []migration
	for i, p := range names { // Glob sorts them
		name := path.Base(p)
		num, _, _ := strings.Cut(name, "_")
		v, err := strconv.Atoi(num)
		if err != nil || v != i+1 {
			return nil, fmt.Errorf("pgdir: migration %s out of sequence (want number %d)", name, i+1)
		}
		b, err := migrationFS.ReadFile(p)
		if err != nil {
			return nil, err
		}
		migs = append(migs, migration{version: v, name: name, sql: string(b)})
	}
	return migs, nil
}

// Checks of inputs.

var idPattern = regexp.MustCompile(`^[a-z][a-z0-9-]{0,62}$`)

// checkID checks a node id or a sequence name.
func checkID(what, id string) error {
	if !idPattern.MatchString(id) {
		return fmt.Errorf("%w: %s %q: want 1 to 63 lower-case letters, digits or hyphens, starting with a letter", cluster.ErrInvalid, what, id)
	}
	return nil
}

func checkUser(id userdata.UserID) error {
	if id == 0 {
		return fmt.Errorf("%w: user id 0", cluster.ErrInvalid)
	}
	return nil
}

// Registry.

// registryQuery reads the version, the groups (as a JSON array, the same
// in every row) and the nodes in one statement, so in one snapshot. With
// no nodes, it is one row of NULL node columns.
const registryQuery = `SELECT r.version,
		(SELECT coalesce(json_agg(json_build_object('id', g.id, 'primary', g.primary_node,
			'standby', coalesce(g.standby_node, ''), 'epoch', g.epoch, 'synced', g.synced) ORDER BY g.id), '[]')::text
		FROM dir_groups g),
		n.id, n.num, n.roles, n.addr, n.weight, n.masked
	FROM dir_registry r LEFT JOIN dir_nodes n ON true ORDER BY n.id`

// groupRow is a group as registryQuery's JSON has it.
type groupRow struct {
	ID      string `json:"id"`
	Primary string `json:"primary"`
	Standby string `json:"standby"`
	Epoch   uint64 `json:"epoch"`
	Synced  bool   `json:"synced"`
}

// querier is a pool or a connection.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

func readRegistry(ctx context.Context, q querier) (cluster.Registry, error) {
	rows, err := q.Query(ctx, registryQuery)
	if err != nil {
		return cluster.Registry{}, err
	}
	defer rows.Close()
	var r cluster.Registry
	for rows.Next() {
		var (
			version int64
			groups  string
			id      *string
			num     *int64
			roles   *int16
			addr    *string
			weight  *int32
			masked  *bool
		)
		if err := rows.Scan(&version, &groups, &id, &num, &roles, &addr, &weight, &masked); err != nil {
			return cluster.Registry{}, err
		}
		if r.Groups == nil {
			var gs []groupRow
			if err := json.Unmarshal([]byte(groups), &gs); err != nil {
				return cluster.Registry{}, fmt.Errorf("pgdir: groups: %w", err)
			}
			r.Groups = make([]cluster.Group, 0, len(gs))
			for _, g := range gs {
				r.Groups = append(r.Groups, cluster.Group(g))
			}
		}
		r.Version = uint64(version)
		if id != nil {
			r.Nodes = append(r.Nodes, cluster.Node{ID: *id, Num: uint32(*num), Roles: cluster.Role(*roles),
				Addr: *addr, Weight: int(*weight), Masked: *masked})
		}
	}
	if err := rows.Err(); err != nil {
		return cluster.Registry{}, err
	}
	if len(r.Groups) == 0 {
		r.Groups = nil
	}
	return r, nil
}

// Registry returns the node registry now.
func (d *Directory) Registry(ctx context.Context) (cluster.Registry, error) {
	ctx, cancel, err := d.begin(ctx, "Registry")
	if err != nil {
		return cluster.Registry{}, err
	}
	defer cancel()
	r, err := readRegistry(ctx, d.pool)
	return r, d.fail(ctx, "Registry", err)
}

// change runs fn in a transaction that, if fn succeeds, bumps the
// registry's version and announces it.
func (d *Directory) change(ctx context.Context, op string, fn func(tx pgx.Tx) error) error {
	ctx, cancel, err := d.begin(ctx, op)
	if err != nil {
		return err
	}
	defer cancel()
	err = pgx.BeginFunc(ctx, d.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT version FROM dir_registry FOR UPDATE"); err != nil {
			return err
		}
		if err := fn(tx); err != nil {
			return err
		}
		var v int64
		if err := tx.QueryRow(ctx, "UPDATE dir_registry SET version = version + 1 RETURNING version").Scan(&v); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, "SELECT pg_notify($1, $2)", Channel, strconv.FormatInt(v, 10))
		return err
	})
	return d.fail(ctx, op, err)
}

// PutNode registers n, or replaces the node with its ID.
func (d *Directory) PutNode(ctx context.Context, n cluster.Node) error {
	if err := n.Validate(); err != nil {
		return err
	}
	return d.change(ctx, "PutNode", func(tx pgx.Tx) error {
		if n.Roles&cluster.RoleUD == 0 {
			r, err := readRegistry(ctx, tx)
			if err != nil {
				return err
			}
			if err := r.CheckNodeChange(n.ID, &n); err != nil {
				return err
			}
		}
		_, err := tx.Exec(ctx, `INSERT INTO dir_nodes (id, num, roles, addr, weight, masked) VALUES ($1, $2, $3, $4, $5, $6)
			ON CONFLICT (id) DO UPDATE SET num = EXCLUDED.num, roles = EXCLUDED.roles, addr = EXCLUDED.addr,
				weight = EXCLUDED.weight, masked = EXCLUDED.masked`,
			n.ID, int64(n.Num), int16(n.Roles), n.Addr, int32(n.Weight), n.Masked)
		return err
	})
}

// updateNode runs an UPDATE of one node in tx: ErrNotFound if it matched
// no row.
func updateNode(ctx context.Context, tx pgx.Tx, id, sql string, args ...any) error {
	tag, err := tx.Exec(ctx, sql, append([]any{id}, args...)...)
	if err == nil && tag.RowsAffected() == 0 {
		err = fmt.Errorf("%w: node %s", cluster.ErrNotFound, id)
	}
	return err
}

// SetWeight sets a node's weight.
func (d *Directory) SetWeight(ctx context.Context, id string, weight int) error {
	if err := checkID("node id", id); err != nil {
		return err
	}
	if weight < 0 || weight > cluster.MaxWeight {
		return fmt.Errorf("%w: node %s: weight %d, want 0 to %d", cluster.ErrInvalid, id, weight, cluster.MaxWeight)
	}
	return d.change(ctx, "SetWeight", func(tx pgx.Tx) error {
		return updateNode(ctx, tx, id, "UPDATE dir_nodes SET weight = $2 WHERE id = $1", int32(weight))
	})
}

// SetMasked masks a node, or unmasks it.
func (d *Directory) SetMasked(ctx context.Context, id string, masked bool) error {
	if err := checkID("node id", id); err != nil {
		return err
	}
	return d.change(ctx, "SetMasked", func(tx pgx.Tx) error {
		return updateNode(ctx, tx, id, "UPDATE dir_nodes SET masked = $2 WHERE id = $1", masked)
	})
}

// RemoveNode takes a node out of the registry; its users stay placed on
// it. A member of a group is refused (cluster.ErrInvalid).
func (d *Directory) RemoveNode(ctx context.Context, id string) error {
	if err := checkID("node id", id); err != nil {
		return err
	}
	return d.change(ctx, "RemoveNode", func(tx pgx.Tx) error {
		r, err := readRegistry(ctx, tx)
		if err != nil {
			return err
		}
		if err := r.CheckNodeChange(id, nil); err != nil {
			return err
		}
		return updateNode(ctx, tx, id, "DELETE FROM dir_nodes WHERE id = $1")
	})
}

// SwapGroup replaces group old with new (compare-and-set), as
// cluster.Directory.SwapGroup says, in one transaction under the lock of
// the registry's row, which every registry change takes: the checks
// (cluster.Registry.CheckSwap) read the registry no one else is changing,
// so of concurrent swaps from one old, on any number of Directories, one
// wins. Epochs here end at 2^63-1 (a bigint); a larger one is
// cluster.ErrInvalid.
func (d *Directory) SwapGroup(ctx context.Context, old, new cluster.Group) error {
	if new.Epoch > math.MaxInt64 {
		return fmt.Errorf("%w: pgdir: group %.80s: epoch %d is out of range", cluster.ErrInvalid, new.ID, new.Epoch)
	}
	return d.change(ctx, "SwapGroup", func(tx pgx.Tx) error {
		r, err := readRegistry(ctx, tx)
		if err != nil {
			return err
		}
		if err := r.CheckSwap(old, new); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "DELETE FROM dir_groups WHERE id = $1", new.ID); err != nil {
			return err
		}
		if new.Primary == "" {
			return nil
		}
		var standby *string
		if new.Standby != "" {
			standby = &new.Standby
		}
		_, err = tx.Exec(ctx, "INSERT INTO dir_groups (id, primary_node, standby_node, epoch, synced) VALUES ($1, $2, $3, $4, $5)",
			new.ID, new.Primary, standby, int64(new.Epoch), new.Synced)
		return err
	})
}

// Watching the registry.

// WatchRegistry calls fn with the registry now and after each change made
// through any Directory on the database, until ctx is done (it returns
// ctx's error) or d is closed (cluster.ErrClosed). It holds a connection
// of its own that LISTENs on Channel, and reads the registry's version
// every PollInterval besides; changes that come while fn runs are taken
// together (fn sees the latest). When the connection is lost it connects
// again, with backoff, and calls fn once it has. fn is called from the
// goroutine that called WatchRegistry, one call at a time, and must not
// block for long: a change seen while it runs waits for it.
func (d *Directory) WatchRegistry(ctx context.Context, fn func(cluster.Registry)) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if d.isClosed() {
		return fmt.Errorf("pgdir: WatchRegistry: %w", cluster.ErrClosed)
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(d.ctx, cancel)
	defer stop()
	w := &watch{d: d, fn: fn}
	backoff := minBackoff
	for {
		err := w.run(wctx)
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case d.isClosed():
			return fmt.Errorf("pgdir: WatchRegistry: %w", cluster.ErrClosed)
		}
		if w.connected {
			backoff = minBackoff
		}
		d.log.Warn("pgdir: registry watch: connection lost; connecting again", "err", err, "in", backoff)
		t := time.NewTimer(backoff/2 + rand.N(backoff/2+1))
		select {
		case <-wctx.Done():
			t.Stop()
		case <-t.C:
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// watch is one WatchRegistry call's state across its connections.
type watch struct {
	d         *Directory
	fn        func(cluster.Registry)
	last      uint64 // the version fn was given last
	given     bool   // fn has been called
	connected bool   // the last run got as far as listening
}

// run connects, listens and calls fn until the connection fails or ctx
// ends.
func (w *watch) run(ctx context.Context) error {
	w.connected = false
	d := w.d
	cctx, cancel := context.WithTimeout(ctx, d.cfg.CallTimeout)
	defer cancel()
	conn, err := pgx.ConnectConfig(cctx, d.pool.Config().ConnConfig)
	if err != nil {
		return err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		conn.Close(cctx)
	}()
	if _, err := conn.Exec(cctx, "LISTEN "+Channel); err != nil {
		return err
	}
	w.connected = true
	if w.given {
		d.log.Info("pgdir: registry watch: connected again")
	}
	// Listening now, so no change after this read goes unnoticed. Given
	// to fn even if the version is the same: the caller may have missed
	// changes of a registry that went back (a database restored).
	if err := w.deliver(ctx, conn, true); err != nil {
		return err
	}
	for {
		tctx, cancel := context.WithTimeout(ctx, d.cfg.PollInterval)
		n, err := conn.WaitForNotification(tctx)
		timedOut := tctx.Err() != nil && ctx.Err() == nil
		cancel()
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case err != nil && timedOut:
			// No notification for PollInterval: check the version.
			if err := w.deliver(ctx, conn, false); err != nil {
				return err
			}
		case err != nil:
			return err
		default:
			// A notification of a version fn has had (one of a burst
			// that came while fn ran) is taken as read.
			if v, perr := strconv.ParseUint(n.Payload, 10, 64); perr == nil && w.given && v <= w.last {
				continue
			}
			if err := w.deliver(ctx, conn, false); err != nil {
				return err
			}
		}
	}
}

// deliver reads the registry and gives it to fn if its version is not the
// one fn had last, or if always.
func (w *watch) deliver(ctx context.Context, conn *pgx.Conn, always bool) error {
	qctx, cancel := context.WithTimeout(ctx, w.d.cfg.CallTimeout)
	defer cancel()
	if !always && w.given {
		var v int64
		if err := conn.QueryRow(qctx, "SELECT version FROM dir_registry").Scan(&v); err != nil {
			return err
		}
		if uint64(v) == w.last {
			return nil
		}
	}
	r, err := readRegistry(qctx, conn)
	if err != nil {
		return err
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	w.last, w.given = r.Version, true
	w.fn(r)
	return nil
}

// Sequences.

// NextID allocates the next number of the named sequence, from 1 up.
func (d *Directory) NextID(ctx context.Context, sequence string) (uint64, error) {
	if err := checkID("sequence", sequence); err != nil {
		return 0, err
	}
	ctx, cancel, err := d.begin(ctx, "NextID")
	if err != nil {
		return 0, err
	}
	defer cancel()
	var n int64
	err = d.pool.QueryRow(ctx, `INSERT INTO dir_sequences (name, last) VALUES ($1, 1)
		ON CONFLICT (name) DO UPDATE SET last = dir_sequences.last + 1 RETURNING last`, sequence).Scan(&n)
	if err != nil {
		return 0, d.fail(ctx, "NextID", err)
	}
	return uint64(n), nil
}

// AdvanceID moves the named sequence past past, so that NextID never
// returns it (cluster.SequenceAdvancer): a registration chose that id
// itself. Sequences here end at 2^63-1 (a bigint): a larger past is
// cluster.ErrInvalid, refused rather than let it use up the sequence.
func (d *Directory) AdvanceID(ctx context.Context, sequence string, past uint64) error {
	if err := checkID("sequence", sequence); err != nil {
		return err
	}
	if past > 1<<63-1 {
		return fmt.Errorf("%w: pgdir: sequence %s: %d is out of range", cluster.ErrInvalid, sequence, past)
	}
	ctx, cancel, err := d.begin(ctx, "AdvanceID")
	if err != nil {
		return err
	}
	defer cancel()
	if past == 0 { // every sequence is past 0 (and dir_sequences holds no 0)
		return nil
	}
	_, err = d.pool.Exec(ctx, `INSERT INTO dir_sequences (name, last) VALUES ($1, $2)
		ON CONFLICT (name) DO UPDATE SET last = GREATEST(dir_sequences.last, EXCLUDED.last)`, sequence, int64(past))
	if err != nil {
		return d.fail(ctx, "AdvanceID", err)
	}
	return nil
}

// Users and addresses.

// PlaceUser records that user id, with primary address address, lives on
// UD node node (which need not be registered).
func (d *Directory) PlaceUser(ctx context.Context, id userdata.UserID, address, node string) error {
	addr, err := cluster.NormalAddress(address)
	if err != nil {
		return err
	}
	if err := errors.Join(checkUser(id), checkID("node id", node)); err != nil {
		return err
	}
	ctx, cancel, err := d.begin(ctx, "PlaceUser")
	if err != nil {
		return err
	}
	defer cancel()
	// One statement: the user and its address go in together or not at all.
	_, err = d.pool.Exec(ctx, `WITH u AS (INSERT INTO dir_users (id, node, address) VALUES ($1, $2, $3) RETURNING id)
		INSERT INTO dir_addresses (address, user_id, is_primary) SELECT $3, id, true FROM u`,
		int64(id), node, addr)
	return d.fail(ctx, "PlaceUser", err)
}

// RemoveUser forgets user id and its addresses.
func (d *Directory) RemoveUser(ctx context.Context, id userdata.UserID) error {
	if err := checkUser(id); err != nil {
		return err
	}
	ctx, cancel, err := d.begin(ctx, "RemoveUser")
	if err != nil {
		return err
	}
	defer cancel()
	tag, err := d.pool.Exec(ctx, "DELETE FROM dir_users WHERE id = $1", int64(id))
	if err == nil && tag.RowsAffected() == 0 {
		err = fmt.Errorf("%w: user %d", cluster.ErrNotFound, id)
	}
	return d.fail(ctx, "RemoveUser", err)
}

// UserNode returns the UD node of user id.
func (d *Directory) UserNode(ctx context.Context, id userdata.UserID) (string, error) {
	if err := checkUser(id); err != nil {
		return "", err
	}
	ctx, cancel, err := d.begin(ctx, "UserNode")
	if err != nil {
		return "", err
	}
	defer cancel()
	var node string
	err = d.pool.QueryRow(ctx, "SELECT node FROM dir_users WHERE id = $1", int64(id)).Scan(&node)
	if errors.Is(err, pgx.ErrNoRows) {
		err = fmt.Errorf("%w: user %d", cluster.ErrNotFound, id)
	}
	return node, d.fail(ctx, "UserNode", err)
}

// LookupAddress returns the user address leads to and its node.
func (d *Directory) LookupAddress(ctx context.Context, address string) (cluster.Placement, error) {
	addr, err := cluster.NormalAddress(address)
	if err != nil {
		return cluster.Placement{}, err
	}
	ctx, cancel, err := d.begin(ctx, "LookupAddress")
	if err != nil {
		return cluster.Placement{}, err
	}
	defer cancel()
	var id int64
	var node string
	err = d.pool.QueryRow(ctx, `SELECT a.user_id, u.node FROM dir_addresses a JOIN dir_users u ON u.id = a.user_id
		WHERE a.address = $1`, addr).Scan(&id, &node)
	if errors.Is(err, pgx.ErrNoRows) {
		err = fmt.Errorf("%w: address %s", cluster.ErrNotFound, addr)
	}
	if err != nil {
		return cluster.Placement{}, d.fail(ctx, "LookupAddress", err)
	}
	return cluster.Placement{User: userdata.UserID(id), Node: node}, nil
}

// AddAddress records an alias of user id.
func (d *Directory) AddAddress(ctx context.Context, address string, id userdata.UserID) error {
	addr, err := cluster.NormalAddress(address)
	if err != nil {
		return err
	}
	if err := checkUser(id); err != nil {
		return err
	}
	ctx, cancel, err := d.begin(ctx, "AddAddress")
	if err != nil {
		return err
	}
	defer cancel()
	// The user first (no row to insert: ErrNotFound), then the address
	// (unique violation: ErrExists); a user removed meanwhile fails the
	// foreign key (ErrNotFound).
	tag, err := d.pool.Exec(ctx, `INSERT INTO dir_addresses (address, user_id, is_primary)
		SELECT $1, id, false FROM dir_users WHERE id = $2`, addr, int64(id))
	if err == nil && tag.RowsAffected() == 0 {
		err = fmt.Errorf("%w: user %d", cluster.ErrNotFound, id)
	}
	return d.fail(ctx, "AddAddress", err)
}

// RemoveAddress forgets an alias; a primary address is ErrInvalid.
func (d *Directory) RemoveAddress(ctx context.Context, address string) error {
	addr, err := cluster.NormalAddress(address)
	if err != nil {
		return err
	}
	ctx, cancel, err := d.begin(ctx, "RemoveAddress")
	if err != nil {
		return err
	}
	defer cancel()
	var primary *bool
	var deleted int
	err = d.pool.QueryRow(ctx, `WITH del AS (DELETE FROM dir_addresses WHERE address = $1 AND NOT is_primary RETURNING 1)
		SELECT (SELECT is_primary FROM dir_addresses WHERE address = $1), (SELECT count(*) FROM del)`, addr).Scan(&primary, &deleted)
	switch {
	case err != nil:
	case deleted > 0:
	case primary != nil && *primary:
		err = fmt.Errorf("%w: %s is a primary address, removed only with its user", cluster.ErrInvalid, addr)
	default:
		err = fmt.Errorf("%w: address %s", cluster.ErrNotFound, addr)
	}
	return d.fail(ctx, "RemoveAddress", err)
}

// PutDomainAlias records that alias is another name of domain, replacing
// what alias was before.
func (d *Directory) PutDomainAlias(ctx context.Context, alias, domain string) error {
	a, err1 := cluster.NormalDomain(alias)
	dom, err2 := cluster.NormalDomain(domain)
	if err := errors.Join(err1, err2); err != nil {
		return err
	}
	if a == dom {
		return fmt.Errorf("%w: domain %s as an alias of itself", cluster.ErrInvalid, a)
	}
	ctx, cancel, err := d.begin(ctx, "PutDomainAlias")
	if err != nil {
		return err
	}
	defer cancel()
	_, err = d.pool.Exec(ctx, `INSERT INTO dir_domain_aliases (alias, domain) VALUES ($1, $2)
		ON CONFLICT (alias) DO UPDATE SET domain = EXCLUDED.domain`, a, dom)
	return d.fail(ctx, "PutDomainAlias", err)
}

// DomainAlias returns the domain alias is another name of.
func (d *Directory) DomainAlias(ctx context.Context, alias string) (string, error) {
	a, err := cluster.NormalDomain(alias)
	if err != nil {
		return "", err
	}
	ctx, cancel, err := d.begin(ctx, "DomainAlias")
	if err != nil {
		return "", err
	}
	defer cancel()
	var dom string
	err = d.pool.QueryRow(ctx, "SELECT domain FROM dir_domain_aliases WHERE alias = $1", a).Scan(&dom)
	if errors.Is(err, pgx.ErrNoRows) {
		err = fmt.Errorf("%w: domain alias %s", cluster.ErrNotFound, a)
	}
	return dom, d.fail(ctx, "DomainAlias", err)
}
