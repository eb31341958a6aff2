package cluster_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/mailsys/mailsys/cluster"
	"github.com/mailsys/mailsys/msstore"
	"github.com/mailsys/mailsys/userdata"
)

// watchedPeers are localPeers whose registry is a real LocalDirectory's,
// as its WatchRegistry reports it (as the node program's Peers do).
func watchedPeers(t *testing.T, d cluster.Directory) *localPeers {
	p := newLocalPeers()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		d.WatchRegistry(ctx, func(r cluster.Registry) {
			p.mu.Lock()
			p.reg = r
			p.mu.Unlock()
		})
	}()
	t.Cleanup(func() { cancel(); <-done })
	return p
}

// awaitRegistry waits (at most 2 s) until p has been told of d's registry
// as it is now.
func awaitRegistry(t *testing.T, p *localPeers, d cluster.Directory) {
	t.Helper()
	want, err := d.Registry(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Second)
	for p.Registry().Version < want.Version {
		if time.Now().After(deadline) {
			t.Fatalf("registry version %d not reported within 2 s", want.Version)
		}
		time.Sleep(time.Millisecond)
	}
}

// addDB gives UD node id an in-memory UserDB.
func addDB(t *testing.T, p *localPeers, id string, bodies userdata.BodyRefs) cluster.UserDB {
	db, err := userdata.NewMemory(userdata.MemoryConfig{Node: id, Bodies: bodies})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	p.mu.Lock()
	p.dbs[id] = db
	p.mu.Unlock()
	return db
}

// TestUsersGroups: with a UD group g (primary a, standby b) and a UD node
// c in no group, new users go to g and c only, recorded as "g" and "c";
// domains reach a and c but never the standby; once g is swapped to
// primary b and the registry reported, g's users' calls go to b at once.
func TestUsersGroups(t *testing.T) {
	ctx := t.Context()
	dir := openDir(t)
	for i, id := range []string{"a", "b", "c"} {
		if err := dir.PutNode(ctx, cluster.Node{ID: id, Num: uint32(i + 1), Roles: cluster.RoleUD, Addr: "127.0.0.1:1", Weight: 10}); err != nil {
			t.Fatal(err)
		}
	}
	g := cluster.Group{ID: "g", Primary: "a", Standby: "b", Epoch: 1, Synced: true}
	if err := dir.SwapGroup(ctx, cluster.Group{}, g); err != nil {
		t.Fatal(err)
	}
	p := watchedPeers(t, dir)
	mem := msstore.NewMemory(1)
	dbs := map[string]cluster.UserDB{}
	for _, id := range []string{"a", "b", "c"} {
		dbs[id] = addDB(t, p, id, mem)
	}
	awaitRegistry(t, p, dir)
	u := cluster.NewUsers(dir, p, nil)

	if err := u.CreateDomain(ctx, userdata.Domain{Name: "example.test"}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"a", "c"} {
		if _, err := dbs[id].Domain(ctx, "example.test"); err != nil {
			t.Errorf("domain on serving node %s: %v", id, err)
		}
	}
	if _, err := dbs["b"].Domain(ctx, "example.test"); !errors.Is(err, userdata.ErrNotFound) {
		t.Errorf("domain on the standby b: %v, want ErrNotFound (it gets it by replication)", err)
	}

	count := map[string]int{}
	var onG userdata.User
	for i := range 40 {
		nu, err := u.CreateUser(ctx, userdata.NewUser{Address: "user" + itoa(i) + "@example.test"})
		if err != nil {
			t.Fatal(err)
		}
		count[nu.Node]++
		if node, err := dir.UserNode(ctx, nu.ID); err != nil || node != nu.Node {
			t.Fatalf("Directory placement of %s: %q, %v; want %q", nu.Address, node, err, nu.Node)
		}
		if nu.Node == "g" {
			onG = nu
		}
	}
	if count["g"] != 20 || count["c"] != 20 {
		t.Fatalf("placements %v, want g 20 and c 20 (never a, b by name)", count)
	}
	if _, err := dbs["a"].LookupAddress(ctx, onG.Address); err != nil {
		t.Fatalf("user %s of g not on its primary a: %v", onG.Address, err)
	}
	if _, err := dbs["b"].LookupAddress(ctx, onG.Address); !errors.Is(err, userdata.ErrNotFound) {
		t.Fatalf("user %s of g on the standby b: %v, want ErrNotFound", onG.Address, err)
	}

	// The standby holds the user as replication would leave it, told
	// apart by its name; then g fails over to b.
	if err := dbs["b"].CreateDomain(ctx, userdata.Domain{Name: "example.test"}); err != nil {
		t.Fatal(err)
	}
	if _, err := dbs["b"].CreateUser(ctx, userdata.NewUser{ID: onG.ID, Address: onG.Address, Name: "on b", Node: "g"}); err != nil {
		t.Fatal(err)
	}
	if got, err := u.User(ctx, onG.ID); err != nil || got.Name != "" {
		t.Fatalf("User before the failover: %+v, %v; want a's (no name)", got, err)
	}
	promoted := cluster.Group{ID: "g", Primary: "b", Epoch: 2}
	if err := dir.SwapGroup(ctx, g, promoted); err != nil {
		t.Fatal(err)
	}
	awaitRegistry(t, p, dir)
	if got, err := u.User(ctx, onG.ID); err != nil || got.Name != "on b" {
		t.Fatalf("User after the failover: %+v, %v; want b's", got, err)
	}
	if got, err := u.LookupAddress(ctx, onG.Address); err != nil || got.Name != "on b" {
		t.Fatalf("LookupAddress after the failover: %+v, %v; want b's", got, err)
	}
	// b down: g's users are unavailable (a, out of the group now, is
	// not asked), c's are served.
	p.setDown("b", true)
	if _, err := u.User(ctx, onG.ID); !errors.Is(err, userdata.ErrUnavailable) {
		t.Fatalf("User of g with b down: %v, want ErrUnavailable", err)
	}
	p.setDown("b", false)

	// a has left g, which is named otherwise, so it serves by its own id
	// again and takes new users; b takes them as g.
	count = map[string]int{}
	for i := range 30 {
		nu, err := u.CreateUser(ctx, userdata.NewUser{Address: "late" + itoa(i) + "@example.test"})
		if err != nil {
			t.Fatal(err)
		}
		count[nu.Node]++
	}
	if count["g"] != 10 || count["a"] != 10 || count["c"] != 10 || count["b"] != 0 {
		t.Fatalf("placements after the failover %v, want g, a and c 10 each", count)
	}
	// a back in g as its standby: it takes no more users, nor domains.
	back := cluster.Group{ID: "g", Primary: "b", Standby: "a", Epoch: 2}
	if err := dir.SwapGroup(ctx, promoted, back); err != nil {
		t.Fatal(err)
	}
	awaitRegistry(t, p, dir)
	for i := range 10 {
		nu, err := u.CreateUser(ctx, userdata.NewUser{Address: "standby" + itoa(i) + "@example.test"})
		if err != nil || nu.Node == "a" || nu.Node == "b" {
			t.Fatalf("CreateUser with a standby again: %v on %q, want g or c", err, nu.Node)
		}
	}
	if err := u.CreateDomain(ctx, userdata.Domain{Name: "late.test"}); err != nil {
		t.Fatal(err)
	}
	if _, err := dbs["a"].Domain(ctx, "late.test"); !errors.Is(err, userdata.ErrNotFound) {
		t.Errorf("domain on the standby a: %v, want ErrNotFound", err)
	}
}

// TestUsersGroupNamedAfterNode: users placed on a UD node before it had a
// standby stay where they are when a group named after the node is made,
// and follow it at a failover.
func TestUsersGroupNamedAfterNode(t *testing.T) {
	ctx := t.Context()
	dir := openDir(t)
	for i, id := range []string{"a", "b"} {
		if err := dir.PutNode(ctx, cluster.Node{ID: id, Num: uint32(i + 1), Roles: cluster.RoleUD, Addr: "127.0.0.1:1", Weight: 10}); err != nil {
			t.Fatal(err)
		}
	}
	p := watchedPeers(t, dir)
	mem := msstore.NewMemory(1)
	dbA, dbB := addDB(t, p, "a", mem), addDB(t, p, "b", mem)
	awaitRegistry(t, p, dir)
	u := cluster.NewUsers(dir, p, nil)
	if err := u.CreateDomain(ctx, userdata.Domain{Name: "example.test"}); err != nil {
		t.Fatal(err)
	}
	var onA userdata.User
	for i := 0; onA.ID == 0; i++ {
		nu, err := u.CreateUser(ctx, userdata.NewUser{Address: "u" + itoa(i) + "@example.test"})
		if err != nil {
			t.Fatal(err)
		}
		if nu.Node == "a" {
			onA = nu
		}
	}
	g := cluster.Group{ID: "a", Primary: "a", Standby: "b", Epoch: 1}
	if err := dir.SwapGroup(ctx, cluster.Group{}, g); err != nil {
		t.Fatal(err)
	}
	awaitRegistry(t, p, dir)
	if got, err := u.User(ctx, onA.ID); err != nil || got.ID != onA.ID {
		t.Fatalf("User of a's after the group: %+v, %v", got, err)
	}
	if _, err := dbB.CreateUser(ctx, userdata.NewUser{ID: onA.ID, Address: onA.Address, Name: "on b", Node: "a"}); err != nil {
		t.Fatal(err)
	}
	if err := dir.SwapGroup(ctx, g, cluster.Group{ID: "a", Primary: "b", Standby: "a", Epoch: 2}); err != nil {
		t.Fatal(err)
	}
	awaitRegistry(t, p, dir)
	if got, err := u.User(ctx, onA.ID); err != nil || got.Name != "on b" {
		t.Fatalf("User after a's failover to b: %+v, %v; want b's", got, err)
	}
	// New users all go to the group (b's own id is no placement now).
	for i := range 10 {
		nu, err := u.CreateUser(ctx, userdata.NewUser{Address: "v" + itoa(i) + "@example.test"})
		if err != nil || nu.Node != "a" {
			t.Fatalf("CreateUser after the failover: %v on %q, want group a", err, nu.Node)
		}
		if _, err := dbA.LookupAddress(ctx, nu.Address); !errors.Is(err, userdata.ErrNotFound) {
			t.Fatalf("new user %s on the standby a: %v", nu.Address, err)
		}
	}
}

// TestLocalDirectoryGroupsReopen: groups and the version they left are
// read back when a LocalDirectory is opened again.
func TestLocalDirectoryGroupsReopen(t *testing.T) {
	ctx := t.Context()
	path := t.TempDir()
	d, err := cluster.OpenLocalDirectory(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i, id := range []string{"a", "b", "c"} {
		if err := d.PutNode(ctx, cluster.Node{ID: id, Num: uint32(i + 1), Roles: cluster.RoleUD, Addr: "127.0.0.1:1", Weight: 10}); err != nil {
			t.Fatal(err)
		}
	}
	g := cluster.Group{ID: "g", Primary: "a", Standby: "b", Epoch: 1}
	p := cluster.Group{ID: "g", Primary: "b", Standby: "a", Epoch: 9, Synced: true}
	h := cluster.Group{ID: "h", Primary: "c", Epoch: 3}
	for _, s := range [][2]cluster.Group{{{}, g}, {g, p}, {{}, h}} {
		if err := d.SwapGroup(ctx, s[0], s[1]); err != nil {
			t.Fatal(err)
		}
	}
	want, err := d.Registry(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	d, err = cluster.OpenLocalDirectory(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	got, err := d.Registry(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got.Version != want.Version || len(got.Groups) != 2 || got.Groups[0] != p || got.Groups[1] != h {
		t.Fatalf("reopened: version %d, groups %+v; want version %d, groups %+v", got.Version, got.Groups, want.Version, []cluster.Group{p, h})
	}
	if err := d.SwapGroup(ctx, g, cluster.Group{ID: "g", Primary: "a", Epoch: 10}); !errors.Is(err, cluster.ErrConflict) {
		t.Fatalf("swap from a stale group after reopening: %v, want ErrConflict", err)
	}
}

// TestUsersWatchFollowsGroup: a folder watched through Users gets the
// events of the group's primary, and of the new primary after a failover.
func TestUsersWatchFollowsGroup(t *testing.T) {
	ctx := t.Context()
	dir := openDir(t)
	for i, id := range []string{"a", "b"} {
		if err := dir.PutNode(ctx, cluster.Node{ID: id, Num: uint32(i + 1), Roles: cluster.RoleUD, Addr: "127.0.0.1:1", Weight: 10}); err != nil {
			t.Fatal(err)
		}
	}
	g := cluster.Group{ID: "g", Primary: "a", Standby: "b", Epoch: 1, Synced: true}
	if err := dir.SwapGroup(ctx, cluster.Group{}, g); err != nil {
		t.Fatal(err)
	}
	p := watchedPeers(t, dir)
	mem := msstore.NewMemory(1)
	dbs := map[string]cluster.UserDB{"a": addDB(t, p, "a", mem), "b": addDB(t, p, "b", mem)}
	awaitRegistry(t, p, dir)
	u := cluster.NewUsers(dir, p, nil)
	defer u.Close()
	if err := u.CreateDomain(ctx, userdata.Domain{Name: "example.test"}); err != nil {
		t.Fatal(err)
	}
	nu, err := u.CreateUser(ctx, userdata.NewUser{Address: "ann@example.test"})
	if err != nil {
		t.Fatal(err)
	}
	// b holds the user as replication would.
	if err := dbs["b"].CreateDomain(ctx, userdata.Domain{Name: "example.test"}); err != nil {
		t.Fatal(err)
	}
	if _, err := dbs["b"].CreateUser(ctx, userdata.NewUser{ID: nu.ID, Address: nu.Address, Node: "g"}); err != nil {
		t.Fatal(err)
	}
	inbox, err := u.Folder(ctx, nu.ID, userdata.Inbox)
	if err != nil {
		t.Fatal(err)
	}
	events := make(chan userdata.FolderEvent, 16)
	stop := u.Watch(nu.ID, inbox.ID, func(ev userdata.FolderEvent) { events <- ev })
	defer stop()
	appendOn := func(id string) {
		t.Helper()
		if _, err := dbs[id].Append(ctx, nu.ID, inbox.ID, userdata.NewMessage{Ref: msstore.Ref{Node: 1, ID: 1, Size: 1}, Size: 1, InternalDate: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	expect := func(what string) {
		t.Helper()
		select {
		case <-events:
		case <-time.After(2 * time.Second):
			t.Fatalf("no event %s", what)
		}
	}
	appendOn("a")
	expect("from the primary a")
	if err := dir.SwapGroup(ctx, g, cluster.Group{ID: "g", Primary: "b", Standby: "a", Epoch: 2}); err != nil {
		t.Fatal(err)
	}
	awaitRegistry(t, p, dir)
	time.Sleep(3 * 250 * time.Millisecond) // the watch moves within its check interval
	appendOn("a")                          // the old primary: no longer watched
	appendOn("b")
	expect("from the new primary b")
	select {
	case ev := <-events:
		t.Fatalf("a second event after the failover (the old primary still watched?): %+v", ev)
	case <-time.After(300 * time.Millisecond):
	}
}
