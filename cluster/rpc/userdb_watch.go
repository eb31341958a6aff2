package rpc

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/mailsys/mailsys/cluster/rpc/pb"
	"github.com/mailsys/mailsys/userdata"
)

// Watch implements userdata.Watcher across the wire. All the watchers of
// one folder through this UserDB share one server stream, opened by the
// first and ended with the last one's stop. Watch returns once the node
// has confirmed that the stream's watch is registered, or, if it cannot
// (the node is down), after a first failed attempt or
// UserDBConfig.WatchTimeout at the most: it neither fails nor blocks long.
// A change committed after Watch returned reaches fn, but for the breaks
// below.
//
// fn runs on the stream's goroutine, one event at a time in commit order,
// and must not block (it hands the event on, as with any Watcher); it may
// call stop. The event's slices are fn's own but Changed, shared read-only
// with the folder's other watchers. Origin is the value the change's
// caller gave userdata.WithOrigin if it called through this UserDB, nil
// otherwise (a change made through another client, or on the node
// itself). Hold is nil. stop is idempotent and may be called from any
// goroutine, fn included.
//
// A stream that breaks (the node restarts, the connection fails, or this
// client falls more than 10,000 events behind) is opened again, with a
// backoff of up to 5 seconds, for as long as the folder has watchers; the
// events committed meanwhile are lost. Each break and return is logged (a
// warning naming the user and folder), so that a session that must not
// miss a change can re-read the folder; watchers added during a break
// start with the stream's return.
func (c *UserDB) Watch(user userdata.UserID, folder userdata.FolderID, fn func(userdata.FolderEvent)) (stop func()) {
	w := &clientWatcher{fn: fn}
	ws := c.watch.add(c, watchKey{user, folder}, w)
	if ws == nil {
		return func() {}
	}
	t := time.NewTimer(c.cfg.WatchTimeout)
	select {
	case <-ws.ready:
	case <-t.C:
	}
	t.Stop()
	var once sync.Once
	return func() { once.Do(func() { c.watch.remove(ws, w) }) }
}

type watchKey struct {
	user   userdata.UserID
	folder userdata.FolderID
}

// clientWatcher is one Watch registration; its address identifies it.
type clientWatcher struct {
	fn      func(userdata.FolderEvent)
	stopped atomic.Bool
}

// watchState is a client's watch streams.
type watchState struct {
	ctx    context.Context // the streams', cancelled by close
	cancel context.CancelFunc
	wg     sync.WaitGroup // the streams' goroutines

	mu     sync.Mutex
	closed bool
	byKey  map[watchKey]*watchStream
	byID   map[uint64]*watchStream // the established streams, by the server's id
}

func (s *watchState) init() {
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.byKey = map[watchKey]*watchStream{}
	s.byID = map[uint64]*watchStream{}
}

// add registers w for key, starting the stream if it is the first; nil
// after close.
func (s *watchState) add(c *UserDB, key watchKey, w *clientWatcher) *watchStream {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	ws := s.byKey[key]
	if ws == nil {
		ctx, cancel := context.WithCancel(s.ctx)
		ws = &watchStream{c: c, key: key, ctx: ctx, cancel: cancel, ready: make(chan struct{}), progress: make(chan struct{})}
		s.byKey[key] = ws
		s.wg.Add(1)
		go ws.run()
	}
	ws.mu.Lock()
	ws.watchers = append(slices.Clip(ws.watchers), w)
	ws.mu.Unlock()
	return ws
}

// remove ends w's registration, and ws with its last watcher.
func (s *watchState) remove(ws *watchStream, w *clientWatcher) {
	w.stopped.Store(true)
	s.mu.Lock()
	defer s.mu.Unlock()
	ws.mu.Lock()
	i := slices.Index(ws.watchers, w)
	if i >= 0 {
		// A new slice: the stream's goroutine may be ranging over the old.
		ws.watchers = slices.Delete(slices.Clone(ws.watchers), i, i+1)
	}
	last := len(ws.watchers) == 0
	ws.mu.Unlock()
	if last && s.byKey[ws.key] == ws {
		delete(s.byKey, ws.key)
		ws.cancel()
	}
}

// close ends every stream and waits for their goroutines.
func (s *watchState) close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
}

// await waits until the streams of bs have delivered the events the node
// had given them when a change returned (see userdb.proto), for at most
// timeout or until ctx ends. A stream that broke or was opened again
// since is not waited for.
func (s *watchState) await(ctx context.Context, bs []barrier, timeout time.Duration, log *slog.Logger) {
	if len(bs) == 0 {
		return
	}
	var deadline <-chan time.Time
	for _, b := range bs {
		s.mu.Lock()
		ws := s.byID[b.stream]
		s.mu.Unlock()
		if ws == nil {
			continue
		}
		for {
			ws.mu.Lock()
			if ws.id != b.stream || ws.delivered >= b.events {
				ws.mu.Unlock()
				break
			}
			ch := ws.progress
			ws.mu.Unlock()
			if deadline == nil {
				t := time.NewTimer(timeout)
				defer t.Stop()
				deadline = t.C
			}
			select {
			case <-ch:
			case <-ctx.Done():
				return
			case <-deadline:
				log.Warn("rpc: a change's events did not reach the watchers in time",
					"user", ws.key.user, "folder", ws.key.folder, "timeout", timeout)
				return
			}
		}
	}
}

// watchStream is the server stream shared by the watchers of one folder.
type watchStream struct {
	c      *UserDB
	key    watchKey
	ctx    context.Context
	cancel context.CancelFunc
	ready  chan struct{} // closed at the first stream's outcome
	once   sync.Once

	mu        sync.Mutex
	watchers  []*clientWatcher // replaced, never modified in place
	id        uint64           // the server's id of the stream now, 0 if none
	delivered uint64           // events of stream id delivered
	progress  chan struct{}    // closed when delivered or id changes
}

// Backoff between a stream's attempts.
const (
	watchRetryMin = 100 * time.Millisecond
	watchRetryMax = 5 * time.Second
)

// run keeps the stream open until its context ends.
func (ws *watchStream) run() {
	defer ws.c.watch.wg.Done()
	defer ws.once.Do(func() { close(ws.ready) })
	log := ws.c.log.With("user", ws.key.user, "folder", ws.key.folder)
	backoff := watchRetryMin
	broken := false
	for {
		established, err := ws.session(broken, log)
		if ws.ctx.Err() != nil {
			return
		}
		if status.Code(err) == codes.Unimplemented {
			log.Error("rpc: the UD node does not implement Watch; its changes are not reported", "err", err)
			return
		}
		if established {
			backoff = watchRetryMin
			log.Warn("rpc: watch stream broken; watching again; changes committed meanwhile are not reported", "err", err)
		} else if !broken {
			log.Warn("rpc: cannot watch; trying again; changes committed meanwhile are not reported", "err", err)
		}
		broken = true
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-ws.ctx.Done():
			t.Stop()
			return
		}
		backoff = min(2*backoff, watchRetryMax)
	}
}

// session opens the stream once and delivers its events until it ends.
// established says whether the node confirmed the watch.
func (ws *watchStream) session(again bool, log *slog.Logger) (established bool, err error) {
	c := ws.c
	ctx := metadata.AppendToOutgoingContext(ws.ctx, mdClient, c.id)
	st, err := c.rpc.Watch(ctx, &pb.UDWatchRequest{User: uint64(ws.key.user), Folder: uint32(ws.key.folder)})
	if err != nil {
		ws.once.Do(func() { close(ws.ready) })
		return false, err
	}
	first, err := st.Recv()
	if err != nil {
		ws.once.Do(func() { close(ws.ready) })
		return false, err
	}
	id := first.GetStreamId()
	ws.setID(id)
	ws.once.Do(func() { close(ws.ready) })
	if again {
		log.Warn("rpc: watching again")
	}
	defer ws.setID(0)
	for {
		m, err := st.Recv()
		if err != nil {
			return true, err
		}
		if ev := m.GetEvent(); ev != nil {
			ws.deliver(ev, log)
		}
	}
}

// setID records the server's id of the stream now (0: none) and wakes the
// changes waiting for the previous one.
func (ws *watchStream) setID(id uint64) {
	s := &ws.c.watch
	s.mu.Lock()
	ws.mu.Lock()
	if ws.id != 0 && s.byID[ws.id] == ws {
		delete(s.byID, ws.id)
	}
	ws.id, ws.delivered = id, 0
	if id != 0 {
		s.byID[id] = ws
	}
	close(ws.progress)
	ws.progress = make(chan struct{})
	ws.mu.Unlock()
	s.mu.Unlock()
}

// deliver calls the watchers with the event, each with its own slices
// (Changed shared), then counts it delivered.
func (ws *watchStream) deliver(pe *pb.UDFolderEvent, log *slog.Logger) {
	changed, err := messagesFromPB(pe.GetChanged())
	if err != nil {
		log.Error("rpc: a watch event could not be read", "err", err)
	}
	ev := userdata.FolderEvent{User: ws.key.user, Folder: ws.key.folder, Added: uidsFromPB(pe.GetAdded()),
		Removed: uidsFromPB(pe.GetRemoved()), Flags: uidsFromPB(pe.GetFlags()), Changed: changed, ModSeq: pe.GetModSeq(),
		Origin: ws.c.origins.origin(pe.GetOrigin())}
	ev.Keywords = textsFromPB(pe.GetKeywords())
	ws.mu.Lock()
	watchers := ws.watchers
	ws.mu.Unlock()
	for i, w := range watchers {
		if w.stopped.Load() {
			continue
		}
		if i == len(watchers)-1 {
			w.fn(ev)
			break
		}
		e := ev
		e.Added, e.Removed, e.Flags, e.Keywords = slices.Clone(ev.Added), slices.Clone(ev.Removed), slices.Clone(ev.Flags), slices.Clone(ev.Keywords)
		w.fn(e)
	}
	ws.mu.Lock()
	ws.delivered++
	close(ws.progress)
	ws.progress = make(chan struct{})
	ws.mu.Unlock()
}
