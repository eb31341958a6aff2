package dnsname

import (
	"strings"
	"testing"
)

func TestIsHost(t *testing.T) {
	for s, want := range map[string]bool{
		"example.org": true, "mx-1.example.org": true, "a": true, "xn--bcher-kva.example": true,
		"": false, "example.org.": false, "-mx.example": false, "mx-.example": false, "a..b": false,
		"under_score.example": false, "sp ace.example": false, strings.Repeat("a", 64) + ".example": false,
		strings.Repeat("a.", 127) + "a": false,
	} {
		if got := IsHost(s); got != want {
			t.Errorf("IsHost(%q) = %v, want %v", s, got, want)
		}
	}
}
