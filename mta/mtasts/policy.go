package mtasts

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/mailsys/mailsys/internal/dnsname"
)

// ErrInvalid wraps the reason a policy file, a TXT record or a domain
// is refused.
var ErrInvalid = errors.New("mtasts: invalid")

// MaxPolicySize is the largest policy file (RFC 8461 §3.3).
const MaxPolicySize = 64 << 10

// MaxMaxAge is the largest max_age of a policy (RFC 8461 §3.2): a year.
const MaxMaxAge = 31557600 * time.Second

// Mode is what a policy asks of a sender (RFC 8461 §5).
type Mode string

// The modes of RFC 8461 §3.2.
const (
	// Enforce: deliver only to MX hosts the policy names, over TLS with
	// a certificate that verifies.
	Enforce Mode = "enforce"
	// Testing: report failures (TLSRPT), but deliver anyway.
	Testing Mode = "testing"
	// None: the domain has withdrawn its policy; nothing to enforce.
	None Mode = "none"
)

// Policy is a domain's MTA-STS policy. A Policy returned by Parse or a
// Cache is the caller's: the Cache keeps its own copy.
type Policy struct {
	Mode Mode
	// MX are the patterns of the MX hosts allowed, in lower case as
	// Parse returns them: "mx.example.com", or "*.example.com" for any
	// host one label below example.com.
	MX []string
	// MaxAge is how long the policy may be kept since it was fetched.
	MaxAge time.Duration
	// ID is the id of the TXT record it was fetched under; "" from
	// Parse.
	ID string
	// Fetched is when it was fetched; zero from Parse.
	Fetched time.Time
}

// Enforced reports whether p is in mode enforce: delivery must go only
// to hosts p matches, with TLS and a valid certificate. A nil Policy is
// not enforced.
func (p *Policy) Enforced() bool { return p != nil && p.Mode == Enforce }

// Expires returns when p stops being usable: Fetched plus MaxAge.
func (p *Policy) Expires() time.Time { return p.Fetched.Add(p.MaxAge) }

// Match reports whether the MX host name host is one p allows (RFC 8461
// §4.1): equal to a pattern, or one label (not empty) followed by what a
// "*." pattern has after its "*.". Case and a trailing dot do not
// matter; a name in Unicode (U-labels) is matched in its A-label form.
func (p *Policy) Match(host string) bool {
	h, err := canonical(host)
	if err != nil {
		return false
	}
	for _, pat := range p.MX {
		pat = strings.ToLower(strings.TrimSuffix(pat, "."))
		if parent, ok := strings.CutPrefix(pat, "*."); ok {
			if label, rest, ok := strings.Cut(h, "."); ok && label != "" && rest == parent {
				return true
			}
		} else if h == pat {
			return true
		}
	}
	return false
}

// clone returns a copy of p that shares nothing with it; nil for nil.
func (p *Policy) clone() *Policy {
	if p == nil {
		return nil
	}
	c := *p
	c.MX = slices.Clone(p.MX)
	return &c
}

// Parse reads a policy file, strictly as RFC 8461 §3.2 has it: lines
// "key: value" ending in CRLF or LF (the last one may have no line
// end, and empty lines after it are let go); the fields version
// (STSv1), mode (enforce, testing or none) and max_age (at most
// 31557600 seconds) once each, and mx at least once unless the mode is
// none, each pattern a host name of A-labels, or "*." and one. A field
// repeated but mx keeps its first value; fields of other names are
// ignored but must be well-formed. Every error wraps ErrInvalid.
func Parse(b []byte) (*Policy, error) {
	if len(b) > MaxPolicySize {
		return nil, fmt.Errorf("%w: policy of %d bytes, more than %d", ErrInvalid, len(b), MaxPolicySize)
	}
	if !utf8.Valid(b) {
		return nil, fmt.Errorf("%w: policy is not UTF-8", ErrInvalid)
	}
	lines := strings.Split(string(b), "\n")
	// Empty lines at the end (the last line end leaves one).
	for len(lines) > 0 && (lines[len(lines)-1] == "" || lines[len(lines)-1] == "\r") {
		lines = lines[:len(lines)-1]
	}
	p := &Policy{}
	var version, maxAge bool
	for i, line := range lines {
		line = strings.TrimSuffix(line, "\r")
		key, value, err := policyField(line)
		if err != nil {
			return nil, fmt.Errorf("%w: line %d: %v", ErrInvalid, i+1, err)
		}
		switch key {
		case "version":
			if value != "STSv1" {
				return nil, fmt.Errorf("%w: line %d: version %q, not STSv1", ErrInvalid, i+1, value)
			}
			version = true
		case "mode":
			m := Mode(value)
			if m != Enforce && m != Testing && m != None {
				return nil, fmt.Errorf("%w: line %d: mode %q", ErrInvalid, i+1, value)
			}
			if p.Mode == "" {
				p.Mode = m
			}
		case "max_age":
			d, err := parseMaxAge(value)
			if err != nil {
				return nil, fmt.Errorf("%w: line %d: %v", ErrInvalid, i+1, err)
			}
			if !maxAge {
				p.MaxAge, maxAge = d, true
			}
		case "mx":
			if !validPattern(value) {
				return nil, fmt.Errorf("%w: line %d: mx %q is not a host name or *. and one", ErrInvalid, i+1, value)
			}
			p.MX = append(p.MX, strings.ToLower(value))
		default:
			if !validExtValue(value) {
				return nil, fmt.Errorf("%w: line %d: value of %s", ErrInvalid, i+1, key)
			}
		}
	}
	switch {
	case !version:
		return nil, fmt.Errorf("%w: no version field", ErrInvalid)
	case p.Mode == "":
		return nil, fmt.Errorf("%w: no mode field", ErrInvalid)
	case !maxAge:
		return nil, fmt.Errorf("%w: no max_age field", ErrInvalid)
	case len(p.MX) == 0 && p.Mode != None:
		return nil, fmt.Errorf("%w: no mx field in mode %s", ErrInvalid, p.Mode)
	}
	return p, nil
}

// policyField splits a line of a policy into its key and its value
// without the spaces around it: "key" ":" *WSP value *WSP.
func policyField(line string) (key, value string, err error) {
	key, value, ok := strings.Cut(line, ":")
	if !ok {
		return "", "", fmt.Errorf("%q is not key: value", cut(line))
	}
	if !validKey(key) {
		return "", "", fmt.Errorf("key %q", cut(key))
	}
	return key, strings.Trim(value, " \t"), nil
}

// cut returns s shortened for an error message.
func cut(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

// validKey reports whether s is a key of a policy or a TXT record: a
// letter or digit, then up to 31 letters, digits, "_", "-" or ".".
func validKey(s string) bool {
	if s == "" || len(s) > 32 || !isAlnum(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; !isAlnum(c) && c != '_' && c != '-' && c != '.' {
			return false
		}
	}
	return true
}

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

// validExtValue reports whether s is the value of an unknown field of a
// policy: visible characters (UTF-8 beyond ASCII too) with single
// spaces between them, not at the ends.
func validExtValue(s string) bool {
	if s == "" || s[0] == ' ' || s[len(s)-1] == ' ' {
		return false
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f || 0x80 <= r && r < 0xa0 {
			return false
		}
	}
	return true
}

// parseMaxAge parses the value of max_age: 1 to 10 digits, at most
// MaxMaxAge in seconds.
func parseMaxAge(s string) (time.Duration, error) {
	if s == "" || len(s) > 10 || strings.Trim(s, "0123456789") != "" {
		return 0, fmt.Errorf("max_age %q is not 1 to 10 digits", s)
	}
	n, _ := strconv.ParseInt(s, 10, 64)
	if d := time.Duration(n) * time.Second; d <= MaxMaxAge {
		return d, nil
	}
	return 0, fmt.Errorf("max_age %s is more than %d", s, int64(MaxMaxAge/time.Second))
}

// validPattern reports whether s is an mx pattern: a host name of
// A-labels (RFC 5321 Domain), or "*." and one.
func validPattern(s string) bool {
	return dnsname.IsHost(strings.TrimPrefix(s, "*."))
}
