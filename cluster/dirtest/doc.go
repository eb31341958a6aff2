// Package dirtest checks that a [cluster.Directory] implementation behaves
// as the interface documents, in the manner of testing/fstest,
// msstore/storetest and userdata/udtest.
//
// An implementation's tests call [Run] with a function that opens a fresh,
// empty Directory for each subtest, and, when two Directories can share one
// backing store (two clients of one server, two processes on one
// PostgreSQL database), [RunShared] with a function that opens two:
//
//	func TestConformance(t *testing.T) {
//		dirtest.Run(t, func(t *testing.T) cluster.Directory {
//			d, err := mydir.Open(t.Context(), t.TempDir())
//			if err != nil {
//				t.Fatal(err)
//			}
//			return d
//		})
//	}
//
// The suite closes every Directory it was given at the end of its subtest,
// and reports an error from that Close unless the subtest closed it
// already (a second Close may return nil or an error wrapping
// cluster.ErrClosed). open may call t.Fatal and t.Cleanup (to remove the
// backing store, say). The AdvanceID subtest runs only on a Directory
// that implements cluster.SequenceAdvancer (AdvanceID(seq, past) makes
// every later NextID(seq) return more than past, and never moves a
// sequence back). Run the suite with -race: the concurrent subtests
// are meant for it. The whole suite takes well under five seconds on an
// implementation that answers in a millisecond or so.
//
// # The contract, where cluster.Directory leaves it open
//
// The suite holds implementations to these rules, which the interface's
// comments imply but do not spell out:
//
//   - Addresses and domains are compared in the form cluster.NormalAddress
//     and cluster.NormalDomain give: lower case (Unicode, strings.ToLower,
//     as userdata stores addresses), without surrounding white space or a
//     trailing dot on the domain. An address is local@domain with a local
//     part of 1 to 64 bytes (no spaces, control characters or any of
//     "\<>,;) and a domain of 1 to 253 bytes in labels of letters, digits
//     and hyphens; anything else, and in particular an empty address or one
//     over 320 bytes, is ErrInvalid. An implementation that calls
//     NormalAddress and NormalDomain on its inputs follows these rules.
//   - Node ids are checked as Node.Validate checks them, in every method
//     that takes one (SetWeight, SetMasked, RemoveNode, PlaceUser): an
//     invalid id is ErrInvalid, a valid unknown one ErrNotFound. PlaceUser
//     does not require the node to be registered (the registry may change
//     under it; the placement is a record).
//   - A user id of 0 is ErrInvalid. A sequence name is 1 to 63 lower-case
//     letters, digits and hyphens starting with a letter (as a node id),
//     else ErrInvalid; a sequence no one has taken from yet starts at 1.
//   - Registry.Version grows (strictly) with every call that changes the
//     registry; a call that fails leaves the registry and its Version as
//     they were. Calls that change nothing (a weight set to what it was)
//     may or may not count. A new Directory's registry has no nodes.
//   - WatchRegistry calls fn with the registry at once (within 2 s) and
//     then, within 2 s of each change made through any Directory on the
//     same store, with a registry at least as recent as the change. It may
//     skip registries when changes come faster than fn returns, but the
//     latest is always delivered. After Close, WatchRegistry calls in
//     progress return promptly with an error wrapping ErrClosed.
//   - RemoveUser and RemoveAddress of an unknown user or address are
//     ErrNotFound. AddAddress checks the user first (ErrNotFound), then the
//     address (ErrExists, whoever holds it, the user itself included).
//   - PutDomainAlias replaces the domain of an alias that exists (Put, as
//     PutNode); an alias equal to its domain is ErrInvalid.
//   - SwapGroup checks a swap as cluster.Registry.CheckSwap does (an
//     implementation that calls it on the registry it holds locked follows
//     the rules); a failed swap leaves the registry and its Version as they
//     were; of concurrent swaps from the same old, through one Directory or
//     several on one store, exactly one succeeds and the others are
//     ErrConflict. RemoveNode of a group's member, and PutNode taking the UD
//     role from one, are ErrInvalid.
//   - Every method called after Close returns an error wrapping ErrClosed;
//     every method called with a context already done returns an error
//     wrapping the context's error.
package dirtest
