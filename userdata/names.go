package userdata

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Limits on names.
const (
	maxLocalPart  = 64
	maxDomainName = 253
	maxFolderName = 1000 // bytes, all levels
	maxFolderPart = 255  // bytes, one level
	maxNameLen    = 200  // units, classes, display names
)

// normalizeAddress checks an address and returns it in lower case.
// Internationalized addresses (RFC 6531) are accepted as UTF-8.
func normalizeAddress(a string) (string, error) {
	local, domain, ok := strings.Cut(a, "@")
	if !ok || local == "" || strings.Contains(domain, "@") || len(local) > maxLocalPart || !utf8.ValidString(a) {
		return "", fmt.Errorf("%w: address %q", ErrInvalid, a)
	}
	for _, r := range local {
		if r <= ' ' || r == 0x7f || r == '"' || r == '\\' || r == '<' || r == '>' || r == ',' || r == ';' {
			return "", fmt.Errorf("%w: address %q", ErrInvalid, a)
		}
	}
	// Lower case can be longer (U+023A is 2 bytes, U+2C65 3): the limit
	// applies to what is stored.
	local = strings.ToLower(local)
	if len(local) > maxLocalPart {
		return "", fmt.Errorf("%w: address %q", ErrInvalid, a)
	}
	d, err := normalizeDomain(domain)
	if err != nil {
		return "", fmt.Errorf("%w: address %q", ErrInvalid, a)
	}
	return local + "@" + d, nil
}

// normalizeDomain checks a domain name and returns it in lower case,
// without a trailing dot.
func normalizeDomain(d string) (string, error) {
	d = strings.TrimSuffix(strings.ToLower(d), ".")
	if d == "" || len(d) > maxDomainName || !utf8.ValidString(d) {
		return "", fmt.Errorf("%w: domain %q", ErrInvalid, d)
	}
	for _, label := range strings.Split(d, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return "", fmt.Errorf("%w: domain %q", ErrInvalid, d)
		}
		for _, r := range label {
			if !(r == '-' || unicode.IsLetter(r) || unicode.IsDigit(r)) {
				return "", fmt.Errorf("%w: domain %q", ErrInvalid, d)
			}
		}
	}
	return d, nil
}

// normalizeFolder checks a folder name and returns it with INBOX (as the
// first level) in upper case.
func normalizeFolder(name string) (string, error) {
	if name == "" || len(name) > maxFolderName || !utf8.ValidString(name) {
		return "", fmt.Errorf("%w: folder name %q", ErrInvalid, name)
	}
	parts := strings.Split(name, string(Delimiter))
	for _, p := range parts {
		if p == "" || len(p) > maxFolderPart {
			return "", fmt.Errorf("%w: folder name %q", ErrInvalid, name)
		}
		for _, r := range p {
			if r < ' ' || r == 0x7f || r == '*' || r == '%' {
				return "", fmt.Errorf("%w: folder name %q", ErrInvalid, name)
			}
		}
	}
	if strings.EqualFold(parts[0], Inbox) {
		parts[0] = Inbox
	}
	return strings.Join(parts, string(Delimiter)), nil
}

// checkName checks the name of a unit, a class or a display name.
func checkName(what, s string, empty bool) error {
	if (!empty && s == "") || len(s) > maxNameLen || !utf8.ValidString(s) || strings.ContainsFunc(s, unicode.IsControl) {
		return fmt.Errorf("%w: %s %q", ErrInvalid, what, s)
	}
	return nil
}
