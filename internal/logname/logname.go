// Package logname cuts names that clients typed (user names, account
// names) to a length fit for the Guard's table and the servers' logs.
package logname

import "unicode/utf8"

// Max is how many bytes of a client-typed name are kept: more than any
// address can be.
const Max = 256

// Cut returns name cut to at most Max bytes, at a UTF-8 boundary where
// the name is valid UTF-8.
func Cut(name string) string {
	if len(name) <= Max {
		return name
	}
	cut := Max
	for cut > Max-utf8.UTFMax && !utf8.RuneStart(name[cut]) {
		cut--
	}
	return name[:cut]
}
