package rpc

import (
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
	return NewUserDBWith(conn, UserDBConfig{Peer: "peer", Logger: testLogger(t)})
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
