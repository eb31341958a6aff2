package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mailsys/mailsys/msstore"
	"github.com/mailsys/mailsys/mta/queue"
	"github.com/mailsys/mailsys/userdata"
)

// QueueStater is what WatchQueue reads: *queue.Queue satisfies it.
type QueueStater interface{ Stats() queue.Stats }

// StoreStater is what WatchStore reads: *msstore.Volumes satisfies it.
type StoreStater interface{ Stats() msstore.Stats }

// PeerState is a cluster peer's health as WatchPeers reports it.
type PeerState struct {
	// Peer is the peer's node ID.
	Peer string
	// Healthy is whether traffic goes to the peer now.
	Healthy bool
	// Breaker is its circuit breaker's state: "closed", "open" or
	// "half-open".
	Breaker string
}

// sources are what the collector reads at scrape time; each may be nil.
type sources struct {
	queue  QueueStater
	store  StoreStater
	logins userdata.LoginCacheStater
	peers  func() []PeerState
}

// WatchQueue makes the scrapes report q's size and oldest message
// (mailsys_queue_messages, mailsys_queue_held_messages,
// mailsys_queue_oldest_age_seconds); nil stops it. Stats is called at
// each scrape and must not block for long.
func (m *Metrics) WatchQueue(q QueueStater) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sources.queue = q
}

// WatchStore makes the scrapes report s's sizes and compactions
// (mailsys_store_*); nil stops it.
func (m *Metrics) WatchStore(s StoreStater) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sources.store = s
}

// WatchLoginCache makes the scrapes report the login cache's hits,
// misses and size (mailsys_login_cache_*); nil stops it.
func (m *Metrics) WatchLoginCache(c userdata.LoginCacheStater) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sources.logins = c
}

// WatchPeers makes the scrapes report the cluster peers' health
// (mailsys_cluster_peer_up, mailsys_cluster_peer_breaker_state); peers is
// called at each scrape, must be safe for concurrent use and must not
// block. Nil stops it.
func (m *Metrics) WatchPeers(peers func() []PeerState) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sources.peers = peers
}

// Descriptions of the metrics collected at scrape time.
var (
	descQueueMessages = prometheus.NewDesc("mailsys_queue_messages", "Messages in the outbound queue, held ones included.", nil, nil)
	descQueueHeld     = prometheus.NewDesc("mailsys_queue_held_messages", "Messages on hold in the outbound queue.", nil, nil)
	descQueueAge      = prometheus.NewDesc("mailsys_queue_oldest_age_seconds", "Age of the oldest message in the outbound queue (0 when empty).", nil, nil)

	descStoreLive        = prometheus.NewDesc("mailsys_store_live_bytes", "Bytes of the message store's live bodies.", nil, nil)
	descStoreDead        = prometheus.NewDesc("mailsys_store_dead_bytes", "Bytes of the message store that compaction can reclaim.", nil, nil)
	descStoreDisk        = prometheus.NewDesc("mailsys_store_disk_bytes", "Size of the message store's volume files.", nil, nil)
	descStoreVolumes     = prometheus.NewDesc("mailsys_store_volumes", "Volume files of the message store.", nil, nil)
	descStoreBodies      = prometheus.NewDesc("mailsys_store_bodies", "Bodies with references in the message store.", nil, nil)
	descStoreCompactions = prometheus.NewDesc("mailsys_store_compactions_total", "Volumes rewritten by compaction since the store opened.", nil, nil)
	descStoreReclaimed   = prometheus.NewDesc("mailsys_store_compaction_reclaimed_bytes_total", "Disk space compaction freed since the store opened.", nil, nil)

	descLoginHits    = prometheus.NewDesc("mailsys_login_cache_hits_total", "Logins the login cache answered without a password check.", nil, nil)
	descLoginMisses  = prometheus.NewDesc("mailsys_login_cache_misses_total", "Logins the login cache could not answer.", nil, nil)
	descLoginEntries = prometheus.NewDesc("mailsys_login_cache_entries", "Logins cached now.", nil, nil)

	descPeerUp      = prometheus.NewDesc("mailsys_cluster_peer_up", "1 if traffic goes to the cluster peer, 0 if it is masked.", []string{"peer"}, nil)
	descPeerBreaker = prometheus.NewDesc("mailsys_cluster_peer_breaker_state", "1 for the state the peer's circuit breaker is in.", []string{"peer", "state"}, nil)
)

// collector reports the sources at scrape time.
type collector struct{ m *Metrics }

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descQueueMessages, descQueueHeld, descQueueAge, descStoreLive, descStoreDead, descStoreDisk,
		descStoreVolumes, descStoreBodies, descStoreCompactions, descStoreReclaimed, descLoginHits, descLoginMisses, descLoginEntries,
		descPeerUp, descPeerBreaker} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	c.m.mu.Lock()
	src := c.m.sources
	c.m.mu.Unlock()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v)
	}
	if src.queue != nil {
		st := src.queue.Stats()
		age := 0.0
		if !st.Oldest.IsZero() {
			age = max(0, time.Since(st.Oldest).Seconds())
		}
		gauge(descQueueMessages, float64(st.Messages))
		gauge(descQueueHeld, float64(st.Held))
		gauge(descQueueAge, age)
	}
	if src.store != nil {
		st := src.store.Stats()
		gauge(descStoreLive, float64(st.LiveBytes))
		gauge(descStoreDead, float64(st.DeadBytes))
		gauge(descStoreDisk, float64(st.DiskBytes))
		gauge(descStoreVolumes, float64(st.Volumes))
		gauge(descStoreBodies, float64(st.Bodies))
		counter(descStoreCompactions, float64(st.Compacted))
		counter(descStoreReclaimed, float64(st.Reclaimed))
	}
	if src.logins != nil {
		if st := src.logins.LoginCacheStats(); st.Enabled {
			counter(descLoginHits, float64(st.Hits))
			counter(descLoginMisses, float64(st.Misses))
			gauge(descLoginEntries, float64(st.Entries))
		}
	}
	if src.peers != nil {
		for _, p := range src.peers() {
			up := 0.0
			if p.Healthy {
				up = 1
			}
			gauge(descPeerUp, up, p.Peer)
			for _, s := range []string{"closed", "open", "half-open"} {
				v := 0.0
				if s == p.Breaker {
					v = 1
				}
				gauge(descPeerBreaker, v, p.Peer, s)
			}
		}
	}
}
