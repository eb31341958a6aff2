package imap_test

import (
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	goimap "github.com/emersion/go-imap/v2"

	"github.com/mailsys/mailsys/imap"
	"github.com/mailsys/mailsys/msstore"
	"github.com/mailsys/mailsys/userdata"
)

// BenchmarkFetchFlags measures FETCH 1:* (UID FLAGS) on a folder of 10,000
// messages, client and server in this process.
func BenchmarkFetchFlags(b *testing.B) {
	e := newBenchEnv(b, 10_000)
	c := e.client()
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		msgs, err := c.Fetch(goimap.SeqSet{{Start: 1, Stop: 0}}, &goimap.FetchOptions{UID: true, Flags: true}).Collect()
		if err != nil || len(msgs) != 10_000 {
			b.Fatalf("%d messages, %v", len(msgs), err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/10_000, "µs/msg")
}

// BenchmarkSelect measures SELECT of a folder of 10,000 messages.
func BenchmarkSelect(b *testing.B) {
	e := newBenchEnv(b, 10_000)
	c := e.client()
	for b.Loop() {
		if _, err := c.Select("INBOX", nil).Wait(); err != nil {
			b.Fatal(err)
		}
		c.Unselect().Wait()
	}
}

func newBenchEnv(b *testing.B, n int) *env {
	e := newEnvTB(b)
	ctx := b.Context()
	inbox, _ := e.db.Folder(ctx, e.user.ID, userdata.Inbox)
	for i := range n {
		m := message(fmt.Sprintf("bench %d", i), "x\r\n")
		env, bs, _ := imap.Summarize(strings.NewReader(m))
		ref, err := e.store.Put(ctx, strings.NewReader(m), msstore.Meta{})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := e.db.Append(ctx, e.user.ID, inbox.ID, userdata.NewMessage{Ref: ref, Size: ref.Size, InternalDate: time.Now(), Envelope: env, Structure: bs}); err != nil {
			b.Fatal(err)
		}
	}
	return e
}

// BenchmarkSearchOrChain measures a SEARCH of 4,000 keys chained with OR
// (header, text, body and number keys) over 80 messages, on the wire.
func BenchmarkSearchOrChain(b *testing.B) {
	e := newEnvTB(b)
	e.fill(80)
	c, r := e.rawSession(e.addr)
	cmd := "a SEARCH " + orChain(4000, "m42") + "\r\n"
	for b.Loop() {
		io.WriteString(c, cmd)
		if out, err := readUntil(r, "a "); err != nil || !strings.Contains(out, "a OK") {
			b.Fatalf("%q, %v", out, err)
		}
	}
}
