package mtasts_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mailsys/mailsys/mta/mtasts"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		want mtasts.Policy
	}{
		{"LF", "version: STSv1\nmode: enforce\nmx: mx1.example.com\nmx: *.example.net\nmax_age: 86400\n",
			mtasts.Policy{Mode: mtasts.Enforce, MX: []string{"mx1.example.com", "*.example.net"}, MaxAge: 24 * time.Hour}},
		{"CRLF", "version: STSv1\r\nmode: testing\r\nmx: MX.Example.COM\r\nmax_age: 604800\r\n",
			mtasts.Policy{Mode: mtasts.Testing, MX: []string{"mx.example.com"}, MaxAge: 7 * 24 * time.Hour}},
		{"no final line end, fields in another order", "max_age: 0\nmx: mx.example.com\nmode: enforce\nversion: STSv1",
			mtasts.Policy{Mode: mtasts.Enforce, MX: []string{"mx.example.com"}}},
		{"mode none without mx", "version: STSv1\nmode: none\nmax_age: 31557600\n",
			mtasts.Policy{Mode: mtasts.None, MaxAge: 31557600 * time.Second}},
		{"spaces and tabs around values", "version:STSv1\nmode:  \tenforce \t\nmx: mx.example.com  \nmax_age:\t60\n",
			mtasts.Policy{Mode: mtasts.Enforce, MX: []string{"mx.example.com"}, MaxAge: time.Minute}},
		{"unknown keys ignored", "version: STSv1\nmode: enforce\nx-report.to_1: mailto:tls@example.com ok ünï\nmx: mx.example.com\nmax_age: 60\n",
			mtasts.Policy{Mode: mtasts.Enforce, MX: []string{"mx.example.com"}, MaxAge: time.Minute}},
		{"repeated fields keep the first", "version: STSv1\nmode: testing\nmode: enforce\nmax_age: 60\nmax_age: 120\nmx: a.example.com\nversion: STSv1\n",
			mtasts.Policy{Mode: mtasts.Testing, MX: []string{"a.example.com"}, MaxAge: time.Minute}},
		{"empty lines at the end", "version: STSv1\r\nmode: none\r\nmax_age: 1\r\n\r\n\n",
			mtasts.Policy{Mode: mtasts.None, MaxAge: time.Second}},
		{"one-label mx", "version: STSv1\nmode: enforce\nmx: localhost\nmax_age: 1\n",
			mtasts.Policy{Mode: mtasts.Enforce, MX: []string{"localhost"}, MaxAge: time.Second}},
	} {
		p, err := mtasts.Parse([]byte(tc.in))
		if err != nil {
			t.Errorf("%s: Parse: %v", tc.name, err)
			continue
		}
		if p.Mode != tc.want.Mode || !slices.Equal(p.MX, tc.want.MX) || p.MaxAge != tc.want.MaxAge || p.ID != "" || !p.Fetched.IsZero() {
			t.Errorf("%s: Parse = %+v, want %+v", tc.name, *p, tc.want)
		}
	}
}

func TestParseInvalid(t *testing.T) {
	const mx, age = "mx: mx.example.com\n", "max_age: 86400\n"
	for _, tc := range []struct{ name, in string }{
		{"empty", ""},
		{"no version", "mode: enforce\n" + mx + age},
		{"version STSv2", "version: STSv2\nmode: enforce\n" + mx + age},
		{"version in lower case", "version: stsv1\nmode: enforce\n" + mx + age},
		{"no mode", "version: STSv1\n" + mx + age},
		{"mode unknown", "version: STSv1\nmode: strict\n" + mx + age},
		{"mode in upper case", "version: STSv1\nmode: ENFORCE\n" + mx + age},
		{"a second mode unknown", "version: STSv1\nmode: enforce\nmode: bogus\n" + mx + age},
		{"key in upper case", "Version: STSv1\nmode: enforce\n" + mx + age},
		{"no max_age", "version: STSv1\nmode: enforce\n" + mx},
		{"max_age over a year", "version: STSv1\nmode: enforce\n" + mx + "max_age: 31557601\n"},
		{"max_age of 11 digits", "version: STSv1\nmode: enforce\n" + mx + "max_age: 00000000001\n"},
		{"max_age negative", "version: STSv1\nmode: enforce\n" + mx + "max_age: -1\n"},
		{"max_age empty", "version: STSv1\nmode: enforce\n" + mx + "max_age:\n"},
		{"max_age with a unit", "version: STSv1\nmode: enforce\n" + mx + "max_age: 60s\n"},
		{"no mx in enforce", "version: STSv1\nmode: enforce\n" + age},
		{"no mx in testing", "version: STSv1\nmode: testing\n" + age},
		{"mx with a trailing dot", "version: STSv1\nmode: enforce\nmx: mx.example.com.\n" + age},
		{"mx wildcard in the middle", "version: STSv1\nmode: enforce\nmx: mx.*.example.com\n" + age},
		{"mx wildcard alone", "version: STSv1\nmode: enforce\nmx: *\n" + age},
		{"mx two wildcards", "version: STSv1\nmode: enforce\nmx: *.*.example.com\n" + age},
		{"mx partial wildcard", "version: STSv1\nmode: enforce\nmx: mx*.example.com\n" + age},
		{"mx in Unicode", "version: STSv1\nmode: enforce\nmx: mx.bücher.example\n" + age},
		{"mx with an underscore", "version: STSv1\nmode: enforce\nmx: mx_1.example.com\n" + age},
		{"mx empty", "version: STSv1\nmode: enforce\nmx:\n" + age},
		{"mx with a port", "version: STSv1\nmode: enforce\nmx: mx.example.com:25\n" + age},
		{"empty line", "version: STSv1\n\nmode: enforce\n" + mx + age},
		{"leading space", " version: STSv1\nmode: enforce\n" + mx + age},
		{"no colon", "version STSv1\nmode: enforce\n" + mx + age},
		{"bare CR", "version: STSv1\rmode: enforce\n" + mx + age},
		{"control character in an unknown value", "version: STSv1\nmode: enforce\nx: a\x01b\n" + mx + age},
		{"unknown value empty", "version: STSv1\nmode: enforce\nx:\n" + mx + age},
		{"key too long", "version: STSv1\nmode: enforce\n" + strings.Repeat("k", 33) + ": v\n" + mx + age},
		{"not UTF-8", "version: STSv1\nmode: enforce\nx: \xff\n" + mx + age},
		{"larger than 64 KiB", "version: STSv1\nmode: enforce\n" + mx + age + strings.Repeat("x: "+strings.Repeat("y", 60)+"\n", 1100)},
	} {
		p, err := mtasts.Parse([]byte(tc.in))
		if !errors.Is(err, mtasts.ErrInvalid) {
			t.Errorf("%s: Parse = %+v, %v; want ErrInvalid", tc.name, p, err)
		}
	}
}

func TestMatch(t *testing.T) {
	p := &mtasts.Policy{Mode: mtasts.Enforce, MX: []string{"mx1.example.com", "*.example.net", "Upper.Example.ORG.", "xn--bcher-kva.example"}}
	for host, want := range map[string]bool{
		"mx1.example.com":           true,
		"MX1.EXAMPLE.COM":           true,
		"mx1.example.com.":          true,
		"mx2.example.com":           false,
		"example.com":               false,
		"a.mx1.example.com":         false,
		"mx.example.net":            true,
		"MX.Example.Net.":           true,
		"example.net":               false, // the wildcard needs a label
		".example.net":              false,
		"a.b.example.net":           false, // and only one
		"xexample.net":              false,
		"upper.example.org":         true,
		"bücher.example":            true,
		"xn--bcher-kva.example":     true,
		"":                          false,
		"mx1.example.com.evil.test": false,
	} {
		if got := p.Match(host); got != want {
			t.Errorf("Match(%q) = %v, want %v", host, got, want)
		}
	}
}

func TestEnforced(t *testing.T) {
	var nilPolicy *mtasts.Policy
	for _, tc := range []struct {
		p    *mtasts.Policy
		want bool
	}{
		{&mtasts.Policy{Mode: mtasts.Enforce}, true},
		{&mtasts.Policy{Mode: mtasts.Testing}, false},
		{&mtasts.Policy{Mode: mtasts.None}, false},
		{nilPolicy, false},
	} {
		if got := tc.p.Enforced(); got != tc.want {
			t.Errorf("%+v: Enforced = %v", tc.p, got)
		}
	}
	fetched := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	p := &mtasts.Policy{MaxAge: time.Hour, Fetched: fetched}
	if e := p.Expires(); !e.Equal(fetched.Add(time.Hour)) {
		t.Errorf("Expires = %v", e)
	}
}
