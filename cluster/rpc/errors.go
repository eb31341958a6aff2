package rpc

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/mailsys/mailsys/cluster"
	"github.com/mailsys/mailsys/msstore"
	"github.com/mailsys/mailsys/userdata"
)

// errorDomain is the ErrorInfo domain of the sentinels this package sends.
const errorDomain = "mailsys"

// sentinels are the errors that cross the wire by name, with the gRPC code
// a server answers them with. The first match in this order wins, so a
// more specific sentinel comes before a general one.
var sentinels = []struct {
	name string
	err  error
	code codes.Code
}{
	{"userdata.ErrFenced", userdata.ErrFenced, codes.FailedPrecondition},
	{"userdata.ErrNotFound", userdata.ErrNotFound, codes.NotFound},
	{"userdata.ErrExists", userdata.ErrExists, codes.AlreadyExists},
	{"userdata.ErrInvalid", userdata.ErrInvalid, codes.InvalidArgument},
	{"userdata.ErrAuthFailed", userdata.ErrAuthFailed, codes.Unauthenticated},
	{"userdata.ErrDisabled", userdata.ErrDisabled, codes.PermissionDenied},
	{"userdata.ErrProtocol", userdata.ErrProtocol, codes.PermissionDenied},
	{"userdata.ErrQuota", userdata.ErrQuota, codes.ResourceExhausted},
	{"userdata.ErrNotEmpty", userdata.ErrNotEmpty, codes.FailedPrecondition},
	{"userdata.ErrReadOnly", userdata.ErrReadOnly, codes.FailedPrecondition},
	{"userdata.ErrClosed", userdata.ErrClosed, codes.Unavailable},
	{"userdata.ErrBusy", userdata.ErrBusy, codes.ResourceExhausted},
	{"userdata.ErrFailed", userdata.ErrFailed, codes.Internal},
	{"msstore.ErrNotFound", msstore.ErrNotFound, codes.NotFound},
	{"msstore.ErrCorrupt", msstore.ErrCorrupt, codes.DataLoss},
	{"msstore.ErrTooLarge", msstore.ErrTooLarge, codes.InvalidArgument},
	{"msstore.ErrClosed", msstore.ErrClosed, codes.Unavailable},
	{"msstore.ErrReadOnly", msstore.ErrReadOnly, codes.FailedPrecondition},
	{"cluster.ErrNotFound", cluster.ErrNotFound, codes.NotFound},
	{"cluster.ErrExists", cluster.ErrExists, codes.AlreadyExists},
	{"cluster.ErrInvalid", cluster.ErrInvalid, codes.InvalidArgument},
	{"cluster.ErrNoNode", cluster.ErrNoNode, codes.Unavailable},
	{"cluster.ErrClosed", cluster.ErrClosed, codes.Unavailable},
	{"cluster.ErrConflict", cluster.ErrConflict, codes.Aborted},
}

// toStatus turns a server-side error into the gRPC status the client
// reads back with fromStatus: a sentinel travels by name in an ErrorInfo,
// a context's end as Canceled or DeadlineExceeded, and the text of err
// as the message.
func toStatus(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	switch {
	case errors.Is(err, userdata.ErrFenced):
		// Before the unavailable case it also matches: a standby told
		// so stops following, a front finds the new primary.
		return sentinelStatus(err, "userdata.ErrFenced", codes.FailedPrecondition)
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, err.Error())
	case cluster.IsUnavailable(err):
		// The server's own peer is down (a UD node that cannot reach an
		// MS node): temporary for the caller too.
		return status.Error(codes.Unavailable, err.Error())
	}
	for _, s := range sentinels {
		if errors.Is(err, s.err) {
			return sentinelStatus(err, s.name, s.code)
		}
	}
	return status.Error(codes.Unknown, err.Error())
}

// sentinelStatus is err as a status naming its sentinel.
func sentinelStatus(err error, name string, code codes.Code) error {
	st := status.New(code, err.Error())
	if d, derr := st.WithDetails(&errdetails.ErrorInfo{Reason: name, Domain: errorDomain}); derr == nil {
		st = d
	}
	return st.Err()
}

// fromStatus turns an error a client call returned into the error the
// interface promises: the sentinel the server named, wrapped with the
// server's message; ctx's error if ctx ended; a *cluster.Unavailable for a
// peer that could not be reached or did not answer in time.
func fromStatus(ctx context.Context, peer string, err error) error {
	if err == nil {
		return nil
	}
	st, ok := status.FromError(err)
	if !ok {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return err
	}
	for _, d := range st.Details() {
		info, ok := d.(*errdetails.ErrorInfo)
		if !ok || info.Domain != errorDomain {
			continue
		}
		for _, s := range sentinels {
			if s.name == info.Reason {
				return &remoteError{sentinel: s.err, msg: st.Message()}
			}
		}
	}
	switch st.Code() {
	case codes.Canceled:
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return context.Canceled
	case codes.DeadlineExceeded:
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return &cluster.Unavailable{Peer: peer, Err: errors.New(st.Message())}
	case codes.Unavailable:
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return &cluster.Unavailable{Peer: peer, Err: errors.New(st.Message())}
	}
	return fmt.Errorf("rpc: node %s: %s: %s", peer, st.Code(), st.Message())
}

// remoteError is a sentinel error that came back from a peer: it reads as
// the server's message and matches the sentinel.
type remoteError struct {
	sentinel error
	msg      string
}

func (e *remoteError) Error() string { return e.msg }
func (e *remoteError) Unwrap() error { return e.sentinel }
