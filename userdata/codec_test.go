package userdata

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/mailsys/mailsys/msstore"
)

// The records of the tests and the seeds of the fuzzers.
var (
	testCreated = time.Date(2026, 11, 28, 12, 0, 0, 123456789, time.UTC)

	testUsers = []userRecord{
		{},
		{User: User{ID: 1, Address: "alice@example.com"}},
		{
			User: User{ID: 1<<64 - 1, Address: "用户@例子.中国", Name: "Ünïcode Üser", Unit: 42, Class: "gold",
				Quota: -1, Disabled: true, Node: "ud7", Created: testCreated},
			Hash: testHash,
		},
		{User: User{ID: 7, Address: "bob@example.org", Quota: 1<<63 - 1, Created: time.Unix(0, -1).UTC()}},
	}
	testDomains = []Domain{
		{},
		{Name: "example.com"},
		{Name: "bücher.de", Class: "silver", Quota: 10 << 30, Disabled: true},
		{Name: "x", Quota: -1 << 63},
	}
	testUnits = []OrgUnit{
		{},
		{ID: 1, Domain: "example.com", Name: "Acme"},
		{ID: 1<<64 - 1, Domain: "example.com", Parent: 3, Name: "Ventes & Marketing", Class: "bronze", Disabled: true},
	}
	testClasses = []ServiceClass{
		{},
		{Name: "gold", Quota: 50 << 30, MaxMessageSize: 100 << 20, Protocols: AllProtocols},
		{Name: "receive-only", Quota: -5, MaxMessageSize: 1<<63 - 1, Protocols: ProtoSMTP},
	}
	testMailboxes = []mailboxRecord{
		{},
		{NextFolder: 6, LastValidity: 1764331200, Usage: Usage{Messages: 12, Bytes: 345678}},
		{NextFolder: 1<<32 - 1, LastValidity: 1<<32 - 1, Usage: Usage{Messages: -1, Bytes: -1 << 63}},
	}
	testFolders = []Folder{
		{},
		{ID: 1, Name: Inbox, UIDValidity: 1764331200, UIDNext: 1},
		{ID: 1<<32 - 1, Name: "Archive/2026/收件箱", SpecialUse: SpecialArchive, UIDValidity: 1<<32 - 1,
			UIDNext: 1<<32 - 1, HighestModSeq: 1<<64 - 1, Messages: 1<<32 - 1, Unseen: 17, Size: -1 << 63},
	}
	testMessages = []Message{
		{UID: 1},
		{
			UID: 42, ModSeq: 1234567,
			Ref:          msstore.Ref{Node: 3, Volume: 17, Offset: 1 << 40, Size: 98765, ID: 1<<64 - 1, Sum: 0xdeadbeef},
			InternalDate: testCreated, Size: 98765, Flags: FlagSeen | FlagFlagged | FlagDraft,
			Keywords:  []string{"$Forwarded", "$Junk", "ünïcode", ""},
			Envelope:  []byte(`("Fri, 28 Nov 2026 12:00:00 +0000" "Hi" (("Alice" NIL "alice" "example.com")) NIL NIL NIL NIL NIL NIL "<seed@example.com>")`),
			Structure: []byte(`("TEXT" "PLAIN" ("CHARSET" "UTF-8") NIL NIL "7BIT" 98765 1234)`),
		},
		{
			UID: 1<<32 - 1, ModSeq: 1<<64 - 1,
			Ref:          msstore.Ref{Node: 1<<32 - 1, Volume: 1<<32 - 1, Offset: 1<<63 - 1, Size: 1<<63 - 1, ID: 1, Sum: 1<<32 - 1},
			InternalDate: time.Unix(0, 1<<63-1).UTC(), Size: -1, Flags: 0xff,
			Envelope: []byte{0, 1, 2, 0xff}, Structure: []byte{0},
		},
	}
)

// testHash is the hash of "correct horse battery staple" with
// Argon2Params{Time: 1, Memory: 64, Threads: 1}.
const testHash = "$argon2id$v=19$m=64,t=1,p=1$dPTJapaiBw9bBAj6dB5kCQ$VZD5h5TChgWeDIXI4yUtrYpUaQb7q+da0cudPDLJiAc"

// Record kinds, as FuzzDecodeRecords numbers them (kind%8).
const (
	kindUser = iota
	kindDomain
	kindUnit
	kindClass
	kindMailbox
	kindFolder
	kindMessage
	kindMessageReuse // decodeMessage into a Message that holds an older one
	numKinds
)

func mustEncodeMessage(tb testing.TB, m *Message) []byte {
	tb.Helper()
	b, err := encodeMessage(nil, m)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// seedEncodings returns valid encodings of every kind of record.
func seedEncodings(tb testing.TB) map[int][][]byte {
	seeds := map[int][][]byte{}
	for i := range testUsers {
		seeds[kindUser] = append(seeds[kindUser], encodeUser(&testUsers[i]))
	}
	for i := range testDomains {
		seeds[kindDomain] = append(seeds[kindDomain], encodeDomain(&testDomains[i]))
	}
	for i := range testUnits {
		seeds[kindUnit] = append(seeds[kindUnit], encodeUnit(&testUnits[i]))
	}
	for i := range testClasses {
		seeds[kindClass] = append(seeds[kindClass], encodeClass(&testClasses[i]))
	}
	for i := range testMailboxes {
		seeds[kindMailbox] = append(seeds[kindMailbox], encodeMailbox(&testMailboxes[i]))
	}
	for i := range testFolders {
		seeds[kindFolder] = append(seeds[kindFolder], encodeFolder(&testFolders[i]))
	}
	for i := range testMessages {
		b := mustEncodeMessage(tb, &testMessages[i])
		seeds[kindMessage] = append(seeds[kindMessage], b)
		seeds[kindMessageReuse] = append(seeds[kindMessageReuse], b)
	}
	return seeds
}

// userEqual compares user records, times by the instant.
func userEqual(a, b userRecord) bool {
	ta, tb := a.Created, b.Created
	a.Created, b.Created = time.Time{}, time.Time{}
	return a == b && ta.Equal(tb)
}

// messageEqual compares messages field by field; nil and empty slices are
// equal.
func messageEqual(a, b *Message) bool {
	return a.UID == b.UID && a.ModSeq == b.ModSeq && a.Ref == b.Ref && a.InternalDate.Equal(b.InternalDate) &&
		a.Size == b.Size && a.Flags == b.Flags && slices.Equal(a.Keywords, b.Keywords) &&
		bytes.Equal(a.Envelope, b.Envelope) && bytes.Equal(a.Structure, b.Structure)
}

// roundTrip checks that v encodes, decodes to a value equal to v, and that
// every proper prefix of its encoding fails to decode, as does the
// encoding with a byte appended.
func roundTrip[T any](t *testing.T, v T, encode func(*T) []byte, decode func([]byte) (T, error), equal func(a, b T) bool) {
	t.Helper()
	b := encode(&v)
	got, err := decode(b)
	if err != nil {
		t.Fatalf("decoding %+v: %v", v, err)
	}
	if !equal(got, v) {
		t.Fatalf("round trip changed %+v into %+v", v, got)
	}
	for n := range len(b) {
		if _, err := decode(b[:n]); err == nil {
			t.Fatalf("%+v cut to %d of %d bytes decodes", v, n, len(b))
		}
	}
	if _, err := decode(append(b[:len(b):len(b)], 0)); err == nil {
		t.Fatalf("%+v with a trailing byte decodes", v)
	}
}

func eq[T comparable](a, b T) bool { return a == b }

func TestRecordRoundTrips(t *testing.T) {
	t.Run("user", func(t *testing.T) {
		for _, v := range testUsers {
			roundTrip(t, v, encodeUser, decodeUser, userEqual)
		}
	})
	t.Run("domain", func(t *testing.T) {
		for _, v := range testDomains {
			roundTrip(t, v, encodeDomain, decodeDomain, eq)
		}
	})
	t.Run("unit", func(t *testing.T) {
		for _, v := range testUnits {
			roundTrip(t, v, encodeUnit, decodeUnit, eq)
		}
	})
	t.Run("class", func(t *testing.T) {
		for _, v := range testClasses {
			roundTrip(t, v, encodeClass, decodeClass, eq)
		}
	})
	t.Run("mailbox", func(t *testing.T) {
		for _, v := range testMailboxes {
			roundTrip(t, v, encodeMailbox, decodeMailbox, eq)
		}
	})
	t.Run("folder", func(t *testing.T) {
		for _, v := range testFolders {
			roundTrip(t, v, encodeFolder, decodeFolder, eq)
		}
	})
	t.Run("message", func(t *testing.T) {
		for _, v := range testMessages {
			decode := func(b []byte) (Message, error) {
				var m Message
				err := decodeMessage(b, v.UID, &m)
				return m, err
			}
			encode := func(m *Message) []byte { return mustEncodeMessage(t, m) }
			roundTrip(t, v, encode, decode, func(a, b Message) bool { return messageEqual(&a, &b) })
		}
	})
}

func TestEncodeMessageAppends(t *testing.T) {
	m := &testMessages[1]
	prefix := []byte("key")
	b, err := encodeMessage(enc(prefix), m)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(b, prefix) || !bytes.Equal(b[len(prefix):], mustEncodeMessage(t, m)) {
		t.Fatalf("encodeMessage does not append to its buffer: %q", b)
	}
}

func TestDecodeMessageReuse(t *testing.T) {
	// A long message decoded first, then a short one into the same
	// Message: nothing of the first may remain.
	var m Message
	if err := decodeMessage(mustEncodeMessage(t, &testMessages[1]), 42, &m); err != nil {
		t.Fatal(err)
	}
	if err := decodeMessage(mustEncodeMessage(t, &testMessages[0]), 1, &m); err != nil {
		t.Fatal(err)
	}
	if !messageEqual(&m, &testMessages[0]) {
		t.Fatalf("reused Message decodes as %+v, want %+v", m, testMessages[0])
	}
}

func TestDecodeBadRecords(t *testing.T) {
	// A Ref with a negative offset: the Ref's own check.
	ref, _ := msstore.Ref{Offset: 1}.MarshalBinary()
	ref[1+4+4] |= 0x80
	var m Message
	if err := decodeMessage(enc{recordVersion}.u(0).b(ref).t(time.Time{}).i(0).u(0).u(0).b(nil).b(nil), 1, &m); err == nil || !strings.Contains(err.Error(), "negative") {
		t.Fatalf("negative offset decodes as %v (%v)", m.Ref, err)
	}
	for _, b := range [][]byte{nil, {}, {0}, {2}, {recordVersion + 1, 0, 0, 0, 0}} {
		if _, err := decodeDomain(b); err == nil {
			t.Errorf("decodeDomain(%x) succeeds", b)
		}
	}
	// A keyword count far beyond the record.
	ref, _ = msstore.Ref{Offset: 1}.MarshalBinary()
	head := slices.Clip(enc{recordVersion}.u(0).b(ref).t(time.Time{}).i(0).u(0))
	if err := decodeMessage(head.u(0).b(nil).b(nil), 1, &m); err != nil {
		t.Fatalf("message without keywords: %v", err)
	}
	if err := decodeMessage(head.u(1<<62).b(nil).b(nil), 1, &m); err == nil {
		t.Fatal("message with 2^62 keywords decodes")
	}
	if _, err := decodeUser(enc{recordVersion}.u(1).u(1 << 62)); err == nil {
		t.Fatal("user with a 2^62-byte address decodes")
	}
}

// FuzzDecodeRecords feeds every record decoder arbitrary bytes: they must
// never panic, and what they accept must re-encode and decode to the same
// value.
func FuzzDecodeRecords(f *testing.F) {
	seeds := seedEncodings(f)
	for kind := range numKinds {
		encs := seeds[kind]
		for _, b := range encs {
			f.Add(b, byte(kind))
		}
		// Cuts of the longest encoding: version byte only, half, all
		// but the last byte.
		b := slices.MaxFunc(encs, func(a, b []byte) int { return len(a) - len(b) })
		for _, n := range []int{1, len(b) / 2, len(b) - 1} {
			f.Add(b[:n], byte(kind))
		}
	}
	f.Add([]byte{}, byte(kindUser))
	f.Add([]byte{recordVersion + 1}, byte(kindFolder))
	f.Add([]byte{recordVersion, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01}, byte(kindMailbox))
	f.Fuzz(func(t *testing.T, b []byte, kind byte) {
		switch int(kind) % numKinds {
		case kindUser:
			checkRoundTrip(t, b, encodeUser, decodeUser, userEqual)
		case kindDomain:
			checkRoundTrip(t, b, encodeDomain, decodeDomain, eq)
		case kindUnit:
			checkRoundTrip(t, b, encodeUnit, decodeUnit, eq)
		case kindClass:
			checkRoundTrip(t, b, encodeClass, decodeClass, eq)
		case kindMailbox:
			checkRoundTrip(t, b, encodeMailbox, decodeMailbox, eq)
		case kindFolder:
			checkRoundTrip(t, b, encodeFolder, decodeFolder, eq)
		case kindMessage, kindMessageReuse:
			var m Message
			if int(kind)%numKinds == kindMessageReuse {
				m = testMessages[1]
				m.Keywords = slices.Clone(m.Keywords)
			}
			if err := decodeMessage(b, 7, &m); err != nil {
				return
			}
			if int(kind)%numKinds == kindMessageReuse {
				var fresh Message
				if err := decodeMessage(b, 7, &fresh); err != nil || !messageEqual(&m, &fresh) {
					t.Fatalf("decoding into a used Message gives %+v, into a new one %+v (%v)", m, fresh, err)
				}
			}
			again, err := encodeMessage(nil, &m)
			if err != nil {
				t.Fatalf("decoded message %+v does not encode: %v", m, err)
			}
			var m2 Message
			if err := decodeMessage(again, 7, &m2); err != nil || !messageEqual(&m, &m2) {
				t.Fatalf("round trip changed %+v into %+v (%v)", m, m2, err)
			}
		}
	})
}

// checkRoundTrip decodes b and, if that succeeds, checks the value
// survives encoding and decoding again.
func checkRoundTrip[T any](t *testing.T, b []byte, encode func(*T) []byte, decode func([]byte) (T, error), equal func(a, b T) bool) {
	t.Helper()
	v, err := decode(b)
	if err != nil {
		return
	}
	again := encode(&v)
	v2, err := decode(again)
	if err != nil || !equal(v, v2) {
		t.Fatalf("round trip changed %+v into %+v (%v)", v, v2, err)
	}
	if !bytes.Equal(encode(&v2), again) {
		t.Fatalf("%+v does not encode the same way twice", v2)
	}
}

func TestNormalize(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"Alice@Example.COM", "alice@example.com"},
		{"user@example.com.", "user@example.com"},
		{"ÜSER@BÜCHER.de", "üser@bücher.de"},
		{"a@b@c", ""},
		{"@example.com", ""},
		{"a b@example.com", ""},
		{"user@-example.com", ""},
		{"user@example..com", ""},
		{strings.Repeat("a", 65) + "@example.com", ""},
		// 64 bytes in upper case, 96 in lower case.
		{strings.Repeat("Ⱥ", 32) + "@example.com", ""},
		{"\xff@example.com", ""},
	} {
		got, err := normalizeAddress(c.in)
		if got != c.want || (err == nil) != (c.want != "") {
			t.Errorf("normalizeAddress(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
		if err != nil && !errors.Is(err, ErrInvalid) {
			t.Errorf("normalizeAddress(%q): %v does not wrap ErrInvalid", c.in, err)
		}
	}
	for _, c := range []struct{ in, want string }{
		{"inbox", Inbox},
		{"Inbox/Sub", "INBOX/Sub"},
		{"Archive/inbox", "Archive/inbox"},
		{"a//b", ""},
		{"a/", ""},
		{"a*", ""},
		{"a\tb", ""},
		{strings.Repeat("x", maxFolderPart+1), ""},
	} {
		got, err := normalizeFolder(c.in)
		if got != c.want || (err == nil) != (c.want != "") {
			t.Errorf("normalizeFolder(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
}

// FuzzNames checks the name normalizers: they must never panic, what they
// accept is valid UTF-8 within the limits, and normalizing it again gives
// it back.
func FuzzNames(f *testing.F) {
	for _, s := range []string{
		"Alice@Example.COM", "user@example.com.", "ÜSER@bücher.de", "用户@例子.中国", "a@b@c", "@x", "a@",
		"user@-example.com", "user@example..com", "K@x", "İ@İ.de", "\xff@example.com",
		"inbox", "Inbox/Sub/Sub", "INBOX/", "a//b", "收件箱/Archive", "a*b", "a%", "a\x7fb",
		"", " ", "Ventes & Marketing", "a\u0085b", strings.Repeat("x", 201),
		// Lower case is longer: 64 bytes become 96, and 64 stay 64.
		strings.Repeat("Ⱥ", 32) + "@example.com", strings.Repeat("Ⱥ", 21) + "a@example.com",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if a, err := normalizeAddress(s); err == nil {
			local, domain, ok := strings.Cut(a, "@")
			if !ok || !utf8.ValidString(a) || local == "" || len(local) > maxLocalPart ||
				len(domain) > maxDomainName || strings.Contains(domain, "@") {
				t.Fatalf("normalizeAddress(%q) accepts %q", s, a)
			}
			if again, err := normalizeAddress(a); again != a || err != nil {
				t.Fatalf("normalizeAddress(%q) = %q, but normalizeAddress(%q) = %q, %v", s, a, a, again, err)
			}
		} else if !errors.Is(err, ErrInvalid) {
			t.Fatalf("normalizeAddress(%q): %v does not wrap ErrInvalid", s, err)
		}

		if d, err := normalizeDomain(s); err == nil {
			if d == "" || !utf8.ValidString(d) || len(d) > maxDomainName || strings.HasSuffix(d, ".") {
				t.Fatalf("normalizeDomain(%q) accepts %q", s, d)
			}
			if again, err := normalizeDomain(d); again != d || err != nil {
				t.Fatalf("normalizeDomain(%q) = %q, but normalizeDomain(%q) = %q, %v", s, d, d, again, err)
			}
		} else if !errors.Is(err, ErrInvalid) {
			t.Fatalf("normalizeDomain(%q): %v does not wrap ErrInvalid", s, err)
		}

		if name, err := normalizeFolder(s); err == nil {
			if name == "" || !utf8.ValidString(name) || len(name) > maxFolderName {
				t.Fatalf("normalizeFolder(%q) accepts %q", s, name)
			}
			for _, p := range strings.Split(name, string(Delimiter)) {
				if p == "" || len(p) > maxFolderPart {
					t.Fatalf("normalizeFolder(%q) accepts %q, with level %q", s, name, p)
				}
			}
			if again, err := normalizeFolder(name); again != name || err != nil {
				t.Fatalf("normalizeFolder(%q) = %q, but normalizeFolder(%q) = %q, %v", s, name, name, again, err)
			}
		} else if !errors.Is(err, ErrInvalid) {
			t.Fatalf("normalizeFolder(%q): %v does not wrap ErrInvalid", s, err)
		}

		errFull, errEmpty := checkName("name", s, false), checkName("name", s, true)
		if errFull == nil && (s == "" || len(s) > maxNameLen || !utf8.ValidString(s)) {
			t.Fatalf("checkName accepts %q", s)
		}
		if errEmpty == nil && (len(s) > maxNameLen || !utf8.ValidString(s)) {
			t.Fatalf("checkName (empty allowed) accepts %q", s)
		}
		if (errFull == nil) != (errEmpty == nil) && s != "" {
			t.Fatalf("checkName(%q) depends on whether empty names are allowed: %v, %v", s, errFull, errEmpty)
		}
		for _, err := range []error{errFull, errEmpty} {
			if err != nil && !errors.Is(err, ErrInvalid) {
				t.Fatalf("checkName(%q): %v does not wrap ErrInvalid", s, err)
			}
		}
	})
}

func TestCheckPassword(t *testing.T) {
	for _, c := range []struct {
		password, hash string
		ok, valid      bool
	}{
		{"correct horse battery staple", testHash, true, true},
		{"correct horse battery stapl", testHash, false, true},
		{"", testHash, false, true},
		{"x", "", false, false},
		{"x", "$argon2i$v=19$m=64,t=1,p=1$c2FsdA$aGFzaA", false, false},
		{"x", "$argon2id$v=16$m=64,t=1,p=1$c2FsdA$aGFzaA", false, false},
		{"x", "$argon2id$v=19$m=64,t=0,p=1$c2FsdA$aGFzaA", false, false},
		{"x", "$argon2id$v=19$m=64,t=1,p=0$c2FsdA$aGFzaA", false, false},
		{"x", "$argon2id$v=19$m=7,t=1,p=1$c2FsdA$aGFzaA", false, false},
		{"x", "$argon2id$v=19$m=64,t=1,p=256$c2FsdA$aGFzaA", false, false},
		{"x", "$argon2id$v=19$m=4294967295,t=1,p=1$c2FsdA$aGFzaA", false, false},
		{"x", "$argon2id$v=19$m=64,t=101,p=1$c2FsdA$aGFzaA", false, false},
		{"x", "$argon2id$v=19$m=64,t=1,p=1$c2FsdA$", false, false},
		{"x", "$argon2id$v=19$m=64,t=1,p=1$!!$aGFzaA", false, false},
	} {
		ok, err := CheckPassword(c.password, c.hash)
		if ok != c.ok || (err == nil) != c.valid {
			t.Errorf("CheckPassword(%q, %q) = %v, %v; want %v, valid %v", c.password, c.hash, ok, err, c.ok, c.valid)
		}
		if err != nil && !errors.Is(err, ErrInvalid) {
			t.Errorf("CheckPassword(%q, %q): %v does not wrap ErrInvalid", c.password, c.hash, err)
		}
	}
}

// FuzzCheckPassword feeds CheckPassword arbitrary hashes: it must never
// panic, and its errors wrap ErrInvalid.
func FuzzCheckPassword(f *testing.F) {
	fresh, err := HashPassword("correct horse battery staple", Argon2Params{Time: 1, Memory: 64, Threads: 1})
	if err != nil {
		f.Fatal(err)
	}
	f.Add("correct horse battery staple", testHash)
	f.Add("correct horse battery staple", fresh)
	f.Add("wrong", testHash)
	f.Add("", "")
	f.Add("x", "$argon2id$v=19$m=64,t=1,p=1$$")
	f.Add("x", "$argon2id$v=19$m=64,t=1,p=1$c2FsdA$aGFzaA")
	f.Add("x", "$argon2id$v=19$m=8,t=1,p=1$$aGFzaA")
	f.Add("x", "$argon2id$v=19$m=1024,t=2,p=128$c2FsdA$aGFzaA")
	f.Add("x", "$argon2id$v=19$m=64,t=1,p=300$c2FsdA$aGFzaA")
	f.Add("x", "$argon2id$v=19$m=-1,t=1,p=1$c2FsdA$aGFzaA")
	f.Add("x", "$argon2id$v=19$m=64,t=1,p=1garbage$c2FsdA$aGFzaA")
	f.Add("x", "$argon2id$v=19$m=64,t=1,p=1$c2FsdA==$aGFzaA==")
	f.Add("x", "$argon2id$v=19$m=64,t=1,p=1$c2FsdA$"+strings.Repeat("A", 172))
	f.Add("x", "$argon2id$v=19$$$$")
	f.Fuzz(func(t *testing.T, password, hash string) {
		// CheckPassword accepts up to 4 GiB and 100 passes, which hashes
		// for minutes: keep the fuzzer to cheap parameters.
		if parts := strings.Split(hash, "$"); len(parts) == 6 {
			var m, tm uint32
			var p uint8
			if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &tm, &p); err == nil && (m > 1024 || tm > 2) {
				t.Skip("expensive parameters")
			}
		}
		start := time.Now()
		ok, err := CheckPassword(password, hash)
		if err != nil && (ok || !errors.Is(err, ErrInvalid)) {
			t.Fatalf("CheckPassword(%q, %q) = %v, %v", password, hash, ok, err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("CheckPassword(%q, %q) took %v", password, hash, d)
		}
	})
}

// TestFolderVersion1 reads a folder record as written before folders kept
// the \Recent watermark: nothing in it is recent.
func TestFolderVersion1(t *testing.T) {
	v1 := enc{1}.u(7).s("Work").s("").bool(true).u(1764331200).u(42).u(99).u(41).u(3).i(12345)
	f, err := decodeFolder(v1)
	want := Folder{ID: 7, Name: "Work", UIDValidity: 1764331200, UIDNext: 42, HighestModSeq: 99,
		Messages: 41, Unseen: 3, Size: 12345, RecentUID: 42}
	if err != nil || f != want {
		t.Errorf("version 1 record = %+v, %v; want %+v", f, err, want)
	}
}
