package pop3_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mailsys/mailsys/internal/selfsigned"

	"github.com/mailsys/mailsys/msstore"
	"github.com/mailsys/mailsys/mta"
	"github.com/mailsys/mailsys/pop3"
	"github.com/mailsys/mailsys/userdata"
)

var _ pop3.Guard = (*mta.Guard)(nil)

// The test user.
const (
	testUser = "ann@example.test"
	testPass = "secret pass" // a space, which PASS must keep
)

// env is a real store and UserDB in a temporary directory, with a user, and
// a POP3 server over them on loopback.
type env struct {
	t     *testing.T
	store *msstore.Volumes
	db    *userdata.DB
	user  userdata.User
	inbox userdata.Folder
	srv   *pop3.Server
	addr  string // plain listener (InsecureAuth unless the config says otherwise)
	tls   string // implicit-TLS listener, if the config has TLS
}

// openStores opens a store and a UserDB under dir.
func openStores(t testing.TB, dir string) (*msstore.Volumes, *userdata.DB) {
	t.Helper()
	return openStoresWith(t, dir, nil)
}

// openStoresWith is openStores with the UserDB's configuration changed by
// tune, if not nil.
func openStoresWith(t testing.TB, dir string, tune func(*userdata.Config)) (*msstore.Volumes, *userdata.DB) {
	t.Helper()
	quiet := slog.New(slog.DiscardHandler)
	ctx := context.Background()
	cfg := msstore.DefaultConfig(filepath.Join(dir, "store"))
	cfg.VolumeSize, cfg.MaxBodySize, cfg.Logger = 64<<20, 8<<20, quiet
	st, err := msstore.OpenVolumes(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	udCfg := userdata.Config{Dir: filepath.Join(dir, "ud"), Bodies: st,
		Argon2: userdata.Argon2Params{Time: 1, Memory: 64, Threads: 1}, CacheSize: 8 << 20, MemTableSize: 4 << 20,
		DiskReserve: -1, Logger: quiet}
	if tune != nil {
		tune(&udCfg)
	}
	db, err := userdata.Open(ctx, udCfg)
	if err != nil {
		st.Close()
		t.Fatal(err)
	}
	return st, db
}

// ensureUser creates the test user (and its domain) if missing.
func ensureUser(t testing.TB, db *userdata.DB) userdata.User {
	t.Helper()
	ctx := context.Background()
	if u, err := db.LookupAddress(ctx, testUser); err == nil {
		return u
	}
	if err := db.CreateDomain(ctx, userdata.Domain{Name: "example.test"}); err != nil {
		t.Fatal(err)
	}
	u, err := db.CreateUser(ctx, userdata.NewUser{Address: testUser, Password: testPass})
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// newEnv starts a server with cfg (InsecureAuth is set when cfg has no
// TLS).
func newEnv(t *testing.T, cfg pop3.Config) *env { t.Helper(); return newEnvWith(t, cfg, nil) }

// newEnvWith is newEnv with the server's UserDB made by wrap from the real
// one (nil for the real one itself).
func newEnvWith(t *testing.T, cfg pop3.Config, wrap func(*userdata.DB) pop3.UserDB) *env {
	t.Helper()
	return newEnvTuned(t, cfg, nil, wrap)
}

// newEnvTuned is newEnvWith with the UserDB's configuration changed by
// tune, if not nil.
func newEnvTuned(t *testing.T, cfg pop3.Config, tune func(*userdata.Config), wrap func(*userdata.DB) pop3.UserDB) *env {
	t.Helper()
	e := &env{t: t}
	e.store, e.db = openStoresWith(t, t.TempDir(), tune)
	e.user = ensureUser(t, e.db)
	var err error
	if e.inbox, err = e.db.Folder(t.Context(), e.user.ID, userdata.Inbox); err != nil {
		t.Fatal(err)
	}
	if cfg.TLS == nil {
		cfg.InsecureAuth = true
	}
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	var users pop3.UserDB = e.db
	if wrap != nil {
		users = wrap(e.db)
	}
	e.srv, err = pop3.NewServer(cfg, users, e.store)
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 2)
	e.addr = listen(t, func(l net.Listener) { served <- e.srv.Serve(l) })
	n := 1
	if cfg.TLS != nil {
		e.tls = listen(t, func(l net.Listener) { served <- e.srv.ServeTLS(l) })
		n++
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := e.srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		for range n {
			if err := <-served; err != pop3.ErrServerClosed {
				t.Errorf("Serve returned %v, want ErrServerClosed", err)
			}
		}
		e.db.Close()
		e.store.Close()
	})
	return e
}

func listen(t *testing.T, serve func(net.Listener)) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go serve(l)
	return l.Addr().String()
}

// deliver stores body and appends it to the INBOX, as the MTA does.
func deliver(t testing.TB, st msstore.Storage, db userdata.UserDB, u userdata.User, body []byte) userdata.Message {
	t.Helper()
	ctx := context.Background()
	ref, err := st.Put(ctx, bytes.NewReader(body), msstore.Meta{Received: time.Now(), Owners: []msstore.Owner{{User: u.Address, Mailbox: userdata.Inbox}}})
	if err != nil {
		t.Fatal(err)
	}
	inbox, err := db.Folder(ctx, u.ID, userdata.Inbox)
	if err != nil {
		t.Fatal(err)
	}
	m, err := db.Append(ctx, u.ID, inbox.ID, userdata.NewMessage{Ref: ref, InternalDate: time.Now(), Size: ref.Size})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func (e *env) deliver(body []byte) userdata.Message { return deliver(e.t, e.store, e.db, e.user, body) }

// uids returns the INBOX's UIDs.
func (e *env) uids() []userdata.UID {
	e.t.Helper()
	uids, err := e.db.UIDs(context.Background(), e.user.ID, e.inbox.ID)
	if err != nil {
		e.t.Fatal(err)
	}
	return uids
}

func selfSigned(t *testing.T) *tls.Config {
	t.Helper()
	cert, err := selfsigned.New("localhost", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}}
}

// client is a bare POP3 client for the tests that need to say exactly
// what goes on the wire.
type client struct {
	t *testing.T
	c net.Conn
	r *bufio.Reader
}

// dial connects and reads the greeting.
func dial(t *testing.T, addr string) *client {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	cl := &client{t: t, c: c, r: bufio.NewReader(c)}
	if g := cl.line(); !strings.HasPrefix(g, "+OK") {
		t.Fatalf("greeting %q", g)
	}
	return cl
}

// line reads one line, without its CRLF, failing the test after 10 s.
func (c *client) line() string {
	c.t.Helper()
	c.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	s, err := c.r.ReadString('\n')
	if err != nil {
		c.t.Fatalf("reading a reply: %v (got %q)", err, s)
	}
	return strings.TrimSuffix(s, "\r\n")
}

// send writes raw bytes.
func (c *client) send(s string) {
	c.t.Helper()
	if _, err := c.c.Write([]byte(s)); err != nil {
		c.t.Fatal(err)
	}
}

// cmd sends a command line and returns the status line of the reply.
func (c *client) cmd(line string) string {
	c.t.Helper()
	c.send(line + "\r\n")
	return c.line()
}

// ok sends a command and fails the test unless the reply is +OK.
func (c *client) ok(line string) string {
	c.t.Helper()
	r := c.cmd(line)
	if !strings.HasPrefix(r, "+OK") {
		c.t.Fatalf("%s: %s", line, r)
	}
	return r
}

// multi reads the lines of a multi-line reply up to its ".", un-stuffed.
func (c *client) multi() []string {
	c.t.Helper()
	var lines []string
	for {
		l := c.line()
		if l == "." {
			return lines
		}
		lines = append(lines, strings.TrimPrefix(l, "."))
	}
}

// login logs in with USER and PASS.
func (c *client) login() {
	c.t.Helper()
	c.ok("USER " + testUser)
	c.ok("PASS " + testPass)
}

// closed reports whether the server has closed the connection (reading
// gives EOF within 10 s).
func (c *client) closed() bool {
	c.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err := c.r.ReadByte()
	return err != nil && !isTimeout(err)
}

// drained reports whether the server closes the connection within 10 s,
// whatever it sends before.
func (c *client) drained() bool {
	c.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err := io.Copy(io.Discard, c.r)
	return !isTimeout(err)
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

// netDial connects to addr, giving up after 5 s.
func netDial(addr string) (net.Conn, error) { return net.DialTimeout("tcp", addr, 5*time.Second) }
