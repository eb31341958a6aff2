// Package dnsname checks host names, for the packages of mail transfer
// that take them from configuration or from the network.
package dnsname

import "strings"

// IsHost reports whether s is a host name (RFC 1123): letters, digits
// and hyphens, in dot-separated labels of 1 to 63 octets that neither
// start nor end with a hyphen, 253 octets at most, without a trailing
// dot.
func IsHost(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for label := range strings.SplitSeq(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}
