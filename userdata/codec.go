package userdata

import (
	"encoding/binary"
	"fmt"
	"slices"
	"time"

	"github.com/mailsys/mailsys/internal/varint"
)

// Records are encoded as a version byte followed by fields in a fixed
// order: uvarints for counts and unsigned numbers, varints for signed ones,
// uvarint-length-prefixed strings and byte strings.
const recordVersion = 1

type enc []byte

func (e enc) u(v uint64) enc    { return binary.AppendUvarint(e, v) }
func (e enc) i(v int64) enc     { return binary.AppendVarint(e, v) }
func (e enc) s(v string) enc    { return append(e.u(uint64(len(v))), v...) }
func (e enc) b(v []byte) enc    { return append(e.u(uint64(len(v))), v...) }
func (e enc) t(v time.Time) enc { return e.i(timeNS(v)) }
func (e enc) bool(v bool) enc   { return append(e, boolByte(v)) }
func (e enc) strs(v []string) enc {
	e = e.u(uint64(len(v)))
	for _, s := range v {
		e = e.s(s)
	}
	return e
}

func timeNS(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func boolByte(v bool) byte {
	if v {
		return 1
	}
	return 0
}

// dec decodes a record; the first error sticks and every later read
// returns a zero value. Its reads are internal/varint's; it keeps the
// bytes left in b and the error in err, which decoders elsewhere in the
// package read.
type dec struct {
	b   []byte
	err error
}

func newDec(b []byte, what string) *dec {
	d := &dec{b: b}
	if len(b) == 0 || b[0] != recordVersion {
		d.err = fmt.Errorf("userdata: %s record: unknown version", what)
		return d
	}
	d.b = b[1:]
	return d
}

func (d *dec) fail() {
	if d.err == nil {
		d.err = fmt.Errorf("userdata: corrupt record")
	}
	d.b = nil
}

func (d *dec) u() uint64 {
	v, n := varint.Uvarint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *dec) i() int64 {
	v, n := varint.Varint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

// raw reads a byte string; it aliases the record, its capacity clipped
// so that an append to it cannot overwrite the rest.
func (d *dec) raw() []byte {
	v, n := varint.Field(d.b)
	if n <= 0 {
		d.fail()
		return nil
	}
	d.b = d.b[n:]
	return slices.Clip(v)
}

func (d *dec) s() string { return string(d.raw()) }

func (d *dec) t() time.Time {
	ns := d.i()
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns).UTC()
}

func (d *dec) bool() bool {
	if len(d.b) == 0 {
		d.fail()
		return false
	}
	v := d.b[0] != 0
	d.b = d.b[1:]
	return v
}

// done returns the decoding error, if any, and rejects trailing bytes.
func (d *dec) done() error {
	if d.err == nil && len(d.b) != 0 {
		d.fail()
	}
	return d.err
}

// userRecord is a User with its password hash.
type userRecord struct {
	User
	Hash string // PHC-format argon2id hash, "" for no password
}

func encodeUser(r *userRecord) []byte {
	e := enc{recordVersion}.u(uint64(r.ID)).s(r.Address).s(r.Name).u(uint64(r.Unit)).s(r.Class).
		i(r.Quota).bool(r.Disabled).s(r.Node).t(r.Created).s(r.Hash)
	return e
}

func decodeUser(b []byte) (userRecord, error) {
	d := newDec(b, "user")
	var r userRecord
	r.ID, r.Address, r.Name, r.Unit = UserID(d.u()), d.s(), d.s(), UnitID(d.u())
	r.Class, r.Quota, r.Disabled, r.Node, r.Created, r.Hash = d.s(), d.i(), d.bool(), d.s(), d.t(), d.s()
	return r, d.done()
}

func encodeDomain(v *Domain) []byte {
	return enc{recordVersion}.s(v.Name).s(v.Class).i(v.Quota).bool(v.Disabled)
}

func decodeDomain(b []byte) (Domain, error) {
	d := newDec(b, "domain")
	v := Domain{Name: d.s(), Class: d.s(), Quota: d.i(), Disabled: d.bool()}
	return v, d.done()
}

func encodeUnit(v *OrgUnit) []byte {
	return enc{recordVersion}.u(uint64(v.ID)).s(v.Domain).u(uint64(v.Parent)).s(v.Name).s(v.Class).bool(v.Disabled)
}

func decodeUnit(b []byte) (OrgUnit, error) {
	d := newDec(b, "unit")
	v := OrgUnit{ID: UnitID(d.u()), Domain: d.s(), Parent: UnitID(d.u()), Name: d.s(), Class: d.s(), Disabled: d.bool()}
	return v, d.done()
}

func encodeClass(v *ServiceClass) []byte {
	return enc{recordVersion}.s(v.Name).i(v.Quota).i(v.MaxMessageSize).u(uint64(v.Protocols))
}

func decodeClass(b []byte) (ServiceClass, error) {
	d := newDec(b, "class")
	v := ServiceClass{Name: d.s(), Quota: d.i(), MaxMessageSize: d.i(), Protocols: Protocol(d.u())}
	return v, d.done()
}

// mailboxRecord is a user's mailbox-wide state.
type mailboxRecord struct {
	NextFolder   FolderID // the id the next new folder gets
	LastValidity uint32   // the UIDVALIDITY given last: new ones are higher
	Usage
}

func encodeMailbox(v *mailboxRecord) []byte {
	return enc{recordVersion}.u(uint64(v.NextFolder)).u(uint64(v.LastValidity)).i(v.Messages).i(v.Bytes)
}

func decodeMailbox(b []byte) (mailboxRecord, error) {
	d := newDec(b, "mailbox")
	v := mailboxRecord{NextFolder: FolderID(d.u()), LastValidity: uint32(d.u()), Usage: Usage{Messages: d.i(), Bytes: d.i()}}
	return v, d.done()
}

// Folder records are at folderVersion: version 1 had no \Recent watermark,
// and is still read.
const folderVersion = 2

func encodeFolder(v *Folder) []byte {
	// The false is the byte where the folder's subscription was kept
	// before subscriptions became a table of their own (subscriptions.go).
	return enc{folderVersion}.u(uint64(v.ID)).s(v.Name).s(v.SpecialUse).bool(false).
		u(uint64(v.UIDValidity)).u(uint64(v.UIDNext)).u(v.HighestModSeq).
		u(uint64(v.Messages)).u(uint64(v.Unseen)).i(v.Size).
		u(uint64(v.RecentUID))
}

// decodeFolder decodes a folder record. A version 1 record has nothing
// recent (RecentUID is its UIDNext).
func decodeFolder(b []byte) (Folder, error) {
	v1 := len(b) > 0 && b[0] == recordVersion
	if len(b) > 0 && b[0] == folderVersion {
		b = append([]byte{recordVersion}, b[1:]...)
	}
	d := newDec(b, "folder")
	v := Folder{ID: FolderID(d.u()), Name: d.s(), SpecialUse: d.s()}
	d.bool() // the old subscribed bit: see encodeFolder
	v.UIDValidity, v.UIDNext, v.HighestModSeq = uint32(d.u()), UID(d.u()), d.u()
	v.Messages, v.Unseen, v.Size = uint32(d.u()), uint32(d.u()), d.i()
	v.RecentUID = v.UIDNext
	if !v1 {
		v.RecentUID = UID(d.u())
	}
	return v, d.done()
}

// encodeMessage encodes m (its UID is in the key) into e.
func encodeMessage(e enc, m *Message) ([]byte, error) {
	ref, err := m.Ref.AppendBinary(nil)
	if err != nil {
		return nil, err
	}
	e = append(e, recordVersion)
	return e.u(m.ModSeq).b(ref).t(m.InternalDate).i(m.Size).u(uint64(m.Flags)).
		strs(m.Keywords).b(m.Envelope).b(m.Structure), nil
}

// decodeMessage decodes a message record into m, reusing m's slices. The
// envelope and structure alias b.
func decodeMessage(b []byte, uid UID, m *Message) error {
	d := newDec(b, "message")
	m.UID = uid
	m.ModSeq = d.u()
	if err := m.Ref.UnmarshalBinary(d.raw()); err != nil && d.err == nil {
		d.err = fmt.Errorf("userdata: message record: %w", err)
	}
	m.InternalDate, m.Size, m.Flags = d.t(), d.i(), Flags(d.u())
	m.Keywords = m.Keywords[:0]
	n := d.u()
	if n > uint64(len(d.b)) {
		d.fail()
	}
	for range min(n, uint64(len(d.b))) {
		m.Keywords = append(m.Keywords, d.s())
	}
	m.Envelope, m.Structure = d.raw(), d.raw()
	return d.done()
}
