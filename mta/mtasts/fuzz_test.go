package mtasts

import (
	"errors"
	"strings"
	"testing"
)

// FuzzParse reads anything as a policy file: Parse must not panic, and
// what it accepts must be a policy the rest of the package can trust.
// The seeds are in testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	f.Add([]byte("version: STSv1\r\nmode: enforce\r\nmx: mx.example.com\r\nmx: *.example.net\r\nmax_age: 86400\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := Parse(b)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("Parse: %v, not ErrInvalid", err)
			}
			return
		}
		if p.Mode != Enforce && p.Mode != Testing && p.Mode != None || p.MaxAge < 0 || p.MaxAge > MaxMaxAge {
			t.Fatalf("accepted %+v", *p)
		}
		if len(p.MX) == 0 && p.Mode != None {
			t.Fatalf("accepted mode %s without mx", p.Mode)
		}
		for _, mx := range p.MX {
			if !validPattern(mx) || strings.ToLower(mx) != mx {
				t.Fatalf("accepted mx %q", mx)
			}
			host := strings.TrimPrefix(mx, "*.")
			if host != mx {
				host = "a." + host
			}
			if !p.Match(host) || !p.Match(strings.ToUpper(host)+".") {
				t.Fatalf("%q does not match its own pattern %q", host, mx)
			}
		}
	})
}

// FuzzRecord reads anything as an MTA-STS TXT record. The seeds are in
// testdata/fuzz/FuzzRecord.
func FuzzRecord(f *testing.F) {
	f.Add("v=STSv1; id=20160831085700Z;")
	f.Fuzz(func(t *testing.T, txt string) {
		id, err := recordID([]string{txt})
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("recordID: %v, not ErrInvalid", err)
			}
			return
		}
		if !validID(id) || !strings.HasPrefix(txt, recordPrefix) || !strings.Contains(txt, "id="+id) {
			t.Fatalf("record %q gave id %q", txt, id)
		}
	})
}
