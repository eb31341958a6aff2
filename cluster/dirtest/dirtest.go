package dirtest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mailsys/mailsys/cluster"
	"github.com/mailsys/mailsys/userdata"
)

// promptly bounds the wait for a watcher to see a change.
const promptly = 2 * time.Second

// Run runs the conformance suite against the Directories open makes, one
// fresh, empty Directory per subtest (see the package documentation for
// what the suite does with it).
func Run(t *testing.T, open func(t *testing.T) cluster.Directory) {
	t.Helper()
	tests := []struct {
		name string
		fn   func(t *testing.T, d cluster.Directory)
	}{
		{"Empty", testEmpty},
		{"PutNode", testPutNode},
		{"PutNodeInvalid", testPutNodeInvalid},
		{"ReplaceNode", testReplaceNode},
		{"SetWeight", testSetWeight},
		{"SetMasked", testSetMasked},
		{"RemoveNode", testRemoveNode},
		{"Version", testVersion},
		{"Watch", testWatch},
		{"WatchCoalesces", testWatchCoalesces},
		{"NextID", testNextID},
		{"NextIDConcurrent", testNextIDConcurrent},
		{"AdvanceID", testAdvanceID},
		{"PlaceUser", testPlaceUser},
		{"PlaceUserInvalid", testPlaceUserInvalid},
		{"PlaceUserConcurrent", testPlaceUserConcurrent},
		{"RemoveUser", testRemoveUser},
		{"Addresses", testAddresses},
		{"DomainAlias", testDomainAlias},
		{"GroupCreate", testGroupCreate},
		{"GroupSwap", testGroupSwap},
		{"GroupConflict", testGroupConflict},
		{"GroupEpoch", testGroupEpoch},
		{"GroupInvalid", testGroupInvalid},
		{"GroupRemove", testGroupRemove},
		{"GroupWatch", testGroupWatch},
		{"GroupConcurrent", testGroupConcurrent},
		{"Canceled", testCanceled},
		{"Close", testClose},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := open(t)
			closeAtEnd(t, d)
			tc.fn(t, d)
		})
	}
}

// RunShared runs the subtests that need two Directories on one backing
// store: what is done through one is seen through the other, and races
// between them have one winner. open makes a fresh, empty store per
// subtest and returns two Directories on it (the suite closes both).
func RunShared(t *testing.T, open func(t *testing.T) (a, b cluster.Directory)) {
	t.Helper()
	tests := []struct {
		name string
		fn   func(t *testing.T, a, b cluster.Directory)
	}{
		{"Registry", testSharedRegistry},
		{"Watch", testSharedWatch},
		{"Users", testSharedUsers},
		{"NextID", testSharedNextID},
		{"PlaceUserRace", testSharedPlaceRace},
		{"GroupRace", testSharedGroupRace},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, b := open(t)
			closeAtEnd(t, a)
			closeAtEnd(t, b)
			tc.fn(t, a, b)
		})
	}
}

// closeAtEnd closes d when the subtest ends; ErrClosed (the subtest closed
// it) is fine.
func closeAtEnd(t *testing.T, d cluster.Directory) {
	t.Cleanup(func() {
		if err := d.Close(); err != nil && !errors.Is(err, cluster.ErrClosed) {
			t.Errorf("Close: %v", err)
		}
	})
}

// ctx is the context of the suite's calls: the test's, bounded.
func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

func wantErr(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Errorf("%s: err %v, want %v", what, err, target)
	}
}

func must(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func node(id string, num uint32, roles cluster.Role, weight int) cluster.Node {
	return cluster.Node{ID: id, Num: num, Roles: roles, Addr: "127.0.0.1:" + fmt.Sprint(7000+num), Weight: weight}
}

func registry(t *testing.T, d cluster.Directory) cluster.Registry {
	t.Helper()
	r, err := d.Registry(ctx(t))
	must(t, "Registry", err)
	return r
}

func ids(r cluster.Registry) []string {
	var s []string
	for _, n := range r.Nodes {
		s = append(s, n.ID)
	}
	return s
}

func wantNode(t *testing.T, r cluster.Registry, want cluster.Node) {
	t.Helper()
	got, ok := r.Node(want.ID)
	if !ok {
		t.Errorf("registry %v: no node %s", ids(r), want.ID)
		return
	}
	if got != want {
		t.Errorf("node %s: %+v, want %+v", want.ID, got, want)
	}
}

func testEmpty(t *testing.T, d cluster.Directory) {
	c := ctx(t)
	if r := registry(t, d); len(r.Nodes) != 0 {
		t.Errorf("new directory: nodes %v", ids(r))
	}
	_, err := d.UserNode(c, 1)
	wantErr(t, "UserNode of an unknown user", err, cluster.ErrNotFound)
	_, err = d.LookupAddress(c, "nobody@example.org")
	wantErr(t, "LookupAddress of an unknown address", err, cluster.ErrNotFound)
	_, err = d.DomainAlias(c, "example.net")
	wantErr(t, "DomainAlias of an unknown alias", err, cluster.ErrNotFound)
	wantErr(t, "RemoveUser of an unknown user", d.RemoveUser(c, 1), cluster.ErrNotFound)
	wantErr(t, "RemoveAddress of an unknown address", d.RemoveAddress(c, "nobody@example.org"), cluster.ErrNotFound)
	wantErr(t, "AddAddress to an unknown user", d.AddAddress(c, "nobody@example.org", 1), cluster.ErrNotFound)
}

func testPutNode(t *testing.T, d cluster.Directory) {
	c := ctx(t)
	nodes := []cluster.Node{
		node("ud1", 2, cluster.RoleUD, 100),
		{ID: "front1", Num: 3, Roles: cluster.RoleFront}, // a front needs no address
		node("ms1", 1, cluster.RoleMS|cluster.RoleUD, cluster.MaxWeight),
		node("ms-2", 4, cluster.RoleMS, 0),
	}
	nodes[3].Masked = true
	for _, n := range nodes {
		must(t, "PutNode "+n.ID, d.PutNode(c, n))
	}
	r := registry(t, d)
	if want := []string{"front1", "ms-2", "ms1", "ud1"}; !slices.Equal(ids(r), want) {
		t.Errorf("registry nodes %v, want %v (in ID order)", ids(r), want)
	}
	for _, n := range nodes {
		wantNode(t, r, n)
	}
	if n, ok := r.ByNum(4); !ok || n.ID != "ms-2" {
		t.Errorf("ByNum(4) = %v, %v", n, ok)
	}
	// Another node with a number in use.
	wantErr(t, "PutNode with ud1's number", d.PutNode(c, node("ud2", 2, cluster.RoleUD, 1)), cluster.ErrExists)
	if r2 := registry(t, d); !slices.Equal(ids(r2), ids(r)) || r2.Version != r.Version {
		t.Errorf("after a refused PutNode: nodes %v version %d, want %v version %d", ids(r2), r2.Version, ids(r), r.Version)
	}
	// The registry returned is the caller's: changing it changes nothing.
	r.Nodes[0].Weight = 77
	if n, _ := registry(t, d).Node(r.Nodes[0].ID); n.Weight == 77 {
		t.Error("changing a returned Registry changed the directory's")
	}
}

func testPutNodeInvalid(t *testing.T, d cluster.Directory) {
	c := ctx(t)
	must(t, "PutNode", d.PutNode(c, node("ud1", 1, cluster.RoleUD, 10)))
	before := registry(t, d)
	bad := map[string]cluster.Node{
		"empty id":        node("", 2, cluster.RoleUD, 1),
		"upper-case id":   node("UD2", 2, cluster.RoleUD, 1),
		"id with a digit": node("2ud", 2, cluster.RoleUD, 1),
		"id with a space": node("ud 2", 2, cluster.RoleUD, 1),
		"long id":         node("u"+strings.Repeat("d", 63), 2, cluster.RoleUD, 1),
		"number 0":        node("ud2", 0, cluster.RoleUD, 1),
		"no roles":        node("ud2", 2, 0, 1),
		"unknown role":    node("ud2", 2, cluster.RoleUD|0x40, 1),
		"UD no address":   {ID: "ud2", Num: 2, Roles: cluster.RoleUD, Weight: 1},
		"MS no address":   {ID: "ms2", Num: 2, Roles: cluster.RoleMS, Weight: 1},
		"weight -1":       node("ud2", 2, cluster.RoleUD, -1),
		"weight too high": node("ud2", 2, cluster.RoleUD, cluster.MaxWeight+1),
		"replacement bad": node("ud1", 1, cluster.RoleUD, -5),
		"address no port": {ID: "ud2", Num: 2, Roles: cluster.RoleUD, Addr: "127.0.0.1", Weight: 1},
		"long address":    {ID: "ud2", Num: 2, Roles: cluster.RoleUD, Addr: strings.Repeat("a", cluster.MaxAddrLen) + ":1", Weight: 1},
	}
	for what, n := range bad {
		wantErr(t, "PutNode "+what, d.PutNode(c, n), cluster.ErrInvalid)
	}
	after := registry(t, d)
	if !slices.Equal(ids(after), ids(before)) || after.Version != before.Version {
		t.Errorf("after refused PutNodes: nodes %v version %d, want %v version %d", ids(after), after.Version, ids(before), before.Version)
	}
	wantNode(t, after, before.Nodes[0])
}

func testReplaceNode(t *testing.T, d cluster.Directory) {
	c := ctx(t)
	must(t, "PutNode", d.PutNode(c, node("ud1", 1, cluster.RoleUD, 10)))
	must(t, "PutNode", d.PutNode(c, node("ms1", 2, cluster.RoleMS, 10)))
	// The same node again, with its own number: a replacement.
	n := node("ud1", 1, cluster.RoleUD|cluster.RoleFront, 20)
	n.Addr = "10.0.0.1:7443"
	n.Masked = true
	must(t, "PutNode replacing ud1", d.PutNode(c, n))
	r := registry(t, d)
	if len(r.Nodes) != 2 {
		t.Fatalf("nodes %v after a replacement, want 2", ids(r))
	}
	wantNode(t, r, n)
	// A new number for it, free.
	n.Num = 9
	must(t, "PutNode renumbering ud1", d.PutNode(c, n))
	r = registry(t, d)
	wantNode(t, r, n)
	if _, ok := r.ByNum(1); ok {
		t.Error("ud1's old number 1 still in the registry")
	}
	// Its old number is free again; ms1's is not.
	must(t, "PutNode with ud1's old number", d.PutNode(c, node("ud2", 1, cluster.RoleUD, 1)))
	n.Num = 2
	wantErr(t, "PutNode renumbering ud1 to ms1's number", d.PutNode(c, n), cluster.ErrExists)
	n.Num = 9
	wantNode(t, registry(t, d), n)
}

func testSetWeight(t *testing.T, d cluster.Directory) {
	c := ctx(t)
	n := node("ud1", 1, cluster.RoleUD, 10)
	must(t, "PutNode", d.PutNode(c, n))
	for _, w := range []int{0, cluster.MaxWeight, 1, 5000} {
		must(t, fmt.Sprint("SetWeight ", w), d.SetWeight(c, "ud1", w))
		n.Weight = w
		wantNode(t, registry(t, d), n)
	}
	before := registry(t, d)
	for _, w := range []int{-1, cluster.MaxWeight + 1, -1 << 40, 1 << 40} {
		wantErr(t, fmt.Sprint("SetWeight ", w), d.SetWeight(c, "ud1", w), cluster.ErrInvalid)
	}
	wantErr(t, "SetWeight of an unknown node", d.SetWeight(c, "ud2", 5), cluster.ErrNotFound)
	wantErr(t, "SetWeight of an empty id", d.SetWeight(c, "", 5), cluster.ErrInvalid)
	wantErr(t, "SetWeight of an invalid id", d.SetWeight(c, "UD 1", 5), cluster.ErrInvalid)
	after := registry(t, d)
	wantNode(t, after, n)
	if after.Version != before.Version {
		t.Errorf("refused SetWeights moved the version from %d to %d", before.Version, after.Version)
	}
}

func testSetMasked(t *testing.T, d cluster.Directory) {
	c := ctx(t)
	n := node("ms1", 1, cluster.RoleMS, 10)
	must(t, "PutNode", d.PutNode(c, n))
	for _, m := range []bool{true, false, true} {
		must(t, fmt.Sprint("SetMasked ", m), d.SetMasked(c, "ms1", m))
		n.Masked = m
		wantNode(t, registry(t, d), n)
	}
	wantErr(t, "SetMasked of an unknown node", d.SetMasked(c, "ms2", true), cluster.ErrNotFound)
	wantErr(t, "SetMasked of an empty id", d.SetMasked(c, "", true), cluster.ErrInvalid)
	wantErr(t, "SetMasked of an invalid id", d.SetMasked(c, "-x", true), cluster.ErrInvalid)
	wantNode(t, registry(t, d), n)
}

func testRemoveNode(t *testing.T, d cluster.Directory) {
	c := ctx(t)
	must(t, "PutNode", d.PutNode(c, node("ud1", 1, cluster.RoleUD, 10)))
	must(t, "PutNode", d.PutNode(c, node("ud2", 2, cluster.RoleUD, 10)))
	must(t, "PlaceUser", d.PlaceUser(c, 7, "alice@example.org", "ud1"))
	must(t, "RemoveNode", d.RemoveNode(c, "ud1"))
	r := registry(t, d)
	if !slices.Equal(ids(r), []string{"ud2"}) {
		t.Errorf("after RemoveNode ud1: nodes %v", ids(r))
	}
	wantErr(t, "RemoveNode again", d.RemoveNode(c, "ud1"), cluster.ErrNotFound)
	wantErr(t, "RemoveNode of an invalid id", d.RemoveNode(c, "Ud1"), cluster.ErrInvalid)
	wantErr(t, "RemoveNode of an empty id", d.RemoveNode(c, ""), cluster.ErrInvalid)
	wantErr(t, "SetWeight of a removed node", d.SetWeight(c, "ud1", 1), cluster.ErrNotFound)
	// The users stay placed.
	if node, err := d.UserNode(c, 7); err != nil || node != "ud1" {
		t.Errorf("UserNode of a user of the removed node: %q, %v; want ud1", node, err)
	}
	if p, err := d.LookupAddress(c, "alice@example.org"); err != nil || p != (cluster.Placement{User: 7, Node: "ud1"}) {
		t.Errorf("LookupAddress of a user of the removed node: %+v, %v", p, err)
	}
	// The number is free.
	must(t, "PutNode with the removed node's number", d.PutNode(c, node("ms1", 1, cluster.RoleMS, 1)))
}

func testVersion(t *testing.T, d cluster.Directory) {
	c := ctx(t)
	last := registry(t, d).Version
	step := func(what string, err error) {
		t.Helper()
		must(t, what, err)
		v := registry(t, d).Version
		if v <= last {
			t.Errorf("%s: version %d, not above %d", what, v, last)
		}
		last = v
	}
	step("PutNode", d.PutNode(c, node("ud1", 1, cluster.RoleUD, 10)))
	step("PutNode another", d.PutNode(c, node("ms1", 2, cluster.RoleMS, 10)))
	n := node("ud1", 1, cluster.RoleUD, 10)
	n.Addr = "10.1.1.1:1"
	step("PutNode replacing the address", d.PutNode(c, n))
	step("SetWeight", d.SetWeight(c, "ud1", 20))
	step("SetWeight to 0", d.SetWeight(c, "ud1", 0))
	step("SetMasked", d.SetMasked(c, "ms1", true))
	step("SetMasked false", d.SetMasked(c, "ms1", false))
	step("RemoveNode", d.RemoveNode(c, "ms1"))
	step("PutNode again", d.PutNode(c, node("ms1", 2, cluster.RoleMS, 10)))
	// Failures leave it.
	d.PutNode(c, node("ms2", 2, cluster.RoleMS, 10))
	d.SetWeight(c, "nope", 1)
	d.SetMasked(c, "nope", true)
	d.RemoveNode(c, "nope")
	if v := registry(t, d).Version; v != last {
		t.Errorf("failed calls moved the version from %d to %d", last, v)
	}
}

// watcher records the registries a WatchRegistry call gives its fn.
type watcher struct {
	t       *testing.T
	mu      sync.Mutex
	regs    []cluster.Registry
	changed chan struct{} // signalled after each call
	inside  atomic.Int32
	done    chan error // the WatchRegistry's result
	cancel  context.CancelFunc
	slow    time.Duration // each call of fn takes this long
}

func watch(t *testing.T, d cluster.Directory, slow time.Duration) *watcher {
	t.Helper()
	c, cancel := context.WithCancel(t.Context())
	w := &watcher{t: t, changed: make(chan struct{}, 1), done: make(chan error, 1), cancel: cancel, slow: slow}
	go func() { w.done <- d.WatchRegistry(c, w.fn) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-w.done:
		case <-time.After(promptly):
			t.Error("WatchRegistry did not return after its context ended")
		}
	})
	return w
}

func (w *watcher) fn(r cluster.Registry) {
	if w.inside.Add(1) != 1 {
		w.t.Error("WatchRegistry's fn called while another call runs")
	}
	time.Sleep(w.slow)
	w.mu.Lock()
	w.regs = append(w.regs, r)
	w.mu.Unlock()
	w.inside.Add(-1)
	select {
	case w.changed <- struct{}{}:
	default:
	}
}

func (w *watcher) calls() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.regs)
}

// await waits until fn has been given a registry for which ok holds, and
// returns it.
func (w *watcher) await(what string, ok func(cluster.Registry) bool) cluster.Registry {
	w.t.Helper()
	deadline := time.After(promptly)
	for {
		w.mu.Lock()
		for _, r := range w.regs {
			if ok(r) {
				w.mu.Unlock()
				return r
			}
		}
		w.mu.Unlock()
		select {
		case <-w.changed:
		case err := <-w.done:
			w.t.Fatalf("%s: WatchRegistry returned %v", what, err)
		case <-deadline:
			w.t.Fatalf("%s: not seen by the watcher within %v", what, promptly)
		}
	}
}

// atLeast holds for a registry no older than want that has the node as
// want has it (or lacks it, if gone).
func atLeast(want cluster.Registry, id string) func(cluster.Registry) bool {
	wn, wok := want.Node(id)
	return func(r cluster.Registry) bool {
		n, ok := r.Node(id)
		return r.Version >= want.Version && ok == wok && n == wn
	}
}

func testWatch(t *testing.T, d cluster.Directory) {
	c := ctx(t)
	must(t, "PutNode", d.PutNode(c, node("ud1", 1, cluster.RoleUD, 10)))
	w := watch(t, d, 0)
	first := registry(t, d)
	w.await("the registry at once", atLeast(first, "ud1"))
	changes := []struct {
		what string
		id   string
		do   func() error
	}{
		{"PutNode", "ms1", func() error { return d.PutNode(c, node("ms1", 2, cluster.RoleMS, 10)) }},
		{"SetWeight", "ms1", func() error { return d.SetWeight(c, "ms1", 33) }},
		{"SetMasked", "ud1", func() error { return d.SetMasked(c, "ud1", true) }},
		{"RemoveNode", "ud1", func() error { return d.RemoveNode(c, "ud1") }},
	}
	for _, ch := range changes {
		must(t, ch.what, ch.do())
		w.await(ch.what, atLeast(registry(t, d), ch.id))
	}
	w.cancel()
	select {
	case err := <-w.done:
		wantErr(t, "WatchRegistry after its context ended", err, context.Canceled)
		w.done <- err // for the cleanup
	case <-time.After(promptly):
		t.Fatal("WatchRegistry did not return after its context ended")
	}
	n := w.calls()
	must(t, "SetWeight", d.SetWeight(c, "ms1", 1))
	time.Sleep(100 * time.Millisecond)
	if w.calls() != n {
		t.Error("fn called after WatchRegistry returned")
	}

	// A context done already.
	done, cancel := context.WithCancel(t.Context())
	cancel()
	errc := make(chan error, 1)
	go func() { errc <- d.WatchRegistry(done, func(cluster.Registry) {}) }()
	select {
	case err := <-errc:
		wantErr(t, "WatchRegistry with a context done", err, context.Canceled)
	case <-time.After(promptly):
		t.Fatal("WatchRegistry with a context done did not return")
	}
}

func testWatchCoalesces(t *testing.T, d cluster.Directory) {
	c := ctx(t)
	must(t, "PutNode", d.PutNode(c, node("ud1", 1, cluster.RoleUD, 0)))
	w := watch(t, d, 20*time.Millisecond)
	w.await("the registry at once", func(cluster.Registry) bool { return true })
	// Two watchers at once, the other fast.
	w2 := watch(t, d, 0)
	for i := 1; i <= 30; i++ {
		must(t, "SetWeight", d.SetWeight(c, "ud1", i))
	}
	last := registry(t, d)
	w.await("the last of 30 changes (slow watcher)", atLeast(last, "ud1"))
	w2.await("the last of 30 changes (fast watcher)", atLeast(last, "ud1"))
	w.mu.Lock()
	defer w.mu.Unlock()
	for i := 1; i < len(w.regs); i++ {
		if w.regs[i].Version < w.regs[i-1].Version {
			t.Errorf("watcher given version %d after %d", w.regs[i].Version, w.regs[i-1].Version)
		}
	}
}

func testNextID(t *testing.T, d cluster.Directory) {
	c := ctx(t)
	next := func(seq string) uint64 {
		t.Helper()
		n, err := d.NextID(c, seq)
		must(t, "NextID "+seq, err)
		return n
	}
	if n := next("user"); n != 1 {
		t.Errorf("first NextID(user) = %d, want 1", n)
	}
	last := map[string]uint64{"user": 1}
	for i := range 20 {
		seq := []string{"user", "unit", "x-9"}[i%3]
		n := next(seq)
		if n <= last[seq] {
			t.Errorf("NextID(%s) = %d after %d", seq, n, last[seq])
		}
		last[seq] = n
	}
	if n := next("fresh"); n != 1 {
		t.Errorf("first NextID(fresh) after other sequences = %d, want 1", n)
	}
	for _, bad := range []string{"", "User", "1user", "a b", "u" + strings.Repeat("x", 63), "user/1"} {
		_, err := d.NextID(c, bad)
		wantErr(t, fmt.Sprintf("NextID(%q)", bad), err, cluster.ErrInvalid)
	}
}

// testAdvanceID checks cluster.SequenceAdvancer, for Directories that
// implement it.
func testAdvanceID(t *testing.T, d cluster.Directory) {
	a, ok := d.(cluster.SequenceAdvancer)
	if !ok {
		t.Skip("not a cluster.SequenceAdvancer")
	}
	c := ctx(t)
	next := func(seq string) uint64 {
		t.Helper()
		n, err := d.NextID(c, seq)
		must(t, "NextID "+seq, err)
		return n
	}
	must(t, "AdvanceID of a fresh sequence", a.AdvanceID(c, "user", 100))
	if n := next("user"); n <= 100 {
		t.Errorf("NextID after AdvanceID(user, 100) = %d, want above 100", n)
	}
	must(t, "AdvanceID backwards", a.AdvanceID(c, "user", 5))
	last := next("user")
	if last <= 101 {
		t.Errorf("NextID after AdvanceID(user, 5) = %d: the sequence went back", last)
	}
	must(t, "AdvanceID to the last number taken", a.AdvanceID(c, "user", last))
	if n := next("user"); n <= last {
		t.Errorf("NextID after AdvanceID(user, %d) = %d", last, n)
	}
	if n := next("unit"); n != 1 {
		t.Errorf("NextID(unit) after AdvanceID(user) = %d, want 1", n)
	}
	for _, bad := range []string{"", "User", "a b"} {
		wantErr(t, fmt.Sprintf("AdvanceID(%q)", bad), a.AdvanceID(c, bad, 10), cluster.ErrInvalid)
	}
	done, cancel := context.WithCancel(t.Context())
	cancel()
	wantErr(t, "AdvanceID with a context done", a.AdvanceID(done, "user", 1000), context.Canceled)
	must(t, "Close", d.Close())
	wantErr(t, "AdvanceID after Close", a.AdvanceID(c, "user", 1000), cluster.ErrClosed)
}

func testNextIDConcurrent(t *testing.T, d cluster.Directory) {
	const goroutines, each = 8, 200
	takeConcurrently(t, []cluster.Directory{d}, goroutines, each)
}

// takeConcurrently takes each numbers of the sequence "user" from each of
// n goroutines spread over dirs, and checks that none is taken twice and
// that each goroutine's grow.
func takeConcurrently(t *testing.T, dirs []cluster.Directory, n, each int) {
	c := ctx(t)
	var wg sync.WaitGroup
	got := make([][]uint64, n)
	for g := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d := dirs[g%len(dirs)]
			for range each {
				id, err := d.NextID(c, "user")
				if err != nil {
					t.Errorf("NextID: %v", err)
					return
				}
				if l := len(got[g]); l > 0 && id <= got[g][l-1] {
					t.Errorf("goroutine %d: NextID %d after %d", g, id, got[g][l-1])
				}
				got[g] = append(got[g], id)
			}
		}()
	}
	wg.Wait()
	seen := map[uint64]int{}
	for g, s := range got {
		for _, id := range s {
			if h, dup := seen[id]; dup {
				t.Fatalf("NextID gave %d to goroutines %d and %d", id, h, g)
			}
			seen[id] = g
		}
	}
	if len(seen) != n*each {
		t.Errorf("%d numbers, want %d", len(seen), n*each)
	}
}

func wantPlacement(t *testing.T, d cluster.Directory, address string, want cluster.Placement) {
	t.Helper()
	p, err := d.LookupAddress(ctx(t), address)
	if err != nil || p != want {
		t.Errorf("LookupAddress(%q) = %+v, %v; want %+v", address, p, err, want)
	}
}

func testPlaceUser(t *testing.T, d cluster.Directory) {
	c := ctx(t)
	must(t, "PlaceUser", d.PlaceUser(c, 10, "Alice@Example.ORG", "ud1"))
	if n, err := d.UserNode(c, 10); err != nil || n != "ud1" {
		t.Errorf("UserNode(10) = %q, %v", n, err)
	}
	alice := cluster.Placement{User: 10, Node: "ud1"}
	for _, a := range []string{"alice@example.org", "ALICE@EXAMPLE.ORG", "Alice@Example.ORG", " alice@example.org ", "alice@example.org."} {
		wantPlacement(t, d, a, alice)
	}
	_, err := d.LookupAddress(c, "alice@example.net")
	wantErr(t, "LookupAddress in another domain", err, cluster.ErrNotFound)
	_, err = d.UserNode(c, 11)
	wantErr(t, "UserNode of an unknown user", err, cluster.ErrNotFound)

	// The node need not be registered; unicode is lower-cased.
	must(t, "PlaceUser unicode", d.PlaceUser(c, 11, "Jörg.Ÿ@Bücher.Example", "ud-east-2"))
	wantPlacement(t, d, "jörg.ÿ@bücher.example", cluster.Placement{User: 11, Node: "ud-east-2"})
	// The longest address there is.
	long := strings.Repeat("l", 64) + "@" + strings.Repeat(strings.Repeat("d", 63)+".", 3) + strings.Repeat("e", 61)
	if len(long) != 64+1+253 {
		t.Fatalf("long address of %d bytes", len(long))
	}
	must(t, "PlaceUser of a long address", d.PlaceUser(c, 12, long, "ud1"))
	wantPlacement(t, d, strings.ToUpper(long), cluster.Placement{User: 12, Node: "ud1"})

	// Taken: the id, the address (primary or alias, any case).
	wantErr(t, "PlaceUser of a placed id", d.PlaceUser(c, 10, "other@example.org", "ud2"), cluster.ErrExists)
	wantErr(t, "PlaceUser of a placed address", d.PlaceUser(c, 13, "aLiCe@example.org", "ud2"), cluster.ErrExists)
	must(t, "AddAddress", d.AddAddress(c, "al@example.org", 10))
	wantErr(t, "PlaceUser of an alias", d.PlaceUser(c, 13, "AL@example.org", "ud2"), cluster.ErrExists)
	// Refused placements left nothing behind.
	wantPlacement(t, d, "alice@example.org", alice)
	_, err = d.LookupAddress(c, "other@example.org")
	wantErr(t, "LookupAddress of a refused placement's address", err, cluster.ErrNotFound)
	_, err = d.UserNode(c, 13)
	wantErr(t, "UserNode of a refused placement's id", err, cluster.ErrNotFound)
	must(t, "PlaceUser of the refused id", d.PlaceUser(c, 13, "other@example.org", "ud2"))
	wantPlacement(t, d, "other@example.org", cluster.Placement{User: 13, Node: "ud2"})
	// Large ids.
	must(t, "PlaceUser of id 2^64-1", d.PlaceUser(c, userdata.UserID(1<<64-1), "max@example.org", "ud1"))
	if n, err := d.UserNode(c, userdata.UserID(1<<64-1)); err != nil || n != "ud1" {
		t.Errorf("UserNode(2^64-1) = %q, %v", n, err)
	}
}

// badAddresses are addresses every method refuses with ErrInvalid.
var badAddresses = []string{
	"", " ", "alice", "@example.org", "alice@", "alice@@example.org", "al ice@example.org",
	"al\x00ice@example.org", "<alice>@example.org", "alice@exa mple.org", "alice@-example.org",
	"alice@example..org", "a@" + strings.Repeat("d", 64) + ".org", strings.Repeat("l", 65) + "@example.org",
	strings.Repeat("a", 300) + "@" + strings.Repeat("e", 20) + ".org", // 325 bytes
	"a@" + strings.Repeat("e.", 200) + "org",
	"alice@exa\xffmple.org",
}

func testPlaceUserInvalid(t *testing.T, d cluster.Directory) {
	c := ctx(t)
	for _, a := range badAddresses {
		wantErr(t, fmt.Sprintf("PlaceUser(%q)", a), d.PlaceUser(c, 1, a, "ud1"), cluster.ErrInvalid)
	}
	wantErr(t, "PlaceUser of user 0", d.PlaceUser(c, 0, "alice@example.org", "ud1"), cluster.ErrInvalid)
	for _, n := range []string{"", "UD1", "1ud", "ud 1", "u" + strings.Repeat("d", 63)} {
		wantErr(t, fmt.Sprintf("PlaceUser on node %q", n), d.PlaceUser(c, 1, "alice@example.org", n), cluster.ErrInvalid)
	}
	for _, a := range badAddresses {
		_, err := d.LookupAddress(c, a)
		if !errors.Is(err, cluster.ErrInvalid) && !errors.Is(err, cluster.ErrNotFound) {
			t.Errorf("LookupAddress(%q): %v, want ErrInvalid or ErrNotFound", a, err)
		}
	}
	_, err := d.UserNode(c, 0)
	if !errors.Is(err, cluster.ErrInvalid) && !errors.Is(err, cluster.ErrNotFound) {
		t.Errorf("UserNode(0): %v, want ErrInvalid or ErrNotFound", err)
	}
	_, err = d.UserNode(c, 1)
	wantErr(t, "UserNode after refused placements", err, cluster.ErrNotFound)
}

func testPlaceUserConcurrent(t *testing.T, d cluster.Directory) {
	placeRace(t, []cluster.Directory{d})
	// Different addresses at once all succeed.
	c := ctx(t)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 10 {
				id := userdata.UserID(1000 + g*10 + i)
				if err := d.PlaceUser(c, id, fmt.Sprintf("u%d@example.org", id), "ud1"); err != nil {
					t.Errorf("PlaceUser %d: %v", id, err)
				}
			}
		}()
	}
	wg.Wait()
	for id := userdata.UserID(1000); id < 1080; id++ {
		wantPlacement(t, d, fmt.Sprintf("U%d@example.org", id), cluster.Placement{User: id, Node: "ud1"})
	}
}

// placeRace places one address from 8 goroutines spread over dirs, each
// with its own user id, and checks that exactly one wins; then the same
// with one id and 8 addresses.
func placeRace(t *testing.T, dirs []cluster.Directory) {
	c := ctx(t)
	const n = 8
	race := func(what string, place func(g int, d cluster.Directory) error) int {
		errs := make([]error, n)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for g := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				errs[g] = place(g, dirs[g%len(dirs)])
			}()
		}
		close(start)
		wg.Wait()
		winner := -1
		for g, err := range errs {
			switch {
			case err == nil && winner >= 0:
				t.Errorf("%s: goroutines %d and %d both won", what, winner, g)
			case err == nil:
				winner = g
			case !errors.Is(err, cluster.ErrExists):
				t.Errorf("%s: goroutine %d: %v, want ErrExists", what, g, err)
			}
		}
		if winner < 0 {
			t.Fatalf("%s: nobody won", what)
		}
		return winner
	}
	g := race("one address", func(g int, d cluster.Directory) error {
		return d.PlaceUser(c, userdata.UserID(100+g), []string{"race@example.org", "RACE@example.org"}[g%2], "ud1")
	})
	for _, d := range dirs {
		wantPlacement(t, d, "race@example.org", cluster.Placement{User: userdata.UserID(100 + g), Node: "ud1"})
	}
	for i := range n {
		if i == g {
			continue
		}
		if _, err := dirs[0].UserNode(c, userdata.UserID(100+i)); !errors.Is(err, cluster.ErrNotFound) {
			t.Errorf("UserNode of loser %d: %v, want ErrNotFound", 100+i, err)
		}
	}
	g = race("one id", func(g int, d cluster.Directory) error {
		return d.PlaceUser(c, 200, fmt.Sprintf("race%d@example.org", g), fmt.Sprintf("ud%d", g))
	})
	for _, d := range dirs {
		if node, err := d.UserNode(c, 200); err != nil || node != fmt.Sprintf("ud%d", g) {
			t.Errorf("UserNode(200) = %q, %v; want ud%d", node, err, g)
		}
	}
	for i := range n {
		_, err := dirs[0].LookupAddress(c, fmt.Sprintf("race%d@example.org", i))
		if i == g && err != nil || i != g && !errors.Is(err, cluster.ErrNotFound) {
			t.Errorf("LookupAddress(race%d) after the race won by %d: %v", i, g, err)
		}
	}
	// An alias and a primary address racing for one address.
	race("alias against primary", func(g int, d cluster.Directory) error {
		if g%2 == 0 {
			return d.AddAddress(c, "contested@example.org", 200)
		}
		return d.PlaceUser(c, userdata.UserID(300+g), "Contested@example.org", "ud1")
	})
}

func testRemoveUser(t *testing.T, d cluster.Directory) {
	c := ctx(t)
	must(t, "PlaceUser", d.PlaceUser(c, 10, "alice@example.org", "ud1"))
	must(t, "PlaceUser", d.PlaceUser(c, 11, "bob@example.org", "ud1"))
	must(t, "AddAddress", d.AddAddress(c, "al@example.org", 10))
	must(t, "AddAddress", d.AddAddress(c, "ally@example.net", 10))
	must(t, "RemoveUser", d.RemoveUser(c, 10))
	_, err := d.UserNode(c, 10)
	wantErr(t, "UserNode of a removed user", err, cluster.ErrNotFound)
	for _, a := range []string{"alice@example.org", "al@example.org", "ally@example.net"} {
		_, err := d.LookupAddress(c, a)
		wantErr(t, "LookupAddress of a removed user's "+a, err, cluster.ErrNotFound)
	}
	wantErr(t, "RemoveUser again", d.RemoveUser(c, 10), cluster.ErrNotFound)
	wantErr(t, "RemoveUser of user 0", d.RemoveUser(c, 0), cluster.ErrInvalid)
	wantPlacement(t, d, "bob@example.org", cluster.Placement{User: 11, Node: "ud1"})
	// The id and the addresses are free again.
	must(t, "AddAddress of a freed alias", d.AddAddress(c, "AL@example.org", 11))
	must(t, "PlaceUser of the freed id and address", d.PlaceUser(c, 10, "alice@example.org", "ud2"))
	must(t, "PlaceUser of a freed alias", d.PlaceUser(c, 12, "ally@example.net", "ud2"))
	wantPlacement(t, d, "al@example.org", cluster.Placement{User: 11, Node: "ud1"})
	wantPlacement(t, d, "alice@example.org", cluster.Placement{User: 10, Node: "ud2"})
	// Removing bob leaves the others.
	must(t, "RemoveUser", d.RemoveUser(c, 11))
	wantPlacement(t, d, "alice@example.org", cluster.Placement{User: 10, Node: "ud2"})
	wantPlacement(t, d, "ally@example.net", cluster.Placement{User: 12, Node: "ud2"})
}

func testAddresses(t *testing.T, d cluster.Directory) {
	c := ctx(t)
	must(t, "PlaceUser", d.PlaceUser(c, 10, "alice@example.org", "ud1"))
	must(t, "PlaceUser", d.PlaceUser(c, 11, "bob@example.org", "ud2"))
	must(t, "AddAddress", d.AddAddress(c, "Al@Example.NET", 10))
	alice := cluster.Placement{User: 10, Node: "ud1"}
	wantPlacement(t, d, "al@example.net", alice)
	wantPlacement(t, d, "AL@EXAMPLE.NET", alice)
	for _, a := range []string{"alice@example.org", "AL@example.net", "bob@example.org", "Bob@Example.org"} {
		wantErr(t, "AddAddress of a taken address "+a, d.AddAddress(c, a, 10), cluster.ErrExists)
		wantErr(t, "AddAddress of a taken address "+a+" to another user", d.AddAddress(c, a, 11), cluster.ErrExists)
	}
	wantErr(t, "AddAddress to an unknown user", d.AddAddress(c, "new@example.org", 99), cluster.ErrNotFound)
	_, err := d.LookupAddress(c, "new@example.org")
	wantErr(t, "LookupAddress of an alias refused", err, cluster.ErrNotFound)
	wantErr(t, "AddAddress to user 0", d.AddAddress(c, "new@example.org", 0), cluster.ErrInvalid)
	for _, a := range badAddresses {
		wantErr(t, fmt.Sprintf("AddAddress(%q)", a), d.AddAddress(c, a, 10), cluster.ErrInvalid)
		wantErr(t, fmt.Sprintf("RemoveAddress(%q)", a), d.RemoveAddress(c, a), cluster.ErrInvalid)
	}

	// Primary addresses go only with their user.
	wantErr(t, "RemoveAddress of a primary address", d.RemoveAddress(c, "Alice@example.org"), cluster.ErrInvalid)
	wantPlacement(t, d, "alice@example.org", alice)

	must(t, "RemoveAddress", d.RemoveAddress(c, "aL@exAmple.net"))
	_, err = d.LookupAddress(c, "al@example.net")
	wantErr(t, "LookupAddress of a removed alias", err, cluster.ErrNotFound)
	wantErr(t, "RemoveAddress again", d.RemoveAddress(c, "al@example.net"), cluster.ErrNotFound)
	wantPlacement(t, d, "alice@example.org", alice)
	// The address is free for anyone.
	must(t, "AddAddress of a removed alias to another user", d.AddAddress(c, "al@example.net", 11))
	wantPlacement(t, d, "al@example.net", cluster.Placement{User: 11, Node: "ud2"})
	// Many aliases.
	for i := range 20 {
		must(t, "AddAddress", d.AddAddress(c, fmt.Sprintf("a%d@example.org", i), 10))
	}
	for i := range 20 {
		wantPlacement(t, d, fmt.Sprintf("a%d@example.org", i), alice)
	}
}

func testDomainAlias(t *testing.T, d cluster.Directory) {
	c := ctx(t)
	get := func(alias, want string) {
		t.Helper()
		got, err := d.DomainAlias(c, alias)
		if err != nil || got != want {
			t.Errorf("DomainAlias(%q) = %q, %v; want %q", alias, got, err, want)
		}
	}
	must(t, "PutDomainAlias", d.PutDomainAlias(c, "Example.NET", "Example.ORG"))
	get("example.net", "example.org")
	get("EXAMPLE.net.", "example.org")
	_, err := d.DomainAlias(c, "example.org")
	wantErr(t, "DomainAlias of a domain that is no alias", err, cluster.ErrNotFound)
	must(t, "PutDomainAlias", d.PutDomainAlias(c, "example.com", "example.org"))
	get("example.com", "example.org")
	get("example.net", "example.org")
	must(t, "PutDomainAlias replacing", d.PutDomainAlias(c, "example.net", "example.info"))
	get("example.net", "example.info")
	get("example.com", "example.org")
	must(t, "PutDomainAlias unicode", d.PutDomainAlias(c, "BÜCHER.example", "books.example"))
	get("bücher.example", "books.example")
	long := strings.Repeat(strings.Repeat("d", 63)+".", 3) + strings.Repeat("e", 61)
	must(t, "PutDomainAlias of a 253-byte name", d.PutDomainAlias(c, long, "example.org"))
	get(strings.ToUpper(long), "example.org")

	bad := []string{"", " ", "exa mple.org", "example..org", "-example.org", "a@example.org", strings.Repeat("d", 64) + ".org",
		strings.Repeat("e.", 127) + "org", "ex\xffample.org"}
	for _, b := range bad {
		wantErr(t, fmt.Sprintf("PutDomainAlias(%q, example.org)", b), d.PutDomainAlias(c, b, "example.org"), cluster.ErrInvalid)
		wantErr(t, fmt.Sprintf("PutDomainAlias(example.biz, %q)", b), d.PutDomainAlias(c, "example.biz", b), cluster.ErrInvalid)
		_, err := d.DomainAlias(c, b)
		if !errors.Is(err, cluster.ErrInvalid) && !errors.Is(err, cluster.ErrNotFound) {
			t.Errorf("DomainAlias(%q): %v, want ErrInvalid or ErrNotFound", b, err)
		}
	}
	wantErr(t, "PutDomainAlias of a domain to itself", d.PutDomainAlias(c, "Example.org", "example.ORG"), cluster.ErrInvalid)
	_, err = d.DomainAlias(c, "example.biz")
	wantErr(t, "DomainAlias of a refused alias", err, cluster.ErrNotFound)
}

// testCanceled: a call with a context done returns its error.
func testCanceled(t *testing.T, d cluster.Directory) {
	must(t, "PutNode", d.PutNode(ctx(t), node("ud1", 1, cluster.RoleUD, 10)))
	c, cancel := context.WithCancel(t.Context())
	cancel()
	for what, err := range allCalls(c, d) {
		wantErr(t, what+" with a context done", err, context.Canceled)
	}
	if r := registry(t, d); len(r.Nodes) != 1 {
		t.Errorf("calls with a context done changed the registry: %v", ids(r))
	}
}

// allCalls calls every method of d but WatchRegistry and Close, and
// returns their errors by name.
func allCalls(c context.Context, d cluster.Directory) map[string]error {
	errs := map[string]error{}
	_, errs["Registry"] = d.Registry(c)
	errs["PutNode"] = d.PutNode(c, node("ms1", 2, cluster.RoleMS, 10))
	errs["SetWeight"] = d.SetWeight(c, "ud1", 5)
	errs["SetMasked"] = d.SetMasked(c, "ud1", true)
	errs["RemoveNode"] = d.RemoveNode(c, "ud1")
	_, errs["NextID"] = d.NextID(c, "user")
	errs["PlaceUser"] = d.PlaceUser(c, 1, "alice@example.org", "ud1")
	errs["RemoveUser"] = d.RemoveUser(c, 1)
	_, errs["UserNode"] = d.UserNode(c, 1)
	_, errs["LookupAddress"] = d.LookupAddress(c, "alice@example.org")
	errs["AddAddress"] = d.AddAddress(c, "al@example.org", 1)
	errs["RemoveAddress"] = d.RemoveAddress(c, "al@example.org")
	errs["PutDomainAlias"] = d.PutDomainAlias(c, "example.net", "example.org")
	_, errs["DomainAlias"] = d.DomainAlias(c, "example.net")
	errs["SwapGroup"] = d.SwapGroup(c, cluster.Group{}, cluster.Group{ID: "g1", Primary: "ud1", Epoch: 1})
	return errs
}

func testClose(t *testing.T, d cluster.Directory) {
	c := ctx(t)
	must(t, "PutNode", d.PutNode(c, node("ud1", 1, cluster.RoleUD, 10)))
	must(t, "PlaceUser", d.PlaceUser(c, 1, "alice@example.org", "ud1"))
	w := watch(t, d, 0)
	w.await("the registry at once", func(cluster.Registry) bool { return true })
	must(t, "Close", d.Close())
	select {
	case err := <-w.done:
		wantErr(t, "WatchRegistry in progress at Close", err, cluster.ErrClosed)
		w.done <- err
	case <-time.After(promptly):
		t.Fatal("WatchRegistry in progress did not return after Close")
	}
	for what, err := range allCalls(c, d) {
		wantErr(t, what+" after Close", err, cluster.ErrClosed)
	}
	errc := make(chan error, 1)
	go func() { errc <- d.WatchRegistry(c, func(cluster.Registry) {}) }()
	select {
	case err := <-errc:
		wantErr(t, "WatchRegistry after Close", err, cluster.ErrClosed)
	case <-time.After(promptly):
		t.Fatal("WatchRegistry after Close did not return")
	}
	if err := d.Close(); err != nil && !errors.Is(err, cluster.ErrClosed) {
		t.Errorf("second Close: %v, want nil or ErrClosed", err)
	}
}

func testSharedRegistry(t *testing.T, a, b cluster.Directory) {
	c := ctx(t)
	n := node("ud1", 1, cluster.RoleUD, 10)
	must(t, "a.PutNode", a.PutNode(c, n))
	wantNode(t, registry(t, b), n)
	must(t, "b.SetWeight", b.SetWeight(c, "ud1", 20))
	n.Weight = 20
	wantNode(t, registry(t, a), n)
	wantErr(t, "b.PutNode with a's number", b.PutNode(c, node("ms1", 1, cluster.RoleMS, 1)), cluster.ErrExists)
	if ra, rb := registry(t, a), registry(t, b); ra.Version != rb.Version {
		t.Errorf("versions %d and %d of one registry", ra.Version, rb.Version)
	}
}

func testSharedWatch(t *testing.T, a, b cluster.Directory) {
	c := ctx(t)
	must(t, "a.PutNode", a.PutNode(c, node("ud1", 1, cluster.RoleUD, 10)))
	wa, wb := watch(t, a, 0), watch(t, b, 0)
	r := registry(t, a)
	wa.await("a's registry at once", atLeast(r, "ud1"))
	wb.await("b's registry at once", atLeast(r, "ud1"))
	steps := []struct {
		what string
		via  cluster.Directory
		id   string
		do   func(d cluster.Directory) error
	}{
		{"a.PutNode", a, "ms1", func(d cluster.Directory) error { return d.PutNode(c, node("ms1", 2, cluster.RoleMS, 5)) }},
		{"b.SetWeight", b, "ms1", func(d cluster.Directory) error { return d.SetWeight(c, "ms1", 50) }},
		{"a.SetMasked", a, "ud1", func(d cluster.Directory) error { return d.SetMasked(c, "ud1", true) }},
		{"b.RemoveNode", b, "ud1", func(d cluster.Directory) error { return d.RemoveNode(c, "ud1") }},
		{"a.SetWeight", a, "ms1", func(d cluster.Directory) error { return d.SetWeight(c, "ms1", 0) }},
	}
	for _, s := range steps {
		must(t, s.what, s.do(s.via))
		r := registry(t, s.via)
		wa.await(s.what+", seen through a", atLeast(r, s.id))
		wb.await(s.what+", seen through b", atLeast(r, s.id))
	}
}

func testSharedUsers(t *testing.T, a, b cluster.Directory) {
	c := ctx(t)
	must(t, "a.PlaceUser", a.PlaceUser(c, 10, "alice@example.org", "ud1"))
	wantPlacement(t, b, "Alice@example.org", cluster.Placement{User: 10, Node: "ud1"})
	if n, err := b.UserNode(c, 10); err != nil || n != "ud1" {
		t.Errorf("b.UserNode(10) = %q, %v", n, err)
	}
	wantErr(t, "b.PlaceUser of a's address", b.PlaceUser(c, 11, "alice@example.org", "ud2"), cluster.ErrExists)
	wantErr(t, "b.PlaceUser of a's id", b.PlaceUser(c, 10, "other@example.org", "ud2"), cluster.ErrExists)
	must(t, "b.AddAddress", b.AddAddress(c, "al@example.org", 10))
	wantPlacement(t, a, "al@example.org", cluster.Placement{User: 10, Node: "ud1"})
	wantErr(t, "a.AddAddress of b's alias", a.AddAddress(c, "al@example.org", 10), cluster.ErrExists)
	must(t, "a.RemoveAddress", a.RemoveAddress(c, "al@example.org"))
	_, err := b.LookupAddress(c, "al@example.org")
	wantErr(t, "b.LookupAddress of an alias a removed", err, cluster.ErrNotFound)
	must(t, "b.PutDomainAlias", b.PutDomainAlias(c, "example.net", "example.org"))
	if got, err := a.DomainAlias(c, "example.net"); err != nil || got != "example.org" {
		t.Errorf("a.DomainAlias = %q, %v", got, err)
	}
	must(t, "b.RemoveUser", b.RemoveUser(c, 10))
	_, err = a.UserNode(c, 10)
	wantErr(t, "a.UserNode of a user b removed", err, cluster.ErrNotFound)
}

func testSharedNextID(t *testing.T, a, b cluster.Directory) {
	takeConcurrently(t, []cluster.Directory{a, b}, 8, 100)
	// Alternating between them still grows.
	c := ctx(t)
	var last uint64
	for i := range 10 {
		d := []cluster.Directory{a, b}[i%2]
		n, err := d.NextID(c, "unit")
		must(t, "NextID", err)
		if n <= last {
			t.Errorf("NextID(unit) = %d after %d", n, last)
		}
		last = n
	}
}

func testSharedPlaceRace(t *testing.T, a, b cluster.Directory) {
	placeRace(t, []cluster.Directory{a, b})
}
