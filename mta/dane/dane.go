package dane

import (
	"bytes"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"errors"

	"github.com/mailsys/mailsys/mta/resolve"
)

// ErrNoMatch reports a server that its TLSA records do not authenticate:
// Verify's errors, and so the handshakes of Config, wrap it.
var ErrNoMatch = errors.New("dane: no TLSA record matches the server")

// The values of a TLSA record's fields (RFC 6698 §2.1, RFC 7218).
const (
	PKIXTA = 0 // usage: a CA of the public PKI (not for SMTP)
	PKIXEE = 1 // usage: the server's certificate, under the PKI (not for SMTP)
	DANETA = 2 // usage: a trust anchor of the server's chain
	DANEEE = 3 // usage: the server's certificate or key

	SelectorCert = 0 // selector: the whole certificate (DER)
	SelectorSPKI = 1 // selector: its SubjectPublicKeyInfo (DER)

	MatchFull   = 0 // matching type: the selected data itself
	MatchSHA256 = 1 // matching type: its SHA-256 digest
	MatchSHA512 = 2 // matching type: its SHA-512 digest
)

// Usable returns the records of recs that SMTP can use (RFC 7672 §3.1):
// DANE-TA and DANE-EE records of a known selector and matching type, with
// data of the length the matching type implies. It returns nil when none
// is; the records it returns share their Data with recs.
func Usable(recs []resolve.TLSA) []resolve.TLSA {
	var usable []resolve.TLSA
	for _, r := range recs {
		if (r.Usage == DANETA || r.Usage == DANEEE) && r.Selector <= SelectorSPKI && dataFits(r) {
			usable = append(usable, r)
		}
	}
	return usable
}

// dataFits reports whether r's data can be of its matching type.
func dataFits(r resolve.TLSA) bool {
	switch r.MatchingType {
	case MatchFull:
		return len(r.Data) > 0
	case MatchSHA256:
		return len(r.Data) == sha256.Size
	case MatchSHA512:
		return len(r.Data) == sha512.Size
	}
	return false
}

// matches reports whether cert matches r by r's selector and matching
// type.
func matches(r resolve.TLSA, cert *x509.Certificate) bool {
	var data []byte
	switch r.Selector {
	case SelectorCert:
		data = cert.Raw
	case SelectorSPKI:
		data = cert.RawSubjectPublicKeyInfo
	default:
		return false
	}
	switch r.MatchingType {
	case MatchFull:
		return bytes.Equal(data, r.Data)
	case MatchSHA256:
		sum := sha256.Sum256(data)
		return bytes.Equal(sum[:], r.Data)
	case MatchSHA512:
		sum := sha512.Sum512(data)
		return bytes.Equal(sum[:], r.Data)
	}
	return false
}
