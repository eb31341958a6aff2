package queue

import (
	"bytes"
	"context"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/mailsys/mailsys/mta/dsn"
)

// complete records the outcome of an attempt at j, one per recipient of
// j.rcpts, schedules the recipients deferred and sends the notifications
// due.
func (q *Queue) complete(j *job, out []outcome) {
	e := j.e
	now := time.Now()
	closing := q.ctx.Err() != nil
	q.mu.Lock()
	states := make([]rcptState, len(e.rcpts))
	copy(states, e.rcpts)
	q.mu.Unlock()
	final := false
	for k, i := range j.rcpts {
		r, o := &states[i], out[k]
		if closing && !o.ok && !o.perm {
			continue // cut short by Close: as it was, for the next Open
		}
		r.Attempts++
		r.Last, r.Reply, r.Host, r.Status = now, clip(o.reply), o.host, o.status
		switch {
		case o.ok:
			r.State, r.DSN, r.Next = Delivered, o.dsn, time.Time{}
		case o.perm:
			r.State, r.Next = Failed, time.Time{}
		case now.Sub(e.m.Received) >= q.cfg.Lifetime:
			r.State, r.Next, r.Status = Failed, time.Time{}, "4.4.7"
			r.Reply = o.reply + " (retried for " + q.cfg.Lifetime.String() + "; giving up)"
		default:
			r.State, r.Next = Deferred, now.Add(q.backoff(r.Attempts))
		}
		final = final || r.State.final()
		q.logOutcome(e, i, r, o)
	}
	// A final state is on disk before the next attempt: after a crash,
	// the recipients delivered are not sent again.
	if err := q.st.setRcpts(e.id, j.rcpts, states, final); err != nil {
		q.log.Error("recipient states not recorded", "id", e.id, "err", err)
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	e.busy--
	if e.busy == 0 && e.body != nil {
		q.kept -= int64(len(e.body))
		e.body = nil // the first attempts are over: not held while retries wait
	}
	if e.deleted {
		return
	}
	var again []int
	for _, i := range j.rcpts {
		if e.stopped && states[i].State != Delivered {
			continue // Delete failed it
		}
		e.rcpts[i] = states[i]
		if !states[i].State.final() {
			again = append(again, i)
		}
	}
	if len(again) > 0 {
		q.schedule(e, again)
	}
	q.notify(e)
}

func (q *Queue) logOutcome(e *entry, i int, r *rcptState, o outcome) {
	attrs := []any{"id", e.id, "from", reversePath(e.m.From), "to", e.m.Rcpts[i].Addr, "host", o.host, "reply", o.reply, "attempts", r.Attempts,
		"delay", time.Since(e.m.Received).Round(time.Millisecond)}
	switch r.State {
	case Delivered:
		q.log.Info("delivered", attrs...)
	case Failed:
		q.log.Warn("bounced", attrs...)
	default:
		q.log.Info("deferred", append(attrs, "next", r.Next)...)
	}
}

// notify starts sending e's notifications due, if any and not already
// being sent, or takes e out of the queue when it is finished. Called with
// q.mu held.
func (q *Queue) notify(e *entry) {
	if e.reporting || e.deleted || q.closed {
		return
	}
	if len(q.due(e, time.Now())) == 0 {
		if e.busy == 0 && q.done(e) {
			q.finish(e)
		}
		return
	}
	e.reporting = true
	q.wg.Add(1)
	go q.report(e)
}

// done reports whether every recipient of e is final. Called with q.mu
// held.
func (q *Queue) done(e *entry) bool {
	for _, r := range e.rcpts {
		if !r.State.final() {
			return false
		}
	}
	return true
}

// due returns the recipients of e with a notification due: a final one
// not reported, a deferred one old enough for its delay warning. Called
// with q.mu held.
func (q *Queue) due(e *entry, now time.Time) []int {
	var out []int
	for i, r := range e.rcpts {
		switch {
		case r.State.final() && !r.Reported:
			out = append(out, i)
		case r.State == Deferred && !r.Warned && q.cfg.DelayWarning > 0 && now.Sub(e.m.Received) >= q.cfg.DelayWarning:
			out = append(out, i)
		}
	}
	return out
}

// reportRetry is how long a notification that could not be sent waits
// before it is tried again.
const reportRetry = time.Minute

// report sends e's notifications due, marks their recipients reported or
// warned, and takes e out of the queue if it is finished; one that
// cannot be sent is tried again after reportRetry.
func (q *Queue) report(e *entry) {
	defer q.wg.Done()
	now := time.Now()
	q.mu.Lock()
	idx := q.due(e, now)
	states := make([]rcptState, len(e.rcpts))
	copy(states, e.rcpts)
	m := e.m
	q.mu.Unlock()
	var failed, delayed, relayed []dsn.Recipient
	for _, i := range idx {
		r, rc := &states[i], m.Rcpts[i]
		rec := dsn.Recipient{Final: rc.Addr, Original: rc.ORcpt, Status: r.Status, RemoteMTA: r.Host, Diagnostic: r.Reply, LastAttempt: r.Last}
		switch r.State {
		case Failed:
			if dsn.Notifies(rc.Notify, "FAILURE") {
				rec.Action = dsn.Failed
				failed = append(failed, rec)
			}
			r.Reported = true
		case Delivered:
			// A next hop that offers DSN took NOTIFY and reports itself.
			if dsn.Notifies(rc.Notify, "SUCCESS") && !r.DSN {
				rec.Action = dsn.Relayed
				relayed = append(relayed, rec)
			}
			r.Reported = true
		case Deferred:
			if dsn.Notifies(rc.Notify, "DELAY") {
				rec.Action, rec.WillRetryUntil = dsn.Delayed, m.Received.Add(q.cfg.Lifetime)
				delayed = append(delayed, rec)
			}
			r.Warned = true
		}
	}
	ok := true
	if m.From != "" && q.cfg.Bounces != nil {
		// One notification per kind: the failures with the relays.
		for _, group := range [][]dsn.Recipient{append(failed, relayed...), delayed} {
			if len(group) == 0 {
				continue
			}
			if err := q.bounce(e, m, group); err != nil {
				q.log.Error("delivery status notification not sent; will try again", "id", e.id, "to", m.From, "err", err)
				ok = false
				break
			}
		}
	} else if len(failed)+len(delayed)+len(relayed) > 0 {
		why := "no Bounces configured"
		if m.From == "" {
			why = "null sender"
		}
		q.log.Info("no delivery status notification", "id", e.id, "from", reversePath(m.From), "why", why)
	}
	if ok {
		if err := q.st.setRcpts(e.id, idx, states, false); err != nil {
			q.log.Error("recipient states not recorded", "id", e.id, "err", err)
		}
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	e.reporting = false
	if !ok {
		q.retryReport(e)
		return
	}
	for _, i := range idx {
		// Only the marks: the state may have moved on meanwhile.
		e.rcpts[i].Reported = e.rcpts[i].Reported || states[i].Reported
		e.rcpts[i].Warned = e.rcpts[i].Warned || states[i].Warned
	}
	q.notify(e)
}

// retryReport tries e's notifications again later. Called with q.mu held.
func (q *Queue) retryReport(e *entry) {
	if q.closed {
		return
	}
	e.reporting = true // until the timer's report
	q.wg.Add(1)
	go func() {
		t := time.NewTimer(reportRetry)
		defer t.Stop()
		select {
		case <-t.C:
			q.report(e)
		case <-q.shutdown:
			q.wg.Done()
		}
	}()
}

// bounce makes a notification about some recipients of e and hands it to
// Bounces.
func (q *Queue) bounce(e *entry, m *stored, rcpts []dsn.Recipient) error {
	msg, err := dsn.Build(dsn.Report{
		ReportingMTA: q.cfg.Hostname, To: m.From, EnvID: m.EnvID, Arrival: m.Received, Ret: m.Ret,
		Recipients: rcpts, Original: q.st.body(e.id, m.Size), OriginalSize: m.Size,
	})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(q.ctx, time.Minute)
	defer cancel()
	if err := q.cfg.Bounces.Submit(ctx, "", []string{m.From}, bytes.NewReader(msg)); err != nil {
		return err
	}
	q.log.Info("delivery status notification sent", "id", e.id, "to", m.From, "action", rcpts[0].Action, "recipients", len(rcpts))
	return nil
}

// finish takes e out of the queue. Called with q.mu held.
func (q *Queue) finish(e *entry) {
	if q.entries[e.id] != e {
		return
	}
	delete(q.entries, e.id)
	if e.body != nil {
		q.kept -= int64(len(e.body))
		e.body = nil
	}
	if err := q.st.remove(e.id, e.m, time.Now()); err != nil {
		q.log.Error("finished message not removed", "id", e.id, "err", err)
	}
}

// maxReply bounds a reply kept for a recipient.
const maxReply = 1000

// clip makes a reply fit to keep and show: control characters replaced,
// at most maxReply bytes.
func clip(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f || r == utf8.RuneError {
			return '?'
		}
		return r
	}, s)
	if len(s) > maxReply {
		s = strings.ToValidUTF8(s[:maxReply], "") + "..."
	}
	return s
}
