package cluster_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/mailsys/mailsys/cluster"
	"github.com/mailsys/mailsys/cluster/dirtest"
)

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

func openLocal(t *testing.T, dir string) *cluster.LocalDirectory {
	t.Helper()
	d, err := cluster.OpenLocalDirectory(dir, quiet())
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestLocalDirectory(t *testing.T) {
	dirtest.Run(t, func(t *testing.T) cluster.Directory { return openLocal(t, t.TempDir()) })
}

// TestLocalDirectoryReopen: everything survives Close and Open.
func TestLocalDirectoryReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "dir")
	d := openLocal(t, path)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	ud := cluster.Node{ID: "ud1", Num: 1, Roles: cluster.RoleUD, Addr: "10.0.0.1:7443", Weight: 10}
	ms := cluster.Node{ID: "ms1", Num: 2, Roles: cluster.RoleMS, Addr: "10.0.0.2:7443", Weight: 20, Masked: true}
	must(d.PutNode(ctx, ud))
	must(d.PutNode(ctx, ms))
	must(d.PutNode(ctx, cluster.Node{ID: "gone", Num: 3, Roles: cluster.RoleFront}))
	must(d.RemoveNode(ctx, "gone"))
	must(d.PlaceUser(ctx, 5, "alice@example.org", "ud1"))
	must(d.AddAddress(ctx, "al@example.org", 5))
	must(d.PlaceUser(ctx, 6, "bob@example.org", "ud1"))
	must(d.RemoveUser(ctx, 6))
	must(d.PutDomainAlias(ctx, "example.net", "example.org"))
	var last uint64
	for range 3 {
		n, err := d.NextID(ctx, "user")
		must(err)
		last = n
	}
	before, err := d.Registry(ctx)
	must(err)
	must(d.Close())

	d = openLocal(t, path)
	defer d.Close()
	after, err := d.Registry(ctx)
	must(err)
	if after.Version != before.Version || len(after.Nodes) != 2 || after.Nodes[0] != ms || after.Nodes[1] != ud {
		t.Errorf("registry after reopening: %+v, want %+v", after, before)
	}
	if p, err := d.LookupAddress(ctx, "AL@example.org"); err != nil || p != (cluster.Placement{User: 5, Node: "ud1"}) {
		t.Errorf("LookupAddress of an alias after reopening: %+v, %v", p, err)
	}
	if n, err := d.UserNode(ctx, 5); err != nil || n != "ud1" {
		t.Errorf("UserNode after reopening: %q, %v", n, err)
	}
	if _, err := d.LookupAddress(ctx, "bob@example.org"); !errors.Is(err, cluster.ErrNotFound) {
		t.Errorf("removed user's address after reopening: %v", err)
	}
	if dom, err := d.DomainAlias(ctx, "example.net"); err != nil || dom != "example.org" {
		t.Errorf("DomainAlias after reopening: %q, %v", dom, err)
	}
	if n, err := d.NextID(ctx, "user"); err != nil || n <= last {
		t.Errorf("NextID after reopening: %d, %v; want above %d", n, err, last)
	}
	must(d.SetWeight(ctx, "ud1", 1))
	if r, _ := d.Registry(ctx); r.Version <= before.Version {
		t.Errorf("version %d after a change, not above %d before reopening", r.Version, before.Version)
	}
}

// TestLocalDirectoryLocked: a second LocalDirectory on the same path is
// refused while the first is open; the files are private.
func TestLocalDirectoryLocked(t *testing.T) {
	path := t.TempDir()
	d := openLocal(t, path)
	defer d.Close()
	if d2, err := cluster.OpenLocalDirectory(path, quiet()); err == nil {
		d2.Close()
		t.Fatal("a second OpenLocalDirectory of an open directory succeeded")
	}
	if _, err := cluster.OpenLocalDirectory("", quiet()); !errors.Is(err, cluster.ErrInvalid) {
		t.Errorf("OpenLocalDirectory(\"\"): %v, want ErrInvalid", err)
	}
	entries, err := os.ReadDir(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		info, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		if info.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s: mode %v, want private", e.Name(), info.Mode().Perm())
		}
	}
}

func TestNormalAddress(t *testing.T) {
	for in, want := range map[string]string{
		"Alice@Example.ORG":   "alice@example.org",
		" bob@example.org. ":  "bob@example.org",
		"Jörg@BÜCHER.example": "jörg@bücher.example",
		"a+tag@x.y":           "a+tag@x.y",
	} {
		if got, err := cluster.NormalAddress(in); err != nil || got != want {
			t.Errorf("NormalAddress(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "a", "@x.y", "a@", "a@b@c", "a b@x.y", "a@x..y", "a@-x.y"} {
		if _, err := cluster.NormalAddress(in); !errors.Is(err, cluster.ErrInvalid) {
			t.Errorf("NormalAddress(%q): %v, want ErrInvalid", in, err)
		}
	}
}
