package mailauth

import (
	"bufio"
	"context"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/mailsys/mailsys/mta"
	"github.com/mailsys/mailsys/mta/resolve"
)

var quiet = slog.New(slog.DiscardHandler)

// newSigner returns a Signer over dir that signs for domains.
func newSigner(t testing.TB, dir string, domains ...string) *Signer {
	t.Helper()
	s, err := NewSigner(SignerConfig{Dir: dir, Logger: quiet, Domains: func(ctx context.Context, d string) (bool, error) {
		return slices.Contains(domains, d), nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// message returns a message from the address from, with extra header
// lines (each "Name: value") and body; LF line ends become CRLF.
func message(from string, body string, extra ...string) string {
	h := []string{"From: " + from, "To: bob@example.net", "Subject: Hello", "Date: Wed, 02 Dec 2026 10:00:00 +0000",
		"Message-ID: <1@example.org>", "MIME-Version: 1.0", "Content-Type: text/plain"}
	h = append(h, extra...)
	return strings.ReplaceAll(strings.Join(h, "\n")+"\n\n"+body, "\n", "\r\n")
}

// signed returns msg with s's signatures on top.
func signed(t testing.TB, s *Signer, msg string) string {
	t.Helper()
	sig, err := s.Sign(context.Background(), strings.NewReader(msg))
	if err != nil {
		t.Fatal(err)
	}
	if sig == "" {
		t.Fatal("message not signed")
	}
	return sig + msg
}

// publish adds the records of s's keys for domain to z.
func publish(t testing.TB, z *resolve.Static, s *Signer, domain string) []Record {
	t.Helper()
	recs, err := s.Records(context.Background(), domain)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		z.SetTXT(r.Name, r.Value)
	}
	return recs
}

// signatures returns the tags of msg's DKIM-Signature fields.
func signatures(msg string) []map[string]string {
	var sigs []map[string]string
	for _, f := range splitHeader([]byte(msg)) {
		if strings.EqualFold(f.name, "DKIM-Signature") {
			sigs = append(sigs, sigTags(f.value))
		}
	}
	return sigs
}

// Addresses of the tests' zone.
var (
	goodIP  = netip.MustParseAddr("192.0.2.1")
	otherIP = netip.MustParseAddr("198.51.100.7")
)

// origin is an envelope from goodIP with the reverse path mailFrom.
func origin(mailFrom string) mta.Origin {
	return mta.Origin{IP: goodIP, Hello: "mail.example.org", MailFrom: mailFrom}
}

// newBufReader reads s through the smallest buffer bufio has, so that
// long lines are read in pieces.
func newBufReader(s string) *bufio.Reader { return bufio.NewReaderSize(strings.NewReader(s), 16) }
