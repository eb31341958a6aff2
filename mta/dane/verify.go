package dane

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"strings"
	"time"

	"github.com/mailsys/mailsys/mta/resolve"
)

// Verify reports whether the server of the handshake cs is authenticated
// by the TLSA records recs (those Usable keeps; the others are ignored),
// for the reference names names (the MX host name, then the next-hop
// domain) at the time now, as the package documentation describes. It is
// meant for a tls.Config's VerifyConnection, with InsecureSkipVerify set
// so that crypto/tls checks nothing itself: Config makes such a config.
//
// The error, when the server is not authenticated, wraps ErrNoMatch and
// says what each kind of record found. Verify keeps nothing of its
// arguments and may be called concurrently.
func Verify(cs tls.ConnectionState, recs []resolve.TLSA, names []string, now time.Time) error {
	chain := cs.PeerCertificates
	if len(chain) == 0 {
		return fmt.Errorf("%w: the server sent no certificate", ErrNoMatch)
	}
	recs = Usable(recs)
	if len(recs) == 0 {
		return fmt.Errorf("%w: no usable TLSA record", ErrNoMatch)
	}
	var why []string
	if n := count(recs, DANEEE); n > 0 {
		for _, r := range recs {
			if r.Usage == DANEEE && matches(r, chain[0]) {
				return nil
			}
		}
		why = append(why, fmt.Sprintf("the certificate of %s matches none of %d DANE-EE records", describe(chain[0]), n))
	}
	if n := count(recs, DANETA); n > 0 {
		tried := map[*x509.Certificate]bool{}
		for _, r := range recs {
			if r.Usage != DANETA {
				continue
			}
			for i, ta := range chain {
				if tried[ta] || i == 0 && !selfIssued(ta) || !matches(r, ta) {
					continue
				}
				tried[ta] = true
				err := verifyChain(chain, ta, names, now)
				if err == nil {
					return nil
				}
				why = append(why, fmt.Sprintf("under the trust anchor %s: %v", describe(ta), err))
			}
		}
		if len(tried) == 0 {
			why = append(why, fmt.Sprintf("no certificate of the chain of %s matches any of %d DANE-TA records", describe(chain[0]), n))
		}
	}
	return fmt.Errorf("%w: %s", ErrNoMatch, strings.Join(why, "; "))
}

// verifyChain checks that chain's first certificate chains up to ta, with
// the rest of chain as intermediates, each within its validity period at
// now, and that it is for one of names.
func verifyChain(chain []*x509.Certificate, ta *x509.Certificate, names []string, now time.Time) error {
	roots, intermediates := x509.NewCertPool(), x509.NewCertPool()
	roots.AddCert(ta)
	for _, c := range chain[1:] {
		if c != ta {
			intermediates.AddCert(c)
		}
	}
	_, err := chain[0].Verify(x509.VerifyOptions{
		Roots:         roots,
		Intermediates: intermediates,
		CurrentTime:   now,
		// RFC 7672 asks nothing of the extended key usage.
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	})
	if err != nil {
		return err
	}
	if !forNames(chain[0], names) {
		return fmt.Errorf("the certificate is for %s, not for %s", strings.Join(identifiers(chain[0]), ", "), strings.Join(names, " or "))
	}
	return nil
}

// forNames reports whether one of cert's identifiers matches one of
// names.
func forNames(cert *x509.Certificate, names []string) bool {
	for _, n := range names {
		if n = normal(n); n == "" {
			continue
		}
		for _, id := range identifiers(cert) {
			if idMatches(normal(id), n) {
				return true
			}
		}
	}
	return false
}

// identifiers are the names cert is for: its DNS subject alternative
// names, or its subject common name when it has none (RFC 6125 §6.4.4).
func identifiers(cert *x509.Certificate) []string {
	if len(cert.DNSNames) > 0 {
		return cert.DNSNames
	}
	if cert.Subject.CommonName != "" {
		return []string{cert.Subject.CommonName}
	}
	return nil
}

// idMatches reports whether the identifier id, perhaps a wildcard,
// matches name; both are normal.
func idMatches(id, name string) bool {
	if id == name {
		return true
	}
	parent, ok := strings.CutPrefix(id, "*.")
	if !ok || !strings.Contains(parent, ".") {
		return false // no wildcard, or one over a top-level domain
	}
	label, rest, ok := strings.Cut(name, ".")
	return ok && label != "" && rest == parent
}

// normal is name in lower case without a trailing dot.
func normal(name string) string { return strings.ToLower(strings.TrimSuffix(name, ".")) }

// selfIssued reports whether cert names itself as its issuer and carries
// its issuer's signature.
func selfIssued(cert *x509.Certificate) bool {
	return bytes.Equal(cert.RawIssuer, cert.RawSubject) && cert.CheckSignature(cert.SignatureAlgorithm, cert.RawTBSCertificate, cert.Signature) == nil
}

// count is the number of recs of usage u.
func count(recs []resolve.TLSA, u uint8) int {
	n := 0
	for _, r := range recs {
		if r.Usage == u {
			n++
		}
	}
	return n
}

// describe names cert in an error: its subject, or its names.
func describe(cert *x509.Certificate) string {
	if s := cert.Subject.String(); s != "" {
		return fmt.Sprintf("%q", s)
	}
	return fmt.Sprintf("%q", strings.Join(identifiers(cert), ","))
}
