package userdata

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/mailsys/mailsys/msstore"
)

// The repair plan: a scan of a user's index and the changes that make it
// whole again (see repair.go).

// msgInfo is what a repair needs of a message record.
type msgInfo struct {
	uid    UID
	modseq uint64
	size   int64
	flags  Flags
	body   bodyKey
	named  bool // the message references a body
}

// logEntry is a live change-log entry.
type logEntry struct {
	uid    UID
	modseq uint64
}

// folderScan is what the keys of one folder id hold, and what the repair
// makes of it.
type folderScan struct {
	id      FolderID
	rec     Folder
	hasRec  bool      // rec was read and is usable
	recKey  bool      // a record key is there, usable or not
	recErr  error     // why the record is not usable
	names   []string  // name keys pointing here
	msgs    []msgInfo // decodable message records, in UID order
	badUIDs []UID     // message records that cannot be decoded
	live    []logEntry
	maxUID  UID    // the highest UID in its message keys and change log
	maxMod  uint64 // the highest MODSEQ in its message records and change log

	// The plan.
	keep    bool   // it is a folder after the repair
	name    string // its name after the repair
	out     Folder // its record after the repair
	dirty   bool   // out must be written
	modseq  uint64 // the MODSEQ of the repair's changes, 0 until needed
	added   []UID  // restored entries
	removed []UID  // entries logged as gone
}

// indexScan is what a user's index keys hold.
type indexScan struct {
	user       UserID
	withLog    bool
	mb         mailboxRecord
	mbErr      error // why the mailbox record is not usable
	folders    map[FolderID]*folderScan
	badKeys    [][]byte        // malformed keys, or name keys with bad values
	badMsgKeys [][]byte        // malformed message keys
	tombs      map[bodyKey]int // expunge tombstones per body they name
	maxID      FolderID        // the highest folder id any key names
}

// folder returns the scan of folder id, made on first use.
func (sc *indexScan) folder(id FolderID) *folderScan {
	fs := sc.folders[id]
	if fs == nil {
		fs = &folderScan{id: id}
		sc.folders[id] = fs
		sc.maxID = max(sc.maxID, id)
	}
	return fs
}

// scanIndex reads user's index from r: the mailbox record, the folder
// names and records, the message records and, with withLog, the change
// log. Damage is recorded, not returned; errors are read failures.
func scanIndex(ctx context.Context, r pebble.Reader, user UserID, withLog bool) (*indexScan, error) {
	sc := &indexScan{user: user, withLog: withLog, folders: map[FolderID]*folderScan{}, tombs: map[bodyKey]int{}}
	v, err := readKey(r, keyID(tagMailbox, uint64(user)))
	switch {
	case errors.Is(err, ErrNotFound):
		sc.mbErr = errors.New("missing")
	case err != nil:
		return nil, err
	default:
		if sc.mb, err = decodeMailbox(v); err != nil {
			sc.mbErr = err
		}
	}

	prefix := keyID(tagFolderName, uint64(user))
	err = scanReader(ctx, r, prefix, func(k, v []byte) error {
		name := string(k[len(prefix):])
		if n, err := normalizeFolder(name); err != nil || n != name || len(v) != 4 {
			sc.badKeys = append(sc.badKeys, slices.Clone(k))
			return nil
		}
		fs := sc.folder(FolderID(binary.BigEndian.Uint32(v)))
		fs.names = append(fs.names, name)
		return nil
	})
	if err != nil {
		return nil, err
	}

	prefix = keyID(tagFolder, uint64(user))
	err = scanReader(ctx, r, prefix, func(k, v []byte) error {
		if len(k) != len(prefix)+4 {
			sc.badKeys = append(sc.badKeys, slices.Clone(k))
			return nil
		}
		fs := sc.folder(FolderID(binary.BigEndian.Uint32(k[len(prefix):])))
		fs.recKey = true
		f, err := decodeFolder(v)
		switch {
		case err != nil:
			fs.recErr = err
		case f.ID != fs.id:
			fs.recErr = fmt.Errorf("record of folder %d says %d", fs.id, f.ID)
		default:
			fs.rec, fs.hasRec = f, true
		}
		return nil
	})
	if err != nil {
		return nil, err
	}

	prefix = keyID(tagMessage, uint64(user))
	var m Message
	err = scanReader(ctx, r, prefix, func(k, v []byte) error {
		if len(k) != len(prefix)+8 {
			sc.badMsgKeys = append(sc.badMsgKeys, slices.Clone(k))
			return nil
		}
		fs := sc.folder(FolderID(binary.BigEndian.Uint32(k[len(prefix):])))
		uid := UID(binary.BigEndian.Uint32(k[len(prefix)+4:]))
		fs.maxUID = max(fs.maxUID, uid)
		if err := decodeMessage(v, uid, &m); err != nil || m.Size < 0 || m.Flags&^allFlags != 0 || uid == 0 {
			fs.badUIDs = append(fs.badUIDs, uid)
			return nil
		}
		fs.maxMod = max(fs.maxMod, m.ModSeq)
		fs.msgs = append(fs.msgs, msgInfo{uid: uid, modseq: m.ModSeq, size: m.Size, flags: m.Flags,
			body: bodyOf(m.Ref), named: !m.Ref.IsZero()})
		return nil
	})
	if err != nil || !withLog {
		return sc, err
	}

	prefix = keyID(tagChange, uint64(user))
	err = scanReader(ctx, r, prefix, func(k, v []byte) error {
		e, ok := parseChange(v)
		if len(k) != len(prefix)+16 || !ok || e.uid != UID(binary.BigEndian.Uint32(k[len(prefix)+12:])) {
			sc.badKeys = append(sc.badKeys, slices.Clone(k))
			return nil
		}
		fs := sc.folder(FolderID(binary.BigEndian.Uint32(k[len(prefix):])))
		modseq := binary.BigEndian.Uint64(k[len(prefix)+4:])
		fs.maxUID = max(fs.maxUID, e.uid)
		fs.maxMod = max(fs.maxMod, modseq)
		switch {
		case !e.expunged:
			fs.live = append(fs.live, logEntry{uid: e.uid, modseq: modseq})
		case e.named:
			sc.tombs[e.body]++
		}
		return nil
	})
	return sc, err
}

// scanReader calls fn for every key with prefix in r, in order; fn's
// slices are valid only during the call. It stops early when ctx is done.
func scanReader(ctx context.Context, r pebble.Reader, prefix []byte, fn func(k, v []byte) error) error {
	it, err := r.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return fmt.Errorf("userdata: %w", err)
	}
	n := 0
	for it.First(); it.Valid(); it.Next() {
		if n++; n%1024 == 0 {
			if err := ctx.Err(); err != nil {
				it.Close()
				return err
			}
		}
		v, err := it.ValueAndErr()
		if err != nil {
			it.Close()
			return fmt.Errorf("userdata: %w", err)
		}
		if err := fn(it.Key(), v); err != nil {
			it.Close()
			return err
		}
	}
	if err := it.Close(); err != nil {
		return fmt.Errorf("userdata: %w", err)
	}
	return nil
}

// maxRepairDetails bounds the problems a repair describes in its log.
const maxRepairDetails = 20

// repairPlan turns an indexScan into the writes that make the index whole.
// With a nil batch it only counts them: that is the login check.
type repairPlan struct {
	sc       *indexScan
	b        *pebble.Batch // nil for a check
	now      time.Time
	mb       mailboxRecord // the mailbox record after the repair
	byName   map[string]*folderScan
	hints    map[bodyKey][]string // the mailboxes each body was delivered to
	rep      RepairReport
	writes   int      // keys set or deleted
	problems int      // problems found
	details  []string // the first maxRepairDetails of them
	buf      []byte
}

func newRepairPlan(sc *indexScan, b *pebble.Batch, now time.Time) *repairPlan {
	return &repairPlan{sc: sc, b: b, now: now, byName: map[string]*folderScan{}}
}

// set writes key in the batch, if any, and counts it. The batch copies
// key and value.
func (p *repairPlan) set(key, value []byte) {
	p.writes++
	if p.b != nil {
		p.b.Set(key, value, nil)
	}
}

// del deletes key in the batch, if any, and counts it.
func (p *repairPlan) del(key []byte) {
	p.writes++
	if p.b != nil {
		p.b.Delete(key, nil)
	}
}

// note records a problem found, for the log.
func (p *repairPlan) note(format string, args ...any) {
	p.problems++
	if len(p.details) < maxRepairDetails {
		p.details = append(p.details, fmt.Sprintf(format, args...))
	}
}

// sortedFolders returns the scanned folders in id order.
func (p *repairPlan) sortedFolders() []*folderScan {
	ids := slices.Sorted(maps.Keys(p.sc.folders))
	out := make([]*folderScan, len(ids))
	for i, id := range ids {
		out[i] = p.sc.folders[id]
	}
	return out
}

// structure settles the mailbox record's ids, the folders, their names and
// records: step 1 of the repair.
func (p *repairPlan) structure() {
	sc := p.sc
	if sc.mbErr != nil {
		p.note("mailbox record: %v", sc.mbErr)
	} else {
		p.mb = sc.mb
	}
	p.mb.NextFolder = max(p.mb.NextFolder, sc.maxID)
	for _, fs := range sc.folders {
		if fs.hasRec {
			p.mb.LastValidity = max(p.mb.LastValidity, fs.rec.UIDValidity)
		}
	}
	if sc.mbErr != nil {
		// The UIDVALIDITY given last is lost with the record. Each was
		// max(clock, previous+1) (putNewFolder), so none passed the clock
		// by more than the number of folders made: bound it so, lest a
		// rebuilt folder get the one its lost record had.
		p.mb.LastValidity = max(p.mb.LastValidity, uint32(p.now.Unix())+uint32(p.mb.NextFolder))
	}
	for _, k := range sc.badKeys {
		p.note("malformed key or value %q", k)
		p.del(k)
		p.rep.Fixed++
	}

	// Names: the record's name if a name key agrees, else the first name
	// key; folders with neither are named below.
	var unnamed []*folderScan
	for _, fs := range p.sortedFolders() {
		slices.Sort(fs.names)
		switch {
		case fs.hasRec && slices.Contains(fs.names, fs.rec.Name):
			fs.name = fs.rec.Name
		case len(fs.names) > 0:
			fs.name = fs.names[0]
		case fs.hasRec || len(fs.msgs) > 0:
			unnamed = append(unnamed, fs)
		default:
			// Not a folder: the change log of a deleted folder, records
			// that cannot be decoded (dropped below) or a record nothing
			// points to that cannot be decoded.
			if fs.recKey {
				p.note("folder %d: record that cannot be used, and nothing else: %v", fs.id, fs.recErr)
				p.del(keyFolder(sc.user, fs.id))
				p.rep.Fixed++
			}
			continue
		}
		fs.keep = true
		for _, n := range fs.names {
			if n != fs.name {
				p.note("folder %d: second name %q", fs.id, n)
				p.del(keyFolderName(sc.user, n))
				p.rep.Fixed++
			}
		}
		if fs.name != "" {
			p.byName[fs.name] = fs
		}
	}
	for _, fs := range unnamed {
		if n, err := normalizeFolder(fs.rec.Name); fs.hasRec && err == nil && n == fs.rec.Name && p.byName[n] == nil {
			fs.name = n
		} else if n := p.guessName(fs); n != "" {
			fs.name = n
		} else {
			fs.name = p.freeName(fmt.Sprintf("Recovered-%d", fs.id))
		}
		fs.keep = true
		p.note("folder %d: no name key; named %q", fs.id, fs.name)
		p.set(keyFolderName(sc.user, fs.name), binary.BigEndian.AppendUint32(nil, uint32(fs.id)))
		p.rep.Fixed++
		p.byName[fs.name] = fs
	}

	// Records.
	for _, fs := range p.sortedFolders() {
		if !fs.keep {
			continue
		}
		if fs.hasRec {
			fs.out = fs.rec
			if fs.out.Name != fs.name {
				p.note("folder %d: record names %q, its name key %q", fs.id, fs.out.Name, fs.name)
				fs.out.Name = fs.name
				fs.dirty = true
			}
			continue
		}
		why := "missing"
		if fs.recErr != nil {
			why = fs.recErr.Error()
		}
		fs.out = Folder{ID: fs.id, Name: fs.name, SpecialUse: p.special(fs.name),
			UIDValidity: p.newValidity(), UIDNext: 1}
		fs.dirty = true
		p.note("folder %q (%d): record %s; rebuilt with UIDVALIDITY %d", fs.name, fs.id, why, fs.out.UIDValidity)
	}

	// INBOX, and the superior levels of every name.
	if p.byName[Inbox] == nil {
		p.note("no INBOX")
		p.ensureFolder(Inbox)
	}
	for _, name := range slices.Sorted(maps.Keys(p.byName)) {
		p.ensureFolder(name)
	}

	// UIDNEXT and HIGHESTMODSEQ never go back, and pass every UID and
	// MODSEQ the folder's keys show.
	for _, fs := range p.sc.folders {
		if !fs.keep {
			continue
		}
		if next := uint64(fs.maxUID) + 1; fs.out.UIDNext != 0 && next > uint64(fs.out.UIDNext) {
			if next > math.MaxUint32 {
				next = 0 // out of UIDs, as checkUIDs sees it
			}
			fs.out.UIDNext = UID(next)
		}
		fs.out.HighestModSeq = max(fs.out.HighestModSeq, fs.maxMod)
	}
}

// guessName returns the name of the mailbox most of fs's bodies were
// delivered to (by the store's Meta, in p.hints), if no folder has it yet;
// "" if there is none.
func (p *repairPlan) guessName(fs *folderScan) string {
	votes := map[string]int{}
	for _, m := range fs.msgs {
		if m.named {
			for _, name := range p.hints[m.body] {
				votes[name]++
			}
		}
	}
	best := ""
	for _, name := range slices.Sorted(maps.Keys(votes)) {
		if p.byName[name] == nil && (best == "" || votes[name] > votes[best]) {
			best = name
		}
	}
	return best
}

// newValidity returns a new UIDVALIDITY, as putNewFolder makes them.
func (p *repairPlan) newValidity() uint32 {
	v := max(uint32(p.now.Unix()), p.mb.LastValidity+1)
	p.mb.LastValidity = v
	return v
}

// special returns the special-use attribute a rebuilt folder called name
// gets: that of the default folder of that name, unless another folder
// has it.
func (p *repairPlan) special(name string) string {
	for _, f := range defaultFolders {
		if f.name != name || f.special == "" {
			continue
		}
		for _, fs := range p.sc.folders {
			if fs.hasRec && fs.rec.SpecialUse == f.special {
				return ""
			}
		}
		return f.special
	}
	return ""
}

// freeName returns base, or base-2, base-3... whichever is not taken.
func (p *repairPlan) freeName(base string) string {
	name := base
	for i := 2; p.byName[name] != nil; i++ {
		name = fmt.Sprintf("%s-%d", base, i)
	}
	return name
}

// ensureFolder returns the folder called name (normalized), creating it
// and every missing superior level, as CreateFolder does.
func (p *repairPlan) ensureFolder(name string) *folderScan {
	for i := range len(name) {
		if name[i] == Delimiter && p.byName[name[:i]] == nil {
			p.note("folder %q missing above %q", name[:i], name)
			p.newFolder(name[:i])
		}
	}
	if fs := p.byName[name]; fs != nil {
		return fs
	}
	return p.newFolder(name)
}

// newFolder adds a new, empty folder called name, as putNewFolder does.
func (p *repairPlan) newFolder(name string) *folderScan {
	p.mb.NextFolder++
	fs := &folderScan{id: p.mb.NextFolder, keep: true, name: name, dirty: true}
	fs.out = Folder{ID: fs.id, Name: name, SpecialUse: p.special(name),
		UIDValidity: p.newValidity(), UIDNext: 1}
	p.sc.folders[fs.id] = fs
	p.byName[name] = fs
	p.set(keyFolderName(p.sc.user, name), binary.BigEndian.AppendUint32(nil, uint32(fs.id)))
	return fs
}

// modseqOf returns the MODSEQ of the repair's changes to fs.
func (p *repairPlan) modseqOf(fs *folderScan) uint64 {
	if fs.modseq == 0 {
		fs.modseq = fs.out.HighestModSeq + 1
	}
	return fs.modseq
}

// dropAndLog drops the message records that cannot be decoded and, when
// the change log was scanned, makes it agree with the messages: steps 2
// and 3 of the repair.
func (p *repairPlan) dropAndLog() {
	user := p.sc.user
	for _, k := range p.sc.badMsgKeys {
		p.note("malformed message key %q", k)
		p.del(k)
		p.rep.Dropped++
	}
	for _, fs := range p.sortedFolders() {
		for _, uid := range fs.badUIDs {
			p.note("folder %q (%d): message %d cannot be decoded", fs.name, fs.id, uid)
			p.del(keyMessage(user, fs.id, uid))
			p.rep.Dropped++
		}
		if !fs.keep {
			// The live entries of a folder that is gone; its tombstones
			// stay (those of a deleted folder tell which bodies went).
			for _, e := range fs.live {
				p.note("folder %d: change-log entry of message %d, and no folder", fs.id, e.uid)
				p.del(keyChangeUID(user, fs.id, e.modseq, e.uid))
				p.rep.Fixed++
			}
			continue
		}
		if !p.sc.withLog {
			continue
		}
		matched := make([]bool, len(fs.msgs))
		gone := map[UID]bool{}
		for _, e := range fs.live {
			i, found := slices.BinarySearchFunc(fs.msgs, e.uid, func(m msgInfo, uid UID) int { return cmp.Compare(m.uid, uid) })
			if found && fs.msgs[i].modseq == e.modseq && !matched[i] {
				matched[i] = true
				continue
			}
			p.del(keyChangeUID(user, fs.id, e.modseq, e.uid))
			p.rep.Fixed++
			if !found {
				if !slices.Contains(fs.badUIDs, e.uid) {
					p.note("folder %q (%d): message %d lost", fs.name, fs.id, e.uid)
				}
				gone[e.uid] = true
			}
		}
		for _, uid := range fs.badUIDs {
			gone[uid] = true
		}
		for i, m := range fs.msgs {
			if !matched[i] {
				p.note("folder %q (%d): message %d has no change-log entry", fs.name, fs.id, m.uid)
				p.set(keyChangeUID(user, fs.id, m.modseq, m.uid), changeValue(m.uid, false, msstore.Ref{}))
				p.rep.Fixed++
			}
		}
		if len(gone) > 0 {
			modseq := p.modseqOf(fs)
			fs.removed = slices.Sorted(maps.Keys(gone))
			for _, uid := range fs.removed {
				p.set(keyChangeUID(user, fs.id, modseq, uid), changeValue(uid, true, msstore.Ref{}))
			}
			fs.dirty = true
		}
	}
}

// restore adds index entries for the candidates that lost theirs: step 4
// of the repair. With deferOnly it adds nothing and counts them as
// Deferred.
func (p *repairPlan) restore(cands []candidate, deferOnly bool) error {
	if len(cands) == 0 {
		return nil
	}
	live := map[bodyKey][]*folderScan{}
	for _, fs := range p.sc.folders {
		if fs.keep {
			for _, m := range fs.msgs {
				if m.named {
					live[m.body] = append(live[m.body], fs)
				}
			}
		}
	}
	user := p.sc.user
	for _, c := range cands {
		k := bodyOf(c.ref)
		need := len(c.mailboxes) - len(live[k]) - p.sc.tombs[k]
		if need <= 0 {
			continue
		}
		if deferOnly {
			p.rep.Deferred += need
			continue
		}
		// The deliveries whose entries are lost are those without an
		// entry in a folder of their mailbox's name, if any.
		rest := slices.Clone(c.mailboxes)
		for _, fs := range live[k] {
			if i := slices.Index(rest, fs.name); i >= 0 {
				rest = slices.Delete(rest, i, i+1)
			}
		}
		for _, name := range rest[:need] {
			fs := p.ensureFolder(name)
			if err := checkUIDs(&fs.out, 1); err != nil {
				return err
			}
			m := Message{UID: fs.out.UIDNext, ModSeq: p.modseqOf(fs), Ref: c.ref, InternalDate: c.received, Size: c.ref.Size}
			fs.out.UIDNext++
			var err error
			if p.buf, err = encodeMessage(p.buf[:0], &m); err != nil {
				return err
			}
			p.note("folder %q: restored body %s as message %d", fs.name, c.ref, m.UID)
			p.set(keyMessage(user, fs.id, m.UID), p.buf)
			p.set(keyChangeUID(user, fs.id, m.ModSeq, m.UID), changeValue(m.UID, false, msstore.Ref{}))
			fs.msgs = append(fs.msgs, msgInfo{uid: m.UID, modseq: m.ModSeq, size: m.Size, body: k, named: true})
			fs.added = append(fs.added, m.UID)
			fs.dirty = true
			p.rep.Restored++
		}
	}
	return nil
}

// counters recounts every folder and the mailbox's usage, and writes the
// records that changed: step 5 of the repair.
func (p *repairPlan) counters() {
	var usage Usage
	for _, fs := range p.sortedFolders() {
		if !fs.keep {
			continue
		}
		var n, unseen uint32
		var size int64
		for _, m := range fs.msgs {
			n++
			size += m.size
			if m.flags&FlagSeen == 0 {
				unseen++
			}
		}
		usage.Messages += int64(n)
		usage.Bytes += size
		if fs.modseq != 0 {
			fs.out.HighestModSeq = fs.modseq
		}
		if fs.hasRec && (fs.out.Messages != n || fs.out.Unseen != unseen || fs.out.Size != size) {
			p.note("folder %q (%d): counts %d messages, %d unseen, %d bytes; holds %d, %d, %d",
				fs.name, fs.id, fs.out.Messages, fs.out.Unseen, fs.out.Size, n, unseen, size)
		}
		fs.out.Messages, fs.out.Unseen, fs.out.Size = n, unseen, size
		if fs.hasRec && fs.out != fs.rec && !fs.dirty {
			p.note("folder %q (%d): UIDNEXT or HIGHESTMODSEQ behind its messages", fs.name, fs.id)
		}
		if fs.dirty || !fs.hasRec || fs.out != fs.rec {
			p.set(keyFolder(p.sc.user, fs.id), encodeFolder(&fs.out))
			p.rep.Folders++
		}
	}
	p.mb.Usage = usage
	if p.sc.mbErr == nil && p.mb != p.sc.mb {
		p.note("mailbox record: %+v, should be %+v", p.sc.mb, p.mb)
	}
	if p.sc.mbErr != nil || p.mb != p.sc.mb {
		p.set(keyID(tagMailbox, uint64(p.sc.user)), encodeMailbox(&p.mb))
		p.rep.Fixed++
	}
}
