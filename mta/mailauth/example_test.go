package mailauth_test

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"net/netip"
	"os"
	"strings"

	"github.com/emersion/go-msgauth/authres"
	"github.com/mailsys/mailsys/mta"
	"github.com/mailsys/mailsys/mta/mailauth"
	"github.com/mailsys/mailsys/mta/resolve"
)

// A message signed by one host's Signer, then verified by another's
// Verifier against a zone in memory that publishes the signing domain's
// keys, SPF and DMARC records.
func Example() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "dkim")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	// The sending side: example.org is ours.
	signer, err := mailauth.NewSigner(mailauth.SignerConfig{
		Dir:     dir,
		Domains: func(ctx context.Context, d string) (bool, error) { return d == "example.org", nil },
		Logger:  slog.New(slog.DiscardHandler),
	})
	if err != nil {
		log.Fatal(err)
	}
	zone := &resolve.Static{}
	records, err := signer.Records(ctx, "example.org") // makes the first keys
	if err != nil {
		log.Fatal(err)
	}
	for _, r := range records {
		zone.SetTXT(r.Name, r.Value)
	}
	zone.SetTXT("example.org", "v=spf1 ip4:192.0.2.1 -all")
	zone.SetTXT("_dmarc.example.org", "v=DMARC1; p=reject")

	msg := "From: Alice <alice@example.org>\r\nTo: bob@example.net\r\nSubject: Hello\r\n\r\nHi Bob.\r\n"
	sig, err := signer.Sign(ctx, strings.NewReader(msg))
	if err != nil {
		log.Fatal(err)
	}
	msg = sig + msg

	// The receiving side, mx.example.net.
	cfg := mailauth.DefaultVerifierConfig()
	cfg.Resolver, cfg.Hostname = zone, "mx.example.net"
	cfg.Logger = slog.New(slog.DiscardHandler)
	verifier, err := mailauth.NewVerifier(cfg)
	if err != nil {
		log.Fatal(err)
	}
	from := mta.Origin{IP: netip.MustParseAddr("192.0.2.1"), Hello: "mail.example.org", MailFrom: "alice@example.org"}
	verdict, err := verifier.Verify(ctx, from, []byte(msg))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("accepted:", verdict.Action == mta.Accept)
	name, value, _ := strings.Cut(verdict.Headers[0], ": ")
	id, results, _ := authres.Parse(value)
	fmt.Println(name, "by", id)
	for _, r := range results {
		switch r := r.(type) {
		case *authres.SPFResult:
			fmt.Println("spf", r.Value, r.From)
		case *authres.DKIMResult:
			fmt.Println("dkim", r.Value, r.Domain)
		case *authres.DMARCResult:
			fmt.Println("dmarc", r.Value, r.From)
		}
	}

	// The same message from another address, and with its body changed,
	// fails DMARC: example.org's policy says reject.
	from.IP = netip.MustParseAddr("198.51.100.7")
	verdict, err = verifier.Verify(ctx, from, []byte(strings.Replace(msg, "Hi Bob.", "Hi Bob, send money.", 1)))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(verdict.Action == mta.Reject, verdict.Reply.Code, verdict.Reply.Enhanced, verdict.Reply.Message)
	// Output:
	// accepted: true
	// Authentication-Results by mx.example.net
	// spf pass alice@example.org
	// dkim pass example.org
	// dkim pass example.org
	// dmarc pass example.org
	// true 550 [5 7 1] Message rejected: it fails the DMARC policy of example.org
}
