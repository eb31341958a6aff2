package admin

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/mailsys/mailsys/mta/mailauth"
	"github.com/mailsys/mailsys/mta/queue"
)

// Queue is the outbound queue the API administers; *queue.Queue
// implements it. Its errors wrap queue.ErrNotFound for an id not queued.
type Queue interface {
	// List returns the queued messages, oldest first.
	List(ctx context.Context) ([]queue.Entry, error)
	// Retry makes the waiting recipients of id due now.
	Retry(ctx context.Context, id string) error
	// Hold keeps id from being tried until Release.
	Hold(ctx context.Context, id string) error
	// Release lets a held message be tried again.
	Release(ctx context.Context, id string) error
	// Delete drops id, first bouncing its unfinished recipients to the
	// sender if bounce is set.
	Delete(ctx context.Context, id string, bounce bool) error
}

// DKIM is the DKIM signer of the local domains' mail; *mailauth.Signer
// implements it. Its errors wrap mailauth.ErrUnknownDomain,
// ErrUnknownSelector and ErrSigningSelector.
type DKIM interface {
	// Records returns the DNS records that publish domain's keys.
	Records(ctx context.Context, domain string) ([]mailauth.Record, error)
	// Rotate makes a new key pair sign domain's mail.
	Rotate(ctx context.Context, domain string) error
	// Retire removes a selector's key that no longer signs.
	Retire(ctx context.Context, domain, selector string) error
}

// Cluster is the cluster of nodes the API administers: the registry with
// each node's health. Its errors wrap ErrNotFound for an unknown node and
// ErrInvalid for a value the registry refuses.
type Cluster interface {
	// Nodes returns the registry's nodes now, in ID order.
	Nodes(ctx context.Context) (ClusterStatus, error)
	// SetWeight sets a node's share of new placements (0 to 10000).
	SetWeight(ctx context.Context, id string, weight int) error
	// SetMasked masks a node from new placements, or unmasks it.
	SetMasked(ctx context.Context, id string, masked bool) error
}

// ClusterStatus is the node registry at one moment.
type ClusterStatus struct {
	Version uint64       `json:"version"` // grows with every change to the registry
	Nodes   []NodeStatus `json:"nodes"`
}

// NodeStatus is one node of the registry and its health.
type NodeStatus struct {
	ID      string `json:"id"`
	Num     uint32 `json:"num"`
	Roles   string `json:"roles"` // "front", "ud", "ms" joined by "+"
	Addr    string `json:"addr,omitempty"`
	Weight  int    `json:"weight"`
	Masked  bool   `json:"masked"`
	Healthy bool   `json:"healthy"` // the heartbeat sees it alive
	// Group is the UD replication group the node is in, with its role
	// there ("primary" or "standby"), the group's epoch and whether the
	// standby is in step.
	Group     string `json:"group,omitempty"`
	GroupRole string `json:"group_role,omitempty"`
	Epoch     uint64 `json:"epoch,omitempty"`
	InStep    bool   `json:"in_step,omitempty"`
}

// Events is the log of a supervisor of modules (cluster.Supervisor's
// events).
type Events interface {
	// Events returns the last limit events, oldest first.
	Events(ctx context.Context, limit int) ([]Event, error)
}

// Event is one thing that happened to a supervised module.
type Event struct {
	Time     time.Time     `json:"time"`
	Module   string        `json:"module"`
	Kind     string        `json:"kind"` // started, failed, exited, throttled, stopped
	PID      int           `json:"pid,omitempty"`
	ExitCode int           `json:"exit_code,omitempty"` // -1 when a signal ended it
	Signal   string        `json:"signal,omitempty"`
	Delay    time.Duration `json:"delay,omitempty"` // until the restart, in nanoseconds
	Err      string        `json:"err,omitempty"`
}

// Sentinel errors of the Cluster an implementation wraps.
var (
	// ErrNotFound reports an object that does not exist.
	ErrNotFound = errors.New("admin: not found")
	// ErrInvalid reports a value the implementation refuses.
	ErrInvalid = errors.New("admin: invalid")
)

// notConfigured is the 404 of a feature this server does not have.
func notConfigured(what string) error {
	return &httpError{Status: http.StatusNotFound, Msg: "not configured: " + what}
}

// The queue.

type queueJSON struct {
	Messages []queueEntryJSON `json:"messages"`
	Next     string           `json:"next,omitempty"` // the after= of the next page, empty at the end
}

type queueEntryJSON struct {
	ID       string          `json:"id"`
	From     string          `json:"from"`
	Received time.Time       `json:"received"`
	Size     int64           `json:"size"`
	Held     bool            `json:"held"`
	Rcpts    []queueRcptJSON `json:"rcpts"`
}

type queueRcptJSON struct {
	Addr        string     `json:"addr"`
	State       string     `json:"state"`
	Attempts    int        `json:"attempts"`
	Next        *time.Time `json:"next,omitempty"`
	LastAttempt *time.Time `json:"last_attempt,omitempty"`
	LastReply   string     `json:"last_reply,omitempty"`
	Host        string     `json:"host,omitempty"`
	Busy        bool       `json:"busy"`
}

func timeOrNil(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func queueEntryToJSON(e queue.Entry) queueEntryJSON {
	out := queueEntryJSON{ID: e.ID, From: e.From, Received: e.Received, Size: e.Size, Held: e.Held, Rcpts: make([]queueRcptJSON, 0, len(e.Rcpts))}
	for _, r := range e.Rcpts {
		out.Rcpts = append(out.Rcpts, queueRcptJSON{Addr: r.Addr, State: r.State.String(), Attempts: r.Attempts,
			Next: timeOrNil(r.Next), LastAttempt: timeOrNil(r.LastAttempt), LastReply: r.LastReply, Host: r.Host, Busy: r.Busy})
	}
	return out
}

// listQueue lists the outbound queue, oldest first, a page at a time:
// after= is the id of the last message of the page before.
func (s *Server) listQueue(w http.ResponseWriter, r *http.Request, _ *principal) error {
	if s.cfg.Queue == nil {
		return notConfigured("no outbound queue")
	}
	after, limit, err := page(r)
	if err != nil {
		return err
	}
	es, err := s.cfg.Queue.List(r.Context())
	if err != nil {
		return err
	}
	start := 0
	if after != "" {
		start = len(es) // an id gone since: the end, not the start again
		for i, e := range es {
			if e.ID == after {
				start = i + 1
				break
			}
		}
	}
	es = es[start:]
	out := queueJSON{Messages: make([]queueEntryJSON, 0, min(len(es), limit))}
	for i, e := range es {
		if i == limit {
			out.Next = es[i-1].ID
			break
		}
		out.Messages = append(out.Messages, queueEntryToJSON(e))
	}
	return reply(w, http.StatusOK, out)
}

// queueID reads {id}: a queue id is short and printable.
func queueID(r *http.Request) (string, error) {
	id := r.PathValue("id")
	if id == "" || len(id) > 64 || strings.ContainsFunc(id, func(c rune) bool { return c <= ' ' || c > '~' }) {
		return "", &fieldError{Field: "id", Msg: "not a queue id"}
	}
	return id, nil
}

// queueAction runs one of the queue's changes on {id}.
func (s *Server) queueAction(act func(Queue, context.Context, string) error) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, _ *principal) error {
		if s.cfg.Queue == nil {
			return notConfigured("no outbound queue")
		}
		id, err := queueID(r)
		if err != nil {
			return err
		}
		if err := act(s.cfg.Queue, r.Context(), id); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
}

func (s *Server) deleteQueued(w http.ResponseWriter, r *http.Request, _ *principal) error {
	var bounce bool
	switch v := r.URL.Query().Get("bounce"); v {
	case "", "false":
	case "true":
		bounce = true
	default:
		return &fieldError{Field: "bounce", Msg: "true or false"}
	}
	return s.queueAction(func(q Queue, ctx context.Context, id string) error { return q.Delete(ctx, id, bounce) })(w, r, nil)
}

// DKIM.

type dkimJSON struct {
	Records []dkimRecordJSON `json:"records"`
}

type dkimRecordJSON struct {
	Name  string `json:"name"`  // <selector>._domainkey.<domain>
	Value string `json:"value"` // the TXT record's text
	Zone  string `json:"zone"`  // a zone file line, split in 255-octet strings
}

func (s *Server) dkimRecords(ctx context.Context, domain string) (dkimJSON, error) {
	rs, err := s.cfg.DKIM.Records(ctx, domain)
	if err != nil {
		return dkimJSON{}, err
	}
	out := dkimJSON{Records: make([]dkimRecordJSON, 0, len(rs))}
	for _, r := range rs {
		out.Records = append(out.Records, dkimRecordJSON{Name: r.Name, Value: r.Value, Zone: r.Zone()})
	}
	return out, nil
}

// dkimDomain reads {domain} for the DKIM endpoints and checks the caller
// administers it (the whole domain).
func (s *Server) dkimDomain(r *http.Request, p *principal) (string, error) {
	if s.cfg.DKIM == nil {
		return "", notConfigured("no DKIM signing")
	}
	d, err := s.domainPath(r, p)
	if err != nil {
		return "", err
	}
	if !p.domain(d) {
		return "", errForbidden
	}
	return d, nil
}

func (s *Server) getDKIM(w http.ResponseWriter, r *http.Request, p *principal) error {
	d, err := s.dkimDomain(r, p)
	if err != nil {
		return err
	}
	out, err := s.dkimRecords(r.Context(), d)
	if err != nil {
		return err
	}
	return reply(w, http.StatusOK, out)
}

func (s *Server) rotateDKIM(w http.ResponseWriter, r *http.Request, p *principal) error {
	d, err := s.dkimDomain(r, p)
	if err != nil {
		return err
	}
	if err := s.cfg.DKIM.Rotate(r.Context(), d); err != nil {
		return err
	}
	out, err := s.dkimRecords(r.Context(), d)
	if err != nil {
		return err
	}
	return reply(w, http.StatusOK, out)
}

func (s *Server) retireDKIM(w http.ResponseWriter, r *http.Request, p *principal) error {
	d, err := s.dkimDomain(r, p)
	if err != nil {
		return err
	}
	sel := r.PathValue("selector")
	if sel == "" || len(sel) > 63 || strings.ContainsFunc(sel, func(c rune) bool {
		return !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c >= 'A' && c <= 'Z')
	}) {
		return &fieldError{Field: "selector", Msg: "not a selector"}
	}
	if err := s.cfg.DKIM.Retire(r.Context(), d, sel); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// Nodes.

func (s *Server) listNodes(w http.ResponseWriter, r *http.Request, _ *principal) error {
	if s.cfg.Cluster == nil {
		return notConfigured("no cluster")
	}
	st, err := s.cfg.Cluster.Nodes(r.Context())
	if err != nil {
		return err
	}
	if st.Nodes == nil {
		st.Nodes = []NodeStatus{}
	}
	return reply(w, http.StatusOK, st)
}

type nodeUpdate struct {
	Weight *int  `json:"weight"`
	Masked *bool `json:"masked"`
}

// maxWeight is the registry's largest weight (cluster.MaxWeight).
const maxWeight = 10000

func (s *Server) updateNode(w http.ResponseWriter, r *http.Request, _ *principal) error {
	if s.cfg.Cluster == nil {
		return notConfigured("no cluster")
	}
	id := r.PathValue("id")
	if id == "" || len(id) > 63 {
		return &fieldError{Field: "id", Msg: "not a node id"}
	}
	var req nodeUpdate
	if err := s.decode(w, r, &req); err != nil {
		return err
	}
	if req.Weight == nil && req.Masked == nil {
		return &fieldError{Field: "body", Msg: "nothing to change: give weight or masked"}
	}
	if req.Weight != nil && (*req.Weight < 0 || *req.Weight > maxWeight) {
		return &fieldError{Field: "weight", Msg: "0 to " + strconv.Itoa(maxWeight)}
	}
	c, ctx := s.cfg.Cluster, r.Context()
	st, err := c.Nodes(ctx)
	if err != nil {
		return err
	}
	found := false
	for _, n := range st.Nodes {
		found = found || n.ID == id
	}
	if !found {
		return &httpError{Status: http.StatusNotFound, Msg: "no node " + strconv.Quote(id)}
	}
	if req.Weight != nil {
		if err := c.SetWeight(ctx, id, *req.Weight); err != nil {
			return err
		}
	}
	if req.Masked != nil {
		if err := c.SetMasked(ctx, id, *req.Masked); err != nil {
			return err
		}
	}
	if st, err = c.Nodes(ctx); err != nil {
		return err
	}
	for _, n := range st.Nodes {
		if n.ID == id {
			return reply(w, http.StatusOK, n)
		}
	}
	return &httpError{Status: http.StatusNotFound, Msg: "no node " + strconv.Quote(id)}
}

// The supervisor's events.

type eventsJSON struct {
	Events []Event `json:"events"`
}

func (s *Server) listEvents(w http.ResponseWriter, r *http.Request, _ *principal) error {
	if s.cfg.Events == nil {
		return notConfigured("no supervisor")
	}
	_, limit, err := page(r)
	if err != nil {
		return err
	}
	es, err := s.cfg.Events.Events(r.Context(), limit)
	if err != nil {
		return err
	}
	if es == nil {
		es = []Event{}
	}
	return reply(w, http.StatusOK, eventsJSON{Events: es})
}
