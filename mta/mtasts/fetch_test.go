package mtasts_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mailsys/mailsys/mta/mtasts"
)

const policyText = "version: STSv1\r\nmode: enforce\r\nmx: mx.example.org\r\nmax_age: 86400\r\n"

// policyServer is an HTTPS server on loopback with a certificate, from
// a CA of its own, for mta-sts.<domain> of each domain it serves; and a
// client that trusts that CA and dials every mta-sts.*:443 to it.
type policyServer struct {
	srv    *httptest.Server
	client *http.Client
	hits   atomic.Int32
}

// newPolicyServer serves handlers by domain (the Host without
// "mta-sts."); its certificate names the domains in certified.
func newPolicyServer(t *testing.T, certified []string, handlers map[string]http.HandlerFunc) *policyServer {
	t.Helper()
	ps := &policyServer{}
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leaf := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "policy server"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	for _, d := range certified {
		leaf.DNSNames = append(leaf.DNSNames, "mta-sts."+d)
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leaf, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}

	ps.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ps.hits.Add(1)
		if r.Method != http.MethodGet || r.URL.Path != "/.well-known/mta-sts.txt" {
			http.Error(w, "wrong request "+r.Method+" "+r.URL.Path, http.StatusBadRequest)
			return
		}
		h := handlers[strings.TrimPrefix(r.Host, "mta-sts.")]
		if h == nil {
			http.NotFound(w, r)
			return
		}
		h(w, r)
	}))
	ps.srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes
	ps.srv.TLS = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{leafDER}, PrivateKey: key}}}
	ps.srv.StartTLS()
	t.Cleanup(ps.srv.Close)

	roots := x509.NewCertPool()
	roots.AddCert(caCert)
	addr := ps.srv.Listener.Addr().String()
	ps.client = &http.Client{Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: roots},
		DialContext: func(ctx context.Context, network, a string) (net.Conn, error) {
			host, port, _ := net.SplitHostPort(a)
			if !strings.HasPrefix(host, "mta-sts.") || port != "443" {
				return nil, errors.New("test dialer: only mta-sts.*:443, not " + a)
			}
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
	}}
	t.Cleanup(ps.client.CloseIdleConnections)
	return ps
}

func text(body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte(body))
	}
}

func TestHTTPSFetcher(t *testing.T) {
	domains := []string{"ok.example", "max.example", "missing.example", "moved.example", "html.example", "big.example", "notype.example", "error.example"}
	ps := newPolicyServer(t, domains, map[string]http.HandlerFunc{
		"ok.example":  text(policyText),
		"max.example": text(strings.Repeat("a", mtasts.MaxPolicySize)),
		"moved.example": func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "https://mta-sts.ok.example/.well-known/mta-sts.txt", http.StatusMovedPermanently)
		},
		"html.example": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			w.Write([]byte(policyText))
		},
		"notype.example": func(w http.ResponseWriter, r *http.Request) {
			w.Header()["Content-Type"] = nil // no sniffing either
			w.Write([]byte(policyText))
		},
		"big.example": text(strings.Repeat("a", 70<<10)),
		"error.example": func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, policyText, http.StatusInternalServerError)
		},
	})
	// A client that would follow redirects: Fetch must not.
	f := mtasts.HTTPSFetcher{Client: ps.client}
	ctx := context.Background()

	b, err := f.Fetch(ctx, "OK.Example.")
	if err != nil || string(b) != policyText {
		t.Fatalf("Fetch: %q, %v", b, err)
	}
	if b, err := f.Fetch(ctx, "max.example"); err != nil || len(b) != mtasts.MaxPolicySize {
		t.Errorf("Fetch of %d bytes: %d bytes, %v", mtasts.MaxPolicySize, len(b), err)
	}
	for _, d := range []string{"missing.example", "moved.example", "html.example", "notype.example", "big.example", "error.example"} {
		before := ps.hits.Load()
		b, err := f.Fetch(ctx, d)
		if !errors.Is(err, mtasts.ErrFetch) || b != nil {
			t.Errorf("Fetch of %s: %q, %v; want ErrFetch", d, b, err)
		}
		if n := ps.hits.Load() - before; n != 1 {
			t.Errorf("Fetch of %s made %d requests, want 1", d, n)
		}
	}

	// A certificate that does not name mta-sts.<domain> is refused.
	before := ps.hits.Load()
	if _, err := f.Fetch(ctx, "uncertified.example"); !errors.Is(err, mtasts.ErrFetch) || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("Fetch with a certificate for other names: %v", err)
	}
	// And so is one from a CA the client does not trust.
	if _, err := (mtasts.HTTPSFetcher{Client: &http.Client{Transport: &http.Transport{DialContext: ps.client.Transport.(*http.Transport).DialContext}}}).Fetch(ctx, "ok.example"); !errors.Is(err, mtasts.ErrFetch) {
		t.Errorf("Fetch trusting other roots: %v", err)
	}
	if n := ps.hits.Load() - before; n != 0 {
		t.Errorf("%d requests made over connections that did not verify", n)
	}

	if _, err := f.Fetch(ctx, "not a domain/x"); !errors.Is(err, mtasts.ErrInvalid) {
		t.Errorf("Fetch of a bad domain: %v", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := f.Fetch(cctx, "ok.example"); !errors.Is(err, context.Canceled) || !errors.Is(err, mtasts.ErrFetch) {
		t.Errorf("Fetch with a cancelled context: %v", err)
	}
}
