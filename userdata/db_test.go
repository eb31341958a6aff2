package userdata_test

import (
	"bytes"
	"errors"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/mailsys/mailsys/msstore"
	"github.com/mailsys/mailsys/userdata"
	"github.com/mailsys/mailsys/userdata/udtest"
)

// cheapArgon2 keeps password hashing fast in tests.
var cheapArgon2 = userdata.Argon2Params{Time: 1, Memory: 64, Threads: 1}

func testConfig(t *testing.T, dir string, bodies userdata.BodyRefs) userdata.Config {
	return userdata.Config{
		Dir:    dir,
		Node:   "ud1",
		Bodies: bodies,
		Argon2: cheapArgon2,
		Logger: slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelInfo})),
		// Small caches: tests open many databases.
		CacheSize:    8 << 20,
		MemTableSize: 4 << 20,
	}
}

func open(t *testing.T, dir string, bodies userdata.BodyRefs) *userdata.DB {
	t.Helper()
	db, err := userdata.Open(t.Context(), testConfig(t, dir, bodies))
	if err != nil {
		t.Fatalf("Open(%s): %v", dir, err)
	}
	return db
}

func TestConformance(t *testing.T) {
	udtest.Run(t, func(t *testing.T, bodies userdata.BodyRefs) userdata.UserDB {
		return open(t, t.TempDir(), bodies)
	})
}

func TestReopen(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	mem := msstore.NewMemory(1)
	db := open(t, dir, mem)
	closed := false
	t.Cleanup(func() {
		if !closed {
			db.Close()
		}
	})

	must := func(err error, what string) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	must(db.DefineClass(ctx, userdata.ServiceClass{Name: "std", Quota: 1 << 20, Protocols: userdata.ProtoIMAP}), "DefineClass")
	must(db.CreateDomain(ctx, userdata.Domain{Name: "example.test", Class: "std", Quota: 1 << 30}), "CreateDomain")
	must(db.AddDomainAlias(ctx, "alias.test", "example.test"), "AddDomainAlias")
	unit, err := db.CreateUnit(ctx, userdata.OrgUnit{Domain: "example.test", Name: "Staff"})
	must(err, "CreateUnit")
	ann, err := db.CreateUser(ctx, userdata.NewUser{Address: "ann@example.test", Password: "secret", Name: "Ann", Unit: unit.ID})
	must(err, "CreateUser")
	must(db.AddAlias(ctx, "anna@example.test", ann.ID), "AddAlias")
	work, err := db.CreateFolder(ctx, ann.ID, "Work/2025", "")
	must(err, "CreateFolder")
	must(db.Subscribe(ctx, ann.ID, "Work", false), "Subscribe")
	inbox, err := db.Folder(ctx, ann.ID, userdata.Inbox)
	must(err, "Folder(INBOX)")

	var want []userdata.Message
	for i, f := range []userdata.FolderID{inbox.ID, inbox.ID, work.ID, inbox.ID} {
		body := bytes.Repeat([]byte{byte('a' + i)}, 100*(i+1))
		ref, err := mem.Put(ctx, bytes.NewReader(body), msstore.Meta{Owners: []msstore.Owner{{User: "ann@example.test", Mailbox: "INBOX"}}})
		must(err, "Put")
		m, err := db.Append(ctx, ann.ID, f, userdata.NewMessage{
			Ref: ref, InternalDate: time.Date(2025, 1, i+1, 8, 0, 0, 0, time.UTC), Size: int64(len(body)),
			Flags: userdata.FlagSeen * userdata.Flags(i%2), Keywords: []string{"k"},
			Envelope: []byte("env"), Structure: []byte("struct"),
		})
		must(err, "Append")
		if f == inbox.ID {
			want = append(want, m)
		}
	}
	_, err = db.StoreFlags(ctx, ann.ID, inbox.ID, userdata.UIDSet{{Start: want[0].UID, Stop: want[0].UID}},
		userdata.FlagUpdate{Op: userdata.FlagsAdd, Flags: userdata.FlagFlagged})
	must(err, "StoreFlags")

	snapshot := func(db *userdata.DB) (folders []userdata.Folder, msgs []userdata.Message, usage userdata.Usage, limits userdata.Limits) {
		t.Helper()
		must(db.ListFolders(ctx, ann.ID, func(f userdata.Folder) error {
			folders = append(folders, f)
			return nil
		}), "ListFolders")
		must(db.Messages(ctx, ann.ID, inbox.ID, userdata.UIDSet{{Start: 1}}, func(m *userdata.Message) error {
			c := *m
			c.Keywords, c.Envelope, c.Structure = slices.Clone(m.Keywords), bytes.Clone(m.Envelope), bytes.Clone(m.Structure)
			msgs = append(msgs, c)
			return nil
		}), "Messages")
		usage, err := db.Usage(ctx, ann.ID)
		must(err, "Usage")
		limits, err = db.Limits(ctx, ann.ID)
		must(err, "Limits")
		return folders, msgs, usage, limits
	}
	folders, msgs, usage, limits := snapshot(db)
	must(db.Close(), "Close")
	closed = true

	db2 := open(t, dir, mem)
	defer db2.Close()
	folders2, msgs2, usage2, limits2 := snapshot(db2)
	if !slices.Equal(folders, folders2) {
		t.Errorf("folders after reopening:\n%+v\nwant\n%+v", folders2, folders)
	}
	if len(msgs) != len(want) || len(msgs2) != len(msgs) {
		t.Fatalf("INBOX has %d messages, %d after reopening; want %d", len(msgs), len(msgs2), len(want))
	}
	for i := range msgs {
		a, b := msgs[i], msgs2[i]
		if a.UID != b.UID || a.ModSeq != b.ModSeq || a.Ref != b.Ref || !a.InternalDate.Equal(b.InternalDate) || a.Size != b.Size ||
			a.Flags != b.Flags || !slices.Equal(a.Keywords, b.Keywords) || !bytes.Equal(a.Envelope, b.Envelope) || !bytes.Equal(a.Structure, b.Structure) {
			t.Errorf("message %d after reopening: %+v, want %+v", i, b, a)
		}
	}
	if usage != usage2 || usage != (userdata.Usage{Messages: 4, Bytes: 1000}) {
		t.Errorf("Usage after reopening = %+v, before %+v, want {4 1000}", usage2, usage)
	}
	if limits != limits2 {
		t.Errorf("Limits after reopening = %+v, want %+v", limits2, limits)
	}
	for _, addr := range []string{"ann@example.test", "anna@example.test", "ann@alias.test"} {
		if u, err := db2.LookupAddress(ctx, addr); err != nil || u.ID != ann.ID {
			t.Errorf("LookupAddress(%q) after reopening = %d, %v; want %d", addr, u.ID, err, ann.ID)
		}
	}
	if u, err := db2.User(ctx, ann.ID); err != nil || u.Name != "Ann" || u.Unit != unit.ID || u.Node != "ud1" || !u.Created.Equal(ann.Created) {
		t.Errorf("User after reopening = %+v, %v; want %+v", u, err, ann)
	}
	if u, err := db2.Authenticate(ctx, "ann@example.test", "secret", userdata.ProtoIMAP); err != nil || u.ID != ann.ID {
		t.Errorf("Authenticate after reopening = %d, %v", u.ID, err)
	}
	if _, err := db2.Authenticate(ctx, "ann@example.test", "secret", userdata.ProtoPOP3); !errors.Is(err, userdata.ErrProtocol) {
		t.Errorf("Authenticate POP3 after reopening: error = %v, want ErrProtocol (class kept)", err)
	}
	if _, err := db2.Authenticate(ctx, "ann@example.test", "wrong", userdata.ProtoIMAP); !errors.Is(err, userdata.ErrAuthFailed) {
		t.Errorf("Authenticate with a wrong password after reopening: error = %v", err)
	}

	// Counters continue where they stopped: no UID, user, unit or folder id
	// is given twice.
	in2, err := db2.Folder(ctx, ann.ID, userdata.Inbox)
	must(err, "Folder(INBOX)")
	m, err := db2.Append(ctx, ann.ID, inbox.ID, userdata.NewMessage{Ref: msstore.Ref{Node: 1, ID: 9999, Size: 1}, Size: 1, InternalDate: time.Now()})
	must(err, "Append after reopening")
	if m.UID != in2.UIDNext || m.UID <= want[len(want)-1].UID || m.ModSeq <= in2.HighestModSeq {
		t.Errorf("Append after reopening: UID %d ModSeq %d; folder had UIDNext %d HighestModSeq %d", m.UID, m.ModSeq, in2.UIDNext, in2.HighestModSeq)
	}
	bob, err := db2.CreateUser(ctx, userdata.NewUser{Address: "bob@example.test"})
	must(err, "CreateUser after reopening")
	if bob.ID == ann.ID {
		t.Errorf("CreateUser after reopening reused user ID %d", ann.ID)
	}
	unit2, err := db2.CreateUnit(ctx, userdata.OrgUnit{Domain: "example.test", Name: "Other"})
	must(err, "CreateUnit after reopening")
	if unit2.ID == unit.ID {
		t.Errorf("CreateUnit after reopening reused unit ID %d", unit.ID)
	}
	f, err := db2.CreateFolder(ctx, ann.ID, "New", "")
	must(err, "CreateFolder after reopening")
	for _, old := range folders {
		if old.ID == f.ID || old.UIDValidity == f.UIDValidity {
			t.Errorf("CreateFolder after reopening: %+v reuses the ID or UIDValidity of %+v", f, old)
		}
	}
}
