package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/mailsys/mailsys/msstore"
	"github.com/mailsys/mailsys/userdata"
)

// hangService is the standard health service, except that a Check of
// service "hang" blocks until its caller gives up.
type hangService struct {
	*health.Server
	entered chan struct{} // a value each time a "hang" Check starts
}

func (h *hangService) Check(ctx context.Context, req *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
	if req.Service == "hang" {
		select {
		case h.entered <- struct{}{}:
		default:
		}
		<-ctx.Done()
		return nil, status.FromContextError(ctx.Err()).Err()
	}
	return h.Server.Check(ctx, req)
}

type testServer struct {
	addr    string
	health  *hangService
	handled atomic.Int64 // calls and streams the server saw
}

// drainEntered forgets the "hang" Checks that started so far.
func (ts *testServer) drainEntered() {
	for {
		select {
		case <-ts.health.entered:
		default:
			return
		}
	}
}

// startHealthServer serves hangService over loopback until the test ends.
func startHealthServer(t testing.TB) *testServer {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{addr: l.Addr().String(), health: &hangService{Server: health.NewServer(), entered: make(chan struct{}, 16)}}
	srv := grpc.NewServer(
		grpc.UnaryInterceptor(func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			ts.handled.Add(1)
			return h(ctx, req)
		}),
		grpc.StreamInterceptor(func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
			ts.handled.Add(1)
			return h(srv, ss)
		}))
	healthpb.RegisterHealthServer(srv, ts.health)
	go srv.Serve(l)
	t.Cleanup(srv.Stop)
	return ts
}

// dialBreaker returns a health client to addr through b's interceptors
// (b nil: a plain connection).
func dialBreaker(t testing.TB, addr string, b *Breaker) healthpb.HealthClient {
	t.Helper()
	opts := []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	if b != nil {
		opts = append(opts, grpc.WithChainUnaryInterceptor(b.UnaryClientInterceptor()),
			grpc.WithChainStreamInterceptor(b.StreamClientInterceptor()))
	}
	conn, err := grpc.NewClient("passthrough:///"+addr, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return healthpb.NewHealthClient(conn)
}

func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

func check(ctx context.Context, c healthpb.HealthClient, service string) error {
	_, err := c.Check(ctx, &healthpb.HealthCheckRequest{Service: service})
	return err
}

// wantOpenErr checks that err is the breaker's refusal, for peer.
func wantOpenErr(t *testing.T, err error, peer string) {
	t.Helper()
	var u *Unavailable
	if !errors.As(err, &u) || u.Peer != peer || !errors.Is(err, ErrBreakerOpen) {
		t.Fatalf("err = %v, want *Unavailable{%s, ErrBreakerOpen}", err, peer)
	}
	if !errors.Is(err, msstore.ErrUnavailable) || !errors.Is(err, userdata.ErrUnavailable) || !IsUnavailable(err) {
		t.Fatalf("err = %v does not match the backends' ErrUnavailable", err)
	}
}

// wantFastRefusal checks that calls fail at once (the median of 21
// under 1ms: one may be slowed by the scheduler) with the breaker's error,
// and that the server never sees them.
func wantFastRefusal(t *testing.T, ts *testServer, c healthpb.HealthClient, peer string) {
	t.Helper()
	before := ts.handled.Load()
	var took [21]time.Duration
	for i := range took {
		start := time.Now()
		err := check(context.Background(), c, "")
		took[i] = time.Since(start)
		wantOpenErr(t, err, peer)
	}
	slices.Sort(took[:])
	if d := took[len(took)/2]; d > time.Millisecond {
		t.Errorf("refused calls took %v (median), want < 1ms", d)
	}
	if n := ts.handled.Load(); n != before {
		t.Errorf("server saw %d calls through an open breaker", n-before)
	}
}

func TestBreakerOpensAfterFailures(t *testing.T) {
	t.Parallel()
	ts := startHealthServer(t)
	b := NewBreaker("ud1", BreakerConfig{Failures: 3, OpenFor: time.Hour, CallTimeout: 5 * time.Second, Logger: quietLogger()})
	c := dialBreaker(t, ts.addr, b)
	ctx := context.Background()
	// The caller's own deadline passing counts as a failure too.
	hang := func() error {
		ctx, cancel := context.WithTimeout(ctx, 30*time.Millisecond)
		defer cancel()
		return check(ctx, c, "hang")
	}

	// Application errors are answers: they never open it.
	for range 10 {
		if err := check(ctx, c, "no-such-service"); status.Code(err) != codes.NotFound {
			t.Fatalf("Check(no-such-service) = %v, want NotFound", err)
		}
	}
	// Timeouts count, in a row only: a success in between starts over.
	for range 2 {
		if err := hang(); status.Code(err) != codes.DeadlineExceeded {
			t.Fatalf("Check(hang) = %v, want DeadlineExceeded", err)
		}
	}
	if err := check(ctx, c, ""); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		hang()
	}
	if s := b.State(); s != BreakerClosed {
		t.Fatalf("state after 2 failures in a row = %v, want closed", s)
	}
	hang()
	if s := b.State(); s != BreakerOpen {
		t.Fatalf("state after 3 failures in a row = %v, want open", s)
	}
	wantFastRefusal(t, ts, c, "ud1")
	// Streams are refused too.
	if _, err := c.Watch(ctx, &healthpb.HealthCheckRequest{}); err != nil {
		wantOpenErr(t, err, "ud1")
	} else {
		t.Fatal("Watch through an open breaker started")
	}
}

func TestBreakerUnreachablePeerOpens(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nobody listens there now: connection refused
	b := NewBreaker("ms2", BreakerConfig{Failures: 2, OpenFor: time.Hour, Logger: quietLogger()})
	c := dialBreaker(t, addr, b)
	for i := range 2 {
		if err := check(context.Background(), c, ""); status.Code(err) != codes.Unavailable {
			t.Fatalf("call %d = %v, want Unavailable", i, err)
		}
	}
	if s := b.State(); s != BreakerOpen {
		t.Fatalf("state = %v, want open", s)
	}
	wantOpenErr(t, check(context.Background(), c, ""), "ms2")
}

func TestBreakerCallTimeout(t *testing.T) {
	t.Parallel()
	ts := startHealthServer(t)
	b := NewBreaker("ud1", BreakerConfig{CallTimeout: 300 * time.Millisecond, Logger: quietLogger()})
	c := dialBreaker(t, ts.addr, b)
	if err := check(context.Background(), c, ""); err != nil { // connect first
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		deadline time.Duration // 0: none
		min, max time.Duration
	}{
		{"no deadline", 0, 300 * time.Millisecond, 2 * time.Second},
		{"later deadline", time.Minute, 300 * time.Millisecond, 2 * time.Second},
		{"earlier deadline", 30 * time.Millisecond, 30 * time.Millisecond, 250 * time.Millisecond},
	} {
		ctx := context.Background()
		if tc.deadline > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, tc.deadline)
			defer cancel()
		}
		start := time.Now()
		err := check(ctx, c, "hang")
		d := time.Since(start)
		if status.Code(err) != codes.DeadlineExceeded || d < tc.min || d > tc.max {
			t.Errorf("%s: Check(hang) = %v after %v, want DeadlineExceeded in [%v, %v]", tc.name, err, d, tc.min, tc.max)
		}
	}
}

func TestBreakerHalfOpenProbe(t *testing.T) {
	t.Parallel()
	ts := startHealthServer(t)
	const openFor = 100 * time.Millisecond
	b := NewBreaker("ms1", BreakerConfig{Failures: 1, OpenFor: openFor, CallTimeout: 200 * time.Millisecond, Logger: quietLogger()})
	c := dialBreaker(t, ts.addr, b)
	ctx := context.Background()

	check(ctx, c, "hang")
	if s := b.State(); s != BreakerOpen {
		t.Fatalf("state = %v, want open", s)
	}
	wantFastRefusal(t, ts, c, "ms1")

	// After OpenFor, one probe goes; the others are refused while it runs.
	time.Sleep(openFor + 20*time.Millisecond)
	if s := b.State(); s != BreakerHalfOpen {
		t.Fatalf("state after OpenFor = %v, want half-open", s)
	}
	ts.drainEntered()
	probe := make(chan error, 1)
	go func() { probe <- check(ctx, c, "hang") }()
	select {
	case <-ts.health.entered:
	case <-time.After(5 * time.Second):
		t.Fatal("the probe did not reach the server")
	}
	wantFastRefusal(t, ts, c, "ms1")
	if err := <-probe; status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("probe = %v, want DeadlineExceeded", err)
	}
	// The failed probe opened it again, for OpenFor.
	if s := b.State(); s != BreakerOpen {
		t.Fatalf("state after a failed probe = %v, want open", s)
	}
	wantFastRefusal(t, ts, c, "ms1")

	time.Sleep(openFor + 20*time.Millisecond)
	if err := check(ctx, c, ""); err != nil {
		t.Fatalf("second probe: %v", err)
	}
	if s := b.State(); s != BreakerClosed {
		t.Fatalf("state after a successful probe = %v, want closed", s)
	}
	for range 5 {
		if err := check(ctx, c, ""); err != nil {
			t.Fatal(err)
		}
	}
}

func TestBreakerTripCancelsInFlight(t *testing.T) {
	t.Parallel()
	ts := startHealthServer(t)
	b := NewBreaker("ud2", BreakerConfig{CallTimeout: 10 * time.Second, OpenFor: 10 * time.Millisecond, Logger: quietLogger()})
	c := dialBreaker(t, ts.addr, b)
	ctx := context.Background()

	// A long-lived stream (the kind Watch keeps open), cut by Trip too.
	ts.health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	stream, err := c.Watch(ctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); err != nil {
		t.Fatal(err)
	}

	const calls = 4
	errs := make(chan error, calls)
	for range calls {
		go func() { errs <- check(ctx, c, "hang") }()
	}
	for range calls {
		select {
		case <-ts.health.entered:
		case <-time.After(5 * time.Second):
			t.Fatal("the calls did not reach the server")
		}
	}
	start := time.Now()
	b.Trip()
	for range calls {
		select {
		case err := <-errs:
			wantOpenErr(t, err, "ud2")
		case <-time.After(100 * time.Millisecond):
			t.Fatalf("an in-flight call still blocked %v after Trip", time.Since(start))
		}
	}
	streamErr := make(chan error, 1)
	go func() { _, err := stream.Recv(); streamErr <- err }()
	select {
	case err := <-streamErr:
		wantOpenErr(t, err, "ud2")
	case <-time.After(100 * time.Millisecond):
		t.Fatal("the stream still open 100ms after Trip")
	}
	if d := time.Since(start); d > 100*time.Millisecond {
		t.Errorf("Trip took %v to cancel the calls", d)
	}

	// Tripped, it stays open past OpenFor: the heartbeat will say when
	// the peer is back.
	time.Sleep(30 * time.Millisecond)
	if s := b.State(); s != BreakerOpen {
		t.Fatalf("tripped state after OpenFor = %v, want open", s)
	}
	wantFastRefusal(t, ts, c, "ud2")

	b.Reset()
	if s := b.State(); s != BreakerClosed {
		t.Fatalf("state after Reset = %v, want closed", s)
	}
	if err := check(ctx, c, ""); err != nil {
		t.Fatalf("call after Reset: %v", err)
	}
	b.callsMu.Lock()
	n := len(b.calls)
	b.callsMu.Unlock()
	if n != 0 {
		t.Errorf("%d calls still registered after they ended", n)
	}
}

func TestBreakerStreamNoDeadline(t *testing.T) {
	t.Parallel()
	ts := startHealthServer(t)
	b := NewBreaker("ud3", BreakerConfig{CallTimeout: 20 * time.Millisecond, Logger: quietLogger()})
	c := dialBreaker(t, ts.addr, b)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ts.health.SetServingStatus("mail", healthpb.HealthCheckResponse_SERVING)
	stream, err := c.Watch(ctx, &healthpb.HealthCheckRequest{Service: "mail"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // five CallTimeouts
	ts.health.SetServingStatus("mail", healthpb.HealthCheckResponse_NOT_SERVING)
	resp, err := stream.Recv()
	if err != nil {
		t.Fatalf("stream after 5 CallTimeouts: %v", err)
	}
	if resp.Status != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Fatalf("status = %v", resp.Status)
	}
	cancel()
	if _, err := stream.Recv(); status.Code(err) != codes.Canceled {
		t.Fatalf("Recv after the caller's cancel = %v, want Canceled", err)
	}
	if s := b.State(); s != BreakerClosed {
		t.Fatalf("state = %v, want closed", s)
	}
	deadline := time.Now().Add(time.Second)
	for {
		b.callsMu.Lock()
		n := len(b.calls)
		b.callsMu.Unlock()
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d streams still registered after they ended", n)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestBreakerCallerGaveUp: a stream and a unary call whose caller
// cancels them with a cause matching context.DeadlineExceeded (a watchdog
// that gave up on a silent peer, as rpc.Storage's) count as failures, as
// calls past their deadline do; cancelled without that cause, neither.
func TestBreakerCallerGaveUp(t *testing.T) {
	t.Parallel()
	ts := startHealthServer(t)
	ts.health.SetServingStatus("mail", healthpb.HealthCheckResponse_SERVING)
	gaveUp := fmt.Errorf("no answer within 1s: %w", context.DeadlineExceeded)
	for _, tc := range []struct {
		name  string
		cause error
		want  BreakerState
	}{{"plain cancel", nil, BreakerClosed}, {"gave up", gaveUp, BreakerOpen}} {
		b := NewBreaker("ms7", BreakerConfig{Failures: 2, OpenFor: time.Hour, Logger: quietLogger()})
		c := dialBreaker(t, ts.addr, b)
		// A stream, silent after its first message.
		ctx, cancel := context.WithCancelCause(context.Background())
		stream, err := c.Watch(ctx, &healthpb.HealthCheckRequest{Service: "mail"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := stream.Recv(); err != nil {
			t.Fatal(err)
		}
		cancel(tc.cause)
		if _, err := stream.Recv(); status.Code(err) != codes.Canceled {
			t.Fatalf("%s: Recv = %v, want Canceled", tc.name, err)
		}
		// A unary call the server does not answer.
		ts.drainEntered()
		ctx, cancel = context.WithCancelCause(context.Background())
		go func() {
			<-ts.health.entered
			cancel(tc.cause)
		}()
		if err := check(ctx, c, "hang"); status.Code(err) != codes.Canceled {
			t.Fatalf("%s: Check = %v, want Canceled", tc.name, err)
		}
		if s := b.State(); s != tc.want {
			t.Errorf("%s: state %v after a stream and a call given up, want %v", tc.name, s, tc.want)
		}
	}
}

// TestBreakerConcurrent flaps the breaker under calls from many
// goroutines: under -race, and every refused call is the breaker's error.
func TestBreakerConcurrent(t *testing.T) {
	t.Parallel()
	ts := startHealthServer(t)
	b := NewBreaker("ms3", BreakerConfig{Failures: 2, OpenFor: time.Millisecond, Logger: quietLogger()})
	c := dialBreaker(t, ts.addr, b)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var refused, ok atomic.Int64
	for range 8 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				err := check(context.Background(), c, "")
				switch {
				case err == nil:
					ok.Add(1)
				case errors.Is(err, ErrBreakerOpen):
					refused.Add(1)
				default:
					t.Errorf("call: %v", err)
					return
				}
			}
		})
	}
	for range 50 {
		b.Trip()
		time.Sleep(time.Millisecond)
		b.Reset()
		time.Sleep(time.Millisecond)
	}
	close(stop)
	wg.Wait()
	if ok.Load() == 0 || refused.Load() == 0 {
		t.Errorf("ok %d, refused %d: want both", ok.Load(), refused.Load())
	}
	if s := b.State(); s != BreakerClosed {
		t.Errorf("state after Reset = %v", s)
	}
}

func TestBreakerStateString(t *testing.T) {
	for s, want := range map[BreakerState]string{BreakerClosed: "closed", BreakerOpen: "open", BreakerHalfOpen: "half-open", 7: "BreakerState(7)"} {
		if got := s.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", s, got, want)
		}
	}
}

// BenchmarkBreakerUnary measures a loopback health Check through a closed
// breaker; x_plain is its time over the same call on a connection
// without the breaker, timed in the same run.
func BenchmarkBreakerUnary(b *testing.B) {
	ts := startHealthServer(b)
	plain := dialBreaker(b, ts.addr, nil)
	through := dialBreaker(b, ts.addr, NewBreaker("ms1", BreakerConfig{Logger: quietLogger()}))
	ctx := context.Background()
	for _, c := range []healthpb.HealthClient{plain, through} {
		if err := check(ctx, c, ""); err != nil {
			b.Fatal(err)
		}
	}
	// Interleaved in chunks, so that drift in the machine's load falls
	// on both alike.
	run := func(c healthpb.HealthClient, n int) time.Duration {
		start := time.Now()
		for range n {
			if err := check(ctx, c, ""); err != nil {
				b.Fatal(err)
			}
		}
		return time.Since(start)
	}
	var withBreaker, base time.Duration
	b.ResetTimer()
	b.StopTimer()
	for done := 0; done < b.N; {
		n := min(100, b.N-done)
		b.StartTimer()
		withBreaker += run(through, n)
		b.StopTimer()
		base += run(plain, n)
		done += n
	}
	b.ReportMetric(float64(withBreaker)/float64(base), "x_plain")
}

// BenchmarkBreakerOpen measures a call refused by an open breaker;
// x_call is its time over a plain loopback call, timed in the same run.
func BenchmarkBreakerOpen(b *testing.B) {
	ts := startHealthServer(b)
	plain := dialBreaker(b, ts.addr, nil)
	br := NewBreaker("ms1", BreakerConfig{Logger: quietLogger()})
	through := dialBreaker(b, ts.addr, br)
	ctx := context.Background()
	if err := check(ctx, plain, ""); err != nil {
		b.Fatal(err)
	}
	br.Trip()
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		if err := check(ctx, through, ""); !errors.Is(err, ErrBreakerOpen) {
			b.Fatal(err)
		}
	}
	refused := time.Since(start)
	b.StopTimer()
	start = time.Now()
	for range b.N {
		if err := check(ctx, plain, ""); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(refused)/float64(time.Since(start)), "x_call")
}
