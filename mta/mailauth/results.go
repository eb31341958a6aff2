package mailauth

import (
	"strings"

	"github.com/emersion/go-msgauth/authres"
	"github.com/emersion/go-msgauth/dmarc"
)

// Results are the outcomes of the checks of one message. Their Values are
// those of RFC 8601 §2.7: for SPF none, neutral, pass, fail, softfail,
// temperror or permerror; for DKIM pass, fail, temperror or permerror (a
// message without signatures has no DKIMResult); for DMARC none, pass,
// fail, temperror or permerror.
type Results struct {
	SPF   SPFResult
	DKIM  []DKIMResult // one per signature checked, in the header's order
	DMARC DMARCResult
}

// SPFResult is the outcome of the SPF check (RFC 7208) of the envelope.
type SPFResult struct {
	Value authres.ResultValue
	// MailFrom is the reverse path checked, or "" for the null sender,
	// whose identity is the HELO name (RFC 7208 §2.4), in Helo then.
	MailFrom string
	Helo     string
	// Domain is the domain checked: MailFrom's or Helo, in normDomain's
	// form; what DMARC aligns.
	Domain string
	Reason string // why, when it is not pass
}

// DKIMResult is the outcome of the check of one DKIM signature (RFC 6376).
type DKIMResult struct {
	Value      authres.ResultValue
	Domain     string // d=
	Selector   string // s=
	Algorithm  string // a=, e.g. "ed25519-sha256"
	Identifier string // i=, if the signature has one
	Signature  string // the first 8 characters of b= (RFC 6008)
	Reason     string // why, when it is not pass
}

// DMARCResult is the outcome of the DMARC evaluation (RFC 7489) of the
// message.
type DMARCResult struct {
	Value authres.ResultValue
	// From is the author domain (the From address's), "" if the message
	// has none DMARC can evaluate.
	From string
	// Policy is what the domain's record asks for mail that fails (p=,
	// or sp= for a subdomain that has no record of its own), "" without
	// a record.
	Policy dmarc.Policy
	// Disposition is what is to be done with this message: Policy when
	// it failed and pct= selected it (RFC 7489 §6.6.4: a reject not
	// selected is a quarantine, a quarantine not selected nothing),
	// PolicyNone otherwise.
	Disposition dmarc.Policy
	Reason      string // why, when it is not pass
}

// maxField bounds the length of the Authentication-Results field,
// "Authentication-Results: " included: RFC 5322 §2.1.1's 998 octets a
// line, for a field that cannot be folded (see Format).
const maxField = 998

// Format returns the value of the Authentication-Results field (RFC 8601)
// of r for the authentication service authservID: one line, not folded,
// since the mta listener adds each of a Verdict's fields as one line
// ("Authentication-Results: " + Format's value + CRLF). If that line
// would pass 998 octets, the reasons are left out, then the DKIM results
// beyond the first few, failures first.
func (r *Results) Format(authservID string) string {
	fits := func(v string) bool { return len("Authentication-Results: ")+len(v) <= maxField }
	if v := r.format(authservID, r.DKIM, true); fits(v) {
		return v
	}
	for dk := r.DKIM; ; dk = dropOne(dk) {
		if v := r.format(authservID, dk, false); fits(v) || len(dk) <= 1 {
			return v
		}
	}
}

// dropOne returns res without its last failure, or without its last
// result if all passed.
func dropOne(res []DKIMResult) []DKIMResult {
	i := len(res) - 1
	for j := i; j >= 0; j-- {
		if res[j].Value != authres.ResultPass {
			i = j
			break
		}
	}
	return append(res[:i:i], res[i+1:]...)
}

func (r *Results) format(authservID string, dkimRes []DKIMResult, reasons bool) string {
	reason := func(s string) string {
		if reasons {
			return cleanReason(s)
		}
		return ""
	}
	list := []authres.Result{&authres.SPFResult{
		Value: r.SPF.Value, Reason: reason(r.SPF.Reason), From: mailFrom(r.SPF.MailFrom, r.SPF.Domain), Helo: cleanToken(r.SPF.Helo),
	}}
	if len(dkimRes) == 0 {
		list = append(list, &authres.DKIMResult{Value: authres.ResultNone})
	}
	for _, d := range dkimRes {
		// authres.DKIMResult has no header.s, header.b nor header.a.
		list = append(list, &authres.GenericResult{Method: "dkim", Value: d.Value, Params: map[string]string{
			"reason":   reason(d.Reason),
			"header.d": cleanToken(d.Domain),
			"header.i": cleanToken(d.Identifier),
			"header.s": cleanToken(d.Selector),
			"header.a": cleanToken(d.Algorithm),
			"header.b": cleanToken(d.Signature),
		}})
	}
	list = append(list, &authres.DMARCResult{Value: r.DMARC.Value, Reason: reason(r.DMARC.Reason), From: r.DMARC.From})
	// authres.Format ends a result without parameters with a space.
	return strings.ReplaceAll(authres.Format(authservID, list), " ;", ";")
}

// mailFrom is the smtp.mailfrom of a reverse path: the address, or only
// its domain (RFC 8601 §2.7.2 allows it) when the address holds characters
// that authres would not quote safely (or not ASCII).
func mailFrom(path, domain string) string {
	if cleanToken(path) == path {
		return path
	}
	return domain
}

// cleanReason makes s fit in a quoted reason: printable ASCII without the
// characters that would end it (quote, backslash) or that naive parsers
// split on (semicolon), 100 octets at most.
func cleanReason(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < ' ' || r > '~' || r == '"' || r == '\\' || r == ';' {
			return ' '
		}
		return r
	}, s)
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 100 {
		s = s[:97] + "..."
	}
	return s
}

// cleanToken keeps of s (a value a signature gives, so the sender's) the
// characters of a domain, a selector, an address or base64.
func cleanToken(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case 'a' <= r && r <= 'z', 'A' <= r && r <= 'Z', '0' <= r && r <= '9', strings.ContainsRune(".-_@+/=", r):
			return r
		}
		return -1
	}, s)
}
