package mailauth

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"unicode"

	"github.com/emersion/go-msgauth/authres"
	"github.com/emersion/go-msgauth/dkim"
)

// maxSignatures bounds the DKIM signatures of a message that are checked
// (each may cost a DNS lookup and a hash of the body); the rest are
// ignored.
const maxSignatures = 10

// checkDKIM checks the DKIM signatures (RFC 6376) of msg, whose header
// fields are fields: a result for each of the first maxSignatures, none
// if it has none.
func (v *Verifier) checkDKIM(ctx context.Context, msg []byte, fields []field) []DKIMResult {
	var sigs []map[string]string
	for _, f := range fields {
		if strings.EqualFold(f.name, "DKIM-Signature") {
			sigs = append(sigs, sigTags(f.value))
		}
	}
	if len(sigs) == 0 {
		return nil
	}
	verifs, err := dkim.VerifyWithOptions(bytes.NewReader(msg), &dkim.VerifyOptions{
		LookupTXT: txtFunc(ctx, v.r), MaxVerifications: maxSignatures,
	})
	if err != nil && !errors.Is(err, dkim.ErrTooManySignatures) {
		// The header could not be read, or a check failed in a way that
		// leaves its Verification saying nothing: trust none of them.
		return []DKIMResult{{Value: authres.ResultPermError, Reason: err.Error()}}
	}
	res := make([]DKIMResult, len(verifs))
	for i, vf := range verifs {
		r := DKIMResult{Domain: strings.ToLower(vf.Domain)}
		if i < len(sigs) { // always: splitHeader reads the header as dkim does
			tags := sigs[i]
			r.Selector, r.Algorithm = tags["s"], tags["a"]
			r.Signature = tags["b"][:min(8, len(tags["b"]))]
			if _, ok := tags["i"]; ok {
				r.Identifier = vf.Identifier
			}
		}
		switch {
		case vf.Err == nil:
			r.Value = authres.ResultPass
		case dkim.IsTempFail(vf.Err):
			r.Value = authres.ResultTempError
		case dkim.IsPermFail(vf.Err):
			r.Value = authres.ResultPermError
		default:
			r.Value = authres.ResultFail
		}
		if vf.Err != nil {
			r.Reason = strings.TrimPrefix(vf.Err.Error(), "dkim: ")
		}
		res[i] = r
	}
	return res
}

// sigTags returns the tags of a DKIM-Signature field's value (RFC 6376
// §3.2), their values without white space; a malformed value gives what
// could be read of it (dkim.Verify reports the error).
func sigTags(v string) map[string]string {
	tags := map[string]string{}
	for t := range strings.SplitSeq(v, ";") {
		k, val, ok := strings.Cut(t, "=")
		if !ok {
			continue
		}
		k = strings.TrimSpace(k)
		if _, dup := tags[k]; !dup {
			tags[k] = strings.Map(func(r rune) rune {
				if unicode.IsSpace(r) {
					return -1
				}
				return r
			}, val)
		}
	}
	return tags
}
