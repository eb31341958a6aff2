package dsn

import "testing"

func TestNotifies(t *testing.T) {
	for _, c := range []struct {
		notify, kind string
		want         bool
	}{
		{"", "FAILURE", true}, {"", "DELAY", true}, {"", "SUCCESS", false},
		{"NEVER", "FAILURE", false}, {"SUCCESS", "SUCCESS", true}, {"SUCCESS", "DELAY", false},
		{"success, Failure", "FAILURE", true}, {"DELAY,FAILURE", "SUCCESS", false},
	} {
		if got := Notifies(c.notify, c.kind); got != c.want {
			t.Errorf("Notifies(%q, %q) = %v, want %v", c.notify, c.kind, got, c.want)
		}
	}
}
