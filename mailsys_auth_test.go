package mailsys_test

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/mailsys/mailsys"
	"github.com/mailsys/mailsys/internal/selfsigned"
	"github.com/mailsys/mailsys/mta"
	"github.com/mailsys/mailsys/userdata"
)

// TestPasswordChecksShared: one limiter bounds the password checks of
// every listener. With room for one check and no queue, concurrent wrong
// passwords over IMAP, POP3 and submission are each answered either as a
// failed login or with the protocol's "try again later", never more than
// one check runs, and a cached login of a real user still gets in.
func TestPasswordChecksShared(t *testing.T) {
	cert, err := selfsigned.New("localhost", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	sys, err := mailsys.Open(t.Context(), mailsys.Config{
		DataDir: t.TempDir(), Hostname: "mx.example.test",
		SubmissionAddr: "127.0.0.1:0", IMAPAddr: "127.0.0.1:0", POP3Addr: "127.0.0.1:0",
		TLS: &tls.Config{Certificates: []tls.Certificate{cert}}, InsecureAuth: true,
		Passwords: userdata.PasswordLimiterConfig{MaxChecks: 1, MaxWaiting: -1},
		Access:    mta.GuardConfig{AuthFailures: 1 << 20, AddrAuthFailures: -1, AccountFailures: -1},
		Logger:    slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sys.EnsureUser(t.Context(), "ann@example.test", "right"); err != nil {
		t.Fatal(err)
	}
	if err := sys.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sys.Shutdown(t.Context()) })
	addrs := sys.Addrs() // submission, IMAP, POP3: Config order
	sub, imapAddr, pop := addrs[0].String(), addrs[1].String(), addrs[2].String()

	imapLogin := func(pw string) string {
		c, err := net.DialTimeout("tcp", imapAddr, 5*time.Second)
		if err != nil {
			return err.Error()
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(20 * time.Second))
		r := bufio.NewReader(c)
		r.ReadString('\n')
		fmt.Fprintf(c, "a LOGIN ann@example.test %q\r\n", pw)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return err.Error()
			}
			if strings.HasPrefix(line, "a ") {
				return strings.TrimSpace(line)
			}
		}
	}
	popLogin := func(pw string) string {
		c, err := net.DialTimeout("tcp", pop, 5*time.Second)
		if err != nil {
			return err.Error()
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(20 * time.Second))
		r := bufio.NewReader(c)
		r.ReadString('\n')
		fmt.Fprintf(c, "USER ann@example.test\r\n")
		r.ReadString('\n')
		fmt.Fprintf(c, "PASS %s\r\n", pw)
		line, _ := r.ReadString('\n')
		return strings.TrimSpace(line)
	}
	subLogin := func(pw string) string {
		c, err := smtp.DialStartTLS(sub, &tls.Config{InsecureSkipVerify: true})
		if err != nil {
			return err.Error()
		}
		defer c.Close()
		err = c.Auth(sasl.NewPlainClient("", "ann@example.test", pw))
		if se, ok := errors.AsType[*smtp.SMTPError](err); ok {
			e := se.EnhancedCode
			return fmt.Sprintf("%d %d.%d.%d %s", se.Code, e[0], e[1], e[2], se.Message)
		}
		if err != nil {
			return err.Error()
		}
		return "OK"
	}
	// The real user logs in once, before the storm: the login cache has it.
	if r := imapLogin("right"); !strings.HasPrefix(r, "a OK") {
		t.Fatalf("first login: %s", r)
	}

	busy := map[string]string{"imap": "NO [UNAVAILABLE]", "pop3": "-ERR [SYS/TEMP]", "submission": "454 4.7.0"}
	failed := map[string]string{"imap": "NO [AUTHENTICATIONFAILED]", "pop3": "-ERR [AUTH]", "submission": "535 5.7.8"}
	login := map[string]func(string) string{"imap": imapLogin, "pop3": popLogin, "submission": subLogin}
	var mu sync.Mutex
	counts := map[string]int{}
	var wg sync.WaitGroup
	for i := range 18 {
		proto := []string{"imap", "pop3", "submission"}[i%3]
		wg.Go(func() {
			r := login[proto](fmt.Sprint("wrong", i))
			mu.Lock()
			defer mu.Unlock()
			switch {
			case strings.Contains(r, busy[proto]):
				counts["busy"]++
			case strings.Contains(r, failed[proto]):
				counts["failed"]++
			default:
				t.Errorf("%s wrong password: %q; want %q or %q", proto, r, failed[proto], busy[proto])
			}
		})
	}
	start := time.Now()
	if r := imapLogin("right"); !strings.HasPrefix(r, "a OK") {
		t.Errorf("cached login during the storm: %s", r)
	} else if d := time.Since(start); d > 2*time.Second {
		t.Errorf("cached login during the storm took %v", d)
	}
	wg.Wait()
	st := sys.Passwords().Stats()
	t.Logf("outcomes %v, limiter %+v", counts, st)
	if st.PeakRunning != 1 {
		t.Errorf("%d password checks ran at once, the limit is 1", st.PeakRunning)
	}
	if counts["busy"] == 0 || counts["failed"] == 0 {
		t.Errorf("outcomes %v: want some checked and some refused as busy", counts)
	}
}
