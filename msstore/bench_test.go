package msstore_test

import (
	"bytes"
	"sync"
	"testing"

	"github.com/mailsys/mailsys/msstore"
)

// BenchmarkPut measures durable Puts of 4 KiB bodies from 16 goroutines.
// The whole-system comparison with a file per message is bench/msstore.
func BenchmarkPut(b *testing.B) {
	s, err := msstore.OpenVolumes(b.Context(), msstore.DefaultConfig(b.TempDir()))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	body := bytes.Repeat([]byte("x"), 4096)
	b.SetBytes(int64(len(body)))
	var wg sync.WaitGroup
	per := b.N/16 + 1
	b.ResetTimer()
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range per {
				if _, err := s.Put(b.Context(), bytes.NewReader(body), msstore.Meta{MessageID: "<x@y>", Owners: []msstore.Owner{{User: "u@example.com", Mailbox: "INBOX"}}}); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
}
