package dane_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"log"
	"math/big"
	"net"
	"time"

	"github.com/mailsys/mailsys/mta/dane"
	"github.com/mailsys/mailsys/mta/resolve"
)

// A client handshake with a server whose self-signed certificate its
// "3 1 1" TLSA record (DANE-EE, SHA-256 of the public key) vouches for,
// then with a record for another key.
func ExampleConfig() {
	pub, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		log.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "mx.example.org"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, key)
	if err != nil {
		log.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	spki := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	server := &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}

	// As LookupTLSA would give them for _25._tcp.mx.example.org.
	recs := []resolve.TLSA{
		{Usage: dane.PKIXEE, Selector: dane.SelectorSPKI, MatchingType: dane.MatchSHA256, Data: spki[:]},
		{Usage: dane.DANEEE, Selector: dane.SelectorSPKI, MatchingType: dane.MatchSHA256, Data: spki[:]},
	}
	recs = dane.Usable(recs) // the PKIX-EE record is not for SMTP
	names := []string{"mx.example.org", "example.org"}

	handshake := func(recs []resolve.TLSA) error {
		c, s := net.Pipe()
		defer c.Close()
		defer s.Close()
		go tls.Server(s, server).Handshake()
		return tls.Client(c, dane.Config(nil, recs, names)).Handshake()
	}
	fmt.Println(len(recs), handshake(recs))

	other := sha256.Sum256([]byte("another key"))
	err = handshake([]resolve.TLSA{{Usage: dane.DANEEE, Selector: dane.SelectorSPKI, MatchingType: dane.MatchSHA256, Data: other[:]}})
	fmt.Println(errors.Is(err, dane.ErrNoMatch))
	// Output:
	// 1 <nil>
	// true
}
