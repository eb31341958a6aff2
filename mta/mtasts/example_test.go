package mtasts_test

import (
	"context"
	"fmt"
	"log"

	"github.com/mailsys/mailsys/mta/mtasts"
	"github.com/mailsys/mailsys/mta/resolve"
)

// A policy file, and the MX hosts it allows.
func ExampleParse() {
	p, err := mtasts.Parse([]byte("version: STSv1\nmode: enforce\nmx: mx1.example.com\nmx: *.mail.example.com\nmax_age: 604800\n"))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(p.Mode, p.MaxAge, p.Enforced())
	for _, host := range []string{"mx1.example.com", "a.mail.example.com.", "a.b.mail.example.com", "mx.evil.example"} {
		fmt.Println(host, p.Match(host))
	}
	// Output:
	// enforce 168h0m0s true
	// mx1.example.com true
	// a.mail.example.com. true
	// a.b.mail.example.com false
	// mx.evil.example false
}

// A Cache finds a domain's policy through its TXT record, and fetches it
// again only when the record's id changes.
func ExampleCache() {
	zone := &resolve.Static{}
	zone.SetTXT("_mta-sts.example.com", "v=STSv1; id=20260101")
	fetches := 0
	fetch := mtasts.FetcherFunc(func(ctx context.Context, domain string) ([]byte, error) {
		fetches++
		return []byte("version: STSv1\nmode: testing\nmx: mx.example.com\nmax_age: 86400\n"), nil
	})
	c, err := mtasts.NewCache(zone, fetch, "", nil) // in production: mtasts.HTTPSFetcher{}, and a file
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	for range 3 {
		p, err := c.Policy(ctx, "example.com")
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(p.Mode, p.ID, p.Match("mx.example.com"))
	}
	p, _ := c.Policy(ctx, "example.net") // no record: no policy
	fmt.Println(p == nil, fetches)
	// Output:
	// testing 20260101 true
	// testing 20260101 true
	// testing 20260101 true
	// true 1
}
