package userdata

import (
	"cmp"
	"context"
	"slices"
	"strings"

	"github.com/mailsys/mailsys/msstore"
)

// The Lister of a Memory. Each follows the DB method of the same name;
// ListUsers goes through every user held (a Memory is for tests and small
// systems), sorting only the domain's.

var _ Lister = (*Memory)(nil)

// stats returns the counters of the domain of addr, made if missing.
func (s *memState) stats(addr string) *DomainUsage {
	dom := addressDomain(addr)
	st := s.domainStats[dom]
	if st == nil {
		st = &DomainUsage{}
		s.domainStats[dom] = st
	}
	return st
}

// ListDomains implements Lister.
func (m *Memory) ListDomains(ctx context.Context, after string, limit int) ([]Domain, error) {
	done, err := m.enter(ctx)
	if err != nil {
		return nil, err
	}
	defer done()
	if limit, err = listLimit(limit); err != nil {
		return nil, err
	}
	after = strings.ToLower(after)
	m.mu.RLock()
	defer m.mu.RUnlock()
	var out []Domain
	for name, d := range m.st.domains {
		if name > after {
			out = append(out, d)
		}
	}
	slices.SortFunc(out, func(a, b Domain) int { return strings.Compare(a.Name, b.Name) })
	return out[:min(len(out), limit)], nil
}

// ListUnits implements Lister.
func (m *Memory) ListUnits(ctx context.Context, domain string) ([]OrgUnit, error) {
	done, err := m.enter(ctx)
	if err != nil {
		return nil, err
	}
	defer done()
	if domain, err = normalizeDomain(domain); err != nil {
		return nil, err
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	if _, err := m.st.domainRecord(domain); err != nil {
		return nil, err
	}
	var out []OrgUnit
	for _, u := range m.st.units {
		if u.Domain == domain {
			out = append(out, u)
		}
	}
	slices.SortFunc(out, func(a, b OrgUnit) int { return cmp.Compare(a.ID, b.ID) })
	return out, nil
}

// ListClasses implements Lister.
func (m *Memory) ListClasses(ctx context.Context) ([]ServiceClass, error) {
	done, err := m.enter(ctx)
	if err != nil {
		return nil, err
	}
	defer done()
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := make([]ServiceClass, 0, len(m.st.classes))
	for _, c := range m.st.classes {
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b ServiceClass) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// ListUsers implements Lister.
func (m *Memory) ListUsers(ctx context.Context, q UserQuery) ([]User, error) {
	done, err := m.enter(ctx)
	if err != nil {
		return nil, err
	}
	defer done()
	f, err := checkUserQuery(q)
	if err != nil {
		return nil, err
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	if _, err := m.st.domainRecord(f.q.Domain); err != nil {
		return nil, err
	}
	var out []User
	for _, u := range m.st.users {
		r := &u.rec.User
		if addressDomain(r.Address) == f.q.Domain && r.Address > f.q.After && f.match(r.Address, r.Unit, r.Name) {
			out = append(out, *r)
		}
	}
	slices.SortFunc(out, func(a, b User) int { return strings.Compare(a.Address, b.Address) })
	return out[:min(len(out), f.q.Limit)], nil
}

// DomainUsage implements Lister.
func (m *Memory) DomainUsage(ctx context.Context, domain string) (DomainUsage, error) {
	done, err := m.enter(ctx)
	if err != nil {
		return DomainUsage{}, err
	}
	defer done()
	if domain, err = normalizeDomain(domain); err != nil {
		return DomainUsage{}, err
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	if _, err := m.st.domainRecord(domain); err != nil {
		return DomainUsage{}, err
	}
	var du DomainUsage
	if st := m.st.domainStats[domain]; st != nil {
		du = *st
	}
	du.Bytes = m.st.domainUsage[domain]
	return du, nil
}

// DeleteUser implements Lister. The bodies are released after the
// Memory's lock is let go.
func (m *Memory) DeleteUser(ctx context.Context, id UserID) error {
	done, err := m.enter(ctx)
	if err != nil {
		return err
	}
	defer done()
	refs, err := func() ([]msstore.Ref, error) {
		m.mu.Lock()
		defer m.mu.Unlock()
		u, err := m.st.user(id)
		if err != nil {
			return nil, err
		}
		var refs []msstore.Ref
		if m.cfg.Bodies != nil {
			for _, f := range u.folders {
				for _, msg := range f.msgs {
					if !msg.Ref.IsZero() {
						refs = append(refs, msg.Ref)
					}
				}
			}
		}
		for addr, a := range m.st.addresses {
			if a.user == id {
				delete(m.st.addresses, addr)
			}
		}
		st := m.st.stats(u.rec.Address)
		st.Users--
		if u.rec.Disabled {
			st.Disabled--
		}
		st.Messages -= u.mb.Messages
		m.st.domainUsage[addressDomain(u.rec.Address)] -= u.mb.Bytes
		delete(m.st.users, id)
		m.logins.forgetUser(id)
		return refs, nil
	}()
	if err != nil {
		return err
	}
	releaseBodies(ctx, m.cfg.Bodies, m.log, refs)
	return nil
}
