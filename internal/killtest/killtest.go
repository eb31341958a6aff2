// Package killtest is the harness of the crash tests: it runs a test's
// child (the test binary itself, running one test function that writes and
// prints an acknowledgement line per durable write), kills it with SIGKILL
// at a random moment, and returns what it printed, so that the test can
// check after recovery that every acknowledged write survived.
package killtest

import (
	"bufio"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Run starts the test binary running only the test named child, with env
// added to its environment. If ready is not empty it waits (up to 30 s) for
// a line starting with ready; then it lets the child run for a random time
// in [min, max), kills it with SIGKILL and returns the lines the child
// printed on stdout. The last line may be cut short by the kill. The
// child's stderr goes to the test's.
func Run(t *testing.T, child string, env []string, ready string, min, max time.Duration) []string {
	t.Helper()
	c := Start(t, child, env, ready)
	time.Sleep(min + time.Duration(rand.Int64N(int64(max-min))))
	return c.Kill()
}

// Child is a child started by Start, for a test that chooses the moment of
// the kill itself, such as one that talks to a server in the child.
type Child struct {
	// Ready is the line starting with Start's ready, or "".
	Ready string

	cmd  *exec.Cmd
	done chan struct{}
	mu   sync.Mutex
	out  []string
}

// Start starts the child as Run does and, if ready is not empty, waits (up
// to 30 s) for a line starting with ready. The caller must call Kill.
func Start(t *testing.T, child string, env []string, ready string) *Child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^"+child+"$")
	cmd.Env = append(os.Environ(), env...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &Child{cmd: cmd, done: make(chan struct{})}
	started := make(chan string, 1)
	go func() {
		defer close(c.done)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if ready != "" && strings.HasPrefix(sc.Text(), ready) {
				select {
				case started <- sc.Text():
				default:
				}
			}
			c.mu.Lock()
			c.out = append(c.out, sc.Text())
			c.mu.Unlock()
		}
	}()
	if ready != "" {
		select {
		case c.Ready = <-started:
		case <-c.done:
			select {
			case c.Ready = <-started: // printed, then exited
			default:
				cmd.Wait()
				t.Fatalf("%s exited before printing %q", child, ready)
			}
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			t.Fatalf("%s printed no %q in 30 s", child, ready)
		}
	}
	return c
}

// Kill kills the child with SIGKILL, waits for it, and returns the lines it
// printed on stdout. The last line may be cut short by the kill.
func (c *Child) Kill() []string {
	c.cmd.Process.Signal(syscall.SIGKILL)
	<-c.done
	c.cmd.Wait()
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.out
}
