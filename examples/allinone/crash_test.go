package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/mailsys/mailsys"
	"github.com/mailsys/mailsys/userdata"
)

// TestCrashBinary builds the real program, runs it, sends mail from eight
// concurrent clients, kills it with SIGKILL in the middle, restarts it, and
// checks that every message that got a 250 is in the mailbox exactly once.
func TestCrashBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	bin := filepath.Join(t.TempDir(), "allinone")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	data := t.TempDir()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()

	start := func() *exec.Cmd {
		cmd := exec.Command(bin, "-data", data, "-smtp", addr, "-submission", "", "-submissions", "", "-imap", "", "-imaps", "", "-pop3", "", "-pop3s", "", "-user", "rcpt@example.test:pw")
		stderr, err := cmd.StderrPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		ready := make(chan struct{})
		go func() {
			sc := bufio.NewScanner(stderr)
			once := sync.Once{}
			for sc.Scan() {
				if strings.Contains(sc.Text(), "ready") {
					once.Do(func() { close(ready) })
				}
			}
		}()
		select {
		case <-ready:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			t.Fatal("the server did not get ready")
		}
		return cmd
	}

	acked := map[string]bool{}
	var mu sync.Mutex
	for round := range 3 {
		cmd := start()
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for w := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					id := fmt.Sprintf("r%d-w%d-m%d", round, w, i)
					c, err := smtp.Dial(addr)
					if err != nil {
						return // the server is gone
					}
					err = c.SendMail("s@example.net", []string{"rcpt@example.test"}, strings.NewReader("Subject: "+id+"\r\n\r\nbody of "+id+"\r\n"))
					c.Close()
					if err != nil {
						return
					}
					mu.Lock()
					acked[id] = true
					mu.Unlock()
				}
			}()
		}
		time.Sleep(time.Duration(300+rand.IntN(700)) * time.Millisecond)
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		close(stop)
		wg.Wait()
	}
	// Restart once more (recovery finishes the deliveries), then stop
	// cleanly and read the mailbox.
	cmd := start()
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("clean shutdown: %v", err)
	}
	ctx := context.Background()
	sys, err := mailsys.Open(ctx, mailsys.Config{DataDir: data, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer sys.Shutdown(ctx)
	u, err := sys.UserDB().LookupAddress(ctx, "rcpt@example.test")
	if err != nil {
		t.Fatal(err)
	}
	inbox, err := sys.UserDB().Folder(ctx, u.ID, userdata.Inbox)
	if err != nil {
		t.Fatal(err)
	}
	subject := regexp.MustCompile(`Subject: (\S+)`)
	seen := map[string]int{}
	err = sys.UserDB().Messages(ctx, u.ID, inbox.ID, nil, func(m *userdata.Message) error {
		b, err := sys.Storage().Open(ctx, m.Ref)
		if err != nil {
			return err
		}
		defer b.Close()
		data, err := io.ReadAll(io.NewSectionReader(b, 0, b.Size()))
		if err != nil {
			return err
		}
		if sm := subject.FindSubmatch(data); sm != nil {
			seen[string(sm[1])]++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for id := range acked {
		if seen[id] != 1 {
			t.Errorf("message %s got a 250 and is in the mailbox %d times", id, seen[id])
		}
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("message %s is in the mailbox %d times", id, n)
		}
	}
	t.Logf("%d messages acknowledged over 3 kills, %d in the mailbox, each once", len(acked), len(seen))
}
