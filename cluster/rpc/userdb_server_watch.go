package rpc

import (
	"sync"
	"sync/atomic"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/mailsys/mailsys/cluster/rpc/pb"
	"github.com/mailsys/mailsys/userdata"
)

// maxQueuedEvents bounds the events a watch stream holds for a client
// that does not read them. Past it the stream ends (ResourceExhausted)
// rather than hold more or block the database's commits; the client
// watches again, and the events in between are lost.
const maxQueuedEvents = 10000

// eventQueue holds a watch stream's events between the database's
// committing goroutine, which must not block, and the stream's sender.
type eventQueue struct {
	pushed atomic.Uint64 // events pushed so far, for the barriers
	wake   chan struct{} // a token when events are waiting

	mu       sync.Mutex
	events   []userdata.FolderEvent
	overflow bool
}

// push is the database's watcher: it queues ev without blocking.
func (q *eventQueue) push(ev userdata.FolderEvent) {
	q.mu.Lock()
	if len(q.events) >= maxQueuedEvents {
		q.overflow = true
	} else {
		q.events = append(q.events, ev)
	}
	q.pushed.Add(1)
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// take returns the events queued and empties the queue.
func (q *eventQueue) take() ([]userdata.FolderEvent, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	evs := q.events
	q.events = nil
	return evs, q.overflow
}

// Watch registers a watcher of the folder with the database, answers the
// stream's id once it is registered, then sends the folder's events in
// commit order until the client ends the stream.
func (s *userDBServer) Watch(m *pb.UDWatchRequest, stream grpc.ServerStreamingServer[pb.UDWatchMessage]) error {
	if s.cur().watcher == nil {
		return unimplemented("userdata.Watcher")
	}
	ctx := stream.Context()
	client, _ := incoming(ctx)
	user, folder := userdata.UserID(m.GetUser()), userdata.FolderID(m.GetFolder())
	q := &eventQueue{wake: make(chan struct{}, 1)}
	id := s.ids.Add(1)
	owner := streamOwner{client, user}
	s.mu.Lock()
	set := s.streams[owner]
	if set == nil {
		set = map[uint64]*eventQueue{}
		s.streams[owner] = set
	}
	set[id] = q
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(set, id)
		if len(set) == 0 {
			delete(s.streams, owner)
		}
		s.mu.Unlock()
	}()
	stop := s.cur().watcher.Watch(user, folder, q.push)
	defer stop()

	if err := stream.Send(&pb.UDWatchMessage{StreamId: id}); err != nil {
		return err
	}
	for {
		select {
		case <-ctx.Done():
			return toStatus(ctx.Err())
		case <-q.wake:
		}
		evs, overflow := q.take()
		if overflow {
			return status.Errorf(codes.ResourceExhausted, "rpc: watch of user %d folder %d: more than %d events waiting for the client; some were dropped",
				user, folder, maxQueuedEvents)
		}
		for i := range evs {
			if err := stream.Send(&pb.UDWatchMessage{Event: eventToPB(&evs[i], client)}); err != nil {
				return err
			}
		}
	}
}

// eventToPB converts ev for a stream of client: the origin is the token
// of a change that client made, else none.
func eventToPB(ev *userdata.FolderEvent, client uint64) *pb.UDFolderEvent {
	out := &pb.UDFolderEvent{Added: uidsToPB(ev.Added), Removed: uidsToPB(ev.Removed), Flags: uidsToPB(ev.Flags),
		Changed: messagesToPB(ev.Changed), ModSeq: ev.ModSeq, Keywords: textsToPB(ev.Keywords)}
	if o, ok := ev.Origin.(callOrigin); ok && o.client == client {
		out.Origin = o.token
	}
	return out
}
