package mailauth

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net/textproto"
	"strings"

	"github.com/emersion/go-message/mail"
	"golang.org/x/net/idna"
)

// field is one header field as DKIM reads it: the name before the colon
// and the raw text after it, continuation lines (with their CRLF) kept.
type field struct {
	name, value string
}

// splitHeader splits a header section into its fields the way go-msgauth's
// dkim package does (net/textproto lines, a line starting with a space or a
// tab continuing the field before it), so that the i-th DKIM-Signature
// found here is the i-th that dkim.Verify reports on. It reads up to the
// blank line that ends the header, or the end of b.
func splitHeader(b []byte) []field {
	tr := textproto.NewReader(bufio.NewReader(bytes.NewReader(b)))
	var raw []string
	for {
		l, err := tr.ReadLine()
		if err != nil || l == "" {
			break
		}
		if len(raw) > 0 && (l[0] == ' ' || l[0] == '\t') {
			raw[len(raw)-1] += "\r\n" + l
		} else {
			raw = append(raw, l)
		}
	}
	fields := make([]field, 0, len(raw))
	for _, kv := range raw {
		k, v, _ := strings.Cut(kv, ":")
		fields = append(fields, field{strings.TrimSpace(k), v})
	}
	return fields
}

// unfold removes the line breaks of a folded field value (RFC 5322
// §2.2.3) and the white space around it.
func unfold(v string) string {
	return strings.TrimSpace(strings.NewReplacer("\r\n", "", "\n", "").Replace(v))
}

// readHeader reads the header section of a message from br: every byte up
// to and including the blank line that ends it. When the message ends
// before that line (a message without a body), the section is completed
// with the line ends it lacks, as RFC 5322 reads it, and complete is
// false.
func readHeader(br *bufio.Reader) (hdr []byte, complete bool, err error) {
	start := 0 // where the line being read starts
	for {
		line, err := br.ReadSlice('\n')
		hdr = append(hdr, line...)
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF):
			if len(hdr) > start {
				hdr = append(hdr, "\r\n"...)
			}
			return append(hdr, "\r\n"...), false, nil
		case err != nil:
			return nil, false, err
		}
		if l := hdr[start:]; string(l) == "\r\n" || string(l) == "\n" {
			return hdr, true, nil
		}
		start = len(hdr)
	}
}

// Errors of fromDomain, for the DMARC result's reason.
var (
	errNoFrom       = errors.New("no From field")
	errSeveralFrom  = errors.New("several From fields")
	errFromSyntax   = errors.New("unparsable From field")
	errFromDomains  = errors.New("the From field names several domains")
	errFromNoDomain = errors.New("the From address has no valid domain")
)

// fromDomain returns the domain of the message's author (RFC 7489 §3.1.1's
// RFC5322.From domain), in the form normDomain gives: the one domain of
// the From field's addresses. A message without a From field, or with
// several, or whose field does not parse or names addresses in different
// domains, has none and the error says why. With first set, a field with
// several addresses gives the first one's domain instead.
func fromDomain(fields []field, first bool) (string, error) {
	var from []string
	for _, f := range fields {
		if strings.EqualFold(f.name, "From") {
			from = append(from, f.value)
		}
	}
	switch {
	case len(from) == 0:
		return "", errNoFrom
	case len(from) > 1 && !first:
		return "", errSeveralFrom
	}
	addrs, err := mail.ParseAddressList(unfold(from[0]))
	if err != nil || len(addrs) == 0 {
		return "", errFromSyntax
	}
	if first {
		addrs = addrs[:1]
	}
	domain := ""
	for _, a := range addrs {
		at := strings.LastIndexByte(a.Address, '@')
		d, ok := normDomain(a.Address[at+1:])
		switch {
		case at < 0 || !ok:
			return "", errFromNoDomain
		case domain != "" && d != domain:
			return "", errFromDomains
		}
		domain = d
	}
	return domain, nil
}

// normDomain returns d as DNS names it: lower case, A-labels (RFC 5891)
// for the labels of an internationalized name, no trailing dot; and
// whether d is a domain name at all (not an address literal, not empty,
// labels of letters, digits, hyphens and underscores of 1 to 63 octets,
// 253 in all).
func normDomain(d string) (string, bool) {
	d = strings.TrimSuffix(d, ".")
	for i := 0; i < len(d); i++ {
		if d[i] >= 0x80 {
			a, err := idna.Lookup.ToASCII(d)
			if err != nil {
				return "", false
			}
			d = a
			break
		}
	}
	d = strings.ToLower(d)
	if d == "" || len(d) > 253 {
		return "", false
	}
	for l := range strings.SplitSeq(d, ".") {
		if l == "" || len(l) > 63 {
			return "", false
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				return "", false
			}
		}
	}
	return d, true
}
