// Package metrics exports a mail system's figures to Prometheus. It
// implements the small metrics interfaces the other packages declare
// (imap.Metrics, pop3.Metrics, mta.Metrics, mta.DeliveryMetrics,
// txlog.Metrics), so that none of them imports Prometheus, and collects
// what the packages keep anyway (the queue's size and age, the store's
// live and dead bytes, the login cache's hits, the cluster peers'
// health) from their Stats methods when it is scraped.
//
// A Metrics has its own prometheus.Registry, never the global one: two
// Systems in one process have two. Handler serves it in the text
// exposition format, for the admin listener's /metrics.
//
// Every name starts with "mailsys_". Label values are bounded: command
// names outside the protocol's own list are counted as "other", and past
// maxLabels distinct values of a label the rest are "other" too, so a
// client cannot grow the registry.
//
// The event methods (the packages' interfaces) are safe for concurrent
// use and allocate nothing once a label value has been seen: each looks
// up its prepared metric in a copy-on-write map.
package metrics
