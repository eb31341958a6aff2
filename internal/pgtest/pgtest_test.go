package pgtest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

func TestMain(m *testing.M) { Main(m) }

func connect(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// TestDatabasesApart: each Start is a database of its own, on PostgreSQL
// 15, with fsync off.
func TestDatabasesApart(t *testing.T) {
	ctx := context.Background()
	a, b := connect(t, Start(t)), connect(t, Start(t))
	if _, err := a.Exec(ctx, "CREATE TABLE x (v int); INSERT INTO x VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := b.QueryRow(ctx, "SELECT count(*) FROM pg_tables WHERE tablename = 'x'").Scan(&n); err != nil || n != 0 {
		t.Fatalf("the second database sees %d tables x (err %v), want 0", n, err)
	}
	var version, fsync string
	if err := a.QueryRow(ctx, "SHOW server_version").Scan(&version); err != nil {
		t.Fatal(err)
	}
	if err := a.QueryRow(ctx, "SHOW fsync").Scan(&fsync); err != nil || fsync != "off" {
		t.Fatalf("fsync = %q (err %v), want off", fsync, err)
	}
	t.Logf("PostgreSQL %s", version)
	if !strings.HasPrefix(version, "15") && filepath.Dir(Shared(t).bin) == "/usr/lib/postgresql/15" {
		t.Fatalf("server version %s from %s", version, Shared(t).bin)
	}
}

// TestRestart: Restart cuts connections and the server comes back on the
// same port with the data.
func TestRestart(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := New(t)
	dsn := s.NewDatabase(t)
	conn := connect(t, dsn)
	if _, err := conn.Exec(ctx, "CREATE TABLE x (v int); INSERT INTO x VALUES (7)"); err != nil {
		t.Fatal(err)
	}
	s.Restart(t)
	if _, err := conn.Exec(ctx, "SELECT 1"); err == nil {
		t.Fatal("a connection from before the restart still works")
	}
	var v int
	if err := connect(t, dsn).QueryRow(ctx, "SELECT v FROM x").Scan(&v); err != nil || v != 7 {
		t.Fatalf("after the restart: %d, %v; want 7", v, err)
	}
	s.Stop(t)
	if c, err := pgx.Connect(ctx, dsn); err == nil {
		c.Close(ctx)
		t.Fatal("connected to a stopped server")
	}
	s.StartAgain(t)
	connect(t, dsn)
}

// TestNoneLeftBehind: after the server's test, its postmaster is gone and
// its directory removed.
func TestNoneLeftBehind(t *testing.T) {
	t.Parallel()
	var pid int
	var dir string
	t.Run("server", func(t *testing.T) {
		s := New(t)
		dir = s.dir
		pid = postmasterPID(t, dir)
	})
	if pid == 0 {
		t.Fatal("no server")
	}
	// pg_ctl stop returns once the postmaster has removed its pid file,
	// a moment before the process itself ends.
	for deadline := time.Now().Add(5 * time.Second); alive(pid) && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	if alive(pid) {
		t.Errorf("postmaster %d still runs 5 s after its test ended", pid)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s remains: %v", dir, err)
	}
}

// TestWatchdog: a test binary that dies without cleaning up (os.Exit in a
// test, as a timeout's panic would) leaves no server behind.
func TestWatchdog(t *testing.T) {
	if os.Getenv("PGTEST_CHILD") != "" {
		s := New(t)
		fmt.Printf("dir=%s pid=%d\n", s.dir, postmasterPID(t, s.dir))
		os.Exit(3)
	}
	t.Parallel()
	Shared(t) // skips or fails as the child would, when PostgreSQL is missing
	cmd := exec.Command(os.Args[0], "-test.run=^TestWatchdog$")
	cmd.Env = append(os.Environ(), "PGTEST_CHILD=1")
	out, err := cmd.Output()
	if ee := (*exec.ExitError)(nil); !errors.As(err, &ee) || ee.ExitCode() != 3 {
		t.Fatalf("child: %v\n%s", err, out)
	}
	var dir string
	var pid int
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		if d, p, ok := strings.Cut(sc.Text(), " pid="); ok && strings.HasPrefix(d, "dir=") {
			dir = strings.TrimPrefix(d, "dir=")
			pid, _ = strconv.Atoi(p)
		}
	}
	if pid == 0 {
		t.Fatalf("child said:\n%s", out)
	}
	deadline := time.Now().Add(10 * time.Second)
	for alive(pid) || exists(dir) {
		if time.Now().After(deadline) {
			syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("10 s after its test binary died, postmaster %d alive %v, %s there %v", pid, alive(pid), dir, exists(dir))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func postmasterPID(t *testing.T, dir string) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "data", "postmaster.pid"))
	if err != nil {
		t.Fatal(err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	pid, err := strconv.Atoi(line)
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

// alive reports whether process pid runs (and is not a zombie).
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	_, rest, _ := strings.Cut(string(b), ") ")
	return !strings.HasPrefix(rest, "Z")
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
