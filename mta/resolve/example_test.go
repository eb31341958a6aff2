package resolve_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"time"

	"github.com/miekg/dns"

	"github.com/mailsys/mailsys/mta/resolve"
)

// A DNS asking a resolver on the local host: here a small server with one
// MX record stands in for a validating resolver such as Unbound, and sets
// the AD bit as one would for a signed zone.
func ExampleDNS() {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	started := make(chan struct{})
	srv := &dns.Server{PacketConn: pc, NotifyStartedFunc: func() { close(started) },
		Handler: dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
			m := new(dns.Msg).SetReply(q)
			m.AuthenticatedData = true
			if q.Question[0].Name == "example.org." && q.Question[0].Qtype == dns.TypeMX {
				rr, _ := dns.NewRR("example.org. 3600 IN MX 10 mx.example.org.")
				m.Answer = append(m.Answer, rr)
			}
			w.WriteMsg(m)
		})}
	go srv.ActivateAndServe()
	<-started
	defer srv.Shutdown()

	r := &resolve.DNS{Servers: []string{pc.LocalAddr().String()}, Timeout: time.Second}
	ctx := context.Background()
	mx, res, err := r.LookupMX(ctx, "Example.ORG")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(mx[0].Host, mx[0].Pref, res.Authentic)

	_, _, err = r.LookupMX(ctx, "nowhere.example.org")
	fmt.Println(errors.Is(err, resolve.ErrNotFound))
	// Output:
	// mx.example.org. 10 true
	// true
}

// The resolver of the host, as /etc/resolv.conf names it.
func ExampleSystem() {
	r, err := resolve.System()
	if err != nil {
		log.Fatal(err)
	}
	mx, res, err := r.LookupMX(context.Background(), "example.org")
	switch {
	case errors.Is(err, resolve.ErrNotFound):
		fmt.Println("no MX: deliver to the domain's address")
	case err != nil:
		fmt.Println("try again later:", err)
	default:
		fmt.Println(mx, "DNSSEC:", res.Authentic)
	}
}
