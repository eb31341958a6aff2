package metrics

import (
	"strconv"
	"testing"
	"time"

	"github.com/mailsys/mailsys/mta"
)

// TestNoAllocs: the event methods allocate nothing once a label value
// has been seen.
func TestNoAllocs(t *testing.T) {
	m := New()
	imap, smtp, d, tl := m.IMAP(), m.SMTP(), m.Deliveries(), m.TxLog()
	imap.ConnAccepted("imap")
	imap.LoginFailed("LOGIN")
	smtp.Accepted("smtp", 1)
	n := testing.AllocsPerRun(1000, func() {
		imap.Command("FETCH", time.Millisecond)
		imap.Command("XYZZY", time.Millisecond) // unknown: "other"
		imap.ConnAccepted("imap")
		imap.LoginFailed("LOGIN")
		smtp.Accepted("smtp", 2)
		d.Delivery(mta.Delivered, 1)
		tl.GroupCommit(3, time.Millisecond)
	})
	if n != 0 {
		t.Errorf("%v allocations per round of events", n)
	}
}

// TestLabelsBounded: a label cannot take more than maxLabels values, and
// unknown commands count as "other".
func TestLabelsBounded(t *testing.T) {
	m := New()
	p := m.POP3()
	for i := range 10 * maxLabels {
		p.LoginFailed("MECH" + strconv.Itoa(i))
		p.Command("CMD"+strconv.Itoa(i), time.Millisecond)
	}
	fams, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	series := map[string]int{}
	other := 0.0
	for _, f := range fams {
		for _, s := range f.GetMetric() {
			series[f.GetName()]++
			if f.GetName() == "mailsys_logins_total" {
				for _, l := range s.GetLabel() {
					if l.GetName() == "mechanism" && l.GetValue() == "other" {
						other += s.GetCounter().GetValue()
					}
				}
			}
		}
	}
	// Each mechanism, and "other", has a success and a failure series.
	if n := series["mailsys_logins_total"]; n != 2*(maxLabels+1) {
		t.Errorf("%d login series, want %d", n, 2*(maxLabels+1))
	}
	if want := float64(10*maxLabels - maxLabels); other != want {
		t.Errorf("other = %v, want %v", other, want)
	}
	// The commands are the protocols' own and an "other" each: the
	// unknown ones made no series.
	want := len(imapCommands) + len(pop3Commands) + len(smtpCommands) + 3
	if n := series["mailsys_command_duration_seconds"]; n != want {
		t.Errorf("%d command series, want %d", n, want)
	}
}

// BenchmarkCommand measures the cost of reporting an IMAP command to the
// Prometheus implementation against the no-op a nil Metrics means, each
// op 1,000 of each, alternated, and reports the ratio.
func BenchmarkCommand(b *testing.B) {
	m := New().IMAP()
	var none noop
	var base, with time.Duration
	for b.Loop() {
		t0 := time.Now()
		for range 1000 {
			none.Command("FETCH", time.Millisecond)
		}
		t1 := time.Now()
		for range 1000 {
			m.Command("FETCH", time.Millisecond)
		}
		base, with = base+t1.Sub(t0), with+time.Since(t1)
	}
	n := float64(b.N) * 1000
	b.ReportMetric(float64(base.Nanoseconds())/n, "ns/noop")
	b.ReportMetric(float64(with.Nanoseconds())/n, "ns/prometheus")
	b.ReportMetric(float64(with-base)/n, "ns_added/command")
}

type noop struct{}

//go:noinline
func (noop) Command(string, time.Duration) {}
