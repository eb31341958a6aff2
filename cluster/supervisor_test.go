package cluster

import (
	"bufio"
	"encoding/json"
	"errors"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// The test binary is the supervised program: run with childEnv set, it
// does what the variable says (see TestSupervisorChild).
const childEnv = "MAILSYS_SUPERVISOR_CHILD"

// TestSupervisorChild is the child's entry point; it skips in a normal run.
func TestSupervisorChild(t *testing.T) {
	switch os.Getenv(childEnv) {
	case "":
		t.Skip("the supervised program of the other tests")
	case "serve": // run until SIGTERM, then exit 0
		c := make(chan os.Signal, 1)
		signal.Notify(c, syscall.SIGTERM)
		<-c
		os.Exit(0)
	case "stubborn": // ignore SIGTERM, and say so in the ready file
		signal.Ignore(syscall.SIGTERM)
		os.WriteFile(os.Getenv(childEnv+"_READY"), nil, 0o600)
		time.Sleep(time.Minute)
		os.Exit(0)
	case "crash": // fail at start up
		os.Exit(3)
	}
}

func module(t *testing.T, name, mode string) Module {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return Module{Name: name, Path: exe, Args: []string{"-test.run", "^TestSupervisorChild$"}, Env: append(os.Environ(), childEnv+"="+mode)}
}

func newSupervisor(t *testing.T, cfg SupervisorConfig) *Supervisor {
	t.Helper()
	s, err := NewSupervisor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(t.Context()) })
	return s
}

func pidOf(s *Supervisor, name string) int {
	for _, st := range s.Status() {
		if st.Name == name {
			return st.PID
		}
	}
	return 0
}

func count(evs []Event, name string, kind EventKind) int {
	n := 0
	for _, e := range evs {
		if e.Module == name && e.Kind == kind {
			n++
		}
	}
	return n
}

// TestSupervisorRestartsKilled: a module killed with SIGKILL is restarted,
// and the event says which process, which signal and when; the other
// module is not touched.
func TestSupervisorRestartsKilled(t *testing.T) {
	log := filepath.Join(t.TempDir(), "events.jsonl")
	s := newSupervisor(t, SupervisorConfig{MinBackoff: 50 * time.Millisecond, EventLog: log})
	for _, n := range []string{"ud", "ms"} {
		if err := s.Add(module(t, n, "serve")); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 10*time.Second, "both started", func() bool { return pidOf(s, "ud") != 0 && pidOf(s, "ms") != 0 })
	ud, ms := pidOf(s, "ud"), pidOf(s, "ms")
	before := time.Now()
	if err := syscall.Kill(ud, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "ud restarted", func() bool { p := pidOf(s, "ud"); return p != 0 && p != ud })
	if pidOf(s, "ms") != ms {
		t.Errorf("ms was restarted too")
	}
	var exit *Event
	for _, e := range s.Events() {
		if e.Module == "ud" && e.Kind == EventExited {
			exit = &e
		}
	}
	if exit == nil || exit.PID != ud || exit.Signal != "killed" || exit.ExitCode != -1 || exit.Time.Before(before) || exit.Delay <= 0 {
		t.Fatalf("exit event %+v, want pid %d killed after %v with a delay", exit, ud, before)
	}
	for _, st := range s.Status() {
		if st.Name == "ud" && st.Restarts != 1 {
			t.Errorf("ud restarts = %d, want 1", st.Restarts)
		}
	}
	// The event log has the same events, a JSON line each.
	f, err := os.Open(log)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var logged []Event
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var e Event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("event log line %q: %v", sc.Text(), err)
		}
		logged = append(logged, e)
	}
	if count(logged, "ud", EventExited) != 1 || count(logged, "ud", EventStarted) != 2 || count(logged, "ms", EventStarted) != 1 {
		t.Errorf("event log %+v", logged)
	}
}

// TestSupervisorThrottles: a module that crashes at start up is restarted
// with a growing backoff, then throttled, never in a tight loop.
func TestSupervisorThrottles(t *testing.T) {
	s := newSupervisor(t, SupervisorConfig{MinBackoff: 20 * time.Millisecond, MaxBackoff: 100 * time.Millisecond,
		ThrottleCrashes: 3, ThrottleWindow: 10 * time.Second, ThrottleWait: 2 * time.Second})
	if err := s.Add(module(t, "bad", "crash")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "throttled", func() bool { return count(s.Events(), "bad", EventThrottled) == 1 })
	at := time.Now()
	time.Sleep(time.Second)
	evs := s.Events()
	if n := count(evs, "bad", EventStarted); n != 3 {
		t.Errorf("%d starts before and during the throttle, want 3", n)
	}
	var delays []time.Duration
	for _, e := range evs {
		if e.Kind == EventExited || e.Kind == EventThrottled {
			if e.ExitCode != 3 {
				t.Errorf("exit event %+v, want exit code 3", e)
			}
			delays = append(delays, e.Delay)
		}
	}
	if len(delays) != 3 || delays[0] != 20*time.Millisecond || delays[1] != 40*time.Millisecond || delays[2] != 2*time.Second {
		t.Errorf("delays %v, want 20ms 40ms then the throttle's 2s", delays)
	}
	waitFor(t, 5*time.Second, "started again after the throttle", func() bool { return count(s.Events(), "bad", EventStarted) == 4 })
	if d := time.Since(at); d < time.Second {
		t.Errorf("started again %v after the throttle began, want about 2s", d)
	}
}

// TestSupervisorStopRestart: Stop ends a module gracefully for good,
// SIGKILL after StopTimeout for one that ignores SIGTERM; Restart starts
// one again at once; Close stops the rest.
func TestSupervisorStopRestart(t *testing.T) {
	s := newSupervisor(t, SupervisorConfig{StopTimeout: 300 * time.Millisecond})
	ready := filepath.Join(t.TempDir(), "ready")
	for n, mode := range map[string]string{"front": "serve", "ud": "serve", "ms": "stubborn"} {
		m := module(t, n, mode)
		m.Env = append(m.Env, childEnv+"_READY="+ready)
		if err := s.Add(m); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Add(module(t, "front", "serve")); !errors.Is(err, ErrExists) {
		t.Errorf("Add of a second front: %v, want ErrExists", err)
	}
	waitFor(t, 10*time.Second, "all started", func() bool {
		return pidOf(s, "front") != 0 && pidOf(s, "ud") != 0 && pidOf(s, "ms") != 0
	})
	waitFor(t, 10*time.Second, "ms ignoring SIGTERM", func() bool { _, err := os.Stat(ready); return err == nil })
	ud := pidOf(s, "ud")
	if err := s.Restart("ud"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "ud restarted", func() bool { p := pidOf(s, "ud"); return p != 0 && p != ud })
	if err := s.Stop(t.Context(), "front"); err != nil {
		t.Fatal(err)
	}
	begin := time.Now()
	if err := s.Stop(t.Context(), "ms"); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(begin); d < 300*time.Millisecond || d > 5*time.Second {
		t.Errorf("Stop of a module ignoring SIGTERM took %v, want StopTimeout then SIGKILL", d)
	}
	evs := s.Events()
	for _, e := range evs {
		if e.Kind == EventExited || e.Kind == EventThrottled {
			t.Errorf("an exit that was asked for was taken for a crash: %+v", e)
		}
	}
	if count(evs, "front", EventStopped) != 1 || count(evs, "ud", EventStopped) != 1 || count(evs, "ms", EventStopped) != 1 {
		t.Errorf("stop events: %+v", evs)
	}
	for _, e := range evs {
		if e.Module == "ms" && e.Kind == EventStopped && e.Signal != "killed" {
			t.Errorf("ms stopped by %q, want killed", e.Signal)
		}
	}
	if err := s.Stop(t.Context(), "front"); !errors.Is(err, ErrNoModule) {
		t.Errorf("second Stop: %v, want ErrNoModule", err)
	}
	if err := s.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	if len(s.Status()) != 0 {
		t.Errorf("modules left after Close: %+v", s.Status())
	}
	if err := s.Add(module(t, "late", "serve")); !errors.Is(err, ErrClosed) {
		t.Errorf("Add after Close: %v, want ErrClosed", err)
	}
}
