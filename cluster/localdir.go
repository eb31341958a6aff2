package cluster

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/mailsys/mailsys/internal/fsutil"
	"github.com/mailsys/mailsys/internal/groupcommit"
	"github.com/mailsys/mailsys/internal/pebblelog"
	"github.com/mailsys/mailsys/internal/privatefs"
	"github.com/mailsys/mailsys/userdata"
)

// Limits on the Directory's names, as userdata keeps them.
const (
	maxLocalPart  = 64
	maxDomainName = 253
	// MaxAddressLen bounds an address a Directory accepts, in bytes: a
	// local part of 64 and a domain of 253 with the "@" between them
	// (318) fit; anything longer than 320 (RFC 3696's figure) is
	// ErrInvalid whatever its parts.
	MaxAddressLen = 320
)

// NormalAddress checks an address and returns it in the form every
// Directory compares addresses in: surrounding white space removed, the
// local part and the domain in lower case (strings.ToLower, so also
// non-ASCII letters, as userdata stores addresses), no trailing dot on the
// domain. The local part is 1 to 64 bytes without spaces, control
// characters or any of "\<>,;; the domain is as NormalDomain wants it.
// Other addresses give an error wrapping ErrInvalid.
func NormalAddress(a string) (string, error) {
	a = strings.TrimSpace(a)
	bad := func() (string, error) { return "", fmt.Errorf("%w: address %q", ErrInvalid, a) }
	if len(a) > MaxAddressLen || !utf8.ValidString(a) {
		return bad()
	}
	local, domain, ok := strings.Cut(a, "@")
	if !ok || local == "" {
		return bad()
	}
	for _, r := range local {
		if r <= ' ' || r == 0x7f || r == '"' || r == '\\' || r == '<' || r == '>' || r == ',' || r == ';' || unicode.IsSpace(r) {
			return bad()
		}
	}
	local = strings.ToLower(local)
	if len(local) > maxLocalPart {
		return bad()
	}
	d, err := NormalDomain(domain)
	if err != nil {
		return bad()
	}
	return local + "@" + d, nil
}

// NormalDomain checks a domain name and returns it in the form every
// Directory compares domains in: lower case, surrounding white space and a
// trailing dot removed. It is 1 to 253 bytes of dot-separated labels of 1
// to 63 bytes, each of letters (Unicode ones too), digits and hyphens, not
// starting or ending with a hyphen. Other names give an error wrapping
// ErrInvalid.
func NormalDomain(d string) (string, error) {
	d = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(d)), ".")
	if d == "" || len(d) > maxDomainName || !utf8.ValidString(d) {
		return "", fmt.Errorf("%w: domain %q", ErrInvalid, d)
	}
	for label := range strings.SplitSeq(d, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return "", fmt.Errorf("%w: domain %q", ErrInvalid, d)
		}
		for _, r := range label {
			if r != '-' && !unicode.IsLetter(r) && !unicode.IsDigit(r) {
				return "", fmt.Errorf("%w: domain %q", ErrInvalid, d)
			}
		}
	}
	return d, nil
}

// checkNodeID reports an invalid node id, wrapping ErrInvalid.
func checkNodeID(id string) error {
	if !nodeID.MatchString(id) {
		return fmt.Errorf("%w: node id %q", ErrInvalid, id)
	}
	return nil
}

// checkSequence reports an invalid sequence name, wrapping ErrInvalid:
// sequences are named as nodes are.
func checkSequence(name string) error {
	if !nodeID.MatchString(name) {
		return fmt.Errorf("%w: sequence name %q: want 1 to 63 lower-case letters, digits or hyphens, starting with a letter", ErrInvalid, name)
	}
	return nil
}

func checkUser(id userdata.UserID) error {
	if id == 0 {
		return fmt.Errorf("%w: user id 0", ErrInvalid)
	}
	return nil
}

// LocalDirectory is the embedded Directory: the registry, the placements,
// the sequences and the domain aliases in a Pebble database on one node.
// Only one process opens it (Pebble locks the directory); the other nodes
// reach it through the gRPC Directory that node serves (cluster/rpc).
//
// Every change is durable (synced) before its call returns, as the
// Directory is the record of placement; concurrent changes share their
// syncs (a group commit) and are applied one at a time, in a single
// order. Reads see every change that has returned. WatchRegistry is told
// of changes in the process, without polling. Nodes and groups are the
// registry: a change to either writes meta/version in the same batch.
//
// # Keys
//
//	meta/version          registry version, 8 bytes big-endian
//	node/<id>             a Node, JSON {num, roles, addr, weight, masked}
//	group/<id>            a Group, JSON {primary, standby, epoch, synced}
//	user/<id8>            a placement: node id, 0x00, primary address
//	user/<id8>/<address>  an alias of the user (empty value)
//	addr/<address>        the user: id8, then 'P' (primary) or 'A' (alias)
//	seq/<name>            the last number taken, 8 bytes big-endian
//	dalias/<alias>        the domain of a domain alias
//
// id8 is a user id in 8 bytes big-endian; addresses and domains are in
// their normal form (NormalAddress, NormalDomain).
//
// Its methods are safe for concurrent use.
type LocalDirectory struct {
	db  *pebble.DB
	log *slog.Logger
	q   groupcommit.Queue[*dirOp]

	mu      sync.RWMutex
	reg     Registry      // committed; replaced (never changed in place) by the commit leader
	changed chan struct{} // closed and replaced when reg is
	closed  bool
	done    chan struct{} // closed by Close
	calls   sync.WaitGroup
}

var (
	_ Directory        = (*LocalDirectory)(nil)
	_ SequenceAdvancer = (*LocalDirectory)(nil)
)

// Keys.
var (
	keyVersion   = []byte("meta/version")
	prefixNode   = []byte("node/")
	prefixGroup  = []byte("group/")
	prefixUser   = []byte("user/")
	prefixAddr   = []byte("addr/")
	prefixSeq    = []byte("seq/")
	prefixDAlias = []byte("dalias/")
)

// Kinds of address, the last byte of an addr/ value.
const (
	addrPrimary = 'P'
	addrAlias   = 'A'
)

func key(prefix []byte, s string) []byte { return append(slices.Clip(prefix), s...) }

func userKey(id userdata.UserID) []byte {
	return binary.BigEndian.AppendUint64(slices.Clip(prefixUser), uint64(id))
}

// aliasKey is user/<id8>/<address>.
func aliasKey(id userdata.UserID, addr string) []byte {
	return append(append(userKey(id), '/'), addr...)
}

// nodeRecord is a node's value under node/<id>.
type nodeRecord struct {
	Num    uint32 `json:"num"`
	Roles  Role   `json:"roles"`
	Addr   string `json:"addr"`
	Weight int    `json:"weight"`
	Masked bool   `json:"masked,omitempty"`
}

// groupRecord is a group's value under group/<id>.
type groupRecord struct {
	Primary string `json:"primary"`
	Standby string `json:"standby,omitempty"`
	Epoch   uint64 `json:"epoch"`
	Synced  bool   `json:"synced,omitempty"`
}

// OpenLocalDirectory opens (or creates) the embedded Directory in dir.
// Its files are private to the process's user. logger may be nil. It fails
// if another process (or another LocalDirectory of this one) has dir open.
func OpenLocalDirectory(dir string, logger *slog.Logger) (*LocalDirectory, error) {
	if dir == "" {
		return nil, fmt.Errorf("%w: directory: no path", ErrInvalid)
	}
	if logger == nil {
		logger = slog.Default()
	}
	log := logger.With("component", "directory")
	if err := os.MkdirAll(dir, fsutil.DirMode); err != nil {
		return nil, fmt.Errorf("cluster: directory: %w", err)
	}
	fsutil.TightenLog(log, dir)
	db, err := pebble.Open(dir, &pebble.Options{
		FS:     privatefs.New(vfs.Default),
		Logger: pebblelog.Logger{Log: log},
	})
	if err != nil {
		return nil, fmt.Errorf("cluster: directory: open %s: %w", dir, err)
	}
	d := &LocalDirectory{db: db, log: log, changed: make(chan struct{}), done: make(chan struct{})}
	d.q.Commit = d.commit
	if d.reg, err = loadRegistry(db); err != nil {
		db.Close()
		return nil, err
	}
	log.Info("directory open", "path", dir, "nodes", len(d.reg.Nodes), "version", d.reg.Version)
	return d, nil
}

// loadRegistry reads the registry from db.
func loadRegistry(r pebble.Reader) (Registry, error) {
	var reg Registry
	v, err := get(r, keyVersion)
	switch {
	case errors.Is(err, ErrNotFound):
	case err != nil:
		return Registry{}, err
	case len(v) != 8:
		return Registry{}, fmt.Errorf("cluster: directory: corrupt version (%d bytes)", len(v))
	default:
		reg.Version = binary.BigEndian.Uint64(v)
	}
	it, err := r.NewIter(&pebble.IterOptions{LowerBound: prefixNode, UpperBound: prefixEnd(prefixNode)})
	if err != nil {
		return Registry{}, fmt.Errorf("cluster: directory: %w", err)
	}
	defer it.Close()
	for it.First(); it.Valid(); it.Next() {
		id := string(it.Key()[len(prefixNode):])
		var rec nodeRecord
		if err := json.Unmarshal(it.Value(), &rec); err != nil {
			return Registry{}, fmt.Errorf("cluster: directory: node %s: %w", id, err)
		}
		reg.Nodes = append(reg.Nodes, Node{ID: id, Num: rec.Num, Roles: rec.Roles, Addr: rec.Addr, Weight: rec.Weight, Masked: rec.Masked})
	}
	if err := it.Error(); err != nil {
		return Registry{}, fmt.Errorf("cluster: directory: %w", err)
	}
	git, err := r.NewIter(&pebble.IterOptions{LowerBound: prefixGroup, UpperBound: prefixEnd(prefixGroup)})
	if err != nil {
		return Registry{}, fmt.Errorf("cluster: directory: %w", err)
	}
	defer git.Close()
	for git.First(); git.Valid(); git.Next() {
		id := string(git.Key()[len(prefixGroup):])
		var rec groupRecord
		if err := json.Unmarshal(git.Value(), &rec); err != nil {
			return Registry{}, fmt.Errorf("cluster: directory: group %s: %w", id, err)
		}
		reg.Groups = append(reg.Groups, Group{ID: id, Primary: rec.Primary, Standby: rec.Standby, Epoch: rec.Epoch, Synced: rec.Synced})
	}
	if err := git.Error(); err != nil {
		return Registry{}, fmt.Errorf("cluster: directory: %w", err)
	}
	return reg, nil
}

// prefixEnd is the smallest key above every key that starts with p.
func prefixEnd(p []byte) []byte {
	end := bytes.Clone(p)
	end[len(end)-1]++ // the prefixes end in '/', never 0xff
	return end
}

// get reads a key's value into a new slice; ErrNotFound if absent.
func get(r pebble.Reader, k []byte) ([]byte, error) {
	v, closer, err := r.Get(k)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("cluster: directory: %w", err)
	}
	b := bytes.Clone(v)
	closer.Close()
	return b, nil
}

// enter starts a call: ctx's error, or ErrClosed after Close; else the
// caller must call the function it returns when done.
func (d *LocalDirectory) enter(ctx context.Context) (func(), error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil, ErrClosed
	}
	d.calls.Add(1)
	return d.calls.Done, nil
}

// Close ends the Directory: WatchRegistry calls in progress return an
// error wrapping ErrClosed, Close waits for the other calls in progress,
// then closes the database. Calls after it, and a second Close, return
// ErrClosed.
func (d *LocalDirectory) Close() error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return ErrClosed
	}
	d.closed = true
	close(d.done)
	d.mu.Unlock()
	d.calls.Wait()
	if err := d.db.Close(); err != nil {
		return fmt.Errorf("cluster: directory: close: %w", err)
	}
	return nil
}

// dirOp is a change queued for the group commit.
type dirOp struct {
	// apply makes the change in t: it does all its reads (and returns any
	// error) before its first write, so that a failed change writes
	// nothing.
	apply func(t *dirTxn) error
	err   error
}

// dirTxn is a batch of changes being committed.
type dirTxn struct {
	b   *pebble.Batch // indexed: reads see the batch's writes
	reg *Registry     // the registry as the changes so far leave it; nil if untouched
	cur Registry      // the committed registry
}

// registry returns the registry as the changes so far leave it.
func (t *dirTxn) registry() Registry {
	if t.reg != nil {
		return *t.reg
	}
	return t.cur
}

// setRegistry records the registry a change leaves, a version above the
// last, and writes the changed node (or deletes it if gone).
func (t *dirTxn) setRegistry(nodes []Node, id string) error {
	r := Registry{Version: t.registry().Version + 1, Nodes: nodes, Groups: t.registry().Groups}
	if n, ok := r.Node(id); ok {
		v, err := json.Marshal(nodeRecord{Num: n.Num, Roles: n.Roles, Addr: n.Addr, Weight: n.Weight, Masked: n.Masked})
		if err != nil {
			return fmt.Errorf("cluster: directory: %w", err)
		}
		t.b.Set(key(prefixNode, id), v, nil)
	} else {
		t.b.Delete(key(prefixNode, id), nil)
	}
	t.b.Set(keyVersion, binary.BigEndian.AppendUint64(nil, r.Version), nil)
	t.reg = &r
	return nil
}

// setGroups records the registry a change of group id leaves (groups in
// ID order), a version above the last, and writes the group (or deletes
// it if gone).
func (t *dirTxn) setGroups(groups []Group, id string) error {
	r := Registry{Version: t.registry().Version + 1, Nodes: t.registry().Nodes, Groups: groups}
	if g, ok := r.Group(id); ok {
		v, err := json.Marshal(groupRecord{Primary: g.Primary, Standby: g.Standby, Epoch: g.Epoch, Synced: g.Synced})
		if err != nil {
			return fmt.Errorf("cluster: directory: %w", err)
		}
		t.b.Set(key(prefixGroup, id), v, nil)
	} else {
		t.b.Delete(key(prefixGroup, id), nil)
	}
	t.b.Set(keyVersion, binary.BigEndian.AppendUint64(nil, r.Version), nil)
	t.reg = &r
	return nil
}

// commit is the group commit's: it applies the batch's changes in order
// in one Pebble batch and syncs it once.
func (d *LocalDirectory) commit(ops []*dirOp) {
	d.mu.RLock()
	cur := d.reg
	d.mu.RUnlock()
	t := &dirTxn{b: d.db.NewIndexedBatch(), cur: cur}
	defer t.b.Close()
	writes := false
	for _, op := range ops {
		op.err = op.apply(t)
		writes = writes || op.err == nil
	}
	if !writes {
		return
	}
	if err := t.b.Commit(pebble.Sync); err != nil {
		err = fmt.Errorf("cluster: directory: commit: %w", err)
		d.log.Error("directory commit failed", "err", err, "changes", len(ops))
		for _, op := range ops {
			if op.err == nil {
				op.err = err
			}
		}
		return
	}
	if t.reg != nil {
		d.mu.Lock()
		d.reg = *t.reg
		close(d.changed)
		d.changed = make(chan struct{})
		d.mu.Unlock()
	}
}

// change runs apply in the group commit and returns its outcome once it
// is durable.
func (d *LocalDirectory) change(ctx context.Context, apply func(t *dirTxn) error) error {
	leave, err := d.enter(ctx)
	if err != nil {
		return err
	}
	defer leave()
	op := &dirOp{apply: apply}
	d.q.Do(op, nil)
	return op.err
}

// Registry returns the node registry now.
func (d *LocalDirectory) Registry(ctx context.Context) (Registry, error) {
	leave, err := d.enter(ctx)
	if err != nil {
		return Registry{}, err
	}
	defer leave()
	d.mu.RLock()
	defer d.mu.RUnlock()
	return cloneRegistry(d.reg), nil
}

func cloneRegistry(r Registry) Registry {
	r.Nodes = slices.Clone(r.Nodes)
	r.Groups = slices.Clone(r.Groups)
	return r
}

// PutNode registers n or replaces the node with its ID.
func (d *LocalDirectory) PutNode(ctx context.Context, n Node) error {
	if err := n.Validate(); err != nil {
		return err
	}
	return d.change(ctx, func(t *dirTxn) error {
		r := t.registry()
		if o, ok := r.ByNum(n.Num); ok && o.ID != n.ID {
			return fmt.Errorf("%w: node number %d is node %s's", ErrExists, n.Num, o.ID)
		}
		if err := r.CheckNodeChange(n.ID, &n); err != nil {
			return err
		}
		nodes := slices.DeleteFunc(slices.Clone(r.Nodes), func(o Node) bool { return o.ID == n.ID })
		i, _ := slices.BinarySearchFunc(nodes, n.ID, func(o Node, id string) int { return strings.Compare(o.ID, id) })
		return t.setRegistry(slices.Insert(nodes, i, n), n.ID)
	})
}

// updateNode changes node id in the registry with fn.
func (d *LocalDirectory) updateNode(ctx context.Context, id string, fn func(*Node)) error {
	if err := checkNodeID(id); err != nil {
		return err
	}
	return d.change(ctx, func(t *dirTxn) error {
		nodes := slices.Clone(t.registry().Nodes)
		i := slices.IndexFunc(nodes, func(n Node) bool { return n.ID == id })
		if i < 0 {
			return fmt.Errorf("%w: node %s", ErrNotFound, id)
		}
		fn(&nodes[i])
		return t.setRegistry(nodes, id)
	})
}

// SetWeight sets a node's weight, 0 to MaxWeight.
func (d *LocalDirectory) SetWeight(ctx context.Context, id string, weight int) error {
	if weight < 0 || weight > MaxWeight {
		return fmt.Errorf("%w: weight %d, want 0 to %d", ErrInvalid, weight, MaxWeight)
	}
	return d.updateNode(ctx, id, func(n *Node) { n.Weight = weight })
}

// SetMasked masks a node, or unmasks it.
func (d *LocalDirectory) SetMasked(ctx context.Context, id string, masked bool) error {
	return d.updateNode(ctx, id, func(n *Node) { n.Masked = masked })
}

// RemoveNode takes a node out of the registry; its users stay placed. A
// member of a group is refused (ErrInvalid).
func (d *LocalDirectory) RemoveNode(ctx context.Context, id string) error {
	if err := checkNodeID(id); err != nil {
		return err
	}
	return d.change(ctx, func(t *dirTxn) error {
		nodes := slices.Clone(t.registry().Nodes)
		i := slices.IndexFunc(nodes, func(n Node) bool { return n.ID == id })
		if i < 0 {
			return fmt.Errorf("%w: node %s", ErrNotFound, id)
		}
		if err := t.registry().CheckNodeChange(id, nil); err != nil {
			return err
		}
		return t.setRegistry(slices.Delete(nodes, i, i+1), id)
	})
}

// SwapGroup replaces group old with new (compare-and-set), as
// Directory.SwapGroup says; the checks are Registry.CheckSwap's, made in
// the group commit against the registry as the changes before it leave
// it, so concurrent swaps from one old have one winner.
func (d *LocalDirectory) SwapGroup(ctx context.Context, old, new Group) error {
	return d.change(ctx, func(t *dirTxn) error {
		r := t.registry()
		if err := r.CheckSwap(old, new); err != nil {
			return err
		}
		groups := slices.DeleteFunc(slices.Clone(r.Groups), func(g Group) bool { return g.ID == new.ID })
		if new.Primary != "" {
			i, _ := slices.BinarySearchFunc(groups, new.ID, func(g Group, id string) int { return strings.Compare(g.ID, id) })
			groups = slices.Insert(groups, i, new)
		}
		return t.setGroups(groups, new.ID)
	})
}

// WatchRegistry calls fn with the registry now and after each change, on
// the calling goroutine, until ctx is done (it returns ctx's error) or the
// Directory is closed (ErrClosed). Changes made while fn runs are given
// to it as one registry, the latest, once it returns.
func (d *LocalDirectory) WatchRegistry(ctx context.Context, fn func(Registry)) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	var last uint64
	first := true
	for {
		d.mu.RLock()
		reg, changed, closed := d.reg, d.changed, d.closed
		d.mu.RUnlock()
		if closed {
			return ErrClosed
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if first || reg.Version != last {
			fn(cloneRegistry(reg))
			first, last = false, reg.Version
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-d.done:
			return ErrClosed
		case <-changed:
		}
	}
}

// NextID allocates the next number of the named sequence, from 1.
func (d *LocalDirectory) NextID(ctx context.Context, sequence string) (uint64, error) {
	if err := checkSequence(sequence); err != nil {
		return 0, err
	}
	var n uint64
	err := d.change(ctx, func(t *dirTxn) error {
		k := key(prefixSeq, sequence)
		v, err := get(t.b, k)
		switch {
		case errors.Is(err, ErrNotFound):
		case err != nil:
			return err
		case len(v) != 8:
			return fmt.Errorf("cluster: directory: sequence %s: corrupt value", sequence)
		default:
			n = binary.BigEndian.Uint64(v)
		}
		if n == 1<<64-1 {
			return fmt.Errorf("%w: sequence %s exhausted", ErrInvalid, sequence)
		}
		n++
		t.b.Set(k, binary.BigEndian.AppendUint64(nil, n), nil)
		return nil
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}

// AdvanceID moves the named sequence past past, so that NextID never
// returns it (SequenceAdvancer): a registration chose that id itself.
func (d *LocalDirectory) AdvanceID(ctx context.Context, sequence string, past uint64) error {
	if err := checkSequence(sequence); err != nil {
		return err
	}
	return d.change(ctx, func(t *dirTxn) error {
		k := key(prefixSeq, sequence)
		v, err := get(t.b, k)
		switch {
		case errors.Is(err, ErrNotFound):
		case err != nil:
			return err
		case len(v) != 8:
			return fmt.Errorf("cluster: directory: sequence %s: corrupt value", sequence)
		case binary.BigEndian.Uint64(v) >= past:
			return nil
		}
		t.b.Set(k, binary.BigEndian.AppendUint64(nil, past), nil)
		return nil
	})
}

// placement is a user's record under user/<id8>.
type placement struct {
	node, primary string
}

func (p placement) encode() []byte { return []byte(p.node + "\x00" + p.primary) }

func decodePlacement(id userdata.UserID, v []byte) (placement, error) {
	node, primary, ok := strings.Cut(string(v), "\x00")
	if !ok {
		return placement{}, fmt.Errorf("cluster: directory: user %d: corrupt placement", id)
	}
	return placement{node: node, primary: primary}, nil
}

// userPlacement reads user id's placement.
func userPlacement(r pebble.Reader, id userdata.UserID) (placement, error) {
	v, err := get(r, userKey(id))
	if errors.Is(err, ErrNotFound) {
		return placement{}, fmt.Errorf("%w: user %d", ErrNotFound, id)
	}
	if err != nil {
		return placement{}, err
	}
	return decodePlacement(id, v)
}

// addressOwner reads the user an address belongs to, and whether it is
// the user's primary address.
func addressOwner(r pebble.Reader, addr string) (userdata.UserID, bool, error) {
	v, err := get(r, key(prefixAddr, addr))
	if errors.Is(err, ErrNotFound) {
		return 0, false, fmt.Errorf("%w: address %s", ErrNotFound, addr)
	}
	if err != nil {
		return 0, false, err
	}
	if len(v) != 9 || v[8] != addrPrimary && v[8] != addrAlias {
		return 0, false, fmt.Errorf("cluster: directory: address %s: corrupt value", addr)
	}
	return userdata.UserID(binary.BigEndian.Uint64(v)), v[8] == addrPrimary, nil
}

func addrValue(id userdata.UserID, kind byte) []byte {
	return append(binary.BigEndian.AppendUint64(nil, uint64(id)), kind)
}

// addressFree fails with ErrExists if addr belongs to someone.
func addressFree(r pebble.Reader, addr string) error {
	owner, _, err := addressOwner(r, addr)
	switch {
	case errors.Is(err, ErrNotFound):
		return nil
	case err != nil:
		return err
	}
	return fmt.Errorf("%w: address %s is user %d's", ErrExists, addr, owner)
}

// PlaceUser records that user id, of primary address address, lives on UD
// node node (which need not be registered).
func (d *LocalDirectory) PlaceUser(ctx context.Context, id userdata.UserID, address, node string) error {
	addr, err := NormalAddress(address)
	if err != nil {
		return err
	}
	if err := errors.Join(checkUser(id), checkNodeID(node)); err != nil {
		return err
	}
	return d.change(ctx, func(t *dirTxn) error {
		if _, err := userPlacement(t.b, id); err == nil {
			return fmt.Errorf("%w: user %d", ErrExists, id)
		} else if !errors.Is(err, ErrNotFound) {
			return err
		}
		if err := addressFree(t.b, addr); err != nil {
			return err
		}
		t.b.Set(userKey(id), placement{node: node, primary: addr}.encode(), nil)
		t.b.Set(key(prefixAddr, addr), addrValue(id, addrPrimary), nil)
		return nil
	})
}

// RemoveUser forgets user id and its addresses.
func (d *LocalDirectory) RemoveUser(ctx context.Context, id userdata.UserID) error {
	if err := checkUser(id); err != nil {
		return err
	}
	return d.change(ctx, func(t *dirTxn) error {
		p, err := userPlacement(t.b, id)
		if err != nil {
			return err
		}
		lo := aliasKey(id, "")
		it, err := t.b.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: prefixEnd(lo)})
		if err != nil {
			return fmt.Errorf("cluster: directory: %w", err)
		}
		var aliases [][]byte
		for it.First(); it.Valid(); it.Next() {
			aliases = append(aliases, bytes.Clone(it.Key()))
		}
		if err := errors.Join(it.Error(), it.Close()); err != nil {
			return fmt.Errorf("cluster: directory: %w", err)
		}
		for _, k := range aliases {
			t.b.Delete(k, nil)
			t.b.Delete(key(prefixAddr, string(k[len(lo):])), nil)
		}
		t.b.Delete(key(prefixAddr, p.primary), nil)
		t.b.Delete(userKey(id), nil)
		return nil
	})
}

// UserNode returns the UD node of user id.
func (d *LocalDirectory) UserNode(ctx context.Context, id userdata.UserID) (string, error) {
	if err := checkUser(id); err != nil {
		return "", err
	}
	leave, err := d.enter(ctx)
	if err != nil {
		return "", err
	}
	defer leave()
	p, err := userPlacement(d.db, id)
	if err != nil {
		return "", err
	}
	return p.node, nil
}

// LookupAddress returns the user address (primary or alias) belongs to.
func (d *LocalDirectory) LookupAddress(ctx context.Context, address string) (Placement, error) {
	addr, err := NormalAddress(address)
	if err != nil {
		return Placement{}, err
	}
	leave, err := d.enter(ctx)
	if err != nil {
		return Placement{}, err
	}
	defer leave()
	snap := d.db.NewSnapshot()
	defer snap.Close()
	id, _, err := addressOwner(snap, addr)
	if err != nil {
		return Placement{}, err
	}
	p, err := userPlacement(snap, id)
	if err != nil {
		return Placement{}, fmt.Errorf("cluster: directory: address %s: %w", addr, err)
	}
	return Placement{User: id, Node: p.node}, nil
}

// AddAddress records an alias of user id.
func (d *LocalDirectory) AddAddress(ctx context.Context, address string, id userdata.UserID) error {
	addr, err := NormalAddress(address)
	if err != nil {
		return err
	}
	if err := checkUser(id); err != nil {
		return err
	}
	return d.change(ctx, func(t *dirTxn) error {
		if _, err := userPlacement(t.b, id); err != nil {
			return err
		}
		if err := addressFree(t.b, addr); err != nil {
			return err
		}
		t.b.Set(key(prefixAddr, addr), addrValue(id, addrAlias), nil)
		t.b.Set(aliasKey(id, addr), nil, nil)
		return nil
	})
}

// RemoveAddress forgets an alias; a primary address is ErrInvalid.
func (d *LocalDirectory) RemoveAddress(ctx context.Context, address string) error {
	addr, err := NormalAddress(address)
	if err != nil {
		return err
	}
	return d.change(ctx, func(t *dirTxn) error {
		id, primary, err := addressOwner(t.b, addr)
		if err != nil {
			return err
		}
		if primary {
			return fmt.Errorf("%w: %s is user %d's primary address, removed only with the user", ErrInvalid, addr, id)
		}
		t.b.Delete(key(prefixAddr, addr), nil)
		t.b.Delete(aliasKey(id, addr), nil)
		return nil
	})
}

// PutDomainAlias records (or replaces) alias as another name of domain.
func (d *LocalDirectory) PutDomainAlias(ctx context.Context, alias, domain string) error {
	a, err1 := NormalDomain(alias)
	dom, err2 := NormalDomain(domain)
	if err := errors.Join(err1, err2); err != nil {
		return err
	}
	if a == dom {
		return fmt.Errorf("%w: domain %s as an alias of itself", ErrInvalid, a)
	}
	return d.change(ctx, func(t *dirTxn) error {
		t.b.Set(key(prefixDAlias, a), []byte(dom), nil)
		return nil
	})
}

// DomainAlias returns the domain alias is another name of.
func (d *LocalDirectory) DomainAlias(ctx context.Context, alias string) (string, error) {
	a, err := NormalDomain(alias)
	if err != nil {
		return "", err
	}
	leave, err := d.enter(ctx)
	if err != nil {
		return "", err
	}
	defer leave()
	v, err := get(d.db, key(prefixDAlias, a))
	if errors.Is(err, ErrNotFound) {
		return "", fmt.Errorf("%w: domain alias %s", ErrNotFound, a)
	}
	if err != nil {
		return "", err
	}
	return string(v), nil
}
