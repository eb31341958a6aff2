package rpc

import (
	"fmt"
	"time"

	"github.com/mailsys/mailsys/cluster/rpc/pb"
	"github.com/mailsys/mailsys/msstore"
	"github.com/mailsys/mailsys/userdata"
)

// This file turns the userdata values into their UD messages and back
// (see userdb.proto for the conventions). The fromPB functions of
// messages that fn gets during a callback alias the pb message's slices:
// the callback's values are valid only during it.

// unixNano is t as Unix nanoseconds, 0 for the zero time.
func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// fromUnixNano is the time.Time of n, the zero time for 0.
func fromUnixNano(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

// zoneOf is t's offset east of UTC in seconds.
func zoneOf(t time.Time) int32 {
	_, off := t.Zone()
	return int32(off)
}

// inZone is the time of n nanoseconds in a zone off seconds east of UTC.
func inZone(n int64, off int32) time.Time {
	t := fromUnixNano(n)
	if t.IsZero() {
		return t
	}
	if off == 0 {
		return t.UTC()
	}
	return t.In(time.FixedZone("", int(off)))
}

// refBytes returns r's binary form; for a Ref that has none (its copy
// fields inconsistent) a byte that is no Ref's form, which the other side
// refuses as invalid, as a local database refuses the Ref.
func refBytes(r msstore.Ref) []byte {
	b, err := r.AppendBinary(make([]byte, 0, msstore.RefLenMax))
	if err != nil {
		return []byte{0}
	}
	return b
}

func refFrom(b []byte) (msstore.Ref, error) {
	var r msstore.Ref
	if len(b) == 0 {
		return r, nil
	}
	if err := r.UnmarshalBinary(b); err != nil {
		return r, fmt.Errorf("rpc: %w: %w", userdata.ErrInvalid, err)
	}
	return r, nil
}

func domainToPB(d userdata.Domain) *pb.UDDomain {
	return &pb.UDDomain{Name: []byte(d.Name), Class: []byte(d.Class), Quota: d.Quota, Disabled: d.Disabled}
}

func domainFromPB(d *pb.UDDomain) userdata.Domain {
	return userdata.Domain{Name: string(d.GetName()), Class: string(d.GetClass()), Quota: d.GetQuota(), Disabled: d.GetDisabled()}
}

func unitToPB(u userdata.OrgUnit) *pb.UDUnit {
	return &pb.UDUnit{Id: uint64(u.ID), Domain: []byte(u.Domain), Parent: uint64(u.Parent), Name: []byte(u.Name),
		Class: []byte(u.Class), Disabled: u.Disabled}
}

func unitFromPB(u *pb.UDUnit) userdata.OrgUnit {
	return userdata.OrgUnit{ID: userdata.UnitID(u.GetId()), Domain: string(u.GetDomain()), Parent: userdata.UnitID(u.GetParent()),
		Name: string(u.GetName()), Class: string(u.GetClass()), Disabled: u.GetDisabled()}
}

func classToPB(c userdata.ServiceClass) *pb.UDClass {
	return &pb.UDClass{Name: []byte(c.Name), Quota: c.Quota, MaxMessageSize: c.MaxMessageSize, Protocols: uint32(c.Protocols)}
}

func classFromPB(c *pb.UDClass) userdata.ServiceClass {
	return userdata.ServiceClass{Name: string(c.GetName()), Quota: c.GetQuota(), MaxMessageSize: c.GetMaxMessageSize(),
		Protocols: userdata.Protocol(c.GetProtocols())}
}

func limitsToPB(l userdata.Limits) *pb.UDLimits {
	return &pb.UDLimits{Class: []byte(l.Class), Quota: l.Quota, DomainQuota: l.DomainQuota, MaxMessageSize: l.MaxMessageSize,
		Protocols: uint32(l.Protocols)}
}

func limitsFromPB(l *pb.UDLimits) userdata.Limits {
	return userdata.Limits{Class: string(l.GetClass()), Quota: l.GetQuota(), DomainQuota: l.GetDomainQuota(),
		MaxMessageSize: l.GetMaxMessageSize(), Protocols: userdata.Protocol(l.GetProtocols())}
}

func userToPB(u userdata.User) *pb.UDUser {
	return &pb.UDUser{Id: uint64(u.ID), Address: []byte(u.Address), Name: []byte(u.Name), Unit: uint64(u.Unit),
		Class: []byte(u.Class), Quota: u.Quota, Disabled: u.Disabled, Node: []byte(u.Node), Created: unixNano(u.Created)}
}

func userFromPB(u *pb.UDUser) userdata.User {
	return userdata.User{ID: userdata.UserID(u.GetId()), Address: string(u.GetAddress()), Name: string(u.GetName()),
		Unit: userdata.UnitID(u.GetUnit()), Class: string(u.GetClass()), Quota: u.GetQuota(), Disabled: u.GetDisabled(),
		Node: string(u.GetNode()), Created: fromUnixNano(u.GetCreated())}
}

func newUserToPB(u userdata.NewUser) *pb.UDNewUser {
	return &pb.UDNewUser{Id: uint64(u.ID), Address: []byte(u.Address), Password: []byte(u.Password), Name: []byte(u.Name),
		Unit: uint64(u.Unit), Class: []byte(u.Class), Quota: u.Quota, Node: []byte(u.Node)}
}

func newUserFromPB(u *pb.UDNewUser) userdata.NewUser {
	return userdata.NewUser{ID: userdata.UserID(u.GetId()), Address: string(u.GetAddress()), Password: string(u.GetPassword()),
		Name: string(u.GetName()), Unit: userdata.UnitID(u.GetUnit()), Class: string(u.GetClass()), Quota: u.GetQuota(),
		Node: string(u.GetNode())}
}

func userUpdateToPB(id userdata.UserID, u userdata.UserUpdate) *pb.UDUserUpdate {
	m := &pb.UDUserUpdate{Id: uint64(id), Quota: u.Quota, Disabled: u.Disabled}
	if u.Name != nil {
		m.Name = []byte(*u.Name)
	}
	if u.Class != nil {
		m.Class = []byte(*u.Class)
	}
	if u.Unit != nil {
		unit := uint64(*u.Unit)
		m.Unit = &unit
	}
	return m
}

func userUpdateFromPB(m *pb.UDUserUpdate) userdata.UserUpdate {
	u := userdata.UserUpdate{Quota: m.Quota, Disabled: m.Disabled}
	if m.Name != nil {
		name := string(m.Name)
		u.Name = &name
	}
	if m.Class != nil {
		class := string(m.Class)
		u.Class = &class
	}
	if m.Unit != nil {
		unit := userdata.UnitID(*m.Unit)
		u.Unit = &unit
	}
	return u
}

func folderToPB(f userdata.Folder) *pb.UDFolder {
	return &pb.UDFolder{Id: uint32(f.ID), Name: []byte(f.Name), SpecialUse: []byte(f.SpecialUse), UidValidity: f.UIDValidity,
		UidNext: uint32(f.UIDNext), HighestModSeq: f.HighestModSeq, Messages: f.Messages, Unseen: f.Unseen,
		Size: f.Size, RecentUid: uint32(f.RecentUID)}
}

func folderFromPB(f *pb.UDFolder) userdata.Folder {
	return userdata.Folder{ID: userdata.FolderID(f.GetId()), Name: string(f.GetName()), SpecialUse: string(f.GetSpecialUse()),
		UIDValidity: f.GetUidValidity(), UIDNext: userdata.UID(f.GetUidNext()), HighestModSeq: f.GetHighestModSeq(),
		Messages: f.GetMessages(), Unseen: f.GetUnseen(), Size: f.GetSize(), RecentUID: userdata.UID(f.GetRecentUid())}
}

func newMessageToPB(m userdata.NewMessage) *pb.UDMessage {
	return &pb.UDMessage{Ref: refBytes(m.Ref), InternalDate: unixNano(m.InternalDate), Zone: zoneOf(m.InternalDate),
		Size: m.Size, Flags: uint32(m.Flags), Keywords: textsToPB(m.Keywords), Envelope: m.Envelope, Structure: m.Structure}
}

// newMessageFromPB aliases m's slices: m is the server's own.
func newMessageFromPB(m *pb.UDMessage) (userdata.NewMessage, error) {
	ref, err := refFrom(m.GetRef())
	if err != nil {
		return userdata.NewMessage{}, err
	}
	return userdata.NewMessage{Ref: ref, InternalDate: inZone(m.GetInternalDate(), m.GetZone()), Size: m.GetSize(),
		Flags: userdata.Flags(m.GetFlags()), Keywords: textsFromPB(m.GetKeywords()), Envelope: m.GetEnvelope(), Structure: m.GetStructure()}, nil
}

// messageToPB aliases m's Envelope and Structure into the pb message,
// which is sent before they may change.
func messageToPB(m *userdata.Message) *pb.UDMessage {
	return &pb.UDMessage{Uid: uint32(m.UID), ModSeq: m.ModSeq, Ref: refBytes(m.Ref), InternalDate: unixNano(m.InternalDate),
		Zone: zoneOf(m.InternalDate), Size: m.Size, Flags: uint32(m.Flags), Keywords: textsToPB(m.Keywords),
		Envelope: m.Envelope, Structure: m.Structure}
}

// messageFromPB fills out from m, aliasing m's Envelope and Structure.
func messageFromPB(m *pb.UDMessage, out *userdata.Message) error {
	ref, err := refFrom(m.GetRef())
	if err != nil {
		return err
	}
	*out = userdata.Message{UID: userdata.UID(m.GetUid()), ModSeq: m.GetModSeq(), Ref: ref,
		InternalDate: inZone(m.GetInternalDate(), m.GetZone()), Size: m.GetSize(), Flags: userdata.Flags(m.GetFlags()),
		Keywords: textsFromPB(m.GetKeywords()), Envelope: m.GetEnvelope(), Structure: m.GetStructure()}
	return nil
}

func messagesToPB(ms []userdata.Message) []*pb.UDMessage {
	if len(ms) == 0 {
		return nil
	}
	out := make([]*pb.UDMessage, len(ms))
	for i := range ms {
		out[i] = messageToPB(&ms[i])
	}
	return out
}

func messagesFromPB(ms []*pb.UDMessage) ([]userdata.Message, error) {
	if len(ms) == 0 {
		return nil, nil
	}
	out := make([]userdata.Message, len(ms))
	for i, m := range ms {
		if err := messageFromPB(m, &out[i]); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// setToPB is nil for the nil set (every message), an empty UDUIDSet for an
// empty one.
func setToPB(s userdata.UIDSet) *pb.UDUIDSet {
	if s == nil {
		return nil
	}
	out := &pb.UDUIDSet{Ranges: make([]*pb.UDRange, len(s))}
	for i, r := range s {
		out.Ranges[i] = &pb.UDRange{Start: uint32(r.Start), Stop: uint32(r.Stop)}
	}
	return out
}

func setFromPB(s *pb.UDUIDSet) userdata.UIDSet {
	if s == nil {
		return nil
	}
	out := make(userdata.UIDSet, len(s.Ranges))
	for i, r := range s.Ranges {
		out[i] = userdata.UIDRange{Start: userdata.UID(r.GetStart()), Stop: userdata.UID(r.GetStop())}
	}
	return out
}

// uidsToPB converts a UID list; nil stays nil.
func uidsToPB(uids []userdata.UID) []uint32 {
	if uids == nil {
		return nil
	}
	out := make([]uint32, len(uids))
	for i, u := range uids {
		out[i] = uint32(u)
	}
	return out
}

// uidsFromPB converts a UID list; an empty one is nil.
func uidsFromPB(uids []uint32) []userdata.UID {
	if len(uids) == 0 {
		return nil
	}
	out := make([]userdata.UID, len(uids))
	for i, u := range uids {
		out[i] = userdata.UID(u)
	}
	return out
}

// textsToPB converts a list of strings; nil stays nil.
func textsToPB(ss []string) [][]byte {
	if ss == nil {
		return nil
	}
	out := make([][]byte, len(ss))
	for i, s := range ss {
		out[i] = []byte(s)
	}
	return out
}

// textsFromPB converts a list of strings; an empty one is nil.
func textsFromPB(bs [][]byte) []string {
	if len(bs) == 0 {
		return nil
	}
	out := make([]string, len(bs))
	for i, b := range bs {
		out[i] = string(b)
	}
	return out
}
