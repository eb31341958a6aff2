package admin

import (
	"context"
	"errors"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/mailsys/mailsys/userdata"
)

// Limits of the API's values.
const (
	maxName    = 255 // a domain, a unit's or a user's name, a class
	maxAddress = 320
	maxPage    = userdata.MaxList
	statsDays  = 30 // the days a stats answer covers
)

var domainName = regexp.MustCompile(`^(?i)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$`)

func checkDomain(field, d string) error {
	if len(d) > 253 || !domainName.MatchString(d) {
		return &fieldError{Field: field, Msg: "not a domain name"}
	}
	return nil
}

func checkAddress(field, a string) error {
	local, domain, ok := strings.Cut(a, "@")
	if !ok || local == "" || len(a) > maxAddress || strings.ContainsAny(local, " \t\r\n\"<>()[],;:\\") {
		return &fieldError{Field: field, Msg: "not an address"}
	}
	return checkDomain(field, domain)
}

func checkName(field, s string) error {
	if len(s) > maxName || strings.ContainsAny(s, "\r\n\x00") {
		return &fieldError{Field: field, Msg: "at most 255 bytes, on one line"}
	}
	return nil
}

// Domains.

type domainJSON struct {
	Name     string `json:"name"`
	Class    string `json:"class,omitempty"`
	Quota    int64  `json:"quota,omitempty"`
	Disabled bool   `json:"disabled,omitempty"`
}

func domainToJSON(d userdata.Domain) domainJSON {
	return domainJSON{Name: d.Name, Class: d.Class, Quota: d.Quota, Disabled: d.Disabled}
}

func (s *Server) listDomains(w http.ResponseWriter, r *http.Request, p *principal) error {
	if !p.system() {
		d, err := s.users.Domain(r.Context(), p.grant.Domain)
		if err != nil {
			return err
		}
		return reply(w, http.StatusOK, []domainJSON{domainToJSON(d)})
	}
	after, limit, err := page(r)
	if err != nil {
		return err
	}
	ds, err := s.users.ListDomains(r.Context(), after, limit)
	if err != nil {
		return err
	}
	out := make([]domainJSON, 0, len(ds))
	for _, d := range ds {
		out = append(out, domainToJSON(d))
	}
	return reply(w, http.StatusOK, out)
}

// page reads the paging parameters after and limit.
func page(r *http.Request) (string, int, error) {
	limit := 100
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxPage {
			return "", 0, &fieldError{Field: "limit", Msg: "1 to " + strconv.Itoa(maxPage)}
		}
		limit = n
	}
	after := r.URL.Query().Get("after")
	if len(after) > maxAddress {
		return "", 0, &fieldError{Field: "after", Msg: "too long"}
	}
	return after, limit, nil
}

func (s *Server) createDomain(w http.ResponseWriter, r *http.Request, p *principal) error {
	var req domainJSON
	if err := s.decode(w, r, &req); err != nil {
		return err
	}
	req.Name = strings.ToLower(req.Name)
	if err := checkDomain("name", req.Name); err != nil {
		return err
	}
	if err := checkName("class", req.Class); err != nil {
		return err
	}
	if req.Quota < 0 {
		return &fieldError{Field: "quota", Msg: "negative"}
	}
	d := userdata.Domain{Name: req.Name, Class: req.Class, Quota: req.Quota, Disabled: req.Disabled}
	if err := s.users.CreateDomain(r.Context(), d); err != nil {
		return err
	}
	return reply(w, http.StatusCreated, domainToJSON(d))
}

// domainPath reads {domain} and checks the caller administers it.
func (s *Server) domainPath(r *http.Request, p *principal) (string, error) {
	d := strings.ToLower(r.PathValue("domain"))
	if err := checkDomain("domain", d); err != nil {
		return "", err
	}
	if !p.domain(d) {
		return "", errForbidden
	}
	return d, nil
}

func (s *Server) getDomain(w http.ResponseWriter, r *http.Request, p *principal) error {
	name, err := s.domainPath(r, p)
	if err != nil {
		return err
	}
	d, err := s.users.Domain(r.Context(), name)
	if err != nil {
		return err
	}
	return reply(w, http.StatusOK, domainToJSON(d))
}

type domainUpdate struct {
	Class    *string `json:"class"`
	Quota    *int64  `json:"quota"`
	Disabled *bool   `json:"disabled"`
}

func (s *Server) updateDomain(w http.ResponseWriter, r *http.Request, p *principal) error {
	name, err := s.domainPath(r, p)
	if err != nil {
		return err
	}
	var req domainUpdate
	if err := s.decode(w, r, &req); err != nil {
		return err
	}
	if !p.system() && (req.Quota != nil || req.Disabled != nil || req.Class != nil) {
		// The domain's limits are the system's to set; its admin
		// administers what is inside.
		return errForbidden
	}
	d, err := s.users.Domain(r.Context(), name)
	if err != nil {
		return err
	}
	if req.Class != nil {
		if err := checkName("class", *req.Class); err != nil {
			return err
		}
		d.Class = *req.Class
	}
	if req.Quota != nil {
		if *req.Quota < 0 {
			return &fieldError{Field: "quota", Msg: "negative"}
		}
		d.Quota = *req.Quota
	}
	if req.Disabled != nil {
		d.Disabled = *req.Disabled
	}
	if err := s.users.UpdateDomain(r.Context(), d); err != nil {
		return err
	}
	return reply(w, http.StatusOK, domainToJSON(d))
}

type aliasRequest struct {
	Alias string `json:"alias"`
}

func (s *Server) addDomainAlias(w http.ResponseWriter, r *http.Request, p *principal) error {
	name, err := s.domainPath(r, p)
	if err != nil {
		return err
	}
	var req aliasRequest
	if err := s.decode(w, r, &req); err != nil {
		return err
	}
	req.Alias = strings.ToLower(req.Alias)
	if err := checkDomain("alias", req.Alias); err != nil {
		return err
	}
	if err := s.users.AddDomainAlias(r.Context(), req.Alias, name); err != nil {
		return err
	}
	return reply(w, http.StatusCreated, req)
}

// statsJSON is a domain's or a unit's statistics.
type statsJSON struct {
	Users    int64     `json:"users"`
	Active   int64     `json:"active"` // users who logged in in the last 30 days
	Disabled int64     `json:"disabled"`
	Messages int64     `json:"messages"` // held in the mailboxes
	Bytes    int64     `json:"bytes"`    // storage used
	Quota    int64     `json:"quota"`    // the domain's, 0 for none
	Days     []dayJSON `json:"days"`     // the last 30 days, oldest first
}

type dayJSON struct {
	Day      string `json:"day"` // YYYY-MM-DD, UTC
	Received int64  `json:"received"`
	Sent     int64  `json:"sent"`
}

func (s *Server) daysJSON(keyOf func(uint32) []byte) ([]dayJSON, error) {
	to := day(s.now())
	from := to - statsDays + 1
	cs, err := s.st.days(keyOf, from, to)
	if err != nil {
		return nil, err
	}
	out := make([]dayJSON, len(cs))
	for i, c := range cs {
		out[i] = dayJSON{Day: time.Unix(int64(from+uint32(i))*86400, 0).UTC().Format(time.DateOnly), Received: c.Received, Sent: c.Sent}
	}
	return out, nil
}

func (s *Server) domainStats(w http.ResponseWriter, r *http.Request, p *principal) error {
	name, err := s.domainPath(r, p)
	if err != nil {
		return err
	}
	d, err := s.users.Domain(r.Context(), name)
	if err != nil {
		return err
	}
	u, err := s.users.DomainUsage(r.Context(), name)
	if err != nil {
		return err
	}
	days, err := s.daysJSON(func(d uint32) []byte { return domainStatsKey(name, d) })
	if err != nil {
		return err
	}
	active, err := s.st.countSeen(name, 0, day(s.now())-statsDays+1)
	if err != nil {
		return err
	}
	return reply(w, http.StatusOK, statsJSON{Users: u.Users, Active: active, Disabled: u.Disabled, Messages: u.Messages, Bytes: u.Bytes, Quota: d.Quota, Days: days})
}

// Units.

type unitJSON struct {
	ID       uint64 `json:"id,omitempty"`
	Domain   string `json:"domain"`
	Parent   uint64 `json:"parent,omitempty"`
	Name     string `json:"name"`
	Class    string `json:"class,omitempty"`
	Disabled bool   `json:"disabled,omitempty"`
}

func unitToJSON(u userdata.OrgUnit) unitJSON {
	return unitJSON{ID: uint64(u.ID), Domain: u.Domain, Parent: uint64(u.Parent), Name: u.Name, Class: u.Class, Disabled: u.Disabled}
}

func (s *Server) listUnits(w http.ResponseWriter, r *http.Request, p *principal) error {
	d := strings.ToLower(r.PathValue("domain"))
	if err := checkDomain("domain", d); err != nil {
		return err
	}
	us, err := s.users.ListUnits(r.Context(), d)
	if err != nil {
		return err
	}
	out := []unitJSON{}
	for _, u := range us {
		ok, err := s.unit(r.Context(), p, u.ID)
		if err != nil {
			return err
		}
		if ok {
			out = append(out, unitToJSON(u))
		}
	}
	if len(out) == 0 && !p.domain(d) {
		return errForbidden
	}
	return reply(w, http.StatusOK, out)
}

func (s *Server) createUnit(w http.ResponseWriter, r *http.Request, p *principal) error {
	var req unitJSON
	if err := s.decode(w, r, &req); err != nil {
		return err
	}
	req.Domain = strings.ToLower(req.Domain)
	if err := checkDomain("domain", req.Domain); err != nil {
		return err
	}
	if req.ID != 0 {
		return &fieldError{Field: "id", Msg: "given by the server"}
	}
	if req.Name == "" {
		return &fieldError{Field: "name", Msg: "required"}
	}
	for f, v := range map[string]string{"name": req.Name, "class": req.Class} {
		if err := checkName(f, v); err != nil {
			return err
		}
	}
	// A domain administrator makes units anywhere in the domain; a unit
	// administrator below its unit.
	ok := p.domain(req.Domain)
	if !ok && req.Parent != 0 {
		parent, err := s.users.Unit(r.Context(), userdata.UnitID(req.Parent))
		if err != nil {
			return err
		}
		if parent.Domain != req.Domain {
			return &fieldError{Field: "parent", Msg: "in another domain"}
		}
		if ok, err = s.unit(r.Context(), p, parent.ID); err != nil {
			return err
		}
	}
	if !ok {
		return errForbidden
	}
	u, err := s.users.CreateUnit(r.Context(), userdata.OrgUnit{Domain: req.Domain, Parent: userdata.UnitID(req.Parent), Name: req.Name, Class: req.Class, Disabled: req.Disabled})
	if err != nil {
		return err
	}
	return reply(w, http.StatusCreated, unitToJSON(u))
}

// unitPath reads {id} and checks the caller administers the unit.
func (s *Server) unitPath(ctx context.Context, r *http.Request, p *principal) (userdata.OrgUnit, error) {
	n, err := strconv.ParseUint(r.PathValue("id"), 10, 64)
	if err != nil || n == 0 {
		return userdata.OrgUnit{}, &fieldError{Field: "id", Msg: "not a unit id"}
	}
	u, err := s.users.Unit(ctx, userdata.UnitID(n))
	if err != nil {
		return userdata.OrgUnit{}, err
	}
	ok, err := s.unit(ctx, p, u.ID)
	if err != nil {
		return userdata.OrgUnit{}, err
	}
	if !ok {
		return userdata.OrgUnit{}, errForbidden
	}
	return u, nil
}

func (s *Server) getUnit(w http.ResponseWriter, r *http.Request, p *principal) error {
	u, err := s.unitPath(r.Context(), r, p)
	if err != nil {
		return err
	}
	return reply(w, http.StatusOK, unitToJSON(u))
}

type unitUpdate struct {
	Name     *string `json:"name"`
	Class    *string `json:"class"`
	Disabled *bool   `json:"disabled"`
}

func (s *Server) updateUnit(w http.ResponseWriter, r *http.Request, p *principal) error {
	u, err := s.unitPath(r.Context(), r, p)
	if err != nil {
		return err
	}
	var req unitUpdate
	if err := s.decode(w, r, &req); err != nil {
		return err
	}
	if req.Name != nil {
		if *req.Name == "" {
			return &fieldError{Field: "name", Msg: "required"}
		}
		if err := checkName("name", *req.Name); err != nil {
			return err
		}
		u.Name = *req.Name
	}
	if req.Class != nil {
		if err := checkName("class", *req.Class); err != nil {
			return err
		}
		u.Class = *req.Class
	}
	if req.Disabled != nil {
		u.Disabled = *req.Disabled
	}
	if err := s.users.UpdateUnit(r.Context(), u); err != nil {
		return err
	}
	return reply(w, http.StatusOK, unitToJSON(u))
}

func (s *Server) unitStats(w http.ResponseWriter, r *http.Request, p *principal) error {
	u, err := s.unitPath(r.Context(), r, p)
	if err != nil {
		return err
	}
	var st statsJSON
	// The unit's users, every page; the unit's own counts (its
	// sub-units count theirs).
	q := userdata.UserQuery{Domain: u.Domain, Unit: u.ID, Limit: userdata.MaxList}
	for {
		us, err := s.users.ListUsers(r.Context(), q)
		if err != nil {
			return err
		}
		for _, x := range us {
			st.Users++
			if x.Disabled {
				st.Disabled++
			}
			use, err := s.users.Usage(r.Context(), x.ID)
			if err != nil {
				return err
			}
			st.Messages += use.Messages
			st.Bytes += use.Bytes
		}
		if len(us) < q.Limit {
			break
		}
		q.After = us[len(us)-1].Address
	}
	if st.Days, err = s.daysJSON(func(d uint32) []byte { return unitStatsKey(uint64(u.ID), d) }); err != nil {
		return err
	}
	if st.Active, err = s.st.countSeen(u.Domain, uint64(u.ID), day(s.now())-statsDays+1); err != nil {
		return err
	}
	return reply(w, http.StatusOK, st)
}

// Service classes.

type classJSON struct {
	Name           string   `json:"name"`
	Quota          int64    `json:"quota,omitempty"`
	MaxMessageSize int64    `json:"max_message_size,omitempty"`
	Protocols      []string `json:"protocols,omitempty"` // smtp, submission, imap, pop3; none: all
}

var protocolNames = []struct {
	name string
	p    userdata.Protocol
}{{"smtp", userdata.ProtoSMTP}, {"submission", userdata.ProtoSubmission}, {"imap", userdata.ProtoIMAP}, {"pop3", userdata.ProtoPOP3}}

func classToJSON(c userdata.ServiceClass) classJSON {
	out := classJSON{Name: c.Name, Quota: c.Quota, MaxMessageSize: c.MaxMessageSize}
	for _, pn := range protocolNames {
		if c.Protocols&pn.p != 0 {
			out.Protocols = append(out.Protocols, pn.name)
		}
	}
	return out
}

func (s *Server) listClasses(w http.ResponseWriter, r *http.Request, p *principal) error {
	cs, err := s.users.ListClasses(r.Context())
	if err != nil {
		return err
	}
	out := make([]classJSON, 0, len(cs))
	for _, c := range cs {
		out = append(out, classToJSON(c))
	}
	return reply(w, http.StatusOK, out)
}

func (s *Server) putClass(w http.ResponseWriter, r *http.Request, p *principal) error {
	var req classJSON
	if err := s.decode(w, r, &req); err != nil {
		return err
	}
	name := r.PathValue("name")
	if req.Name != "" && req.Name != name {
		return &fieldError{Field: "name", Msg: "not the name in the path"}
	}
	if name == "" || checkName("name", name) != nil {
		return &fieldError{Field: "name", Msg: "1 to 255 bytes"}
	}
	if req.Quota < 0 {
		return &fieldError{Field: "quota", Msg: "negative"}
	}
	if req.MaxMessageSize < 0 {
		return &fieldError{Field: "max_message_size", Msg: "negative"}
	}
	c := userdata.ServiceClass{Name: name, Quota: req.Quota, MaxMessageSize: req.MaxMessageSize}
	for _, n := range req.Protocols {
		found := false
		for _, pn := range protocolNames {
			if n == pn.name {
				c.Protocols |= pn.p
				found = true
			}
		}
		if !found {
			return &fieldError{Field: "protocols", Msg: "unknown protocol " + strconv.Quote(n) + " (want smtp, submission, imap, pop3)"}
		}
	}
	if err := s.users.DefineClass(r.Context(), c); err != nil {
		return err
	}
	return reply(w, http.StatusOK, classToJSON(c))
}

// Users.

type userJSON struct {
	Address  string    `json:"address"`
	Name     string    `json:"name,omitempty"`
	Unit     uint64    `json:"unit,omitempty"`
	Class    string    `json:"class,omitempty"`
	Quota    int64     `json:"quota,omitempty"`
	Disabled bool      `json:"disabled,omitempty"`
	Created  time.Time `json:"created"`
	Messages int64     `json:"messages"`
	Bytes    int64     `json:"bytes"`
}

func userToJSON(u userdata.User) userJSON {
	return userJSON{Address: u.Address, Name: u.Name, Unit: uint64(u.Unit), Class: u.Class, Quota: u.Quota, Disabled: u.Disabled, Created: u.Created}
}

// listUsers lists a domain's users (a unit's with unit=, matching
// search=), a page at a time (after=, limit=).
func (s *Server) listUsers(w http.ResponseWriter, r *http.Request, p *principal) error {
	q := r.URL.Query()
	d := strings.ToLower(q.Get("domain"))
	if err := checkDomain("domain", d); err != nil {
		return err
	}
	after, limit, err := page(r)
	if err != nil {
		return err
	}
	uq := userdata.UserQuery{Domain: d, Search: q.Get("search"), After: after, Limit: limit}
	if len(uq.Search) > maxName {
		return &fieldError{Field: "search", Msg: "too long"}
	}
	if v := q.Get("unit"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil || n == 0 {
			return &fieldError{Field: "unit", Msg: "not a unit id"}
		}
		uq.Unit = userdata.UnitID(n)
	}
	if !p.domain(d) {
		// A unit administrator lists its own unit's users (one level
		// at a time: the pages ask unit by unit).
		if uq.Unit == 0 {
			return errForbidden
		}
		ok, err := s.unit(r.Context(), p, uq.Unit)
		if err != nil {
			return err
		}
		if !ok {
			return errForbidden
		}
	}
	us, err := s.users.ListUsers(r.Context(), uq)
	if err != nil {
		return err
	}
	out := make([]userJSON, 0, len(us))
	for _, u := range us {
		out = append(out, userToJSON(u))
	}
	return reply(w, http.StatusOK, out)
}

type newUserJSON struct {
	Address  string `json:"address"`
	Password string `json:"password"`
	Name     string `json:"name,omitempty"`
	Unit     uint64 `json:"unit,omitempty"`
	Class    string `json:"class,omitempty"`
	Quota    int64  `json:"quota,omitempty"`
}

func (s *Server) createUser(w http.ResponseWriter, r *http.Request, p *principal) error {
	var req newUserJSON
	if err := s.decode(w, r, &req); err != nil {
		return err
	}
	req.Address = strings.ToLower(req.Address)
	if err := checkAddress("address", req.Address); err != nil {
		return err
	}
	if err := checkPassword(req.Password); err != nil {
		return err
	}
	for f, v := range map[string]string{"name": req.Name, "class": req.Class} {
		if err := checkName(f, v); err != nil {
			return err
		}
	}
	if req.Quota < 0 {
		return &fieldError{Field: "quota", Msg: "negative"}
	}
	d := domainOf(req.Address)
	ok := p.domain(d)
	if req.Unit != 0 {
		u, err := s.users.Unit(r.Context(), userdata.UnitID(req.Unit))
		if errors.Is(err, userdata.ErrNotFound) {
			return &fieldError{Field: "unit", Msg: "no such unit"}
		}
		if err != nil {
			return err
		}
		if u.Domain != d {
			return &fieldError{Field: "unit", Msg: "in another domain"}
		}
		if !ok {
			if ok, err = s.unit(r.Context(), p, u.ID); err != nil {
				return err
			}
		}
	}
	if !ok {
		return errForbidden
	}
	u, err := s.users.CreateUser(r.Context(), userdata.NewUser{Address: req.Address, Password: req.Password, Name: req.Name,
		Unit: userdata.UnitID(req.Unit), Class: req.Class, Quota: req.Quota})
	if err != nil {
		return err
	}
	return reply(w, http.StatusCreated, userToJSON(u))
}

// userPath reads {address} and checks the caller administers the user.
func (s *Server) userPath(r *http.Request, p *principal) (userdata.User, error) {
	a := strings.ToLower(r.PathValue("address"))
	if err := checkAddress("address", a); err != nil {
		return userdata.User{}, err
	}
	u, err := s.users.LookupAddress(r.Context(), a)
	if errors.Is(err, userdata.ErrNotFound) && !p.domain(domainOf(a)) {
		return userdata.User{}, errForbidden // no telling who exists outside one's scope
	}
	if err != nil {
		return userdata.User{}, err
	}
	ok, err := s.mayUser(r.Context(), p, u)
	if err != nil {
		return userdata.User{}, err
	}
	if !ok {
		return userdata.User{}, errForbidden
	}
	return u, nil
}

func (s *Server) getUser(w http.ResponseWriter, r *http.Request, p *principal) error {
	u, err := s.userPath(r, p)
	if err != nil {
		return err
	}
	out := userToJSON(u)
	use, err := s.users.Usage(r.Context(), u.ID)
	if err != nil {
		return err
	}
	out.Messages, out.Bytes = use.Messages, use.Bytes
	return reply(w, http.StatusOK, out)
}

type userUpdateJSON struct {
	Name     *string `json:"name"`
	Unit     *uint64 `json:"unit"`
	Class    *string `json:"class"`
	Quota    *int64  `json:"quota"`
	Disabled *bool   `json:"disabled"`
}

func (s *Server) updateUser(w http.ResponseWriter, r *http.Request, p *principal) error {
	u, err := s.userPath(r, p)
	if err != nil {
		return err
	}
	var req userUpdateJSON
	if err := s.decode(w, r, &req); err != nil {
		return err
	}
	var up userdata.UserUpdate
	if req.Name != nil {
		if err := checkName("name", *req.Name); err != nil {
			return err
		}
		up.Name = req.Name
	}
	if req.Class != nil {
		if err := checkName("class", *req.Class); err != nil {
			return err
		}
		up.Class = req.Class
	}
	if req.Quota != nil {
		if *req.Quota < 0 {
			return &fieldError{Field: "quota", Msg: "negative"}
		}
		up.Quota = req.Quota
	}
	up.Disabled = req.Disabled
	if req.Unit != nil {
		// Moving a user: the destination must be in the caller's scope
		// too (0 takes the user out of any unit: the domain's call).
		to := userdata.UnitID(*req.Unit)
		if to == 0 && !p.domain(domainOf(u.Address)) {
			return errForbidden
		}
		if to != 0 {
			dst, err := s.users.Unit(r.Context(), to)
			if errors.Is(err, userdata.ErrNotFound) {
				return &fieldError{Field: "unit", Msg: "no such unit"}
			}
			if err != nil {
				return err
			}
			if dst.Domain != domainOf(u.Address) {
				return &fieldError{Field: "unit", Msg: "in another domain"}
			}
			ok, err := s.unit(r.Context(), p, to)
			if err != nil {
				return err
			}
			if !ok {
				return errForbidden
			}
		}
		up.Unit = &to
	}
	if err := s.users.UpdateUser(r.Context(), u.ID, up); err != nil {
		return err
	}
	u, err = s.users.User(r.Context(), u.ID)
	if err != nil {
		return err
	}
	return reply(w, http.StatusOK, userToJSON(u))
}

func (s *Server) deleteUser(w http.ResponseWriter, r *http.Request, p *principal) error {
	u, err := s.userPath(r, p)
	if err != nil {
		return err
	}
	if u.ID == p.user.ID {
		return &httpError{Status: http.StatusConflict, Msg: "you cannot delete yourself"}
	}
	if err := s.users.DeleteUser(r.Context(), u.ID); err != nil {
		return err
	}
	if err := s.st.deleteGrant(u.Address); err != nil {
		return err
	}
	if err := s.st.forgetSeen(domainOf(u.Address), uint64(u.ID)); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) setUserPassword(w http.ResponseWriter, r *http.Request, p *principal) error {
	u, err := s.userPath(r, p)
	if err != nil {
		return err
	}
	var req passwordRequest
	if err := s.decode(w, r, &req); err != nil {
		return err
	}
	if req.Old != "" {
		return &fieldError{Field: "old", Msg: "not for another user's password"}
	}
	if err := checkPassword(req.Password); err != nil {
		return err
	}
	if err := s.users.SetPassword(r.Context(), u.ID, req.Password); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) addAlias(w http.ResponseWriter, r *http.Request, p *principal) error {
	u, err := s.userPath(r, p)
	if err != nil {
		return err
	}
	var req aliasRequest
	if err := s.decode(w, r, &req); err != nil {
		return err
	}
	req.Alias = strings.ToLower(req.Alias)
	if err := checkAddress("alias", req.Alias); err != nil {
		return err
	}
	if !p.domain(domainOf(req.Alias)) && domainOf(req.Alias) != domainOf(u.Address) {
		return errForbidden
	}
	if err := s.users.AddAlias(r.Context(), req.Alias, u.ID); err != nil {
		return err
	}
	return reply(w, http.StatusCreated, req)
}

func (s *Server) removeAlias(w http.ResponseWriter, r *http.Request, p *principal) error {
	u, err := s.userPath(r, p)
	if err != nil {
		return err
	}
	alias := strings.ToLower(r.PathValue("alias"))
	if err := checkAddress("alias", alias); err != nil {
		return err
	}
	owner, err := s.users.LookupAddress(r.Context(), alias)
	if err != nil {
		return err
	}
	if owner.ID != u.ID || owner.Address == alias {
		return &httpError{Status: http.StatusNotFound, Msg: "not an alias of " + u.Address}
	}
	if err := s.users.RemoveAlias(r.Context(), alias); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// Administrators.

func (s *Server) listAdmins(w http.ResponseWriter, r *http.Request, p *principal) error {
	gs, err := s.st.grants()
	if err != nil {
		return err
	}
	out := []Grant{}
	for _, g := range gs {
		if ok, err := s.mayGrant(r.Context(), p, g); err != nil {
			return err
		} else if ok {
			out = append(out, g)
		}
	}
	return reply(w, http.StatusOK, out)
}

// mayGrant reports whether p may give (or see, or take away) grant g: a
// system administrator any; a domain administrator those of its domain
// (domain and unit administrators); a unit administrator those of the
// units below its own.
func (s *Server) mayGrant(ctx context.Context, p *principal, g Grant) (bool, error) {
	switch {
	case p.system():
		return true, nil
	case g.Role == RoleSystem:
		return false, nil
	case g.Role == RoleDomain:
		return p.domain(g.Domain), nil
	}
	if p.domain(g.Domain) {
		return true, nil
	}
	if p.grant.Role != RoleUnit || uint64(p.grant.Unit) == g.Unit {
		return false, nil // not its own unit: that is its superior's
	}
	return s.unit(ctx, p, userdata.UnitID(g.Unit))
}

func (s *Server) grantAdmin(w http.ResponseWriter, r *http.Request, p *principal) error {
	var g Grant
	if err := s.decode(w, r, &g); err != nil {
		return err
	}
	g.User, g.Domain = strings.ToLower(g.User), strings.ToLower(g.Domain)
	if err := checkAddress("user", g.User); err != nil {
		return err
	}
	u, err := s.users.LookupAddress(r.Context(), g.User)
	if errors.Is(err, userdata.ErrNotFound) {
		return &fieldError{Field: "user", Msg: "no such user"}
	}
	if err != nil {
		return err
	}
	if u.Address != g.User {
		return &fieldError{Field: "user", Msg: "an alias; give the primary address " + u.Address}
	}
	switch g.Role {
	case RoleSystem:
		g.Domain, g.Unit = "", 0
	case RoleDomain:
		if err := checkDomain("domain", g.Domain); err != nil {
			return err
		}
		if _, err := s.users.Domain(r.Context(), g.Domain); err != nil {
			return err
		}
		g.Unit = 0
	case RoleUnit:
		unit, err := s.users.Unit(r.Context(), userdata.UnitID(g.Unit))
		if errors.Is(err, userdata.ErrNotFound) || g.Unit == 0 {
			return &fieldError{Field: "unit", Msg: "no such unit"}
		}
		if err != nil {
			return err
		}
		g.Domain = unit.Domain
	default:
		return &fieldError{Field: "role", Msg: "want system, domain or unit"}
	}
	ok, err := s.mayGrant(r.Context(), p, g)
	if err != nil {
		return err
	}
	if !ok {
		return errForbidden
	}
	if err := s.st.putGrant(g); err != nil {
		return err
	}
	return reply(w, http.StatusCreated, g)
}

func (s *Server) revokeAdmin(w http.ResponseWriter, r *http.Request, p *principal) error {
	a := strings.ToLower(r.PathValue("address"))
	g, err := s.st.grant(a)
	if errors.Is(err, errNotFound) {
		return &httpError{Status: http.StatusNotFound, Msg: "no administrator " + a}
	}
	if err != nil {
		return err
	}
	ok, err := s.mayGrant(r.Context(), p, g)
	if err != nil {
		return err
	}
	if !ok {
		return errForbidden
	}
	if a == p.user.Address {
		return &httpError{Status: http.StatusConflict, Msg: "you cannot revoke your own grant"}
	}
	if err := s.st.deleteGrant(a); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// auditLog returns the audit log a page at a time: a system
// administrator's all of it, the others' their own changes.
func (s *Server) auditLog(w http.ResponseWriter, r *http.Request, p *principal) error {
	after, limit, err := page(r)
	if err != nil {
		return err
	}
	es, err := s.st.auditLog(after, limit)
	if err != nil {
		return err
	}
	out := []AuditEntry{}
	for _, e := range es {
		if p.system() || e.User == p.user.Address {
			out = append(out, e)
		}
	}
	return reply(w, http.StatusOK, out)
}
