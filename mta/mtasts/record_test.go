package mtasts

import (
	"errors"
	"strings"
	"testing"
)

func TestRecordID(t *testing.T) {
	for _, tc := range []struct {
		txts []string
		id   string // "" for none on offer
	}{
		{[]string{"v=STSv1; id=20160831085700Z;"}, "20160831085700Z"},
		{[]string{"v=STSv1;id=abc"}, "abc"},
		{[]string{"v=STSv1; id=abc ; ext=1"}, "abc"},
		{[]string{"v=STSv1;  ext=x; id=abc\t;"}, "abc"},
		{[]string{"v=STSv1; id=first; id=second"}, "first"},
		{[]string{"v=spf1 -all", "v=STSv1; id=abc"}, "abc"},
		{[]string{"v=STSv1; id=" + strings.Repeat("a", 32)}, strings.Repeat("a", 32)},
		{nil, ""},
		{[]string{"v=spf1 -all"}, ""},
		{[]string{"v=STSv1; id=a", "v=STSv1; id=b"}, ""},         // two records
		{[]string{"v=STSv1; id=a", "v=STSv1; id=a"}, ""},         // even alike
		{[]string{"v=STSv1"}, ""},                                // no fields
		{[]string{"v=STSv1;"}, ""},                               // no id
		{[]string{"v=STSv1; ext=1"}, ""},                         // no id
		{[]string{"v=STSv1 ; id=abc"}, ""},                       // does not start with v=STSv1;
		{[]string{"V=STSv1; id=abc"}, ""},                        // case matters
		{[]string{"v=STSv10; id=abc"}, ""},                       // another version
		{[]string{"v=STSv1; id="}, ""},                           // empty id
		{[]string{"v=STSv1; id=a-b"}, ""},                        // not alphanumeric
		{[]string{"v=STSv1; id=" + strings.Repeat("a", 33)}, ""}, // too long
		{[]string{"v=STSv1; id=abc;; ext=1"}, ""},                // empty field
		{[]string{"v=STSv1; id=abc; ext"}, ""},                   // no =
		{[]string{"v=STSv1; id=abc; ext=a=b"}, ""},               // = in a value
		{[]string{"v=STSv1; id=abc; ext=a b"}, ""},               // space in a value
		{[]string{"v=STSv1; id=abc; _x=1"}, ""},                  // bad key
		{[]string{"v=STSv1; id=abc; ext=\x7f"}, ""},              // control
	} {
		id, err := recordID(tc.txts)
		switch {
		case tc.id != "" && (err != nil || id != tc.id):
			t.Errorf("%q: %q, %v; want %q", tc.txts, id, err, tc.id)
		case tc.id == "" && !errors.Is(err, ErrInvalid):
			t.Errorf("%q: %q, %v; want none on offer", tc.txts, id, err)
		}
	}
}
