package mta

import (
	"net/netip"
	"testing"
	"time"
)

func TestGuardLists(t *testing.T) {
	g := NewGuard(GuardConfig{
		Allow: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128")},
		Deny:  []netip.Prefix{netip.MustParsePrefix("10.6.6.0/24")},
	})
	for ip, ok := range map[string]bool{"10.1.2.3": true, "10.6.6.6": false, "192.0.2.1": false, "::1": true, "::ffff:10.1.2.3": true} {
		release, err := g.Admit(netip.MustParseAddr(ip))
		if (err == nil) != ok {
			t.Errorf("Admit(%s): %v; want admitted=%v", ip, err, ok)
		}
		if err == nil {
			release()
		}
	}
}

func TestGuardConnLimit(t *testing.T) {
	g := NewGuard(GuardConfig{MaxConnsPerIP: 2})
	ip := netip.MustParseAddr("192.0.2.7")
	r1, err1 := g.Admit(ip)
	r2, err2 := g.Admit(ip)
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	if _, err := g.Admit(ip); err == nil {
		t.Fatal("third connection admitted")
	}
	if _, err := g.Admit(netip.MustParseAddr("192.0.2.8")); err != nil {
		t.Fatalf("another address refused: %v", err)
	}
	r1()
	r1() // twice is harmless
	if r3, err := g.Admit(ip); err != nil {
		t.Fatalf("after a release: %v", err)
	} else {
		r3()
	}
	r2()
}

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
	if g.AuthAllowed(ip, "bob@example.com") {
		t.Error("the address is not locked out after 3 failures")
	}
	if g.AuthAllowed(other, "alice@example.com") {
		t.Error("the account is not locked out after 3 failures")
	}
	if !g.AuthAllowed(other, "bob@example.com") {
		t.Error("an unrelated address and account are locked out")
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
		t.Error("failures outside the window locked the account out")
	}
}
