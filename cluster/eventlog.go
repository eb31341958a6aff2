package cluster

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
)

// maxEventLogRead bounds what ReadEventLog reads of a log's end.
const maxEventLogRead = 4 << 20

// ReadEventLog returns the last limit events of a supervisor's event log
// (SupervisorConfig.EventLog), oldest first. It reads at most the log's
// last 4 MiB, skipping a line cut by that bound or by a crash mid-write,
// so that a log of any size is read in bounded time and memory. A log
// that does not exist yet has no events.
func ReadEventLog(path string, limit int) ([]Event, error) {
	if limit <= 0 {
		return nil, nil
	}
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("cluster: event log: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("cluster: event log: %w", err)
	}
	off := max(st.Size()-maxEventLogRead, 0)
	buf := make([]byte, st.Size()-off)
	if _, err := f.ReadAt(buf, off); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("cluster: event log: %w", err)
	}
	if off > 0 {
		// The first line is cut: start after it.
		if i := bytes.IndexByte(buf, '\n'); i >= 0 {
			buf = buf[i+1:]
		} else {
			buf = nil
		}
	}
	lines := bytes.Split(buf, []byte{'\n'})
	var out []Event
	for i := len(lines) - 1; i >= 0 && len(out) < limit; i-- {
		var ev Event
		if len(lines[i]) == 0 || json.Unmarshal(lines[i], &ev) != nil {
			continue // the end of the file, or a line a crash cut
		}
		out = append(out, ev)
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out, nil
}
