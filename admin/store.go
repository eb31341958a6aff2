package admin

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/mailsys/mailsys/internal/pebblelog"
	"github.com/mailsys/mailsys/internal/privatefs"
)

// store keeps what the admin API owns, in a Pebble database of its own:
// the administrators' grants, the API tokens and sessions (by the SHA-256
// of their secret, never the secret), the audit log and the daily
// statistics. Key prefixes:
//
//	g address                 -> grant (JSON)
//	t sha256(secret)          -> token (JSON)
//	a time(8) seq(8)          -> audit entry (JSON)
//	s d domain 0 day(4)       -> daily counts of a domain (merged sums)
//	s u unit(8) day(4)        -> daily counts of a unit (merged sums)
//	v domain 0 user(8)        -> the day(4) the user last logged in, its unit(8)
type store struct {
	db  *pebble.DB
	log *slog.Logger
	seq uint64 // audit entries' tie-breaker within one nanosecond
}

const (
	tagGrant = 'g'
	tagToken = 't'
	tagAudit = 'a'
	tagStats = 's'
	tagSeen  = 'v'
)

func openStore(dir string, log *slog.Logger) (*store, error) {
	db, err := pebble.Open(dir, &pebble.Options{
		FS:     privatefs.New(vfs.Default),
		Merger: countsMerger,
		Logger: pebblelog.Logger{Log: log},
	})
	if err != nil {
		return nil, fmt.Errorf("admin: open %s: %w", dir, err)
	}
	return &store{db: db, log: log}, nil
}

func (s *store) close() error { return s.db.Close() }

func key(tag byte, parts ...[]byte) []byte {
	k := []byte{tag}
	for _, p := range parts {
		k = append(k, p...)
	}
	return k
}

func (s *store) getJSON(k []byte, v any) error {
	b, closer, err := s.db.Get(k)
	if errors.Is(err, pebble.ErrNotFound) {
		return errNotFound
	}
	if err != nil {
		return err
	}
	defer closer.Close()
	return json.Unmarshal(b, v)
}

func (s *store) putJSON(k []byte, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return s.db.Set(k, b, pebble.Sync)
}

// scanJSON calls fn with every value under prefix from start on, in key
// order, until fn returns false.
func scanJSON[T any](s *store, prefix, start []byte, fn func(k []byte, v T) bool) error {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return err
	}
	defer it.Close()
	ok := it.First()
	if start != nil {
		ok = it.SeekGE(start)
	}
	for ; ok; ok = it.Next() {
		var v T
		if err := json.Unmarshal(it.Value(), &v); err != nil {
			return fmt.Errorf("admin: record %q: %w", it.Key(), err)
		}
		if !fn(it.Key(), v) {
			break
		}
	}
	return it.Error()
}

func prefixEnd(p []byte) []byte {
	end := bytes.Clone(p)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}

// Grants.

func (s *store) grant(address string) (Grant, error) {
	var g Grant
	err := s.getJSON(key(tagGrant, []byte(address)), &g)
	return g, err
}

func (s *store) putGrant(g Grant) error { return s.putJSON(key(tagGrant, []byte(g.User)), g) }

func (s *store) deleteGrant(address string) error {
	return s.db.Delete(key(tagGrant, []byte(address)), pebble.Sync)
}

func (s *store) grants() ([]Grant, error) {
	var out []Grant
	err := scanJSON(s, []byte{tagGrant}, nil, func(_ []byte, g Grant) bool { out = append(out, g); return true })
	return out, err
}

// Tokens.

// token is a session or an API token, stored by the hash of its secret.
type token struct {
	ID      string    `json:"id"` // the first bytes of the hash, hex: how the API names it
	User    string    `json:"user"`
	Name    string    `json:"name,omitempty"` // an API token's, "" for a session
	Session bool      `json:"session,omitempty"`
	CSRF    string    `json:"csrf,omitempty"` // a session's CSRF token
	Created time.Time `json:"created"`
	Expires time.Time `json:"expires"`
}

func tokenKey(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return key(tagToken, h[:])
}

func (s *store) token(secret string) (token, error) {
	var t token
	err := s.getJSON(tokenKey(secret), &t)
	return t, err
}

func (s *store) putToken(secret string, t token) error { return s.putJSON(tokenKey(secret), t) }

func (s *store) deleteToken(secret string) error { return s.deleteKey(tokenKey(secret)) }

func (s *store) deleteKey(k []byte) error { return s.db.Delete(k, pebble.Sync) }

// tokens returns the tokens keep accepts, with their keys, deleting the
// expired ones met on the way.
func (s *store) tokens(now time.Time, keep func(token) bool) ([]token, [][]byte, error) {
	var out []token
	var keys [][]byte
	var expired [][]byte
	err := scanJSON(s, []byte{tagToken}, nil, func(k []byte, t token) bool {
		if now.After(t.Expires) {
			expired = append(expired, bytes.Clone(k))
		} else if keep(t) {
			out = append(out, t)
			keys = append(keys, bytes.Clone(k))
		}
		return true
	})
	for _, k := range expired {
		s.db.Delete(k, pebble.NoSync)
	}
	return out, keys, err
}

// Audit log.

// AuditEntry is one change made through the API.
type AuditEntry struct {
	ID     string    `json:"id"` // for paging: after=ID
	Time   time.Time `json:"time"`
	User   string    `json:"user"`   // who: the administrator's address
	Remote string    `json:"remote"` // from where: the client's address
	Action string    `json:"action"` // what: method and path
	Object string    `json:"object"` // the object changed
	Status int       `json:"status"` // the HTTP status answered
	Detail string    `json:"detail,omitempty"`
}

func auditKey(t time.Time, seq uint64) []byte {
	k := []byte{tagAudit}
	k = binary.BigEndian.AppendUint64(k, uint64(t.UnixNano()))
	return binary.BigEndian.AppendUint64(k, seq)
}

func (s *store) audit(e AuditEntry) error {
	s.seq++
	k := auditKey(e.Time, s.seq)
	e.ID = fmt.Sprintf("%x", k[1:])
	return s.putJSON(k, e)
}

// auditLog returns up to limit entries after id (the oldest first).
func (s *store) auditLog(after string, limit int) ([]AuditEntry, error) {
	var start []byte
	if after != "" {
		var raw []byte
		if _, err := fmt.Sscanf(after, "%x", &raw); err != nil || len(raw) != 16 {
			return nil, &fieldError{Field: "after", Msg: "not an audit entry id"}
		}
		start = append(append([]byte{tagAudit}, raw...), 0)
	}
	var out []AuditEntry
	err := scanJSON(s, []byte{tagAudit}, start, func(_ []byte, e AuditEntry) bool {
		out = append(out, e)
		return len(out) < limit
	})
	return out, err
}

// Statistics: messages received and sent per day, by domain and by unit,
// as counters merged on write.

// Counts are a day's totals.
type Counts struct {
	Received int64 `json:"received"` // messages delivered into the INBOX of a user
	Sent     int64 `json:"sent"`     // messages submitted by a user
}

func day(t time.Time) uint32 { return uint32(t.UTC().Unix() / 86400) }

func domainStatsKey(domain string, d uint32) []byte {
	k := append([]byte{tagStats, 'd'}, domain...)
	k = append(k, 0)
	return binary.BigEndian.AppendUint32(k, d)
}

func unitStatsKey(unit uint64, d uint32) []byte {
	k := binary.BigEndian.AppendUint64([]byte{tagStats, 'u'}, unit)
	return binary.BigEndian.AppendUint32(k, d)
}

func encodeCounts(c Counts) []byte {
	b := binary.BigEndian.AppendUint64(nil, uint64(c.Received))
	return binary.BigEndian.AppendUint64(b, uint64(c.Sent))
}

func decodeCounts(b []byte) (Counts, error) {
	if len(b) != 16 {
		return Counts{}, fmt.Errorf("admin: counts of %d bytes", len(b))
	}
	return Counts{Received: int64(binary.BigEndian.Uint64(b)), Sent: int64(binary.BigEndian.Uint64(b[8:]))}, nil
}

// count adds c to the day of t for domain and unit (0: none).
func (s *store) count(domain string, unit uint64, t time.Time, c Counts) error {
	b := s.db.NewBatch()
	defer b.Close()
	d := day(t)
	b.Merge(domainStatsKey(domain, d), encodeCounts(c), nil)
	if unit != 0 {
		b.Merge(unitStatsKey(unit, d), encodeCounts(c), nil)
	}
	return b.Commit(pebble.NoSync) // statistics: a crash may lose the last counts
}

// days returns the counts of the days from..to (inclusive) under the key
// prefix made by keyOf.
func (s *store) days(keyOf func(uint32) []byte, from, to uint32) ([]Counts, error) {
	out := make([]Counts, 0, to-from+1)
	for d := from; d <= to; d++ {
		v, closer, err := s.db.Get(keyOf(d))
		if errors.Is(err, pebble.ErrNotFound) {
			out = append(out, Counts{})
			continue
		}
		if err != nil {
			return nil, err
		}
		c, err := decodeCounts(v)
		closer.Close()
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

// countsMerger sums Counts values.
var countsMerger = &pebble.Merger{
	Name: "mailsys.admin.counts",
	Merge: func(key, value []byte) (pebble.ValueMerger, error) {
		c, err := decodeCounts(value)
		if err != nil {
			return nil, err
		}
		return &countsValue{c}, nil
	},
}

type countsValue struct{ c Counts }

func (v *countsValue) MergeNewer(value []byte) error {
	c, err := decodeCounts(value)
	v.c.Received += c.Received
	v.c.Sent += c.Sent
	return err
}

func (v *countsValue) MergeOlder(value []byte) error { return v.MergeNewer(value) }

func (v *countsValue) Finish(bool) ([]byte, io.Closer, error) { return encodeCounts(v.c), nil, nil }

func seenKey(domain string, user uint64) []byte {
	k := append([]byte{tagSeen}, domain...)
	k = append(k, 0)
	return binary.BigEndian.AppendUint64(k, user)
}

// markSeen records that user, of domain and unit, logged in on day d.
func (s *store) markSeen(domain string, user, unit uint64, d uint32) error {
	v := binary.BigEndian.AppendUint32(nil, d)
	v = binary.BigEndian.AppendUint64(v, unit)
	return s.db.Set(seenKey(domain, user), v, pebble.NoSync) // statistics, as count
}

// forgetSeen drops a deleted user's record.
func (s *store) forgetSeen(domain string, user uint64) error {
	return s.db.Delete(seenKey(domain, user), pebble.NoSync)
}

// countSeen counts the users of domain (of unit only, if not 0) who
// logged in on day since or later: one pass over the domain's records.
func (s *store) countSeen(domain string, unit uint64, since uint32) (int64, error) {
	prefix := append(append([]byte{tagSeen}, domain...), 0)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return 0, err
	}
	defer it.Close()
	var n int64
	for ok := it.First(); ok; ok = it.Next() {
		v := it.Value()
		if len(v) != 12 {
			continue
		}
		if binary.BigEndian.Uint32(v) >= since && (unit == 0 || binary.BigEndian.Uint64(v[4:]) == unit) {
			n++
		}
	}
	return n, it.Error()
}
