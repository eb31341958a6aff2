package userdata

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mailsys/mailsys/msstore"
)

// AutoRepair. A user's index (mailbox record, folder records and names,
// message records, change log) can be damaged by a bad disk, a bug or a
// hand edit. Message bodies are self-describing (msstore.Meta names the
// users and mailboxes a body was delivered to), so what the index lost can
// be found again by walking the store.
//
// Repair rebuilds a user's index in one atomic batch:
//
//  1. Structure: the mailbox record, the folder records and the folder name
//     keys are made to agree. A folder whose record is lost or undecodable
//     gets a new record with a new UIDVALIDITY (its old one is unknown, and
//     a UID must never name two messages under one UIDVALIDITY); a folder
//     record without a name key gets its name back; messages in a folder
//     that lost both get the name of the mailbox most of their bodies were
//     delivered to, if free, else Recovered-<id>; INBOX and the superior
//     levels of every folder name are created if missing. UIDNEXT and
//     HIGHESTMODSEQ never go back: they pass every UID and MODSEQ in the
//     folder's messages and change log, so no UID is given twice.
//  2. Message records that cannot be decoded are dropped.
//  3. The change log is made to agree with the messages: a live entry whose
//     message is gone becomes a tombstone (so QRESYNC clients see the UID
//     vanish), a message without its entry gets one.
//  4. The store is walked (RepairSource). A body delivered to the user (an
//     owner in its Meta is the user's primary address, one of its aliases,
//     or its id) that no message record of the user references and that
//     the user did not expunge (the tombstone of an Expunge or of a folder
//     deletion names the body) gets a new index entry in the mailbox it was
//     delivered to, created if missing (INBOX if the name is unusable):
//     with a new UID and MODSEQ, the delivery time as INTERNALDATE, the
//     body's size, no flags and no cached envelope or structure. A body
//     delivered n times to the user is restored up to n times, less the
//     entries that still reference it and the expunges that dropped it. No
//     reference is retained for a restored entry: the one the lost entry
//     held is still counted by the store.
//  5. Every folder's counters, UIDNEXT and HIGHESTMODSEQ and the mailbox
//     usage are recounted from what the folder holds.
//
// With AutoRepair enabled, Authenticate checks the index of a user who
// logs in (a password check, not a login-cache hit), at most once per
// RepairConfig.Interval per user and process, and runs Repair when the
// check finds damage. The check reads, from one snapshot, the mailbox
// record, the folder records and names, and every message record of the
// user: it is O(messages), paid at most once per Interval per user. It
// does not read the change log, so damage to the change log alone is
// repaired by an explicit Repair only.
//
// Limits: every Repair walks the whole store (the store has no index by
// owner), so it costs O(bodies in the store) and is meant to be rare.
// Entries of bodies that were copied from one folder to another are not
// known to the store: if a copy's entry is lost while the original lives,
// it is not restored, and one that was moved is restored into the mailbox
// it was delivered to. Expunges made before tombstones named their bodies,
// and deliveries to an alias since removed, are unknown to Repair. The
// domain's usage, which counts every user of the domain, is left as it is.

// RepairSource is what Repair walks to find the bodies delivered to a user:
// msstore.Walker satisfies it.
type RepairSource interface {
	// Walk calls fn for every live body with its Ref and Meta.
	Walk(ctx context.Context, fn func(msstore.Ref, msstore.Meta) error) error
}

// Defaults of RepairConfig.
const (
	// DefaultRepairInterval is how long a user's index, once checked at a
	// login, is not checked again.
	DefaultRepairInterval = time.Hour
	// DefaultRepairGrace is how recent a body must be for Repair to leave
	// it alone.
	DefaultRepairGrace = 10 * time.Minute
)

// RepairConfig configures AutoRepair. The zero value of every field but
// Store means its default.
type RepairConfig struct {
	// Store is walked to restore lost index entries. Nil turns AutoRepair
	// off (for ConfigureAutoRepair) or, for RepairWith, repairs the
	// structure and counters only, which restores nothing and makes the
	// loss of entries undetectable afterwards.
	Store RepairSource
	// Interval is how long a user whose index was checked at a login is not
	// checked again by this process. Zero means DefaultRepairInterval.
	Interval time.Duration
	// Grace protects deliveries in progress: a body received less than
	// Grace before the repair may be stored but not yet appended, so it is
	// not restored (RepairReport.Deferred counts it; AutoRepair repairs
	// again at a login once Grace has passed). Zero means
	// DefaultRepairGrace; negative means none.
	Grace time.Duration
}

// RepairReport says what a repair did. All zero means the index was whole.
type RepairReport struct {
	// Folders is the number of folder records rebuilt, created or
	// recounted.
	Folders int
	// Restored is the number of index entries recreated from the store.
	Restored int
	// Dropped is the number of undecodable message records removed.
	Dropped int
	// Fixed is the number of other records fixed: folder name keys,
	// change-log entries, malformed keys and the mailbox record.
	Fixed int
	// Deferred is the number of entries that would have been restored but
	// for RepairConfig.Grace.
	Deferred int
	// Took is how long the repair took, the walk of the store included.
	Took time.Duration
}

// changed reports whether the repair changed anything.
func (r RepairReport) changed() bool {
	return r.Folders+r.Restored+r.Dropped+r.Fixed > 0
}

// repairHook holds a DB's AutoRepair settings; the zero value means off.
// It may be set while the DB serves.
type repairHook struct{ p atomic.Pointer[repairer] }

// repairer is AutoRepair turned on: its settings and which users were
// checked when.
type repairer struct {
	cfg RepairConfig // defaults applied

	mu      sync.Mutex
	checked map[UserID]time.Time // when each user's index was last checked
	pending map[UserID]time.Time // users with deferred entries: repair again from then
	sweepAt int                  // len(checked) at which old entries are swept
}

// minRepairSweep is the smallest size of repairer.checked that is swept.
const minRepairSweep = 1024

// due reports whether user's index should be checked at a login at now,
// and if so records the check. A user with deferred entries whose grace
// has passed is due for a repair (full).
func (r *repairer) due(user UserID, now time.Time) (check, full bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if t, ok := r.pending[user]; ok && !now.Before(t) {
		delete(r.pending, user)
		r.checked[user] = now
		return true, true
	}
	if t, ok := r.checked[user]; ok && now.Sub(t) < r.cfg.Interval {
		return false, false
	}
	r.checked[user] = now
	if len(r.checked) >= r.sweepAt {
		for u, t := range r.checked {
			if now.Sub(t) >= r.cfg.Interval {
				delete(r.checked, u)
			}
		}
		r.sweepAt = max(2*len(r.checked), minRepairSweep)
	}
	return true, false
}

// forget drops user's check, so that the next login checks again (after a
// failed check or repair).
func (r *repairer) forget(user UserID) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.checked, user)
}

// deferUntil makes the first login of user from t on repair again.
func (r *repairer) deferUntil(user UserID, t time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pending[user] = t
}

// EnableAutoRepair turns AutoRepair on with src as the store to restore
// from and the default settings; see [DB.ConfigureAutoRepair].
func (d *DB) EnableAutoRepair(src RepairSource) {
	d.ConfigureAutoRepair(RepairConfig{Store: src})
}

// ConfigureAutoRepair turns AutoRepair on with rc, or off if rc.Store is
// nil. From then on, a login that checks a password (Authenticate, not a
// login-cache hit) also checks the user's index, at most once per
// rc.Interval, and repairs it if damaged (see [DB.Repair]); the login
// succeeds even if the repair fails, which is logged. It may be called at
// any time; the record of which users were checked starts afresh.
func (d *DB) ConfigureAutoRepair(rc RepairConfig) {
	if rc.Store == nil {
		d.repair.p.Store(nil)
		return
	}
	d.repair.p.Store(&repairer{
		cfg:     withRepairDefaults(rc),
		checked: map[UserID]time.Time{},
		pending: map[UserID]time.Time{},
		sweepAt: minRepairSweep,
	})
}

// withRepairDefaults returns rc with its zero values replaced by defaults.
func withRepairDefaults(rc RepairConfig) RepairConfig {
	if rc.Interval <= 0 {
		rc.Interval = DefaultRepairInterval
	}
	if rc.Grace == 0 {
		rc.Grace = DefaultRepairGrace
	}
	return rc
}

// Repair checks and rebuilds user's index from the store given to
// EnableAutoRepair or ConfigureAutoRepair (ErrInvalid if there is none);
// see RepairWith. It is what AutoRepair runs at a login, exported for
// administration tools.
func (d *DB) Repair(ctx context.Context, user UserID) (RepairReport, error) {
	r := d.repair.p.Load()
	if r == nil {
		return RepairReport{}, fmt.Errorf("%w: AutoRepair is not enabled: no store to restore from", ErrInvalid)
	}
	return d.RepairWith(ctx, user, r.cfg)
}

// RepairWith checks and rebuilds user's index, restoring lost entries from
// rc.Store (nil for structure and counters only); rc.Interval is not used.
// The repair is one atomic batch written under the user's lock, and only
// if something is wrong: a second run finds nothing to do. The store is
// walked before the lock is taken, so a repair delays the user's other
// changes only by a scan of the user's index. It logs a warning with what
// it found, then what it did. It returns ErrNotFound for an unknown user;
// if the walk fails, nothing is changed.
func (d *DB) RepairWith(ctx context.Context, user UserID, rc RepairConfig) (RepairReport, error) {
	done, err := d.enter(ctx)
	if err != nil {
		return RepairReport{}, err
	}
	defer done()
	return d.repairUser(ctx, user, withRepairDefaults(rc))
}

// autoRepair is AutoRepair's part of a successful login of user: check the
// index if due, repair it if damaged. Failures are logged, not returned.
// The caller has entered the DB.
func (d *DB) autoRepair(ctx context.Context, user UserID) {
	r := d.repair.p.Load()
	if r == nil {
		return
	}
	now := time.Now()
	check, full := r.due(user, now)
	if !check {
		return
	}
	if !full {
		damaged, err := d.checkIndex(ctx, user)
		if err != nil {
			r.forget(user)
			d.log.Error("index check failed", "user", user, "err", err)
			return
		}
		if !damaged {
			return
		}
	}
	rep, err := d.repairUser(ctx, user, r.cfg)
	if err != nil {
		r.forget(user)
		d.log.Error("index repair failed", "user", user, "err", err)
		return
	}
	if rep.Deferred > 0 {
		r.deferUntil(user, now.Add(r.cfg.Grace))
	}
}

// checkIndex reports whether user's index needs a repair: the plan of a
// repair without the change log and the store, made from one snapshot,
// would change something. It reads every message record of the user.
func (d *DB) checkIndex(ctx context.Context, user UserID) (bool, error) {
	snap, err := d.db.NewSnapshot()
	if err != nil {
		return false, err
	}
	defer snap.Close()
	sc, err := scanIndex(ctx, snap, user, false)
	if err != nil {
		return false, err
	}
	p := newRepairPlan(sc, nil, time.Now())
	p.structure()
	p.dropAndLog()
	p.counters()
	return p.writes > 0, nil
}

// repairUser is Repair with rc's defaults applied. The caller has entered
// the DB.
func (d *DB) repairUser(ctx context.Context, user UserID, rc RepairConfig) (RepairReport, error) {
	start := time.Now()
	rec, err := d.userRecord(user)
	if err != nil {
		return RepairReport{}, err
	}
	var cands, young []candidate
	if rc.Store != nil {
		cands, young, err = d.candidates(ctx, &rec, rc.Store, start.Add(-max(rc.Grace, 0)))
		if err != nil {
			return RepairReport{}, fmt.Errorf("userdata: repair of user %d: walking the store: %w", user, err)
		}
	}

	lk := d.userLock(user)
	lk.Lock()
	defer lk.Unlock()
	sc, err := scanIndex(ctx, d.db, user, true)
	if err != nil {
		return RepairReport{}, fmt.Errorf("userdata: repair of user %d: %w", user, err)
	}
	b := d.db.NewBatch()
	defer b.Close()
	p := newRepairPlan(sc, b, start)
	p.hints = make(map[bodyKey][]string, len(cands)+len(young))
	for _, c := range slices.Concat(cands, young) {
		p.hints[bodyOf(c.ref)] = c.mailboxes
	}
	p.structure()
	p.dropAndLog()
	if err := p.restore(cands, false); err != nil {
		return RepairReport{}, fmt.Errorf("userdata: repair of user %d: %w", user, err)
	}
	if err := p.restore(young, true); err != nil {
		return RepairReport{}, fmt.Errorf("userdata: repair of user %d: %w", user, err)
	}
	p.counters()
	if p.writes == 0 {
		p.rep.Took = time.Since(start)
		return p.rep, nil
	}
	details := strings.Join(p.details, "; ")
	if p.problems > len(p.details) {
		details += fmt.Sprintf("; and %d more", p.problems-len(p.details))
	}
	d.log.Warn("index damaged; repairing", "user", user, "problems", p.problems, "details", details)
	if err := ctx.Err(); err != nil {
		return RepairReport{}, err
	}
	if err := d.commit(b); err != nil {
		return RepairReport{}, fmt.Errorf("userdata: repair of user %d: %w", user, err)
	}
	for _, id := range slices.Sorted(maps.Keys(sc.folders)) {
		fs := sc.folders[id]
		if len(fs.added)+len(fs.removed) > 0 {
			d.notify(FolderEvent{User: user, Folder: id, Added: fs.added, Removed: fs.removed, ModSeq: fs.modseq})
		}
	}
	p.rep.Took = time.Since(start)
	d.log.Info("index repaired", "user", user, "folders", p.rep.Folders, "restored", p.rep.Restored,
		"dropped", p.rep.Dropped, "fixed", p.rep.Fixed, "deferred", p.rep.Deferred, "took", p.rep.Took)
	return p.rep, nil
}

// candidate is a body delivered to the user being repaired.
type candidate struct {
	ref       msstore.Ref
	received  time.Time
	mailboxes []string // normalized folder names, one per delivery to the user
}

// maxOwnerCache bounds the owner names remembered during one walk.
const maxOwnerCache = 1 << 16

// candidates walks src for the bodies delivered to rec's user: those
// received at or before cutoff, and the younger ones, each in order of
// delivery.
func (d *DB) candidates(ctx context.Context, rec *userRecord, src RepairSource, cutoff time.Time) (old, young []candidate, err error) {
	idText := strconv.FormatUint(uint64(rec.ID), 10)
	known := map[string]bool{rec.Address: true, idText: true}
	isUser := func(owner string) (bool, error) {
		if v, ok := known[owner]; ok {
			return v, nil
		}
		v := false
		if addr, err := normalizeAddress(owner); err == nil {
			id, err := d.userIDByAddress(addr)
			switch {
			case err == nil:
				v = id == rec.ID
			case errors.Is(err, ErrNotFound), errors.Is(err, errCorruptAddr):
				// Nobody, or somebody else's damage: not this user.
			default:
				return false, err
			}
		}
		if len(known) >= maxOwnerCache {
			clear(known)
			known[rec.Address], known[idText] = true, true
		}
		known[owner] = v
		return v, nil
	}
	seen := map[bodyKey]bool{}
	err = src.Walk(ctx, func(ref msstore.Ref, meta msstore.Meta) error {
		if ref.IsZero() {
			return nil
		}
		var boxes []string
		for _, o := range meta.Owners {
			ok, err := isUser(o.User)
			if err != nil {
				return err
			}
			if ok {
				name, err := normalizeFolder(o.Mailbox)
				if err != nil {
					name = Inbox
				}
				boxes = append(boxes, name)
			}
		}
		if len(boxes) == 0 || seen[bodyOf(ref)] {
			return nil
		}
		seen[bodyOf(ref)] = true
		c := candidate{ref: ref, received: meta.Received, mailboxes: boxes}
		if meta.Received.After(cutoff) {
			young = append(young, c)
		} else {
			old = append(old, c)
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	order := func(a, b candidate) int {
		return cmp.Or(a.received.Compare(b.received), cmp.Compare(a.ref.Node, b.ref.Node), cmp.Compare(a.ref.ID, b.ref.ID))
	}
	slices.SortFunc(old, order)
	slices.SortFunc(young, order)
	return old, young, nil
}
