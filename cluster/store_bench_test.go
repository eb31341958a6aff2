package cluster_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/mailsys/mailsys/cluster"
	"github.com/mailsys/mailsys/msstore"
)

// BenchmarkStorageReplicas measures Put through the cluster's Storage over
// gRPC (loopback, mutual TLS) to three MS nodes on msstore.Memory, with
// one replica and with two; the two-replica run reports its time per Put
// against the one-replica run's as x_replicas1. The bodies are released as
// it goes, outside the timed part.
func BenchmarkStorageReplicas(b *testing.B) {
	for _, size := range []struct {
		name string
		n    int
	}{{"4KiB", 4 << 10}, {"256KiB", 256 << 10}} {
		data := body(1, size.n)
		b.Run(size.name, func(b *testing.B) {
			var one time.Duration // per Put, with one replica
			for _, replicas := range []int{1, 2} {
				b.Run(fmt.Sprintf("replicas=%d", replicas), func(b *testing.B) {
					c := newNetCluster(b)
					for i := uint32(1); i <= 3; i++ {
						c.addMS(fmt.Sprintf("ms%d", i), i, 10)
					}
					s, err := cluster.NewStorageWith(c, cluster.StorageConfig{Replicas: replicas})
					if err != nil {
						b.Fatal(err)
					}
					per := runPuts(b, s, data)
					if replicas == 1 {
						one = per
					} else if one > 0 {
						b.ReportMetric(float64(per)/float64(one), "x_replicas1")
					}
				})
			}
		})
	}
}

// runPuts times Puts of data through s and returns the time per Put.
func runPuts(b *testing.B, s *cluster.Storage, data []byte) time.Duration {
	ctx := context.Background()
	var refs []msstore.Ref
	release := func() {
		for _, r := range refs {
			if err := s.Release(ctx, r); err != nil {
				b.Fatal(err)
			}
		}
		refs = refs[:0]
	}
	put := func() {
		ref, err := s.Put(ctx, bytes.NewReader(data), msstore.Meta{})
		if err != nil {
			b.Fatal(err)
		}
		refs = append(refs, ref)
	}
	for range 8 { // warm up: the connections
		put()
	}
	release()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	var timed time.Duration
	start := time.Now()
	for b.Loop() {
		put()
		if len(refs) == 256 {
			timed += time.Since(start)
			b.StopTimer()
			release()
			b.StartTimer()
			start = time.Now()
		}
	}
	timed += time.Since(start)
	release()
	return timed / time.Duration(b.N)
}
