package pop3_test

import (
	"strings"
	"testing"
	"time"

	"github.com/mailsys/mailsys/pop3"
)

// TestConfigValidate: Validate names every bad field at once, and
// NewServer refuses what it refuses.
func TestConfigValidate(t *testing.T) {
	bad := pop3.Config{LoginTimeout: -1, CommandTimeout: -time.Second, MaxSession: -time.Minute, WriteTimeout: -2}
	err := bad.Validate()
	if err == nil {
		t.Fatal("Validate accepted negative values and no TLS")
	}
	for _, field := range []string{"LoginTimeout", "CommandTimeout", "MaxSession", "WriteTimeout", "TLS"} {
		if !strings.Contains(err.Error(), field) {
			t.Errorf("Validate's error does not name %s: %v", field, err)
		}
	}
	if srv, nerr := pop3.NewServer(bad, nil, nil); srv != nil || nerr == nil || nerr.Error() != err.Error() {
		t.Errorf("NewServer = %v, %v; want nil and Validate's error", srv, nerr)
	}
	d := pop3.DefaultConfig()
	d.InsecureAuth = true
	if err := d.Validate(); err != nil {
		t.Errorf("DefaultConfig with InsecureAuth: %v", err)
	}
	if d.Hostname == "" || d.LoginTimeout <= 0 || d.CommandTimeout < 10*time.Minute || d.MaxSession <= 0 || d.WriteTimeout <= 0 {
		t.Errorf("DefaultConfig leaves a default unset: %+v", d)
	}
}
