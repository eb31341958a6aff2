package mta_test

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/mailsys/mailsys/mta"
	"github.com/mailsys/mailsys/userdata"
)

// blockingRecipients is a UserDB whose LookupAddress, for the address
// block, waits for its context to end, and says so on cancelled.
type blockingRecipients struct {
	*userdata.DB
	block     string
	entered   chan struct{}
	cancelled chan error
}

func (b *blockingRecipients) LookupAddress(ctx context.Context, address string) (userdata.User, error) {
	if address != b.block {
		return b.DB.LookupAddress(ctx, address)
	}
	close(b.entered)
	<-ctx.Done()
	b.cancelled <- ctx.Err()
	return userdata.User{}, ctx.Err()
}

// blockingFolders is a Mailboxes whose Folder waits for its context to
// end, and says so on cancelled.
type blockingFolders struct {
	mta.Mailboxes
	entered   chan struct{}
	cancelled chan error
}

func (b *blockingFolders) Folder(ctx context.Context, user userdata.UserID, name string) (userdata.Folder, error) {
	select {
	case b.entered <- struct{}{}:
	default:
	}
	<-ctx.Done()
	b.cancelled <- ctx.Err()
	return userdata.Folder{}, ctx.Err()
}

func newSystem(t *testing.T, dir string) *system {
	t.Helper()
	s, err := open(t.Context(), dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.db.CreateDomain(t.Context(), userdata.Domain{Name: "example.test"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.db.CreateUser(t.Context(), userdata.NewUser{Address: users[0]}); err != nil {
		t.Fatal(err)
	}
	return s
}

// serve runs in on a loopback listener and returns its address and what
// Serve returned, once it has.
func serve(t *testing.T, in *mta.Inbound) (string, <-chan error) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- in.Serve(l) }()
	return l.Addr().String(), served
}

// TestShutdownCancelsSession: a RCPT whose recipient lookup blocks is
// cancelled once Shutdown's context ends; Shutdown returns that context's
// error, and Serve ErrServerClosed.
func TestShutdownCancelsSession(t *testing.T) {
	s := newSystem(t, t.TempDir())
	defer s.close()
	users := &blockingRecipients{DB: s.db, block: "slow@example.test", entered: make(chan struct{}), cancelled: make(chan error, 1)}
	in, err := mta.NewInbound(mta.InboundConfig{Logger: slog.New(slog.DiscardHandler)}, users, s.d)
	if err != nil {
		t.Fatal(err)
	}
	addr, served := serve(t, in)
	c, err := smtp.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Mail("carol@example.net", nil); err != nil {
		t.Fatal(err)
	}
	rcpt := make(chan error, 1)
	go func() { rcpt <- c.Rcpt("slow@example.test", nil) }()
	<-users.entered

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := in.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown: %v, want %v", err, context.DeadlineExceeded)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("Shutdown took %v", took)
	}
	select {
	case err := <-users.cancelled:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("the lookup's context ended with %v, want %v", err, context.Canceled)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the blocked lookup was not cancelled")
	}
	<-rcpt // refused or cut off: either way, not accepted
	select {
	case err := <-served:
		if !errors.Is(err, mta.ErrServerClosed) || !errors.Is(err, smtp.ErrServerClosed) {
			t.Errorf("Serve returned %v, want mta.ErrServerClosed (matching smtp.ErrServerClosed)", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return")
	}
	if err := in.Shutdown(context.Background()); !errors.Is(err, mta.ErrServerClosed) {
		t.Errorf("second Shutdown: %v, want ErrServerClosed", err)
	}
}

// TestShutdownCancelsDelivery: Shutdown waits for a delivery in progress
// until its context ends, then cancels it; the transaction stays pending.
func TestShutdownCancelsDelivery(t *testing.T) {
	dir := t.TempDir()
	s := newSystem(t, dir)
	d := *s.d
	folders := &blockingFolders{Mailboxes: s.db, entered: make(chan struct{}, 1), cancelled: make(chan error, 1)}
	d.Users = folders
	in, err := mta.NewInbound(mta.InboundConfig{Logger: slog.New(slog.DiscardHandler)}, s.db, &d)
	if err != nil {
		t.Fatal(err)
	}
	addr, _ := serve(t, in)
	if err := send(addr, "carol@example.net", []string{users[0]}, strings.NewReader("Subject: stuck\r\n\r\nbody\r\n")); err != nil {
		t.Fatal(err)
	}
	<-folders.entered

	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := in.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown: %v, want %v", err, context.DeadlineExceeded)
	}
	if took := time.Since(start); took < 150*time.Millisecond {
		t.Errorf("Shutdown returned after %v: it did not wait for the delivery", took)
	}
	select {
	case err := <-folders.cancelled:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("the delivery's context ended with %v, want %v", err, context.Canceled)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the blocked delivery was not cancelled")
	}
	time.Sleep(50 * time.Millisecond) // let the cancelled attempt return
	s.close()
	s, err = open(t.Context(), dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	if n := len(s.log.Pending()); n != 1 {
		t.Errorf("%d transactions pending after the restart, want the cancelled one", n)
	}
}

// TestCloseServe: Serve returns ErrServerClosed after Close, and at once
// when called after it.
func TestCloseServe(t *testing.T) {
	s := newSystem(t, t.TempDir())
	defer s.close()
	in, err := mta.NewInbound(mta.InboundConfig{Logger: slog.New(slog.DiscardHandler)}, s.db, s.d)
	if err != nil {
		t.Fatal(err)
	}
	_, served := serve(t, in)
	time.Sleep(20 * time.Millisecond) // let Serve begin
	if err := in.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-served:
		if !errors.Is(err, mta.ErrServerClosed) {
			t.Errorf("Serve returned %v, want ErrServerClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after Close")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := in.Serve(l); !errors.Is(err, mta.ErrServerClosed) {
		t.Errorf("Serve after Close: %v, want ErrServerClosed", err)
	}
	if err := in.Close(); !errors.Is(err, mta.ErrServerClosed) {
		t.Errorf("second Close: %v, want ErrServerClosed", err)
	}
}

// TestConfigValidate: every problem at once, each naming its field; the
// constructors refuse what Validate refuses.
func TestConfigValidate(t *testing.T) {
	if err := mta.DefaultInboundConfig().Validate(); err != nil {
		t.Errorf("DefaultInboundConfig: %v", err)
	}
	if err := (mta.InboundConfig{}).Validate(); err != nil {
		t.Errorf("zero InboundConfig: %v", err)
	}
	bad := mta.InboundConfig{
		Hostname:       "mx example",
		MaxMessageSize: -1,
		MaxRecipients:  -2,
		ReadTimeout:    -time.Second,
		DataTimeout:    -time.Second,
		LoginTimeout:   -time.Second,
		MaxSession:     -time.Second,
		WriteTimeout:   -time.Second,
		AnyFrom:        []string{"alice@example.test", "@example.test", "nobody", "a@b@c", "@", "x@exa mple.test"},
		Guard:          mta.NewGuard(mta.GuardConfig{Lockout: -time.Minute}),
	}
	err := bad.Validate()
	for _, field := range []string{"Hostname", "MaxMessageSize", "MaxRecipients", "ReadTimeout", "DataTimeout", "LoginTimeout",
		"MaxSession", "WriteTimeout", "AnyFrom[2]", "AnyFrom[3]", "AnyFrom[4]", "AnyFrom[5]", "Guard", "Lockout"} {
		if err == nil || !strings.Contains(err.Error(), "."+field) && !strings.Contains(err.Error(), field+":") {
			t.Errorf("Validate does not name %s: %v", field, err)
		}
	}
	for _, field := range []string{"AnyFrom[0]", "AnyFrom[1]"} {
		if err != nil && strings.Contains(err.Error(), field) {
			t.Errorf("Validate refuses %s: %v", field, err)
		}
	}
	s := newSystem(t, t.TempDir())
	defer s.close()
	if in, err := mta.NewInbound(bad, s.db, s.d); in != nil || err == nil {
		t.Errorf("NewInbound with a bad config: %v, %v", in, err)
	}
	if in, err := mta.NewSubmission(bad, s.db, s.db, s.d); in != nil || err == nil {
		t.Errorf("NewSubmission with a bad config: %v, %v", in, err)
	}
	if in, err := mta.NewInbound(mta.InboundConfig{}, s.db, nil); in != nil || err == nil {
		t.Errorf("NewInbound without a Deliverer: %v, %v", in, err)
	}

	gerr := mta.GuardConfig{Allow: []netip.Prefix{{}}, Deny: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), {}},
		AuthFailures: -1, MaxTracked: -1, AccountDelay: -1, AuthWindow: -1, Lockout: -1}.Validate()
	for _, field := range []string{"Allow[0]", "Deny[1]", "AuthFailures", "MaxTracked", "AccountDelay", "AuthWindow", "Lockout"} {
		if gerr == nil || !strings.Contains(gerr.Error(), "GuardConfig."+field) {
			t.Errorf("GuardConfig.Validate does not name %s: %v", field, gerr)
		}
	}
	if err := (mta.GuardConfig{MaxConns: -1, MaxConnsPerIP: -1, AddrAuthFailures: -1, AccountFailures: -1}).Validate(); err != nil {
		t.Errorf("GuardConfig with negative values that mean no bound: %v", err)
	}
}
