package rpc

import (
	"errors"
	"fmt"
	"log/slog"
	"testing"

	"google.golang.org/grpc"

	"github.com/mailsys/mailsys/userdata"
	"github.com/mailsys/mailsys/userdata/udtest"
)

// cheapArgon2 keeps password hashing fast in tests.
var cheapArgon2 = userdata.Argon2Params{Time: 1, Memory: 64, Threads: 1}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// newTestMemory is a Memory for a test, closed at its end.
func newTestMemory(t testing.TB, bodies userdata.BodyRefs) *userdata.Memory {
	t.Helper()
	m, err := userdata.NewMemory(userdata.MemoryConfig{Node: "ud1", Bodies: bodies, Argon2: cheapArgon2, Logger: testLogger(t)})
	if err != nil {
		t.Fatalf("NewMemory: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// newTestDB is a Pebble DB in a temporary directory, closed at the test's
// end.
func newTestDB(t testing.TB, bodies userdata.BodyRefs) *userdata.DB {
	t.Helper()
	db, err := userdata.Open(t.Context(), userdata.Config{
		Dir: t.TempDir(), Node: "ud1", Bodies: bodies, Argon2: cheapArgon2, Logger: testLogger(t),
		CacheSize: 8 << 20, MemTableSize: 4 << 20,
	})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// remote serves db over loopback mutual TLS and returns a client of it.
func remote(t testing.TB, db userdata.UserDB) *UserDB {
	t.Helper()
	conn := serve(t, func(s *grpc.Server) { RegisterUserDB(s, db) })
	c := NewUserDBWith(conn, UserDBConfig{Peer: "peer", Logger: testLogger(t)})
	t.Cleanup(func() { c.Close() }) // a second Close is harmless
	return c
}

func TestUserDBConformanceMemory(t *testing.T) {
	udtest.Run(t, func(t *testing.T, bodies userdata.BodyRefs) userdata.UserDB {
		return remote(t, newTestMemory(t, bodies))
	})
}

func TestUserDBConformanceDB(t *testing.T) {
	udtest.Run(t, func(t *testing.T, bodies userdata.BodyRefs) userdata.UserDB {
		return remote(t, newTestDB(t, bodies))
	})
}

// TestUserDBLargeFolder: a folder of 100,000 messages comes across whole
// (UIDs, Messages in batches), and fn's error stops Messages and is
// returned as it is.
func TestUserDBLargeFolder(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	ctx := t.Context()
	db := newTestMemory(t, nil)
	c := remote(t, db)
	user, inbox := testUser(t, db)
	const n = 100_000
	for i := range n {
		if _, err := db.Append(ctx, user, inbox, testMessage(i+1)); err != nil {
			t.Fatal(err)
		}
	}
	uids, err := c.UIDs(ctx, user, inbox)
	if err != nil {
		t.Fatal(err)
	}
	if len(uids) != n || uids[0] != 1 || uids[n-1] != n {
		t.Fatalf("UIDs: %d of them, want %d in order", len(uids), n)
	}
	seen := 0
	err = c.Messages(ctx, user, inbox, nil, func(m *userdata.Message) error {
		seen++
		if m.UID != userdata.UID(seen) || m.Size != 10 {
			return fmt.Errorf("message %d: %+v", seen, m)
		}
		return nil
	})
	if err != nil || seen != n {
		t.Fatalf("Messages: %v after %d messages, want %d", err, seen, n)
	}
	stopErr := errors.New("enough")
	seen = 0
	err = c.Messages(ctx, user, inbox, nil, func(*userdata.Message) error {
		seen++
		if seen == 1000 {
			return stopErr
		}
		return nil
	})
	if err != stopErr || seen != 1000 {
		t.Errorf("Messages stopped by fn: error %v after %d messages, want fn's own after 1000", err, seen)
	}
}
