package imap

import (
	"errors"
	"io"
	"time"

	goimap "github.com/emersion/go-imap/v2"

	"github.com/mailsys/mailsys/msstore"
	"github.com/mailsys/mailsys/userdata"
)

// Append implements imapserver.Session. The message streams into the
// store while its ENVELOPE and BODYSTRUCTURE are worked out, then goes
// into the index within the user's quota.
func (s *session) Append(mailbox string, r goimap.LiteralReader, options *goimap.AppendOptions) (*goimap.AppendData, error) {
	f, err := s.folder(mailbox)
	if errors.Is(err, userdata.ErrNotFound) {
		return nil, errTryCreate
	}
	if err != nil {
		return nil, s.fail("append", err)
	}
	if int64(s.AppendLimit()) < r.Size() {
		return nil, &goimap.Error{Type: goimap.StatusResponseTypeNo, Code: goimap.ResponseCodeTooBig, Text: "Message too big"}
	}
	bits, kws, err := indexFlags(options.Flags)
	if err != nil {
		return nil, err
	}
	date := options.Time
	if date.IsZero() {
		date = time.Now()
	}
	nm, err := s.put(&wholeLiteral{r: r, left: r.Size()}, msstore.Meta{Received: date, Owners: []msstore.Owner{{User: s.user.Address, Mailbox: f.Name}}})
	if err != nil {
		return nil, s.fail("append", err)
	}
	nm.InternalDate, nm.Flags, nm.Keywords = date, bits, kws
	m, err := s.srv.users.Append(s.ctx(), s.user.ID, f.ID, nm)
	if err != nil {
		if rerr := s.srv.store.Release(s.ctx(), nm.Ref); rerr != nil {
			s.srv.log.Error("append: giving back a body", "ref", nm.Ref, "err", rerr)
		}
		return nil, s.fail("append", err)
	}
	return &goimap.AppendData{UID: goimap.UID(m.UID), UIDValidity: f.UIDValidity}, nil
}

// put stores a message and summarizes it on the way.
func (s *session) put(r io.Reader, meta msstore.Meta) (userdata.NewMessage, error) {
	pr, pw := io.Pipe()
	type summary struct {
		env, bs []byte
		err     error
	}
	done := make(chan summary, 1)
	go func() {
		env, bs, err := Summarize(pr)
		io.Copy(io.Discard, pr) // whatever the parser left
		done <- summary{env, bs, err}
	}()
	ref, err := s.srv.store.Put(s.ctx(), io.TeeReader(r, pw), meta)
	pw.CloseWithError(err)
	sum := <-done
	if err != nil {
		return userdata.NewMessage{}, err
	}
	nm := userdata.NewMessage{Ref: ref, Size: ref.Size}
	if sum.err == nil {
		nm.Envelope, nm.Structure = sum.env, sum.bs
	}
	return nm, nil
}

// wholeLiteral reads a literal and fails with io.ErrUnexpectedEOF if the
// connection ends before all of it came: a cut APPEND stores nothing.
type wholeLiteral struct {
	r    io.Reader
	left int64
}

func (l *wholeLiteral) Read(p []byte) (int, error) {
	n, err := l.r.Read(p)
	l.left -= int64(n)
	if err == io.EOF && l.left > 0 {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}
