package imap_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mailsys/mailsys/internal/selfsigned"

	goimap "github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-message/charset"
	"github.com/emersion/go-sasl"

	"github.com/mailsys/mailsys/imap"
	"github.com/mailsys/mailsys/msstore"
	"github.com/mailsys/mailsys/userdata"
)

// env is a running server over a fresh UserDB and store, with the user
// ann@example.test (password "pw").
type env struct {
	t      testing.TB
	srv    *imap.Server
	db     *userdata.DB
	store  *msstore.Volumes
	addr   string // plain, STARTTLS and insecure auth allowed
	tls    string // implicit TLS
	strict string // plain, login only after STARTTLS
	user   userdata.User
}

var testTLS = func() *tls.Config {
	cert, err := selfsigned.New("localhost", time.Hour)
	if err != nil {
		panic(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}}
}()

var clientTLS = &tls.Config{InsecureSkipVerify: true}

func newEnv(t *testing.T) *env { return newEnvTB(t) }

func newEnvTB(t testing.TB) *env {
	t.Helper()
	ctx := t.Context()
	dir := t.TempDir()
	quiet := slog.New(slog.DiscardHandler)
	cfg := msstore.DefaultConfig(dir + "/store")
	cfg.Logger = quiet
	_, bulk := t.(*testing.B) // benchmarks load in bulk
	cfg.NoSync = bulk
	store, err := msstore.OpenVolumes(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	db, err := userdata.Open(ctx, userdata.Config{Dir: dir + "/ud", Bodies: store, Logger: quiet, NoSync: bulk, Argon2: userdata.Argon2Params{Time: 1, Memory: 1024, Threads: 1}})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.CreateDomain(ctx, userdata.Domain{Name: "example.test"}); err != nil {
		t.Fatal(err)
	}
	u, err := db.CreateUser(ctx, userdata.NewUser{Address: "ann@example.test", Password: "pw"})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, db: db, store: store, user: u}
	logger := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	if bulk {
		logger = quiet
	}
	e.srv, err = imap.NewServer(imap.Config{TLS: testTLS, InsecureAuth: true, Logger: logger}, db, store)
	if err != nil {
		t.Fatal(err)
	}
	strict, err := imap.NewServer(imap.Config{TLS: testTLS, Logger: logger}, db, store)
	if err != nil {
		t.Fatal(err)
	}
	listen := func(serve func(net.Listener) error) string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		go serve(l)
		return l.Addr().String()
	}
	e.addr = listen(e.srv.Serve)
	e.tls = listen(e.srv.ServeTLS)
	e.strict = listen(strict.Serve)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		e.srv.Shutdown(ctx)
		strict.Shutdown(ctx)
		db.Close()
		store.Close()
	})
	return e
}

// client logs ann in over the plain listener.
func (e *env) client() *imapclient.Client {
	e.t.Helper()
	c, err := imapclient.DialInsecure(e.addr, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { c.Close() })
	if err := c.Login("ann@example.test", "pw").Wait(); err != nil {
		e.t.Fatalf("LOGIN: %v", err)
	}
	return c
}

func message(subject, body string) string {
	return "From: Bob <bob@example.net>\r\nTo: ann@example.test\r\nSubject: " + subject +
		"\r\nDate: Mon, 02 Jan 2006 15:04:05 +0000\r\nMessage-ID: <" + strings.ReplaceAll(subject, " ", ".") + "@example.net>\r\n\r\n" + body
}

func appendMsg(t *testing.T, c *imapclient.Client, mailbox, msg string, flags ...goimap.Flag) *goimap.AppendData {
	t.Helper()
	cmd := c.Append(mailbox, int64(len(msg)), &goimap.AppendOptions{Flags: flags})
	io.WriteString(cmd, msg)
	cmd.Close()
	d, err := cmd.Wait()
	if err != nil {
		t.Fatalf("APPEND to %s: %v", mailbox, err)
	}
	return d
}

func imapCode(err error) goimap.ResponseCode {
	var ie *goimap.Error
	if !errors.As(err, &ie) {
		return ""
	}
	return ie.Code
}

func TestLoginNeedsTLS(t *testing.T) {
	e := newEnv(t)
	c, err := imapclient.DialInsecure(e.strict, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if !c.Caps().Has(goimap.CapLoginDisabled) {
		t.Errorf("no LOGINDISABLED before TLS: %v", c.Caps())
	}
	if err := c.Login("ann@example.test", "pw").Wait(); err == nil {
		t.Fatal("LOGIN accepted before TLS")
	}
	c2, err := imapclient.DialStartTLS(e.strict, &imapclient.Options{TLSConfig: clientTLS})
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if err := c2.Login("ann@example.test", "wrong").Wait(); err == nil {
		t.Fatal("wrong password accepted")
	}
	if err := c2.Login("ann@example.test", "pw").Wait(); err != nil {
		t.Fatalf("LOGIN after STARTTLS: %v", err)
	}
	c3, err := imapclient.DialTLS(e.tls, &imapclient.Options{TLSConfig: clientTLS})
	if err != nil {
		t.Fatal(err)
	}
	defer c3.Close()
	if err := c3.Authenticate(saslPlain("ann@example.test", "pw")); err != nil {
		t.Fatalf("AUTHENTICATE PLAIN over implicit TLS: %v", err)
	}
}

func TestFolders(t *testing.T) {
	e := newEnv(t)
	c := e.client()
	for _, name := range []string{"Work/Projects/Alpha", "Work/Later", "Lists"} {
		if err := c.Create(name, nil).Wait(); err != nil {
			t.Fatalf("CREATE %s: %v", name, err)
		}
	}
	if err := c.Create("Lists", nil).Wait(); imapCode(err) != goimap.ResponseCodeAlreadyExists {
		t.Errorf("CREATE of an existing folder: %v, want [ALREADYEXISTS]", err)
	}
	list := func(ref, pattern string, opts *goimap.ListOptions) []string {
		t.Helper()
		got, err := c.List(ref, pattern, opts).Collect()
		if err != nil {
			t.Fatalf("LIST %q %q: %v", ref, pattern, err)
		}
		var names []string
		for _, d := range got {
			names = append(names, d.Mailbox)
		}
		return names
	}
	if got, want := list("", "*", nil), []string{"Archive", "Drafts", "INBOX", "Junk", "Lists", "Sent", "Trash", "Work", "Work/Later", "Work/Projects", "Work/Projects/Alpha"}; !slices.Equal(got, want) {
		t.Errorf("LIST * = %q, want %q", got, want)
	}
	if got, want := list("", "Work/%", nil), []string{"Work/Later", "Work/Projects"}; !slices.Equal(got, want) {
		t.Errorf("LIST Work/%% = %q, want %q", got, want)
	}
	if got, want := list("Work", "*", nil), []string{"Work/Later", "Work/Projects", "Work/Projects/Alpha"}; !slices.Equal(got, want) {
		t.Errorf("LIST Work * = %q, want %q", got, want)
	}
	if got, want := list("", "inbox", nil), []string{"INBOX"}; !slices.Equal(got, want) {
		t.Errorf("LIST inbox = %q, want %q", got, want)
	}
	if got, want := list("", "*", &goimap.ListOptions{SelectSpecialUse: true}), []string{"Archive", "Drafts", "Junk", "Sent", "Trash"}; !slices.Equal(got, want) {
		t.Errorf("LIST (SPECIAL-USE) * = %q, want %q", got, want)
	}
	// Attributes and LIST-STATUS.
	if err := c.Subscribe("Lists").Wait(); err != nil {
		t.Fatal(err)
	}
	got, err := c.List("", "%", &goimap.ListOptions{ReturnStatus: &goimap.StatusOptions{NumMessages: true, UIDNext: true}, ReturnSubscribed: true}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range got {
		has := func(a goimap.MailboxAttr) bool { return slices.Contains(d.Attrs, a) }
		switch d.Mailbox {
		case "Work":
			if !has(goimap.MailboxAttrHasChildren) {
				t.Errorf("Work: attributes %v, want \\HasChildren", d.Attrs)
			}
		case "Lists":
			if !has(goimap.MailboxAttrHasNoChildren) || !has(goimap.MailboxAttrSubscribed) {
				t.Errorf("Lists: attributes %v, want \\HasNoChildren \\Subscribed", d.Attrs)
			}
		case "Sent":
			if !has(goimap.MailboxAttrSent) {
				t.Errorf("Sent: attributes %v, want \\Sent", d.Attrs)
			}
		}
		if d.Status == nil || d.Status.NumMessages == nil || *d.Status.NumMessages != 0 || d.Status.UIDNext != 1 {
			t.Errorf("%s: LIST-STATUS %+v", d.Mailbox, d.Status)
		}
	}
	subs, err := c.List("", "*", &goimap.ListOptions{SelectSubscribed: true}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(subs, func(d *goimap.ListData) bool { return d.Mailbox == "Lists" }) {
		t.Errorf("LIST (SUBSCRIBED) misses Lists: %+v", subs)
	}
	if err := c.Rename("Work", "Job", nil).Wait(); err != nil {
		t.Fatalf("RENAME: %v", err)
	}
	if got, want := list("", "Job*", nil), []string{"Job", "Job/Later", "Job/Projects", "Job/Projects/Alpha"}; !slices.Equal(got, want) {
		t.Errorf("after RENAME: %q, want %q", got, want)
	}
	if err := c.Delete("Job").Wait(); imapCode(err) != goimap.ResponseCodeInUse {
		t.Errorf("DELETE of a folder with children: %v, want NO [INUSE]", err)
	}
	if err := c.Delete("INBOX").Wait(); err == nil {
		t.Error("DELETE INBOX succeeded")
	}
	if err := c.Delete("Job/Later").Wait(); err != nil {
		t.Errorf("DELETE: %v", err)
	}
	if _, err := c.Select("Nope", nil).Wait(); imapCode(err) != goimap.ResponseCodeNonExistent {
		t.Errorf("SELECT of a missing folder: %v, want NO [NONEXISTENT]", err)
	}
	ns, err := c.Namespace().Wait()
	if err != nil || len(ns.Personal) != 1 || ns.Personal[0].Delim != '/' {
		t.Errorf("NAMESPACE: %+v, %v", ns, err)
	}
}

func TestMessages(t *testing.T) {
	e := newEnv(t)
	c := e.client()
	var msgs []string
	for i := range 5 {
		m := message(fmt.Sprintf("note %d", i), fmt.Sprintf("body number %d\r\n", i))
		msgs = append(msgs, m)
		d := appendMsg(t, c, "INBOX", m)
		if d.UID != goimap.UID(i+1) || d.UIDValidity == 0 {
			t.Fatalf("APPENDUID %+v", d)
		}
	}
	bad := c.Append("Nope", 3, nil)
	io.WriteString(bad, "x\r\n")
	bad.Close()
	if _, err := bad.Wait(); imapCode(err) != goimap.ResponseCodeTryCreate {
		t.Errorf("APPEND to a missing folder: %v, want [TRYCREATE]", err)
	}
	sel, err := c.Select("INBOX", nil).Wait()
	if err != nil {
		t.Fatal(err)
	}
	if sel.NumMessages != 5 || sel.UIDNext != 6 {
		t.Fatalf("SELECT: %+v", sel)
	}
	// FETCH from the index, and bodies from the store.
	got, err := c.Fetch(goimap.SeqSetNum(1, 2, 3, 4, 5), &goimap.FetchOptions{
		UID: true, Flags: true, RFC822Size: true, InternalDate: true, Envelope: true, BodyStructure: &goimap.FetchItemBodyStructure{},
		BodySection: []*goimap.FetchItemBodySection{{Peek: true}},
	}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	for i, m := range got {
		if m.Envelope == nil || m.Envelope.Subject != fmt.Sprintf("note %d", i) || len(m.Envelope.From) != 1 || m.Envelope.From[0].Name != "Bob" {
			t.Errorf("message %d: envelope %+v", i+1, m.Envelope)
		}
		if m.RFC822Size != int64(len(msgs[i])) {
			t.Errorf("message %d: RFC822.SIZE %d, want %d", i+1, m.RFC822Size, len(msgs[i]))
		}
		if b := m.FindBodySection(&goimap.FetchItemBodySection{Peek: true}); string(b) != msgs[i] {
			t.Errorf("message %d: BODY[] %q, want %q", i+1, b, msgs[i])
		}
		if sp, ok := m.BodyStructure.(*goimap.BodyStructureSinglePart); !ok || sp.Type != "text" {
			t.Errorf("message %d: BODYSTRUCTURE %#v", i+1, m.BodyStructure)
		}
		// Recent in this session, the first to select the folder
		// (IMAP4rev1); PEEK sets no \Seen.
		if len(m.Flags) != 1 || m.Flags[0] != `\Recent` {
			t.Errorf("message %d: flags %v after PEEK, want [\\Recent]", i+1, m.Flags)
		}
	}
	// BODY[TEXT] without PEEK sets \Seen; a partial BODY[] streams a range.
	one, err := c.Fetch(goimap.SeqSetNum(2), &goimap.FetchOptions{BodySection: []*goimap.FetchItemBodySection{
		{Specifier: goimap.PartSpecifierText}, {Partial: &goimap.SectionPartial{Offset: 6, Size: 3}, Peek: true}}}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	if len(one) != 1 || !slices.Contains(one[0].Flags, goimap.FlagSeen) {
		t.Errorf("FETCH BODY[TEXT] did not report \\Seen: %+v", one)
	}
	if b := one[0].FindBodySection(&goimap.FetchItemBodySection{Specifier: goimap.PartSpecifierText}); string(b) != "body number 1\r\n" {
		t.Errorf("BODY[TEXT] = %q", b)
	}
	if b := one[0].FindBodySection(&goimap.FetchItemBodySection{Partial: &goimap.SectionPartial{Offset: 6, Size: 3}, Peek: true}); string(b) != msgs[1][6:9] {
		t.Errorf("BODY.PEEK[]<6.3> = %q, want %q", b, msgs[1][6:9])
	}
	// STORE, SEARCH.
	if _, err := c.Store(goimap.SeqSetNum(1, 3), &goimap.StoreFlags{Op: goimap.StoreFlagsAdd, Flags: []goimap.Flag{goimap.FlagFlagged, "$Work"}}, nil).Collect(); err != nil {
		t.Fatal(err)
	}
	search := func(crit *goimap.SearchCriteria) []uint32 {
		t.Helper()
		d, err := c.Search(crit, nil).Wait()
		if err != nil {
			t.Fatalf("SEARCH %+v: %v", crit, err)
		}
		return d.AllSeqNums()
	}
	if got := search(&goimap.SearchCriteria{Flag: []goimap.Flag{goimap.FlagFlagged}}); !slices.Equal(got, []uint32{1, 3}) {
		t.Errorf("SEARCH FLAGGED = %v", got)
	}
	if got := search(&goimap.SearchCriteria{Flag: []goimap.Flag{"$work"}, NotFlag: []goimap.Flag{goimap.FlagSeen}}); !slices.Equal(got, []uint32{1, 3}) {
		t.Errorf("SEARCH KEYWORD $work UNSEEN = %v", got)
	}
	if got := search(&goimap.SearchCriteria{Body: []string{"NUMBER 4"}}); !slices.Equal(got, []uint32{5}) {
		t.Errorf("SEARCH BODY = %v", got)
	}
	if got := search(&goimap.SearchCriteria{Header: []goimap.SearchCriteriaHeaderField{{Key: "subject", Value: "NOTE 2"}}}); !slices.Equal(got, []uint32{3}) {
		t.Errorf("SEARCH HEADER = %v", got)
	}
	// COPY, MOVE, EXPUNGE.
	cd, err := c.Copy(goimap.SeqSetNum(1, 2), "Archive").Wait()
	if err != nil || cd.DestUIDs.String() != "1:2" {
		t.Fatalf("COPY: %+v, %v", cd, err)
	}
	if _, err := c.Copy(goimap.SeqSetNum(1), "Nope").Wait(); imapCode(err) != goimap.ResponseCodeTryCreate {
		t.Errorf("COPY to a missing folder: %v, want [TRYCREATE]", err)
	}
	md, err := c.Move(goimap.SeqSetNum(5), "Archive").Wait()
	if err != nil || md.DestUIDs.String() != "3" {
		t.Fatalf("MOVE: %+v, %v", md, err)
	}
	if _, err := c.Store(goimap.SeqSetNum(1), &goimap.StoreFlags{Op: goimap.StoreFlagsAdd, Silent: true, Flags: []goimap.Flag{goimap.FlagDeleted}}, nil).Collect(); err != nil {
		t.Fatal(err)
	}
	exp, err := c.Expunge().Collect()
	if err != nil || !slices.Equal(exp, []uint32{1}) {
		t.Fatalf("EXPUNGE: %v, %v", exp, err)
	}
	if n := c.Mailbox().NumMessages; n != 3 {
		t.Errorf("after MOVE and EXPUNGE the client counts %d messages, want 3", n)
	}
	st, err := c.Status("Archive", &goimap.StatusOptions{NumMessages: true, UIDNext: true, NumUnseen: true, Size: true}).Wait()
	if err != nil || *st.NumMessages != 3 || st.UIDNext != 4 || *st.NumUnseen != 2 || *st.Size == 0 {
		t.Errorf("STATUS Archive: %+v, %v", st, err)
	}
	// UID FETCH with "*" and a UID range past the end.
	uf, err := c.Fetch(goimap.UIDSet{{Start: 3, Stop: 0}}, &goimap.FetchOptions{Flags: true}).Collect()
	if err != nil || len(uf) != 2 || uf[0].UID != 3 || uf[1].UID != 4 {
		t.Errorf("UID FETCH 3:* = %+v, %v", uf, err)
	}
}

func saslPlain(user, pw string) sasl.Client { return sasl.NewPlainClient("", user, pw) }

// TestOddMessages appends messages that go-imap's own writer would trip on
// (a multipart whose boundary never comes) and others, and fetches their
// BODYSTRUCTURE, BODY and ENVELOPE.
func TestOddMessages(t *testing.T) {
	e := newEnv(t)
	// The ENVELOPE carries the header's encoded words as sent: the
	// client decodes them, GB2312 included.
	c, err := imapclient.DialInsecure(e.addr, &imapclient.Options{WordDecoder: &mime.WordDecoder{CharsetReader: charset.Reader}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Login("ann@example.test", "pw").Wait(); err != nil {
		t.Fatal(err)
	}
	odd := []string{
		"Subject: no parts\r\nContent-Type: multipart/mixed; boundary=zz\r\n\r\nno boundary here\r\n",
		"Content-Type: multipart/mixed; boundary=a\r\n\r\n--a\r\nContent-Type: multipart/alternative; boundary=b\r\n\r\nnothing\r\n--a--\r\n",
		"no header at all",
		"Subject: =?GB2312?B?1tC5+tLGtq8=?=\r\nFrom: =?UTF-8?B?5byg5LiJ?= <zhang@example.cn>\r\n\r\n\xd6\xd0\xce\xc4\r\n",
	}
	for _, m := range odd {
		appendMsg(t, c, "INBOX", m)
	}
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	for _, ext := range []bool{true, false} {
		got, err := c.Fetch(goimap.SeqSet{{Start: 1, Stop: 0}}, &goimap.FetchOptions{Envelope: true, BodyStructure: &goimap.FetchItemBodyStructure{Extended: ext}}).Collect()
		if err != nil || len(got) != len(odd) {
			t.Fatalf("FETCH BODYSTRUCTURE (extended %v): %d messages, %v", ext, len(got), err)
		}
		if s := got[3].Envelope.Subject; s != "中国移动" {
			t.Errorf("GB2312 subject decoded as %q", s)
		}
	}
	if err := c.Noop().Wait(); err != nil {
		t.Fatalf("connection lost: %v", err)
	}
}

// TestSearchRes saves a SEARCH result (RFC 5182) and uses "$" in FETCH and
// SEARCH (on the wire: go-imap's client cannot send SAVE).
func TestSearchRes(t *testing.T) {
	e := newEnv(t)
	c := e.client()
	for i := range 6 {
		var flags []goimap.Flag
		if i%2 == 0 {
			flags = []goimap.Flag{goimap.FlagFlagged}
		}
		appendMsg(t, c, "INBOX", message(fmt.Sprintf("m%d", i), "x\r\n"), flags...)
	}
	conn, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(conn, "l LOGIN ann@example.test pw\r\ns SELECT INBOX\r\na SEARCH RETURN (SAVE) FLAGGED\r\n"+
		"b FETCH $ (UID)\r\nc UID SEARCH $ SUBJECT m4\r\nd LOGOUT\r\n")
	out, _ := io.ReadAll(conn)
	for _, want := range []string{"* 1 FETCH (UID 1)", "* 3 FETCH (UID 3)", "* 5 FETCH (UID 5)", "* SEARCH 5\r\n", "c OK"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("no %q in:\n%s", want, out)
		}
	}
	if strings.Contains(string(out), "* 2 FETCH") {
		t.Errorf("FETCH $ returned an unsaved message:\n%s", out)
	}
}
