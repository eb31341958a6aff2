// Package pgtest runs throwaway PostgreSQL servers for tests, from the
// binaries of the machine's PostgreSQL 15 (Debian's postgresql package:
// /usr/lib/postgresql/15/bin; else the directory pg_config --bindir names;
// else initdb and pg_ctl on the PATH).
//
// A server lives in a temporary directory of its own (data, unix socket
// and log; under /dev/shm when it has room, else under os.TempDir), listens on a free loopback port, and runs without fsync: it is
// fast, and loses everything on a crash, which a test does not mind. It
// is stopped (immediate shutdown) and its directory removed when the test
// that started it ends, or, for the package's shared server, when the
// test binary ends (Main). A watchdog process stops it too if the test
// binary dies without cleaning up (a panic, a test timeout, a kill), so no
// postgres process outlives the tests.
//
// PostgreSQL refuses to run as root: as root, pgtest runs the server as
// the postgres user (which Debian's package creates), with its directory
// owned by that user.
//
// When the binaries are missing, tests that ask for a server are skipped,
// unless the environment variable CI is set: then they fail, so that CI
// cannot pass without running them.
//
// Typical use, one server for the package's tests and a fresh database
// for each test:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
//
//	func TestSomething(t *testing.T) {
//		dsn := pgtest.Start(t)
//		...
//	}
package pgtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// debianBin is where Debian's postgresql-15 package puts the server's
// programs.
const debianBin = "/usr/lib/postgresql/15/bin"

// cmdTimeout bounds initdb and each pg_ctl call.
const cmdTimeout = 60 * time.Second

// errMissing reports that no PostgreSQL binaries were found, or no
// unprivileged user to run them as root.
var errMissing = errors.New("pgtest: PostgreSQL is not installed")

// Server is a running throwaway PostgreSQL server. Its methods are safe for
// concurrent use, but Stop, Restart and StartAgain act on the server that
// every test using it shares.
type Server struct {
	bin  string // directory of initdb, pg_ctl
	dir  string // the temporary directory: data/, sock/, log
	port int
	cred *syscall.Credential // the postgres user's, when running as root; else nil

	mu       sync.Mutex
	dbs      int       // databases made so far
	watchdog *exec.Cmd // stops the server if this process dies
	wdPipe   *os.File  // the watchdog's stdin; closing it sets it off
	stopped  bool      // Stop was called (and not StartAgain since)
	gone     bool      // the server has been shut down for good
}

// New starts a server of its own for tb, stopped and removed when tb's
// test ends. It skips tb (fails it when CI is set) when PostgreSQL is not
// installed, and fails it when the server does not start.
func New(tb testing.TB) *Server {
	tb.Helper()
	s, err := start()
	if err != nil {
		missing(tb, err)
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := s.shutdown(); err != nil {
			tb.Error(err)
		}
	})
	return s
}

// missing skips or fails tb if err says PostgreSQL is missing.
func missing(tb testing.TB, err error) {
	tb.Helper()
	if !errors.Is(err, errMissing) {
		return
	}
	if os.Getenv("CI") != "" {
		tb.Fatalf("%v (CI is set: the PostgreSQL tests must run)", err)
	}
	tb.Skip(err)
}

// The package's shared server, started by the first Shared call of a test
// binary that runs Main.
var shared struct {
	mu     sync.Mutex
	inMain bool    // Main is running the tests
	srv    *Server // started
	err    error   // the start failed (not tried again)
}

// Main runs the tests of m and then stops the shared server, if one was
// started, and exits with the tests' status. Call it from TestMain:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
func Main(m *testing.M) {
	shared.mu.Lock()
	shared.inMain = true
	shared.mu.Unlock()
	code := m.Run()
	shared.mu.Lock()
	srv := shared.srv
	shared.srv, shared.inMain = nil, false
	shared.mu.Unlock()
	if srv != nil {
		if err := srv.shutdown(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			if code == 0 {
				code = 1
			}
		}
	}
	os.Exit(code)
}

// Shared returns the server shared by the tests of the binary, starting it
// the first time. Without Main (no TestMain calling it), nothing would stop
// a shared server, so Shared then starts one for tb alone, as New does.
// It skips or fails tb as New does.
func Shared(tb testing.TB) *Server {
	tb.Helper()
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if !shared.inMain {
		return New(tb)
	}
	if shared.srv == nil && shared.err == nil {
		shared.srv, shared.err = start()
	}
	if shared.err != nil {
		missing(tb, shared.err)
		tb.Fatal(shared.err)
	}
	return shared.srv
}

// Start returns the DSN of a fresh, empty database on the shared server
// (Shared): each call makes another, so tests do not see each other's
// data.
func Start(tb testing.TB) (dsn string) {
	tb.Helper()
	return Shared(tb).NewDatabase(tb)
}

// NewDatabase creates another empty database on s and returns its DSN. It
// fails tb if it cannot. The database goes with the server.
func (s *Server) NewDatabase(tb testing.TB) (dsn string) {
	tb.Helper()
	s.mu.Lock()
	s.dbs++
	name := fmt.Sprintf("test_%d", s.dbs)
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	conn, err := pgx.Connect(ctx, s.DSN("postgres"))
	if err != nil {
		tb.Fatalf("pgtest: %v", err)
	}
	defer conn.Close(ctx)
	// FILE_COPY copies template1's few files; the default (WAL_LOG)
	// writes them through the WAL, which is slower for a small database.
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name+" STRATEGY FILE_COPY"); err != nil {
		tb.Fatalf("pgtest: create database %s: %v", name, err)
	}
	return s.DSN(name)
}

// DSN returns the URL of database db on s (as the superuser postgres, over
// loopback TCP, without TLS).
func (s *Server) DSN(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", s.port, db)
}

// Addr returns the host:port s listens on.
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// Restart shuts the server down, as an administrator's restart does (open
// connections are cut at once; what was committed stays: the shutdown
// writes out what synchronous_commit=off had not yet), and starts it again
// on the same port. It fails tb if it cannot.
func (s *Server) Restart(tb testing.TB) {
	tb.Helper()
	s.Stop(tb)
	s.StartAgain(tb)
}

// Stop shuts the server down (pg_ctl's fast mode: open connections are cut
// at once), until StartAgain. It fails tb if it cannot.
func (s *Server) Stop(tb testing.TB) {
	tb.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gone || s.stopped {
		tb.Fatal("pgtest: Stop of a server that is not running")
	}
	if err := s.pgctl("-w", "-m", "fast", "stop"); err != nil {
		tb.Fatal(err)
	}
	s.stopped = true
}

// StartAgain starts a server that Stop stopped, on the same port. It fails
// tb if it cannot.
func (s *Server) StartAgain(tb testing.TB) {
	tb.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gone || !s.stopped {
		tb.Fatal("pgtest: StartAgain of a server that is not stopped")
	}
	if err := s.pgctlStart(); err != nil {
		tb.Fatal(err)
	}
	s.stopped = false
}

// binDir finds the directory of initdb and pg_ctl.
func binDir() (string, error) {
	if _, err := os.Stat(filepath.Join(debianBin, "initdb")); err == nil {
		return debianBin, nil
	}
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		dir := strings.TrimSpace(string(out))
		if _, err := os.Stat(filepath.Join(dir, "initdb")); err == nil {
			return dir, nil
		}
	}
	initdb, err := exec.LookPath("initdb")
	if err != nil {
		return "", fmt.Errorf("%w: no initdb in %s, pg_config --bindir or PATH", errMissing, debianBin)
	}
	if _, err := exec.LookPath("pg_ctl"); err != nil {
		return "", fmt.Errorf("%w: initdb but no pg_ctl on the PATH", errMissing)
	}
	return filepath.Dir(initdb), nil
}

// credential returns who to run PostgreSQL as: nil (this process's user),
// or, as root, the postgres user.
func credential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("%w: running as root, and no postgres user to run the server as: %v", errMissing, err)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err := errors.Join(err1, err2); err != nil {
		return nil, fmt.Errorf("pgtest: user postgres: %w", err)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}, nil
}

// start makes a directory, runs initdb in it and starts the server.
func start() (*Server, error) {
	bin, err := binDir()
	if err != nil {
		return nil, err
	}
	cred, err := credential()
	if err != nil {
		return nil, err
	}
	// Not t.TempDir: its parents are 0700 and root's, out of the postgres
	// user's reach. The path stays short, as the socket's must (108 bytes).
	dir, err := os.MkdirTemp(tempRoot(), "pgtest-")
	if err != nil {
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	s := &Server{bin: bin, dir: dir, cred: cred}
	ok := false
	defer func() {
		if !ok {
			s.shutdown()
		}
	}()
	if err := os.Mkdir(filepath.Join(dir, "sock"), 0o700); err != nil {
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	if cred != nil {
		for _, p := range []string{dir, filepath.Join(dir, "sock")} {
			if err := os.Chown(p, int(cred.Uid), int(cred.Gid)); err != nil {
				return nil, fmt.Errorf("pgtest: %w", err)
			}
		}
	}
	if err := s.startWatchdog(); err != nil {
		return nil, err
	}
	if err := s.run("initdb", "--no-sync", "--no-instructions", "-A", "trust", "-U", "postgres",
		"-E", "UTF8", "--locale=C", "-D", filepath.Join(dir, "data")); err != nil {
		return nil, err
	}
	// The port is free when asked, but another process may take it before
	// the server does: then try another.
	for try := 0; ; try++ {
		if s.port, err = freePort(); err != nil {
			return nil, err
		}
		if err = s.pgctlStart(); err == nil || try == 2 {
			break
		}
	}
	if err != nil {
		return nil, err
	}
	ok = true
	return s, nil
}

// shmDir is a RAM file system on Linux: a server there makes databases
// ten times as fast as on a disk (CREATE DATABASE writes some 250 files).
const shmDir = "/dev/shm"

// minShmFree is the room in shmDir pgtest wants before it uses it: a
// server takes some 40 MB, and 8 MB a database.
const minShmFree = 1 << 30

// tempRoot returns where servers' directories go: shmDir if it is there,
// writable and roomy, else the usual temporary directory.
func tempRoot() string {
	var st syscall.Statfs_t
	if syscall.Statfs(shmDir, &st) != nil || st.Bavail*uint64(st.Bsize) < minShmFree || syscall.Access(shmDir, 2 /* W_OK */) != nil {
		return os.TempDir()
	}
	return shmDir
}

// freePort returns a loopback TCP port that nothing listens on now.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pgtest: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// pgctlStart starts the server and waits until it takes connections.
func (s *Server) pgctlStart() error {
	opts := strings.Join([]string{
		"-c listen_addresses=127.0.0.1",
		"-c port=" + strconv.Itoa(s.port),
		"-c unix_socket_directories=" + filepath.Join(s.dir, "sock"),
		"-c fsync=off",
		"-c synchronous_commit=off",
		"-c full_page_writes=off",
		"-c max_connections=200",
		"-c shared_buffers=32MB",
	}, " ")
	return s.pgctl("-w", "-t", "30", "-l", filepath.Join(s.dir, "log"), "-o", opts, "start")
}

// pgctl runs pg_ctl on the server's data directory.
func (s *Server) pgctl(args ...string) error {
	return s.run("pg_ctl", append([]string{"-D", filepath.Join(s.dir, "data")}, args...)...)
}

// run runs one of the server's programs, as the server's user.
func (s *Server) run(prog string, args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(s.bin, prog), args...)
	cmd.Dir = s.dir
	cmd.Env = append(os.Environ(), "LC_ALL=C", "PGTZ=UTC")
	if s.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(out.String())
		if log, lerr := os.ReadFile(filepath.Join(s.dir, "log")); lerr == nil && len(log) > 0 {
			msg += "\nserver log:\n" + string(tail(log, 2000))
		}
		return fmt.Errorf("pgtest: %s %s: %w\n%s", prog, strings.Join(args, " "), err, msg)
	}
	return nil
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// watchdogScript waits for its stdin to close (this process exiting, or
// shutdown), then stops the server at once if it runs (SIGQUIT to the
// postmaster is an immediate shutdown) and removes the directory.
const watchdogScript = `read -r _ || true
pid=$(head -n 1 "$1/data/postmaster.pid" 2>/dev/null) && kill -QUIT "$pid" 2>/dev/null
for i in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
rm -rf "$1"`

// startWatchdog starts the process that cleans up after this one if it
// dies without doing so itself. It is in a process group of its own, out
// of reach of a terminal's interrupt aimed at the test.
func (s *Server) startWatchdog() error {
	r, w, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	defer r.Close()
	cmd := exec.Command("/bin/sh", "-c", watchdogScript, "pgtest-watchdog", s.dir)
	cmd.Stdin = r
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		w.Close()
		return fmt.Errorf("pgtest: watchdog: %w", err)
	}
	s.watchdog, s.wdPipe = cmd, w
	return nil
}

// shutdown stops the server for good and removes its directory.
func (s *Server) shutdown() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gone {
		return nil
	}
	s.gone = true
	var err error
	if _, serr := os.Stat(filepath.Join(s.dir, "data", "postmaster.pid")); serr == nil {
		err = s.pgctl("-m", "immediate", "stop")
	}
	if s.wdPipe != nil {
		s.wdPipe.Close()
		s.watchdog.Wait()
	}
	if rerr := os.RemoveAll(s.dir); rerr != nil && err == nil {
		err = fmt.Errorf("pgtest: %w", rerr)
	}
	return err
}
