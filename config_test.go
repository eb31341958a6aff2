package mailsys_test

import (
	"crypto/tls"
	"strings"
	"testing"

	"github.com/mailsys/mailsys"
	"github.com/mailsys/mailsys/msstore"
)

// TestValidateReportsEverything: one Validate names every problem of a
// config, each with its field, the components' own included.
func TestValidateReportsEverything(t *testing.T) {
	cfg := mailsys.Config{
		SMTPAddr:          "127.0.0.1:2525",
		SubmissionAddr:    "127.0.0.1:2525",
		IMAPTLSAddr:       "no port",
		POP3Addr:          "127.0.0.1:1110",
		RunAs:             "a:b:c",
		StoreConfig:       msstore.Config{VolumeSize: -1},
		SubmissionTLSAddr: "127.0.0.1:2465",
	}
	err := cfg.Validate()
	if err == nil {
		t.Fatal("Validate accepted a config with seven problems")
	}
	for _, want := range []string{
		"DataDir: required",
		"RunAs: needs a DataDir",
		`RunAs: "a:b:c"`,
		"StoreConfig: ", "VolumeSize -1",
		"SubmissionAddr: 127.0.0.1:2525 is SMTPAddr's address too",
		"IMAPTLSAddr: address no port: missing port",
		"IMAPTLSAddr: an implicit-TLS listener needs TLS",
		"SubmissionTLSAddr: an implicit-TLS listener needs TLS",
		"POP3: ",
		"SubmissionAddr: without TLS nobody could log in",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Validate's error lacks %q:\n%v", want, err)
		}
	}

	good := mailsys.DefaultConfig(t.TempDir())
	good.SMTPAddr, good.IMAPAddr, good.TLS = "127.0.0.1:0", "127.0.0.1:0", &tls.Config{}
	if err := good.Validate(); err != nil {
		t.Errorf("DefaultConfig with two listeners: %v", err)
	}
}
