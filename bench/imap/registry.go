package main

import (
	"strings"
	"sync"
)

// registry knows which message each folder's UIDs hold, from the
// APPENDUID and COPYUID codes every connection got, so that a FETCH can
// be checked against the message appended even when it does not carry
// the Message-ID. It is safe for concurrent use.
type registry struct {
	mu sync.Mutex
	m  map[uidKey]string // the Message-ID
}

type uidKey struct {
	folder        string
	validity, uid uint32
}

func newRegistry() *registry { return &registry{m: map[uidKey]string{}} }

func (g *registry) set(k uidKey, id string) {
	if g == nil || id == "" {
		return
	}
	g.mu.Lock()
	g.m[k] = id
	g.mu.Unlock()
}

func (g *registry) get(k uidKey) (string, bool) {
	if g == nil {
		return "", false
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	id, ok := g.m[k]
	return id, ok
}

// messageIDOf returns the Message-ID field of a message's header.
func messageIDOf(msg []byte) string {
	for _, line := range strings.Split(string(headerOf(msg)), "\r\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(k, "Message-ID") {
			return strings.TrimSpace(v)
		}
	}
	return ""
}
