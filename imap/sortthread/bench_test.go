package sortthread

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// folder makes n messages as a mailing-list folder has them: threads of
// replies with References, subjects with leaders and blobs, a few
// senders.
func folder(n int) []Message {
	r := rand.New(rand.NewPCG(1, 2))
	msgs := make([]Message, n)
	for i := range msgs {
		m := &msgs[i]
		m.Num = uint32(i + 1)
		m.Arrival = day.Add(time.Duration(i) * time.Minute)
		m.Date = m.Arrival.Add(-time.Duration(r.IntN(3600)) * time.Second)
		m.Size = int64(1000 + r.IntN(100000))
		m.From = Address{Name: fmt.Sprintf("Sender %d", r.IntN(500)), Mailbox: fmt.Sprintf("s%d", r.IntN(500)), Host: "example.org"}
		m.To = Address{Mailbox: "list", Host: "example.org"}
		m.MessageID = fmt.Sprintf("%d@example.org", i)
		topic := i
		if i > 10 && r.IntN(4) != 0 { // three in four reply to a recent message
			p := i - 1 - r.IntN(10)
			parent := &msgs[p]
			topic = p
			m.References = append(append([]string(nil), parent.References...), parent.MessageID)
			if len(m.References) > 20 {
				m.References = m.References[len(m.References)-20:]
			}
			m.Subject = "Re: [list] " + subjectOf(parent)
			continue
		}
		m.Subject = fmt.Sprintf("[list] topic number %d", topic)
	}
	return msgs
}

func subjectOf(m *Message) string {
	s, _ := BaseSubject(m.Subject)
	return s
}

// BenchmarkSort sorts 100,000 messages by base subject and by DATE
// against the cheapest key (ARRIVAL), all from the index's summary
// without a body, and reports each per message and the ratio.
func BenchmarkSort(b *testing.B) {
	msgs := folder(100_000)
	var arrival, subject, date time.Duration
	for b.Loop() {
		for _, c := range []struct {
			crit []Criterion
			d    *time.Duration
		}{
			{[]Criterion{{Key: Arrival}}, &arrival},
			{[]Criterion{{Key: Subject}, {Key: Date, Reverse: true}}, &subject},
			{[]Criterion{{Key: Date}, {Key: DisplayFrom}}, &date},
		} {
			start := time.Now()
			if _, err := Sort(msgs, c.crit); err != nil {
				b.Fatal(err)
			}
			*c.d += time.Since(start)
		}
	}
	n := float64(b.N)
	b.ReportMetric(float64(arrival.Milliseconds())/n, "arrival_ms")
	b.ReportMetric(float64(subject.Milliseconds())/n, "subject_ms")
	b.ReportMetric(float64(date.Milliseconds())/n, "date_from_ms")
	b.ReportMetric(float64(subject)/float64(arrival), "ratio_subject_to_arrival")
}

// BenchmarkThread threads 100,000 messages by REFERENCES and by
// ORDEREDSUBJECT, against a SORT by ARRIVAL of the same messages.
func BenchmarkThread(b *testing.B) {
	msgs := folder(100_000)
	var arrival, refs, ordered time.Duration
	for b.Loop() {
		start := time.Now()
		if _, err := Sort(msgs, []Criterion{{Key: Arrival}}); err != nil {
			b.Fatal(err)
		}
		arrival += time.Since(start)
		start = time.Now()
		if _, err := Thread(References, msgs); err != nil {
			b.Fatal(err)
		}
		refs += time.Since(start)
		start = time.Now()
		if _, err := Thread(OrderedSubject, msgs); err != nil {
			b.Fatal(err)
		}
		ordered += time.Since(start)
	}
	n := float64(b.N)
	b.ReportMetric(float64(refs.Milliseconds())/n, "references_ms")
	b.ReportMetric(float64(ordered.Milliseconds())/n, "orderedsubject_ms")
	b.ReportMetric(float64(refs)/float64(arrival), "ratio_references_to_sort")
}

func BenchmarkBaseSubject(b *testing.B) {
	for b.Loop() {
		BaseSubject("Re: [list] Fwd: Re: [another] the subject of a message (fwd)")
	}
}
