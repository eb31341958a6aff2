package dirtest

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/mailsys/mailsys/cluster"
)

// The subtests of UD replication groups (Directory.SwapGroup).

// groupNodes registers UD nodes ud1 to ud4 and an MS node ms1.
func groupNodes(t *testing.T, d cluster.Directory) {
	t.Helper()
	c := ctx(t)
	for i := uint32(1); i <= 4; i++ {
		must(t, "PutNode", d.PutNode(c, node(fmt.Sprintf("ud%d", i), i, cluster.RoleUD, 10)))
	}
	must(t, "PutNode", d.PutNode(c, node("ms1", 9, cluster.RoleMS, 10)))
}

// wantGroups checks the registry's groups, in order.
func wantGroups(t *testing.T, r cluster.Registry, want ...cluster.Group) {
	t.Helper()
	if !slices.Equal(r.Groups, want) {
		t.Errorf("registry groups %+v, want %+v", r.Groups, want)
	}
}

// swapStep makes a swap that must succeed and move the version, and
// returns the registry after it.
func swapStep(t *testing.T, d cluster.Directory, what string, old, new cluster.Group) cluster.Registry {
	t.Helper()
	before := registry(t, d).Version
	must(t, what, d.SwapGroup(ctx(t), old, new))
	r := registry(t, d)
	if r.Version <= before {
		t.Errorf("%s: version %d, not above %d", what, r.Version, before)
	}
	return r
}

// swapFails makes a swap that must fail with target and leave the
// registry as it was.
func swapFails(t *testing.T, d cluster.Directory, what string, old, new cluster.Group, target error) {
	t.Helper()
	before := registry(t, d)
	wantErr(t, what, d.SwapGroup(ctx(t), old, new), target)
	after := registry(t, d)
	if after.Version != before.Version || !slices.Equal(after.Groups, before.Groups) {
		t.Errorf("%s: the failed swap changed the registry: version %d to %d, groups %+v to %+v",
			what, before.Version, after.Version, before.Groups, after.Groups)
	}
}

func testGroupCreate(t *testing.T, d cluster.Directory) {
	groupNodes(t, d)
	wantGroups(t, registry(t, d))
	g1 := cluster.Group{ID: "g1", Primary: "ud1", Standby: "ud2", Epoch: 1}
	r := swapStep(t, d, "create g1", cluster.Group{}, g1)
	wantGroups(t, r, g1)
	if g, ok := r.Group("g1"); !ok || g != g1 {
		t.Errorf("Group(g1) = %+v, %v", g, ok)
	}
	for _, m := range []string{"ud1", "ud2"} {
		if g, ok := r.GroupOf(m); !ok || g.ID != "g1" {
			t.Errorf("GroupOf(%s) = %+v, %v; want g1", m, g, ok)
		}
	}
	if _, ok := r.GroupOf("ud3"); ok {
		t.Error("GroupOf(ud3) found a group")
	}
	if n, ok := r.Serving("g1"); !ok || n.ID != "ud1" {
		t.Errorf("Serving(g1) = %s, %v; want ud1", n.ID, ok)
	}
	if n, ok := r.Serving("ud3"); !ok || n.ID != "ud3" {
		t.Errorf("Serving(ud3) = %s, %v; want ud3", n.ID, ok)
	}
	if _, ok := r.Serving("ms1"); ok {
		t.Error("Serving(ms1), an MS node, found a UD node")
	}
	// A group named after its first primary, without a standby, and
	// synced.
	ud3 := cluster.Group{ID: "ud3", Primary: "ud3", Epoch: 7}
	ud3s := cluster.Group{ID: "ud4", Primary: "ud4", Epoch: 1, Synced: true}
	swapStep(t, d, "create ud3", cluster.Group{}, ud3)
	r = swapStep(t, d, "create ud4", cluster.Group{}, ud3s)
	wantGroups(t, r, g1, ud3, ud3s)
	swapFails(t, d, "create g1 again", cluster.Group{}, cluster.Group{ID: "g1", Primary: "ud1", Epoch: 1}, cluster.ErrExists)
}

func testGroupSwap(t *testing.T, d cluster.Directory) {
	groupNodes(t, d)
	g := cluster.Group{ID: "g1", Primary: "ud1", Standby: "ud2", Epoch: 1}
	swapStep(t, d, "create", cluster.Group{}, g)
	steps := []struct {
		what string
		new  cluster.Group
	}{
		{"standby synced", cluster.Group{ID: "g1", Primary: "ud1", Standby: "ud2", Epoch: 1, Synced: true}},
		{"promotion", cluster.Group{ID: "g1", Primary: "ud2", Epoch: 2}},
		{"a new standby", cluster.Group{ID: "g1", Primary: "ud2", Standby: "ud1", Epoch: 2}},
		{"the standby replaced", cluster.Group{ID: "g1", Primary: "ud2", Standby: "ud3", Epoch: 2}},
		{"a jump of epochs", cluster.Group{ID: "g1", Primary: "ud3", Standby: "ud2", Epoch: 10}},
	}
	for _, s := range steps {
		r := swapStep(t, d, s.what, g, s.new)
		wantGroups(t, r, s.new)
		if n, ok := r.Serving("g1"); !ok || n.ID != s.new.Primary {
			t.Errorf("%s: Serving(g1) = %s, %v; want %s", s.what, n.ID, ok, s.new.Primary)
		}
		g = s.new
	}
	// A node swapped out of the group can be removed; a member cannot.
	must(t, "RemoveNode ud1, out of the group", d.RemoveNode(ctx(t), "ud1"))
	wantErr(t, "RemoveNode of the standby", d.RemoveNode(ctx(t), "ud2"), cluster.ErrInvalid)
}

func testGroupConflict(t *testing.T, d cluster.Directory) {
	groupNodes(t, d)
	g1 := cluster.Group{ID: "g1", Primary: "ud1", Standby: "ud2", Epoch: 1}
	swapStep(t, d, "create", cluster.Group{}, g1)
	g2 := cluster.Group{ID: "g1", Primary: "ud2", Epoch: 2}
	swapStep(t, d, "promotion", g1, g2)
	// g1 is stale now: every swap from it is refused.
	swapFails(t, d, "promotion from a stale old", g1, cluster.Group{ID: "g1", Primary: "ud2", Epoch: 3}, cluster.ErrConflict)
	swapFails(t, d, "removal from a stale old", g1, cluster.Group{ID: "g1"}, cluster.ErrConflict)
	// Any field that differs is a conflict.
	for _, old := range []cluster.Group{
		{ID: "g1", Primary: "ud2", Epoch: 2, Synced: true},
		{ID: "g1", Primary: "ud2", Standby: "ud1", Epoch: 2},
		{ID: "g1", Primary: "ud2", Epoch: 1},
		{ID: "g1", Primary: "ud1", Epoch: 2},
	} {
		swapFails(t, d, fmt.Sprintf("swap from %+v", old), old, cluster.Group{ID: "g1", Primary: "ud2", Epoch: 3}, cluster.ErrConflict)
	}
	swapFails(t, d, "swap of a group that is not there", cluster.Group{ID: "g9", Primary: "ud3", Epoch: 1},
		cluster.Group{ID: "g9", Primary: "ud3", Epoch: 2}, cluster.ErrNotFound)
	swapFails(t, d, "swap with differing ids", g2, cluster.Group{ID: "g2", Primary: "ud2", Epoch: 3}, cluster.ErrInvalid)
	wantGroups(t, registry(t, d), g2)
}

func testGroupEpoch(t *testing.T, d cluster.Directory) {
	groupNodes(t, d)
	g := cluster.Group{ID: "g1", Primary: "ud1", Standby: "ud2", Epoch: 5}
	swapStep(t, d, "create", cluster.Group{}, g)
	swapFails(t, d, "epoch back", g, cluster.Group{ID: "g1", Primary: "ud2", Epoch: 4}, cluster.ErrInvalid)
	swapFails(t, d, "epoch 0", g, cluster.Group{ID: "g1", Primary: "ud2"}, cluster.ErrInvalid)
	swapFails(t, d, "create with epoch 0", cluster.Group{}, cluster.Group{ID: "g2", Primary: "ud3"}, cluster.ErrInvalid)
	// The same epoch (a standby added or synced) and a higher one are fine.
	same := cluster.Group{ID: "g1", Primary: "ud1", Standby: "ud2", Epoch: 5, Synced: true}
	swapStep(t, d, "same epoch", g, same)
	big := cluster.Group{ID: "g1", Primary: "ud2", Epoch: 1 << 40}
	r := swapStep(t, d, "a large epoch", same, big)
	wantGroups(t, r, big)
}

func testGroupInvalid(t *testing.T, d cluster.Directory) {
	groupNodes(t, d)
	c := ctx(t)
	g1 := cluster.Group{ID: "g1", Primary: "ud1", Standby: "ud2", Epoch: 1}
	swapStep(t, d, "create", cluster.Group{}, g1)
	bad := []struct {
		what string
		new  cluster.Group
	}{
		{"an unregistered primary", cluster.Group{ID: "g2", Primary: "ud9", Epoch: 1}},
		{"an unregistered standby", cluster.Group{ID: "g2", Primary: "ud3", Standby: "ud9", Epoch: 1}},
		{"an MS node as primary", cluster.Group{ID: "g2", Primary: "ms1", Epoch: 1}},
		{"an MS node as standby", cluster.Group{ID: "g2", Primary: "ud3", Standby: "ms1", Epoch: 1}},
		{"the standby as primary", cluster.Group{ID: "g2", Primary: "ud3", Standby: "ud3", Epoch: 1}},
		{"another group's primary", cluster.Group{ID: "g2", Primary: "ud1", Epoch: 1}},
		{"another group's standby", cluster.Group{ID: "g2", Primary: "ud3", Standby: "ud2", Epoch: 1}},
		{"a group named after another node", cluster.Group{ID: "ud4", Primary: "ud3", Epoch: 1}},
		{"no primary", cluster.Group{ID: "g2", Epoch: 1}},
		{"an empty id", cluster.Group{Primary: "ud3", Epoch: 1}},
		{"an invalid id", cluster.Group{ID: "G2", Primary: "ud3", Epoch: 1}},
		{"an id too long", cluster.Group{ID: "g" + string(make([]byte, 63)), Primary: "ud3", Epoch: 1}},
		{"an id with a NUL", cluster.Group{ID: "g\x002", Primary: "ud3", Epoch: 1}},
		{"an invalid primary id", cluster.Group{ID: "g2", Primary: "UD3", Epoch: 1}},
		{"an invalid standby id", cluster.Group{ID: "g2", Primary: "ud3", Standby: "u d4", Epoch: 1}},
	}
	for _, b := range bad {
		swapFails(t, d, "create with "+b.what, cluster.Group{}, b.new, cluster.ErrInvalid)
	}
	// Swaps of g1 to invalid members.
	swapFails(t, d, "swap to an MS primary", g1, cluster.Group{ID: "g1", Primary: "ms1", Epoch: 2}, cluster.ErrInvalid)
	swapFails(t, d, "swap to an unregistered standby", g1, cluster.Group{ID: "g1", Primary: "ud2", Standby: "ud9", Epoch: 2}, cluster.ErrInvalid)
	swapFails(t, d, "removal with a standby", g1, cluster.Group{ID: "g1", Standby: "ud2"}, cluster.ErrInvalid)
	// Members are held in the registry: not removed, not without the UD role.
	before := registry(t, d).Version
	wantErr(t, "RemoveNode of a primary", d.RemoveNode(c, "ud1"), cluster.ErrInvalid)
	wantErr(t, "RemoveNode of a standby", d.RemoveNode(c, "ud2"), cluster.ErrInvalid)
	wantErr(t, "PutNode taking the UD role from a primary", d.PutNode(c, node("ud1", 1, cluster.RoleMS, 10)), cluster.ErrInvalid)
	if r := registry(t, d); r.Version != before || !slices.Equal(ids(r), []string{"ms1", "ud1", "ud2", "ud3", "ud4"}) {
		t.Errorf("refused node changes changed the registry: version %d to %d, nodes %v", before, r.Version, ids(r))
	}
	// A member may still be changed otherwise.
	must(t, "PutNode of a primary with more roles", d.PutNode(c, node("ud1", 1, cluster.RoleUD|cluster.RoleFront, 5)))
	must(t, "SetMasked of a standby", d.SetMasked(c, "ud2", true))
	wantGroups(t, registry(t, d), g1)
}

func testGroupRemove(t *testing.T, d cluster.Directory) {
	groupNodes(t, d)
	c := ctx(t)
	g1 := cluster.Group{ID: "g1", Primary: "ud1", Standby: "ud2", Epoch: 3}
	g2 := cluster.Group{ID: "g2", Primary: "ud3", Epoch: 1}
	swapStep(t, d, "create g1", cluster.Group{}, g1)
	swapStep(t, d, "create g2", cluster.Group{}, g2)
	r := swapStep(t, d, "remove g1", g1, cluster.Group{ID: "g1"})
	wantGroups(t, r, g2)
	if _, ok := r.Group("g1"); ok {
		t.Error("Group(g1) found after its removal")
	}
	if _, ok := r.Serving("g1"); ok {
		t.Error("Serving(g1) found a node after its removal")
	}
	swapFails(t, d, "remove g1 again", g1, cluster.Group{ID: "g1"}, cluster.ErrNotFound)
	// Its members are free: they may be removed or join another group.
	must(t, "RemoveNode of g1's old primary", d.RemoveNode(c, "ud1"))
	swapStep(t, d, "g1's old standby into g2", g2, cluster.Group{ID: "g2", Primary: "ud3", Standby: "ud2", Epoch: 1})
	// The id may be taken again, with a fresh epoch.
	r = swapStep(t, d, "create g1 anew", cluster.Group{}, cluster.Group{ID: "g1", Primary: "ud4", Epoch: 1})
	wantGroups(t, r, cluster.Group{ID: "g1", Primary: "ud4", Epoch: 1}, cluster.Group{ID: "g2", Primary: "ud3", Standby: "ud2", Epoch: 1})
}

func testGroupWatch(t *testing.T, d cluster.Directory) {
	groupNodes(t, d)
	c := ctx(t)
	w := watch(t, d, 0)
	w.await("the registry at once", func(r cluster.Registry) bool { return len(r.Nodes) == 5 })
	hasGroup := func(want cluster.Group) func(cluster.Registry) bool {
		return func(r cluster.Registry) bool { g, ok := r.Group(want.ID); return ok && g == want }
	}
	g := cluster.Group{ID: "g1", Primary: "ud1", Standby: "ud2", Epoch: 1, Synced: true}
	must(t, "create", d.SwapGroup(c, cluster.Group{}, g))
	w.await("the group created", hasGroup(g))
	p := cluster.Group{ID: "g1", Primary: "ud2", Epoch: 2}
	must(t, "promotion", d.SwapGroup(c, g, p))
	r := w.await("the promotion", hasGroup(p))
	if n, ok := r.Serving("g1"); !ok || n.ID != "ud2" {
		t.Errorf("the watcher's Serving(g1) = %s, %v; want ud2", n.ID, ok)
	}
	must(t, "removal", d.SwapGroup(c, p, cluster.Group{ID: "g1"}))
	v := registry(t, d).Version
	w.await("the removal", func(r cluster.Registry) bool {
		_, ok := r.Group("g1")
		return !ok && r.Version >= v
	})
}

func testGroupConcurrent(t *testing.T, d cluster.Directory) {
	groupRace(t, []cluster.Directory{d})
}

func testSharedGroupRace(t *testing.T, a, b cluster.Directory) {
	groupRace(t, []cluster.Directory{a, b})
}

// groupRace has goroutines swap one group from the same old at once (as
// two fronts that both saw its primary die would): exactly one wins, the
// others get ErrConflict, and the group is the winner's.
func groupRace(t *testing.T, dirs []cluster.Directory) {
	groupNodes(t, dirs[0])
	c := ctx(t)
	old := cluster.Group{ID: "g1", Primary: "ud1", Standby: "ud2", Epoch: 1, Synced: true}
	must(t, "create", dirs[0].SwapGroup(c, cluster.Group{}, old))
	const n = 8
	for round := range 3 {
		errs := make([]error, n)
		news := make([]cluster.Group, n)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for g := range n {
			// Each a different new: a promotion with an epoch of its own.
			news[g] = cluster.Group{ID: "g1", Primary: old.Standby, Standby: old.Primary, Epoch: old.Epoch + 1 + uint64(g), Synced: g%2 == 0}
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				errs[g] = dirs[g%len(dirs)].SwapGroup(c, old, news[g])
			}()
		}
		close(start)
		wg.Wait()
		winner := -1
		for g, err := range errs {
			switch {
			case err == nil && winner >= 0:
				t.Errorf("round %d: goroutines %d and %d both won", round, winner, g)
			case err == nil:
				winner = g
			case !errors.Is(err, cluster.ErrConflict):
				t.Errorf("round %d: goroutine %d: %v, want ErrConflict", round, g, err)
			}
		}
		if winner < 0 {
			t.Fatalf("round %d: nobody won", round)
		}
		for _, d := range dirs {
			wantGroups(t, registry(t, d), news[winner])
		}
		old = news[winner]
	}
}
