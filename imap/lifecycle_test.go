package imap_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mailsys/mailsys/imap"
	"github.com/mailsys/mailsys/userdata"
)

// stuckDB is a UserDB whose Messages, once armed, blocks until its
// context ends: a long SEARCH or FETCH.
type stuckDB struct {
	*userdata.DB
	armed    atomic.Bool
	entered  chan struct{} // a value per stuck call
	returned chan error    // its context's error, when it gave up
}

func newStuckDB(db *userdata.DB) *stuckDB {
	return &stuckDB{DB: db, entered: make(chan struct{}, 10), returned: make(chan error, 10)}
}

func (d *stuckDB) Messages(ctx context.Context, user userdata.UserID, folder userdata.FolderID, set userdata.UIDSet, fn func(*userdata.Message) error) error {
	if !d.armed.Load() {
		return d.DB.Messages(ctx, user, folder, set, fn)
	}
	d.entered <- struct{}{}
	<-ctx.Done()
	d.returned <- ctx.Err()
	return ctx.Err()
}

// stuckSearch starts a SEARCH that stays in the UserDB.
func stuckSearch(t *testing.T, e *env, db *stuckDB, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, r := e.rawSession(addr)
	db.armed.Store(true)
	io.WriteString(c, "a SEARCH ALL\r\n")
	select {
	case <-db.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("SEARCH did not reach the UserDB")
	}
	return c, r
}

// TestShutdownCancelsBackendCalls: a session stuck in a backend call (a
// long SEARCH) is told BYE, and once Shutdown's context ends its call is
// cancelled, the session ends, and Shutdown returns the context's error.
func TestShutdownCancelsBackendCalls(t *testing.T) {
	e := newEnv(t)
	e.fill(3)
	db := newStuckDB(e.db)
	srv, addr := serveWith(t, imap.Config{}, db, e.store)
	c, r := stuckSearch(t, e, db, addr)

	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := srv.Shutdown(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown = %v, want context.DeadlineExceeded", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("Shutdown took %v", took)
	}
	select {
	case err := <-db.returned:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("the stuck call ended with %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the stuck backend call was not cancelled")
	}
	c.SetDeadline(time.Now().Add(5 * time.Second))
	out, _ := io.ReadAll(r)
	if !strings.Contains(string(out), "* BYE") {
		t.Errorf("the client was told %q, want a BYE", out)
	}
}

// TestShutdownIdle: sessions in IDLE, selected or not, and a session not
// logged in are told BYE, and Shutdown returns nil once they are gone.
func TestShutdownIdle(t *testing.T) {
	e := newEnv(t)
	srv, addr := serveWith(t, imap.Config{}, e.db, e.store)
	var readers []*bufio.Reader
	c1, r1 := e.rawSession(addr)
	io.WriteString(c1, "i IDLE\r\n")
	if _, err := readUntil(r1, "+ "); err != nil {
		t.Fatal(err)
	}
	readers = append(readers, r1)
	c2, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	c2.SetDeadline(time.Now().Add(30 * time.Second))
	r2 := bufio.NewReader(c2)
	r2.ReadString('\n')
	readers = append(readers, r2)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown = %v", err)
	}
	for i, r := range readers {
		if out, _ := io.ReadAll(r); !strings.Contains(string(out), "* BYE") {
			t.Errorf("session %d was told %q, want a BYE", i, out)
		}
	}
	if _, err := net.Dial("tcp", addr); err == nil {
		t.Error("the listener still accepts after Shutdown")
	}
}

// TestClose: Close drops every connection at once, without waiting for the
// command in progress, whose backend call it cancels; Serve returns
// ErrServerClosed, and a later Shutdown returns at once.
func TestClose(t *testing.T) {
	e := newEnv(t)
	e.fill(3)
	db := newStuckDB(e.db)
	srv, err := imap.NewServer(imap.Config{InsecureAuth: true, Logger: slog.New(slog.DiscardHandler)}, db, e.store)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	addr := l.Addr().String()
	_, stuck := stuckSearch(t, e, db, addr)
	c, err := net.Dial("tcp", addr) // logged in, selecting nothing
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	idle := bufio.NewReader(c)
	io.WriteString(c, "l LOGIN ann@example.test pw\r\n")
	if _, err := readUntil(idle, "l OK"); err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	if err := srv.Close(); err != nil {
		t.Errorf("Close = %v", err)
	}
	for i, r := range []*bufio.Reader{stuck, idle} {
		if _, err := io.ReadAll(r); err != nil {
			t.Errorf("connection %d: %v, want it closed", i, err)
		}
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("connections closed after %v", took)
	}
	select {
	case err := <-db.returned:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("the stuck call ended with %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the stuck backend call was not cancelled")
	}
	select {
	case err := <-served:
		if !errors.Is(err, imap.ErrServerClosed) {
			t.Errorf("Serve = %v, want ErrServerClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return")
	}
	if err := srv.Serve(l); !errors.Is(err, imap.ErrServerClosed) {
		t.Errorf("Serve after Close = %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown after Close = %v", err)
	}
}

// TestConfigValidate: Validate names every bad field at once, and
// NewServer refuses what it refuses.
func TestConfigValidate(t *testing.T) {
	bad := imap.Config{MaxAppendSize: -1, PreAuthBytes: -2, PreAuthTimeout: -time.Second, IdleTimeout: -time.Minute, IdleCommandTimeout: -1}
	err := bad.Validate()
	if err == nil {
		t.Fatal("Validate accepted negative values and no TLS")
	}
	for _, field := range []string{"MaxAppendSize", "PreAuthBytes", "PreAuthTimeout", "IdleTimeout", "IdleCommandTimeout", "TLS"} {
		if !strings.Contains(err.Error(), field) {
			t.Errorf("Validate's error does not name %s: %v", field, err)
		}
	}
	if srv, nerr := imap.NewServer(bad, nil, nil); srv != nil || nerr == nil || nerr.Error() != err.Error() {
		t.Errorf("NewServer = %v, %v; want nil and Validate's error", srv, nerr)
	}
	if err := (imap.Config{}).Validate(); err == nil || !strings.Contains(err.Error(), "InsecureAuth") {
		t.Errorf("the zero Config: %v, want the TLS/InsecureAuth problem", err)
	}
	d := imap.DefaultConfig()
	d.InsecureAuth = true
	if err := d.Validate(); err != nil {
		t.Errorf("DefaultConfig with InsecureAuth: %v", err)
	}
	if d.MaxAppendSize <= 0 || d.PreAuthTimeout <= 0 || d.PreAuthBytes <= 0 || d.IdleTimeout < 30*time.Minute || d.IdleCommandTimeout <= 0 {
		t.Errorf("DefaultConfig leaves a default unset: %+v", d)
	}
}
