package main

import (
	"context"
	"fmt"
	"io"
	"net/smtp"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/mailsys/mailsys/msstore"
	"github.com/mailsys/mailsys/userdata"
)

// result is what measure found for one setup.
type result struct {
	smtpRate, imapRate float64
	smtpP50, imapP50   time.Duration
	calls              []callResult
	// The growth of the UserDB's and the store's files over the SMTP
	// phase, in bytes.
	udGrowth, msGrowth int64
}

type callResult struct {
	name     string
	p50, p99 time.Duration
}

const password = "bench-password"

func userAddr(i int) string { return fmt.Sprintf("user%d@bench.example", i) }

// message returns a message of size bytes for message n (reusing b).
func message(b []byte, size, n int) []byte {
	b = fmt.Appendf(b[:0], "From: bench@example.net\r\nTo: user@bench.example\r\nSubject: message %d\r\nMessage-ID: <%d@bench.example>\r\nDate: Thu, 03 Dec 2026 04:00:00 +0000\r\n\r\n", n, n)
	line := []byte("Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor.\r\n")
	for len(b)+len(line) <= size {
		b = append(b, line...)
	}
	return b
}

// measure runs the SMTP phase, waits for every delivery, then the IMAP
// phase and the per-call latencies.
func measure(ctx context.Context, s *setup, o *options) (*result, error) {
	for i := range o.users {
		if _, err := s.sys.EnsureUser(ctx, userAddr(i), password); err != nil {
			return nil, fmt.Errorf("user: %w", err)
		}
	}
	r := &result{}
	var err error
	ud0, err := du(s.udDir)
	if err != nil {
		return nil, err
	}
	ms0, err := du(s.msDir)
	if err != nil {
		return nil, err
	}
	t := time.Now()
	defer func() { fmt.Fprintf(os.Stderr, "%s: done in %v\n", s.name, time.Since(t).Round(time.Millisecond)) }()
	if r.smtpRate, r.smtpP50, err = smtpLoad(ctx, s, o); err != nil {
		return nil, fmt.Errorf("smtp: %w", err)
	}
	fmt.Fprintf(os.Stderr, "%s: smtp %.0f msg/s after %v\n", s.name, r.smtpRate, time.Since(t).Round(time.Millisecond))
	if err := waitDelivered(ctx, s, o); err != nil {
		return nil, err
	}
	fmt.Fprintf(os.Stderr, "%s: delivered after %v\n", s.name, time.Since(t).Round(time.Millisecond))
	ud1, err := du(s.udDir)
	if err != nil {
		return nil, err
	}
	ms1, err := du(s.msDir)
	if err != nil {
		return nil, err
	}
	r.udGrowth, r.msGrowth = ud1-ud0, ms1-ms0
	if r.imapRate, r.imapP50, err = imapLoad(ctx, s, o); err != nil {
		return nil, fmt.Errorf("imap: %w", err)
	}
	fmt.Fprintf(os.Stderr, "%s: imap %.0f sessions/s after %v\n", s.name, r.imapRate, time.Since(t).Round(time.Millisecond))
	if r.calls, err = callLatencies(ctx, s, o); err != nil {
		return nil, fmt.Errorf("calls: %w", err)
	}
	return r, nil
}

// smtpLoad sends o.messages over o.clients connections, each message to
// one user (round robin), and returns messages/s and the p50 from the end
// of DATA to the 250.
func smtpLoad(ctx context.Context, s *setup, o *options) (float64, time.Duration, error) {
	return drive(ctx, o.clients, o.messages, func(next func() (int, bool), record func(time.Duration)) error {
		cl, err := smtp.Dial(s.smtp)
		if err != nil {
			return err
		}
		defer cl.Close()
		var msg []byte
		for n, ok := next(); ok; n, ok = next() {
			if err := cl.Mail("bench@example.net"); err != nil {
				return err
			}
			if err := cl.Rcpt(userAddr(n % o.users)); err != nil {
				return err
			}
			wc, err := cl.Data()
			if err != nil {
				return err
			}
			msg = message(msg, o.size, n)
			if _, err := wc.Write(msg); err != nil {
				return err
			}
			t := time.Now()
			if err := wc.Close(); err != nil {
				return err
			}
			record(time.Since(t))
		}
		cl.Quit()
		return nil
	})
}

// drive runs clients goroutines, each calling work once: work takes the
// numbers 1 to total from next (shared by all, until it says no more or
// ctx ends) and records a latency for each. It returns the latencies
// recorded per second of the whole run, their p50, and the first error.
func drive(ctx context.Context, clients, total int, work func(next func() (int, bool), record func(time.Duration)) error) (float64, time.Duration, error) {
	var taken atomic.Int64
	next := func() (int, bool) {
		n := int(taken.Add(1))
		return n, n <= total && ctx.Err() == nil
	}
	lat := make([][]time.Duration, clients)
	errs := make(chan error, clients)
	var wg sync.WaitGroup
	start := time.Now()
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := work(next, func(d time.Duration) { lat[c] = append(lat[c], d) }); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	took := time.Since(start)
	close(errs)
	if err := <-errs; err != nil {
		return 0, 0, err
	}
	all := slices.Concat(lat...)
	if len(all) == 0 {
		return 0, 0, ctx.Err()
	}
	slices.Sort(all)
	return float64(len(all)) / took.Seconds(), pct(all, .5), nil
}

func pct(d []time.Duration, p float64) time.Duration { return d[int(float64(len(d)-1)*p)] }

// waitDelivered waits until every user's INBOX holds its messages.
func waitDelivered(ctx context.Context, s *setup, o *options) error {
	deadline := time.Now().Add(2 * time.Minute)
	for i := range o.users {
		want := uint32(0)
		for n := 1; n <= o.messages; n++ {
			if n%o.users == i {
				want++
			}
		}
		u, err := s.users.LookupAddress(ctx, userAddr(i))
		if err != nil {
			return err
		}
		for {
			f, err := s.users.Folder(ctx, u.ID, userdata.Inbox)
			if err != nil {
				return err
			}
			if f.Messages >= want {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%s: %d of %d messages delivered after 2 minutes", userAddr(i), f.Messages, want)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	return nil
}

// imapLoad runs o.sessions IMAP sessions over o.clients goroutines: each
// connects, logs in, selects the INBOX, fetches one message's BODY[] and
// logs out.
func imapLoad(ctx context.Context, s *setup, o *options) (float64, time.Duration, error) {
	return drive(ctx, o.clients, o.sessions, func(next func() (int, bool), record func(time.Duration)) error {
		for n, ok := next(); ok; n, ok = next() {
			t := time.Now()
			if err := imapSession(s.imap, userAddr(n%o.users), n, o.size); err != nil {
				return err
			}
			record(time.Since(t))
		}
		return nil
	})
}

func imapSession(addr, user string, n, size int) error {
	c, err := imapclient.DialInsecure(addr, nil)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Login(user, password).Wait(); err != nil {
		return err
	}
	sel, err := c.Select(userdata.Inbox, nil).Wait()
	if err != nil {
		return err
	}
	if sel.NumMessages == 0 {
		return fmt.Errorf("%s: empty INBOX", user)
	}
	seq := imap.SeqSetNum(uint32(n)%sel.NumMessages + 1)
	msgs, err := c.Fetch(seq, &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{{}}}).Collect()
	if err != nil {
		return err
	}
	if len(msgs) != 1 || len(msgs[0].BodySection) != 1 {
		return fmt.Errorf("%s: FETCH %v: %d messages", user, seq, len(msgs))
	}
	for _, b := range msgs[0].BodySection {
		if len(b.Bytes) < size-512 {
			return fmt.Errorf("%s: FETCH %v: a body of %d bytes", user, seq, len(b.Bytes))
		}
	}
	return c.Logout().Wait()
}

// callLatencies times, one at a time, the calls a front makes most: a
// cached login, a folder's status, a page of the index and a body's read.
func callLatencies(ctx context.Context, s *setup, o *options) ([]callResult, error) {
	u, err := s.users.LookupAddress(ctx, userAddr(0))
	if err != nil {
		return nil, err
	}
	inbox, err := s.users.Folder(ctx, u.ID, userdata.Inbox)
	if err != nil {
		return nil, err
	}
	var ref msstore.Ref
	page := userdata.UIDSet{{Start: 1, Stop: 20}}
	if err := s.users.Messages(ctx, u.ID, inbox.ID, page, func(m *userdata.Message) error {
		ref = m.Ref
		return nil
	}); err != nil {
		return nil, err
	}
	buf := make([]byte, o.size)
	calls := []struct {
		name string
		fn   func() error
	}{
		{"UserDB.Authenticate (cached)", func() error {
			_, err := s.users.Authenticate(ctx, userAddr(0), password, userdata.ProtoIMAP)
			return err
		}},
		{"UserDB.Folder", func() error {
			_, err := s.users.Folder(ctx, u.ID, userdata.Inbox)
			return err
		}},
		{"UserDB.Messages (20)", func() error {
			return s.users.Messages(ctx, u.ID, inbox.ID, page, func(*userdata.Message) error { return nil })
		}},
		{"Storage.Open+read body", func() error {
			b, err := s.store.Open(ctx, ref)
			if err != nil {
				return err
			}
			defer b.Close()
			_, err = io.ReadFull(io.NewSectionReader(b, 0, b.Size()), buf[:min(int(b.Size()), len(buf))])
			return err
		}},
	}
	var out []callResult
	for _, c := range calls {
		d := make([]time.Duration, 0, o.calls)
		for range o.calls {
			t := time.Now()
			if err := c.fn(); err != nil {
				return nil, fmt.Errorf("%s: %w", c.name, err)
			}
			d = append(d, time.Since(t))
		}
		slices.Sort(d)
		out = append(out, callResult{name: c.name, p50: pct(d, .5), p99: pct(d, .99)})
	}
	return out, nil
}
