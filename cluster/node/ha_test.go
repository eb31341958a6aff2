package node

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/mailsys/mailsys/cluster"
)

// registerBeforeSwap is a Directory on which the node a group is named
// after registers just before the first SwapGroup: the race a standby
// starting beside its primary can meet.
type registerBeforeSwap struct {
	cluster.Directory
	once  sync.Once
	named cluster.Node
}

func (d *registerBeforeSwap) SwapGroup(ctx context.Context, old, new cluster.Group) error {
	var err error
	d.once.Do(func() { err = d.Directory.PutNode(ctx, d.named) })
	if err != nil {
		return err
	}
	return d.Directory.SwapGroup(ctx, old, new)
}

// TestGroupStartNamedNodeRegisters checks that a standby whose group's
// namesake registers between the standby's read of the registry and its
// create of the group waits for the namesake instead of failing.
func TestGroupStartNamedNodeRegisters(t *testing.T) {
	ctx := context.Background()
	local, err := cluster.OpenLocalDirectory(t.TempDir(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { local.Close() })
	if err := local.PutNode(ctx, cluster.Node{ID: "ud2b", Num: 2, Roles: cluster.RoleUD, Addr: "127.0.0.1:2", Weight: 1}); err != nil {
		t.Fatal(err)
	}
	dir := &registerBeforeSwap{Directory: local, named: cluster.Node{ID: "ud2", Num: 1, Roles: cluster.RoleUD, Addr: "127.0.0.1:1", Weight: 1}}
	n := &Node{cfg: Config{ID: "ud2b", Group: "ud2"}, dir: dir, log: slog.New(slog.DiscardHandler)}
	g := newGroup(n, nil)

	ctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	err = g.start(ctx)
	if errors.Is(err, cluster.ErrInvalid) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("start = %v, want it waiting for ud2 until the context ends", err)
	}
	reg, err := local.Registry(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if grp, ok := reg.Group("ud2"); ok {
		t.Fatalf("group ud2 was made by the standby: %+v", grp)
	}
}
