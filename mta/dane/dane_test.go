package dane

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/mailsys/mailsys/mta/resolve"
)

// keyPair is a certificate made for a test and its private key.
type keyPair struct {
	cert *x509.Certificate
	key  ed25519.PrivateKey
}

// issue makes a certificate from tmpl, signed by parent, or self-signed
// when parent is nil; it is valid for a day around now unless tmpl says
// otherwise.
func issue(t *testing.T, tmpl x509.Certificate, parent *keyPair) *keyPair {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if tmpl.SerialNumber, err = rand.Int(rand.Reader, big.NewInt(1<<62)); err != nil {
		t.Fatal(err)
	}
	if tmpl.NotAfter.IsZero() {
		tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-12*time.Hour), time.Now().Add(12*time.Hour)
	}
	signer, issuer := priv, &tmpl
	if parent != nil {
		signer, issuer = parent.key, parent.cert
	}
	der, err := x509.CreateCertificate(rand.Reader, &tmpl, issuer, pub, signer)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &keyPair{cert: cert, key: priv}
}

// newCA makes a self-signed CA certificate, valid for a week around now.
func newCA(t *testing.T, name string) *keyPair {
	week := 7 * 24 * time.Hour
	return issue(t, x509.Certificate{Subject: pkix.Name{CommonName: name}, IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
		NotBefore: time.Now().Add(-week), NotAfter: time.Now().Add(week)}, nil)
}

func newLeaf(t *testing.T, parent *keyPair, names ...string) *keyPair {
	return issue(t, x509.Certificate{Subject: pkix.Name{CommonName: names[0]}, DNSNames: names,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature}, parent)
}

// record is the TLSA record of cert with the given parameters.
func record(usage, selector, matching uint8, cert *x509.Certificate) resolve.TLSA {
	data := cert.Raw
	if selector == SelectorSPKI {
		data = cert.RawSubjectPublicKeyInfo
	}
	switch matching {
	case MatchSHA256:
		sum := sha256.Sum256(data)
		data = sum[:]
	case MatchSHA512:
		sum := sha512.Sum512(data)
		data = sum[:]
	}
	return resolve.TLSA{Usage: usage, Selector: selector, MatchingType: matching, Data: data}
}

func chain(pairs ...*keyPair) tls.ConnectionState {
	var cs tls.ConnectionState
	for _, p := range pairs {
		cs.PeerCertificates = append(cs.PeerCertificates, p.cert)
	}
	return cs
}

func TestUsable(t *testing.T) {
	cert := newLeaf(t, nil, "mx.example.test").cert
	good := []resolve.TLSA{record(DANEEE, SelectorSPKI, MatchSHA256, cert), record(DANETA, SelectorCert, MatchFull, cert),
		record(DANEEE, SelectorCert, MatchSHA512, cert)}
	bad := []resolve.TLSA{
		record(PKIXTA, SelectorCert, MatchSHA256, cert),
		record(PKIXEE, SelectorSPKI, MatchSHA256, cert),
		record(4, SelectorSPKI, MatchSHA256, cert),
		{Usage: DANEEE, Selector: 2, MatchingType: MatchSHA256, Data: make([]byte, 32)},
		{Usage: DANEEE, Selector: SelectorSPKI, MatchingType: 3, Data: make([]byte, 32)},
		{Usage: DANEEE, Selector: SelectorSPKI, MatchingType: MatchSHA256, Data: make([]byte, 31)},
		{Usage: DANEEE, Selector: SelectorSPKI, MatchingType: MatchSHA512, Data: make([]byte, 32)},
		{Usage: DANETA, Selector: SelectorCert, MatchingType: MatchFull},
	}
	got := Usable(append(append([]resolve.TLSA{bad[0]}, good...), bad[1:]...))
	if len(got) != len(good) {
		t.Fatalf("Usable kept %d records, want %d: %v", len(got), len(good), got)
	}
	for i := range good {
		if got[i].Usage != good[i].Usage || got[i].Selector != good[i].Selector || got[i].MatchingType != good[i].MatchingType {
			t.Errorf("record %d = %v, want %v", i, got[i], good[i])
		}
	}
	if Usable(bad) != nil {
		t.Error("Usable of unusable records is not nil")
	}
}

// TestVerifyEE checks DANE-EE(3): the server's certificate, by each
// selector and matching type, with no check of names or dates.
func TestVerifyEE(t *testing.T) {
	now := time.Now()
	self := newLeaf(t, nil, "mx.example.test")
	expired := issue(t, x509.Certificate{Subject: pkix.Name{CommonName: "old.example.test"},
		NotBefore: now.Add(-48 * time.Hour), NotAfter: now.Add(-24 * time.Hour)}, nil)
	ca := newCA(t, "Example CA")
	issued := newLeaf(t, ca, "mx.example.test")
	names := []string{"mx.example.test", "example.test"}
	wrong := record(DANEEE, SelectorSPKI, MatchSHA256, self.cert)
	wrong.Data = append([]byte(nil), wrong.Data...)
	wrong.Data[0] ^= 1

	for _, c := range []struct {
		name  string
		cs    tls.ConnectionState
		recs  []resolve.TLSA
		names []string
		ok    bool
	}{
		{"3 1 1", chain(self), []resolve.TLSA{record(DANEEE, SelectorSPKI, MatchSHA256, self.cert)}, names, true},
		{"3 0 1", chain(self), []resolve.TLSA{record(DANEEE, SelectorCert, MatchSHA256, self.cert)}, names, true},
		{"3 1 2", chain(self), []resolve.TLSA{record(DANEEE, SelectorSPKI, MatchSHA512, self.cert)}, names, true},
		{"3 1 0", chain(self), []resolve.TLSA{record(DANEEE, SelectorSPKI, MatchFull, self.cert)}, names, true},
		{"3 0 0", chain(self), []resolve.TLSA{record(DANEEE, SelectorCert, MatchFull, self.cert)}, names, true},
		{"wrong hash", chain(self), []resolve.TLSA{wrong}, names, false},
		{"wrong hash then right", chain(self), []resolve.TLSA{wrong, record(DANEEE, SelectorSPKI, MatchSHA256, self.cert)}, names, true},
		{"another certificate", chain(self), []resolve.TLSA{record(DANEEE, SelectorSPKI, MatchSHA256, issued.cert)}, names, false},
		{"expired, other names", chain(expired), []resolve.TLSA{record(DANEEE, SelectorSPKI, MatchSHA256, expired.cert)}, names, true},
		{"no names", chain(self), []resolve.TLSA{record(DANEEE, SelectorSPKI, MatchSHA256, self.cert)}, nil, true},
		{"CA-issued, no chain", chain(issued), []resolve.TLSA{record(DANEEE, SelectorCert, MatchSHA256, issued.cert)}, names, true},
		{"the CA is not the server", chain(issued, ca), []resolve.TLSA{record(DANEEE, SelectorCert, MatchSHA256, ca.cert)}, names, false},
		{"PKIX-EE is not used", chain(self), []resolve.TLSA{record(PKIXEE, SelectorSPKI, MatchSHA256, self.cert)}, names, false},
		{"no certificate", tls.ConnectionState{}, []resolve.TLSA{record(DANEEE, SelectorSPKI, MatchSHA256, self.cert)}, names, false},
	} {
		err := Verify(c.cs, c.recs, c.names, now)
		if c.ok && err != nil {
			t.Errorf("%s: %v", c.name, err)
		}
		if !c.ok && !errors.Is(err, ErrNoMatch) {
			t.Errorf("%s: %v, want ErrNoMatch", c.name, err)
		}
	}
}

// TestVerifyTA checks DANE-TA(2): a trust anchor in the chain, the chain
// up to it, the dates and the names.
func TestVerifyTA(t *testing.T) {
	now := time.Now()
	ca := newCA(t, "Example CA")
	mid := issue(t, x509.Certificate{Subject: pkix.Name{CommonName: "Example Intermediate"}, IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}, ca)
	other := newCA(t, "Other CA")
	leaf := newLeaf(t, ca, "mx.example.test")
	deep := newLeaf(t, mid, "mx.example.test")
	wild := newLeaf(t, ca, "*.example.test")
	domain := newLeaf(t, ca, "example.test")
	stranger := newLeaf(t, other, "mx.example.test")
	expired := issue(t, x509.Certificate{Subject: pkix.Name{CommonName: "mx.example.test"}, DNSNames: []string{"mx.example.test"},
		NotBefore: now.Add(-48 * time.Hour), NotAfter: now.Add(-24 * time.Hour)}, ca)
	cnOnly := issue(t, x509.Certificate{Subject: pkix.Name{CommonName: "MX.Example.Test"}}, ca)
	self := newLeaf(t, nil, "mx.example.test")
	names := []string{"mx.example.test.", "example.test"}
	ta := func(selector, matching uint8, cert *x509.Certificate) []resolve.TLSA {
		return []resolve.TLSA{record(DANETA, selector, matching, cert)}
	}

	for _, c := range []struct {
		name  string
		cs    tls.ConnectionState
		recs  []resolve.TLSA
		names []string
		want  string // empty when Verify should succeed, else part of its error
	}{
		{"2 0 1", chain(leaf, ca), ta(SelectorCert, MatchSHA256, ca.cert), names, ""},
		{"2 1 1", chain(leaf, ca), ta(SelectorSPKI, MatchSHA256, ca.cert), names, ""},
		{"2 1 0", chain(leaf, ca), ta(SelectorSPKI, MatchFull, ca.cert), names, ""},
		{"2 0 2", chain(leaf, ca), ta(SelectorCert, MatchSHA512, ca.cert), names, ""},
		{"intermediate anchor", chain(deep, mid, ca), ta(SelectorCert, MatchSHA256, mid.cert), names, ""},
		{"root anchor over an intermediate", chain(deep, mid, ca), ta(SelectorCert, MatchSHA256, ca.cert), names, ""},
		{"wildcard", chain(wild, ca), ta(SelectorCert, MatchSHA256, ca.cert), names, ""},
		{"next-hop domain", chain(domain, ca), ta(SelectorCert, MatchSHA256, ca.cert), names, ""},
		{"common name", chain(cnOnly, ca), ta(SelectorCert, MatchSHA256, ca.cert), names, ""},
		{"self-issued server", chain(self), ta(SelectorSPKI, MatchSHA256, self.cert), names, ""},
		{"wrong name", chain(leaf, ca), ta(SelectorCert, MatchSHA256, ca.cert), []string{"mx.other.test", "other.test"}, "not for mx.other.test"},
		{"wildcard two labels deep", chain(wild, ca), ta(SelectorCert, MatchSHA256, ca.cert), []string{"a.mx.example.test"}, "not for"},
		{"wildcard for its parent", chain(wild, ca), ta(SelectorCert, MatchSHA256, ca.cert), []string{"example.test"}, "not for"},
		{"self-issued, wrong name", chain(self), ta(SelectorSPKI, MatchSHA256, self.cert), []string{"other.test"}, "not for"},
		{"not signed by the anchor", chain(stranger, ca), ta(SelectorCert, MatchSHA256, ca.cert), names, "unknown authority"},
		{"expired", chain(expired, ca), ta(SelectorCert, MatchSHA256, ca.cert), names, "expired"},
		{"anchor not in the chain", chain(leaf), ta(SelectorCert, MatchSHA256, ca.cert), names, "no certificate of the chain"},
		{"anchor is the server's, not self-issued", chain(leaf, ca), ta(SelectorCert, MatchSHA256, leaf.cert), names, "no certificate of the chain"},
		{"PKIX-TA is not used", chain(leaf, ca), []resolve.TLSA{record(PKIXTA, SelectorCert, MatchSHA256, ca.cert)}, names, "no usable"},
		{"EE misses, TA matches", chain(leaf, ca), append(ta(SelectorCert, MatchSHA256, ca.cert), record(DANEEE, SelectorCert, MatchSHA256, ca.cert)), names, ""},
		{"both miss", chain(stranger, ca), append(ta(SelectorCert, MatchSHA256, ca.cert), record(DANEEE, SelectorCert, MatchSHA256, leaf.cert)), names, "DANE-EE"},
	} {
		err := Verify(c.cs, c.recs, c.names, now)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.want != "" && (!errors.Is(err, ErrNoMatch) || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: %v, want ErrNoMatch saying %q", c.name, err, c.want)
		}
	}
	if err := Verify(chain(expired, ca), ta(SelectorCert, MatchSHA256, ca.cert), names, now.Add(-36*time.Hour)); err != nil {
		t.Errorf("within the validity period that now gives: %v", err)
	}
}

func TestIDMatches(t *testing.T) {
	for _, c := range []struct {
		id, name string
		ok       bool
	}{
		{"mx.example.test", "mx.example.test", true},
		{"*.example.test", "mx.example.test", true},
		{"*.example.test", "example.test", false},
		{"*.example.test", "a.mx.example.test", false},
		{"*.example.test", ".example.test", false},
		{"m*.example.test", "mx.example.test", false},
		{"mx.*.test", "mx.example.test", false},
		{"*.test", "example.test", false},
		{"mx.example.test", "mx2.example.test", false},
	} {
		if got := idMatches(c.id, c.name); got != c.ok {
			t.Errorf("idMatches(%q, %q) = %v", c.id, c.name, got)
		}
	}
}
