package rpc

import (
	"context"
	"testing"
	"time"

	"github.com/mailsys/mailsys/userdata"
)

// BenchmarkUserDB compares, for each operation and backend, the local
// database with the same database through the gRPC client over loopback
// mutual TLS. Each remote result reports x_local, its time per operation
// over the local one's in the same run:
//
//	go test -run '^$' -bench UserDB -benchtime 2s ./cluster/rpc/
//
// Authenticate is a hit of the node's cache of verified logins (the
// password was checked once before the loop), so it measures the call, not
// argon2id.
func BenchmarkUserDB(b *testing.B) {
	backends := []struct {
		name string
		open func(b *testing.B) userdata.UserDB
	}{
		{"Memory", func(b *testing.B) userdata.UserDB { return newTestMemory(b, nil) }},
		{"DB", func(b *testing.B) userdata.UserDB { return newTestDB(b, nil) }},
	}
	ops := []struct {
		name string
		// setup prepares db and returns the operation to time.
		setup func(b *testing.B, db userdata.UserDB) func(ctx context.Context) error
	}{
		{"Authenticate", func(b *testing.B, db userdata.UserDB) func(context.Context) error {
			testUser(b, db)
			return func(ctx context.Context) error {
				_, err := db.Authenticate(ctx, "ann@example.test", "secret", userdata.ProtoIMAP)
				return err
			}
		}},
		{"Folder", func(b *testing.B, db userdata.UserDB) func(context.Context) error {
			user, _ := testUser(b, db)
			return func(ctx context.Context) error {
				_, err := db.Folder(ctx, user, userdata.Inbox)
				return err
			}
		}},
		{"Messages100", func(b *testing.B, db userdata.UserDB) func(context.Context) error {
			user, inbox := testUser(b, db)
			for i := range 100 {
				if _, err := db.Append(context.Background(), user, inbox, testMessage(i+1)); err != nil {
					b.Fatal(err)
				}
			}
			return func(ctx context.Context) error {
				n := 0
				err := db.Messages(ctx, user, inbox, nil, func(*userdata.Message) error { n++; return nil })
				if err == nil && n != 100 {
					b.Fatalf("Messages gave %d messages, want 100", n)
				}
				return err
			}
		}},
		{"Append", func(b *testing.B, db userdata.UserDB) func(context.Context) error {
			user, inbox := testUser(b, db)
			n := 0
			return func(ctx context.Context) error {
				n++
				_, err := db.Append(ctx, user, inbox, testMessage(n))
				return err
			}
		}},
	}
	for _, op := range ops {
		b.Run(op.name, func(b *testing.B) {
			for _, be := range backends {
				b.Run(be.name, func(b *testing.B) {
					var local time.Duration // per operation, of the last local run
					b.Run("local", func(b *testing.B) {
						local = runOp(b, op.setup(b, be.open(b)))
					})
					b.Run("remote", func(b *testing.B) {
						remoteOp := runOp(b, op.setup(b, remote(b, be.open(b))))
						if local > 0 {
							b.ReportMetric(float64(remoteOp)/float64(local), "x_local")
						}
					})
				})
			}
		})
	}
}

// runOp times fn and returns its time per operation.
func runOp(b *testing.B, fn func(context.Context) error) time.Duration {
	ctx := context.Background()
	if err := fn(ctx); err != nil { // warm up: the login cache, the connection
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := fn(ctx); err != nil {
			b.Fatal(err)
		}
	}
	return b.Elapsed() / time.Duration(b.N)
}
