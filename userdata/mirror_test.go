package userdata

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"

	"github.com/mailsys/mailsys/internal/pebblelog"
	"github.com/mailsys/mailsys/msstore"
)

func mirrorConfig(t *testing.T) Config {
	return Config{
		Dir:          t.TempDir(),
		Mirror:       t.TempDir(),
		Node:         "ud1",
		Argon2:       Argon2Params{Time: 1, Memory: 64, Threads: 1},
		CacheSize:    8 << 20,
		MemTableSize: 4 << 20,
		Logger:       slog.New(slog.NewTextHandler(t.Output(), nil)),
	}
}

// workload runs a mail workload on user u until stop is closed: appends,
// flag changes, expunges, logins, folder reads. Every call must succeed:
// the failover is invisible to callers. It returns the number of messages
// it left in INBOX.
func workload(t *testing.T, d *DB, addr string, u UserID, inbox FolderID, stop <-chan struct{}) int {
	ctx := context.Background()
	n := 0
	for i := 0; ; i++ {
		select {
		case <-stop:
			return n
		default:
		}
		m, err := d.Append(ctx, u, inbox, NewMessage{Ref: msstore.Ref{Node: 1, ID: uint64(i + 1), Size: 10}, Size: 10, InternalDate: time.Now()})
		if err != nil {
			t.Errorf("append %d: %v", i, err)
			return n
		}
		n++
		if i%3 == 0 {
			if _, err := d.StoreFlags(ctx, u, inbox, UIDSet{{m.UID, m.UID}}, FlagUpdate{Op: FlagsAdd, Flags: FlagDeleted}); err != nil {
				t.Errorf("store %d: %v", i, err)
				return n
			}
			ex, err := d.Expunge(ctx, u, inbox, nil)
			if err != nil {
				t.Errorf("expunge %d: %v", i, err)
				return n
			}
			n -= len(ex)
		}
		if _, err := d.Authenticate(ctx, addr, "pw", ProtoIMAP); err != nil {
			t.Errorf("login %d: %v", i, err)
			return n
		}
		if f, err := d.FolderByID(ctx, u, inbox); err != nil || int(f.Messages) != n {
			t.Errorf("folder %d: %+v, %v (want %d messages)", i, f, err, n)
			return n
		}
	}
}

// sameKeys checks that two database directories hold the same keys and
// values.
func sameKeys(t *testing.T, a, b string) {
	t.Helper()
	dump := func(dir string) map[string]string {
		db, err := pebble.Open(dir, &pebble.Options{Merger: sumMerger, Logger: pebblelog.Logger{Log: slog.New(slog.DiscardHandler)}})
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		m := map[string]string{}
		it, _ := db.NewIter(nil)
		for it.First(); it.Valid(); it.Next() {
			m[string(it.Key())] = string(it.Value())
		}
		it.Close()
		return m
	}
	ma, mb := dump(a), dump(b)
	if len(ma) != len(mb) {
		t.Errorf("%d keys in the primary, %d in the mirror", len(ma), len(mb))
	}
	for k, v := range ma {
		if w, ok := mb[k]; !ok || w != v {
			t.Errorf("key %q differs: %x vs %x (present %v)", k, v, w, ok)
			return
		}
	}
}

func TestMirror(t *testing.T) {
	for _, how := range []string{"closed", "io-errors"} {
		t.Run(how, func(t *testing.T) {
			ctx := t.Context()
			cfg := mirrorConfig(t)
			var failing atomic.Bool
			cfg.primaryFS = errorfs.Wrap(vfs.Default, errorfs.InjectorFunc(func(op errorfs.Op) error {
				if failing.Load() && op.Kind.ReadOrWrite() == errorfs.OpIsWrite {
					return errorfs.ErrInjected
				}
				return nil
			}))
			d, err := Open(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
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
			stop := make(chan struct{})
			var wg sync.WaitGroup
			var left int
			wg.Add(1)
			go func() {
				defer wg.Done()
				left = workload(t, d, "ann@example.test", u.ID, inbox.ID, stop)
			}()
			time.Sleep(200 * time.Millisecond)
			switch how {
			case "closed":
				d.db.primary.Close() // the primary is lost mid-workload
			case "io-errors":
				failing.Store(true)
			}
			deadline := time.Now().Add(5 * time.Second)
			for d.PrimaryUp() && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			if d.PrimaryUp() {
				t.Fatal("the primary failed but is still serving")
			}
			time.Sleep(200 * time.Millisecond) // keep working on the mirror alone
			failing.Store(false)
			if err := d.RestorePrimary(ctx); err != nil {
				t.Fatalf("RestorePrimary: %v", err)
			}
			if !d.PrimaryUp() {
				t.Fatal("primary not serving after RestorePrimary")
			}
			time.Sleep(200 * time.Millisecond) // and on both again
			close(stop)
			wg.Wait()
			if err := d.Close(); err != nil {
				t.Fatal(err)
			}
			sameKeys(t, cfg.Dir, cfg.Mirror)
			// Each copy alone has the whole mailbox.
			for _, dir := range []string{cfg.Dir, cfg.Mirror} {
				alone := cfg
				alone.Dir, alone.Mirror, alone.primaryFS = dir, "", nil
				d, err := Open(ctx, alone)
				if err != nil {
					t.Fatal(err)
				}
				f, err := d.Folder(ctx, u.ID, Inbox)
				if err != nil || int(f.Messages) != left {
					t.Errorf("%s alone: %+v, %v; want %d messages", dir, f, err, left)
				}
				d.Close()
			}
			t.Logf("%d messages left after the failover", left)
		})
	}
}

// TestMirrorCatchUp checks the start-up resync: a mirror that missed
// batches (here: the primary was used alone) is brought level at Open.
func TestMirrorCatchUp(t *testing.T) {
	ctx := t.Context()
	cfg := mirrorConfig(t)
	d, err := Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	d.CreateDomain(ctx, Domain{Name: "example.test"})
	d.Close()
	alone := cfg
	alone.Mirror = ""
	d, err = Open(ctx, alone)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if _, err := d.CreateUser(ctx, NewUser{Address: fmt.Sprintf("u%d@example.test", i)}); err != nil {
			t.Fatal(err)
		}
	}
	d.Close()
	var logs bytes.Buffer
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	d, err = Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	d.Close()
	if !bytes.Contains(logs.Bytes(), []byte("copying the primary to the mirror")) {
		t.Errorf("no resync logged:\n%s", logs.String())
	}
	sameKeys(t, cfg.Dir, cfg.Mirror)

	// Now the mirror went on alone (it served while the primary was down
	// and the process restarted): it is the newer one.
	alone.Dir = cfg.Mirror
	d, err = Open(ctx, alone)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.CreateUser(ctx, NewUser{Address: "late@example.test"}); err != nil {
		t.Fatal(err)
	}
	d.Close()
	logs.Reset()
	d, err = Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.LookupAddress(ctx, "late@example.test"); err != nil {
		t.Errorf("the mirror's newer user is not in the primary: %v", err)
	}
	d.Close()
	if !bytes.Contains(logs.Bytes(), []byte("copying the mirror to the primary")) {
		t.Errorf("no resync logged:\n%s", logs.String())
	}
	sameKeys(t, cfg.Dir, cfg.Mirror)
}
