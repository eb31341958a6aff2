package queue_test

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/mailsys/mailsys/internal/selfsigned"
	"github.com/mailsys/mailsys/mta/mtasts"
	"github.com/mailsys/mailsys/mta/queue"
	"github.com/mailsys/mailsys/mta/resolve"
)

// stsServer serves policy as https://mta-sts.<domain>/.well-known/mta-sts.txt
// for every domain, and returns a fetcher that reaches it.
func stsServer(t *testing.T, policy string) mtasts.Fetcher {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/.well-known/mta-sts.txt" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		w.Write([]byte(policy))
	}))
	t.Cleanup(srv.Close)
	client := srv.Client()
	tr := client.Transport.(*http.Transport)
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, srv.Listener.Addr().String())
	}
	// The test server's certificate is for example.com.
	tr.TLSClientConfig.ServerName = "example.com"
	return mtasts.HTTPSFetcher{Client: client}
}

// An MTA-STS policy in enforce mode refuses a host whose certificate
// does not verify: the message is deferred, not sent in clear or over
// unverified TLS.
func TestSTSEnforceDefersBadCertificate(t *testing.T) {
	fetcher := stsServer(t, "version: STSv1\r\nmode: enforce\r\nmx: mx.example.net\r\nmax_age: 86400\r\n")
	f := newFixture(t, func(c *queue.Config) {
		c.STSFetcher = fetcher
		c.RetryFirst, c.RetryMax = time.Hour, time.Hour
	})
	f.zone.SetTXT("_mta-sts.example.net", "v=STSv1; id=20261202")
	r := startRemote(t, "127.0.0.2", f.port, "mx.example.net") // self-signed: not verified
	f.mx("example.net", "mx.example.net")
	f.host("mx.example.net", "127.0.0.2")
	f.send("m1", "", "bob@example.net")
	waitFor(t, "deferral", func() bool { return f.state("m1", "bob@example.net") == queue.Deferred })
	if n := len(r.messages()); n != 0 {
		t.Fatalf("sent %d messages against the policy", n)
	}
	e, _ := f.q.Get(t.Context(), "m1")
	if reply := e.Rcpts[0].LastReply; !strings.Contains(reply, "4.7.5") || !strings.Contains(reply, "certificate") {
		t.Errorf("deferred with %q", reply)
	}
}

// With the remote's certificate trusted, the same policy lets the
// message through over verified TLS; an MX host the policy does not name
// is not used.
func TestSTSEnforceDelivers(t *testing.T) {
	fetcher := stsServer(t, "version: STSv1\nmode: enforce\nmx: *.example.net\nmax_age: 86400\n")
	cert, err := selfsigned.New("mx.example.net", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(cert.Leaf)
	f := newFixture(t, func(c *queue.Config) {
		c.STSFetcher = fetcher
		c.TLS = &tls.Config{RootCAs: roots}
	})
	f.zone.SetTXT("_mta-sts.example.net", "v=STSv1; id=1")
	stray := startRemote(t, "127.0.0.3", f.port, "")
	r := startRemote(t, "127.0.0.2", f.port, "", func(s *smtp.Server) { s.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}} })
	f.zone.SetMX("example.net", "5 mx.elsewhere.example", "10 mx.example.net")
	f.host("mx.elsewhere.example", "127.0.0.3")
	f.host("mx.example.net", "127.0.0.2")
	f.send("m1", "", "bob@example.net")
	waitFor(t, "delivery", func() bool { return len(r.messages()) == 1 })
	if !r.messages()[0].TLS || len(stray.messages()) != 0 {
		t.Errorf("TLS %v, stray host got %d", r.messages()[0].TLS, len(stray.messages()))
	}
}

// DANE: a DNSSEC-authenticated TLSA record that matches the host's key
// lets the message through over TLS; one that does not defers it.
func TestDANE(t *testing.T) {
	for _, match := range []bool{true, false} {
		f := newFixture(t, func(c *queue.Config) { c.RetryFirst, c.RetryMax = time.Hour, time.Hour })
		r := startRemote(t, "127.0.0.2", f.port, "mx.example.net")
		leaf := r.srv.TLSConfig.Certificates[0].Leaf
		sum := sha256.Sum256(leaf.RawSubjectPublicKeyInfo)
		if !match {
			sum[0] ^= 1
		}
		f.zone.SetTLSA(f.port, "mx.example.net", resolve.TLSA{Usage: 3, Selector: 1, MatchingType: 1, Data: sum[:]})
		f.mx("example.net", "mx.example.net")
		f.host("mx.example.net", "127.0.0.2")
		f.send("m1", "", "bob@example.net")
		if match {
			waitFor(t, "delivery", func() bool { return len(r.messages()) == 1 })
			if !r.messages()[0].TLS {
				t.Error("DANE delivery not over TLS")
			}
			continue
		}
		waitFor(t, "deferral", func() bool { return f.state("m1", "bob@example.net") == queue.Deferred })
		if n := len(r.messages()); n != 0 {
			t.Errorf("sent %d messages with a TLSA record that does not match", n)
		}
	}
	// An MX lookup that is not authenticated makes TLSA records moot.
	f := newFixture(t, nil)
	r := startRemote(t, "127.0.0.2", f.port, "mx.example.net")
	f.zone.SetTLSA(f.port, "mx.example.net", resolve.TLSA{Usage: 3, Selector: 1, MatchingType: 1, Data: make([]byte, 32)})
	f.mx("example.net", "mx.example.net")
	f.zone.Insecure("example.net", true)
	f.host("mx.example.net", "127.0.0.2")
	f.send("m1", "", "bob@example.net")
	waitFor(t, "delivery", func() bool { return len(r.messages()) == 1 })
}
