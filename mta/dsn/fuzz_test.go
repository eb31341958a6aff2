package dsn_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/mailsys/mailsys/mta/dsn"
)

// FuzzParse reads anything: Parse must not panic, and what it accepts
// has the fields it promises. The seeds in testdata/fuzz/FuzzParse are
// notifications Build made (failed, delayed, global, several
// recipients), one in Postfix's form, and broken ones.
func FuzzParse(f *testing.F) {
	f.Add([]byte(postfix))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := dsn.Parse(bytes.NewReader(b))
		if err != nil {
			if !errors.Is(err, dsn.ErrMalformed) {
				t.Fatalf("Parse: %v, not ErrMalformed", err)
			}
			return
		}
		if p.PerMessage.Get("Reporting-MTA") == "" || len(p.Recipients) == 0 {
			t.Fatalf("accepted without Reporting-MTA or recipients: %+v", p)
		}
		for _, rc := range p.Recipients {
			if rc.Get("Final-Recipient") == "" || rc.Get("Action") == "" || rc.Get("Status") == "" {
				t.Fatalf("accepted a recipient without its required fields: %v", rc)
			}
		}
	})
}

// FuzzBuild builds notifications of hostile values: each must be one
// that Parse reads back with its one recipient and fields whole, no
// value able to add a field, a recipient or a line too long.
func FuzzBuild(f *testing.F) {
	f.Add("bob@example.com", "rfc822;bob@example.com", "550 5.1.1 No such user", "mx.example.com", "ENV1", []byte(original))
	f.Add("josé@exemplo.br", "", "550 5.1.1\r\nFinal-Recipient: rfc822; eve@x\r\n\r\nAction: delivered", "mx\n", "\r\n", []byte("Subject: Olá\r\n\r\n"))
	f.Add("a@b", "utf-8;ü@b", strings.Repeat("é", 600), strings.Repeat("m", 300), strings.Repeat("e", 1200), []byte("\n\n\r"))
	f.Fuzz(func(t *testing.T, final, orcpt, diag, mta, envid string, orig []byte) {
		r := dsn.Report{
			ReportingMTA: "mx.example.org", To: "alice@example.org", EnvID: envid, Ret: "FULL",
			Recipients: []dsn.Recipient{{Final: final, Original: orcpt, Action: dsn.Failed, Status: "5.1.1", RemoteMTA: mta, Diagnostic: diag}},
			Original:   bytes.NewReader(orig), OriginalSize: int64(len(orig)),
		}
		msg, err := dsn.Build(r)
		if err != nil {
			if !errors.Is(err, dsn.ErrInvalid) || strings.TrimSpace(final) != "" {
				t.Fatalf("Build: %v", err)
			}
			return
		}
		for line := range bytes.SplitSeq(msg, []byte("\r\n")) {
			if bytes.ContainsAny(line, "\r\n") || len(line) > 998 && !bytes.Contains(orig, line) {
				t.Fatalf("bad line %q", line)
			}
		}
		p, err := dsn.Parse(bytes.NewReader(msg))
		if err != nil {
			t.Fatalf("Parse: %v\n%q", err, msg)
		}
		if len(p.Recipients) != 1 {
			t.Fatalf("%d recipients:\n%q", len(p.Recipients), msg)
		}
		rc := p.Recipients[0]
		if rc.Get("Action") != "failed" || rc.Get("Status") != "5.1.1" {
			t.Fatalf("recipient fields %v", rc)
		}
		if (rc.Get("Original-Recipient") == "") != (orcpt == "") {
			t.Fatalf("ORCPT %q became Original-Recipient %q", orcpt, rc.Get("Original-Recipient"))
		}
		for k := range rc {
			switch k {
			case "original-recipient", "final-recipient", "action", "status", "remote-mta", "diagnostic-code":
			default:
				t.Fatalf("field %q appeared:\n%q", k, msg)
			}
		}
		for k := range p.PerMessage {
			switch k {
			case "original-envelope-id", "reporting-mta":
			default:
				t.Fatalf("per-message field %q appeared:\n%q", k, msg)
			}
		}
		if p.OriginalType != "message/rfc822" && p.OriginalType != "message/global" {
			t.Fatalf("original returned as %s", p.OriginalType)
		}
	})
}
