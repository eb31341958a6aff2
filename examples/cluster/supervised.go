package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/mailsys/mailsys/cluster"
	"github.com/mailsys/mailsys/cluster/node"
)

// runSupervised starts the nodes under a cluster.Supervisor, which
// restarts one that exits or is killed (with a backoff, and a throttle
// after repeated crashes) and writes every event to
// DATA/logs/supervisor.jsonl. It prints a node line when each node first
// serves, "node restarted ..." when it serves again after a restart, and
// the cluster ready line once all serve; it stops them all when ctx ends.
func runSupervised(ctx context.Context, o *options, data, self string, files []string) error {
	logs := filepath.Join(data, "logs")
	sup, err := cluster.NewSupervisor(cluster.SupervisorConfig{
		EventLog: filepath.Join(logs, "supervisor.jsonl"),
		Logger:   slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		return err
	}
	ready := make(chan string, 64)
	var logFiles []*os.File
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		sup.Close(sctx)
		for _, f := range logFiles {
			f.Close()
		}
	}()
	addrs := map[string]string{}
	roles := map[string]cluster.Role{}
	for i, path := range files {
		l := o.nodes()[i]
		logf, err := os.OpenFile(filepath.Join(logs, l.id+".log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
		if err != nil {
			return err
		}
		logFiles = append(logFiles, logf)
		addrs[l.id], roles[l.id] = rpcAddrOf(path), l.roles
		id := l.id
		m := cluster.Module{Name: id, Path: self, Args: []string{"-node", path}, Stdout: &lineWriter{line: func(s string) {
			if s == readyLine {
				ready <- id
				return
			}
			fmt.Println(s) // what the node has to say (the demo user)
		}}, Stderr: logf}
		if err := sup.Add(m); err != nil {
			return err
		}
	}
	pid := func(id string) int {
		for _, st := range sup.Status() {
			if st.Name == id {
				return st.PID
			}
		}
		return 0
	}
	up := map[string]bool{}
	deadline := time.After(90 * time.Second)
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for len(up) < len(files) {
		select {
		case id := <-ready:
			up[id] = true
			fmt.Printf("node role=%s id=%s pid=%d addr=%s\n", roles[id], id, pid(id), addrs[id])
		case <-tick.C:
			// A node that ends before it first serves is misconfigured,
			// not crashed: say so now rather than restart it for 90 s.
			for _, ev := range sup.Events() {
				if (ev.Kind == cluster.EventExited || ev.Kind == cluster.EventThrottled || ev.Kind == cluster.EventFailed) && !up[ev.Module] {
					how := fmt.Sprintf("exit code %d", ev.ExitCode)
					switch {
					case ev.Signal != "":
						how = "signal " + ev.Signal
					case ev.Err != "":
						how = ev.Err
					}
					return fmt.Errorf("node %s exited before it was ready (%s); see %s", ev.Module, how, filepath.Join(logs, ev.Module+".log"))
				}
			}
		case <-ctx.Done():
			return nil
		case <-deadline:
			return errors.New("the nodes were not ready within 90 s; see their logs and supervisor.jsonl in " + logs)
		}
	}
	fmt.Printf("cluster ready smtp=%s submission=%s imap=%s pop3=%s\n", o.smtp, o.submission, o.imap, o.pop3)
	for {
		select {
		case <-ctx.Done():
			return nil
		case id := <-ready:
			fmt.Printf("node restarted role=%s id=%s pid=%d addr=%s\n", roles[id], id, pid(id), addrs[id])
		}
	}
}

// rpcAddrOf is the gRPC address in a node's configuration file.
func rpcAddrOf(path string) string {
	f, err := node.LoadFile(path)
	if err != nil {
		return ""
	}
	return f.Listen
}

// lineWriter calls line for each line written to it.
type lineWriter struct {
	mu   sync.Mutex
	buf  []byte
	line func(string)
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		w.line(string(bytes.TrimRight(w.buf[:i], "\r")))
		w.buf = w.buf[i+1:]
	}
	if len(w.buf) > 64<<10 { // a node does not write lines that long
		w.buf = w.buf[:0]
	}
	return len(p), nil
}
