package mailauth

import (
	"context"
	"net"
	"strings"

	"blitiri.com.ar/go/spf"
	"github.com/emersion/go-msgauth/authres"
	"github.com/mailsys/mailsys/mta"
)

// checkSPF evaluates the SPF policy (RFC 7208) of the envelope's domain
// for the client's address: the reverse path's domain, or for the null
// sender the HELO name (postmaster@ it, §2.4). A name that is not a
// domain (an address literal in HELO, a path without a domain) is none.
func (v *Verifier) checkSPF(ctx context.Context, o mta.Origin) SPFResult {
	helo := strings.TrimSuffix(o.Hello, ".")
	res := SPFResult{MailFrom: o.MailFrom}
	local, domain := "postmaster", helo
	if o.MailFrom == "" {
		res.Helo = helo
	} else {
		at := strings.LastIndexByte(o.MailFrom, '@')
		if at < 0 {
			return SPFResult{MailFrom: o.MailFrom, Value: authres.ResultNone, Reason: "the reverse path has no domain"}
		}
		local, domain = o.MailFrom[:at], o.MailFrom[at+1:]
	}
	d, ok := normDomain(domain)
	if !ok {
		res.Value, res.Reason = authres.ResultNone, "not a domain name: "+domain
		return res
	}
	res.Domain = d
	r, err := spf.CheckHostWithSender(net.IP(o.IP.Unmap().AsSlice()), helo, local+"@"+d,
		spf.WithContext(ctx), spf.WithResolver(spfResolver{v.r}))
	res.Value = authres.ResultValue(r)
	if r != spf.Pass && err != nil {
		res.Reason = err.Error()
	}
	return res
}
