package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"
)

// haResult is what the high-availability phase measured.
type haResult struct {
	baseline, standby, replicas2 float64         // SMTP deliveries/s
	gaps                         []time.Duration // failover gaps, one per run
}

// deliveries measures SMTP deliveries/s (each 250 durable, every message
// then in its INBOX) on variant v.
func deliveries(ctx context.Context, o *options, v variant) (float64, error) {
	s, err := startRemote(ctx, filepath.Join(o.dir, v.name), v)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", v.name, err)
	}
	defer s.stop()
	for i := range o.users {
		if _, err := s.sys.EnsureUser(ctx, userAddr(i), password); err != nil {
			return 0, fmt.Errorf("%s: user: %w", v.name, err)
		}
	}
	rate, _, err := smtpLoad(ctx, s, o)
	if err != nil {
		return 0, fmt.Errorf("%s: smtp: %w", v.name, err)
	}
	if err := waitDelivered(ctx, s, o); err != nil {
		return 0, fmt.Errorf("%s: %w", v.name, err)
	}
	fmt.Fprintf(os.Stderr, "%s: smtp %.0f msg/s\n", v.name, rate)
	return rate, nil
}

// measureHA measures the SMTP deliveries of the remote setup without and
// with ud1's synchronous standby, and with two replicas of each body,
// alternating them runs times so that drift in the machine's speed falls
// on all three; then the failover gap o.failoverRuns times.
func measureHA(ctx context.Context, o *options) (*haResult, error) {
	r := &haResult{}
	variants := []variant{{name: "remote-ha-baseline", replicas: 1}, {name: "remote-standby", standby: true, replicas: 1}, {name: "remote-replicas2", replicas: 2}}
	rates := make([][]float64, len(variants))
	for run := range o.haRuns {
		for i, v := range variants {
			v.name = fmt.Sprintf("%s-%d", v.name, run)
			rate, err := deliveries(ctx, o, v)
			if err != nil {
				return nil, err
			}
			rates[i] = append(rates[i], rate)
		}
	}
	r.baseline, r.standby, r.replicas2 = median(rates[0]), median(rates[1]), median(rates[2])
	for run := range o.failoverRuns {
		gap, err := failoverGap(ctx, o, run)
		if err != nil {
			return nil, fmt.Errorf("failover run %d: %w", run+1, err)
		}
		fmt.Fprintf(os.Stderr, "failover run %d: gap %v\n", run+1, gap.Round(time.Millisecond))
		r.gaps = append(r.gaps, gap)
	}
	return r, nil
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

func (r *haResult) print(w io.Writer) {
	fmt.Fprintf(w, "high availability (remote setups, SMTP deliveries/s, median of the runs):\n")
	fmt.Fprintf(w, "  %-44s %8.0f\n", "front, ud1, ms1", r.baseline)
	fmt.Fprintf(w, "  %-44s %8.0f   ratio %.2f\n", "ud1 with a synchronous standby (ud1b)", r.standby, r.standby/r.baseline)
	fmt.Fprintf(w, "  %-44s %8.0f   ratio %.2f\n", "two replicas of each body (ms1, ms2)", r.replicas2, r.replicas2/r.baseline)
	if len(r.gaps) > 0 {
		g := slices.Clone(r.gaps)
		slices.Sort(g)
		fmt.Fprintf(w, "  failover gap, UD primary killed (examples/cluster, %d runs): p50 %v, min %v, max %v\n",
			len(g), g[len(g)/2].Round(time.Millisecond), g[0].Round(time.Millisecond), g[len(g)-1].Round(time.Millisecond))
	}
	fmt.Fprintf(w, "ratio_with_standby=%.2f replicas2=%.2f", r.standby/r.baseline, r.replicas2/r.baseline)
	if len(r.gaps) > 0 {
		g := slices.Clone(r.gaps)
		slices.Sort(g)
		fmt.Fprintf(w, " failover_gap_p50=%v", g[len(g)/2].Round(time.Millisecond))
	}
	fmt.Fprintln(w)
}

var nodeLine = regexp.MustCompile(`^node role=(\S+) id=(\S+) pid=(\d+) addr=(\S+)$`)

// failoverGap runs examples/cluster with -standby as processes, kills the
// primary of group ud1 with SIGKILL and returns how long, from the kill,
// until every user logs in and SELECTs its INBOX over IMAP again.
func failoverGap(ctx context.Context, o *options, run int) (time.Duration, error) {
	bin, err := launcher(o)
	if err != nil {
		return 0, err
	}
	data := filepath.Join(o.dir, fmt.Sprintf("failover-%d", run))
	base := fmt.Sprintf("127.%d.%d.", 10+rand.IntN(240), 1+rand.IntN(250))
	imapAddr := base + "2:1143"
	args := []string{"-data", data, "-ip", base + "2", "-standby", "-supervise=false", "-insecure-auth", "-verify=false", "-outbound=false", "-dkim=false",
		"-smtp", base + "2:2525", "-submission", "", "-imap", imapAddr, "-pop3", ""}
	var users []string
	for i := range 4 {
		users = append(users, userAddr(i))
		args = append(args, "-user", userAddr(i)+":"+password)
	}
	cmd := exec.CommandContext(ctx, bin, args...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return 0, err
	}
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
		}
	}()
	pids := map[string]int{}
	sc := bufio.NewScanner(out)
	ready := false
	for !ready && sc.Scan() {
		if m := nodeLine.FindStringSubmatch(sc.Text()); m != nil {
			pids[m[2]], _ = strconv.Atoi(m[3])
		}
		ready = strings.HasPrefix(sc.Text(), "cluster ready ")
	}
	if !ready {
		return 0, errors.New("the cluster did not start; logs in " + filepath.Join(data, "logs"))
	}
	go io.Copy(io.Discard, out)
	primary, err := groupPrimary(data, "ud1")
	if err != nil {
		return 0, err
	}
	for _, u := range users {
		if err := login(imapAddr, u); err != nil {
			return 0, fmt.Errorf("before the kill: %w", err)
		}
	}
	killed := time.Now()
	if err := syscall.Kill(pids[primary], syscall.SIGKILL); err != nil {
		return 0, err
	}
	// Every user's session works again; a user that never failed counts
	// from its first success.
	deadline := killed.Add(30 * time.Second)
	for _, u := range users {
		for login(imapAddr, u) != nil {
			if time.Now().After(deadline) {
				return 0, fmt.Errorf("%s cannot log in 30 s after the kill", u)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return time.Since(killed), nil
}

// groupPrimary reads from the nodes' logs which node serves group g.
func groupPrimary(data, g string) (string, error) {
	for _, id := range []string{g, g + "b"} {
		b, err := os.ReadFile(filepath.Join(data, "logs", id+".log"))
		if err != nil {
			return "", err
		}
		if strings.Contains(string(b), "group created; serving as its primary") || strings.Contains(string(b), "serving as the group's primary") {
			return id, nil
		}
	}
	return "", fmt.Errorf("no primary of group %s in the logs", g)
}

func login(addr, user string) error {
	c, err := imapclient.DialInsecure(addr, nil)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Login(user, password).Wait(); err != nil {
		return err
	}
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		return err
	}
	return c.Logout().Wait()
}

// launcher builds examples/cluster once, into o.dir.
func launcher(o *options) (string, error) {
	bin := filepath.Join(o.dir, "cluster-launcher")
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	mod, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	root := filepath.Dir(strings.TrimSpace(string(mod)))
	build := exec.Command("go", "build", "-o", bin, "./examples/cluster")
	build.Dir = root
	if b, err := build.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building examples/cluster: %v\n%s", err, b)
	}
	return bin, nil
}
