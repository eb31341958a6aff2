package mtasts

import (
	"fmt"
	"strings"
)

// recordPrefix starts every MTA-STS TXT record (RFC 8461 §3.1); a TXT
// record at _mta-sts.<domain> that does not start with it is not one.
const recordPrefix = "v=STSv1;"

// recordID returns the id of a domain's MTA-STS record from the TXT
// records at _mta-sts.<domain>: those not starting with recordPrefix are
// left out, and what remains must be one valid record (RFC 8461 §3.1).
// The error (wrapping ErrInvalid) when there is none, more than one, or
// it is not valid means the domain has no policy on offer.
func recordID(txts []string) (id string, err error) {
	var recs []string
	for _, t := range txts {
		if strings.HasPrefix(t, recordPrefix) {
			recs = append(recs, t)
		}
	}
	if len(recs) != 1 {
		return "", fmt.Errorf("%w: %d MTA-STS records", ErrInvalid, len(recs))
	}
	return parseRecord(recs[0])
}

// parseRecord returns the id of an MTA-STS TXT record: "v=STSv1", then
// fields "key=value" after semicolons (spaces around them allowed, one
// at the end too), id among them, 1 to 32 letters and digits. A field
// repeated keeps its first value; other fields are ignored but must be
// well-formed. Errors wrap ErrInvalid.
func parseRecord(txt string) (string, error) {
	rest, ok := strings.CutPrefix(txt, "v=STSv1")
	if !ok {
		return "", fmt.Errorf("%w: TXT record %q does not start with v=STSv1", ErrInvalid, cut(txt))
	}
	fields := strings.Split(rest, ";")
	if strings.Trim(fields[0], " \t") != "" || len(fields) < 2 {
		return "", fmt.Errorf("%w: TXT record %q: no ; after v=STSv1", ErrInvalid, cut(txt))
	}
	id := ""
	for i, f := range fields[1:] {
		f = strings.Trim(f, " \t")
		if f == "" && i == len(fields)-2 {
			break // a delimiter at the end
		}
		key, value, ok := strings.Cut(f, "=")
		if !ok || !validKey(key) {
			return "", fmt.Errorf("%w: TXT record %q: field %q", ErrInvalid, cut(txt), cut(f))
		}
		switch {
		case key == "id" && !validID(value):
			return "", fmt.Errorf("%w: TXT record %q: id %q is not 1 to 32 letters and digits", ErrInvalid, cut(txt), cut(value))
		case key == "id" && id == "":
			id = value
		case !validRecordValue(value):
			return "", fmt.Errorf("%w: TXT record %q: value of %s", ErrInvalid, cut(txt), key)
		}
	}
	if id == "" {
		return "", fmt.Errorf("%w: TXT record %q has no id", ErrInvalid, cut(txt))
	}
	return id, nil
}

// validID reports whether s is an id of a TXT record: 1 to 32 letters
// and digits.
func validID(s string) bool {
	if s == "" || len(s) > 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isAlnum(s[i]) {
			return false
		}
	}
	return true
}

// validRecordValue reports whether s is the value of an unknown field of
// a TXT record: visible ASCII but "=" and ";".
func validRecordValue(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f || c == '=' || c == ';' {
			return false
		}
	}
	return true
}
