package node

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mailsys/mailsys/cluster"
)

func writeFile(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "node.toml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

const msFile = `
id = "ms1"
num = 4
roles = "ms"
data_dir = "data"
listen = "127.0.0.1:7001"
gossip = "127.0.0.1:7946"
seeds = ["127.0.0.2:7946"]
cert = "certs/ms1.pem"
key = "certs/ms1.key"
ca = "/etc/mailsys/ca.pem"
call_timeout = "2s"

[directory]
node = "front"
addr = "127.0.0.2:7001"
`

// TestLoadFile reads a file: relative paths are the file's directory's,
// absolute ones stay, and the Config has what the file says.
func TestLoadFile(t *testing.T) {
	p := writeFile(t, msFile)
	f, err := LoadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Dir(p)
	if f.DataDir != filepath.Join(dir, "data") || f.Cert != filepath.Join(dir, "certs/ms1.pem") || f.CA != "/etc/mailsys/ca.pem" {
		t.Errorf("paths: data %q cert %q ca %q", f.DataDir, f.Cert, f.CA)
	}
	c, err := f.Config()
	if err != nil {
		t.Fatal(err)
	}
	if c.ID != "ms1" || c.Num != 4 || c.Roles != cluster.RoleMS || c.CallTimeout.Seconds() != 2 ||
		c.DirectoryNode != "front" || c.DirectoryAddr != "127.0.0.2:7001" || len(c.Seeds) != 1 {
		t.Errorf("Config = %+v", c)
	}
}

// TestLoadFileFront: the [front] table, run_as and allow_root included,
// reaches the front's mailsys.Config.
func TestLoadFileFront(t *testing.T) {
	body := strings.Replace(msFile, `roles = "ms"`, `roles = "front"`, 1) + `
[front]
hostname = "mail.example.org"
smtp = "0.0.0.0:25"
run_as = "mail"
allow_root = true
`
	f, err := LoadFile(writeFile(t, body))
	if err != nil {
		t.Fatal(err)
	}
	c, err := f.Config()
	if err != nil {
		t.Fatal(err)
	}
	if c.Front.Hostname != "mail.example.org" || c.Front.SMTPAddr != "0.0.0.0:25" || c.Front.RunAs != "mail" || !c.Front.AllowRoot || c.Front.TLS == nil {
		t.Errorf("Front = %+v", c.Front)
	}
}

// TestLoadFileErrors: unknown keys, bad roles, bad durations and a
// missing directory are each reported, never taken for defaults.
func TestLoadFileErrors(t *testing.T) {
	if _, err := LoadFile(writeFile(t, msFile+"\nweigth = 3\n")); err == nil || !strings.Contains(err.Error(), "weigth") {
		t.Errorf("unknown key: %v", err)
	}
	for name, body := range map[string]string{
		"roles":        strings.Replace(msFile, `roles = "ms"`, `roles = "mx"`, 1),
		"call_timeout": strings.Replace(msFile, `"2s"`, `"soon"`, 1),
		"directory":    strings.Split(msFile, "[directory]")[0],
		"gossip":       strings.Replace(msFile, `gossip = "127.0.0.1:7946"`, `gossip = "nowhere"`, 1),
		"listen":       strings.Replace(msFile, `listen = "127.0.0.1:7001"`, ``, 1),
	} {
		f, err := LoadFile(writeFile(t, body))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if _, err := f.Config(); err == nil {
			t.Errorf("%s: Config accepted %s", name, body)
		}
	}
}

// TestValidate: a Config names every problem at once.
func TestValidate(t *testing.T) {
	err := (&Config{}).Validate()
	if err == nil {
		t.Fatal("the zero Config is valid")
	}
	for _, want := range []string{"DataDir", "Gossip", "Cert", "directory"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v, does not mention %s", err, want)
		}
	}
}
