package cluster

import (
	"github.com/mailsys/mailsys/msstore"
	"github.com/mailsys/mailsys/userdata"
)

// UserDB is what a cluster needs of a UD node: the whole UserDB with the
// optional capabilities the protocol servers use. userdata.DB and
// userdata.Memory satisfy it, and so does the gRPC client of a remote UD
// node (cluster/rpc).
type UserDB interface {
	userdata.UserDB
	userdata.Watcher
	userdata.Remover
	userdata.KeywordLister
	userdata.RecentClaimer
}

var _ UserDB = (*userdata.DB)(nil)

// Peers is what the routers (Storage, Users) need of the cluster around
// them: the registry, the health of each node, and a client per node. The
// node program implements it over the Directory, the HeartBeat and gRPC
// connections with a circuit breaker each.
//
// Its methods are called for every routed call, concurrently: they must
// not block on the network (Registry and Healthy return what is known
// now; Storage and UserDB return clients whose calls do the I/O).
type Peers interface {
	// Registry returns the node registry as last reported.
	Registry() Registry
	// Healthy reports whether node id is answering now: its heartbeat is
	// alive and its circuit breaker is not open.
	Healthy(id string) bool
	// Storage returns the client of MS node n.
	Storage(n Node) (msstore.Storage, error)
	// UserDB returns the client of UD node n.
	UserDB(n Node) (UserDB, error)
}
