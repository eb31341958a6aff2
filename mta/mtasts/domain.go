package mtasts

import (
	"fmt"
	"strings"

	"golang.org/x/net/idna"

	"github.com/mailsys/mailsys/internal/dnsname"
)

// canonical returns domain as the Cache keys it and the DNS is asked:
// lower case, A-labels (a name in Unicode converted by IDNA's lookup
// rules), no trailing dot. A name that is not a host name is an error
// wrapping ErrInvalid.
func canonical(domain string) (string, error) {
	d := strings.ToLower(strings.TrimSuffix(domain, "."))
	for i := 0; i < len(d); i++ {
		if d[i] >= 0x80 {
			a, err := idna.Lookup.ToASCII(d)
			if err != nil {
				return "", fmt.Errorf("%w: domain %q: %v", ErrInvalid, cut(domain), err)
			}
			d = a
			break
		}
	}
	if !dnsname.IsHost(d) {
		return "", fmt.Errorf("%w: domain %q is not a host name", ErrInvalid, cut(domain))
	}
	return d, nil
}
