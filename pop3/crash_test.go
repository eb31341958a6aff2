package pop3_test

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mailsys/mailsys/internal/killtest"
	"github.com/mailsys/mailsys/pop3"
	"github.com/mailsys/mailsys/userdata"
)

// The crash test: a child process (this test binary) serves POP3 over a
// data directory; the parent logs in, DELEs a few messages, sends QUIT, and
// kills the child with SIGKILL at a moment around the QUIT (before it,
// while the UPDATE state commits, after the +OK). After reopening, the
// INBOX is exactly what it was or exactly that minus the DELE'd messages,
// never anything in between, and always the latter after a +OK to QUIT.

const crashDirEnv = "POP3_CRASH_DIR"

func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		t.Skip("runs only as the child of TestCrash")
	}
	st, db := openStores(t, dir)
	srv, err := pop3.NewServer(pop3.Config{InsecureAuth: true, Logger: slog.New(slog.DiscardHandler)}, db, st)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fmt.Println("ready", l.Addr())
	srv.Serve(l) // until killed
}

func TestCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	dir := t.TempDir()
	st, db := openStores(t, dir)
	u := ensureUser(t, db)
	for i := range 120 {
		deliver(t, st, db, u, fmt.Appendf(nil, "Subject: %d\r\n\r\nmessage %d\r\n", i, i))
	}
	db.Close()
	st.Close()

	rounds := 24
	var committed, kept, acked int
	for round := range rounds {
		before := crashUIDs(t, dir, u)
		// A few messages to DELE, by message number in the snapshot.
		rng := rand.New(rand.NewPCG(uint64(round), 7))
		var nums []int
		for _, i := range rng.Perm(len(before))[:min(len(before), 1+rng.IntN(8))] {
			nums = append(nums, i+1)
		}
		var dele []userdata.UID
		for _, n := range nums {
			dele = append(dele, before[n-1])
		}
		// When to kill, from the moment QUIT is sent: a quarter of the
		// rounds before it, half within 3 ms (around the commit), a
		// quarter later (mostly after the +OK).
		delay := time.Duration(rng.Int64N(int64(3 * time.Millisecond)))
		if round%4 == 3 {
			delay = 3*time.Millisecond + time.Duration(rng.Int64N(int64(20*time.Millisecond)))
		}
		early := round%4 == 0

		child := killtest.Start(t, "TestCrashChild", []string{crashDirEnv + "=" + dir}, "ready ")
		addr := strings.TrimPrefix(child.Ready, "ready ")
		ok := func() bool {
			c, err := netDial(addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			r := bufio.NewReader(c)
			c.SetDeadline(time.Now().Add(10 * time.Second))
			var script strings.Builder
			script.WriteString("USER " + testUser + "\r\nPASS " + testPass + "\r\n")
			for _, n := range nums {
				fmt.Fprintf(&script, "DELE %d\r\n", n)
			}
			c.Write([]byte(script.String()))
			for range 3 + len(nums) { // the greeting, USER, PASS, the DELEs
				if l, err := r.ReadString('\n'); err != nil || !strings.HasPrefix(l, "+OK") {
					t.Fatalf("round %d: %q, %v", round, l, err)
				}
			}
			if early {
				child.Kill()
				c.Write([]byte("QUIT\r\n"))
				return false
			}
			c.Write([]byte("QUIT\r\n"))
			time.Sleep(delay)
			child.Kill()
			// Whatever the child sent before it died is still to be read.
			l, _ := r.ReadString('\n')
			return strings.HasPrefix(l, "+OK")
		}()

		after := crashUIDs(t, dir, u)
		minus := slices.DeleteFunc(slices.Clone(before), func(x userdata.UID) bool { return slices.Contains(dele, x) })
		switch {
		case slices.Equal(after, minus):
			committed++
		case slices.Equal(after, before) && !ok:
			kept++
		default:
			t.Fatalf("round %d (QUIT acknowledged: %v): INBOX %v\nbefore %v\nDELE'd %v", round, ok, after, before, dele)
		}
		if ok {
			acked++
		}
	}
	t.Logf("%d rounds: %d deletions committed (%d acknowledged), %d not", rounds, committed, acked, kept)
	if committed == 0 || kept == 0 {
		t.Logf("the kills did not land on both sides of the commit this time")
	}
}

// crashUIDs opens the stores under dir and returns u's INBOX, checking
// that no message has a flag (POP3 sets none).
func crashUIDs(t *testing.T, dir string, u userdata.User) []userdata.UID {
	t.Helper()
	st, db := openStores(t, dir)
	defer st.Close()
	defer db.Close()
	ctx := context.Background()
	inbox, err := db.Folder(ctx, u.ID, userdata.Inbox)
	if err != nil {
		t.Fatal(err)
	}
	var uids []userdata.UID
	err = db.Messages(ctx, u.ID, inbox.ID, nil, func(m *userdata.Message) error {
		if m.Flags != 0 {
			t.Errorf("message %d has flags %#x after a crash", m.UID, m.Flags)
		}
		if _, err := st.Open(ctx, m.Ref); err != nil {
			t.Errorf("message %d: body: %v", m.UID, err)
		}
		uids = append(uids, m.UID)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return uids
}
