package dane

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/mailsys/mailsys/mta/resolve"
)

// serveTLS serves TLS on a free port of 127.0.0.1 until the test ends,
// presenting the chain of pairs (the server's own first): each connection
// gets a line with the server name the client sent (SNI). It returns the
// address.
func serveTLS(t *testing.T, pairs ...*keyPair) string {
	t.Helper()
	cert := tls.Certificate{PrivateKey: pairs[0].key}
	for _, p := range pairs {
		cert.Certificate = append(cert.Certificate, p.cert.Raw)
	}
	l, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(5 * time.Second))
				tc := c.(*tls.Conn)
				if tc.Handshake() == nil {
					tc.Write([]byte(tc.ConnectionState().ServerName + "\n"))
				}
			})
		}
	})
	t.Cleanup(func() {
		l.Close()
		wg.Wait()
	})
	return l.Addr().String()
}

// dial makes a TLS connection to addr with cfg and returns the line the
// server wrote.
func dial(addr string, cfg *tls.Config) (string, error) {
	d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: 5 * time.Second}, Config: cfg}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return "", err
	}
	defer c.Close()
	return bufio.NewReader(c).ReadString('\n')
}

// TestHandshake runs real TLS handshakes over loopback with the configs of
// Config.
func TestHandshake(t *testing.T) {
	self := newLeaf(t, nil, "mx.example.test")
	ca := newCA(t, "Example CA")
	leaf := newLeaf(t, ca, "mx.example.test")
	names := []string{"mx.example.test.", "example.test"}
	wrong := record(DANEEE, SelectorSPKI, MatchSHA256, ca.cert)

	line, err := dial(serveTLS(t, self), Config(nil, []resolve.TLSA{record(DANEEE, SelectorSPKI, MatchSHA256, self.cert)}, names))
	if err != nil || line != "mx.example.test\n" {
		t.Errorf("DANE-EE 3 1 1: %q %v, want the MX host name as SNI", line, err)
	}
	if _, err = dial(serveTLS(t, self), Config(nil, []resolve.TLSA{wrong}, names)); !errors.Is(err, ErrNoMatch) {
		t.Errorf("DANE-EE, wrong digest: %v, want ErrNoMatch", err)
	}
	addr := serveTLS(t, leaf, ca)
	if line, err = dial(addr, Config(nil, []resolve.TLSA{record(DANETA, SelectorCert, MatchSHA256, ca.cert)}, names)); err != nil || line != "mx.example.test\n" {
		t.Errorf("DANE-TA 2 0 1: %q %v", line, err)
	}
	if _, err = dial(addr, Config(nil, []resolve.TLSA{record(DANETA, SelectorCert, MatchSHA256, ca.cert)}, []string{"mx.other.test"})); !errors.Is(err, ErrNoMatch) {
		t.Errorf("DANE-TA, wrong name: %v, want ErrNoMatch", err)
	}
}

func TestConfig(t *testing.T) {
	ca := newCA(t, "Example CA")
	now := time.Now()
	old := issue(t, x509.Certificate{Subject: pkix.Name{CommonName: "mx.example.test"}, DNSNames: []string{"mx.example.test"},
		NotBefore: now.Add(-48 * time.Hour), NotAfter: now.Add(-24 * time.Hour)}, ca)
	recs := []resolve.TLSA{record(DANETA, SelectorSPKI, MatchSHA256, ca.cert)}
	called := 0
	base := &tls.Config{
		MinVersion: tls.VersionTLS10,
		NextProtos: []string{"smtp"},
		Time:       func() time.Time { return now.Add(-36 * time.Hour) },
		VerifyConnection: func(tls.ConnectionState) error {
			called++
			return nil
		},
	}
	cfg := Config(base, recs, []string{"mx.example.test.", "example.test"})
	if cfg.ServerName != "mx.example.test" || !cfg.InsecureSkipVerify || cfg.MinVersion != tls.VersionTLS12 || len(cfg.NextProtos) != 1 {
		t.Errorf("Config = ServerName %q, InsecureSkipVerify %v, MinVersion %x, NextProtos %v", cfg.ServerName, cfg.InsecureSkipVerify, cfg.MinVersion, cfg.NextProtos)
	}
	if base.InsecureSkipVerify || base.ServerName != "" || base.MinVersion != tls.VersionTLS10 {
		t.Error("Config changed its base")
	}
	recs[0].Data[0] ^= 1 // Config holds its own copy
	if err := cfg.VerifyConnection(chain(old, ca)); err != nil || called != 1 {
		t.Errorf("VerifyConnection at the base's Time: %v, base's own called %d times", err, called)
	}
	base.Time = nil
	cfg = Config(base, []resolve.TLSA{record(DANETA, SelectorSPKI, MatchSHA256, ca.cert)}, []string{"mx.example.test"})
	if err := cfg.VerifyConnection(chain(old, ca)); !errors.Is(err, ErrNoMatch) || called != 1 {
		t.Errorf("VerifyConnection now, of an expired certificate: %v, base's own called %d times", err, called)
	}
	if cfg := Config(&tls.Config{MinVersion: tls.VersionTLS13}, nil, nil); cfg.MinVersion != tls.VersionTLS13 || cfg.ServerName != "" {
		t.Errorf("Config lowered MinVersion to %x or set ServerName %q", cfg.MinVersion, cfg.ServerName)
	}
	if cfg := Config(nil, nil, nil); cfg.VerifyConnection(chain(ca)) == nil {
		t.Error("a config without records authenticated a server")
	}
}
