package cluster

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// ReadEventLog returns the last events, oldest first, skipping a line cut
// by a crash, and reads a huge log's end only.
func TestReadEventLog(t *testing.T) {
	path := filepath.Join(t.TempDir(), "supervisor.jsonl")
	if evs, err := ReadEventLog(path, 10); err != nil || len(evs) != 0 {
		t.Fatalf("a log not made yet: %v, %v", evs, err)
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	// Over 4 MiB of events, then a line a crash cut.
	n := 0
	for size := 0; size < maxEventLogRead+(1<<20); n++ {
		b, _ := json.Marshal(Event{Time: time.Unix(int64(n), 0).UTC(), Module: "ms" + strconv.Itoa(n), Kind: EventExited, PID: n, ExitCode: -1, Signal: "killed"})
		f.Write(append(b, '\n'))
		size += len(b) + 1
	}
	f.WriteString(`{"time":"2026-12-03T00:00:00Z","module":"cut`)
	f.Close()

	evs, err := ReadEventLog(path, 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 3 {
		t.Fatalf("%d events, want 3", len(evs))
	}
	for i, ev := range evs {
		if want := "ms" + strconv.Itoa(n-3+i); ev.Module != want || ev.Kind != EventExited || ev.Signal != "killed" {
			t.Errorf("event %d: %+v, want module %s", i, ev, want)
		}
	}
	all, err := ReadEventLog(path, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	// Only the last 4 MiB are read: fewer than all, the newest last.
	if len(all) >= n || len(all) < n/2 || all[len(all)-1].Module != "ms"+strconv.Itoa(n-1) {
		t.Fatalf("%d of %d events, last %+v", len(all), n, all[len(all)-1])
	}
}
