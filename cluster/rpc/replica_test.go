package rpc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/mailsys/mailsys/cluster"
	"github.com/mailsys/mailsys/userdata"
)

// replSource serves one group's DB while its epoch is the one asked or
// later.
type replSource struct {
	mu    sync.Mutex
	db    *userdata.DB
	epoch uint64
	peers []string // the standbys that asked
}

func (s *replSource) Primary(group string, epoch uint64, standby string) (*userdata.DB, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.peers = append(s.peers, standby)
	if group != "g" {
		return nil, fmt.Errorf("%w: no group %s here", userdata.ErrInvalid, group)
	}
	if epoch > s.epoch {
		return nil, fmt.Errorf("%w: epoch %d here, the standby knows %d", userdata.ErrFenced, s.epoch, epoch)
	}
	return s.db, nil
}

func udConfig(t *testing.T) userdata.Config {
	return userdata.Config{
		Dir:          t.TempDir(),
		Node:         "ud1",
		Argon2:       userdata.Argon2Params{Time: 1, Memory: 64, Threads: 1},
		CacheSize:    8 << 20,
		MemTableSize: 4 << 20,
		DiskReserve:  -1,
		Logger:       slog.New(slog.DiscardHandler),
	}
}

// TestReplicationFollow: a standby follows its primary over gRPC; every
// write acknowledged while in step is on the replica, and the replica,
// promoted, serves it.
func TestReplicationFollow(t *testing.T) {
	ctx := t.Context()
	cfg := udConfig(t)
	cfg.Replication = &userdata.ReplicationConfig{Timeout: time.Second}
	db, err := userdata.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	src := &replSource{db: db, epoch: 1}
	conn := serve(t, func(s *grpc.Server) { RegisterReplication(s, src) })

	rcfg := udConfig(t)
	replica, err := userdata.OpenReplica(rcfg)
	if err != nil {
		t.Fatal(err)
	}
	fctx, stop := context.WithCancel(ctx)
	ended := make(chan error, 1)
	go func() { ended <- Follow(fctx, conn, "peer", "g", 1, replica) }()
	within(t, 5*time.Second, "standby in step", func() bool { return db.Replication().InStep })

	if err := db.CreateDomain(ctx, userdata.Domain{Name: "example.test"}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 25 {
				if _, err := db.CreateUser(ctx, userdata.NewUser{Address: fmt.Sprintf("u%d-%d@example.test", i, j), Password: "pw"}); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	st := db.Replication()
	if !st.InStep || st.Acked != st.Position {
		t.Fatalf("after the writes: %+v, want every batch acknowledged", st)
	}
	if replica.Position() != st.Position {
		t.Fatalf("replica at %d, primary at %d", replica.Position(), st.Position)
	}
	stop()
	if err := <-ended; !errors.Is(err, context.Canceled) {
		t.Fatalf("Follow ended with %v, want context.Canceled", err)
	}
	if src.peers[0] != "client" {
		t.Fatalf("the server saw standby %q, want the client certificate's id", src.peers[0])
	}
	d2, err := replica.Promote(ctx, rcfg)
	if err != nil {
		t.Fatal(err)
	}
	defer d2.Close()
	for i := range 8 {
		if _, err := d2.Authenticate(ctx, fmt.Sprintf("u%d-24@example.test", i), "pw", userdata.ProtoIMAP); err != nil {
			t.Fatal(err)
		}
	}
}

// TestReplicationFollowFenced: a standby that knows a newer epoch than the
// server's is refused with ErrFenced; an unknown group with ErrInvalid.
func TestReplicationFollowFenced(t *testing.T) {
	cfg := udConfig(t)
	cfg.Replication = &userdata.ReplicationConfig{}
	db, err := userdata.Open(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	conn := serve(t, func(s *grpc.Server) { RegisterReplication(s, &replSource{db: db, epoch: 1}) })
	replica, err := userdata.OpenReplica(udConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	defer replica.Close()
	err = Follow(t.Context(), conn, "peer", "g", 2, replica)
	if !errors.Is(err, userdata.ErrFenced) || !errors.Is(err, userdata.ErrUnavailable) {
		t.Fatalf("Follow at a newer epoch: %v, want ErrFenced", err)
	}
	if err := Follow(t.Context(), conn, "peer", "h", 1, replica); !errors.Is(err, userdata.ErrInvalid) {
		t.Fatalf("Follow of an unknown group: %v, want ErrInvalid", err)
	}
	db.Fence(errors.New("ud1b is primary at epoch 2"))
	if err := Follow(t.Context(), conn, "peer", "g", 1, replica); !errors.Is(err, userdata.ErrFenced) {
		t.Fatalf("Follow of a fenced DB: %v, want ErrFenced", err)
	}
}

// TestUserDBSlot: a slot answers Unavailable until Set, then serves the
// database set, and the one set next.
func TestUserDBSlot(t *testing.T) {
	ctx := t.Context()
	slot, client := serveSlot(t)
	if _, err := client.Domain(ctx, "example.test"); !cluster.IsUnavailable(err) {
		t.Fatalf("before Set: %v, want unavailable", err)
	}
	for _, name := range []string{"one.test", "two.test"} {
		db, err := userdata.Open(ctx, udConfig(t))
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if err := db.CreateDomain(ctx, userdata.Domain{Name: name}); err != nil {
			t.Fatal(err)
		}
		slot.Set(db)
		if _, err := client.Domain(ctx, name); err != nil {
			t.Fatalf("after Set: %v", err)
		}
	}
	if _, err := client.Domain(ctx, "one.test"); !errors.Is(err, userdata.ErrNotFound) {
		t.Fatalf("the first database still served: %v", err)
	}
}

// TestUserDBSlotRefuse: a slot refusing answers with the error it was
// given, by name, until the next Set.
func TestUserDBSlotRefuse(t *testing.T) {
	ctx := t.Context()
	slot, client := serveSlot(t)
	db, err := userdata.Open(ctx, udConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	slot.Set(db)
	slot.Refuse(fmt.Errorf("%w: ud1b is primary at epoch 2", userdata.ErrFenced))
	_, err = client.Domain(ctx, "example.test")
	if !errors.Is(err, userdata.ErrFenced) || !cluster.IsUnavailable(err) || !strings.Contains(err.Error(), "epoch 2") {
		t.Fatalf("refused call: %v, want ErrFenced with the reason", err)
	}
	slot.Set(db)
	if _, err := client.Domain(ctx, "example.test"); !errors.Is(err, userdata.ErrNotFound) {
		t.Fatalf("after Set again: %v", err)
	}
}

// serveSlot serves a UserDBSlot over loopback mutual TLS and returns it
// with a client of it.
func serveSlot(t *testing.T) (*UserDBSlot, *UserDB) {
	t.Helper()
	slot := NewUserDBSlot()
	srvCreds, cliCreds := testCreds(t, "peer")
	srv := NewServer(srvCreds, slot.ServerOptions()...)
	slot.Register(srv)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	t.Cleanup(srv.Stop)
	conn, err := Dial(l.Addr().String(), "peer", cliCreds)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	client := NewUserDB(conn, "peer")
	t.Cleanup(func() { client.Close() })
	return slot, client
}
