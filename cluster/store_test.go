package cluster_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/mailsys/mailsys/cluster"
	"github.com/mailsys/mailsys/msstore"
	"github.com/mailsys/mailsys/userdata"
)

// These tests run the replicated Storage over in-process nodes
// (localPeers), where nodes can be marked down; repair_test.go runs it
// over gRPC.

func replicatedWith(t *testing.T, p cluster.Peers, cfg cluster.StorageConfig) *cluster.Storage {
	t.Helper()
	cfg.Replicas = 2
	s, err := cluster.NewStorageWith(p, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func put(t *testing.T, s msstore.Storage, data []byte, owners int) msstore.Ref {
	t.Helper()
	meta := msstore.Meta{}
	for range owners {
		meta.Owners = append(meta.Owners, msstore.Owner{User: "u", Mailbox: "INBOX"})
	}
	ref, err := s.Put(t.Context(), bytes.NewReader(data), meta)
	if err != nil {
		t.Fatalf("Put: %v", err)
	}
	return ref
}

// onlyReads hides a reader's Seek, so that a Put cannot rewind it.
type onlyReads struct{ io.Reader }

// TestReplicasFailover: a node failing in the middle of a Put hangs
// nothing; with a reader that rewinds the copy goes to a third node,
// without one the body is stored once (under-replicated); with only one
// node up, once.
func TestReplicasFailover(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	p := newLocalPeers()
	p.addMS("ms1", 1, 1000)
	p.addMS("ms2", 2, 10)
	p.addMS("ms3", 3, 10)
	p.stores[1] = flaky{p.stores[1]}
	s := replicatedWith(t, p, cluster.StorageConfig{})
	data := bytes.Repeat([]byte("0123456789"), 50_000) // larger than the tee's buffer
	ref, err := s.Put(ctx, bytes.NewReader(data), msstore.Meta{})
	if err != nil || !ref.HasCopy() || ref.Node == 1 || ref.Copy == 1 {
		t.Fatalf("Put with ms1 failing: %v, %v; want copies on ms2 and ms3", ref, err)
	}
	wantBody(t, s, ref, data, "rewound")
	ref, err = s.Put(ctx, onlyReads{bytes.NewReader(data)}, msstore.Meta{})
	if err != nil || ref.HasCopy() || ref.Node == 1 {
		t.Fatalf("Put of a reader that cannot rewind with ms1 failing: %v, %v; want one copy", ref, err)
	}
	wantBody(t, s, ref, data, "under-replicated")

	p.setDown("ms2", true)
	p.setDown("ms3", true)
	if _, err := s.Put(ctx, bytes.NewReader(data), msstore.Meta{}); !errors.Is(err, msstore.ErrUnavailable) {
		t.Fatalf("Put with no node to take it: %v, want ErrUnavailable", err)
	}
	p.setDown("ms3", false)
	ref, err = s.Put(ctx, bytes.NewReader(data), msstore.Meta{})
	if err != nil || ref.HasCopy() || ref.Node != 3 {
		t.Fatalf("Put with one node up: %v, %v; want one copy on ms3", ref, err)
	}
}

// TestReplicasRefCounts: reads go to the copy whose node is up; a Retain
// that cannot reach a copy fails and leaves both counts as they were; a
// Release that cannot reach one releases the other and leaks.
func TestReplicasRefCounts(t *testing.T) {
	ctx := t.Context()
	p := newLocalPeers()
	p.addMS("ms1", 1, 10)
	p.addMS("ms2", 2, 10)
	s := replicatedWith(t, p, cluster.StorageConfig{})
	data := []byte("a replicated body")
	ref := put(t, s, data, 1)
	second, _ := ref.Second()
	firstID := map[uint32]string{1: "ms1", 2: "ms2"}[ref.Node]
	secondID := map[uint32]string{1: "ms1", 2: "ms2"}[ref.Copy]

	p.setDown(firstID, true)
	wantBody(t, s, ref, data, "first copy down")
	if err := s.Retain(ctx, ref, 1); !errors.Is(err, msstore.ErrUnavailable) {
		t.Fatalf("Retain with a copy down: %v, want ErrUnavailable", err)
	}
	p.setDown(firstID, false)
	p.setDown(secondID, true)
	wantBody(t, s, ref, data, "second copy down")
	if err := s.Retain(ctx, ref, 2); !errors.Is(err, msstore.ErrUnavailable) {
		t.Fatalf("Retain with a copy down: %v, want ErrUnavailable", err)
	}
	p.setDown(secondID, false)
	// Still one reference each: the failed Retains took theirs back.
	if err := s.Release(ctx, ref); err != nil {
		t.Fatal(err)
	}
	for _, c := range []msstore.Ref{ref.First(), second} {
		if _, err := p.stores[c.Node].Open(ctx, c); !errors.Is(err, msstore.ErrNotFound) {
			t.Fatalf("copy %v after its one reference was released: %v", c, err)
		}
	}
	if _, err := s.Open(ctx, ref); !errors.Is(err, msstore.ErrNotFound) {
		t.Fatalf("Open of a released body: %v, want ErrNotFound", err)
	}

	// Release with the second copy down: the first goes, the second leaks.
	ref = put(t, s, data, 1)
	second, _ = ref.Second()
	secondID = map[uint32]string{1: "ms1", 2: "ms2"}[ref.Copy]
	first := p.stores[ref.Node]
	p.setDown(secondID, true)
	if err := s.Release(ctx, ref); err != nil {
		t.Fatalf("Release with the second copy down: %v", err)
	}
	p.setDown(secondID, false)
	if _, err := first.Open(ctx, ref.First()); !errors.Is(err, msstore.ErrNotFound) {
		t.Fatalf("first copy after Release: %v", err)
	}
	if b, err := p.stores[ref.Copy].Open(ctx, second); err != nil {
		t.Fatalf("the second copy, leaked: %v", err)
	} else {
		b.Close()
	}
	// The first copy's node answers that the body is gone: believed.
	if _, err := s.Open(ctx, ref); !errors.Is(err, msstore.ErrNotFound) {
		t.Fatalf("Open of a body released on its first copy: %v, want ErrNotFound", err)
	}
}

// TestReplicasLost: a node lost for good (configured, or gone from the
// registry after it was seen) is neither written nor asked; a node
// number never seen is a wrong Ref.
func TestReplicasLost(t *testing.T) {
	ctx := t.Context()
	p := newLocalPeers()
	p.addMS("ms1", 1, 10)
	p.addMS("ms2", 2, 10)
	p.addMS("ms3", 3, 10)
	s := replicatedWith(t, p, cluster.StorageConfig{})
	data := []byte("body")
	var ref msstore.Ref
	for ref.Node != 1 {
		ref = put(t, s, data, 1)
	}
	// ms1 leaves the registry: its refs read from the copy.
	p.mu.Lock()
	p.reg.Nodes, p.reg.Version = p.reg.Nodes[1:], p.reg.Version+1
	p.mu.Unlock()
	wantBody(t, s, ref, data, "first copy's node removed")
	for range 10 {
		if r := put(t, s, data, 1); r.Node == 1 || r.Copy == 1 {
			t.Fatalf("Put after ms1 left: %v", r)
		}
	}
	never := ref
	never.Node = 9
	if _, err := s.Open(ctx, never); !errors.Is(err, msstore.ErrNotFound) {
		t.Fatalf("Open of a ref naming a node never seen: %v, want ErrNotFound", err)
	}

	// Configured as lost: never asked.
	q := newLocalPeers()
	q.addMS("ms1", 1, 10)
	q.addMS("ms2", 2, 10)
	q.addMS("ms3", 3, 10)
	before := replicatedWith(t, q, cluster.StorageConfig{})
	for ref = (msstore.Ref{}); ref.Node != 1; {
		ref = put(t, before, data, 1)
	}
	q.stores[1] = noCalls{t}
	after := replicatedWith(t, q, cluster.StorageConfig{Lost: []uint32{1}})
	wantBody(t, after, ref, data, "first copy's node lost")
	for range 10 {
		if r := put(t, after, data, 1); r.Node == 1 || r.Copy == 1 {
			t.Fatalf("Put with ms1 lost: %v", r)
		}
	}
	if err := after.Writable(); err != nil {
		t.Fatal(err)
	}
}

// noCalls is the store of a node that must not be asked.
type noCalls struct{ t *testing.T }

func (n noCalls) Put(context.Context, io.Reader, msstore.Meta) (msstore.Ref, error) {
	n.t.Error("Put on a lost node")
	return msstore.Ref{}, errors.New("lost")
}

func (n noCalls) Open(context.Context, msstore.Ref) (msstore.Body, error) {
	n.t.Error("Open on a lost node")
	return nil, errors.New("lost")
}

func (n noCalls) Retain(context.Context, msstore.Ref, int) error {
	n.t.Error("Retain on a lost node")
	return errors.New("lost")
}

func (n noCalls) Release(context.Context, msstore.Ref) error {
	n.t.Error("Release on a lost node")
	return errors.New("lost")
}

func (n noCalls) Close() error { return nil }

// TestRepairAddsCopies: a body stored once while one node was up gets its
// second copy from Repair, with a reference per entry; a body whose only
// copy was on the lost node is counted lost and kept.
func TestRepairAddsCopies(t *testing.T) {
	ctx := t.Context()
	p := newLocalPeers()
	p.addMS("ms1", 1, 10)
	p.addMS("ms2", 2, 10)
	s := replicatedWith(t, p, cluster.StorageConfig{})
	db, err := userdata.NewMemory(userdata.MemoryConfig{Bodies: s})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.CreateDomain(ctx, userdata.Domain{Name: "example.org"}); err != nil {
		t.Fatal(err)
	}
	u, err := db.CreateUser(ctx, userdata.NewUser{Address: "a@example.org"})
	if err != nil {
		t.Fatal(err)
	}
	inbox, err := db.Folder(ctx, u.ID, "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	p.setDown("ms2", true)
	once := []byte("stored once")
	ref := put(t, s, once, 3)
	if ref.HasCopy() {
		t.Fatalf("Put with one node up: %v", ref)
	}
	for range 3 {
		if _, err := db.Append(ctx, u.ID, inbox.ID, userdata.NewMessage{Ref: ref, Size: int64(len(once))}); err != nil {
			t.Fatal(err)
		}
	}
	p.setDown("ms2", false)

	st, err := s.Repair(ctx, db, 0)
	if err != nil || st.Copied != 1 || st.Rewritten != 3 || st.Failed != 0 {
		t.Fatalf("Repair = %+v, %v; want 1 body copied, 3 entries rewritten", st, err)
	}
	var refs []msstore.Ref
	db.Messages(ctx, u.ID, inbox.ID, nil, func(m *userdata.Message) error { refs = append(refs, m.Ref); return nil })
	if len(refs) != 3 || refs[0] != refs[2] || refs[0].First() != ref || refs[0].Copy != 2 {
		t.Fatalf("refs after the repair: %v", refs)
	}
	// Three references on the new copy: it outlives two expunges.
	second, _ := refs[0].Second()
	for i := range 3 {
		if _, err := db.Remove(ctx, u.ID, inbox.ID, userdata.UIDSet{{Start: userdata.UID(i + 1), Stop: userdata.UID(i + 1)}}); err != nil {
			t.Fatal(err)
		}
		_, err := p.stores[2].Open(ctx, second)
		if gone := errors.Is(err, msstore.ErrNotFound); gone != (i == 2) {
			t.Fatalf("the new copy after %d of 3 removals: %v", i+1, err)
		}
	}

	// A body with no copy left.
	p.setDown("ms2", true)
	lone := put(t, s, []byte("only on ms1"), 1)
	p.setDown("ms2", false)
	if _, err := db.Append(ctx, u.ID, inbox.ID, userdata.NewMessage{Ref: lone, Size: 11}); err != nil {
		t.Fatal(err)
	}
	st, err = s.Repair(ctx, db, 1)
	if err != nil || st.Lost != 1 || st.Copied != 0 || st.Rewritten != 0 {
		t.Fatalf("Repair of a body lost with its node = %+v, %v; want 1 lost", st, err)
	}
	if _, err := s.Open(ctx, lone); !errors.Is(err, msstore.ErrNotFound) {
		t.Fatalf("Open of a body lost with its node: %v, want ErrNotFound", err)
	}
}

// corrupting is a node whose bodies fail their checksum when read, as
// damaged records do.
type corrupting struct{ msstore.Storage }

func (c corrupting) Open(ctx context.Context, ref msstore.Ref) (msstore.Body, error) {
	b, err := c.Storage.Open(ctx, ref)
	if err != nil {
		return nil, err
	}
	return corruptBody{b}, nil
}

type corruptBody struct{ msstore.Body }

func (corruptBody) ReadAt([]byte, int64) (int, error) {
	return 0, fmt.Errorf("volume 1 offset 0: %w", msstore.ErrCorrupt)
}

// TestReplicasCorrupt: a copy whose record is damaged is read from the
// other copy; with one copy the damage is reported.
func TestReplicasCorrupt(t *testing.T) {
	p := newLocalPeers()
	p.addMS("ms1", 1, 10)
	p.addMS("ms2", 2, 10)
	s := replicatedWith(t, p, cluster.StorageConfig{})
	data := []byte("a body damaged on one node")
	ref := put(t, s, data, 1)
	p.stores[ref.Node] = corrupting{p.stores[ref.Node]}
	wantBody(t, s, ref, data, "first copy corrupt")
	if _, err := readBody(t, s, ref.First()); !errors.Is(err, msstore.ErrCorrupt) {
		t.Fatalf("the corrupt copy alone: %v, want ErrCorrupt", err)
	}
}
