// Package queue is the outbound mail queue of mailsys: it takes the mail
// submitted for other domains, holds it durably, and sends it to the
// world.
//
// Enqueue returns once a message is on disk (a synced Pebble batch in
// Config.Dir: its envelope, its body in chunks, each recipient's state),
// and is idempotent by Message.ID, so that the delivery agent upstream
// (mta.Deliverer, which queues a transaction of its log once however
// often it is replayed) never sends a message twice. With a Signer the
// message is signed (DKIM) as it is queued.
//
// # Delivery
//
// Recipients are grouped by destination: their domain's MX hosts (RFC
// 5321 §5.1: lowest preference first, random among equals; the domain's
// own addresses when it has no MX; a null MX, RFC 7505, is a permanent
// failure), or a route that Config names (a transport map entry, a smart
// host with AUTH over TLS). Each host's addresses are tried in turn, IPv4
// and IPv6, up to ten addresses an attempt. The client is go-smtp's: EHLO
// with Config.Hostname, SIZE checked before the transaction, SMTPUTF8 and
// 8BITMIME asked for only when the message needs them (and a bounce,
// 5.6.7 or 5.6.3, when the host lacks what it needs), the DSN parameters
// passed on to a host that offers DSN, and STARTTLS whenever offered.
// With a host that offers PIPELINING (RFC 2920), a transaction's MAIL,
// RCPTs and DATA go in one write, written here (go-smtp's client waits
// for each reply); go-smtp's client does the rest of the session. One
// connection carries a destination's messages one after another (up to
// Config.MaxPerConnection).
//
// # TLS policies
//
// Without a policy, STARTTLS is opportunistic (RFC 7435): used when
// offered, the certificate not checked, and the message sent in clear
// if the handshake fails. An MTA-STS policy (RFC 8461, fetched and
// cached by mta/mtasts) in enforce mode limits the MX hosts to those it
// names and requires TLS with a certificate valid for the host; a DANE
// TLSA record set (RFC 7672), when the MX and address lookups and the
// TLSA lookup are all DNSSEC-authenticated (resolve.Result.Authentic),
// requires TLS with a certificate the records match (mta/dane). A host
// that does not meet the policy is skipped, and the message deferred if
// none does: never sent in clear.
//
// # Scheduling
//
// Each recipient has its own state (Queued, Deferred, Delivered,
// Failed), so a message to several domains is done for some while
// others wait. A temporary failure (a 4xx, a host that does not answer,
// a reply that breaks the protocol) defers the recipient: it is tried
// again after Config.RetryFirst, doubling up to RetryMax, each delay
// drawn within ±Jitter; past Config.Lifetime the next failure bounces it
// (4.4.7). Deliveries run in workers: at most Config.Concurrency in all
// and PerDestination for one destination, so that a slow destination
// holds no more than its share; a destination whose connections keep
// failing is marked dead for DeadFor, and its mail deferred without a
// try meanwhile.
//
// # Notifications
//
// A recipient that fails for good, or expires, is reported to the
// envelope sender with a delivery status notification (RFC 3464, built
// by mta/dsn, the original returned whole or its header per RET), as
// its NOTIFY allows; one still deferred after Config.DelayWarning gets
// one delay warning; one accepted by a host without DSN, whose NOTIFY
// asks for SUCCESS, is reported relayed. Notifications go to
// Config.Bounces from the null sender, and a message from the null
// sender is never reported on (no loops).
//
// # Crashes
//
// A recipient's final state is synced before its worker goes on, so a
// message accepted by the next hop is not sent again after a crash;
// but for the window SMTP itself cannot close: the host's 250 came (or
// was on its way) when the process died, before the state was written.
// The test TestCrashWhileQueued kills a queue with SIGKILL while 1,000
// messages wait for a slow host and counts those duplicates.
//
// # Management
//
// List and Get show each recipient's state, attempts and last reply;
// Retry makes a message due now; Hold and Release stop and restart its
// attempts; Delete removes it, with or without a bounce.
package queue
