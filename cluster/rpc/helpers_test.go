package rpc

import (
	"crypto/tls"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/mailsys/mailsys/cluster"
)

// testCreds makes a CA and the credentials of a server node (id server)
// and a client node, for tests over loopback.
func testCreds(t testing.TB, server string) (srv, cli cluster.Credentials) {
	t.Helper()
	ca := testCA(t)
	return issueCreds(t, ca, server), issueCreds(t, ca, "client")
}

// testCA makes a cluster CA for a test.
func testCA(t testing.TB) *cluster.CA {
	t.Helper()
	ca, err := cluster.NewCA("test", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

// issueCreds issues node id's credentials, for 127.0.0.1, with ca.
func issueCreds(t testing.TB, ca *cluster.CA, id string) cluster.Credentials {
	t.Helper()
	certPEM, keyPEM, err := ca.Issue(id, []string{"127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	c, err := cluster.NewCredentials(cert, ca.CertPEM())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// within polls cond for up to d, failing the test if it does not hold by
// then.
func within(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(d); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, d)
		}
	}
}

// serve starts a gRPC server over mutual TLS on a loopback port, with the
// services register adds, and returns a client connection to it. Both end
// with the test.
func serve(t testing.TB, register func(*grpc.Server)) *grpc.ClientConn {
	t.Helper()
	srvCreds, cliCreds := testCreds(t, "peer")
	srv := NewServer(srvCreds)
	register(srv)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	t.Cleanup(srv.Stop)
	conn, err := Dial(l.Addr().String(), "peer", cliCreds)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}
