package userdata

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// Appends are group-committed. Each Append joins the queue of its user's
// lock stripe before it takes the lock; whoever then holds the lock takes
// every queued append of its own user and commits them in one synced
// batch. Deliveries to one busy mailbox thus share an fsync instead of
// waiting in line for one each, and a lone Append costs what it always
// did.

// appendJob is one Append waiting in a queue.
type appendJob struct {
	user   UserID
	folder FolderID
	nm     NewMessage
	kws    []string

	msg  Message
	err  error
	done chan struct{} // closed once msg or err is set
}

// appendQueue holds the appends waiting for one lock stripe.
type appendQueue struct {
	mu   sync.Mutex
	jobs []*appendJob
}

// maxAppendBatch bounds the appends committed in one batch.
const maxAppendBatch = 256

// Append adds a message to the folder with the folder's next UID and a new
// MODSEQ. It returns ErrQuota when the user's or the domain's quota would
// be passed, ErrInvalid for a negative size, unknown flags or bad keywords
// (not IMAP atoms, longer than 100 bytes, more than 64), and ErrNotFound
// for an unknown user or folder. Concurrent appends for one user are
// committed together, each with its own outcome.
func (d *DB) Append(ctx context.Context, user UserID, folder FolderID, nm NewMessage) (Message, error) {
	done, err := d.enter(ctx)
	if err != nil {
		return Message{}, err
	}
	defer done()
	kws, err := checkNewMessage(&nm)
	if err != nil {
		return Message{}, err
	}
	job := &appendJob{user: user, folder: folder, nm: nm, kws: kws, done: make(chan struct{})}
	stripe := uint64(user) % uint64(len(d.locks))
	q := &d.appends[stripe]
	q.mu.Lock()
	q.jobs = append(q.jobs, job)
	q.mu.Unlock()

	lk := &d.locks[stripe]
	lk.Lock()
	defer lk.Unlock()
	select {
	case <-job.done: // the holder before us committed it
	default:
		d.appendQueued(q, user)
	}
	<-job.done
	if job.err != nil {
		return Message{}, job.err
	}
	return job.msg, nil
}

// checkNewMessage checks what Append is given and returns its keywords,
// normalized.
func checkNewMessage(nm *NewMessage) ([]string, error) {
	if nm.Size < 0 || nm.Flags&^allFlags != 0 {
		return nil, fmt.Errorf("%w: message size %d, flags %#x", ErrInvalid, nm.Size, nm.Flags)
	}
	return normalizeKeywords(nm.Keywords, nil)
}

// appendQueued commits the queued appends of user, with the user's lock
// held. Those of other users sharing the stripe stay queued for their own
// callers.
func (d *DB) appendQueued(q *appendQueue, user UserID) {
	q.mu.Lock()
	var jobs []*appendJob
	rest := q.jobs[:0]
	for _, j := range q.jobs {
		if j.user == user && len(jobs) < maxAppendBatch {
			jobs = append(jobs, j)
		} else {
			rest = append(rest, j)
		}
	}
	clear(q.jobs[len(rest):])
	q.jobs = rest
	q.mu.Unlock()

	err := d.appendBatch(user, jobs)
	if errors.Is(err, ErrQuota) && len(jobs) > 1 {
		// Together they pass a quota; alone some may not.
		for _, j := range jobs {
			if e := d.appendBatch(user, []*appendJob{j}); e != nil {
				j.err = e
			}
			close(j.done)
		}
		return
	}
	for _, j := range jobs {
		if err != nil {
			j.err = err
		}
		close(j.done)
	}
}

// appendBatch indexes jobs, all for user, in one batch, with the user's
// lock held. A job that cannot be appended on its own (an unknown folder,
// one out of UIDs) gets its error and leaves the others be; an error for
// the whole batch is returned. It sets each job's msg or err but closes no
// done channel.
func (d *DB) appendBatch(user UserID, jobs []*appendJob) error {
	own, err := d.ownerOf(user, true)
	if err != nil {
		return err
	}
	b := d.db.NewBatch()
	defer b.Close()
	folders := map[FolderID]*Folder{}
	keywords := map[FolderID]*folderKeywords{}
	var order []FolderID
	var added [][]UID
	var count, bytes int64
	for _, j := range jobs {
		j.msg, j.err = Message{}, nil
		f := folders[j.folder]
		if f == nil {
			rec, err := readFolderFrom(d.db, user, j.folder)
			if err != nil {
				j.err = err
				continue
			}
			fk, err := d.readKeywords(user, j.folder)
			if err != nil {
				j.err = err
				continue
			}
			f = &rec
			folders[j.folder] = f
			keywords[j.folder] = fk
			order = append(order, j.folder)
			added = append(added, nil)
		}
		if err := checkUIDs(f, 1); err != nil {
			j.err = err
			continue
		}
		if err := keywords[j.folder].add(j.kws); err != nil {
			j.err = err
			continue
		}
		m := Message{UID: f.UIDNext, ModSeq: f.HighestModSeq + 1, Ref: j.nm.Ref, InternalDate: j.nm.InternalDate,
			Size: j.nm.Size, Flags: j.nm.Flags, Keywords: j.kws, Envelope: j.nm.Envelope, Structure: j.nm.Structure}
		val, err := encodeMessage(nil, &m)
		if err != nil {
			j.err = err
			continue
		}
		b.Set(keyMessage(user, j.folder, m.UID), val, nil)
		logChange(b, user, j.folder, m.UID, 0, m.ModSeq, false)
		f.UIDNext++
		f.HighestModSeq = m.ModSeq
		countIn(f, &m, 1)
		j.msg = m
		count++
		bytes += m.Size
		for i, id := range order {
			if id == j.folder {
				added[i] = append(added[i], m.UID)
			}
		}
	}
	if count == 0 {
		return nil
	}
	release, err := d.charge(b, user, own, count, bytes, true)
	defer release()
	if err != nil {
		return err
	}
	for _, id := range order {
		writeFolderRec(b, user, folders[id])
		keywords[id].put(b, user, id)
	}
	if err := d.commit(b); err != nil {
		return err
	}
	for i, id := range order {
		if len(added[i]) > 0 {
			d.notify(FolderEvent{User: user, Folder: id, Added: added[i], ModSeq: folders[id].HighestModSeq, Keywords: keywords[id].event()})
		}
	}
	return nil
}
