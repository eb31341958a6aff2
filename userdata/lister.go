package userdata

import (
	"context"
	"fmt"
	"strings"
)

// MaxList bounds one page of a Lister.
const MaxList = 1000

// UserQuery selects the users ListUsers returns.
type UserQuery struct {
	Domain string // required: the users of this domain (lower case)
	Unit   UnitID // 0: any; else the users of exactly this unit
	Search string // "": all; else users whose address's local part or Name contains it, case-insensitively
	After  string // the address to start after ("" from the first), for paging
	Limit  int    // at most this many (0 or above MaxList: MaxList)
}

// Lister is an optional capability of a UserDB: listing what it holds,
// for administration, and deleting users. Lists are in key order and page
// by the last key seen: a page shorter than its limit is the last one.
//
// The general rules of [UserDB] apply. A domain is matched without regard
// to case; one that is not a valid domain name gives ErrInvalid, an
// unknown one ErrNotFound (ListUnits, ListUsers, DomainUsage). A negative
// limit gives ErrInvalid; 0, or one above MaxList, means MaxList. Each
// call reads one consistent view for the DB (a snapshot of it).
//
// ListUsers reads an index of each domain's users by address, whose
// entries hold the user's unit and name: a page costs one ordered scan
// from After and one record read per user returned. A Unit or Search
// filter is applied to those entries as the scan goes, so that the work of
// a call is at most one pass over the domain's entries after After (no
// record is read for an entry that does not match) and it stops at Limit
// matches; the scan checks ctx as it goes.
type Lister interface {
	// ListDomains returns up to limit domains after name after, by name.
	ListDomains(ctx context.Context, after string, limit int) ([]Domain, error)
	// ListUnits returns the units of domain (every level), by ID.
	ListUnits(ctx context.Context, domain string) ([]OrgUnit, error)
	// ListClasses returns every service class, by name.
	ListClasses(ctx context.Context) ([]ServiceClass, error)
	// ListUsers returns the users q selects, by address.
	ListUsers(ctx context.Context, q UserQuery) ([]User, error)
	// DomainUsage returns the users, and what their mailboxes hold, of
	// domain: Users counted and Usage summed incrementally (not by
	// scanning mailboxes).
	DomainUsage(ctx context.Context, domain string) (DomainUsage, error)
	// DeleteUser deletes user id: the account, its addresses and
	// aliases, its folders and their messages (releasing every body
	// reference through Config.Bodies as an expunge does), its
	// subscriptions; the domain's usage drops by what it held.
	// ErrNotFound for an unknown user. It is atomic for the account (a
	// crash leaves the user whole or gone; message entries may be
	// removed in batches after the account is gone, but never leave a
	// body reference counted twice). The address and aliases are free
	// for a new user once it returns; the id is never reused.
	DeleteUser(ctx context.Context, id UserID) error
}

// DomainUsage is a domain's totals.
type DomainUsage struct {
	Users    int64 // accounts in the domain
	Disabled int64 // of which disabled (their own flag)
	Usage          // messages and bytes held by its users
}

// maxSearch bounds UserQuery.Search.
const maxSearch = 256

// listLimit checks a page limit: negative is ErrInvalid, 0 or above
// MaxList is MaxList.
func listLimit(limit int) (int, error) {
	switch {
	case limit < 0:
		return 0, fmt.Errorf("%w: negative limit %d", ErrInvalid, limit)
	case limit == 0 || limit > MaxList:
		return MaxList, nil
	}
	return limit, nil
}

// userFilter is a UserQuery checked and normalized, matched against the
// unit and names of each user.
type userFilter struct {
	q      UserQuery
	search string // lower case
}

// checkUserQuery checks q: a valid domain (lower-cased), a limit not
// negative.
func checkUserQuery(q UserQuery) (userFilter, error) {
	var err error
	if q.Domain, err = normalizeDomain(q.Domain); err != nil {
		return userFilter{}, err
	}
	if q.Limit, err = listLimit(q.Limit); err != nil {
		return userFilter{}, err
	}
	if len(q.Search) > maxSearch || len(q.After) > maxLocalPart+1+maxDomainName {
		return userFilter{}, fmt.Errorf("%w: a search or an After too long", ErrInvalid)
	}
	q.After = strings.ToLower(q.After)
	return userFilter{q: q, search: strings.ToLower(q.Search)}, nil
}

// match reports whether the user with address addr, unit and name is
// selected by f's unit and search.
func (f *userFilter) match(addr string, unit UnitID, name string) bool {
	if f.q.Unit != 0 && unit != f.q.Unit {
		return false
	}
	if f.search == "" {
		return true
	}
	local, _, _ := strings.Cut(addr, "@")
	return strings.Contains(local, f.search) || strings.Contains(strings.ToLower(name), f.search)
}
