// Package cluster spreads a mailsys system over many machines, as the
// large carrier systems do: front nodes run the protocol modules (mta,
// imap, pop3) and hold no mailbox data; UD nodes serve the UserDB
// (accounts, folders, the message index: a userdata.DB each); MS nodes
// serve message bodies (an msstore.Volumes each). One process may run
// several roles (see cluster/node, and examples/cluster for a whole
// cluster on one machine).
//
// # What is where
//
//   - The Directory is the cluster's shared record: the node registry (id,
//     number, roles, gRPC address, weight, mask) and, for every user, the
//     UD node that holds it, with the addresses that lead to it and the
//     domain aliases. cluster/pgdir keeps it in PostgreSQL (production:
//     every node reads it, changes to weights and masks reach every node
//     through LISTEN/NOTIFY); LocalDirectory keeps it in Pebble on one node,
//     which serves it to the others over gRPC (cluster/rpc).
//   - Placement is recorded, not computed. A new user goes to a UD node
//     chosen by weight (Placer) among the unmasked, healthy ones, and the
//     Directory records it before the node creates the account. A new body
//     goes to an MS node chosen the same way, and its msstore.Ref records
//     the node's number. Changing weights from 10:10 to 5:5:10 when a third
//     MS node is added therefore takes effect at once for new mail, and
//     moves nothing.
//   - Users is the UserDB a front runs on: each call about a user goes to
//     that user's UD node. Domains, domain aliases, units and service
//     classes are written to every UD node (limits are resolved where the
//     user is), with ids from the Directory's sequences so that they are
//     the same everywhere. A domain's quota is enforced by each UD node
//     over the users it holds (a cluster-wide domain quota would need a
//     shared counter). Storage is the msstore.Storage a front runs on:
//     Put places, Open, Retain and Release go to the node in the Ref. UD
//     nodes count body references on the MS nodes through a Storage too.
//
// # Failures
//
// A HeartBeat (Gossip, on hashicorp/memberlist) tells each node which
// peers are alive, and carries each node's roles, number, address and
// registry version in its metadata. Every peer is reached through one gRPC
// connection (mutual TLS, certificates from the cluster's CA) with a
// Breaker: it opens after a few failed calls, or at once when the
// heartbeat declares the peer dead; calls to an open breaker fail in
// microseconds with a *Unavailable, a temporary error that the protocol
// servers answer with their "try again later" (SMTP 451 4.3.0, IMAP NO
// [UNAVAILABLE], POP3 -ERR [SYS/TEMP]). A breaker the heartbeat tripped
// closes when the heartbeat says the peer is back; one that opened on
// failed calls lets one probe call through after a second (half-open)
// and closes when it succeeds.
//
// So: while one MS node is healthy, no delivery fails because another is
// down (the body goes to the next by weight, and the front's transaction
// log keeps the 250-means-durable promise across its own crashes); the
// users of a UD node that is down get temporary errors, and the users of
// the other UD nodes are not affected.
//
// docs/cluster.md gives the sizing model: what the directory, a UD node
// and an MS node hold per user and per message, and how many nodes a
// given number of mailboxes needs.
package cluster
