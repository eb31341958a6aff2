package admin

import (
	"context"
	"errors"
	"fmt"

	"github.com/mailsys/mailsys/userdata"
)

// SetGrant makes a user an administrator, without a caller: for a host
// program's first start (a system administrator) and its tools. The user
// must exist, named by its primary address.
func (s *Server) SetGrant(ctx context.Context, g Grant) error {
	u, err := s.users.LookupAddress(ctx, g.User)
	if err != nil {
		return fmt.Errorf("admin: grant to %s: %w", g.User, err)
	}
	if u.Address != g.User {
		return fmt.Errorf("admin: grant to %s: an alias of %s: %w", g.User, u.Address, userdata.ErrInvalid)
	}
	switch g.Role {
	case RoleSystem, RoleDomain, RoleUnit:
	default:
		return fmt.Errorf("admin: grant role %q: %w", g.Role, userdata.ErrInvalid)
	}
	return s.st.putGrant(g)
}

// HasSystemAdmin reports whether some user is a system administrator.
func (s *Server) HasSystemAdmin() (bool, error) {
	gs, err := s.st.grants()
	if err != nil {
		return false, err
	}
	for _, g := range gs {
		if g.Role == RoleSystem {
			return true, nil
		}
	}
	return false, nil
}

// Delivered counts a message delivered into user u's INBOX in the day's
// statistics of u's domain and unit (mta.Observer). Statistics are not
// durable to the last message: a crash may lose the last counts.
func (s *Server) Delivered(u userdata.User, size int64) {
	s.countFor(u, Counts{Received: 1})
}

// Submitted counts a message user u submitted (mta.Observer).
func (s *Server) Submitted(u userdata.User, rcpts int) {
	s.countFor(u, Counts{Sent: 1})
}

func (s *Server) countFor(u userdata.User, c Counts) {
	if err := s.st.count(domainOf(u.Address), uint64(u.Unit), s.now(), c); err != nil && !errors.Is(err, errNotFound) {
		s.log.Warn("statistics: count lost", "user", u.Address, "err", err)
	}
}

// maxSeenCache bounds the users LoggedIn remembers having recorded today.
const maxSeenCache = 1 << 20

// LoggedIn records that u logged in today, for the active users of its
// domain's and unit's statistics (userdata.LoginObserver). Only a user's
// first login of a day writes; the record, like the daily counts, may
// lose the last writes in a crash.
func (s *Server) LoggedIn(u userdata.User, _ userdata.Protocol) {
	today := day(s.now())
	s.seenMu.Lock()
	if s.seen[u.ID] == today {
		s.seenMu.Unlock()
		return
	}
	if len(s.seen) >= maxSeenCache {
		clear(s.seen)
	}
	s.seen[u.ID] = today
	s.seenMu.Unlock()
	if err := s.st.markSeen(domainOf(u.Address), uint64(u.ID), uint64(u.Unit), today); err != nil {
		s.log.Warn("statistics: login not recorded", "user", u.Address, "err", err)
	}
}
