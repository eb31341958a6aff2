// Package admin is mailsys's administration API: JSON over HTTPS (plain
// HTTP on loopback only), versioned under /api/v1/ and described in
// openapi.json (served at /api/v1/openapi.json, and checked against the
// handlers by the tests).
//
// It provisions domains and domain aliases, organisation units as a tree
// (an enterprise, its departments), service classes, and users (create,
// change, move between units, disable, delete, set a password, aliases),
// keeps statistics per domain and per unit (users and storage from the
// UserDB's counters; messages received and sent per day, counted as they
// happen through Server.Delivered and Server.Submitted, and active users,
// recorded at a user's first login of each day through Server.LoggedIn;
// never by scanning mailboxes), and writes every change to an audit log
// (who, what, when, from where, with the answer's status).
//
// Given the parts in Config, it also serves the outbound queue (each
// recipient's state; retry, hold, release, delete), the DKIM records of
// each domain with key rotation, a cluster's nodes (weights, masks,
// replication groups, health) and a supervisor's event log, each over a
// small interface of this package's own (Queue, DKIM, Cluster, Events);
// what is not configured answers 404 "not configured". /metrics serves
// Config.Metrics and /debug/pprof/ the runtime's profiles, to system
// administrators only.
//
// The web administration under /admin/ is server-rendered
// (html/template, no JavaScript) and is a client of the same API in
// process: each page reads and changes through the API's handlers with
// the browser's session, so it sees and does exactly what the API lets
// its user see and do.
//
// Authentication: POST /api/v1/login with a user's address and password
// (a mailbox login: the UserDB's argon2id check and limits) returns a
// session token, usable as a Bearer token and set as an HttpOnly,
// SameSite=Strict cookie for the pages; a change made with the cookie
// needs the session's CSRF token in the X-CSRF-Token header. POST
// /api/v1/tokens makes long-lived API tokens for machines. Tokens are kept
// as SHA-256 hashes. Failed logins are limited per client address.
//
// Roles follow Coremail's hierarchy: a system administrator does
// everything; a domain administrator administers one domain, its units
// and its users; a unit administrator administers a unit and the units
// below it, and their users (an enterprise's self-service). Every handler
// checks the object's scope and answers 403 outside it. A user who is no
// administrator can change only its own password. Grants are kept in the
// API's own database (Config.DataDir), beside tokens, the audit log and
// the statistics.
//
// Bad input is a 400 whose JSON names the field: unknown fields, wrong
// types, invalid names, over-long values; a body over Config.MaxBody (1
// MiB) is a 413. Values are checked before anything is written, so a
// refused request leaves nothing half made.
package admin
