package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// Module is a program a Supervisor runs as a child process and restarts
// when it exits.
type Module struct {
	// Name names the module in events and in Stop and Restart: unique
	// within a Supervisor.
	Name string
	// Path and Args are the program and its arguments (Args without the
	// program's name).
	Path string
	Args []string
	// Env is the child's environment; nil means the supervisor's.
	Env []string
	// Dir is the child's working directory; empty means the supervisor's.
	Dir string
	// Stdout and Stderr receive the child's output; nil discards it.
	Stdout, Stderr io.Writer
}

// SupervisorConfig configures a Supervisor. The zero value means the
// defaults DefaultSupervisorConfig spells out.
type SupervisorConfig struct {
	// MinBackoff is the wait before restarting a module that exited, the
	// first time; each exit in a row doubles it up to MaxBackoff. A run
	// that lasted StableAfter starts the count again.
	MinBackoff, MaxBackoff, StableAfter time.Duration
	// A module that exits ThrottleCrashes times within ThrottleWindow is
	// throttled: its next start waits ThrottleWait (as Postfix's master
	// does with a service that keeps dying), so that one crashing at
	// start is never restarted in a tight loop.
	ThrottleCrashes int
	ThrottleWindow  time.Duration
	ThrottleWait    time.Duration
	// StopTimeout is how long Stop, Restart and Close wait after SIGTERM
	// before they send SIGKILL.
	StopTimeout time.Duration
	// EventLog, when set, is a file every Event is appended to as a line
	// of JSON, for a host program or an admin API to read.
	EventLog string
	// MaxEvents bounds the events Events keeps in memory.
	MaxEvents int
	// Logger receives a line per event. Nil means slog.Default().
	Logger *slog.Logger
}

// DefaultSupervisorConfig returns the defaults: restarts after 100 ms
// doubling to 30 s, reset after 10 s of running; throttled for 60 s after
// 5 exits in a minute; 10 s from SIGTERM to SIGKILL; 1,000 events kept.
func DefaultSupervisorConfig() SupervisorConfig {
	return SupervisorConfig{
		MinBackoff: 100 * time.Millisecond, MaxBackoff: 30 * time.Second, StableAfter: 10 * time.Second,
		ThrottleCrashes: 5, ThrottleWindow: time.Minute, ThrottleWait: time.Minute,
		StopTimeout: 10 * time.Second, MaxEvents: 1000,
	}
}

// Validate reports every problem of c at once, each wrapping ErrInvalid.
func (c SupervisorConfig) Validate() error {
	var errs []error
	for name, d := range map[string]time.Duration{"MinBackoff": c.MinBackoff, "MaxBackoff": c.MaxBackoff, "StableAfter": c.StableAfter,
		"ThrottleWindow": c.ThrottleWindow, "ThrottleWait": c.ThrottleWait, "StopTimeout": c.StopTimeout} {
		if d < 0 {
			errs = append(errs, fmt.Errorf("%w: supervisor: negative %s", ErrInvalid, name))
		}
	}
	if c.ThrottleCrashes < 0 || c.MaxEvents < 0 {
		errs = append(errs, fmt.Errorf("%w: supervisor: negative ThrottleCrashes or MaxEvents", ErrInvalid))
	}
	if c.MinBackoff > 0 && c.MaxBackoff > 0 && c.MinBackoff > c.MaxBackoff {
		errs = append(errs, fmt.Errorf("%w: supervisor: MinBackoff above MaxBackoff", ErrInvalid))
	}
	return errors.Join(errs...)
}

func (c SupervisorConfig) withDefaults() SupervisorConfig {
	d := DefaultSupervisorConfig()
	set := func(v *time.Duration, def time.Duration) {
		if *v == 0 {
			*v = def
		}
	}
	set(&c.MinBackoff, d.MinBackoff)
	set(&c.MaxBackoff, d.MaxBackoff)
	set(&c.StableAfter, d.StableAfter)
	set(&c.ThrottleWindow, d.ThrottleWindow)
	set(&c.ThrottleWait, d.ThrottleWait)
	set(&c.StopTimeout, d.StopTimeout)
	if c.ThrottleCrashes == 0 {
		c.ThrottleCrashes = d.ThrottleCrashes
	}
	if c.MaxEvents == 0 {
		c.MaxEvents = d.MaxEvents
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// EventKind says what happened to a module.
type EventKind string

// The kinds of Event.
const (
	EventStarted   EventKind = "started"   // a child process started (PID)
	EventFailed    EventKind = "failed"    // it could not be started (Err)
	EventExited    EventKind = "exited"    // it ended (ExitCode or Signal), and will be restarted after Delay
	EventThrottled EventKind = "throttled" // it ended too often: restarted after Delay, the throttle's wait
	EventStopped   EventKind = "stopped"   // it ended because Stop, Restart or Close asked
)

// Event is one thing that happened to a module.
type Event struct {
	Time     time.Time     `json:"time"`
	Module   string        `json:"module"`
	Kind     EventKind     `json:"kind"`
	PID      int           `json:"pid,omitempty"`
	ExitCode int           `json:"exit_code,omitempty"` // -1 when a signal ended it
	Signal   string        `json:"signal,omitempty"`
	Delay    time.Duration `json:"delay,omitempty"` // until the restart
	Err      string        `json:"err,omitempty"`
}

// ModuleStatus is a module's state now.
type ModuleStatus struct {
	Name     string
	PID      int // 0 when no process runs
	Since    time.Time
	Restarts int
}

// ErrNoModule is returned for a module name the Supervisor does not run.
var ErrNoModule = errors.New("cluster: no such module")

// Supervisor runs modules as child processes: it restarts one that exits
// or is killed, with a backoff and a throttle after repeated exits, and
// records every start, exit and stop as an Event. Its methods are safe for
// concurrent use.
type Supervisor struct {
	cfg SupervisorConfig
	log *slog.Logger

	mu      sync.Mutex
	modules map[string]*supervised
	events  []Event
	logFile *os.File
	closed  bool
	wg      sync.WaitGroup
}

// supervised is one module and its loop's state.
type supervised struct {
	m        Module
	stop     chan struct{} // closed to end the loop for good
	restart  chan struct{} // a graceful restart asked
	done     chan struct{} // the loop ended
	pid      int
	since    time.Time
	restarts int
}

// NewSupervisor makes a Supervisor. It opens the event log, if any.
func NewSupervisor(cfg SupervisorConfig) (*Supervisor, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	s := &Supervisor{cfg: cfg, log: cfg.Logger.With("component", "supervisor"), modules: map[string]*supervised{}}
	if cfg.EventLog != "" {
		f, err := os.OpenFile(cfg.EventLog, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
		if err != nil {
			return nil, fmt.Errorf("cluster: supervisor: event log: %w", err)
		}
		s.logFile = f
	}
	return s, nil
}

// Add starts module m and keeps it running until Stop or Close.
func (s *Supervisor) Add(m Module) error {
	if m.Name == "" || m.Path == "" {
		return fmt.Errorf("%w: supervisor: a module needs a Name and a Path", ErrInvalid)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if _, ok := s.modules[m.Name]; ok {
		return fmt.Errorf("%w: supervisor: module %s", ErrExists, m.Name)
	}
	sv := &supervised{m: m, stop: make(chan struct{}), restart: make(chan struct{}, 1), done: make(chan struct{})}
	s.modules[m.Name] = sv
	s.wg.Add(1)
	go s.run(sv)
	return nil
}

// run is a module's loop: start, wait, record, back off, again.
func (s *Supervisor) run(sv *supervised) {
	defer s.wg.Done()
	defer close(sv.done)
	backoff := time.Duration(0)
	var exits []time.Time
	for {
		cmd := exec.Command(sv.m.Path, sv.m.Args...)
		cmd.Env, cmd.Dir, cmd.Stdout, cmd.Stderr = sv.m.Env, sv.m.Dir, sv.m.Stdout, sv.m.Stderr
		cmd.SysProcAttr = childAttr()
		started := time.Now()
		if err := cmd.Start(); err != nil {
			s.record(Event{Module: sv.m.Name, Kind: EventFailed, Err: err.Error()})
		} else {
			s.setPID(sv, cmd.Process.Pid, started)
			s.record(Event{Module: sv.m.Name, Kind: EventStarted, PID: cmd.Process.Pid})
			waited := make(chan error, 1)
			go func() { waited <- cmd.Wait() }()
			var err error
			asked := false
			select {
			case err = <-waited:
			case <-sv.stop:
				asked = true
				err = s.terminate(cmd, waited)
			case <-sv.restart:
				asked = true
				err = s.terminate(cmd, waited)
			}
			s.setPID(sv, 0, time.Now())
			ev := exitEvent(sv.m.Name, cmd.Process.Pid, cmd.ProcessState, err)
			if asked {
				ev.Kind = EventStopped
				s.record(ev)
				select {
				case <-sv.stop:
					return
				default:
					backoff = 0 // a restart asked for: at once
					continue
				}
			}
			if time.Since(started) >= s.cfg.StableAfter {
				backoff = 0
			}
			ev.Kind = EventExited
			now := time.Now()
			exits = append(exits, now)
			for len(exits) > 0 && now.Sub(exits[0]) > s.cfg.ThrottleWindow {
				exits = exits[1:]
			}
			backoff = nextBackoff(backoff, s.cfg)
			ev.Delay = backoff
			if len(exits) >= s.cfg.ThrottleCrashes {
				ev.Kind, ev.Delay = EventThrottled, max(backoff, s.cfg.ThrottleWait)
				exits = exits[:0]
			}
			s.record(ev)
			if !s.wait(sv, ev.Delay) {
				return
			}
			continue
		}
		backoff = nextBackoff(backoff, s.cfg)
		if !s.wait(sv, backoff) {
			return
		}
	}
}

func nextBackoff(b time.Duration, cfg SupervisorConfig) time.Duration {
	if b == 0 {
		return cfg.MinBackoff
	}
	return min(2*b, cfg.MaxBackoff)
}

// wait sleeps d, or until the module is stopped (false) or a restart is
// asked (true, at once).
func (s *Supervisor) wait(sv *supervised, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-sv.restart:
		return true
	case <-sv.stop:
		return false
	}
}

// terminate sends SIGTERM, then SIGKILL after StopTimeout, and returns
// Wait's error.
func (s *Supervisor) terminate(cmd *exec.Cmd, waited chan error) error {
	cmd.Process.Signal(syscall.SIGTERM)
	t := time.NewTimer(s.cfg.StopTimeout)
	defer t.Stop()
	select {
	case err := <-waited:
		return err
	case <-t.C:
		cmd.Process.Kill()
		return <-waited
	}
}

// exitEvent describes how a process ended.
func exitEvent(name string, pid int, st *os.ProcessState, err error) Event {
	ev := Event{Module: name, PID: pid}
	if st == nil {
		if err != nil {
			ev.Err = err.Error()
		}
		return ev
	}
	ev.ExitCode = st.ExitCode()
	if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		ev.Signal = ws.Signal().String()
	}
	return ev
}

func (s *Supervisor) setPID(sv *supervised, pid int, since time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if pid != 0 && sv.pid == 0 && !sv.since.IsZero() {
		sv.restarts++
	}
	sv.pid, sv.since = pid, since
}

// record keeps ev, appends it to the event log and logs it.
func (s *Supervisor) record(ev Event) {
	ev.Time = time.Now()
	s.mu.Lock()
	s.events = append(s.events, ev)
	if len(s.events) > s.cfg.MaxEvents {
		s.events = s.events[len(s.events)-s.cfg.MaxEvents:]
	}
	if s.logFile != nil {
		b, _ := json.Marshal(ev)
		if _, err := s.logFile.Write(append(b, '\n')); err != nil {
			s.log.Error("event log write failed", "err", err)
		}
	}
	s.mu.Unlock()
	level := slog.LevelInfo
	if ev.Kind == EventExited || ev.Kind == EventThrottled || ev.Kind == EventFailed {
		level = slog.LevelWarn
	}
	s.log.Log(context.Background(), level, "module "+string(ev.Kind), "module", ev.Module, "pid", ev.PID,
		"exit_code", ev.ExitCode, "signal", ev.Signal, "restart_in", ev.Delay, "err", ev.Err)
}

// Events returns the events kept, oldest first.
func (s *Supervisor) Events() []Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Event(nil), s.events...)
}

// Status returns each module's state, in no particular order.
func (s *Supervisor) Status() []ModuleStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	var st []ModuleStatus
	for name, sv := range s.modules {
		st = append(st, ModuleStatus{Name: name, PID: sv.pid, Since: sv.since, Restarts: sv.restarts})
	}
	return st
}

// Stop stops module name gracefully (SIGTERM, then SIGKILL after
// StopTimeout) and forgets it: it is not restarted. It returns once the
// process has ended, or with ctx's error.
func (s *Supervisor) Stop(ctx context.Context, name string) error {
	s.mu.Lock()
	sv, ok := s.modules[name]
	if ok {
		delete(s.modules, name)
		close(sv.stop)
	}
	s.mu.Unlock()
	if !ok {
		return fmt.Errorf("%w: %s", ErrNoModule, name)
	}
	select {
	case <-sv.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Restart stops module name gracefully and starts it again at once,
// without touching the others.
func (s *Supervisor) Restart(name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	sv, ok := s.modules[name]
	if !ok {
		return fmt.Errorf("%w: %s", ErrNoModule, name)
	}
	select {
	case sv.restart <- struct{}{}:
	default: // one is already asked
	}
	return nil
}

// Close stops every module gracefully and closes the event log. It
// returns once every process has ended, or with ctx's error.
func (s *Supervisor) Close(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	s.closed = true
	for name, sv := range s.modules {
		close(sv.stop)
		delete(s.modules, name)
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		return ctx.Err()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.logFile != nil {
		return s.logFile.Close()
	}
	return nil
}
