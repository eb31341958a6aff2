package mailauth

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

	"github.com/emersion/go-msgauth/authres"
	"github.com/emersion/go-msgauth/dmarc"
	"github.com/mailsys/mailsys/mta/resolve"
	"golang.org/x/net/publicsuffix"
)

// Outcomes of the policy discovery of RFC 7489 §6.6.3.
var (
	errNoRecord      = errors.New("no DMARC record")
	errSeveralRecord = errors.New("several DMARC records")
	errBadRecord     = errors.New("invalid DMARC record")
	errTempRecord    = errors.New("DMARC record unavailable")
)

// checkDMARC evaluates DMARC (RFC 7489) for a message whose header fields
// are fields, given the outcomes of SPF and DKIM: the author domain, its
// policy, whether an authenticated identifier is aligned with it, and what
// the policy says to do with msg if none is.
func (v *Verifier) checkDMARC(ctx context.Context, fields []field, msg []byte, spfRes SPFResult, dkimRes []DKIMResult) DMARCResult {
	res := DMARCResult{Disposition: dmarc.PolicyNone}
	from, err := fromDomain(fields, false)
	if err != nil {
		res.Value, res.Reason = authres.ResultPermError, err.Error()
		return res
	}
	res.From = from
	rec, sub, err := v.lookupPolicy(ctx, from)
	switch {
	case errors.Is(err, errNoRecord), errors.Is(err, errSeveralRecord):
		res.Value, res.Reason = authres.ResultNone, err.Error()
		return res
	case errors.Is(err, errTempRecord):
		res.Value, res.Reason = authres.ResultTempError, err.Error()
		return res
	case err != nil:
		res.Value, res.Reason = authres.ResultPermError, err.Error()
		return res
	}
	res.Policy = rec.Policy
	if sub && rec.SubdomainPolicy != "" {
		res.Policy = rec.SubdomainPolicy
	}

	spfAligned := aligned(spfRes.Domain, from, rec.SPFAlignment)
	var pass, temp bool
	switch spfRes.Value {
	case authres.ResultPass:
		pass = spfAligned
	case authres.ResultTempError:
		temp = spfAligned
	}
	for _, d := range dkimRes {
		switch d.Value {
		case authres.ResultPass:
			pass = pass || aligned(d.Domain, from, rec.DKIMAlignment)
		case authres.ResultTempError:
			temp = temp || aligned(d.Domain, from, rec.DKIMAlignment)
		}
	}
	switch {
	case pass:
		res.Value = authres.ResultPass
	case temp:
		// An identifier that might have passed could not be checked: act
		// on nothing rather than on a transient failure.
		res.Value, res.Reason = authres.ResultTempError, "an aligned identifier could not be checked"
	default:
		res.Value, res.Reason = authres.ResultFail, "no aligned identifier passed"
		res.Disposition = v.disposition(res.Policy, rec.Percent, msg)
	}
	return res
}

// lookupPolicy returns the DMARC record of the author domain (RFC 7489
// §6.6.3): the one at _dmarc.<domain>, else the one of its organizational
// domain, and whether it came from there (sp= applies then). Several
// records at a name end the search: no DMARC for the message.
func (v *Verifier) lookupPolicy(ctx context.Context, domain string) (rec *dmarc.Record, sub bool, err error) {
	rec, err = v.lookupRecord(ctx, domain)
	if org := orgDomain(domain); errors.Is(err, errNoRecord) && org != domain {
		rec, err = v.lookupRecord(ctx, org)
		return rec, true, err
	}
	return rec, false, err
}

// lookupRecord returns the DMARC record at _dmarc.<domain>: of its TXT
// records, the one that starts with "v=DMARC1".
func (v *Verifier) lookupRecord(ctx context.Context, domain string) (*dmarc.Record, error) {
	name := "_dmarc." + domain
	txts, _, err := v.r.LookupTXT(ctx, name)
	switch {
	case errors.Is(err, resolve.ErrNotFound):
		return nil, fmt.Errorf("%w at %s", errNoRecord, name)
	case err != nil:
		return nil, fmt.Errorf("%w: %w", errTempRecord, err)
	}
	var found []string
	for _, t := range txts {
		first, _, _ := strings.Cut(t, ";")
		k, val, _ := strings.Cut(first, "=")
		if strings.TrimSpace(k) == "v" && strings.TrimSpace(val) == "DMARC1" {
			found = append(found, t)
		}
	}
	switch len(found) {
	case 0:
		return nil, fmt.Errorf("%w at %s", errNoRecord, name)
	case 1:
	default:
		return nil, fmt.Errorf("%w at %s", errSeveralRecord, name)
	}
	rec, err := dmarc.Parse(found[0])
	if err != nil {
		return nil, fmt.Errorf("%w at %s: %w", errBadRecord, name, err)
	}
	return rec, nil
}

// orgDomain returns the organizational domain of d (RFC 7489 §3.2): the
// public suffix it is under (golang.org/x/net/publicsuffix, the list
// compiled into that module's version) and one label more; d itself if d
// is a public suffix or not under one.
func orgDomain(d string) string {
	org, err := publicsuffix.EffectiveTLDPlusOne(d)
	if err != nil {
		return d
	}
	return org
}

// aligned reports whether an authenticated domain is aligned with the
// author domain (RFC 7489 §3.1): the same name in strict mode, the same
// organizational domain in relaxed mode.
func aligned(authenticated, author string, mode dmarc.AlignmentMode) bool {
	if authenticated == "" {
		return false
	}
	if mode == dmarc.AlignmentStrict {
		return authenticated == author
	}
	return orgDomain(authenticated) == orgDomain(author)
}

// disposition returns what a policy says to do with msg, which failed:
// with pct= below 100, the policy applies only to messages drawn into the
// percentage, the others get the next weaker one (RFC 7489 §6.6.4).
func (v *Verifier) disposition(p dmarc.Policy, pct *int, msg []byte) dmarc.Policy {
	if p != dmarc.PolicyReject && p != dmarc.PolicyQuarantine {
		return dmarc.PolicyNone
	}
	if pct == nil || *pct >= 100 || v.draw(msg) < *pct {
		return p
	}
	if p == dmarc.PolicyReject {
		return dmarc.PolicyQuarantine
	}
	return dmarc.PolicyNone
}

// draw returns a number in [0, 100) drawn for msg: the same for the same
// message (a retry is treated as the first try was), and unpredictable to
// its sender, who would otherwise pick messages that escape the policy: a
// keyed hash, with a key made by NewVerifier.
func (v *Verifier) draw(msg []byte) int {
	m := hmac.New(sha256.New, v.drawKey[:])
	m.Write(msg)
	return int(binary.BigEndian.Uint64(m.Sum(nil)) % 100)
}
