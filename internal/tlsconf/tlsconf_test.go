package tlsconf

import (
	"crypto/tls"
	"net"
	"testing"
	"time"

	"github.com/mailsys/mailsys/internal/selfsigned"
)

// TestHarden: a client offering only CBC-SHA1 suites over TLS 1.2 cannot
// connect; an AEAD one can.
func TestHarden(t *testing.T) {
	cert, err := selfsigned.New("localhost", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	base := &tls.Config{Certificates: []tls.Certificate{cert}}
	srv := Harden(base)
	if base.CipherSuites != nil || base.MinVersion != 0 {
		t.Fatal("Harden changed the config it was given")
	}
	if Harden(nil) != nil {
		t.Fatal("Harden(nil) is not nil")
	}
	own := &tls.Config{CipherSuites: []uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA}, MinVersion: tls.VersionTLS12}
	if Harden(own) != own {
		t.Fatal("Harden replaced a config that chose its own suites and version")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				tc := tls.Server(c, srv)
				tc.Handshake()
				tc.Close()
			}()
		}
	}()
	try := func(suite uint16) error {
		c, err := tls.Dial("tcp", l.Addr().String(), &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{suite}})
		if err == nil {
			c.Close()
		}
		return err
	}
	for _, s := range []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA} {
		if err := try(s); err == nil {
			t.Errorf("%s accepted", tls.CipherSuiteName(s))
		}
	}
	for _, s := range []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256} {
		if err := try(s); err != nil {
			t.Errorf("%s refused: %v", tls.CipherSuiteName(s), err)
		}
	}
}
