// Package rpc carries a mailsys cluster's traffic between nodes over gRPC
// with mutual TLS: a remote msstore.Storage (an MS node's bodies), a
// remote UserDB (a UD node's accounts, folders and index, with Watch as a
// server stream so that IMAP IDLE works across nodes) and a remote
// cluster.Directory (the embedded one, served by the node that holds it).
//
// Each service has a server side (Register*: serve a local implementation
// on a grpc.Server made by NewServer) and a client side (New*: an
// implementation of the same interface over a grpc.ClientConn made by
// Dial). The clients pass the conformance suites of the interfaces they
// implement (msstore/storetest, userdata/udtest) over loopback gRPC,
// unchanged.
//
// Errors cross the wire by name: a server error that wraps a sentinel of
// msstore, userdata or cluster comes out of the client wrapping the same
// sentinel. A peer that cannot be reached (the connection fails, the call
// runs past its deadline without an answer, or the peer's circuit breaker
// is open) gives a *cluster.Unavailable, which matches
// msstore.ErrUnavailable and userdata.ErrUnavailable.
//
// The messages and services are defined in the .proto files beside this
// one; the generated code in pb is committed. Regenerate it with
// go generate ./cluster/rpc (see gen.sh for the tools it needs).
package rpc

//go:generate sh gen.sh
