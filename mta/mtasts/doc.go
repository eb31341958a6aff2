// Package mtasts is MTA Strict Transport Security (RFC 8461) for
// outbound mail: a domain publishes, in a TXT record at
// _mta-sts.<domain>, that it has a policy, and serves the policy at
// https://mta-sts.<domain>/.well-known/mta-sts.txt; the policy names
// the MX hosts that may receive its mail and whether a sender must
// refuse the others and any host whose certificate does not verify
// (mode enforce), only report them (testing) or neither (none).
//
// Parse reads a policy file; Policy.Match says whether an MX host is one
// the policy names. A Cache finds a domain's policy the way §3 and §5 of
// the RFC say: the TXT record first, then the policy from the Fetcher
// (HTTPSFetcher in production) when its id is new, the policy kept for
// its max_age, through TXT failures and fetch failures, and across
// restarts in a file.
//
// # The cache file
//
// The file a Cache is given holds its policies as one JSON object,
// {"version": 1, "policies": [...]}, each policy an object with the
// fields domain, id, mode, mx, max_age (seconds) and fetched (RFC 3339),
// the most recently used first. It is written whole after each policy
// fetched, to a temporary file in the same directory that is synced and
// renamed over it (mode 0600), so a crash leaves either the old file or
// the new one. A policy of the file that has expired, or does not
// verify, is dropped when the file is read; a file that cannot be read
// as JSON is logged and replaced at the next write.
package mtasts
