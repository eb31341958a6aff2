package mta

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/mailsys/mailsys/msstore"
	"github.com/mailsys/mailsys/mta/dsn"
	"github.com/mailsys/mailsys/mta/queue"
	"github.com/mailsys/mailsys/txlog"
	"github.com/mailsys/mailsys/userdata"
)

// BodyStore is what delivery needs of the message store; msstore.Storage
// satisfies it. If it is also an msstore.Walker, Recover can find the
// body a delivery stored before a crash took its stored step, and adopt
// it, so the step need not wait for the disk.
type BodyStore interface {
	Put(ctx context.Context, r io.Reader, meta msstore.Meta) (msstore.Ref, error)
	Release(ctx context.Context, ref msstore.Ref) error
}

// Mailboxes is what delivery needs of the UserDB; userdata.UserDB
// satisfies it.
type Mailboxes interface {
	LookupAddress(ctx context.Context, address string) (userdata.User, error)
	Folder(ctx context.Context, user userdata.UserID, name string) (userdata.Folder, error)
	Append(ctx context.Context, user userdata.UserID, folder userdata.FolderID, m userdata.NewMessage) (userdata.Message, error)
	Messages(ctx context.Context, user userdata.UserID, folder userdata.FolderID, set userdata.UIDSet, fn func(*userdata.Message) error) error
}

// TxLog is the delivery transaction log the listeners and the Deliverer
// write to; *txlog.Log satisfies it, and a host program may wrap one (to
// count, trace or mirror what is written) and give the wrapper. Its
// contract is txlog.Log's: Accept returns once the transaction is on
// stable storage, and the listeners answer 250 only then; Record returns
// once its step is durable; RecordAsync and DoneAsync may return before
// their records are (the Deliverer finishes a transaction twice without
// harm, and finds a body stored without a durable step by walking the
// store); Pending returns
// the transactions left unfinished by the previous run, oldest first. All
// four are safe for concurrent use.
type TxLog interface {
	Accept(ctx context.Context, env txlog.Envelope, body io.Reader) (*txlog.Txn, error)
	Record(ctx context.Context, t *txlog.Txn, key string, value []byte) error
	RecordAsync(ctx context.Context, t *txlog.Txn, key string, value []byte) error
	DoneAsync(ctx context.Context, t *txlog.Txn) error
	Pending() []*txlog.Txn
}

var _ TxLog = (*txlog.Log)(nil)

// Deliverer finishes the transactions of a txlog: it stores each body once
// in the message store, with one reference per local recipient, indexes it
// into each recipient's INBOX and marks the transaction done. Every step is
// recorded in the log, so that after a crash Recover finishes what was left
// without delivering twice or leaking a body.
//
// The body stored is the one the log holds with a Return-Path field on top
// naming the envelope sender (RFC 5321 §4.4: this is the final delivery),
// in place of any Return-Path fields its header had. It is made from the
// log alone, so a delivery replayed after a crash stores the same bytes.
//
// A Deliverer is safe for concurrent use; Deliver may run for many
// transactions at once.
type Deliverer struct {
	Log   TxLog
	Store BodyStore
	Users Mailboxes
	// Summarize, if set, works out what the index caches about a message
	// for IMAP (its ENVELOPE and BODYSTRUCTURE): imap.Summarize.
	Summarize func(r io.Reader) (envelope, structure []byte, err error)
	// Hostname names this host in the delivery status notifications
	// the Deliverer sends (Reporting-MTA); "localhost" if empty.
	Hostname string
	// Relay, if set, takes the recipients of other domains (those an
	// Envelope marks Relay): the outbound queue. Without it a submission
	// listener refuses them.
	Relay  Relay
	Logger *slog.Logger // nil means slog.Default()
	// Metrics, if set, is told what becomes of the recipients (see
	// DeliveryMetrics). Nil means none.
	Metrics DeliveryMetrics
	// Observer, if set, is told of each message delivered to a local
	// user, and (through the submission listeners) of each one a user
	// submits: see Observer for how often after a crash. Nil means none.
	Observer Observer
}

// Relay takes messages for recipients of other domains; the outbound
// queue (*queue.Queue) satisfies it. Enqueue returns once the message is
// durable in the queue, and is idempotent by m.ID: the Deliverer queues a
// transaction under one ID however often it is replayed.
type Relay interface {
	Enqueue(ctx context.Context, m queue.Message, body io.Reader) error
}

// Step keys in the log.
const (
	stepStored  = "stored" // value: the body's Ref, binary
	stepRcpt    = "rcpt:"  // + recipient index, for one not delivered; value: why
	stepDSN     = "dsn"    // the local recipients' notification was submitted
	recheckTail = 1000     // UIDs looked at for an entry made before a crash
)

func (d *Deliverer) log() *slog.Logger {
	if d.Logger == nil {
		return slog.Default()
	}
	return d.Logger
}

// messageID is the Meta.MessageID of a transaction's body: how Recover finds
// a body stored but not recorded.
func messageID(tx *txlog.Txn) string { return "txn-" + strconv.FormatUint(tx.ID, 10) }

// Deliver delivers tx to its local recipients and marks it done. It is
// idempotent: steps recorded in the log are skipped. If it fails, tx stays
// pending; Recover (or the Inbound listener's retries) finish it.
func (d *Deliverer) Deliver(ctx context.Context, tx *txlog.Txn) error {
	return d.deliver(ctx, tx, &attempt{})
}

// attempt is what one try at delivering a transaction leaves to the next.
type attempt struct {
	// replay is set for every try after the first: an earlier one may
	// have indexed the message for a recipient without recording it.
	replay bool
	// stored is a body stored by an earlier try whose Ref the log could
	// not record (a full disk): the next try records it rather than
	// storing the body again, which would leave this one unreferenced.
	stored *msstore.Ref
	// kept, if not nil, holds the body as the log holds it (tx.Body()),
	// kept in memory by the listener that accepted it: the first try
	// stores and summarizes it without reading the log. Later tries read
	// the log; the memory is not held while a retry waits.
	kept *kept
	// rcpts, if not nil, are the users of tx.Envelope.To, in its order,
	// as the listener resolved them at RCPT: they are not looked up
	// again. Recover, which starts from the log alone, looks them up.
	rcpts []userdata.User
	// observed holds the indexes (in tx.Envelope.To) of the recipients
	// an earlier try reported to the Observer, so that a retry finding
	// them indexed does not report them again. Nil until one is.
	observed map[int]bool
}

// Recover delivers every transaction the log found unfinished at Open.
// For one that has no stored step, it adopts the body an interrupted
// attempt stored (found by walking the store, when it can be walked: the
// step is then recorded without waiting for the disk, and may be lost in
// a crash), and releases any other.
func (d *Deliverer) Recover(ctx context.Context) error {
	pending := d.Log.Pending()
	if len(pending) == 0 {
		return nil
	}
	unstored := map[string]*txlog.Txn{}
	for _, tx := range pending {
		if _, ok := tx.Step(stepStored); !ok {
			unstored[messageID(tx)] = tx
		}
	}
	if w, ok := d.Store.(msstore.Walker); ok && len(unstored) > 0 {
		var orphans []msstore.Ref
		var counts []int
		var ids []string
		err := w.Walk(ctx, func(ref msstore.Ref, m msstore.Meta) error {
			if unstored[m.MessageID] != nil {
				orphans = append(orphans, ref)
				counts = append(counts, max(1, len(m.Owners)))
				ids = append(ids, m.MessageID)
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("mta: recover: %w", err)
		}
		adopted := map[string]bool{}
		for i, ref := range orphans {
			tx := unstored[ids[i]]
			if !adopted[ids[i]] {
				// The body an interrupted delivery stored, its step
				// not yet on disk: index entries may name it already,
				// so the delivery goes on with it.
				b, _ := ref.MarshalBinary()
				if err := d.Log.Record(ctx, tx, stepStored, b); err != nil {
					return fmt.Errorf("mta: recover: %w", err)
				}
				adopted[ids[i]] = true
				d.log().Info("adopted a body stored by an interrupted delivery", "txn", tx.ID, "ref", ref)
				continue
			}
			for range counts[i] {
				if err := d.Store.Release(ctx, ref); err != nil && !errors.Is(err, msstore.ErrNotFound) {
					return fmt.Errorf("mta: recover: release %v: %w", ref, err)
				}
			}
			d.log().Warn("released a second body stored by an interrupted delivery", "txn", tx.ID, "ref", ref)
		}
	}
	for _, tx := range pending {
		if err := d.deliver(ctx, tx, &attempt{replay: true}); err != nil {
			return err
		}
	}
	d.log().Info("recovered deliveries", "transactions", len(pending))
	return nil
}

type target struct {
	index int
	user  userdata.User
}

func (d *Deliverer) deliver(ctx context.Context, tx *txlog.Txn, a *attempt) error {
	targets, owners, err := d.targets(ctx, tx, a)
	if err != nil {
		return err
	}
	body := deliverySource(tx, a)
	ref, err := d.stored(ctx, tx, owners, body, a)
	if err != nil {
		return err
	}
	nm := userdata.NewMessage{Ref: ref, InternalDate: tx.Envelope.Received, Size: ref.Size}
	if d.Summarize != nil && len(targets) > 0 {
		if nm.Envelope, nm.Structure, err = d.Summarize(body()); err != nil {
			// IMAP parses the body itself when the cache is empty.
			d.log().Warn("message not summarized for IMAP", "txn", tx.ID, "err", err)
			nm.Envelope, nm.Structure = nil, nil
		}
	}
	for _, t := range targets {
		key := stepRcpt + strconv.Itoa(t.index)
		if _, ok := tx.Step(key); ok {
			continue
		}
		if err := d.index(ctx, tx, t, nm, key, a); err != nil {
			return err
		}
	}
	if err := d.relay(ctx, tx, a); err != nil {
		return err
	}
	if err := d.report(ctx, tx, targets); err != nil {
		return err
	}
	// A replay finds what was indexed without a record, so the done mark
	// need not wait for the disk.
	return d.Log.DoneAsync(ctx, tx)
}

// targets resolves the recipients of tx to be delivered to, and the
// owners of its body: those the listener resolved at RCPT if the attempt
// has them, or else by looking each up. A recipient gone since it was
// accepted is left out.
func (d *Deliverer) targets(ctx context.Context, tx *txlog.Txn, a *attempt) ([]target, []msstore.Owner, error) {
	to := tx.Envelope.To
	targets := make([]target, 0, len(to))
	owners := make([]msstore.Owner, 0, len(to))
	known := len(a.rcpts) == len(to)
	for i, rcpt := range to {
		if relayed(tx, i) {
			continue
		}
		var u userdata.User
		if known {
			u = a.rcpts[i]
		} else {
			var err error
			u, err = d.Users.LookupAddress(ctx, rcpt)
			if errors.Is(err, userdata.ErrNotFound) {
				d.log().Warn("recipient gone since it was accepted; not delivered", "txn", tx.ID, "rcpt", rcpt)
				d.metrics().Delivery(Bounced, 1)
				continue
			}
			if err != nil {
				return nil, nil, fmt.Errorf("mta: deliver %d: %w", tx.ID, err)
			}
		}
		targets = append(targets, target{i, u})
		owners = append(owners, msstore.Owner{User: u.Address, Mailbox: mailboxOf(tx)})
	}
	return targets, owners, nil
}

// deliverySource returns a function that returns a new reader of what is
// stored for tx (see deliveryBody): made once in memory from the body the
// attempt kept, or read from the log each time.
func deliverySource(tx *txlog.Txn, a *attempt) func() io.Reader {
	k := a.kept
	if k == nil || !k.whole || int64(len(k.logged())) != tx.Size {
		return func() io.Reader { return deliveryBody(tx) }
	}
	b := k.b // the field and the message, as they are
	if hasReturnPath(k.logged()) {
		b = appendDelivery(make([]byte, 0, len(b)), tx.Envelope.From, k.logged())
	}
	return func() io.Reader { return bytes.NewReader(b) }
}

// stored returns the body's Ref, storing it first unless the log says it
// was (or an earlier attempt did).
func (d *Deliverer) stored(ctx context.Context, tx *txlog.Txn, owners []msstore.Owner, body func() io.Reader, a *attempt) (msstore.Ref, error) {
	var ref msstore.Ref
	if v, ok := tx.Step(stepStored); ok {
		if err := ref.UnmarshalBinary(v); err != nil {
			return ref, fmt.Errorf("mta: deliver %d: stored ref: %w", tx.ID, err)
		}
		return ref, nil
	}
	if a.stored != nil {
		ref = *a.stored
	} else {
		if len(owners) == 0 {
			return ref, nil // nobody to deliver to
		}
		var err error
		ref, err = d.Store.Put(ctx, body(), msstore.Meta{MessageID: messageID(tx), Received: tx.Envelope.Received, Owners: owners})
		if err != nil {
			return ref, fmt.Errorf("mta: deliver %d: store: %w", tx.ID, err)
		}
	}
	b, _ := ref.MarshalBinary()
	record := d.Log.Record
	if _, ok := d.Store.(msstore.Walker); ok {
		// Recover finds the body by its MessageID if the step is lost
		// in a crash, and adopts it: the step need not wait for the disk.
		record = d.Log.RecordAsync
	}
	if err := record(ctx, tx, stepStored, b); err != nil {
		a.stored = &ref
		return ref, fmt.Errorf("mta: deliver %d: %w", tx.ID, err)
	}
	a.stored = nil
	return ref, nil
}

// mailboxOf is the folder a transaction goes to: INBOX unless a filter
// said otherwise.
func mailboxOf(tx *txlog.Txn) string {
	if tx.Envelope.Mailbox != "" {
		return tx.Envelope.Mailbox
	}
	return userdata.Inbox
}

// index adds the body to u's target folder (INBOX, or the one a filter
// chose, if the user has it). A success is not recorded in the log: a
// replay looks for the entry in the folder's tail instead, so that a
// message is never indexed twice. A recipient that cannot take the
// message any more is recorded, as step key, before its reference is given
// back, so that a replay does not give it back twice.
func (d *Deliverer) index(ctx context.Context, tx *txlog.Txn, t target, nm userdata.NewMessage, key string, a *attempt) error {
	u, replay := t.user, a.replay
	ref := nm.Ref
	inbox, err := d.Users.Folder(ctx, u.ID, mailboxOf(tx))
	if errors.Is(err, userdata.ErrNotFound) && mailboxOf(tx) != userdata.Inbox {
		inbox, err = d.Users.Folder(ctx, u.ID, userdata.Inbox)
	}
	if err != nil {
		return fmt.Errorf("mta: deliver %d to %s: %w", tx.ID, u.Address, err)
	}
	if replay {
		from := userdata.UID(1)
		if inbox.UIDNext > recheckTail {
			from = inbox.UIDNext - recheckTail
		}
		found := false
		err := d.Users.Messages(ctx, u.ID, inbox.ID, userdata.UIDSet{{Start: from}}, func(m *userdata.Message) error {
			if m.Ref.ID == ref.ID && m.Ref.Node == ref.Node {
				found = true
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("mta: deliver %d to %s: %w", tx.ID, u.Address, err)
		}
		if found {
			if !a.observed[t.index] {
				d.observe(u, nm.Size, t.index, a)
			}
			return nil
		}
	}
	_, err = d.Users.Append(ctx, u.ID, inbox.ID, nm)
	if errors.Is(err, userdata.ErrQuota) || errors.Is(err, userdata.ErrNotFound) {
		// Accepted earlier but undeliverable now: give its reference back
		// (report tells the sender).
		d.log().Warn("accepted message not delivered", "txn", tx.ID, "rcpt", u.Address, "err", err)
		if rerr := d.Log.Record(ctx, tx, key, []byte(err.Error())); rerr != nil {
			return fmt.Errorf("mta: deliver %d: %w", tx.ID, rerr)
		}
		if rerr := d.Store.Release(ctx, ref); rerr != nil {
			return fmt.Errorf("mta: deliver %d: release: %w", tx.ID, rerr)
		}
		d.metrics().Delivery(Bounced, 1)
		return nil
	}
	if err != nil {
		return fmt.Errorf("mta: deliver %d to %s: %w", tx.ID, u.Address, err)
	}
	d.metrics().Delivery(Delivered, 1)
	d.observe(u, nm.Size, t.index, a)
	return nil
}

// observe tells the Observer, if any, of a message of size bytes indexed
// for u, recipient i of the attempt's transaction, and remembers it in
// a so that a retry does not tell it again.
func (d *Deliverer) observe(u userdata.User, size int64, i int, a *attempt) {
	if d.Observer == nil {
		return
	}
	d.Observer.Delivered(u, size)
	if a.observed == nil {
		a.observed = map[int]bool{}
	}
	a.observed[i] = true
}

// relayed reports whether recipient i of tx is for the outbound queue.
func relayed(tx *txlog.Txn, i int) bool {
	r := tx.Envelope.Rcpts
	return i < len(r) && r[i].Relay
}

// queueID is the outbound queue's ID of tx's message: the transaction's
// id, with when it was accepted so that a log started anew does not give
// an ID the queue remembers.
func queueID(tx *txlog.Txn) string {
	return "txn-" + strconv.FormatUint(tx.ID, 10) + "-" + strconv.FormatInt(tx.Envelope.Received.UnixNano(), 36)
}

// relay hands tx's recipients of other domains to the Relay. The queue
// takes a message once by its ID, so a replay queues nothing twice and
// the log needs no step for it.
func (d *Deliverer) relay(ctx context.Context, tx *txlog.Txn, a *attempt) error {
	env := &tx.Envelope
	m := queue.Message{ID: queueID(tx), From: env.From, EnvID: env.EnvID, Ret: env.Ret, Received: env.Received}
	for i, r := range env.Rcpts {
		if r.Relay && i < len(env.To) {
			m.Rcpts = append(m.Rcpts, queue.Rcpt{Addr: env.To[i], Notify: r.Notify, ORcpt: r.ORcpt})
		}
	}
	if len(m.Rcpts) == 0 {
		return nil
	}
	if d.Relay == nil {
		return fmt.Errorf("mta: deliver %d: %d recipients for other domains, and no Relay", tx.ID, len(m.Rcpts))
	}
	var body io.Reader = tx.Body()
	if k := a.kept; k != nil && k.whole && int64(len(k.logged())) == tx.Size {
		body = bytes.NewReader(k.logged())
	}
	if err := d.Relay.Enqueue(ctx, m, body); err != nil {
		return fmt.Errorf("mta: deliver %d: queueing for other domains: %w", tx.ID, err)
	}
	d.metrics().Delivery(Relayed, len(m.Rcpts))
	return nil
}

// Submit accepts a message made here (the outbound queue's delivery
// status notifications) into the log and delivers it: to local users,
// and through the Relay to the others (dropped, and logged, without a
// Relay). It returns once the message is durable in the log; a delivery
// that fails then is left for Recover.
func (d *Deliverer) Submit(ctx context.Context, from string, to []string, body io.Reader) error {
	env := txlog.Envelope{From: from, Received: time.Now(), Remote: "local"}
	relays := false
	for _, rcpt := range to {
		local, err := d.isLocal(ctx, rcpt)
		if err != nil {
			return fmt.Errorf("mta: submit: %w", err)
		}
		if !local && d.Relay == nil {
			d.log().Warn("message for another domain not sent: no Relay", "from", reversePath(from), "to", rcpt)
			continue
		}
		env.To = append(env.To, rcpt)
		env.Rcpts = append(env.Rcpts, txlog.Rcpt{Relay: !local})
		relays = relays || !local
	}
	if len(env.To) == 0 {
		return nil
	}
	if !relays {
		env.Rcpts = nil
	}
	tx, err := d.Log.Accept(ctx, env, body)
	if err != nil {
		return fmt.Errorf("mta: submit: %w", err)
	}
	if err := d.deliver(ctx, tx, &attempt{}); err != nil {
		d.log().Warn("submitted message not delivered; left for recovery", "txn", tx.ID, "err", err)
	}
	return nil
}

// isLocal reports whether address is a local user's, or in a local
// domain (a user gone since: not relayed, and dropped by the delivery).
func (d *Deliverer) isLocal(ctx context.Context, address string) (bool, error) {
	_, err := d.Users.LookupAddress(ctx, address)
	if err == nil {
		return true, nil
	}
	if !errors.Is(err, userdata.ErrNotFound) && !errors.Is(err, userdata.ErrInvalid) {
		return false, err
	}
	dom, ok := d.Users.(interface {
		Domain(ctx context.Context, name string) (userdata.Domain, error)
	})
	if !ok {
		return false, nil
	}
	_, domain, _ := strings.Cut(address, "@")
	_, err = dom.Domain(ctx, domain)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, userdata.ErrNotFound), errors.Is(err, userdata.ErrInvalid):
		return false, nil
	}
	return false, err
}

// report sends the sender the delivery status notification the local
// recipients of tx ask for (RFC 3461): "delivered" for those whose
// NOTIFY names SUCCESS, "failed" for those accepted but not delivered (a
// mailbox full or gone since), unless NOTIFY says NEVER or leaves FAILURE
// out. Nothing goes to the null sender. It is recorded, so that a replay
// sends it once.
func (d *Deliverer) report(ctx context.Context, tx *txlog.Txn, targets []target) error {
	env := &tx.Envelope
	if env.From == "" {
		return nil
	}
	if _, ok := tx.Step(stepDSN); ok {
		return nil
	}
	delivered := map[int]bool{}
	for _, t := range targets {
		delivered[t.index] = true
	}
	var rcpts []dsn.Recipient
	for i, to := range env.To {
		if relayed(tx, i) {
			continue
		}
		var notify, orcpt string
		if i < len(env.Rcpts) {
			notify, orcpt = env.Rcpts[i].Notify, env.Rcpts[i].ORcpt
		}
		r := dsn.Recipient{Final: to, Original: orcpt, LastAttempt: time.Now()}
		why, failed := tx.Step(stepRcpt + strconv.Itoa(i))
		switch {
		case !delivered[i] || failed:
			if !dsn.Notifies(notify, "FAILURE") {
				continue
			}
			r.Action, r.Status, r.Diagnostic = dsn.Failed, "5.1.1", "550 5.1.1 No such user here (gone since the message was accepted)"
			if failed {
				r.Status, r.Diagnostic = "5.2.2", "552 5.2.2 Not delivered: "+string(why)
			}
		case dsn.Notifies(notify, "SUCCESS"):
			r.Action, r.Status = dsn.Delivered, "2.0.0"
		default:
			continue
		}
		rcpts = append(rcpts, r)
	}
	if len(rcpts) == 0 {
		return nil
	}
	msg, err := dsn.Build(dsn.Report{ReportingMTA: d.hostname(), To: env.From, EnvID: env.EnvID, Arrival: env.Received, Ret: env.Ret,
		Recipients: rcpts, Original: tx.Body(), OriginalSize: tx.Size})
	if err != nil {
		return fmt.Errorf("mta: deliver %d: notification: %w", tx.ID, err)
	}
	if err := d.Submit(ctx, "", []string{env.From}, bytes.NewReader(msg)); err != nil {
		return fmt.Errorf("mta: deliver %d: notification: %w", tx.ID, err)
	}
	d.log().Info("delivery status notification sent", "txn", tx.ID, "to", env.From, "recipients", len(rcpts), "action", rcpts[0].Action)
	return d.Log.RecordAsync(ctx, tx, stepDSN, nil)
}

// hostname is the Reporting-MTA of the Deliverer's notifications.
func (d *Deliverer) hostname() string {
	if d.Hostname == "" {
		return "localhost"
	}
	return d.Hostname
}
