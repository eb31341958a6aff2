package rpc

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/mailsys/mailsys/msstore"
	"github.com/mailsys/mailsys/userdata"
)

// eventLog records a watcher's events.
type eventLog struct {
	mu  sync.Mutex
	evs []userdata.FolderEvent
}

func (l *eventLog) record(ev userdata.FolderEvent) {
	l.mu.Lock()
	l.evs = append(l.evs, ev)
	l.mu.Unlock()
}

func (l *eventLog) take() []userdata.FolderEvent {
	l.mu.Lock()
	defer l.mu.Unlock()
	evs := l.evs
	l.evs = nil
	return evs
}

// testUser makes ann@example.test and returns her id and INBOX.
func testUser(t testing.TB, db userdata.UserDB) (userdata.UserID, userdata.FolderID) {
	t.Helper()
	ctx := context.Background()
	if err := db.CreateDomain(ctx, userdata.Domain{Name: "example.test"}); err != nil {
		t.Fatal(err)
	}
	u, err := db.CreateUser(ctx, userdata.NewUser{Address: "ann@example.test", Password: "secret"})
	if err != nil {
		t.Fatal(err)
	}
	f, err := db.Folder(ctx, u.ID, userdata.Inbox)
	if err != nil {
		t.Fatal(err)
	}
	return u.ID, f.ID
}

func testMessage(n int) userdata.NewMessage {
	return userdata.NewMessage{
		Ref:          msstore.Ref{Node: 1, Volume: 1, Offset: int64(n) * 100, Size: 10, ID: uint64(n)},
		InternalDate: time.Date(2025, 3, 14, 15, 9, 26, 0, time.UTC).Add(time.Duration(n) * time.Minute),
		Size:         10,
		Envelope:     fmt.Appendf(nil, `(NIL "message %d" NIL)`, n),
		Structure:    []byte(`("TEXT" "PLAIN" NIL NIL NIL "7BIT" 10)`),
	}
}

// TestUserDBWatchReestablished: the watchers of a folder share one
// stream; when the connection breaks, the stream is opened again, and the
// changes after that reach the watchers again; the last stop ends it.
func TestUserDBWatchReestablished(t *testing.T) {
	ctx := t.Context()
	srv, proxy, c := serveUserDBViaProxy(t, newTestMemory(t, nil), UserDBConfig{})
	user, inbox := testUser(t, c)

	var a, b eventLog
	stopA := c.Watch(user, inbox, a.record)
	stopB := c.Watch(user, inbox, b.record)
	if n := srv.watchStreams(); n != 1 {
		t.Fatalf("two watchers of one folder: %d server streams, want 1", n)
	}
	m, err := c.Append(ctx, user, inbox, testMessage(1))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range []*eventLog{&a, &b} {
		if evs := l.take(); len(evs) != 1 || !slices.Equal(evs[0].Added, []userdata.UID{m.UID}) {
			t.Fatalf("before the break: events %+v, want one adding UID %d", evs, m.UID)
		}
	}

	proxy.cut()
	// The stream comes back on its own; until it has, changes are lost.
	deadline := time.Now().Add(20 * time.Second)
	for n := 2; ; n++ {
		if time.Now().After(deadline) {
			t.Fatal("no event 20 seconds after the connection was cut")
		}
		m, err := c.Append(ctx, user, inbox, testMessage(n))
		if err != nil {
			if errors.Is(err, userdata.ErrUnavailable) {
				time.Sleep(50 * time.Millisecond)
				continue
			}
			t.Fatalf("Append after the cut: %v", err)
		}
		evs := a.take()
		b.take()
		if len(evs) == 0 {
			time.Sleep(50 * time.Millisecond)
			continue
		}
		if last := evs[len(evs)-1]; !slices.Equal(last.Added, []userdata.UID{m.UID}) {
			t.Fatalf("after the stream's return: event %+v, want one adding UID %d", last, m.UID)
		}
		break
	}
	// Now every change is there again, for both watchers.
	res, err := c.StoreFlags(ctx, user, inbox, nil, userdata.FlagUpdate{Op: userdata.FlagsAdd, Flags: userdata.FlagSeen})
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range []*eventLog{&a, &b} {
		if evs := l.take(); len(evs) != 1 || len(evs[0].Flags) != len(res.Changed) {
			t.Errorf("after the return: events %+v, want one with %d flag changes", evs, len(res.Changed))
		}
	}
	if n := srv.watchStreams(); n != 1 {
		t.Errorf("after the return: %d server streams, want 1", n)
	}

	stopA()
	stopA()
	if n := srv.watchStreams(); n != 1 {
		t.Errorf("one watcher stopped: %d server streams, want 1", n)
	}
	stopB()
	waitFor(t, "the server's stream to end after the last stop", func() bool { return srv.watchStreams() == 0 })
}

// TestUserDBWatchStopInFn: stop may be called from fn, and Close ends the
// streams.
func TestUserDBWatchStopInFn(t *testing.T) {
	ctx := t.Context()
	srv, _, c := serveUserDBViaProxy(t, newTestMemory(t, nil), UserDBConfig{})
	user, inbox := testUser(t, c)
	var mu sync.Mutex
	calls := 0
	var stop func()
	mu.Lock()
	stop = c.Watch(user, inbox, func(userdata.FolderEvent) {
		mu.Lock()
		calls++
		s := stop
		mu.Unlock()
		s()
	})
	mu.Unlock()
	for n := 1; n <= 3; n++ {
		if _, err := c.Append(ctx, user, inbox, testMessage(n)); err != nil {
			t.Fatal(err)
		}
	}
	mu.Lock()
	if calls != 1 {
		t.Errorf("a watcher that stops itself was called %d times, want 1", calls)
	}
	mu.Unlock()
	waitFor(t, "the stream to end", func() bool { return srv.watchStreams() == 0 })

	var l eventLog
	c.Watch(user, inbox, l.record)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "Close to end the stream", func() bool { return srv.watchStreams() == 0 })
	if stop := c.Watch(user, inbox, l.record); stop == nil {
		t.Error("Watch after Close returned a nil stop")
	} else {
		stop()
	}
}

// TestUserDBOrigins: many sessions change one folder at once through one
// client, each with itself as the origin; every event a watcher of that
// client gets names the session that made it, and a watcher through
// another client sees no origin. Unhashable origins work too.
func TestUserDBOrigins(t *testing.T) {
	ctx := t.Context()
	db := newTestMemory(t, nil)
	_, proxy, c := serveUserDBViaProxy(t, db, UserDBConfig{})
	other := proxy.client(t, UserDBConfig{})
	user, inbox := testUser(t, c)
	const sessions = 64
	uids := make([]userdata.UID, sessions)
	for i := range uids {
		m, err := c.Append(ctx, user, inbox, testMessage(i+1))
		if err != nil {
			t.Fatal(err)
		}
		uids[i] = m.UID
	}

	type session struct{ n int }
	var mine, theirs eventLog
	defer c.Watch(user, inbox, mine.record)()
	defer other.Watch(user, inbox, theirs.record)()

	var wg sync.WaitGroup
	errs := make(chan error, sessions)
	ss := make([]*session, sessions)
	for i := range ss {
		ss[i] = &session{i}
		wg.Go(func() {
			sctx := userdata.WithOrigin(ctx, ss[i])
			for _, op := range []userdata.FlagOp{userdata.FlagsAdd, userdata.FlagsRemove} {
				one := userdata.UIDSet{{Start: uids[i], Stop: uids[i]}}
				if _, err := c.StoreFlags(sctx, user, inbox, one, userdata.FlagUpdate{Op: op, Flags: userdata.FlagFlagged}); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	evs := mine.take()
	if len(evs) != 2*sessions {
		t.Fatalf("the watcher got %d events, want %d", len(evs), 2*sessions)
	}
	for _, ev := range evs {
		s, ok := ev.Origin.(*session)
		if !ok || len(ev.Flags) != 1 || ev.Flags[0] != uids[s.n] || s != ss[s.n] {
			t.Fatalf("event %+v: Origin %v, not the session that changed UID %v", ev, ev.Origin, ev.Flags)
		}
	}
	waitFor(t, "the other client's events", func() bool {
		theirs.mu.Lock()
		defer theirs.mu.Unlock()
		return len(theirs.evs) == 2*sessions
	})
	for _, ev := range theirs.take() {
		if ev.Origin != nil {
			t.Fatalf("another client's watcher got Origin %v, want nil", ev.Origin)
		}
	}

	// An origin that cannot be a map key.
	unhashable := []int{7}
	one := userdata.UIDSet{{Start: uids[0], Stop: uids[0]}}
	if _, err := c.StoreFlags(userdata.WithOrigin(ctx, unhashable), user, inbox, one,
		userdata.FlagUpdate{Op: userdata.FlagsAdd, Flags: userdata.FlagSeen}); err != nil {
		t.Fatal(err)
	}
	evs = mine.take()
	if len(evs) != 1 {
		t.Fatalf("unhashable origin: %d events, want 1", len(evs))
	}
	if got, ok := evs[0].Origin.([]int); !ok || &got[0] != &unhashable[0] {
		t.Errorf("unhashable origin: event's Origin %v, want the caller's slice", evs[0].Origin)
	}
}

// TestOriginTableBounded: the table forgets old origins, keeps the recent
// ones and gives one comparable origin one token while it remembers it.
func TestOriginTableBounded(t *testing.T) {
	var tab originTable
	type session struct{ n int }
	ss := make([]*session, 5*originGeneration)
	toks := make([]uint64, len(ss))
	for i := range ss {
		ss[i] = &session{i}
		toks[i] = tab.token(ss[i])
		if again := tab.token(ss[i]); again != toks[i] {
			t.Fatalf("session %d: token %d, then %d", i, toks[i], again)
		}
	}
	if n := len(tab.cur.origins) + len(tab.old.origins); n > 2*originGeneration {
		t.Errorf("table holds %d origins, want at most %d", n, 2*originGeneration)
	}
	for i := len(ss) - originGeneration; i < len(ss); i++ {
		if tab.origin(toks[i]) != ss[i] {
			t.Fatalf("recent session %d forgotten", i)
		}
	}
	if tab.origin(toks[0]) != nil {
		t.Error("the first session is still remembered")
	}
	if tab.token(nil) != 0 || tab.origin(0) != nil {
		t.Error("nil origin: want token 0 and back")
	}
	a, b := tab.token([]byte("x")), tab.token(map[string]int{})
	if a == 0 || b == 0 || a == b {
		t.Errorf("unhashable origins: tokens %d and %d", a, b)
	}
}

// TestUserDBUnavailable: a node that stops answering (its connection open,
// nothing coming back) gives errors matching userdata.ErrUnavailable
// before the call's deadline, or after CallTimeout for a call without
// one, unary or streaming; it answers again once it is back.
func TestUserDBUnavailable(t *testing.T) {
	_, proxy, c := serveUserDBViaProxy(t, newTestMemory(t, nil), UserDBConfig{CallTimeout: 500 * time.Millisecond})
	user, inbox := testUser(t, c)
	if _, err := c.Append(t.Context(), user, inbox, testMessage(1)); err != nil {
		t.Fatal(err)
	}
	proxy.pause(true)
	calls := []struct {
		name string
		fn   func(ctx context.Context) error
	}{
		{"User", func(ctx context.Context) error { _, err := c.User(ctx, user); return err }},
		{"Authenticate", func(ctx context.Context) error {
			_, err := c.Authenticate(ctx, "ann@example.test", "secret", userdata.ProtoIMAP)
			return err
		}},
		{"Append", func(ctx context.Context) error { _, err := c.Append(ctx, user, inbox, testMessage(2)); return err }},
		{"Messages", func(ctx context.Context) error {
			return c.Messages(ctx, user, inbox, nil, func(*userdata.Message) error { return nil })
		}},
		{"UIDs", func(ctx context.Context) error { _, err := c.UIDs(ctx, user, inbox); return err }},
	}
	for _, tc := range calls {
		ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
		start := time.Now()
		err := tc.fn(ctx)
		took := time.Since(start)
		ctxErr := ctx.Err()
		cancel()
		if !errors.Is(err, userdata.ErrUnavailable) {
			t.Errorf("%s with a deadline, node not answering: error %v, want ErrUnavailable", tc.name, err)
		}
		if ctxErr != nil {
			t.Errorf("%s with a deadline: returned after it (%v)", tc.name, took)
		}
		start = time.Now()
		err = tc.fn(t.Context())
		took = time.Since(start)
		if !errors.Is(err, userdata.ErrUnavailable) || took > 2*time.Second {
			t.Errorf("%s without a deadline: error %v after %v, want ErrUnavailable after CallTimeout", tc.name, err, took)
		}
	}
	// Watch neither fails nor blocks long.
	start := time.Now()
	var l eventLog
	stop := c.Watch(user, inbox, l.record)
	if took := time.Since(start); took > 6*time.Second {
		t.Errorf("Watch took %v with the node not answering", took)
	}
	stop()

	proxy.pause(false)
	waitFor(t, "the node to answer again", func() bool {
		_, err := c.User(t.Context(), user)
		return err == nil
	})
}

// waitFor polls cond for up to 20 seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	within(t, 20*time.Second, what, cond)
}
