package userdata_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/mailsys/mailsys/msstore"
	"github.com/mailsys/mailsys/userdata"
	"github.com/mailsys/mailsys/userdata/udtest"
)

func newMemory(t *testing.T, bodies userdata.BodyRefs) *userdata.Memory {
	t.Helper()
	m, err := userdata.NewMemory(userdata.MemoryConfig{
		Node:   "ud1",
		Bodies: bodies,
		Argon2: cheapArgon2,
		Logger: slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelInfo})),
	})
	if err != nil {
		t.Fatalf("NewMemory: %v", err)
	}
	return m
}

func TestMemoryConformance(t *testing.T) {
	udtest.Run(t, func(t *testing.T, bodies userdata.BodyRefs) userdata.UserDB {
		return newMemory(t, bodies)
	})
}

// TestMemoryLargeFolder: a folder of 100,000 messages takes appends,
// single-message changes and an expunge of a few without passing over the
// whole folder each time.
func TestMemoryLargeFolder(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	ctx := t.Context()
	m := newMemory(t, nil)
	defer m.Close()
	if err := m.CreateDomain(ctx, userdata.Domain{Name: "example.test"}); err != nil {
		t.Fatal(err)
	}
	u, err := m.CreateUser(ctx, userdata.NewUser{Address: "ann@example.test"})
	if err != nil {
		t.Fatal(err)
	}
	inbox, err := m.Folder(ctx, u.ID, userdata.Inbox)
	if err != nil {
		t.Fatal(err)
	}
	const n = 100_000
	start := time.Now()
	for i := range n {
		if _, err := m.Append(ctx, u.ID, inbox.ID, userdata.NewMessage{Ref: msstore.Ref{Node: 1, ID: uint64(i + 1)}, Size: 10}); err != nil {
			t.Fatal(err)
		}
	}
	for uid := userdata.UID(1); uid <= n; uid += 1000 {
		one := userdata.UIDSet{{Start: uid, Stop: uid}}
		if _, err := m.StoreFlags(ctx, u.ID, inbox.ID, one, userdata.FlagUpdate{Op: userdata.FlagsAdd, Flags: userdata.FlagDeleted}); err != nil {
			t.Fatal(err)
		}
		if _, err := m.Expunge(ctx, u.ID, inbox.ID, one); err != nil {
			t.Fatal(err)
		}
	}
	f, err := m.Folder(ctx, u.ID, userdata.Inbox)
	if err != nil {
		t.Fatal(err)
	}
	if f.Messages != n-n/1000 {
		t.Errorf("%d messages, want %d", f.Messages, n-n/1000)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("%d appends and %d flag changes and expunges took %v", n, n/1000, d)
	}
}

func TestMemoryConfigValidate(t *testing.T) {
	if err := userdata.DefaultMemoryConfig().Validate(); err != nil {
		t.Errorf("DefaultMemoryConfig().Validate() = %v", err)
	}
	if err := (userdata.MemoryConfig{}).Validate(); err != nil {
		t.Errorf("MemoryConfig{}.Validate() = %v", err)
	}
	bad := userdata.MemoryConfig{Argon2: userdata.Argon2Params{Time: 1}, LoginCacheTTL: -time.Second}
	err := bad.Validate()
	if !errors.Is(err, userdata.ErrInvalid) {
		t.Fatalf("Validate of a bad MemoryConfig = %v, want ErrInvalid", err)
	}
	for _, field := range []string{"Argon2", "LoginCacheTTL"} {
		if !strings.Contains(err.Error(), field) {
			t.Errorf("Validate = %q, names no %s", err, field)
		}
	}
	if _, err := userdata.NewMemory(bad); !errors.Is(err, userdata.ErrInvalid) {
		t.Errorf("NewMemory(bad config) error = %v, want ErrInvalid", err)
	}
}

func TestConfigValidate(t *testing.T) {
	if err := userdata.DefaultConfig("/some/dir").Validate(); err != nil {
		t.Errorf("DefaultConfig(dir).Validate() = %v", err)
	}
	bad := userdata.Config{CacheSize: -1, Argon2: userdata.Argon2Params{Time: 99, Memory: 64, Threads: 1}, LoginCacheTTL: -1}
	err := bad.Validate()
	if !errors.Is(err, userdata.ErrInvalid) {
		t.Fatalf("Validate of a bad Config = %v, want ErrInvalid", err)
	}
	for _, field := range []string{"Dir", "CacheSize", "Argon2", "LoginCacheTTL"} {
		if !strings.Contains(err.Error(), field) {
			t.Errorf("Validate = %q, names no %s", err, field)
		}
	}
	if _, err := userdata.Open(t.Context(), bad); !errors.Is(err, userdata.ErrInvalid) {
		t.Errorf("Open(bad config) error = %v, want ErrInvalid", err)
	}
	if err := userdata.DefaultPasswordLimiterConfig().Validate(); err != nil {
		t.Errorf("DefaultPasswordLimiterConfig().Validate() = %v", err)
	}
	err = userdata.PasswordLimiterConfig{MaxChecks: -1, MaxMemory: -1}.Validate()
	for _, field := range []string{"MaxChecks", "MaxMemory"} {
		if err == nil || !strings.Contains(err.Error(), field) {
			t.Errorf("PasswordLimiterConfig.Validate = %v, names no %s", err, field)
		}
	}
}

// A domain with one user, who logs in, receives a message and sees it, all
// in memory.
func ExampleMemory() {
	ctx := context.Background()
	bodies := msstore.NewMemory(1)
	cfg := userdata.DefaultMemoryConfig()
	cfg.Bodies = bodies
	cfg.Argon2 = userdata.Argon2Params{Time: 1, Memory: 64, Threads: 1} // cheap, for the example only
	db, err := userdata.NewMemory(cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()

	if err := db.CreateDomain(ctx, userdata.Domain{Name: "example.com"}); err != nil {
		log.Fatal(err)
	}
	if _, err := db.CreateUser(ctx, userdata.NewUser{Address: "alice@example.com", Password: "s3cret"}); err != nil {
		log.Fatal(err)
	}
	alice, err := db.Authenticate(ctx, "Alice@Example.com", "s3cret", userdata.ProtoIMAP)
	if err != nil {
		log.Fatal(err)
	}
	inbox, err := db.Folder(ctx, alice.ID, "inbox")
	if err != nil {
		log.Fatal(err)
	}
	stop := db.Watch(alice.ID, inbox.ID, func(ev userdata.FolderEvent) {
		fmt.Println("new in INBOX:", ev.Added) // must not block
	})
	defer stop()

	ref, err := bodies.Put(ctx, strings.NewReader("Subject: hi\r\n\r\nhello\r\n"), msstore.Meta{})
	if err != nil {
		log.Fatal(err)
	}
	if _, err := db.Append(ctx, alice.ID, inbox.ID, userdata.NewMessage{Ref: ref, Size: ref.Size, InternalDate: time.Now()}); err != nil {
		log.Fatal(err)
	}
	inbox, err = db.FolderByID(ctx, alice.ID, inbox.ID)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s: %d message(s), %d unseen, UIDNext %d\n", inbox.Name, inbox.Messages, inbox.Unseen, inbox.UIDNext)
	// Output:
	// new in INBOX: [1]
	// INBOX: 1 message(s), 1 unseen, UIDNext 2
}
