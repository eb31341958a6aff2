package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// ErrBreakerOpen is the cause (Unavailable.Err) of a call refused by an
// open circuit breaker, or cut short when the breaker was tripped.
var ErrBreakerOpen = errors.New("cluster: circuit breaker open")

// BreakerState is the state of a Breaker.
type BreakerState int32

// Breaker states.
const (
	// BreakerClosed lets every call through.
	BreakerClosed BreakerState = iota
	// BreakerOpen fails every call at once.
	BreakerOpen
	// BreakerHalfOpen lets one call through, the probe: its success
	// closes the breaker, its failure opens it again. State reports it
	// too for an open breaker that would let the next call probe.
	BreakerHalfOpen
)

// String returns "closed", "open" or "half-open".
func (s BreakerState) String() string {
	switch s {
	case BreakerClosed:
		return "closed"
	case BreakerOpen:
		return "open"
	case BreakerHalfOpen:
		return "half-open"
	}
	return fmt.Sprintf("BreakerState(%d)", int32(s))
}

// BreakerConfig configures a Breaker. Zero (or negative) fields mean
// their defaults.
type BreakerConfig struct {
	// Failures is how many calls in a row must fail for the breaker to
	// open by itself (default 5). A call fails when it ends with
	// codes.Unavailable (the peer could not be reached, or said so) or
	// codes.DeadlineExceeded (it did not answer in time), or when its
	// caller cancels it with a cause matching context.DeadlineExceeded
	// (context.WithCancelCause: a watchdog that gave up waiting for the
	// peer, as rpc.Storage's streams have); an answer that is an
	// application error (NotFound, InvalidArgument...) is a success, and
	// a call canceled by its caller for any other reason neither.
	Failures int
	// OpenFor is how long a breaker that opened by itself stays open
	// before it lets a probe through (default 1s).
	OpenFor time.Duration
	// CallTimeout bounds each unary call whose context has no earlier
	// deadline (default 5s). Streams get no deadline: they may be long
	// lived.
	CallTimeout time.Duration
	// Logger receives the breaker's state changes. Nil means
	// slog.Default().
	Logger *slog.Logger
}

// Defaults of BreakerConfig.
const (
	DefaultBreakerFailures    = 5
	DefaultBreakerOpenFor     = time.Second
	DefaultBreakerCallTimeout = 5 * time.Second
)

// Breaker is the circuit breaker of the calls to one peer, as gRPC client
// interceptors (UnaryClientInterceptor, StreamClientInterceptor): closed,
// calls go through; open, they fail at once, with no network, with a
// *Unavailable{Peer, ErrBreakerOpen}; half-open, one probe goes through.
//
// It opens by itself after BreakerConfig.Failures failed calls in a row,
// and lets a probe through after OpenFor; Trip opens it at once (the
// heartbeat declared the peer dead) and cancels the calls and streams in
// flight, and it then stays open until Reset (the heartbeat saw the peer
// come back) closes it.
//
// Its methods are safe for concurrent use; a call through a closed
// breaker costs an atomic load, a context and a short lock.
type Breaker struct {
	peer string
	cfg  BreakerConfig
	log  *slog.Logger

	state    atomic.Int32 // a BreakerState
	failures atomic.Int32 // failed calls in a row, while closed
	openedAt atomic.Int64 // Unix nanoseconds of the last opening
	tripped  atomic.Bool  // opened by Trip: no probe until Reset

	mu sync.Mutex // serializes state changes

	callsMu sync.Mutex
	calls   map[*inflight]struct{}
}

// inflight is a call or stream in progress, which Trip cancels.
type inflight struct {
	cancel  context.CancelFunc
	tripped atomic.Bool
}

// NewBreaker returns the closed breaker of the calls to peer (its node
// id, named in the errors), configured by cfg, which it copies.
func NewBreaker(peer string, cfg BreakerConfig) *Breaker {
	if cfg.Failures <= 0 {
		cfg.Failures = DefaultBreakerFailures
	}
	if cfg.OpenFor <= 0 {
		cfg.OpenFor = DefaultBreakerOpenFor
	}
	if cfg.CallTimeout <= 0 {
		cfg.CallTimeout = DefaultBreakerCallTimeout
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Breaker{peer: peer, cfg: cfg, log: log.With("component", "breaker", "peer", peer), calls: map[*inflight]struct{}{}}
}

// Peer returns the peer's id.
func (b *Breaker) Peer() string { return b.peer }

// State returns the state now. An open breaker whose OpenFor has passed
// (and that was not tripped) reads as BreakerHalfOpen: the next call is
// its probe.
func (b *Breaker) State() BreakerState {
	s := BreakerState(b.state.Load())
	if s == BreakerOpen && b.probeDue(time.Now()) {
		return BreakerHalfOpen
	}
	return s
}

func (b *Breaker) probeDue(now time.Time) bool {
	return !b.tripped.Load() && now.UnixNano()-b.openedAt.Load() >= int64(b.cfg.OpenFor)
}

// Trip opens the breaker now and cancels the calls and streams in
// flight: they return a *Unavailable with ErrBreakerOpen. It stays open,
// without probes, until Reset.
func (b *Breaker) Trip() {
	b.mu.Lock()
	b.tripped.Store(true)
	b.openedAt.Store(time.Now().UnixNano())
	old := BreakerState(b.state.Swap(int32(BreakerOpen)))
	b.mu.Unlock()
	if old != BreakerOpen {
		b.log.Warn("circuit breaker tripped", "was", old)
	}
	// A call reads tripped after it registers, so one that missed this
	// sweep gives up by itself.
	b.callsMu.Lock()
	for c := range b.calls {
		c.tripped.Store(true)
		c.cancel()
	}
	b.callsMu.Unlock()
}

// Reset closes the breaker now, whatever opened it.
func (b *Breaker) Reset() {
	b.mu.Lock()
	b.tripped.Store(false)
	b.failures.Store(0)
	old := BreakerState(b.state.Swap(int32(BreakerClosed)))
	b.mu.Unlock()
	if old != BreakerClosed {
		b.log.Info("circuit breaker reset", "was", old)
	}
}

// allow decides whether a call may go: ok, and whether it is the probe.
func (b *Breaker) allow() (ok, probe bool) {
	switch BreakerState(b.state.Load()) {
	case BreakerClosed:
		return true, false
	case BreakerHalfOpen:
		return false, false
	}
	now := time.Now()
	if !b.probeDue(now) {
		return false, false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if BreakerState(b.state.Load()) != BreakerOpen || !b.probeDue(now) {
		return BreakerState(b.state.Load()) == BreakerClosed, false
	}
	b.state.Store(int32(BreakerHalfOpen))
	return true, true
}

// outcome is what a call's end says of the peer.
type outcome int

const (
	neutral outcome = iota // canceled by the caller, or by Trip
	success
	failure
)

func classify(err error) outcome {
	if err == nil || errors.Is(err, io.EOF) {
		return success
	}
	switch status.Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded:
		return failure
	case codes.Canceled:
		return neutral
	}
	if errors.Is(err, context.Canceled) {
		return neutral
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return failure
	}
	return success
}

// outcomeOf is classify(err) for a call made with the caller's ctx: a
// call the caller canceled because the peer was silent too long (a cause
// matching context.DeadlineExceeded) failed, as one past its deadline
// does, and one the caller canceled for another reason is neutral.
func outcomeOf(ctx context.Context, err error) outcome {
	o := classify(err)
	if o == success || ctx.Err() == nil {
		return o
	}
	if errors.Is(context.Cause(ctx), context.DeadlineExceeded) {
		return failure
	}
	return neutral // the caller gave up
}

// record counts a call's outcome.
func (b *Breaker) record(o outcome, probe bool) {
	if probe {
		b.mu.Lock()
		defer b.mu.Unlock()
		if BreakerState(b.state.Load()) != BreakerHalfOpen {
			return // Trip or Reset came first
		}
		switch o {
		case success:
			b.failures.Store(0)
			b.state.Store(int32(BreakerClosed))
			b.log.Info("circuit breaker closed: probe succeeded")
		case failure:
			b.openedAt.Store(time.Now().UnixNano())
			b.state.Store(int32(BreakerOpen))
			b.log.Debug("circuit breaker stays open: probe failed")
		default:
			// Not the peer's fault: the next call probes at once.
			b.openedAt.Store(time.Now().Add(-b.cfg.OpenFor).UnixNano())
			b.state.Store(int32(BreakerOpen))
		}
		return
	}
	switch o {
	case success:
		if b.failures.Load() != 0 {
			b.failures.Store(0)
		}
	case failure:
		if b.failures.Add(1) < int32(b.cfg.Failures) {
			return
		}
		b.mu.Lock()
		defer b.mu.Unlock()
		if BreakerState(b.state.Load()) == BreakerClosed && b.failures.Load() >= int32(b.cfg.Failures) {
			b.openedAt.Store(time.Now().UnixNano())
			b.state.Store(int32(BreakerOpen))
			b.log.Warn("circuit breaker opened", "failures", b.failures.Load())
		}
	}
}

func (b *Breaker) openErr() error { return &Unavailable{Peer: b.peer, Err: ErrBreakerOpen} }

// begin registers a call with its context; the caller must call end.
func (b *Breaker) begin(ctx context.Context, timeout time.Duration) (context.Context, *inflight) {
	var cctx context.Context
	c := &inflight{}
	if timeout > 0 {
		cctx, c.cancel = context.WithTimeout(ctx, timeout)
	} else {
		cctx, c.cancel = context.WithCancel(ctx)
	}
	b.callsMu.Lock()
	b.calls[c] = struct{}{}
	b.callsMu.Unlock()
	return cctx, c
}

func (b *Breaker) end(c *inflight) {
	c.cancel()
	b.callsMu.Lock()
	delete(b.calls, c)
	b.callsMu.Unlock()
}

// UnaryClientInterceptor returns the interceptor of the unary calls to
// the peer: it refuses them while the breaker is open, bounds each by
// CallTimeout, cancels it on Trip, and counts its outcome.
func (b *Breaker) UnaryClientInterceptor() grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		ok, probe := b.allow()
		if !ok {
			return b.openErr()
		}
		cctx, c := b.begin(ctx, b.cfg.CallTimeout)
		defer b.end(c)
		if b.tripped.Load() { // Trip came before the registration
			b.record(neutral, probe)
			return b.openErr()
		}
		err := invoker(cctx, method, req, reply, cc, opts...)
		if err != nil && c.tripped.Load() && ctx.Err() == nil {
			b.record(neutral, probe)
			return b.openErr()
		}
		b.record(outcomeOf(ctx, err), probe)
		return err
	}
}

// StreamClientInterceptor returns the interceptor of the streams to the
// peer: it refuses them while the breaker is open and cancels them on
// Trip (their RecvMsg then returns a *Unavailable); it puts no deadline
// on them. A stream counts as a success once a message or its end comes
// back, as a failure if it cannot start or breaks with Unavailable or
// DeadlineExceeded.
func (b *Breaker) StreamClientInterceptor() grpc.StreamClientInterceptor {
	return func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
		ok, probe := b.allow()
		if !ok {
			return nil, b.openErr()
		}
		cctx, c := b.begin(ctx, 0)
		if b.tripped.Load() { // Trip came before the registration
			b.end(c)
			b.record(neutral, probe)
			return nil, b.openErr()
		}
		cs, err := streamer(cctx, desc, cc, method, opts...)
		if err != nil {
			b.end(c)
			if c.tripped.Load() && ctx.Err() == nil {
				b.record(neutral, probe)
				return nil, b.openErr()
			}
			b.record(outcomeOf(ctx, err), probe)
			return nil, err
		}
		// The stream ends when its context does (the caller's, or
		// Trip's) or when RecvMsg returns an error: unregister then.
		context.AfterFunc(cctx, func() { b.end(c) })
		return &breakerStream{ClientStream: cs, b: b, c: c, ctx: ctx, probe: probe}, nil
	}
}

// breakerStream counts a stream's outcome and ends its registration.
type breakerStream struct {
	grpc.ClientStream
	b        *Breaker
	c        *inflight
	ctx      context.Context // the caller's
	probe    bool
	recorded atomic.Bool
}

func (s *breakerStream) RecvMsg(m any) error {
	err := s.ClientStream.RecvMsg(m)
	if err == nil {
		if !s.recorded.Load() && s.recorded.CompareAndSwap(false, true) {
			s.b.record(success, s.probe)
		}
		return nil
	}
	s.c.cancel() // the stream is over; AfterFunc unregisters it
	if s.c.tripped.Load() && s.ctx.Err() == nil {
		if s.recorded.CompareAndSwap(false, true) {
			s.b.record(neutral, s.probe)
		}
		return s.b.openErr()
	}
	if o := outcomeOf(s.ctx, err); s.recorded.CompareAndSwap(false, true) {
		s.b.record(o, s.probe)
	} else if o == failure {
		s.b.record(failure, false)
	}
	return err
}

func (s *breakerStream) SendMsg(m any) error {
	err := s.ClientStream.SendMsg(m)
	if err != nil && s.c.tripped.Load() && s.ctx.Err() == nil {
		return s.b.openErr()
	}
	return err
}
