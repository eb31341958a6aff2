package imap

import (
	"errors"
	"io"
	"time"

	goimap "github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"github.com/mailsys/mailsys/msstore"
	"github.com/mailsys/mailsys/userdata"
)

// Fetch implements imapserver.Session. Flags, dates, sizes, ENVELOPE and
// BODYSTRUCTURE come from the index; a body is opened only for the
// sections asked for, and a whole body (BODY[], with or without a
// partial range) streams from the store.
func (s *session) Fetch(w *imapserver.FetchWriter, numSet goimap.NumSet, options *goimap.FetchOptions) error {
	defer s.took("FETCH", time.Now())
	sel := s.sel
	if err := checkBinaryOptions(options); err != nil {
		return err
	}
	msgs, err := sel.resolve(numSet)
	if err != nil || len(msgs) == 0 {
		return err
	}
	_, byUID := numSet.(goimap.UIDSet)
	// Reading a body section without PEEK sets \Seen (RFC 3501 6.4.5),
	// unless the folder is read-only. It is set first, so that the
	// FLAGS sent with the data are the new ones.
	seen := map[userdata.UID]bool{}
	if !sel.readOnly && marksSeen(options) {
		res, err := s.srv.users.StoreFlags(userdata.WithOrigin(s.ctx(), sel.view), s.user.ID, sel.folder.ID, uidSet(msgs),
			userdata.FlagUpdate{Op: userdata.FlagsAdd, Flags: userdata.FlagSeen})
		if err != nil {
			return s.fail("fetch", err)
		}
		for _, m := range res.Changed {
			seen[m.UID] = true
		}
	}
	release := hold(s.conn.NetConn())
	defer release()
	i := 0
	fl := sel.flagger()
	found := 0
	err = s.srv.users.Messages(s.ctx(), s.user.ID, sel.folder.ID, uidSet(msgs), func(m *userdata.Message) error {
		for i < len(msgs) && msgs[i].uid < m.UID {
			i++
		}
		if i == len(msgs) || msgs[i].uid != m.UID {
			return nil
		}
		found++
		rw := w.CreateMessage(msgs[i].seq)
		if err := s.fetchOne(rw, m, fl, options, byUID || options.UID, seen[m.UID]); err != nil {
			rw.Close()
			return err
		}
		return rw.Close()
	})
	if err == nil && found < len(msgs) {
		// Messages the client still knows are gone from the index:
		// another session expunged them, and this one has not been
		// told yet (RFC 9051 7.1).
		return errExpungeIssued
	}
	if errors.Is(err, userdata.ErrUnavailable) || errors.Is(err, msstore.ErrUnavailable) {
		// The index or a body is on a node that is down: NO
		// [UNAVAILABLE], not a server bug.
		return s.fail("fetch", err)
	}
	return err
}

func marksSeen(options *goimap.FetchOptions) bool {
	for _, bs := range options.BodySection {
		if !bs.Peek {
			return true
		}
	}
	return len(options.BinarySection) > 0 && !options.BinarySection[0].Peek
}

// fetchOne writes the items of one message.
func (s *session) fetchOne(w *imapserver.FetchResponseWriter, m *userdata.Message, fl *flagger, options *goimap.FetchOptions, uid, seenNow bool) error {
	if uid {
		w.WriteUID(goimap.UID(m.UID))
	}
	if options.Flags || seenNow {
		w.WriteFlags(fl.flags(m.UID, m.Flags, m.Keywords))
	}
	if options.InternalDate {
		w.WriteInternalDate(m.InternalDate)
	}
	if options.RFC822Size {
		w.WriteRFC822Size(m.Size)
	}
	body := &lazyBody{s: s, ref: m.Ref, uid: m.UID}
	defer body.close()
	if options.Envelope {
		env, err := DecodeEnvelope(m.Envelope)
		if err != nil || len(m.Envelope) == 0 {
			if env, _, err = body.summary(); err != nil {
				return err
			}
		}
		w.WriteEnvelope(env)
	}
	if options.BodyStructure != nil {
		bs, err := DecodeStructure(m.Structure)
		if err != nil || len(m.Structure) == 0 {
			if _, bs, err = body.summary(); err != nil {
				return err
			}
		}
		w.WriteBodyStructure(fillMultiparts(bs))
	}
	for _, section := range options.BodySection {
		if err := writeSection(w, body, section); err != nil {
			return err
		}
	}
	return writeBinary(w, body, options)
}

// fillMultiparts gives every multipart without parts (a message whose
// boundary never appears) an empty text part: IMAP's body type cannot
// express a multipart with none, and go-imap's writer panics on one.
func fillMultiparts(bs goimap.BodyStructure) goimap.BodyStructure {
	mp, ok := bs.(*goimap.BodyStructureMultiPart)
	if !ok {
		return bs
	}
	if len(mp.Children) == 0 {
		part := &goimap.BodyStructureSinglePart{Type: "text", Subtype: "plain", Encoding: "7bit", Text: &goimap.BodyStructureText{}}
		if mp.Extended != nil {
			part.Extended = &goimap.BodyStructureSinglePartExt{}
		}
		mp.Children = []goimap.BodyStructure{part}
	}
	for i, c := range mp.Children {
		mp.Children[i] = fillMultiparts(c)
	}
	return bs
}

// writeSection writes one BODY[...] item. The whole message, or a range
// of it, streams from the store. A header section is cut out of the
// message (see openSection); a part or a TEXT streams from it twice, once
// to count its bytes for the literal's size, once to write them, so that
// memory does not grow with the part.
func writeSection(w *imapserver.FetchResponseWriter, body *lazyBody, section *goimap.FetchItemBodySection) error {
	whole := section.Specifier == goimap.PartSpecifierNone && len(section.Part) == 0
	if whole {
		b, err := body.open()
		if err != nil {
			return err
		}
		off, n := partialRange(section.Partial, b.Size())
		wc := w.WriteBodySection(section, n)
		if _, err := io.Copy(wc, io.NewSectionReader(b, off, n)); err != nil {
			wc.Close()
			return err
		}
		return wc.Close()
	}
	// A message cut short or malformed ends its part where it breaks, as
	// in its BODYSTRUCTURE; only a read error from the store fails.
	r, err := body.reader()
	if err != nil {
		return err
	}
	src := &sourceReader{r: r}
	data, content, isHeader := openSection(src, section)
	if isHeader {
		if src.err != nil {
			return body.s.fail("fetch", src.err)
		}
		off, n := partialRange(section.Partial, int64(len(data)))
		wc := w.WriteBodySection(section, n)
		wc.Write(data[off : off+n])
		return wc.Close()
	}
	total, _ := io.Copy(io.Discard, content)
	if src.err != nil {
		return body.s.fail("fetch", src.err)
	}
	if r, err = body.reader(); err != nil {
		return err
	}
	src = &sourceReader{r: r}
	_, content, _ = openSection(src, section)
	off, n := partialRange(section.Partial, total)
	io.CopyN(io.Discard, content, off)
	wc := w.WriteBodySection(section, n)
	// The second reading gives what the first counted; should it not,
	// the literal is padded or cut to its size all the same.
	m, err := io.Copy(wc, io.LimitReader(endAtError{content}, n))
	if err == nil && m < n {
		_, err = io.CopyN(wc, zeros{}, n-m)
	}
	if cerr := wc.Close(); err == nil {
		err = cerr
	}
	if err == nil && src.err != nil {
		err = body.s.fail("fetch", src.err)
	}
	return err
}

// endAtError reads r until its first error, which it turns into io.EOF:
// a section ends where its message breaks.
type endAtError struct{ r io.Reader }

func (e endAtError) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil {
		err = io.EOF
	}
	return n, err
}

// lazyBody opens a message body from the store the first time it is
// needed.
type lazyBody struct {
	s   *session
	ref msstore.Ref
	uid userdata.UID
	b   msstore.Body
}

var errNoBody = errors.New("imap: message body missing from the store")

func (l *lazyBody) open() (msstore.Body, error) {
	if l.b == nil {
		if l.ref.IsZero() {
			return nil, l.s.fail("fetch", errNoBody)
		}
		b, err := l.s.srv.store.Open(l.s.ctx(), l.ref)
		if errors.Is(err, msstore.ErrNotFound) && l.s.expunged(l.uid) {
			// Expunged by someone else, and its body released: only a
			// UserDB that cannot hold bodies (FolderEvent.Hold) lets this
			// happen.
			return nil, errExpungeIssued
		}
		if err != nil {
			return nil, l.s.fail("fetch", err)
		}
		l.b = b
	}
	return l.b, nil
}

// reader returns a reader of the whole message from its start.
func (l *lazyBody) reader() (io.Reader, error) {
	b, err := l.open()
	if err != nil {
		return nil, err
	}
	return io.NewSectionReader(b, 0, b.Size()), nil
}

// summary works out the ENVELOPE and BODYSTRUCTURE of a message the
// index has no summary for, as Summarize does at delivery.
func (l *lazyBody) summary() (*goimap.Envelope, goimap.BodyStructure, error) {
	envb, bsb, err := l.summaryBytes()
	if err != nil {
		return nil, nil, err
	}
	env, err := DecodeEnvelope(envb)
	if err != nil {
		return nil, nil, l.s.fail("fetch", err)
	}
	bs, err := DecodeStructure(bsb)
	if err != nil {
		return nil, nil, l.s.fail("fetch", err)
	}
	return env, bs, nil
}

// summaryBytes is Summarize of the message.
func (l *lazyBody) summaryBytes() (envelope, structure []byte, err error) {
	r, err := l.reader()
	if err != nil {
		return nil, nil, err
	}
	if envelope, structure, err = Summarize(r); err != nil {
		return nil, nil, l.s.fail("fetch", err)
	}
	return envelope, structure, nil
}

func (l *lazyBody) close() {
	if l.b != nil {
		l.b.Close()
	}
}

// errExpungeIssued answers a command on a message another session has
// expunged, when its data is gone (RFC 9051 7.1).
var errExpungeIssued = &goimap.Error{Type: goimap.StatusResponseTypeNo, Code: "EXPUNGEISSUED", Text: "Some messages were expunged meanwhile"}

// expunged reports whether the selected folder no longer has uid.
func (s *session) expunged(uid userdata.UID) bool {
	found := false
	err := s.srv.users.Messages(s.ctx(), s.user.ID, s.sel.folder.ID, userdata.UIDSet{{Start: uid, Stop: uid}}, func(*userdata.Message) error {
		found = true
		return nil
	})
	return err == nil && !found
}
