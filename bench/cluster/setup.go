package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"sync"
	"time"

	"github.com/mailsys/mailsys"
	"github.com/mailsys/mailsys/cluster"
	"github.com/mailsys/mailsys/cluster/node"
	"github.com/mailsys/mailsys/msstore"
)

// setup is one System under test: the front's listeners and what it runs
// on.
type setup struct {
	name  string
	sys   *mailsys.System
	smtp  string
	imap  string
	users mailsys.UserDB
	store msstore.Storage
	udDir string // the UserDB's files
	msDir string // the store's files
	stop  func()
}

var quiet = slog.New(slog.DiscardHandler)

// frontConfig is the System both setups run: inbound SMTP and IMAP with
// plain-text logins (loopback only) and no SPF/DKIM/DMARC checks (their
// DNS lookups would dominate), so that what differs is where the UserDB
// and Storage are.
func frontConfig(dataDir string) mailsys.Config {
	return mailsys.Config{
		DataDir:       dataDir,
		Hostname:      "bench.example",
		SMTPAddr:      "127.0.0.1:0",
		IMAPAddr:      "127.0.0.1:0",
		InsecureAuth:  true,
		DisableVerify: true,
		Logger:        quiet,
	}
}

// startLocal starts the all-in-one System: UserDB and Storage embedded.
func startLocal(ctx context.Context, dir string) (*setup, error) {
	sys, err := mailsys.Open(ctx, frontConfig(dir))
	if err != nil {
		return nil, err
	}
	if err := sys.Start(ctx); err != nil {
		sys.Shutdown(ctx)
		return nil, err
	}
	a := sys.Addrs()
	return &setup{
		name: "local", sys: sys, smtp: a[0].String(), imap: a[1].String(),
		users: sys.UserDB(), store: sys.Storage(),
		udDir: filepath.Join(dir, "userdb"), msDir: filepath.Join(dir, "store"),
		stop: func() { sys.Shutdown(context.Background()) },
	}, nil
}

// variant is a cluster layout to measure.
type variant struct {
	name     string
	standby  bool // ud1 gets a synchronous standby, ud1b
	replicas int  // copies of each body (2: a second MS node, ms2)
}

// startRemote starts the nodes of v in this process: front (holding the
// embedded directory), ud1 and ms1, with ud1b and ms2 as v asks, each with
// its own gRPC listener and heartbeat on loopback, mutual TLS from a CA
// made here.
func startRemote(ctx context.Context, dir string, v variant) (*setup, error) {
	certs := filepath.Join(dir, "certs")
	ca, err := cluster.NewCA("bench", 24*time.Hour)
	if err != nil {
		return nil, err
	}
	if err := ca.WriteFiles(certs); err != nil {
		return nil, err
	}
	ids := []string{"front", "ud1", "ms1"}
	roles := []cluster.Role{cluster.RoleFront, cluster.RoleUD, cluster.RoleMS}
	if v.standby {
		ids, roles = append(ids, "ud1b"), append(roles, cluster.RoleUD)
	}
	if v.replicas > 1 {
		ids, roles = append(ids, "ms2"), append(roles, cluster.RoleMS)
	}
	rpcAddrs, gossipAddrs := make([]string, len(ids)), make([]string, len(ids))
	for i, id := range ids {
		if err := ca.IssueFiles(certs, id, []string{"127.0.0.1"}, 24*time.Hour); err != nil {
			return nil, err
		}
		if rpcAddrs[i], err = freePort(); err != nil {
			return nil, err
		}
		if gossipAddrs[i], err = freePort(); err != nil {
			return nil, err
		}
	}
	cfgs := make([]node.Config, len(ids))
	for i, id := range ids {
		c := node.Config{
			ID: id, Num: uint32(i + 1), Roles: roles[i], DataDir: filepath.Join(dir, id),
			Listen: rpcAddrs[i], Gossip: gossipAddrs[i],
			Cert: filepath.Join(certs, id+".pem"), Key: filepath.Join(certs, id+".key"), CA: filepath.Join(certs, "ca.pem"),
			Logger: quiet,
		}
		for j := range ids {
			if j != i {
				c.Seeds = append(c.Seeds, gossipAddrs[j])
			}
		}
		if roles[i] == cluster.RoleUD && v.standby {
			c.Group = "ud1"
		}
		if i == 0 {
			c.HoldDirectory = true
			c.Front = frontConfig("")
			c.Replicas = v.replicas
			c.Peers = ids[1:]
		} else {
			c.DirectoryNode, c.DirectoryAddr = ids[0], rpcAddrs[0]
		}
		cfgs[i] = c
	}
	nodes := make([]*node.Node, len(ids))
	errs := make([]error, len(ids))
	var wg sync.WaitGroup
	for i := range cfgs {
		if i == 3 && v.standby {
			// ud1 first, so that it creates its group and is the
			// primary: the standby joins it.
			wg.Wait()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			nodes[i], errs[i] = node.Start(ctx, cfgs[i])
		}()
	}
	wg.Wait()
	stop := func() {
		sctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		for _, n := range nodes {
			if n != nil {
				n.Shutdown(sctx)
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		stop()
		return nil, err
	}
	sys := nodes[0].System()
	a := sys.Addrs()
	if v.standby {
		if err := waitInStep(ctx, nodes[0].Directory()); err != nil {
			stop()
			return nil, err
		}
	}
	return &setup{
		name: v.name, sys: sys, smtp: a[0].String(), imap: a[1].String(),
		users: sys.UserDB(), store: sys.Storage(),
		udDir: filepath.Join(cfgs[1].DataDir, "ud"), msDir: filepath.Join(cfgs[2].DataDir, "ms"),
		stop: stop,
	}, nil
}

// waitInStep waits until ud1's standby is in step.
func waitInStep(ctx context.Context, d cluster.Directory) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		reg, err := d.Registry(ctx)
		if err != nil {
			return err
		}
		if g, ok := reg.Group("ud1"); ok && g.Synced {
			return nil
		}
		if time.Now().After(deadline) {
			return errors.New("ud1's standby not in step within 30 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// freePort returns a loopback address with a port that was free, for TCP
// and UDP both (memberlist listens on both).
func freePort() (string, error) {
	for range 20 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return "", err
		}
		addr := l.Addr().String()
		u, err := net.ListenPacket("udp", addr)
		l.Close()
		if err != nil {
			continue
		}
		u.Close()
		return addr, nil
	}
	return "", fmt.Errorf("no free loopback port for TCP and UDP")
}
