package metrics_test

import (
	"fmt"
	"io"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/mailsys/mailsys/metrics"
)

// A Metrics hands its implementations to the packages' configs (here one
// IMAP event by hand, as imap.Server would report it) and serves them.
func Example() {
	m := metrics.New()
	m.IMAP().LoginFailed("LOGIN")
	m.IMAP().Command("FETCH", 3*time.Millisecond)

	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL)
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for line := range strings.Lines(string(body)) {
		if strings.HasPrefix(line, "mailsys_logins_total{") || strings.HasPrefix(line, `mailsys_command_duration_seconds_count{command="FETCH"`) {
			fmt.Print(line)
		}
	}
	// Output:
	// mailsys_command_duration_seconds_count{command="FETCH",protocol="imap"} 1
	// mailsys_logins_total{mechanism="LOGIN",protocol="imap",result="failure"} 1
	// mailsys_logins_total{mechanism="LOGIN",protocol="imap",result="success"} 0
}
