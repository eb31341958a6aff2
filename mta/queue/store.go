package queue

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/mailsys/mailsys/internal/fsutil"
	"github.com/mailsys/mailsys/internal/pebblelog"
	"github.com/mailsys/mailsys/internal/privatefs"
)

// The queue's database (Pebble, under Config.Dir) holds, per message:
//
//	m/<id>          the envelope (stored, JSON); once the message has left
//	                the queue, a tombstone: 'D' and when (Unix seconds,
//	                a varint), so that Enqueue of it again is a no-op,
//	                for Remember
//	b/<id>/<n>      the body, in chunks of chunkSize, n big-endian uint32
//	r/<id>/<i>      recipient i's state (rcptState, JSON), i big-endian uint16
//	h/<id>          present while the message is held
//
// A message is queued by one synced batch of its m, b and r keys; a
// recipient's final state is synced before the next is tried; a
// message's keys go, and its tombstone comes, in one batch. One key
// answers both "queued?" and "queued before?": one read an Enqueue.
const chunkSize = 256 << 10

// stored is a queued message's envelope as the database holds it.
type stored struct {
	From     string    `json:"from"`
	EnvID    string    `json:"envid,omitempty"`
	Ret      string    `json:"ret,omitempty"`
	Received time.Time `json:"received"`
	Size     int64     `json:"size"`          // of the body, without Sig
	Sig      string    `json:"sig,omitempty"` // header fields prepended when sent (DKIM)
	EightBit bool      `json:"8bit,omitempty"`
	UTF8     bool      `json:"utf8,omitempty"` // needs SMTPUTF8: non-ASCII addresses or header
	Rcpts    []Rcpt    `json:"rcpts"`
}

// State is where a recipient is in the queue.
type State int

// States. Delivered and Failed are final.
const (
	Queued    State = iota // not tried yet
	Deferred               // tried, to be tried again
	Delivered              // accepted by the next hop
	Failed                 // refused for good, or expired: bounced
)

func (s State) String() string {
	switch s {
	case Queued:
		return "queued"
	case Deferred:
		return "deferred"
	case Delivered:
		return "delivered"
	case Failed:
		return "failed"
	}
	return fmt.Sprintf("State(%d)", int(s))
}

func (s State) final() bool { return s == Delivered || s == Failed }

// rcptState is a recipient's state as the database holds it.
type rcptState struct {
	State    State     `json:"state"`
	Attempts int       `json:"attempts,omitempty"`
	Next     time.Time `json:"next,omitzero"` // when to try again
	Last     time.Time `json:"last,omitzero"` // the last attempt
	Reply    string    `json:"reply,omitempty"`
	Host     string    `json:"host,omitempty"`     // that gave Reply
	Status   string    `json:"status,omitempty"`   // enhanced status code of Reply, "4.4.1"
	Warned   bool      `json:"warned,omitempty"`   // a delay notification was sent
	Reported bool      `json:"reported,omitempty"` // its final notification was sent, or needs none
	DSN      bool      `json:"dsn,omitempty"`      // the next hop took NOTIFY (offered DSN)
}

func msgKey(id string) []byte  { return []byte("m/" + id) }
func holdKey(id string) []byte { return []byte("h/" + id) }

// tombstone is the first byte of the value of a message that left the
// queue (a JSON envelope starts with '{').
const tombstone = 'D'

func bodyKey(id string, n int) []byte {
	return binary.BigEndian.AppendUint32([]byte("b/"+id+"/"), uint32(n))
}

func rcptKey(id string, i int) []byte {
	return binary.BigEndian.AppendUint16([]byte("r/"+id+"/"), uint16(i))
}

// store is the queue's database.
type store struct {
	db *pebble.DB
}

func openStore(dir string, log *slog.Logger) (*store, error) {
	// The messages are private: the directory 0700 before Pebble opens
	// it, and what Pebble makes in it 0600.
	if err := os.MkdirAll(dir, fsutil.DirMode); err != nil {
		return nil, fmt.Errorf("queue: %w", err)
	}
	fsutil.TightenLog(log, dir)
	// A memtable that holds a few thousand messages: most leave the
	// queue before it is flushed, so their bodies are never written again.
	cache := pebble.NewCache(32 << 20)
	defer cache.Unref()
	opts := &pebble.Options{FS: privatefs.New(vfs.Default), Logger: pebblelog.Logger{Log: log}, Cache: cache, MemTableSize: 32 << 20}
	for i := range opts.Levels {
		// Most reads look for a key that is not there (has, for a new
		// message): a Bloom filter answers them without the blocks.
		opts.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
	}
	db, err := pebble.Open(dir, opts)
	if err != nil {
		return nil, fmt.Errorf("queue: open %s: %w", dir, err)
	}
	return &store{db: db}, nil
}

func (s *store) close() error { return s.db.Close() }

// has reports whether id is queued or remembered.
func (s *store) has(id string) (bool, error) {
	_, c, err := s.db.Get(msgKey(id))
	if err == pebble.ErrNotFound {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("queue: %w", err)
	}
	c.Close()
	return true, nil
}

// put queues a message, durably.
func (s *store) put(id string, m *stored, body []byte, rcpts []rcptState) error {
	b := s.db.NewBatch()
	defer b.Close()
	v, err := json.Marshal(m)
	if err != nil {
		return err
	}
	b.Set(msgKey(id), v, nil)
	for n := 0; n*chunkSize < len(body) || n == 0; n++ {
		b.Set(bodyKey(id, n), body[n*chunkSize:min(len(body), (n+1)*chunkSize)], nil)
	}
	for i := range rcpts {
		v, _ := json.Marshal(&rcpts[i])
		b.Set(rcptKey(id, i), v, nil)
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("queue: %w", err)
	}
	return nil
}

// setRcpts writes the states of some recipients; sync waits for the disk.
func (s *store) setRcpts(id string, idx []int, states []rcptState, sync bool) error {
	b := s.db.NewBatch()
	defer b.Close()
	for _, i := range idx {
		v, _ := json.Marshal(&states[i])
		b.Set(rcptKey(id, i), v, nil)
	}
	opt := pebble.NoSync
	if sync {
		opt = pebble.Sync
	}
	if err := b.Commit(opt); err != nil {
		return fmt.Errorf("queue: %w", err)
	}
	return nil
}

// setHold marks id held, or not.
func (s *store) setHold(id string, held bool) error {
	var err error
	if held {
		err = s.db.Set(holdKey(id), nil, pebble.Sync)
	} else {
		err = s.db.Delete(holdKey(id), pebble.Sync)
	}
	if err != nil {
		return fmt.Errorf("queue: %w", err)
	}
	return nil
}

// remove takes a message out of the queue and remembers its id. Its keys
// go one by one (a range deletion costs every later read of the range).
func (s *store) remove(id string, m *stored, now time.Time) error {
	b := s.db.NewBatch()
	defer b.Close()
	b.Set(msgKey(id), binary.AppendVarint([]byte{tombstone}, now.Unix()), nil)
	b.Delete(holdKey(id), nil)
	for n := 0; int64(n)*chunkSize < m.Size || n == 0; n++ {
		b.Delete(bodyKey(id, n), nil)
	}
	for i := range m.Rcpts {
		b.Delete(rcptKey(id, i), nil)
	}
	// Not synced: lost in a crash, the message comes back with every
	// recipient final and reported, and goes again.
	if err := b.Commit(pebble.NoSync); err != nil {
		return fmt.Errorf("queue: %w", err)
	}
	return nil
}

// forget drops the tombstones of messages that left before t.
func (s *store) forget(t time.Time) (int, error) {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte("m/"), UpperBound: []byte("m0")})
	if err != nil {
		return 0, fmt.Errorf("queue: %w", err)
	}
	defer it.Close()
	b := s.db.NewBatch()
	defer b.Close()
	n := 0
	for it.First(); it.Valid(); it.Next() {
		v := it.Value()
		if len(v) == 0 || v[0] != tombstone {
			continue
		}
		if sec, k := binary.Varint(v[1:]); k <= 0 || sec < t.Unix() {
			b.Delete(bytes.Clone(it.Key()), nil)
			n++
		}
	}
	if err := it.Error(); err != nil {
		return 0, fmt.Errorf("queue: %w", err)
	}
	if n > 0 {
		if err := b.Commit(pebble.NoSync); err != nil {
			return 0, fmt.Errorf("queue: %w", err)
		}
	}
	return n, nil
}

// loaded is a message as load finds it.
type loaded struct {
	id    string
	m     stored
	rcpts []rcptState
	held  bool
}

// load returns every queued message.
func (s *store) load() ([]*loaded, error) {
	byID := map[string]*loaded{}
	var order []*loaded
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte("h/"), UpperBound: []byte("s")})
	if err != nil {
		return nil, fmt.Errorf("queue: %w", err)
	}
	defer it.Close()
	// Keys sort h/, m/, r/: holds are seen before their messages, so
	// they are kept aside.
	held := map[string]bool{}
	for it.First(); it.Valid(); it.Next() {
		k := string(it.Key())
		switch k[0] {
		case 'h':
			held[k[2:]] = true
		case 'm':
			if v := it.Value(); len(v) > 0 && v[0] == tombstone {
				continue
			}
			l := &loaded{id: k[2:], held: held[k[2:]]}
			if err := json.Unmarshal(it.Value(), &l.m); err != nil {
				return nil, fmt.Errorf("queue: message %s: %w", l.id, err)
			}
			l.rcpts = make([]rcptState, len(l.m.Rcpts))
			byID[l.id] = l
			order = append(order, l)
		case 'r':
			if len(k) < 5 {
				continue
			}
			id, i := k[2:len(k)-3], int(binary.BigEndian.Uint16([]byte(k[len(k)-2:])))
			l := byID[id]
			if l == nil || i >= len(l.rcpts) {
				continue // a message's keys go in one batch: not expected
			}
			if err := json.Unmarshal(it.Value(), &l.rcpts[i]); err != nil {
				return nil, fmt.Errorf("queue: message %s recipient %d: %w", id, i, err)
			}
		}
	}
	if err := it.Error(); err != nil {
		return nil, fmt.Errorf("queue: %w", err)
	}
	return order, nil
}

// body returns a reader of a message's body, read chunk by chunk.
func (s *store) body(id string, size int64) *bodyReader {
	return &bodyReader{s: s, id: id, size: size}
}

// bodyReader reads a queued body; it is an io.ReaderAt too, for bounces.
type bodyReader struct {
	s    *store
	id   string
	size int64
	off  int64
}

func (r *bodyReader) Read(p []byte) (int, error) {
	n, err := r.ReadAt(p, r.off)
	r.off += int64(n)
	if err == io.EOF && n > 0 {
		err = nil
	}
	return n, err
}

// ReadAt implements io.ReaderAt.
func (r *bodyReader) ReadAt(p []byte, off int64) (int, error) {
	if off >= r.size {
		return 0, io.EOF
	}
	n := 0
	for n < len(p) && off < r.size {
		c := int(off / chunkSize)
		v, closer, err := r.s.db.Get(bodyKey(r.id, c))
		if err != nil {
			return n, fmt.Errorf("queue: body of %s, chunk %d: %w", r.id, c, err)
		}
		m := copy(p[n:], v[off-int64(c)*chunkSize:])
		closer.Close()
		n += m
		off += int64(m)
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}
