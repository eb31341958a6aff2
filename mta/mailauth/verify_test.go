package mailauth

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-msgauth/authres"
	"github.com/emersion/go-msgauth/dmarc"
	"github.com/mailsys/mailsys/mta"
	"github.com/mailsys/mailsys/mta/resolve"
)

var errServfail = errors.New("SERVFAIL")

// testWorld is a Signer for the tests' domains and a zone publishing its
// keys and the domains' SPF and DMARC records:
//
//	example.org      SPF goodIP, p=reject (relaxed)
//	mail.example.org SPF "a", its A record goodIP (the HELO name)
//	quar.example     SPF goodIP, p=quarantine
//	none.example     SPF goodIP, p=none
//	norec.example    SPF goodIP, no DMARC record
//	dtemp.example    SPF goodIP, the DMARC lookup fails
//	strict.example   SPF goodIP, p=reject sp=quarantine aspf=s adkim=s
//	spx.example      SPF goodIP, p=reject sp=none
//	soft.example     SPF ~all;  temp.example: its lookups fail
//	perm.example     two SPF records
type testWorld struct {
	s *Signer
	z *resolve.Static
}

func newWorld(t *testing.T) *testWorld {
	t.Helper()
	w := &testWorld{s: newSigner(t, t.TempDir(), "example.org", "strict.example")}
	w.z = w.zone(t)
	return w
}

// zone returns a new zone with the world's records, to change at will.
func (w *testWorld) zone(t *testing.T) *resolve.Static {
	t.Helper()
	z := &resolve.Static{}
	publish(t, z, w.s, "example.org")
	publish(t, z, w.s, "strict.example")
	for d, rec := range map[string]string{
		"example.org": "v=DMARC1; p=reject", "quar.example": "v=DMARC1; p=quarantine", "none.example": "v=DMARC1; p=none",
		"strict.example": "v=DMARC1; p=reject; sp=quarantine; aspf=s; adkim=s", "spx.example": "v=DMARC1; p=reject; sp=none",
		"dtemp.example": "v=DMARC1; p=reject", "norec.example": "",
	} {
		z.SetTXT(d, "v=spf1 ip4:192.0.2.1 -all", "an unrelated record")
		if rec != "" {
			z.SetTXT("_dmarc."+d, rec, "v=spf1 -all")
		}
	}
	z.Fail("_dmarc.dtemp.example", errServfail)
	z.SetTXT("mail.example.org", "v=spf1 a -all")
	z.SetIP("mail.example.org", goodIP)
	z.SetTXT("soft.example", "v=spf1 ~all")
	z.Fail("temp.example", errServfail)
	z.SetTXT("perm.example", "v=spf1 -all", "v=spf1 +all")
	return z
}

func (w *testWorld) verifier(t *testing.T) *Verifier {
	t.Helper()
	cfg := DefaultVerifierConfig()
	cfg.Resolver, cfg.Hostname, cfg.Logger = w.z, "mx.example.net", quiet
	v, err := NewVerifier(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// signAs signs msg with the keys of w's Signer for domain, whatever msg's
// From says: d= is domain.
func (w *testWorld) signAs(t *testing.T, domain, msg string) string {
	t.Helper()
	dk := w.s.entry(domain, false)
	br := bufio.NewReader(strings.NewReader(msg))
	hdr, _, err := readHeader(br)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := sign(dk.signing(), domain, signedKeys(splitHeader(hdr)), hdr, br)
	if err != nil {
		t.Fatal(err)
	}
	return sig + msg
}

func authenticate(t *testing.T, v *Verifier, o mta.Origin, msg string) *Results {
	t.Helper()
	res, err := v.Authenticate(context.Background(), o, []byte(msg))
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestSPF(t *testing.T) {
	w := newWorld(t)
	v := w.verifier(t)
	for _, c := range []struct {
		name, mailFrom, hello string
		ip                    netip.Addr
		want                  authres.ResultValue
		domain                string
	}{
		{"pass", "b@example.org", "mail.example.org", goodIP, authres.ResultPass, "example.org"},
		{"fail", "b@Example.Org", "mail.example.org", otherIP, authres.ResultFail, "example.org"},
		{"softfail", "b@soft.example", "x", goodIP, authres.ResultSoftFail, "soft.example"},
		{"none", "b@nospf.example", "x", goodIP, authres.ResultNone, "nospf.example"},
		{"temperror", "b@temp.example", "x", goodIP, authres.ResultTempError, "temp.example"},
		{"permerror", "b@perm.example", "x", goodIP, authres.ResultPermError, "perm.example"},
		{"null sender, HELO pass", "", "mail.example.org", goodIP, authres.ResultPass, "mail.example.org"},
		{"null sender, HELO fail", "", "mail.example.org.", otherIP, authres.ResultFail, "mail.example.org"},
		{"null sender, HELO literal", "", "[192.0.2.1]", goodIP, authres.ResultNone, ""},
		{"no domain", "postmaster", "x", goodIP, authres.ResultNone, ""},
	} {
		o := mta.Origin{IP: c.ip, Hello: c.hello, MailFrom: c.mailFrom}
		res := authenticate(t, v, o, message("a@example.org", "x"))
		if res.SPF.Value != c.want || res.SPF.Domain != c.domain || (c.want != authres.ResultPass) != (res.SPF.Reason != "") {
			t.Errorf("%s: SPF %+v, want %s for %q (a reason unless pass)", c.name, res.SPF, c.want, c.domain)
		}
		_, results, err := authres.Parse(res.Format("mx.example.net"))
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		spfRes := results[0].(*authres.SPFResult)
		if c.mailFrom != "" && (spfRes.From != c.mailFrom || spfRes.Helo != "") ||
			c.mailFrom == "" && (spfRes.Helo == "" || spfRes.From != "") || spfRes.Value != c.want {
			t.Errorf("%s: header says %+v", c.name, spfRes)
		}
	}
}

func TestDKIM(t *testing.T) {
	w := newWorld(t)
	v := w.verifier(t)
	msg := signed(t, w.s, message("a@example.org", "Hello.\n"))
	sigs := signatures(msg)

	res := authenticate(t, v, origin("b@example.org"), msg)
	if len(res.DKIM) != 2 {
		t.Fatalf("%d DKIM results, want 2", len(res.DKIM))
	}
	for i, r := range res.DKIM {
		want := DKIMResult{Value: authres.ResultPass, Domain: "example.org", Selector: sigs[i]["s"], Algorithm: sigs[i]["a"], Signature: sigs[i]["b"][:8]}
		if r != want {
			t.Errorf("DKIM result %d: %+v, want %+v", i, r, want)
		}
	}

	check := func(name, msg string, z *resolve.Static, want authres.ResultValue, n int) {
		t.Helper()
		cfg := DefaultVerifierConfig()
		cfg.Resolver, cfg.Hostname, cfg.Logger = z, "mx.example.net", quiet
		v, err := NewVerifier(cfg)
		if err != nil {
			t.Fatal(err)
		}
		res := authenticate(t, v, origin("b@example.org"), msg)
		if len(res.DKIM) != n {
			t.Fatalf("%s: %d results, want %d", name, len(res.DKIM), n)
		}
		for i, r := range res.DKIM {
			if r.Value != want || r.Reason == "" {
				t.Errorf("%s: result %d: %+v, want %s with a reason", name, i, r, want)
			}
		}
	}
	check("body changed", strings.Replace(msg, "Hello.", "Hello!", 1), w.z, authres.ResultFail, 2)

	w.z.Fail(sigs[0]["s"]+"._domainkey.example.org", errServfail)
	w.z.Fail(sigs[1]["s"]+"._domainkey.example.org", errServfail)
	check("key lookup failing", msg, w.z, authres.ResultTempError, 2)
	check("no key published", msg, &resolve.Static{}, authres.ResultPermError, 2)

	many := strings.Repeat(msg[:strings.Index(msg, "\r\nFrom: ")+2], 6) + message("a@example.org", "Hello.\n")
	check("too many signatures", many, &resolve.Static{}, authres.ResultPermError, maxSignatures)

	res = authenticate(t, v, origin("b@example.org"), message("a@example.org", "x"))
	if len(res.DKIM) != 0 || !strings.Contains(res.Format("h"), "; dkim=none;") {
		t.Errorf("unsigned message: %+v, %s; want dkim=none", res.DKIM, res.Format("h"))
	}
}

func TestDMARC(t *testing.T) {
	w := newWorld(t)
	v := w.verifier(t)
	for _, c := range []struct {
		name           string
		msg            string
		mailFrom       string
		ip             netip.Addr
		setup          func(z *resolve.Static)
		want           authres.ResultValue
		policy         dmarc.Policy
		action         mta.Action
		wantFromDomain string
	}{
		{name: "pass by SPF", msg: message("a@example.org", "x"), mailFrom: "b@example.org", ip: goodIP,
			want: authres.ResultPass, policy: dmarc.PolicyReject, action: mta.Accept},
		{name: "pass by DKIM", msg: signed(t, w.s, message("a@example.org", "x")), mailFrom: "b@example.org", ip: otherIP,
			want: authres.ResultPass, policy: dmarc.PolicyReject, action: mta.Accept},
		{name: "fail, p=reject", msg: message("a@example.org", "x"), mailFrom: "b@example.org", ip: otherIP,
			want: authres.ResultFail, policy: dmarc.PolicyReject, action: mta.Reject},
		{name: "SPF passes for another domain", msg: message("a@example.org", "x"), mailFrom: "b@norec.example", ip: goodIP,
			want: authres.ResultFail, policy: dmarc.PolicyReject, action: mta.Reject},
		{name: "DKIM passes for another domain", msg: w.signAs(t, "strict.example", message("a@example.org", "x")), mailFrom: "b@example.org", ip: otherIP,
			want: authres.ResultFail, policy: dmarc.PolicyReject, action: mta.Reject},
		{name: "fail, p=quarantine", msg: message("a@quar.example", "x"), mailFrom: "b@quar.example", ip: otherIP,
			want: authres.ResultFail, policy: dmarc.PolicyQuarantine, action: mta.Junk},
		{name: "fail, p=none", msg: message("a@none.example", "x"), mailFrom: "b@none.example", ip: otherIP,
			want: authres.ResultFail, policy: dmarc.PolicyNone, action: mta.Accept},
		{name: "no record", msg: message("a@norec.example", "x"), mailFrom: "b@norec.example", ip: otherIP,
			want: authres.ResultNone, action: mta.Accept},
		{name: "record lookup fails", msg: message("a@dtemp.example", "x"), mailFrom: "b@dtemp.example", ip: otherIP,
			want: authres.ResultTempError, action: mta.Accept},
		{name: "aligned key lookup fails", msg: signed(t, w.s, message("a@example.org", "x")), mailFrom: "b@example.org", ip: otherIP,
			setup: func(z *resolve.Static) {
				for _, r := range publish(t, z, w.s, "example.org") {
					z.Fail(r.Name, errServfail)
				}
			},
			want: authres.ResultTempError, policy: dmarc.PolicyReject, action: mta.Accept},
		{name: "aligned SPF lookup fails", msg: message("a@example.org", "x"), mailFrom: "b@example.org", ip: goodIP,
			setup: func(z *resolve.Static) { z.Fail("example.org", errServfail) },
			want:  authres.ResultTempError, policy: dmarc.PolicyReject, action: mta.Accept},
		{name: "unaligned SPF lookup fails", msg: message("a@example.org", "x"), mailFrom: "b@temp.example", ip: goodIP,
			want: authres.ResultFail, policy: dmarc.PolicyReject, action: mta.Reject},
		{name: "relaxed: SPF of the parent domain", msg: message("a@news.example.org", "x"), mailFrom: "b@example.org", ip: goodIP,
			want: authres.ResultPass, policy: dmarc.PolicyReject, action: mta.Accept, wantFromDomain: "news.example.org"},
		{name: "relaxed: DKIM of the parent domain", msg: w.signAs(t, "example.org", message("a@news.example.org", "x")), mailFrom: "b@other.example", ip: otherIP,
			want: authres.ResultPass, policy: dmarc.PolicyReject, action: mta.Accept, wantFromDomain: "news.example.org"},
		{name: "strict: SPF of the same domain", msg: message("a@strict.example", "x"), mailFrom: "b@strict.example", ip: goodIP,
			want: authres.ResultPass, policy: dmarc.PolicyReject, action: mta.Accept},
		{name: "strict: SPF of the parent domain, sp=quarantine", msg: message("a@news.strict.example", "x"), mailFrom: "b@strict.example", ip: goodIP,
			want: authres.ResultFail, policy: dmarc.PolicyQuarantine, action: mta.Junk, wantFromDomain: "news.strict.example"},
		{name: "strict: DKIM of the parent domain", msg: w.signAs(t, "strict.example", message("a@news.strict.example", "x")), mailFrom: "b@other.example", ip: otherIP,
			want: authres.ResultFail, policy: dmarc.PolicyQuarantine, action: mta.Junk, wantFromDomain: "news.strict.example"},
		{name: "strict: DKIM of the same domain", msg: signed(t, w.s, message("a@strict.example", "x")), mailFrom: "b@other.example", ip: otherIP,
			want: authres.ResultPass, policy: dmarc.PolicyReject, action: mta.Accept},
		{name: "subdomain with a record of its own", msg: message("a@sub.spx.example", "x"), mailFrom: "b@sub.spx.example", ip: otherIP,
			setup: func(z *resolve.Static) { z.SetTXT("_dmarc.sub.spx.example", "v=DMARC1; p=quarantine") },
			want:  authres.ResultFail, policy: dmarc.PolicyQuarantine, action: mta.Junk, wantFromDomain: "sub.spx.example"},
		{name: "subdomain, sp=none", msg: message("a@sub.spx.example", "x"), mailFrom: "b@sub.spx.example", ip: otherIP,
			want: authres.ResultFail, policy: dmarc.PolicyNone, action: mta.Accept, wantFromDomain: "sub.spx.example"},
		{name: "several records", msg: message("a@example.org", "x"), mailFrom: "b@example.org", ip: otherIP,
			setup: func(z *resolve.Static) { z.SetTXT("_dmarc.example.org", "v=DMARC1; p=reject", "v=DMARC1; p=none") },
			want:  authres.ResultNone, action: mta.Accept},
		{name: "invalid record", msg: message("a@example.org", "x"), mailFrom: "b@example.org", ip: otherIP,
			setup: func(z *resolve.Static) { z.SetTXT("_dmarc.example.org", "v=DMARC1; p=bounce") },
			want:  authres.ResultPermError, action: mta.Accept},
		{name: "From of two domains", msg: message("a@example.org, b@example.net", "x", "Sender: a@example.org"), mailFrom: "b@example.org", ip: otherIP,
			want: authres.ResultPermError, action: mta.Accept, wantFromDomain: "-"},
		{name: "From of two addresses, one domain", msg: message("a@example.org, c@Example.org", "x", "Sender: a@example.org"), mailFrom: "b@example.org", ip: otherIP,
			want: authres.ResultFail, policy: dmarc.PolicyReject, action: mta.Reject},
		{name: "two From fields", msg: message("a@example.org", "x", "From: b@example.org"), mailFrom: "b@example.org", ip: goodIP,
			want: authres.ResultPermError, action: mta.Accept, wantFromDomain: "-"},
		{name: "no From", msg: strings.Replace(message("a@example.org", "x"), "From: a@example.org\r\n", "", 1), mailFrom: "b@example.org", ip: goodIP,
			want: authres.ResultPermError, action: mta.Accept, wantFromDomain: "-"},
	} {
		v := v
		if c.setup != nil {
			w := &testWorld{s: w.s, z: w.zone(t)}
			c.setup(w.z)
			v = w.verifier(t)
		}
		o := mta.Origin{IP: c.ip, Hello: "mail.example.org", MailFrom: c.mailFrom}
		verdict, err := v.Verify(context.Background(), o, []byte(c.msg))
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		res := authenticate(t, v, o, c.msg)
		fromDomain := c.wantFromDomain
		switch fromDomain {
		case "":
			fromDomain = c.msg[strings.Index(c.msg, "From: a@")+len("From: a@"):]
			fromDomain = fromDomain[:strings.IndexAny(fromDomain, ",\r")]
		case "-":
			fromDomain = ""
		}
		if res.DMARC.Value != c.want || res.DMARC.Policy != c.policy || res.DMARC.From != fromDomain || verdict.Action != c.action {
			t.Errorf("%s: DMARC %+v, action %v; want %s, policy %q for %q, action %v", c.name, res.DMARC, verdict.Action, c.want, c.policy, fromDomain, c.action)
		}
		if c.action == mta.Reject && (verdict.Reply.Code != 550 || verdict.Reply.Enhanced != [3]int{5, 7, 1} ||
			!strings.Contains(verdict.Reply.Message, "DMARC policy of "+fromDomain)) {
			t.Errorf("%s: reply %+v, want 550 5.7.1 naming the DMARC policy", c.name, verdict.Reply)
		}
		if len(verdict.Headers) != 1 || !strings.HasPrefix(verdict.Headers[0], "Authentication-Results: mx.example.net; spf=") {
			t.Errorf("%s: headers %q", c.name, verdict.Headers)
		}
	}
}

func TestVerdictSwitches(t *testing.T) {
	w := newWorld(t)
	for _, c := range []struct {
		reject, junk bool
		from         string
		want         mta.Action
	}{
		{false, true, "a@example.org", mta.Junk},
		{false, false, "a@example.org", mta.Accept},
		{true, false, "a@quar.example", mta.Accept},
		{true, false, "a@example.org", mta.Reject},
	} {
		v, err := NewVerifier(VerifierConfig{Resolver: w.z, Hostname: "mx.example.net", Logger: quiet,
			RejectOnDMARCReject: c.reject, QuarantineToJunk: c.junk})
		if err != nil {
			t.Fatal(err)
		}
		verdict, err := v.Verify(context.Background(), mta.Origin{IP: otherIP, MailFrom: "b@example.org"}, []byte(message(c.from, "x")))
		if err != nil || verdict.Action != c.want {
			t.Errorf("reject %v, junk %v, from %s: %v, %v; want %v", c.reject, c.junk, c.from, verdict.Action, err, c.want)
		}
	}
}

func TestPercent(t *testing.T) {
	w := newWorld(t)
	v := w.verifier(t)
	v.drawKey = [32]byte{1, 2, 3}
	o := mta.Origin{IP: otherIP, MailFrom: "b@example.org"}
	count := func(pct int) (rejected, junked int) {
		t.Helper()
		w.z.SetTXT("_dmarc.example.org", fmt.Sprintf("v=DMARC1; p=reject; pct=%d", pct))
		for i := range 200 {
			msg := []byte(message("a@example.org", fmt.Sprintf("message %d", i)))
			verdict, err := v.Verify(context.Background(), o, msg)
			if err != nil {
				t.Fatal(err)
			}
			again, _ := v.Verify(context.Background(), o, msg)
			if again.Action != verdict.Action {
				t.Fatalf("pct=%d: message %d drawn %v, then %v", pct, i, verdict.Action, again.Action)
			}
			switch verdict.Action {
			case mta.Reject:
				rejected++
			case mta.Junk:
				junked++
			default:
				t.Fatalf("pct=%d: message %d accepted", pct, i)
			}
		}
		return rejected, junked
	}
	if r, j := count(100); r != 200 {
		t.Errorf("pct=100: %d rejected, %d junked; want all rejected", r, j)
	}
	if r, j := count(0); j != 200 {
		t.Errorf("pct=0: %d rejected, %d junked; want all quarantined", r, j)
	}
	if r, j := count(30); r < 35 || r > 85 {
		t.Errorf("pct=30: %d rejected, %d junked; want about 60 rejected", r, j)
	}
	// A quarantine not drawn is nothing.
	w.z.SetTXT("_dmarc.example.org", "v=DMARC1; p=quarantine; pct=0")
	if verdict, _ := v.Verify(context.Background(), o, []byte(message("a@example.org", "x"))); verdict.Action != mta.Accept {
		t.Errorf("p=quarantine pct=0: %v, want Accept", verdict.Action)
	}
}

func TestAuthenticationResults(t *testing.T) {
	w := newWorld(t)
	v := w.verifier(t)
	msg := signed(t, w.s, message("Alice <a@example.org>", "x"))
	sigs := signatures(msg)
	verdict, err := v.Verify(context.Background(), origin("b@example.org"), []byte(msg))
	if err != nil {
		t.Fatal(err)
	}
	field := verdict.Headers[0]
	value, ok := strings.CutPrefix(field, "Authentication-Results: ")
	if !ok || strings.ContainsAny(field, "\r\n") || len(field) > 998 {
		t.Fatalf("field %q: want one line named Authentication-Results", field)
	}
	id, results, err := authres.Parse(value)
	if err != nil {
		t.Fatal(err)
	}
	if id != "mx.example.net" || len(results) != 4 {
		t.Fatalf("Parse: %s, %d results; want mx.example.net, 4 (%s)", id, len(results), value)
	}
	if r, ok := results[0].(*authres.SPFResult); !ok || *r != (authres.SPFResult{Value: authres.ResultPass, From: "b@example.org"}) {
		t.Errorf("first result %#v, want spf=pass smtp.mailfrom=b@example.org", results[0])
	}
	for i := range 2 {
		if r, ok := results[1+i].(*authres.DKIMResult); !ok || *r != (authres.DKIMResult{Value: authres.ResultPass, Domain: "example.org"}) {
			t.Errorf("result %d: %#v, want dkim=pass header.d=example.org", 1+i, results[1+i])
		}
	}
	if r, ok := results[3].(*authres.DMARCResult); !ok || *r != (authres.DMARCResult{Value: authres.ResultPass, From: "example.org"}) {
		t.Errorf("last result %#v, want dmarc=pass header.from=example.org", results[3])
	}
	// authres has no fields for header.s, header.a and header.b: read
	// them from the field's text.
	methods := strings.Split(value, ";")
	for i := range 2 {
		params := map[string]string{}
		for _, p := range strings.Fields(methods[2+i]) {
			k, val, _ := strings.Cut(p, "=")
			params[k] = val
		}
		if params["header.s"] != sigs[i]["s"] || params["header.a"] != sigs[i]["a"] || params["header.b"] != sigs[i]["b"][:8] {
			t.Errorf("DKIM result %d: %v; want s=%s a=%s b=%s", i, params, sigs[i]["s"], sigs[i]["a"], sigs[i]["b"][:8])
		}
	}
}

func TestFormatLong(t *testing.T) {
	res := &Results{
		SPF:   SPFResult{Value: authres.ResultFail, MailFrom: "b@example.org", Domain: "example.org", Reason: strings.Repeat("why; ", 40)},
		DMARC: DMARCResult{Value: authres.ResultPass, From: "example.org"},
	}
	for i := range 30 {
		r := DKIMResult{Value: authres.ResultFail, Domain: fmt.Sprintf("d%d.example.org", i), Selector: "selector2026", Algorithm: "rsa-sha256",
			Signature: "abcdefgh", Reason: "signature did not verify \"at all\" \\"}
		if i == 29 {
			r.Value, r.Reason = authres.ResultPass, ""
		}
		res.DKIM = append(res.DKIM, r)
	}
	v := res.Format("mx.example.net")
	if n := len("Authentication-Results: ") + len(v); n > 998 {
		t.Errorf("field of %d octets", n)
	}
	if strings.Contains(v, "reason=") || !strings.Contains(v, "header.d=d29.example.org") || !strings.Contains(v, "header.d=d0.example.org") {
		t.Errorf("%s: want reasons dropped, the pass and the first failures kept", v)
	}
	if _, results, err := authres.Parse(v); err != nil || len(results) < 4 {
		t.Errorf("Parse: %d results, %v", len(results), err)
	}

	res.DKIM = res.DKIM[:2]
	v = res.Format("mx.example.net")
	if !strings.Contains(v, `reason="why why why`) || !strings.Contains(v, `reason="signature did not verify at all"`) {
		t.Errorf("%s: want reasons, cleaned", v)
	}
}

// slowResolver answers for its Static zone only when ctx is done.
type slowResolver struct{ *resolve.Static }

func (s slowResolver) LookupTXT(ctx context.Context, name string) ([]string, resolve.Result, error) {
	<-ctx.Done()
	return nil, resolve.Result{}, ctx.Err()
}

func TestTimeout(t *testing.T) {
	w := newWorld(t)
	v, err := NewVerifier(VerifierConfig{Resolver: slowResolver{w.z}, Hostname: "mx.example.net", Timeout: 50 * time.Millisecond,
		RejectOnDMARCReject: true, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	msg := signed(t, w.s, message("a@example.org", "x"))
	verdict, err := v.Verify(context.Background(), origin("b@example.org"), []byte(msg))
	if err != nil {
		t.Fatal(err)
	}
	res := authenticate(t, v, origin("b@example.org"), msg)
	if res.SPF.Value != authres.ResultTempError || res.DKIM[0].Value != authres.ResultTempError || res.DMARC.Value != authres.ResultTempError ||
		verdict.Action != mta.Accept {
		t.Errorf("DNS too slow: %+v, %v; want temperrors, Accept", res, verdict.Action)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := v.Verify(ctx, origin("b@example.org"), []byte(msg)); !errors.Is(err, context.Canceled) {
		t.Errorf("Verify with its context canceled: %v, want context.Canceled", err)
	}
}

func TestVerifierConfigValidate(t *testing.T) {
	err := VerifierConfig{Hostname: "bad host;", Timeout: -1}.Validate()
	for _, f := range []string{"Resolver", "Hostname", "Timeout"} {
		if err == nil || !strings.Contains(err.Error(), "VerifierConfig."+f) {
			t.Errorf("Validate: %v; want %s named", err, f)
		}
	}
	if _, err := NewVerifier(DefaultVerifierConfig()); err == nil {
		t.Error("NewVerifier without Resolver nor Hostname succeeded")
	}
	cfg := DefaultVerifierConfig()
	cfg.Resolver, cfg.Hostname = &resolve.Static{}, "mx.example.net"
	if err := cfg.Validate(); err != nil {
		t.Errorf("Validate of a complete config: %v", err)
	}
}
