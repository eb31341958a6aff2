package rpc

import (
	"context"
	"encoding/binary"
	"reflect"
	"strconv"
	"sync"

	"google.golang.org/grpc/metadata"

	"github.com/mailsys/mailsys/userdata"
)

// The metadata a UserDB client sends with every call, and the trailer of
// the changes it makes (see userdb.proto).
const (
	mdClient  = "mailsys-ud-client"      // the client's id, decimal
	mdOrigin  = "mailsys-ud-origin"      // the origin's token, decimal; absent for none
	mdBarrier = "mailsys-ud-barrier-bin" // pairs of big-endian uint64: stream id, events given
)

// callOrigin is the origin a server gives the context of a call (through
// userdata.WithOrigin): the calling client and the token it chose. A
// watch stream of that client reports the token; those of other clients,
// none.
type callOrigin struct {
	client uint64
	token  uint64
}

// incoming reads a call's client id and origin token from its metadata.
func incoming(ctx context.Context) (client, token uint64) {
	md, ok := metadata.FromIncomingContext(ctx)
	if !ok {
		return 0, 0
	}
	if v := md.Get(mdClient); len(v) > 0 {
		client, _ = strconv.ParseUint(v[0], 10, 64)
	}
	if v := md.Get(mdOrigin); len(v) > 0 {
		token, _ = strconv.ParseUint(v[0], 10, 64)
	}
	return client, token
}

// barrier is one entry of a change's trailer: the watch stream id and how
// many events the server had given it when the change returned.
type barrier struct{ stream, events uint64 }

func encodeBarriers(bs []barrier) string {
	b := make([]byte, 0, 16*len(bs))
	for _, x := range bs {
		b = binary.BigEndian.AppendUint64(b, x.stream)
		b = binary.BigEndian.AppendUint64(b, x.events)
	}
	return string(b)
}

func decodeBarriers(md metadata.MD) []barrier {
	var bs []barrier
	for _, v := range md.Get(mdBarrier) {
		for len(v) >= 16 {
			bs = append(bs, barrier{binary.BigEndian.Uint64([]byte(v[:8])), binary.BigEndian.Uint64([]byte(v[8:16]))})
			v = v[16:]
		}
	}
	return bs
}

// originGeneration is how many origins one generation of an originTable
// holds. A token needs to live only until the events of the call that
// carried it are back (milliseconds); the same origin used again after it
// was forgotten gets a new token.
const originGeneration = 1 << 14

// originTable maps the origins of a client's calls (any Go value, usually
// a session pointer) to the tokens sent over the wire, and the tokens
// carried back by events to the origins. It holds two generations of at
// most originGeneration tokens each: when the current one is full it
// becomes the old one and the old one is dropped, so the table is
// bounded and keeps no origin alive for long. An origin that cannot be a
// map key (a slice, a struct holding one) gets a new token for every
// call. Its zero value is ready; it is safe for concurrent use.
type originTable struct {
	mu       sync.Mutex
	next     uint64
	cur, old originGen
}

type originGen struct {
	tokens  map[any]uint64 // comparable origins only
	origins map[uint64]any
}

// token returns the token for origin, 0 for nil.
func (t *originTable) token(origin any) uint64 {
	if origin == nil {
		return 0
	}
	comparable := reflect.ValueOf(origin).Comparable()
	t.mu.Lock()
	defer t.mu.Unlock()
	if comparable {
		if tok, ok := t.cur.tokens[origin]; ok {
			return tok
		}
		if tok, ok := t.old.tokens[origin]; ok {
			t.add(origin, tok, true)
			return tok
		}
	}
	t.next++
	t.add(origin, t.next, comparable)
	return t.next
}

// add records origin under tok in the current generation, turning it
// over first when it is full. t.mu is held.
func (t *originTable) add(origin any, tok uint64, comparable bool) {
	if t.cur.origins == nil || len(t.cur.origins) >= originGeneration {
		t.old = t.cur
		t.cur = originGen{tokens: map[any]uint64{}, origins: map[uint64]any{}}
	}
	t.cur.origins[tok] = origin
	if comparable {
		t.cur.tokens[origin] = tok
	}
}

// origin returns the origin of tok, nil for 0 or a token forgotten.
func (t *originTable) origin(tok uint64) any {
	if tok == 0 {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if o, ok := t.cur.origins[tok]; ok {
		return o
	}
	return t.old.origins[tok]
}

// outgoing is ctx with the client's id and the token of ctx's origin in
// the metadata of the calls made with it.
func (t *originTable) outgoing(ctx context.Context, client string) context.Context {
	if tok := t.token(userdata.OriginOf(ctx)); tok != 0 {
		return metadata.AppendToOutgoingContext(ctx, mdClient, client, mdOrigin, strconv.FormatUint(tok, 10))
	}
	return metadata.AppendToOutgoingContext(ctx, mdClient, client)
}
