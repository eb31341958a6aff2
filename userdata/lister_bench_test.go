package userdata

import (
	"fmt"
	"testing"
	"time"
)

// BenchmarkListUsers lists a page of 100 of a domain of 100,000 users
// (baseline: the plain page at an After in the middle) and searches for a
// name that one user has, which scans the whole domain's index: the
// ratio of the search to the page is the cost of a search with no index
// of its own.
func BenchmarkListUsers(b *testing.B) {
	ctx := b.Context()
	cfg := Config{Dir: b.TempDir(), Node: "ud1", NoSync: true, DiskReserve: -1, CacheSize: 64 << 20, LoginCache: -1}
	d, err := Open(ctx, cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	if err := d.CreateDomain(ctx, Domain{Name: "big.test"}); err != nil {
		b.Fatal(err)
	}
	const n = 100_000
	for i := range n {
		name := fmt.Sprint("Person ", i)
		if i == n/3 {
			name = "The Needle"
		}
		if _, err := d.CreateUser(ctx, NewUser{Address: fmt.Sprintf("user%06d@big.test", i), Name: name}); err != nil {
			b.Fatal(err)
		}
	}
	run := func(q UserQuery, want int) time.Duration {
		start := time.Now()
		us, err := d.ListUsers(ctx, q)
		if err != nil || len(us) != want {
			b.Fatalf("ListUsers(%+v) = %d users, %v; want %d", q, len(us), err, want)
		}
		return time.Since(start)
	}
	var page, search time.Duration
	b.ResetTimer()
	for b.Loop() {
		page += run(UserQuery{Domain: "big.test", After: "user050000@big.test", Limit: 100}, 100)
		search += run(UserQuery{Domain: "big.test", Search: "needle", Limit: 100}, 1)
	}
	b.ReportMetric(float64(page.Microseconds())/float64(b.N), "page_us/op")
	b.ReportMetric(float64(search.Microseconds())/float64(b.N), "search_us/op")
	b.ReportMetric(float64(search)/float64(page), "ratio_search_to_page")
}
