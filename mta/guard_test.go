package mta

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestGuardLists(t *testing.T) {
	g := NewGuard(GuardConfig{
		Allow: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128")},
		Deny:  []netip.Prefix{netip.MustParsePrefix("10.6.6.0/24")},
	})
	for ip, ok := range map[string]bool{"10.1.2.3": true, "10.6.6.6": false, "192.0.2.1": false, "::1": true, "::ffff:10.1.2.3": true} {
		release, err := g.Admit("smtp", netip.MustParseAddr(ip))
		if (err == nil) != ok {
			t.Errorf("Admit(%s): %v; want admitted=%v", ip, err, ok)
		}
		if err == nil {
			release()
		}
	}
}

// TestGuardConnLimits: the cap per address is per listener; the cap per
// listener and the global one count every address.
func TestGuardConnLimits(t *testing.T) {
	g := NewGuard(GuardConfig{MaxConnsPerIP: 2, MaxConnsPerListener: 3, MaxConns: 5})
	ip := netip.MustParseAddr("192.0.2.7")
	r1, err1 := g.Admit("smtp", ip)
	r2, err2 := g.Admit("smtp", ip)
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	if _, err := g.Admit("smtp", ip); err == nil {
		t.Fatal("third connection from one address admitted")
	}
	r3, err := g.Admit("imap", ip)
	if err != nil {
		t.Fatalf("the same address on another listener refused: %v", err)
	}
	r4, err := g.Admit("smtp", netip.MustParseAddr("192.0.2.8"))
	if err != nil {
		t.Fatalf("another address refused: %v", err)
	}
	if _, err := g.Admit("smtp", netip.MustParseAddr("192.0.2.9")); err == nil {
		t.Fatal("a fourth connection on one listener admitted past MaxConnsPerListener")
	}
	r5, err := g.Admit("pop3", netip.MustParseAddr("192.0.2.9"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.Admit("pop3", netip.MustParseAddr("192.0.2.10")); err == nil {
		t.Fatal("a sixth connection admitted past MaxConns")
	}
	if g.Conns() != 5 {
		t.Fatalf("Conns() = %d, want 5", g.Conns())
	}
	r1()
	r1() // twice is harmless
	if r, err := g.Admit("smtp", ip); err != nil {
		t.Fatalf("after a release: %v", err)
	} else {
		r()
	}
	for _, r := range []func(){r2, r3, r4, r5} {
		r()
	}
	if g.Conns() != 0 {
		t.Fatalf("Conns() = %d after every release", g.Conns())
	}
}

func TestGuardDefaultMaxConns(t *testing.T) {
	for nofile, want := range map[int]int{1024: 768, 65536: 57344, 1 << 20: 100_000, 100: 16} {
		if got := connsFor(nofile); got != want {
			t.Errorf("connsFor(%d) = %d, want %d", nofile, got, want)
		}
	}
	if c := NewGuard(GuardConfig{}).Config().MaxConns; c <= 0 {
		t.Errorf("default MaxConns = %d", c)
	}
}

// TestGuardLockout: failures lock an address out of one account; the
// same account from another address is still allowed.
func TestGuardLockout(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	g := NewGuard(GuardConfig{AuthFailures: 3, AuthWindow: time.Minute, Lockout: 10 * time.Minute})
	g.now = func() time.Time { return now }
	ip, other := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
	for range 3 {
		if !g.AuthAllowed(ip, "alice@example.com") {
			t.Fatal("locked out too early")
		}
		g.AuthFailed(ip, "alice@example.com")
	}
	if g.AuthAllowed(ip, "alice@example.com") {
		t.Error("the address is not locked out of the account after 3 failures")
	}
	if !g.AuthAllowed(other, "alice@example.com") {
		t.Error("the account is locked out for an address that never failed")
	}
	if !g.AuthAllowed(ip, "bob@example.com") {
		t.Error("3 failures on one account locked the address out of another")
	}
	now = now.Add(11 * time.Minute)
	if !g.AuthAllowed(ip, "alice@example.com") {
		t.Error("still locked out after the lockout")
	}
	// Failures spread beyond the window do not add up.
	for range 5 {
		g.AuthFailed(other, "carol@example.com")
		now = now.Add(2 * time.Minute)
	}
	if !g.AuthAllowed(other, "carol@example.com") {
		t.Error("failures outside the window locked the pair out")
	}
}

// TestGuardSpreadAttack: five addresses failing on one account, as in the
// reported attack, do not lock its owner out; an address trying many
// accounts is locked out of all of them.
func TestGuardSpreadAttack(t *testing.T) {
	g := NewGuard(GuardConfig{})
	for i := range 50 {
		g.AuthFailed(netip.AddrFrom4([4]byte{198, 51, 100, byte(i)}), "bob@localhost")
	}
	owner := netip.MustParseAddr("192.0.2.200")
	if !g.AuthAllowed(owner, "bob@localhost") {
		t.Fatal("50 addresses failing on bob locked bob out from his own address")
	}
	scanner := netip.MustParseAddr("203.0.113.9")
	for i := range defaultAddrAuthFailures {
		g.AuthFailed(scanner, fmt.Sprintf("user%d@localhost", i))
	}
	if g.AuthAllowed(scanner, "someone@localhost") {
		t.Fatal("an address that failed on 20 accounts is not locked out")
	}
}

// TestGuardAccountDelay: past AccountFailures, failed logins on an account
// are answered later and later, up to AccountDelay; a success of one pair
// does not reset the account's count.
func TestGuardAccountDelay(t *testing.T) {
	g := NewGuard(GuardConfig{AccountFailures: 2, AccountDelay: time.Second})
	var delays []time.Duration
	for i := range 7 {
		delays = append(delays, g.AuthFailed(netip.AddrFrom4([4]byte{198, 51, 100, byte(i)}), "bob@localhost"))
	}
	want := []time.Duration{0, 0, 250 * time.Millisecond, 500 * time.Millisecond, time.Second, time.Second, time.Second}
	if fmt.Sprint(delays) != fmt.Sprint(want) {
		t.Fatalf("delays %v, want %v", delays, want)
	}
	if d := g.AuthFailed(netip.MustParseAddr("192.0.2.1"), "carol@localhost"); d != 0 {
		t.Fatalf("another account's first failure delayed %v", d)
	}
}

// TestGuardNormalizesAccounts: the case of the name and a trailing dot do
// not buy more tries.
func TestGuardNormalizesAccounts(t *testing.T) {
	g := NewGuard(GuardConfig{AuthFailures: 3})
	ip := netip.MustParseAddr("192.0.2.1")
	for _, name := range []string{"BOB@localhost", "bOb@localhost", "bob@LOCALHOST."} {
		g.AuthFailed(ip, name)
	}
	if g.AuthAllowed(ip, "bob@localhost") {
		t.Fatal("three spellings of one account got three tries each")
	}
	if n := NormalizeAccount(strings.Repeat("x", 12_000)); len(n) != MaxAccountLen {
		t.Fatalf("a 12,000-byte name kept at %d bytes", len(n))
	}
}

// TestGuardBounded: the failure table never holds more than MaxTracked
// entries, however many addresses and junk names fail.
func TestGuardBounded(t *testing.T) {
	g := NewGuard(GuardConfig{MaxTracked: 1000})
	junk := strings.Repeat("j", 12_000)
	for i := range 2000 {
		ip := netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), 1})
		for range 5 {
			g.AuthFailed(ip, fmt.Sprint(i, junk))
		}
	}
	if n := g.Tracked(); n > 1000 {
		t.Fatalf("%d entries tracked, bound 1000", n)
	}
	// The newest are kept: the last address is locked out of its account.
	last := netip.AddrFrom4([4]byte{10, byte(1999 >> 8), byte(1999 & 0xff), 1})
	if g.AuthAllowed(last, fmt.Sprint(1999, junk)) {
		t.Fatal("the most recent lockout was evicted")
	}
}
