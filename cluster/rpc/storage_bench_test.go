package rpc

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/mailsys/mailsys/msstore"
)

// BenchmarkStorage compares, for each operation, body size and backend,
// the local store with the same store through the gRPC client over
// loopback mutual TLS. Each remote result reports x_local, its time per
// operation over the local one's in the same run, and every result MB/s:
//
//	go test -run '^$' -bench Storage -benchtime 2s ./cluster/rpc/
//
// Volumes run with NoSync, so that Put measures the store and the wire, not
// the disk's flush. OpenReadAll opens a body, copies it all (as IMAP FETCH
// does, through an io.SectionReader) and closes it.
func BenchmarkStorage(b *testing.B) {
	backends := []struct {
		name string
		open func(b *testing.B) msstore.Storage
	}{
		{"Memory", func(b *testing.B) msstore.Storage { return newTestMemStore(b) }},
		{"Volumes", func(b *testing.B) msstore.Storage {
			cfg := msstore.DefaultConfig(b.TempDir())
			cfg.NoSync = true
			cfg.Logger = slog.New(slog.DiscardHandler) // not its permission warnings
			s, err := msstore.OpenVolumes(context.Background(), cfg)
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { s.Close() })
			return s
		}},
	}
	ops := []struct {
		name string
		// setup prepares st for bodies of size and returns the operation.
		setup func(b *testing.B, st msstore.Storage, data []byte) func(ctx context.Context) error
	}{
		{"Put", func(b *testing.B, st msstore.Storage, data []byte) func(context.Context) error {
			r := bytes.NewReader(data)
			return func(ctx context.Context) error {
				r.Reset(data)
				ref, err := st.Put(ctx, readOnly{r}, msstore.Meta{MessageID: "<bench@example.test>"})
				if err != nil {
					return err
				}
				return st.Release(ctx, ref)
			}
		}},
		{"OpenReadAll", func(b *testing.B, st msstore.Storage, data []byte) func(context.Context) error {
			ref, err := st.Put(context.Background(), bytes.NewReader(data), msstore.Meta{})
			if err != nil {
				b.Fatal(err)
			}
			return func(ctx context.Context) error {
				body, err := st.Open(ctx, ref)
				if err != nil {
					return err
				}
				n, err := io.Copy(io.Discard, io.NewSectionReader(body, 0, body.Size()))
				if err == nil && n != int64(len(data)) {
					b.Fatalf("read %d bytes of %d", n, len(data))
				}
				if cerr := body.Close(); err == nil {
					err = cerr
				}
				return err
			}
		}},
	}
	sizes := []struct {
		name string
		n    int
	}{{"4KiB", 4 << 10}, {"1MiB", 1 << 20}}
	for _, op := range ops {
		b.Run(op.name, func(b *testing.B) {
			for _, size := range sizes {
				data := testBody(99, size.n)
				b.Run(size.name, func(b *testing.B) {
					for _, be := range backends {
						b.Run(be.name, func(b *testing.B) {
							var local time.Duration // per operation, of the last local run
							b.Run("local", func(b *testing.B) {
								local = runStorageOp(b, len(data), op.setup(b, be.open(b), data))
							})
							b.Run("remote", func(b *testing.B) {
								_, c := remoteStorage(b, be.open(b), storageServerConfig{}, StorageConfig{})
								remoteOp := runStorageOp(b, len(data), op.setup(b, c, data))
								if local > 0 {
									b.ReportMetric(float64(remoteOp)/float64(local), "x_local")
								}
							})
						})
					}
				})
			}
		})
	}
}

// runStorageOp times fn on bodies of n bytes and returns its time per
// operation.
func runStorageOp(b *testing.B, n int, fn func(context.Context) error) time.Duration {
	ctx := context.Background()
	if err := fn(ctx); err != nil { // warm up: the connection
		b.Fatal(err)
	}
	b.SetBytes(int64(n))
	b.ReportAllocs()
	for b.Loop() {
		if err := fn(ctx); err != nil {
			b.Fatal(err)
		}
	}
	return b.Elapsed() / time.Duration(b.N)
}
