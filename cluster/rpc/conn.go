package rpc

import (
	"fmt"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"

	"github.com/mailsys/mailsys/cluster"
)

// MaxMessageSize bounds one gRPC message either way. Bodies travel in
// chunks far below it; a list (a folder's UIDs) may be large.
const MaxMessageSize = 64 << 20

// chunkSize is the size of the pieces a body is streamed in.
const chunkSize = 256 << 10

// NewServer returns a gRPC server for a node's listener: mutual TLS with
// creds (a client certificate from the cluster CA required), keepalives
// that notice a dead client within a minute, and MaxMessageSize. Register
// the services on it, then Serve a listener.
func NewServer(creds cluster.Credentials, opts ...grpc.ServerOption) *grpc.Server {
	base := []grpc.ServerOption{
		grpc.Creds(credentials.NewTLS(creds.ServerConfig())),
		grpc.MaxRecvMsgSize(MaxMessageSize),
		grpc.MaxSendMsgSize(MaxMessageSize),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: 30 * time.Second, Timeout: 10 * time.Second}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 5 * time.Second, PermitWithoutStream: true}),
	}
	return grpc.NewServer(append(base, opts...)...)
}

// Dial returns a connection to node peer (its id, which its certificate
// must name) at addr, with mutual TLS from creds and keepalives every 10
// seconds. It does not wait for the connection: the first call makes it.
// opts come after the defaults (a cluster.Breaker's interceptors, say).
func Dial(addr, peer string, creds cluster.Credentials, opts ...grpc.DialOption) (*grpc.ClientConn, error) {
	base := []grpc.DialOption{
		grpc.WithTransportCredentials(credentials.NewTLS(creds.ClientConfig(peer))),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(MaxMessageSize), grpc.MaxCallSendMsgSize(MaxMessageSize)),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: 10 * time.Second, Timeout: 5 * time.Second, PermitWithoutStream: true}),
	}
	conn, err := grpc.NewClient("passthrough:///"+addr, append(base, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("rpc: dial %s at %s: %w", peer, addr, err)
	}
	return conn, nil
}
