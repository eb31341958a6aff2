package userdata

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// pipe is a FollowStream over channels, and the standby's loop at its
// other end: the transport that cluster/rpc carries over gRPC.
type pipe struct {
	frames chan Frame
	acks   chan uint64
	done   chan struct{}
	once   sync.Once
	stall  atomic.Bool   // the standby stops acknowledging
	ended  chan struct{} // closed when standby returns
}

func newPipe() *pipe {
	return &pipe{frames: make(chan Frame, 64), acks: make(chan uint64, 64), done: make(chan struct{}), ended: make(chan struct{})}
}

func (p *pipe) Send(f Frame) error {
	select {
	case p.frames <- f:
		return nil
	case <-p.done:
		return io.ErrClosedPipe
	}
}

func (p *pipe) Recv() (uint64, error) {
	select {
	case a := <-p.acks:
		return a, nil
	case <-p.done:
		return 0, io.EOF
	}
}

func (p *pipe) close() { p.once.Do(func() { close(p.done) }) }

// standby applies the frames to r and acknowledges them after a sync, a
// run of frames at a time, until the pipe closes.
func (p *pipe) standby(t *testing.T, r *Replica) {
	defer close(p.ended)
	for {
		var f Frame
		select {
		case f = <-p.frames:
		case <-p.done:
			return
		}
		for more := true; more; {
			select {
			case <-p.done:
				return
			default:
			}
			if err := r.Apply(f); err != nil {
				t.Errorf("replica apply: %v", err)
				p.close()
				return
			}
			select {
			case f = <-p.frames:
			default:
				more = false
			}
		}
		pos, err := r.Sync()
		if err != nil {
			t.Errorf("replica sync: %v", err)
			return
		}
		if p.stall.Load() {
			continue
		}
		select {
		case p.acks <- pos:
		case <-p.done:
			return
		}
	}
}

type replPair struct {
	t       *testing.T
	cfg     Config // the primary's
	rcfg    Config // the replica's
	db      *DB
	replica *Replica
	pipe    *pipe
	follow  chan error
	logs    *repairLog
	alone   atomic.Int32
	inStep  atomic.Int32
}

func replConfig(t *testing.T, logs io.Writer) Config {
	return Config{
		Dir:          t.TempDir(),
		Node:         "ud1",
		Argon2:       Argon2Params{Time: 1, Memory: 64, Threads: 1},
		CacheSize:    8 << 20,
		MemTableSize: 4 << 20,
		DiskReserve:  -1,
		Logger:       slog.New(slog.NewTextHandler(io.MultiWriter(logs, t.Output()), nil)),
	}
}

// newReplPair opens a primary with replication and an empty replica.
func newReplPair(t *testing.T, rc ReplicationConfig) *replPair {
	p := &replPair{t: t, logs: &repairLog{}}
	p.cfg = replConfig(t, p.logs)
	if rc.Alone == nil {
		rc.Alone = func(context.Context) error { p.alone.Add(1); return nil }
	}
	rc.InStep = func() { p.inStep.Add(1) }
	p.cfg.Replication = &rc
	db, err := Open(t.Context(), p.cfg)
	if err != nil {
		t.Fatal(err)
	}
	p.db = db
	t.Cleanup(func() { p.db.Close() })
	p.rcfg = replConfig(t, p.logs)
	p.rcfg.Replication = &ReplicationConfig{}
	r, err := OpenReplica(p.rcfg)
	if err != nil {
		t.Fatal(err)
	}
	p.replica = r
	t.Cleanup(func() { p.replica.Close() })
	return p
}

// connect starts following from the replica's position.
func (p *replPair) connect() {
	p.pipe = newPipe()
	p.follow = make(chan error, 1)
	pp, db, from := p.pipe, p.db, p.replica.Position()
	go pp.standby(p.t, p.replica)
	go func() {
		err := db.Follow(context.Background(), from, pp)
		p.t.Logf("Follow from %d: %v", from, err)
		pp.close()
		p.follow <- err
	}()
	p.t.Cleanup(pp.close)
}

func (p *replPair) disconnect() {
	p.pipe.close()
	select {
	case <-p.follow:
	case <-time.After(5 * time.Second):
		p.t.Fatal("Follow did not return after the stream closed")
	}
	<-p.pipe.ended
}

// waitInStep waits until a standby is connected and writes wait for it.
func (p *replPair) waitInStep() {
	p.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for st := p.db.Replication(); !st.InStep || !st.Standby; st = p.db.Replication() {
		if time.Now().After(deadline) {
			p.t.Fatalf("standby not in step: %+v", p.db.Replication())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitCaughtUp waits until the replica holds every batch applied.
func (p *replPair) waitCaughtUp() {
	p.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for p.replica.Position() != p.db.Replication().Position {
		if time.Now().After(deadline) {
			p.t.Fatalf("replica at %d, primary at %+v", p.replica.Position(), p.db.Replication())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func setupUser(t *testing.T, d *DB) (UserID, FolderID) {
	t.Helper()
	ctx := t.Context()
	if err := d.CreateDomain(ctx, Domain{Name: "example.test"}); err != nil {
		t.Fatal(err)
	}
	u, err := d.CreateUser(ctx, NewUser{Address: "ann@example.test", Password: "pw"})
	if err != nil {
		t.Fatal(err)
	}
	inbox, err := d.Folder(ctx, u.ID, Inbox)
	if err != nil {
		t.Fatal(err)
	}
	return u.ID, inbox.ID
}

var runs atomic.Int32

// run runs the workload of mirror_test for d on a new folder of user u,
// for dur, and returns the folder and the messages it left there.
func run(t *testing.T, d *DB, u UserID, dur time.Duration) (FolderID, int) {
	t.Helper()
	f, err := d.CreateFolder(t.Context(), u, fmt.Sprintf("run%d", runs.Add(1)), "")
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	time.AfterFunc(dur, func() { close(stop) })
	return f.ID, workload(t, d, "ann@example.test", u, f.ID, stop)
}

// TestReplication: while in step, every acknowledged commit is on the
// replica; the replica, promoted, serves the same data.
func TestReplication(t *testing.T) {
	p := newReplPair(t, ReplicationConfig{})
	p.connect()
	p.waitInStep()
	u, _ := setupUser(t, p.db)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for i := range 50 {
				if _, err := p.db.CreateFolder(t.Context(), u, "F"+strings.Repeat("x", i%7)+string(rune('a'+i%26))+time.Now().Format("150405.000000000"), ""); err != nil && !errors.Is(err, ErrExists) {
					t.Error(err)
					return
				}
			}
		})
	}
	inbox, left := run(t, p.db, u, 300*time.Millisecond)
	wg.Wait()
	st := p.db.Replication()
	if !st.InStep || st.Acked != st.Position {
		t.Fatalf("after the load: %+v, want in step with every batch acknowledged", st)
	}
	if p.alone.Load() != 0 {
		t.Fatal("went alone without losing the standby")
	}
	if p.inStep.Load() != 1 {
		t.Fatalf("InStep called %d times, want 1", p.inStep.Load())
	}
	p.disconnect()
	p.db.Close()
	p.replica.Sync()
	pos := p.replica.Position()
	p.replica.Close()
	sameKeys(t, p.cfg.Dir, p.rcfg.Dir)

	r, err := OpenReplica(p.rcfg)
	if err != nil {
		t.Fatal(err)
	}
	if r.Position() != pos {
		t.Fatalf("replica reopened at %d, was %d", r.Position(), pos)
	}
	d2, err := r.Promote(t.Context(), p.rcfg)
	if err != nil {
		t.Fatal(err)
	}
	defer d2.Close()
	if _, err := d2.Authenticate(t.Context(), "ann@example.test", "pw", ProtoIMAP); err != nil {
		t.Fatal(err)
	}
	f, err := d2.FolderByID(t.Context(), u, inbox)
	if err != nil || int(f.Messages) != left {
		t.Fatalf("promoted: inbox %+v, %v; want %d messages", f, err, left)
	}
	if st := d2.Replication(); st.Position != pos {
		t.Fatalf("promoted DB at %d, want %d", st.Position, pos)
	}
}

// TestReplicationCatchUp: a standby away for a while catches up from the
// log of recent batches, without a full copy, and is in step again.
func TestReplicationCatchUp(t *testing.T) {
	p := newReplPair(t, ReplicationConfig{Timeout: 200 * time.Millisecond})
	p.connect()
	p.waitInStep()
	u, _ := setupUser(t, p.db)
	run(t, p.db, u, 100*time.Millisecond)
	p.disconnect()
	// Writes go on alone once the standby is gone.
	run(t, p.db, u, 200*time.Millisecond)
	if p.alone.Load() != 1 {
		t.Fatalf("Alone called %d times, want 1", p.alone.Load())
	}
	if p.db.Replication().InStep {
		t.Fatal("in step without a standby")
	}
	p.connect()
	p.waitInStep()
	run(t, p.db, u, 100*time.Millisecond)
	p.waitCaughtUp()
	if strings.Contains(p.logs.String(), "full copy") {
		t.Fatal("a full copy for a standby briefly away")
	}
	if !strings.Contains(p.logs.String(), "catching up from the log") {
		t.Fatal("no catch-up from the log")
	}
	p.disconnect()
	p.db.Close()
	p.replica.Close()
	sameKeys(t, p.cfg.Dir, p.rcfg.Dir)
}

// TestReplicationFullCopy: a standby further behind than the log gets a
// full copy, and then the batches after it.
func TestReplicationFullCopy(t *testing.T) {
	p := newReplPair(t, ReplicationConfig{LogSize: 4 << 10, Timeout: 200 * time.Millisecond})
	u, _ := setupUser(t, p.db)
	run(t, p.db, u, 200*time.Millisecond)
	if st := p.db.Replication(); st.LogFirst <= 1 {
		t.Fatalf("log not trimmed: %+v", st)
	}
	p.connect()
	p.waitInStep()
	run(t, p.db, u, 100*time.Millisecond)
	p.waitCaughtUp()
	if !strings.Contains(p.logs.String(), "full copy received") {
		t.Fatal("no full copy")
	}
	p.disconnect()
	p.db.Close()
	p.replica.Close()
	sameKeys(t, p.cfg.Dir, p.rcfg.Dir)
}

// TestReplicationStall: a standby that stops acknowledging falls out of step
// after the timeout; the write waiting for it goes on once Alone said so.
func TestReplicationStall(t *testing.T) {
	p := newReplPair(t, ReplicationConfig{Timeout: 300 * time.Millisecond})
	p.connect()
	p.waitInStep()
	u, _ := setupUser(t, p.db)
	p.pipe.stall.Store(true)
	start := time.Now()
	if _, err := p.db.CreateFolder(t.Context(), u, "Stalled", ""); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < 300*time.Millisecond || took > 3*time.Second {
		t.Fatalf("the write took %v, want the timeout (300ms)", took)
	}
	if p.alone.Load() != 1 {
		t.Fatalf("Alone called %d times", p.alone.Load())
	}
	start = time.Now()
	if _, err := p.db.CreateFolder(t.Context(), u, "Alone", ""); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 200*time.Millisecond {
		t.Fatalf("a write alone took %v", took)
	}
	// The standby kept its stream: acknowledging again, it is in step.
	p.pipe.stall.Store(false)
	if _, err := p.db.CreateFolder(t.Context(), u, "Again", ""); err != nil {
		t.Fatal(err)
	}
	p.waitInStep()
	deadline := time.Now().Add(2 * time.Second)
	for p.inStep.Load() != 2 { // InStep runs in a goroutine of its own
		if time.Now().After(deadline) {
			t.Fatalf("InStep called %d times, want 2 (at the start and after catching up)", p.inStep.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestReplicationFence: Alone reporting ErrFenced, or Fence, ends writes;
// the write that met it is not applied.
func TestReplicationFence(t *testing.T) {
	t.Run("Alone", func(t *testing.T) {
		p := newReplPair(t, ReplicationConfig{Timeout: 100 * time.Millisecond,
			Alone: func(context.Context) error { return errors.New("epoch 2 now: " + ErrFenced.Error()) }})
		p.connect()
		p.waitInStep()
		u, _ := setupUser(t, p.db)
		p.disconnect()
		_, err := p.db.CreateFolder(t.Context(), u, "Lost", "")
		if err == nil {
			t.Fatal("a write acknowledged though going on alone failed")
		}
		if errors.Is(err, ErrFenced) {
			t.Fatal("fenced by an error that is not ErrFenced")
		}
		if _, err := p.db.Folder(t.Context(), u, "Lost"); err == nil {
			// Applied though failed: allowed only when not fenced.
			t.Log("the failed write was applied (not fenced)")
		}
	})
	t.Run("Fence", func(t *testing.T) {
		fenced := func(context.Context) error { return ErrFenced }
		p := newReplPair(t, ReplicationConfig{Timeout: 100 * time.Millisecond, Alone: fenced})
		p.connect()
		p.waitInStep()
		u, _ := setupUser(t, p.db)
		p.disconnect()
		if _, err := p.db.CreateFolder(t.Context(), u, "Lost", ""); !errors.Is(err, ErrFenced) {
			t.Fatalf("write after a fenced Alone: %v, want ErrFenced", err)
		}
		if _, err := p.db.Folder(t.Context(), u, "Lost"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("the fenced write was applied: %v", err)
		}
		if _, err := p.db.CreateFolder(t.Context(), u, "Later", ""); !errors.Is(err, ErrFenced) || !errors.Is(err, ErrUnavailable) {
			t.Fatalf("later write: %v, want ErrFenced (and ErrUnavailable)", err)
		}
		if _, err := p.db.Authenticate(t.Context(), "ann@example.test", "pw", ProtoIMAP); err != nil {
			t.Fatalf("reads after fencing: %v", err)
		}
		if err := p.db.Follow(t.Context(), 0, newPipe()); !errors.Is(err, ErrFenced) {
			t.Fatalf("Follow on a fenced DB: %v", err)
		}
	})
	t.Run("Direct", func(t *testing.T) {
		p := newReplPair(t, ReplicationConfig{})
		u, _ := setupUser(t, p.db)
		p.db.Fence(errors.New("node ud1b is primary at epoch 3"))
		_, err := p.db.CreateFolder(t.Context(), u, "X", "")
		if !errors.Is(err, ErrFenced) || !strings.Contains(err.Error(), "epoch 3") {
			t.Fatalf("write after Fence: %v", err)
		}
		if !p.db.Replication().Fenced {
			t.Fatal("status not fenced")
		}
	})
}

// TestReplicationRequireStandby: with RequireStandby, no write is taken
// while no standby is in step.
func TestReplicationRequireStandby(t *testing.T) {
	p := newReplPair(t, ReplicationConfig{RequireStandby: true, Timeout: 100 * time.Millisecond})
	if err := p.db.CreateDomain(t.Context(), Domain{Name: "example.test"}); !errors.Is(err, ErrNoStandby) || !errors.Is(err, ErrUnavailable) {
		t.Fatalf("write without a standby: %v, want ErrNoStandby", err)
	}
	p.connect()
	p.waitInStep()
	setupUser(t, p.db)
	p.disconnect()
	if err := p.db.CreateDomain(t.Context(), Domain{Name: "two.test"}); !errors.Is(err, ErrNoStandby) {
		t.Fatalf("write after the standby left: %v, want ErrNoStandby", err)
	}
	if p.alone.Load() != 0 {
		t.Fatal("Alone called with RequireStandby")
	}
}

// TestReplicationFailback: the replica is promoted; the old primary's
// directory, opened as a replica, catches up from the new primary's log
// (the batches it received as a standby) without a full copy.
func TestReplicationFailback(t *testing.T) {
	p := newReplPair(t, ReplicationConfig{Timeout: 200 * time.Millisecond})
	p.connect()
	p.waitInStep()
	u, _ := setupUser(t, p.db)
	run(t, p.db, u, 200*time.Millisecond)
	p.db.Close() // the primary dies
	p.disconnect()
	oldPos := p.db.Replication().Position

	d2, err := p.replica.Promote(t.Context(), p.rcfg)
	if err != nil {
		t.Fatal(err)
	}
	p.db = d2
	if d2.Replication().Position < oldPos {
		t.Fatalf("promoted at %d, behind the old primary's %d", d2.Replication().Position, oldPos)
	}
	inbox, left := run(t, d2, u, 100*time.Millisecond)

	ocfg := p.cfg
	ocfg.Replication = &ReplicationConfig{}
	old, err := OpenReplica(ocfg)
	if err != nil {
		t.Fatal(err)
	}
	if old.Position() != oldPos {
		t.Fatalf("old primary reopened at %d, was %d", old.Position(), oldPos)
	}
	p.replica = old
	p.connect()
	p.waitInStep()
	p.waitCaughtUp()
	if strings.Contains(p.logs.String(), "full copy") {
		t.Fatal("a full copy for the old primary")
	}
	f, err := d2.FolderByID(t.Context(), u, inbox)
	if err != nil || int(f.Messages) != left {
		t.Fatalf("inbox %+v, %v, want %d", f, err, left)
	}
	p.disconnect()
	d2.Close()
	old.Close()
	sameKeys(t, p.cfg.Dir, p.rcfg.Dir)
}

// TestReplicaGap: frames out of order are refused.
func TestReplicaGap(t *testing.T) {
	cfg := replConfig(t, io.Discard)
	r, err := OpenReplica(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := r.Apply(Frame{Kind: FrameBatch, Seq: 2}); !errors.Is(err, ErrGap) {
		t.Fatalf("batch 2 on an empty replica: %v", err)
	}
	if err := r.Apply(Frame{Kind: FrameCopy}); !errors.Is(err, ErrGap) {
		t.Fatalf("copy data outside a copy: %v", err)
	}
	if err := r.Apply(Frame{Kind: FrameBatch, Seq: 1, Data: []byte("junk")}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("junk batch: %v", err)
	}
	if err := r.Apply(Frame{Kind: 99}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("unknown kind: %v", err)
	}
}

// TestReplicationStartAlone: a DB opened without its standby does not take
// the cluster's word that it is out of step: its first write goes through
// Alone before it is acknowledged, the later ones go on alone.
func TestReplicationStartAlone(t *testing.T) {
	p := newReplPair(t, ReplicationConfig{})
	if !p.db.Replication().InStep {
		t.Fatal("a DB opened with replication starts out of step")
	}
	if p.alone.Load() != 0 {
		t.Fatal("Alone called by Open")
	}
	setupUser(t, p.db)
	if p.alone.Load() != 1 {
		t.Fatalf("Alone called %d times before the first writes, want 1", p.alone.Load())
	}
	if p.db.Replication().InStep {
		t.Fatal("in step after going alone")
	}
}
