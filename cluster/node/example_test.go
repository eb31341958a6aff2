package node_test

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/mailsys/mailsys/cluster/node"
)

// A deployment runs one node per machine from a file like this one;
// node.Run(ctx, f, logger, nil) starts it and serves until ctx ends.
func ExampleLoadFile() {
	dir, _ := os.MkdirTemp("", "node-example")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "ud1.toml")
	os.WriteFile(path, []byte(`
id = "ud1"
num = 2
roles = "ud"
data_dir = "data"
listen = "10.0.0.3:7001"
gossip = "10.0.0.3:7946"
seeds = ["10.0.0.2:7946"]
cert = "certs/ud1.pem"
key = "certs/ud1.key"
ca = "certs/ca.pem"

[directory]
postgres = "postgres://mailsys@db.internal/mailsys"
`), 0o600)
	f, err := node.LoadFile(path)
	if err != nil {
		fmt.Println(err)
		return
	}
	cfg, err := f.Config()
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(cfg.ID, cfg.Roles, cfg.Listen, filepath.Base(cfg.DataDir))
	// Output: ud1 ud 10.0.0.3:7001 data
}
