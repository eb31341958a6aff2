package metrics

import (
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/mailsys/mailsys/imap"
	"github.com/mailsys/mailsys/mta"
	"github.com/mailsys/mailsys/pop3"
	"github.com/mailsys/mailsys/txlog"
)

// Metrics is a set of mailsys metrics in a registry of its own. Make one
// with New, hand its implementations (IMAP, POP3, SMTP, Deliveries,
// TxLog) to the packages' configs, point its Watch methods at what it
// collects on demand, and serve Handler. Its methods are safe for
// concurrent use.
type Metrics struct {
	reg *prometheus.Registry

	conns    *prometheus.CounterVec
	commands *prometheus.HistogramVec
	logins   *prometheus.CounterVec
	smtpTx   *prometheus.CounterVec
	delivery *prometheus.CounterVec

	imap, pop3, smtp *protocol
	deliveries       deliveries
	txlog            txLog

	mu      sync.Mutex
	sources sources
}

// CommandBuckets are the buckets, in seconds, of the command latency
// histograms: from 100 µs (a cached FETCH) to 30 s (a large APPEND or
// SEARCH on a slow disk).
var CommandBuckets = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}

// FsyncBuckets are the buckets, in seconds, of the transaction log's sync
// latency histogram: from 50 µs (a battery-backed cache) to 2.5 s.
var FsyncBuckets = []float64{.00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5}

// New returns a Metrics with every metric registered (the collectors of
// the Watch methods report nothing until they are given a source), and
// Go's runtime and process collectors.
func New() *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	m.conns = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "mailsys_connections_total",
		Help: "Connections accepted or refused by the access rules, per protocol and listener.",
	}, []string{"protocol", "listener", "result"})
	m.commands = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "mailsys_command_duration_seconds",
		Help:    "Time to run a protocol command, per protocol and command; its _count counts the commands.",
		Buckets: CommandBuckets,
	}, []string{"protocol", "command"})
	m.logins = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "mailsys_logins_total",
		Help: "Logins per protocol and mechanism, by result (success or failure).",
	}, []string{"protocol", "mechanism", "result"})
	m.smtpTx = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "mailsys_smtp_transactions_total",
		Help: "SMTP transactions accepted (250 to DATA), per listener.",
	}, []string{"listener"})
	m.delivery = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "mailsys_deliveries_total",
		Help: "Recipients of accepted messages by outcome: accepted, delivered, deferred (per failed attempt), bounced, relayed.",
	}, []string{"outcome"})
	m.imap = newProtocol(m, "imap", imapCommands)
	m.pop3 = newProtocol(m, "pop3", pop3Commands)
	m.smtp = newProtocol(m, "smtp", smtpCommands)
	m.deliveries.init(m.delivery)
	m.txlog.init()
	m.reg.MustRegister(m.conns, m.commands, m.logins, m.smtpTx, m.delivery,
		m.txlog.commits, m.txlog.records, m.txlog.fsync, &collector{m},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Registry returns the registry the metrics are in, for a host program
// to add its own.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler returns the handler of /metrics: the registry in Prometheus's
// exposition formats (text, or protobuf when asked), gzipped when the
// scraper accepts it. An error collecting a metric is answered 500.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// IMAP returns the imap.Metrics to set in imap.Config.Metrics.
func (m *Metrics) IMAP() imap.Metrics { return m.imap }

// POP3 returns the pop3.Metrics to set in pop3.Config.Metrics.
func (m *Metrics) POP3() pop3.Metrics { return m.pop3 }

// SMTP returns the mta.Metrics to set in mta.InboundConfig.Metrics (the
// MX and submission listeners share it: the listener is a label).
func (m *Metrics) SMTP() mta.Metrics { return smtpMetrics{m.smtp} }

// Deliveries returns the mta.DeliveryMetrics to set in
// mta.Deliverer.Metrics.
func (m *Metrics) Deliveries() mta.DeliveryMetrics { return &m.deliveries }

// TxLog returns the txlog.Metrics to set in txlog.Config.Metrics.
func (m *Metrics) TxLog() txlog.Metrics { return &m.txlog }

// maxLabels bounds the distinct values a label of one protocol takes
// (listeners, mechanisms); past it, new values count as "other".
const maxLabels = 32

// labels is a copy-on-write map from a label value to what it prepared
// (counters, an observer): lookups take no lock and allocate nothing.
type labels[T any] struct {
	cur  atomic.Pointer[map[string]T]
	mu   sync.Mutex // of writers
	make func(value string) T
}

// get returns value's T, made on first use; past maxLabels values it is
// "other"'s.
func (l *labels[T]) get(value string) T {
	if p := l.cur.Load(); p != nil {
		if t, ok := (*p)[value]; ok {
			return t
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	old := map[string]T{}
	if p := l.cur.Load(); p != nil {
		old = *p
		if t, ok := old[value]; ok {
			return t
		}
	}
	next := make(map[string]T, len(old)+1)
	for k, v := range old {
		next[k] = v
	}
	if len(old) >= maxLabels {
		value = "other"
		if t, ok := old[value]; ok {
			return t
		}
	}
	t := l.make(value)
	next[value] = t
	l.cur.Store(&next)
	return t
}

// protocol implements the protocol servers' Metrics for one protocol.
type protocol struct {
	name     string
	commands map[string]prometheus.Observer // the protocol's own, made by New: read-only
	other    prometheus.Observer
	conns    labels[[2]prometheus.Counter] // accepted, refused
	logins   labels[[2]prometheus.Counter] // success, failure
	smtpTx   labels[prometheus.Counter]
	accepted prometheus.Counter // recipients of accepted transactions
}

func newProtocol(m *Metrics, name string, commands []string) *protocol {
	p := &protocol{name: name, commands: map[string]prometheus.Observer{}}
	for _, c := range commands {
		p.commands[c] = m.commands.WithLabelValues(name, c)
	}
	p.other = m.commands.WithLabelValues(name, "other")
	p.conns.make = func(l string) [2]prometheus.Counter {
		return [2]prometheus.Counter{m.conns.WithLabelValues(name, l, "accepted"), m.conns.WithLabelValues(name, l, "refused")}
	}
	p.logins.make = func(mech string) [2]prometheus.Counter {
		return [2]prometheus.Counter{m.logins.WithLabelValues(name, mech, "success"), m.logins.WithLabelValues(name, mech, "failure")}
	}
	p.smtpTx.make = func(l string) prometheus.Counter { return m.smtpTx.WithLabelValues(l) }
	p.accepted = m.delivery.WithLabelValues("accepted")
	return p
}

func (p *protocol) ConnAccepted(listener string) { p.conns.get(listener)[0].Inc() }
func (p *protocol) ConnRefused(listener string)  { p.conns.get(listener)[1].Inc() }
func (p *protocol) LoginSucceeded(mech string)   { p.logins.get(mech)[0].Inc() }
func (p *protocol) LoginFailed(mech string)      { p.logins.get(mech)[1].Inc() }

func (p *protocol) Command(name string, elapsed time.Duration) {
	o, ok := p.commands[name]
	if !ok {
		o = p.other
	}
	o.Observe(elapsed.Seconds())
}

// smtpMetrics is the SMTP listeners' protocol, with Accepted.
type smtpMetrics struct{ *protocol }

func (s smtpMetrics) Accepted(listener string, recipients int) {
	s.smtpTx.get(listener).Inc()
	s.accepted.Add(float64(recipients))
}

// The commands each protocol reports (see the packages' Metrics).
var (
	imapCommands = []string{"SELECT", "EXAMINE", "CREATE", "DELETE", "RENAME", "SUBSCRIBE", "UNSUBSCRIBE", "LIST", "STATUS",
		"APPEND", "UNSELECT", "EXPUNGE", "SEARCH", "FETCH", "STORE", "COPY", "MOVE", "NAMESPACE", "LOGIN", "AUTHENTICATE"}
	pop3Commands = []string{"CAPA", "QUIT", "USER", "PASS", "AUTH", "STLS", "APOP", "STAT", "LIST", "RETR", "DELE", "NOOP", "RSET", "TOP", "UIDL"}
	smtpCommands = []string{"MAIL", "RCPT", "DATA", "AUTH"}
)

// deliveries implements mta.DeliveryMetrics.
type deliveries struct {
	byOutcome [4]prometheus.Counter // indexed by mta.Outcome
}

func (d *deliveries) init(v *prometheus.CounterVec) {
	for _, o := range []mta.Outcome{mta.Delivered, mta.Deferred, mta.Bounced, mta.Relayed} {
		d.byOutcome[o] = v.WithLabelValues(o.String())
	}
}

func (d *deliveries) Delivery(o mta.Outcome, recipients int) {
	if int(o) < len(d.byOutcome) {
		d.byOutcome[o].Add(float64(recipients))
	}
}

// txLog implements txlog.Metrics.
type txLog struct {
	commits, records prometheus.Counter
	fsync            prometheus.Histogram
}

func (t *txLog) init() {
	t.commits = prometheus.NewCounter(prometheus.CounterOpts{Name: "mailsys_txlog_group_commits_total",
		Help: "Group commits of the delivery transaction log (one sync each)."})
	t.records = prometheus.NewCounter(prometheus.CounterOpts{Name: "mailsys_txlog_records_total",
		Help: "Records written by the group commits; divided by the commits, the mean batch."})
	t.fsync = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "mailsys_txlog_fsync_duration_seconds",
		Help: "Time of a group commit's sync (fdatasync).", Buckets: FsyncBuckets})
}

func (t *txLog) GroupCommit(records int, sync time.Duration) {
	t.commits.Inc()
	t.records.Add(float64(records))
	t.fsync.Observe(sync.Seconds())
}
