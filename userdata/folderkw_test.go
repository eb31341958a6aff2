package userdata

import (
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mailsys/mailsys/msstore"
)

// TestKeywordsGathered reads the keywords of a folder written before
// folders kept a keyword list (no tagKeywords key): they are gathered from
// its messages, and the next change writes the list.
func TestKeywordsGathered(t *testing.T) {
	ctx := t.Context()
	mem := msstore.NewMemory(1)
	d, err := Open(ctx, Config{Dir: t.TempDir(), Bodies: mem, Argon2: Argon2Params{Time: 1, Memory: 64, Threads: 1},
		CacheSize: 8 << 20, MemTableSize: 4 << 20, Logger: slog.New(slog.NewTextHandler(t.Output(), nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.CreateDomain(ctx, Domain{Name: "example.test"}); err != nil {
		t.Fatal(err)
	}
	u, err := d.CreateUser(ctx, NewUser{Address: "ann@example.test"})
	if err != nil {
		t.Fatal(err)
	}
	inbox, err := d.Folder(ctx, u.ID, Inbox)
	if err != nil {
		t.Fatal(err)
	}
	for _, kws := range [][]string{{"Junk"}, nil, {"$label2", "junk", "$Forwarded"}} {
		ref, err := mem.Put(ctx, strings.NewReader(strings.Repeat("x", 1024)), msstore.Meta{Received: time.Now()})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := d.Append(ctx, u.ID, inbox.ID, NewMessage{Ref: ref, Size: ref.Size, Keywords: kws}); err != nil {
			t.Fatal(err)
		}
	}
	// As a database from before the keyword list.
	b := d.db.NewBatch()
	b.Delete(keyKeywords(u.ID, inbox.ID), nil)
	if err := d.commit(b); err != nil {
		t.Fatal(err)
	}
	b.Close()
	want := []string{"Junk", "$label2", "$Forwarded"}
	if got, err := d.Keywords(ctx, u.ID, inbox.ID); err != nil || !slices.Equal(got, want) {
		t.Fatalf("Keywords without a list = %q, %v; want %q gathered", got, err, want)
	}
	if _, err := d.StoreFlags(ctx, u.ID, inbox.ID, nil, FlagUpdate{Op: FlagsAdd, Flags: FlagSeen}); err != nil {
		t.Fatal(err)
	}
	v, err := readKey(d.db, keyKeywords(u.ID, inbox.ID))
	if err != nil {
		t.Fatalf("after a change, the keyword list is not written: %v", err)
	}
	if got, err := decodeKeywords(v); err != nil || !slices.Equal(got, want) {
		t.Errorf("written keyword list = %q, %v; want %q", got, err, want)
	}
}
