//go:build unix

package txlog

import (
	"bytes"
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mailsys/mailsys/internal/fsutil/fsutiltest"
)

// TestPrivateFiles: whatever the umask, the log's directory is 0700 and
// its segments 0600, and a tree made readable by others is tightened on
// Open, with a log line for each change. It sets the process's umask, so it
// must not run in parallel.
func TestPrivateFiles(t *testing.T) {
	defer syscall.Umask(syscall.Umask(0))
	base := t.TempDir()
	dir := filepath.Join(base, "data", "txlog")
	fill := func(logger *slog.Logger) {
		t.Helper()
		l := openLog(t, dir, func(c *Config) {
			smallSegments(c)
			if logger != nil {
				c.Logger = logger
			}
		})
		for i := range 8 {
			env := Envelope{From: "a@example.test", To: []string{"b@example.test"}, Received: time.Now()}
			if _, err := l.Accept(context.Background(), env, bytes.NewReader(testBody(uint64(i), 12<<10))); err != nil {
				t.Fatal(err)
			}
		}
		closeLog(t, l)
	}
	fill(nil)
	files := fsutiltest.CheckPrivate(t, filepath.Join(base, "data"))
	if len(files) < 2 || !strings.HasPrefix(files[0], "seg-") {
		t.Errorf("want several segments to check, have %v", files)
	}

	fsutiltest.Loosen(t, dir)
	var logs bytes.Buffer
	fill(slog.New(slog.NewTextHandler(&logs, nil)))
	fsutiltest.CheckPrivate(t, dir)
	for _, want := range []string{
		"path=" + dir + " old=0755 new=0700",
		"path=" + filepath.Join(dir, segName(1)) + " old=0644 new=0600",
	} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("the log does not say %q:\n%s", want, logs.String())
		}
	}
}
