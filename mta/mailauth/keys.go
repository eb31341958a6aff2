package mailauth

import (
	"cmp"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// rsaBits is the size of the RSA keys made: RFC 8301 §3.2 asks signers
// for at least 1024 bits and recommends 2048; more does not fit one TXT
// string and many DNS interfaces.
const rsaBits = 2048

// A Record is a DNS TXT record that publishes a DKIM public key (RFC 6376
// §3.6.1).
type Record struct {
	// Name is the owner name: "<selector>._domainkey.<domain>", without
	// a trailing dot.
	Name string
	// Value is the record's text: "v=DKIM1; k=ed25519; p=..." (the raw
	// 32-byte key, RFC 8463) or "v=DKIM1; k=rsa; p=..." (the
	// SubjectPublicKeyInfo). An RSA key's is longer than the 255 octets a
	// TXT character string holds: it is published as several strings of
	// one record, which a resolver joins (Zone writes them so).
	Value string
}

// Zone returns r as a line of a DNS zone file, its text split into
// character strings of at most 255 octets:
//
//	ms20261202r._domainkey.example.org. IN TXT "v=DKIM1; k=rsa; p=MIIB..." "...AQAB"
func (r Record) Zone() string {
	var b strings.Builder
	b.WriteString(r.Name + ". IN TXT")
	for v := r.Value; v != ""; {
		n := min(len(v), 255)
		b.WriteString(` "` + v[:n] + `"`)
		v = v[n:]
	}
	return b.String()
}

// pairName names a key pair: the day it was made (UTC, YYYYMMDD) and its
// rank among the pairs made that day (1, 2...), so that names sort by age
// and a second rotation in a day gets a name of its own.
type pairName struct {
	day string
	seq int
}

// base is the common part of the pair's selectors: "ms20261202" for the
// first of a day, "ms20261202n2" for the second.
func (n pairName) base() string {
	if n.seq > 1 {
		return "ms" + n.day + "n" + strconv.Itoa(n.seq)
	}
	return "ms" + n.day
}

// The selectors of a pair end in e (the ed25519 key) or r (the RSA key).
func (n pairName) ed() string  { return n.base() + "e" }
func (n pairName) rsa() string { return n.base() + "r" }

func (n pairName) compare(m pairName) int {
	return cmp.Or(strings.Compare(n.day, m.day), cmp.Compare(n.seq, m.seq))
}

var selectorRE = regexp.MustCompile(`^ms([0-9]{8})(?:n([0-9]{1,6}))?([er])$`)

// parseSelector returns the pair a selector belongs to and whether it is
// the ed25519 one; ok is false for a name not made by this package.
func parseSelector(sel string) (n pairName, ed, ok bool) {
	m := selectorRE.FindStringSubmatch(sel)
	if m == nil {
		return pairName{}, false, false
	}
	n = pairName{day: m[1], seq: 1}
	if m[2] != "" {
		seq, _ := strconv.Atoi(m[2])
		if seq < 2 {
			return pairName{}, false, false // "n1" or "n0" would alias the first
		}
		n.seq = seq
	}
	return n, m[3] == "e", true
}

// nextName returns the name of a pair made at now that sorts after every
// name in taken: the first of its day, or the next of the latest day
// taken if that is now's or later (a clock set back).
func nextName(now time.Time, taken []pairName) pairName {
	n := pairName{day: now.UTC().Format("20060102"), seq: 1}
	for _, t := range taken {
		if t.compare(n) >= 0 {
			n = pairName{day: t.day, seq: t.seq + 1}
		}
	}
	return n
}

// keyPair is a domain's pair of keys: one ed25519 and one RSA, made
// together, published together, retired together.
type keyPair struct {
	name pairName
	ed   ed25519.PrivateKey
	rsa  *rsa.PrivateKey
}

// newKeyPair makes a pair of fresh keys.
func newKeyPair(name pairName) (*keyPair, error) {
	_, ed, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("mailauth: ed25519 key: %w", err)
	}
	rk, err := rsa.GenerateKey(rand.Reader, rsaBits)
	if err != nil {
		return nil, fmt.Errorf("mailauth: RSA key: %w", err)
	}
	return &keyPair{name: name, ed: ed, rsa: rk}, nil
}

// selectorKey is a key and the selector that publishes it.
type selectorKey struct {
	selector string
	key      crypto.Signer
}

// keys returns the pair's keys, ed25519 first.
func (p *keyPair) keys() []selectorKey {
	return []selectorKey{{p.name.ed(), p.ed}, {p.name.rsa(), p.rsa}}
}

// records returns the TXT records publishing the pair's public keys for
// domain.
func (p *keyPair) records(domain string) ([]Record, error) {
	spki, err := x509.MarshalPKIXPublicKey(&p.rsa.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("mailauth: RSA public key: %w", err)
	}
	enc := base64.StdEncoding.EncodeToString
	return []Record{
		{p.name.ed() + "._domainkey." + domain, "v=DKIM1; k=ed25519; p=" + enc(p.ed.Public().(ed25519.PublicKey))},
		{p.name.rsa() + "._domainkey." + domain, "v=DKIM1; k=rsa; p=" + enc(spki)},
	}, nil
}
