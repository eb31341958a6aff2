package admin

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/mailsys/mailsys/userdata"
)

// Role is an administrator's level in Coremail's hierarchy.
type Role string

// Roles.
const (
	// RoleSystem administers everything.
	RoleSystem Role = "system"
	// RoleDomain administers one domain, its units and users.
	RoleDomain Role = "domain"
	// RoleUnit administers one unit, its sub-units and their users: an
	// enterprise's self-service.
	RoleUnit Role = "unit"
)

// Grant makes a user an administrator.
type Grant struct {
	User   string `json:"user"`             // the user's primary address
	Role   Role   `json:"role"`             // system, domain or unit
	Domain string `json:"domain,omitempty"` // a domain or unit administrator's domain
	Unit   uint64 `json:"unit,omitempty"`   // a unit administrator's unit
}

// principal is who makes a request.
type principal struct {
	user   userdata.User
	grant  *Grant // nil for a user who is no administrator
	token  token
	secret string
}

// access is what an endpoint needs of the caller.
type access int

const (
	public     access = iota // no one need be logged in
	anyUser                  // any logged-in user, administrator or not
	anyAdmin                 // an administrator; the handler checks the object's scope
	systemOnly               // a system administrator
)

// sessionCookie and csrfHeader carry a browser's session.
const (
	sessionCookie = "mailsys_session"
	csrfHeader    = "X-CSRF-Token"
)

// errForbidden is the 403 of an object out of the caller's scope.
var errForbidden = &httpError{Status: http.StatusForbidden, Msg: "outside your administration"}

func newSecret() string {
	b := make([]byte, 32)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// authenticate finds the caller from a bearer token or a session cookie.
// A cookie is accepted for a change only with its CSRF token in the
// X-CSRF-Token header.
func (s *Server) authenticate(r *http.Request) (*principal, error) {
	secret, cookie := "", false
	if h := r.Header.Get("Authorization"); h != "" {
		t, ok := strings.CutPrefix(h, "Bearer ")
		if !ok {
			return nil, &httpError{Status: http.StatusUnauthorized, Msg: "Authorization: want a Bearer token"}
		}
		secret = strings.TrimSpace(t)
	} else if c, err := r.Cookie(sessionCookie); err == nil {
		secret, cookie = c.Value, true
	}
	if secret == "" {
		return nil, &httpError{Status: http.StatusUnauthorized, Msg: "log in first (POST /api/v1/login)"}
	}
	t, err := s.st.token(secret)
	if errors.Is(err, errNotFound) || err == nil && s.now().After(t.Expires) {
		return nil, &httpError{Status: http.StatusUnauthorized, Msg: "token unknown or expired"}
	}
	if err != nil {
		return nil, err
	}
	if cookie && r.Method != http.MethodGet && r.Method != http.MethodHead {
		if got := r.Header.Get(csrfHeader); subtle.ConstantTimeCompare([]byte(got), []byte(t.CSRF)) != 1 || t.CSRF == "" {
			return nil, &httpError{Status: http.StatusForbidden, Msg: "missing or wrong " + csrfHeader}
		}
	}
	u, err := s.users.LookupAddress(r.Context(), t.User)
	if errors.Is(err, userdata.ErrNotFound) {
		return nil, &httpError{Status: http.StatusUnauthorized, Msg: "the token's user is gone"}
	}
	if err != nil {
		return nil, err
	}
	if u.Disabled {
		return nil, &httpError{Status: http.StatusUnauthorized, Msg: "the token's user is disabled"}
	}
	p := &principal{user: u, token: t, secret: secret}
	if g, err := s.st.grant(u.Address); err == nil {
		p.grant = &g
	} else if !errors.Is(err, errNotFound) {
		return nil, err
	}
	return p, nil
}

func (p *principal) system() bool { return p.grant != nil && p.grant.Role == RoleSystem }

// domain reports whether p administers domain (all of it).
func (p *principal) domain(d string) bool {
	return p.system() || p.grant != nil && p.grant.Role == RoleDomain && p.grant.Domain == d
}

// unit reports whether p administers unit id (in domain): as a system or
// domain administrator, or as the administrator of the unit or one above.
func (s *Server) unit(ctx context.Context, p *principal, id userdata.UnitID) (bool, error) {
	if p.grant == nil || id == 0 {
		return p.system(), nil
	}
	for hops := 0; id != 0 && hops < 64; hops++ {
		u, err := s.users.Unit(ctx, id)
		if err != nil {
			return false, err
		}
		if p.domain(u.Domain) || p.grant.Role == RoleUnit && uint64(u.ID) == p.grant.Unit {
			return true, nil
		}
		id = u.Parent
	}
	return false, nil
}

// mayUser reports whether p administers user u.
func (s *Server) mayUser(ctx context.Context, p *principal, u userdata.User) (bool, error) {
	if p.domain(domainOf(u.Address)) {
		return true, nil
	}
	if u.Unit == 0 {
		return false, nil
	}
	return s.unit(ctx, p, u.Unit)
}

func domainOf(address string) string {
	_, d, _ := strings.Cut(address, "@")
	return d
}

// loginFailed records a failed login from addr and reports whether addr
// is over its budget.
func (s *Server) loginFailed(addr string, record bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	recent := s.failures[addr][:0]
	for _, t := range s.failures[addr] {
		if now.Sub(t) < time.Minute {
			recent = append(recent, t)
		}
	}
	if record {
		recent = append(recent, now)
	}
	if len(recent) == 0 {
		delete(s.failures, addr)
	} else {
		s.failures[addr] = recent
	}
	if len(s.failures) > 100_000 {
		clear(s.failures) // a flood of addresses: start over
	}
	return len(recent) >= s.cfg.LoginFailures
}

func clientHost(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

type loginRequest struct {
	User     string `json:"user"`
	Password string `json:"password"`
}

type loginResponse struct {
	Token   string     `json:"token"`
	CSRF    string     `json:"csrf"`
	Expires time.Time  `json:"expires"`
	Me      meResponse `json:"me"`
}

type meResponse struct {
	Address string `json:"address"`
	Name    string `json:"name,omitempty"`
	Grant   *Grant `json:"grant,omitempty"`
}

// login checks a user's password and returns a session token, also set as
// a cookie for the pages (with its CSRF token).
func (s *Server) login(w http.ResponseWriter, r *http.Request, _ *principal) error {
	host := clientHost(r)
	if s.loginFailed(host, false) {
		return &httpError{Status: http.StatusTooManyRequests, Msg: "too many failed logins; wait a minute"}
	}
	var req loginRequest
	if err := s.decode(w, r, &req); err != nil {
		return err
	}
	if req.User == "" {
		return &fieldError{Field: "user", Msg: "required"}
	}
	if len(req.User) > 320 || len(req.Password) > 1024 {
		return &fieldError{Field: "user", Msg: "too long"}
	}
	// The admin login is a mailbox login: the user's password, its
	// limits (a disabled user or domain cannot log in), IMAP's protocol.
	u, err := s.users.Authenticate(r.Context(), req.User, req.Password, userdata.ProtoIMAP)
	if err != nil {
		if errors.Is(err, userdata.ErrAuthFailed) || errors.Is(err, userdata.ErrDisabled) || errors.Is(err, userdata.ErrProtocol) || errors.Is(err, userdata.ErrNotFound) {
			s.loginFailed(host, true)
			return &httpError{Status: http.StatusUnauthorized, Msg: "wrong user or password"}
		}
		return err
	}
	now := s.now()
	secret := newSecret()
	t := token{ID: tokenID(secret), User: u.Address, Session: true, CSRF: newSecret(), Created: now, Expires: now.Add(s.cfg.SessionTTL)}
	if err := s.st.putToken(secret, t); err != nil {
		return err
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: secret, Path: "/", Expires: t.Expires,
		HttpOnly: true, Secure: s.cfg.TLS != nil, SameSite: http.SameSiteStrictMode})
	resp := loginResponse{Token: secret, CSRF: t.CSRF, Expires: t.Expires, Me: meResponse{Address: u.Address, Name: u.Name}}
	if g, err := s.st.grant(u.Address); err == nil {
		resp.Me.Grant = &g
	}
	return reply(w, http.StatusOK, resp)
}

func tokenID(secret string) string {
	k := tokenKey(secret)
	return hex.EncodeToString(k[1:9])
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request, p *principal) error {
	if err := s.st.deleteToken(p.secret); err != nil {
		return err
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: s.cfg.TLS != nil, SameSite: http.SameSiteStrictMode})
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) me(w http.ResponseWriter, r *http.Request, p *principal) error {
	return reply(w, http.StatusOK, meResponse{Address: p.user.Address, Name: p.user.Name, Grant: p.grant})
}

type passwordRequest struct {
	Old      string `json:"old,omitempty"` // the current password (own password only)
	Password string `json:"password"`
}

// mePassword changes the caller's own password, given the current one.
func (s *Server) mePassword(w http.ResponseWriter, r *http.Request, p *principal) error {
	var req passwordRequest
	if err := s.decode(w, r, &req); err != nil {
		return err
	}
	if err := checkPassword(req.Password); err != nil {
		return err
	}
	if _, err := s.users.Authenticate(r.Context(), p.user.Address, req.Old, userdata.ProtoIMAP); err != nil {
		if errors.Is(err, userdata.ErrAuthFailed) {
			return &fieldError{Field: "old", Msg: "not the current password"}
		}
		return err
	}
	if err := s.users.SetPassword(r.Context(), p.user.ID, req.Password); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func checkPassword(pw string) error {
	switch {
	case len(pw) < 8:
		return &fieldError{Field: "password", Msg: "at least 8 characters"}
	case len(pw) > 1024:
		return &fieldError{Field: "password", Msg: "at most 1024 bytes"}
	}
	return nil
}

type tokenRequest struct {
	Name string `json:"name"`
	TTL  string `json:"ttl,omitempty"` // a Go duration ("720h"); empty: Config.TokenTTL
}

type tokenResponse struct {
	ID      string    `json:"id"`
	Name    string    `json:"name"`
	Token   string    `json:"token,omitempty"` // only when made
	Created time.Time `json:"created"`
	Expires time.Time `json:"expires"`
}

// createToken makes a long-lived API token for the caller, with the
// caller's rights; its secret is shown once.
func (s *Server) createToken(w http.ResponseWriter, r *http.Request, p *principal) error {
	var req tokenRequest
	if err := s.decode(w, r, &req); err != nil {
		return err
	}
	if req.Name == "" || len(req.Name) > 100 {
		return &fieldError{Field: "name", Msg: "1 to 100 bytes"}
	}
	ttl := s.cfg.TokenTTL
	if req.TTL != "" {
		d, err := time.ParseDuration(req.TTL)
		if err != nil || d <= 0 || d > s.cfg.TokenTTL {
			return &fieldError{Field: "ttl", Msg: fmt.Sprintf("a duration above 0 and at most %v", s.cfg.TokenTTL)}
		}
		ttl = d
	}
	now := s.now()
	secret := newSecret()
	t := token{ID: tokenID(secret), User: p.user.Address, Name: req.Name, Created: now, Expires: now.Add(ttl)}
	if err := s.st.putToken(secret, t); err != nil {
		return err
	}
	return reply(w, http.StatusCreated, tokenResponse{ID: t.ID, Name: t.Name, Token: secret, Created: t.Created, Expires: t.Expires})
}

// listTokens lists the caller's API tokens (a system administrator's:
// everyone's).
func (s *Server) listTokens(w http.ResponseWriter, r *http.Request, p *principal) error {
	ts, _, err := s.st.tokens(s.now(), func(t token) bool { return !t.Session && (p.system() || t.User == p.user.Address) })
	if err != nil {
		return err
	}
	out := make([]tokenResponse, 0, len(ts))
	for _, t := range ts {
		out = append(out, tokenResponse{ID: t.ID, Name: t.Name, Created: t.Created, Expires: t.Expires})
	}
	return reply(w, http.StatusOK, out)
}

func (s *Server) deleteToken(w http.ResponseWriter, r *http.Request, p *principal) error {
	id := r.PathValue("id")
	ts, keys, err := s.st.tokens(s.now(), func(t token) bool { return t.ID == id })
	if err != nil {
		return err
	}
	if len(ts) == 0 {
		return &httpError{Status: http.StatusNotFound, Msg: "no such token"}
	}
	if !p.system() && ts[0].User != p.user.Address {
		return errForbidden
	}
	if err := s.st.deleteKey(keys[0]); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
