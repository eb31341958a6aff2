package dane

import (
	"crypto/tls"
	"slices"
	"strings"
	"time"

	"github.com/mailsys/mailsys/mta/resolve"
)

// Config returns a copy of base (an empty config when nil) for the client
// side of STARTTLS to a server that the TLSA records recs must
// authenticate, for the reference names names (the MX host name first,
// sent as SNI, then the next-hop domain): ServerName is names[0],
// InsecureSkipVerify is set and VerifyConnection calls Verify at the
// config's Time (time.Now when nil), then base's own VerifyConnection, if
// any, once Verify has succeeded. MinVersion is at least TLS 1.2. Config
// copies recs and names; base is not changed.
func Config(base *tls.Config, recs []resolve.TLSA, names []string) *tls.Config {
	cfg := &tls.Config{}
	if base != nil {
		cfg = base.Clone()
	}
	recs = slices.Clone(recs)
	for i := range recs {
		recs[i].Data = slices.Clone(recs[i].Data)
	}
	names = slices.Clone(names)
	if len(names) > 0 {
		cfg.ServerName = strings.TrimSuffix(names[0], ".")
	}
	cfg.InsecureSkipVerify = true
	cfg.MinVersion = max(cfg.MinVersion, tls.VersionTLS12)
	clock, next := cfg.Time, cfg.VerifyConnection
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		now := time.Now()
		if clock != nil {
			now = clock()
		}
		if err := Verify(cs, recs, names, now); err != nil {
			return err
		}
		if next != nil {
			return next(cs)
		}
		return nil
	}
	return cfg
}
